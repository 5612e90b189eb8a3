"""Plain-driver pools on PostgreSQL (store/raw_pg.py) and the token lookup that runs on one:
the same answers as the SQLAlchemy path, a bounded number of connections, nothing left
open after close or `Engine.dispose`."""

from __future__ import annotations

import asyncio
import time

import psycopg
import pytest
from sqlalchemy import Engine, text

from silkroute.api.app import create_app
from silkroute.services.accounts import (
    Unauthenticated,
    authenticate,
    authenticate_async,
    create_account,
    revoke_token,
)
from silkroute.store.auth_repositories import LiveAccounts
from silkroute.store.raw_pg import AsyncAutocommitPool, AutocommitPool, conninfo_of
from silkroute.store.uow import UnitOfWork


@pytest.fixture
def backend() -> str:  # the engine fixture on PostgreSQL only
    return "postgres"


def _backends(engine: Engine, expect: int | None = None) -> int:
    """Connections open to the engine's database, this one aside (waiting up to 2 s for
    `expect`: a server process leaves a moment after its client closed)."""
    deadline = time.monotonic() + 2
    while True:
        with engine.connect() as conn:
            count = int(conn.execute(text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid()")).scalar_one())
        if expect is None or count == expect or time.monotonic() > deadline:
            return count
        time.sleep(0.02)


@pytest.mark.postgres
def test_the_token_lookup_on_the_event_loop_answers_as_the_unit_of_work_does(engine):
    buyer = create_account(UnitOfWork(engine), "buyer", "Ada", with_token=True)
    gone = create_account(UnitOfWork(engine), "seller", "Gone", with_token=True)
    assert buyer.token is not None and gone.token is not None
    revoke_token(UnitOfWork(engine), gone.token.token_id)
    live = LiveAccounts(AsyncAutocommitPool(conninfo_of(engine), size=2))

    async def both(token: str | None) -> tuple[object, object]:
        answers = []
        for check in (lambda: authenticate_async(live, token),
                      lambda: asyncio.to_thread(authenticate, UnitOfWork(engine), token)):
            try:
                answers.append(await check())
            except Unauthenticated as exc:
                answers.append((exc.code, exc.message, exc.field))
        return answers[0], answers[1]

    async def main() -> None:
        on_loop, in_uow = await both(buyer.token.token)  # type: ignore[union-attr]
        assert on_loop == in_uow
        assert (on_loop.role, on_loop.name, on_loop.buyer_id is not None) == (  # type: ignore[attr-defined]
            "buyer", "Ada", True)
        for token, message in ((gone.token.token,  # type: ignore[union-attr]
                                "the token is unknown or revoked"),
                               ("sr_" + "x" * 43, "the token is unknown or revoked"),
                               ("nope", "the token is not valid"),
                               (None, "a bearer token is required")):
            assert await both(token) == (("unauthenticated", message, "authorization"),) * 2

    asyncio.run(main())
    live.pool.close()


@pytest.mark.postgres
def test_the_async_pool_opens_at_most_its_size_and_closes_what_it_keeps(engine,
                                                                          monkeypatch):
    pool = AsyncAutocommitPool(conninfo_of(engine), size=3)
    before = _backends(engine)
    opened = []
    connect = psycopg.AsyncConnection.connect

    async def counted(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        opened.append(1)
        return await connect(*args, **kwargs)

    monkeypatch.setattr(psycopg.AsyncConnection, "connect", counted)

    async def main() -> list[int]:
        rows = await asyncio.gather(*[pool.first_row("SELECT %s::int, pg_sleep(0.05)", (i,))
                                      for i in range(12)])
        return [r[0] for r in rows if r is not None]

    assert asyncio.run(main()) == list(range(12))  # twelve callers, in turn
    assert len(opened) == 3
    assert _backends(engine, before + 3) == before + 3  # three kept, idle
    # another event loop (a test client's next request): the old loop's ones close
    assert asyncio.run(main()) == list(range(12))
    assert len(opened) == 6
    assert _backends(engine, before + 3) == before + 3
    pool.close()
    assert _backends(engine, before) == before


@pytest.mark.postgres
def test_an_app_closes_its_token_lookup_connections_with_its_engine(engine):
    from fastapi.testclient import TestClient

    url = engine.url.render_as_string(hide_password=False)
    from silkroute.store.engine import make_engine

    own = make_engine(url)
    app = create_app(own)
    buyer = create_account(UnitOfWork(engine), "buyer", "Ada", with_token=True)
    before = _backends(engine)
    with TestClient(app) as client:
        for _ in range(3):
            got = client.get("/api/v1/buyer/payment-methods",
                             headers={"Authorization": f"Bearer {buyer.token.token}"})  # type: ignore[union-attr]
            assert (got.status_code, got.json()) == (200, [])
    assert _backends(engine) > before
    own.dispose()
    assert _backends(engine, before) == before


@pytest.mark.postgres
def test_the_sync_pool_keeps_its_size_and_raises_psycopg_errors(engine):
    pool = AutocommitPool(conninfo_of(engine), size=2)
    before = _backends(engine)
    assert pool.first_row("SELECT 41 + %s", (1,)) == (42,)
    assert pool.first_row("SELECT 1 WHERE false", ()) is None
    with pytest.raises(psycopg.errors.UniqueViolation):
        pool.first_row("WITH a AS (INSERT INTO silkroute_meta (key, value) VALUES "
                       "('raw-test', '1'), ('raw-test', '2') RETURNING 1) SELECT 1", ())
    assert pool.first_row("SELECT count(*) FROM silkroute_meta WHERE key = 'raw-test'",
                          ()) == (0,)  # the failed statement left nothing
    assert _backends(engine, before + 1) == before + 1  # one caller at a time: one
    pool.close()
    assert _backends(engine, before) == before
