"""Bearer-token authentication and role checks as FastAPI dependencies."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from silkroute.services.accounts import (
    Forbidden,
    Principal,
    authenticate,
    authenticate_async,
)
from silkroute.services.checkout import routing_observer
from silkroute.store.uow import UnitOfWork

bearer = HTTPBearer(auto_error=False, description="An API token: `Authorization: Bearer sr_…`")

UowFactory = Callable[[], UnitOfWork]


async def uow_factory(request: Request) -> UowFactory:
    """Units of work on the app's database. It also hands checkout's routing decisions to
    the app's histogram: async so that it runs in the request's own context, which the
    endpoint's worker thread inherits (a sync dependency would set a copy)."""
    routing_observer.set(request.app.state.metrics.routing_decision_seconds.observe)
    engine = request.app.state.engine
    return lambda: UnitOfWork(engine)


async def read_uow_factory(request: Request) -> UowFactory:
    """Units of work that only read (on SQLite they do not queue behind writers). Async,
    like every dependency that does no I/O: FastAPI runs a sync one in a worker thread,
    a thread hop per request for nothing."""
    engine = request.app.state.engine
    return lambda: UnitOfWork(engine, read_only=True)


Uows = Annotated[UowFactory, Depends(uow_factory)]
ReadUows = Annotated[UowFactory, Depends(read_uow_factory)]


async def current_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    """Whoever the bearer token stands for; 401 without a live token. On PostgreSQL the
    lookup is awaited on the event loop (`app.state.live_accounts`, psycopg's async
    connection): through a unit of work in a worker thread it was a thread hop and a
    SQLAlchemy statement per request (profiled on `bench http`). On SQLite it runs in a
    worker thread, as a sync dependency would."""
    token = credentials.credentials if credentials else None
    live_accounts = getattr(request.app.state, "live_accounts", None)
    if live_accounts is not None:
        return await authenticate_async(live_accounts, token)
    engine = request.app.state.engine
    return await run_in_threadpool(authenticate, UnitOfWork(engine, read_only=True), token)


def require_role(role: str) -> Callable[[Principal], Awaitable[Principal]]:
    """A dependency that admits only accounts of one role (others get 403); async, as it
    does no I/O (no thread hop)."""

    async def check(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
        if principal.role != role:
            raise Forbidden(f"this route is for {role} accounts; yours is a {principal.role} "
                            "account", field="authorization")
        return principal

    check.__name__ = f"require_{role}"
    return check


AnyAccount = Annotated[Principal, Depends(current_principal)]
Buyer = Annotated[Principal, Depends(require_role("buyer"))]
Seller = Annotated[Principal, Depends(require_role("seller"))]
Operator = Annotated[Principal, Depends(require_role("operator"))]


def buyer_id_of(principal: Principal) -> int:
    assert principal.buyer_id is not None  # the accounts table guarantees it
    return principal.buyer_id


def seller_id_of(principal: Principal) -> int:
    assert principal.seller_id is not None
    return principal.seller_id
