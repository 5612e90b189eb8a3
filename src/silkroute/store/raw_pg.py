"""A small pool of plain psycopg connections in autocommit, for one-statement hot paths.

A statement run through SQLAlchemy costs the caller a pool checkout, an isolation-level
change on the way out and back, a result proxy and its column metadata: about 1 ms of CPU
per statement on the buy-now path (profiled with cProfile on `process_time`), for a round
trip whose own client cost is about 0.07 ms. A statement that is its own transaction (in
autocommit, atomic by itself) needs none of that; this pool runs such statements on the
driver directly. psycopg prepares a statement a connection has run a few times, as it
does under SQLAlchemy.

Errors are psycopg's own (`psycopg.errors.IntegrityError` and so on), not SQLAlchemy's:
callers catch them around the one statement. A connection that broke is closed and not
given back.
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any

import psycopg
from sqlalchemy import Engine

Params = Mapping[str, Any] | Sequence[Any]


def conninfo_of(engine: Engine) -> str:
    """The libpq URL of a (postgresql+psycopg) engine."""
    return engine.url.set(drivername="postgresql").render_as_string(hide_password=False)


class AutocommitPool:
    """Up to `size` idle psycopg connections in autocommit mode, opened on demand; more
    callers at once each get a connection of their own (closed after use)."""

    def __init__(self, conninfo: str, size: int = 8):
        self.conninfo = conninfo
        self.size = size
        self._idle: list[psycopg.Connection[Any]] = []
        self._lock = threading.Lock()
        self._closed = False
        weakref.finalize(self, _close_all, self._idle)  # a pool nobody closed

    def _get(self) -> psycopg.Connection[Any]:
        with self._lock:
            if self._idle:
                return self._idle.pop()
        return psycopg.connect(self.conninfo, autocommit=True)

    def _put(self, conn: psycopg.Connection[Any]) -> None:
        if not conn.closed and not conn.broken and \
                conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE:
            with self._lock:
                if not self._closed and len(self._idle) < self.size:
                    self._idle.append(conn)
                    return
        conn.close()

    def first_row(self, sql: str, params: Params) -> tuple[Any, ...] | None:
        """Run one statement that returns rows (its own transaction); its first row, or
        None if it returned none."""
        conn = self._get()
        try:
            return conn.execute(sql, params).fetchone()
        finally:
            self._put(conn)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()


class AsyncAutocommitPool:
    """`AutocommitPool` for an event loop: psycopg's async connections, for a statement the
    loop can await instead of handing it to a worker thread. At most `size` connections:
    more callers at once wait for one (opening and closing connections under load cost
    more than the statements). Connections belong to the loop that opened them (a new
    loop starts afresh; the old one's connections close when they are collected)."""

    def __init__(self, conninfo: str, size: int = 8):
        self.conninfo = conninfo
        self.size = size
        self._loop: asyncio.AbstractEventLoop | None = None
        self._idle: list[psycopg.AsyncConnection[Any]] = []
        self._open = 0
        self._waiting: deque[asyncio.Future[None]] = deque()
        self._generation = 0  # bumped by `close`: what was taken before does not come back
        weakref.finalize(self, _close_all, self._idle)  # a pool nobody closed

    async def first_row(self, sql: str, params: Params) -> tuple[Any, ...] | None:
        """Run one statement that returns rows (its own transaction); its first row, or
        None if it returned none."""
        rows = await self._run(sql, params, first=True)
        return rows[0] if rows else None

    async def all_rows(self, sql: str, params: Params) -> list[tuple[Any, ...]]:
        """Run one statement that returns rows (its own transaction); all its rows."""
        return await self._run(sql, params, first=False)

    async def _run(self, sql: str, params: Params, *, first: bool) -> list[tuple[Any, ...]]:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # (a test client's next request, say)
            self.close()
            self._loop = loop
        while not self._idle and self._open >= self.size:
            waiter = loop.create_future()
            self._waiting.append(waiter)
            try:
                await waiter
            except asyncio.CancelledError:
                self._wake()  # pass on a wake-up this caller may have taken
                raise
        generation = self._generation
        if self._idle:
            conn = self._idle.pop()
        else:
            self._open += 1
            try:
                conn = await psycopg.AsyncConnection.connect(self.conninfo, autocommit=True)
            except BaseException:
                if generation == self._generation:
                    self._open -= 1
                self._wake()
                raise
        try:
            cur = await conn.execute(sql, params)
            if first:
                row = await cur.fetchone()
                return [] if row is None else [row]
            return await cur.fetchall()
        finally:
            if generation != self._generation:
                await conn.close()
            elif not conn.closed and not conn.broken and \
                    conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE:
                self._idle.append(conn)
            else:
                self._open -= 1
                await conn.close()
            self._wake()

    def close(self) -> None:
        """Close the idle connections now (from any thread; one in use closes when it
        comes back after this, as the pool starts afresh)."""
        idle = list(self._idle)
        self._idle.clear()
        self._generation += 1
        self._loop, self._open, self._waiting = None, 0, deque()
        _close_all(idle)

    def _wake(self) -> None:
        while self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return


def _close_all(conns: list[Any]) -> None:
    """Close connections at once, async ones too (libpq's PQfinish: nothing to await)."""
    for conn in conns:
        if not conn.closed:
            conn.pgconn.finish()
