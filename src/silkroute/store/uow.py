"""The unit of work: one database transaction per service call, with its repositories."""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType
from typing import Any

from psycopg.pq import TransactionStatus
from sqlalchemy import Connection, Engine

from silkroute.store.engine import READ_ONLY
from silkroute.store.repositories import Repositories
from silkroute.store.sql import (
    PENDING,
    PendingWrites,
    begin_outside,
    end_outside,
    flush,
    flush_alone,
    writes_behind,
)


class UnitOfWork:
    """`with UnitOfWork(engine) as uow:` runs in one transaction; commits on success.

    Checks registered with `before_commit` run inside the transaction just before it
    commits; any exception they raise rolls everything back.

    `read_only=True` is for units that only read: on SQLite they begin deferred (a WAL
    snapshot, not queued behind writers) instead of taking the write lock up front; on
    PostgreSQL they are READ ONLY transactions. Writing in one is a bug (PostgreSQL refuses
    it; on SQLite it may fail with "database is locked").
    """

    def __init__(self, engine: Engine, *, read_only: bool = False):
        self.engine = engine
        self.read_only = read_only
        self._conn: Connection | None = None
        self._checks: list[Callable[[Connection], None]] = []
        self.repos: Repositories

    @property
    def conn(self) -> Connection:
        if self._conn is None:
            raise RuntimeError("unit of work used outside its `with` block")
        return self._conn

    def __enter__(self) -> UnitOfWork:
        self._conn = self.engine.connect()
        if self.read_only:
            # SQLite: BEGIN (deferred); PostgreSQL: BEGIN READ ONLY, which refuses writes.
            opts = {READ_ONLY: True}
            if self.engine.dialect.name == "postgresql":
                opts["postgresql_readonly"] = True
            self._conn.execution_options(**opts)
        if writes_behind(self.engine):  # PostgreSQL
            if not self.read_only:  # inserts go as one statement
                self._conn.info[PENDING] = PendingWrites()
            begin_outside(self._conn)  # lock-free reads run before (or without) a BEGIN
        self._conn.begin()
        self.repos = Repositories(self._conn)
        self._checks = []
        return self

    def before_commit(self, check: Callable[[Connection], None]) -> None:
        if check not in self._checks:
            self._checks.append(check)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        conn = self.conn
        try:
            if exc_type is None:
                if self._checks or not flush_alone(conn):
                    flush(conn)
                    for check in self._checks:
                        check(conn)
                conn.commit()  # nothing to commit after flush_alone: no round trip
            else:
                conn.rollback()
        except BaseException:
            conn.rollback()
            raise
        finally:
            conn.info.pop(PENDING, None)
            end_outside(conn)
            conn.close()
            self._conn = None


class SharedUnitOfWork(UnitOfWork):
    """One transaction shared by several service calls (group commit).

    `open()` begins it; each call's own `with uow:` then neither begins nor commits: on
    success its writes stay kept for the shared commit, on an exception they are dropped
    (`PendingWrites.undo`) and the others' stay. `commit()` sends everything kept as one
    statement and commits (on PostgreSQL, `flush_alone`: one round trip for all the calls),
    or raises and keeps nothing of any call. Callbacks given to `defer` run once the
    outcome is known, with True after the commit and False after a rollback.

    Only for calls whose writes are all kept (write-behind, PostgreSQL) until the commit:
    once a call sends a statement that begins the transaction (a flush, a reservation
    made at once), the calls' writes are inseparable, so a call that fails after that
    marks the whole unit `broken` and `commit()` refuses (`BrokenGroup`): the caller
    then runs the calls one by one.
    """

    def __init__(self, engine: Engine):
        super().__init__(engine)
        self._marks: list[Any] = []
        self._deferred: list[Callable[[bool], None]] = []
        self.broken = False

    def open(self) -> SharedUnitOfWork:
        super().__enter__()
        if self.conn.info.get(PENDING) is None:
            self.close(ok=False)
            raise RuntimeError("a shared unit of work needs write-behind (PostgreSQL)")
        self._deferred = []
        self.broken = False
        return self

    def __enter__(self) -> SharedUnitOfWork:
        self._marks.append(self.conn.info[PENDING].mark())
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        mark = self._marks.pop()
        if exc_type is None:
            return
        # Undo what the failed call kept; what it (or anyone) already sent to the server
        # (a statement that began the transaction: reservations from two locations, a
        # read inside the transaction) only a rollback of the whole group undoes.
        driver = self.conn.connection.driver_connection
        begun = driver is None or \
            driver.info.transaction_status != TransactionStatus.IDLE
        if not self.conn.info[PENDING].undo(mark) or begun:
            self.broken = True

    def defer(self, callback: Callable[[bool], None]) -> None:
        self._deferred.append(callback)

    def commit(self) -> None:
        """Commit what the calls kept; raises (and rolls back) on any failure."""
        if self.broken:
            self.close(ok=False)
            raise BrokenGroup("a call failed after the group's writes were sent")
        self.close(ok=True)

    def close(self, *, ok: bool) -> None:
        """Commit (`ok`) or roll back, then run the deferred callbacks."""
        committed = False
        try:
            if self._conn is None:
                pass  # closed already (a failed `open`)
            elif ok:
                super().__exit__(None, None, None)
                committed = True
            else:
                super().__exit__(BrokenGroup, BrokenGroup(), None)
        finally:
            deferred, self._deferred = self._deferred, []
            for callback in deferred:
                callback(committed)


class BrokenGroup(Exception):
    """A shared unit of work could not keep its calls apart; nothing was committed."""
