"""Buy-now's usual request answered without FastAPI's routing and dependency machinery.

`POST /api/v1/buyer/buy-now` is the request the platform serves most under load, and
FastAPI's work around it (route matching, six dependencies with their exit stacks, the
response model check) cost the server about as much CPU as the purchase itself
(profiled with py-spy on `bench http`). `BuyNowFastPath` answers the usual case itself:
a JSON body that `BuyNowIn` accepts, one valid `Idempotency-Key`, and a bearer token of a
live buyer account, on PostgreSQL (whose token lookup is awaited, `LiveAccounts`). It
calls the same use case (`purchases.buy_now`) in a worker thread, counts the same
metrics and answers with the same bytes, status and headers as the route; an error the
use case raises goes to the app's own exception handler for it, or up to the server's
error handler, as it would from the route. Anything else (no or another token, a body or
header the route would refuse, SQLite) goes to the route unchanged, body included, so
every refusal keeps exactly the route's answer.

With group commit on (`serve --buy-now-group`, PostgreSQL), the purchase and the token
lookup both go to the worker's `BuyNowGroups` (api/group_commit.py), which looks up a
group's tokens in one statement and runs its purchases together; a token that is not a
live buyer's comes back as `NotABuyer` and goes to the route as above.
"""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import ValidationError as PydanticValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from silkroute.api.group_commit import NotABuyer, TokenBuyNow
from silkroute.api.routers.payments import count_buy_now, counted_buy_now
from silkroute.api.schemas import BuyNowIn
from silkroute.services.accounts import Unauthenticated, authenticate_async, hash_of_bearer
from silkroute.services.checkout import routing_observer
from silkroute.store.uow import UnitOfWork

PATH = "/api/v1/buyer/buy-now"
MAX_BODY = 64 * 1024  # a buy-now body is tiny; a larger one goes to the route
_KEY = re.compile(r"^[\x21-\x7e]{1,200}$")  # the route's Idempotency-Key header rules


class BuyNowFastPath:
    """ASGI middleware in front of the routes; see the module docstring."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != PATH or scope["method"] != "POST" \
                or scope.get("root_path"):
            await self.app(scope, receive, send)
            return
        application = scope["app"]
        live_accounts = getattr(application.state, "live_accounts", None)
        token, key = _token_and_key(scope["headers"])
        if live_accounts is None or token is None or key is None:
            await self.app(scope, receive, send)
            return
        body, complete = await _read_body(receive)
        replay = _Replay(body, receive, complete)
        request_in = _buy_now_in(body) if complete else None
        if request_in is None:
            await self.app(scope, replay, send)
            return
        request = Request(scope, replay)
        metrics = application.state.metrics
        groups = getattr(application.state, "buy_now_groups", None)
        try:
            if groups is not None:  # group commit (api/group_commit.py); its token
                # lookups too: one statement per group
                out = await count_buy_now(metrics, groups.buy_now(TokenBuyNow(
                    hash_of_bearer(token), request_in.sku, request_in.quantity, key)))
            else:
                principal = await authenticate_async(live_accounts, token)
                if principal.role != "buyer" or principal.buyer_id is None:
                    raise NotABuyer
                routing_observer.set(metrics.routing_decision_seconds.observe)
                out = await counted_buy_now(metrics, UnitOfWork(application.state.engine),
                                            principal.buyer_id, request_in.sku,
                                            request_in.quantity, key)
        except (Unauthenticated, NotABuyer):  # the route's authentication answers it
            await self.app(scope, replay, send)
            return
        except Exception as exc:
            handler = _handler_for(application, exc)
            if handler is None:
                raise  # to the server's error handler, as from the route
            response = await handler(request, exc)
        else:
            response = Response(out.model_dump_json(by_alias=True),
                                status_code=201, media_type="application/json")
        await response(scope, replay, send)


def _token_and_key(headers: list[tuple[bytes, bytes]]) -> tuple[str | None, str | None]:
    """The bearer token and the Idempotency-Key when each is sent once and well formed
    (as HTTPBearer and the route's header rules read them), else None for it."""
    auth: list[bytes] = []
    keys: list[bytes] = []
    content_type: list[bytes] = []
    for name, value in headers:
        if name == b"authorization":
            auth.append(value)
        elif name == b"idempotency-key":
            keys.append(value)
        elif name == b"content-type":
            content_type.append(value)
    if len(auth) != 1 or len(keys) != 1 or content_type != [b"application/json"]:
        return None, None
    scheme, _, credentials = auth[0].decode("latin-1").partition(" ")
    key = keys[0].decode("latin-1")
    if scheme.lower() != "bearer" or not credentials or " " in credentials or \
            not _KEY.match(key):
        return None, None
    return credentials, key


async def _read_body(receive: Receive) -> tuple[bytes, bool]:
    """The request body, and False when it was larger than `MAX_BODY` or the client left
    (then what was read so far; the route reads the rest)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(chunks), False
        chunk = message.get("body", b"")
        chunks.append(chunk)
        size += len(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks), True
        if size > MAX_BODY:
            return b"".join(chunks), False


def _buy_now_in(body: bytes) -> BuyNowIn | None:
    """The body as the route would take it, or None when the route would refuse it."""
    try:
        data: Any = json.loads(body)
        return BuyNowIn.model_validate(data)
    except (ValueError, PydanticValidationError):
        return None


class _Replay:
    """`receive` for whoever reads the request after us: the body read so far (as one
    message, and the rest still unread if it was not complete), then the client's own."""

    def __init__(self, body: bytes, receive: Receive, complete: bool):
        self._body: bytes | None = body
        self._receive = receive
        self._complete = complete

    async def __call__(self) -> Message:
        if self._body is not None:
            body, self._body = self._body, None
            return {"type": "http.request", "body": body, "more_body": not self._complete}
        return await self._receive()


def _handler_for(application: Any, exc: Exception) -> Any:
    """The app's handler for `exc` as Starlette's ExceptionMiddleware would pick it (the
    most specific class; the catch-all 500 handler belongs to the server error
    middleware, so None for it)."""
    handlers = application.exception_handlers
    for cls in type(exc).__mro__:
        if cls is Exception or cls is BaseException:
            return None
        if cls in handlers:
            return handlers[cls]
    return None
