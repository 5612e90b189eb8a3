"""The unit of work: one database transaction per service call, with its repositories."""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType

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
