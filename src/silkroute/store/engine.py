"""Database engines: SQLite (WAL, immediate write transactions) by default, PostgreSQL by URL."""

from __future__ import annotations

import os
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from silkroute.store.sql import enable_write_behind

DEFAULT_URL = "sqlite:///./silkroute.db"
ENV_URL = "SILKROUTE_DATABASE_URL"
READ_ONLY = "silkroute_read_only"  # execution option: this transaction only reads


def database_url(url: str | None = None) -> str:
    """The URL to use: an explicit one, else $SILKROUTE_DATABASE_URL, else ./silkroute.db."""
    raw = url or os.environ.get(ENV_URL) or DEFAULT_URL
    parsed = make_url(raw)
    # Plain postgresql:// URLs mean psycopg 3, the one driver we ship.
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def is_sqlite(engine_or_url: Engine | str) -> bool:
    url = engine_or_url.url if isinstance(engine_or_url, Engine) else make_url(engine_or_url)
    return url.get_backend_name() == "sqlite"


def make_engine(url: str | None = None, **kwargs: Any) -> Engine:
    """Create an engine; SQLite gets WAL, a busy timeout, foreign keys and BEGIN IMMEDIATE."""
    resolved = database_url(url)
    if is_sqlite(resolved):
        engine = create_engine(
            resolved,
            connect_args={"timeout": 30, "check_same_thread": False},
            **({"poolclass": NullPool} if ":memory:" in resolved else {}),
            **kwargs,
        )

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn: Any, _record: Any) -> None:
            # Let SQLAlchemy, not pysqlite, decide when transactions begin.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Any) -> None:
            # Writers take the write lock up front: no lock upgrade deadlocks between them.
            # A reader begins deferred and reads a WAL snapshot without queueing behind them.
            read_only = conn.get_execution_options().get(READ_ONLY, False)
            conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")

        return engine
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 20)
    # No ping per checkout: it is a round trip per unit of work (profiled on one-click).
    # A connection that died (a database restart) fails its statement once; SQLAlchemy
    # then invalidates the pool, and the next unit of work gets a fresh connection.
    kwargs.setdefault("pool_pre_ping", False)
    engine = create_engine(resolved, **kwargs)
    enable_write_behind(engine)  # units of work send their inserts as one statement
    return engine
