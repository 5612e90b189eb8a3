"""The FastAPI application: routers, error mapping, OpenAPI under /api/v1, /metrics."""

from __future__ import annotations

from fastapi import FastAPI, Request, Response
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import Engine, event
from starlette.types import ASGIApp, Receive, Scope, Send

from silkroute import console
from silkroute.api import background, errors
from silkroute.api.fast_paths import BuyNowFastPath
from silkroute.api.group_commit import BuyNowGroups
from silkroute.api.metrics import ApiMetrics
from silkroute.api.routers import (
    accounts,
    buyers,
    cart,
    delivery,
    operators,
    payments,
    sellers,
)
from silkroute.api.tuning import DEFAULT_THREADS
from silkroute.store.auth_repositories import LiveAccounts
from silkroute.store.raw_pg import AsyncAutocommitPool, conninfo_of

API_VERSION = "1"
DESCRIPTION = """The silkroute marketplace API. Every error is JSON
`{"code": "...", "message": "...", "field": "..."}` with a stable `code`.
Authenticate with `Authorization: Bearer <token>`; tokens come from `POST /api/v1/buyers`
(buyers), `POST /api/v1/sellers` (sellers) or `silkroute token issue` (any account)."""


MAX_BODY_BYTES = 8 * 1024 * 1024
DOCS_URL = "/api/v1/docs"
DOCS_ASSETS = "/api/v1/docs/assets"  # Swagger UI from the swagger-ui-bundle-v2 package


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


def create_app(engine: Engine, *, jobs_interval: float = 0, threads: int = 0,
               freeze_heap: bool = False, buy_now_group: int = 0) -> FastAPI:
    """An app serving the marketplace on this database engine; with `jobs_interval` > 0 it
    runs the periodic jobs every that many seconds while it serves (`serve` does); with
    `threads` > 0 at most that many endpoint calls run at once (else anyio's default, 40);
    with `freeze_heap` its startup heap leaves the garbage collector's generations when it
    starts (for a server process, whose startup objects live as long as it does); with
    `buy_now_group` > 0, on PostgreSQL, concurrent buy-nows run together, that many at
    most (group commit, api/group_commit.py)."""
    app = FastAPI(title="silkroute", version=API_VERSION, description=DESCRIPTION,
                  openapi_url="/api/v1/openapi.json", docs_url=None, redoc_url=None,
                  lifespan=background.lifespan)
    app.state.engine = engine
    # PostgreSQL: every request's token lookup awaited on the event loop (auth.py).
    app.state.live_accounts = None
    if engine.dialect.name == "postgresql":
        pool = AsyncAutocommitPool(conninfo_of(engine), size=threads or DEFAULT_THREADS)
        app.state.live_accounts = LiveAccounts(pool)
        # ... whose connections close with the engine's (`Engine.dispose`)
        event.listen(engine, "engine_disposed", lambda _engine: pool.close())
    app.state.metrics = ApiMetrics()
    app.state.buy_now_groups = None
    if buy_now_group > 0 and app.state.live_accounts is not None:
        app.state.buy_now_groups = BuyNowGroups(
            engine, max_size=buy_now_group,
            observe=app.state.metrics.routing_decision_seconds.observe,
            group_size=app.state.metrics.buy_now_group_size.observe,
            accounts=app.state.live_accounts.many)
    app.state.jobs_interval = jobs_interval
    app.state.threads = threads
    app.state.freeze_heap = freeze_heap
    errors.install(app)
    app.add_middleware(BuyNowFastPath)  # inside BodyLimit (added after: the outer one)
    app.add_middleware(BodyLimit)
    for router in (buyers.router, payments.router, cart.router, sellers.router,
                   operators.router, accounts.router, delivery.router):
        app.include_router(router)
    delivery.install(app)

    _mount_docs(app)

    console.install(app)  # storefront, seller centre and control tower pages

    @app.get("/api/v1/health", tags=["service"], summary="Liveness: answers when serving")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/metrics", tags=["service"], include_in_schema=False)
    def metrics() -> Response:
        return Response(generate_latest(app.state.metrics.registry),
                        media_type=CONTENT_TYPE_LATEST)

    return app


def _mount_docs(app: FastAPI) -> None:
    """Interactive docs whose Swagger UI is served from the installed package, not a CDN."""
    from swagger_ui_bundle import swagger_ui_path

    app.mount(DOCS_ASSETS, StaticFiles(directory=str(swagger_ui_path)), name="swagger-ui")

    @app.get(DOCS_URL, include_in_schema=False)
    def docs(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "").rstrip("/")
        return get_swagger_ui_html(
            openapi_url=f"{root}{app.openapi_url}", title=f"{app.title} API",
            swagger_js_url=f"{root}{DOCS_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{DOCS_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{root}{DOCS_ASSETS}/favicon-32x32.png",
            # No validator badge: Swagger UI would fetch it from validator.swagger.io.
            swagger_ui_parameters={"validatorUrl": None})


def app_from_env() -> FastAPI:
    """uvicorn factory: the database from $SILKROUTE_DATABASE_URL (set by `silkroute serve`)."""
    from silkroute.services.payments import use_database_provider
    from silkroute.store.engine import make_engine

    engine = make_engine()
    use_database_provider(engine)  # every worker (and restart) shares one sandbox account
    return create_app(engine, jobs_interval=background.interval_from_env(),
                      threads=background.threads_from_env(), freeze_heap=True,
                      buy_now_group=background.group_from_env())
