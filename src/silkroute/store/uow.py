"""The unit of work: one database transaction per service call, with its repositories."""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType

from sqlalchemy import Connection, Engine

from silkroute.store.repositories import Repositories


class UnitOfWork:
    """`with UnitOfWork(engine) as uow:` runs in one transaction; commits on success.

    Checks registered with `before_commit` run inside the transaction just before it
    commits; any exception they raise rolls everything back.
    """

    def __init__(self, engine: Engine):
        self.engine = engine
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
                for check in self._checks:
                    check(conn)
                conn.commit()
            else:
                conn.rollback()
        except BaseException:
            conn.rollback()
            raise
        finally:
            conn.close()
            self._conn = None
