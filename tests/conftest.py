"""Shared fixtures: a fresh migrated database per test on SQLite and on real PostgreSQL."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from silkroute.store.all_tables import metadata
from silkroute.store.engine import make_engine
from silkroute.store.migrate import upgrade
from silkroute.store.uow import UnitOfWork

PG_URL = os.environ.get("SILKROUTE_TEST_POSTGRES_URL",
                        "postgresql://postgres@127.0.0.1:5432/test")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
_pg_problem: str | None = None
_skipped_pg = 0


def _probe_postgres() -> str | None:
    try:
        eng = make_engine(PG_URL, pool_size=1, max_overflow=0, pool_pre_ping=False,
                          connect_args={"connect_timeout": 3})
        with eng.connect() as conn:
            conn.execute(text("select 1"))
        eng.dispose()
        return None
    except Exception as exc:  # any failure to connect means "not reachable"
        return f"{type(exc).__name__}: {str(exc).splitlines()[0]}"


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A database of this test run's own on the PostgreSQL server, dropped at the end."""
    global _pg_problem, _skipped_pg
    _pg_problem = _probe_postgres()
    if _pg_problem is not None:
        if IN_CI:
            pytest.fail(f"CI=true but PostgreSQL at {PG_URL} is unreachable: {_pg_problem}")
        _skipped_pg += 1
        pytest.skip(f"PostgreSQL not reachable at {PG_URL} ({_pg_problem})")
    name = f"silkroute_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    admin = make_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = PG_URL.rsplit("/", 1)[0] + "/" + name
    eng = make_engine(url)
    upgrade(eng)
    eng.dispose()
    yield url
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    eng = make_engine(f"sqlite:///{path}")
    upgrade(eng)
    eng.dispose()  # the last connection to close checkpoints the WAL into the file
    return path


def _truncate_all(engine: Engine) -> None:
    names = ", ".join(f'"{t.name}"' for t in metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def engine(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A migrated, empty database on the backend under test."""
    if backend == "sqlite":
        template = request.getfixturevalue("sqlite_template")
        path = tmp_path / "silkroute.db"
        shutil.copy(template, path)
        eng = make_engine(f"sqlite:///{path}")
    else:
        url = request.getfixturevalue("pg_database")
        eng = make_engine(url)
        _truncate_all(eng)
    yield eng
    eng.dispose()


@pytest.fixture(autouse=True)
def fresh_payment_provider() -> Iterator[None]:
    """Every test gets a fresh database, so it gets a fresh provider account too: the
    platform derives provider idempotency keys from database ids, which repeat across
    fresh databases in one process."""
    from silkroute.payments.test_provider import TestPaymentProvider
    from silkroute.services import payments

    old = payments.set_provider(TestPaymentProvider())
    yield
    payments.set_provider(old)


@pytest.fixture
def uow(engine: Engine):  # noqa: ANN201 - a factory of units of work
    return lambda: UnitOfWork(engine)


def pytest_unconfigure(config: pytest.Config) -> None:
    """Last words of the run: say plainly when PostgreSQL tests were skipped, and why."""
    if _pg_problem is None or IN_CI:
        return
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(
            f"NOTE: PostgreSQL tests were SKIPPED: no server reachable at {PG_URL} "
            f"({_pg_problem}). Set SILKROUTE_TEST_POSTGRES_URL or start PostgreSQL to run "
            "them; under CI=true they fail instead.", yellow=True, bold=True)
