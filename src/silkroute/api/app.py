"""The FastAPI application: routers, error mapping, OpenAPI under /api/v1, /metrics."""

from __future__ import annotations

from fastapi import FastAPI, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import Engine
from starlette.types import ASGIApp, Receive, Scope, Send

from silkroute.api import errors
from silkroute.api.metrics import ApiMetrics
from silkroute.api.routers import accounts, buyers, operators, payments, sellers

API_VERSION = "1"
DESCRIPTION = """The silkroute marketplace API. Every error is JSON
`{"code": "...", "message": "...", "field": "..."}` with a stable `code`.
Authenticate with `Authorization: Bearer <token>`; tokens come from `POST /api/v1/buyers`
(buyers), `POST /api/v1/sellers` (sellers) or `silkroute token issue` (any account)."""


MAX_BODY_BYTES = 8 * 1024 * 1024


class BodyLimit:
    """Refuse a request whose declared body is larger than the API ever accepts (413)."""

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY_BYTES):
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            length = dict(scope.get("headers") or []).get(b"content-length", b"0")
            if not length.isdigit() or int(length) > self.limit:
                body = {"code": "too_large" if length.isdigit() else "bad_request",
                        "message": f"the body must be at most {self.limit} bytes"
                        if length.isdigit() else "content-length is not a number",
                        "field": "body"}
                response = JSONResponse(body, status_code=413 if length.isdigit() else 400)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def create_app(engine: Engine) -> FastAPI:
    """An app serving the marketplace on this database engine."""
    app = FastAPI(title="silkroute", version=API_VERSION, description=DESCRIPTION,
                  openapi_url="/api/v1/openapi.json", docs_url="/api/v1/docs", redoc_url=None)
    app.state.engine = engine
    app.state.metrics = ApiMetrics()
    errors.install(app)
    app.add_middleware(BodyLimit)
    for router in (buyers.router, payments.router, sellers.router, operators.router,
                   accounts.router):
        app.include_router(router)

    @app.get("/api/v1/health", tags=["service"], summary="Liveness: answers when serving")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/metrics", tags=["service"], include_in_schema=False)
    def metrics() -> Response:
        return Response(generate_latest(app.state.metrics.registry),
                        media_type=CONTENT_TYPE_LATEST)

    return app


def app_from_env() -> FastAPI:
    """uvicorn factory: the database from $SILKROUTE_DATABASE_URL (set by `silkroute serve`)."""
    from silkroute.store.engine import make_engine

    return create_app(make_engine())
