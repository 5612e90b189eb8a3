"""The console: storefront, seller centre and control tower pages on the API's services."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from silkroute.console import ops, seller, store
from silkroute.console.web import HERE

STATIC_PATH = "/console-static"


def install(app: FastAPI) -> None:
    """Serve the console pages and their own CSS/JS from this app."""
    app.include_router(store.router)
    app.include_router(seller.router)
    app.include_router(ops.router)
    app.mount(STATIC_PATH, StaticFiles(directory=str(HERE / "static")), name="console-static")


__all__ = ["install"]
