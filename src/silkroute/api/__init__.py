"""The HTTP API: a FastAPI app with routers per actor, bearer-token auth and JSON errors."""
