"""Error mapping: every error is JSON {"code", "message", "field"} with a stable code."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import DataError, IntegrityError
from starlette.exceptions import HTTPException as StarletteHTTPException

from silkroute.domain.errors import (
    Conflict,
    DomainError,
    IllegalTransition,
    NotFound,
    OutOfStock,
    ValidationError,
)
from silkroute.payments.port import IdempotencyKeyReused, PaymentError
from silkroute.services.accounts import Forbidden, Unauthenticated
from silkroute.services.catalog_import import CatalogImportError

log = logging.getLogger("silkroute.api")


class ErrorBody(BaseModel):
    """What every error response looks like."""

    code: str
    message: str
    field: str | None = None


class RowErrorBody(BaseModel):
    line: int
    field: str
    message: str


class FieldErrorBody(BaseModel):
    field: str
    message: str


class ValidationErrorBody(ErrorBody):
    """A 422: the first problem in code/message/field, every problem in `errors`."""

    errors: list[FieldErrorBody] = []


class ImportErrorBody(ErrorBody):
    """A rejected CSV import: every bad row with its 1-based line number."""

    rows: list[RowErrorBody] = []


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "No token, or an unknown or revoked token."},
    403: {"model": ErrorBody, "description": "The route is for another role (`forbidden`)."},
    422: {"model": ValidationErrorBody, "description": "Bad input; `field` names it."},
}
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorBody, "description": "No such object of yours."}}


def status_of(exc: DomainError) -> int:
    if isinstance(exc, IdempotencyKeyReused):
        return 409
    if isinstance(exc, PaymentError):
        return 402  # declined, or no answer from the provider: nothing was charged
    if isinstance(exc, Unauthenticated):
        return 401
    if isinstance(exc, Forbidden):
        return 403
    if isinstance(exc, NotFound):
        return 404
    if isinstance(exc, OutOfStock | IllegalTransition | Conflict):
        return 409
    if isinstance(exc, ValidationError):
        return 422
    return 409  # any other rule of the domain refused the request as things stand


def field_path(loc: tuple[Any, ...] | list[Any]) -> str:
    """('body', 'lines', 0, 'quantity') → 'lines[0].quantity'; ('query', 'limit') → 'limit'."""
    parts = list(loc)
    if parts and parts[0] in ("body", "query", "path", "header", "cookie"):
        if len(parts) == 1 or (parts[0] == "body" and len(parts) == 2
                               and isinstance(parts[1], int)):
            return "body" if parts[0] == "body" else str(parts[0])
        parts = parts[1:]
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "body"


def _respond(request: Request, status: int, body: dict[str, Any],
             headers: Mapping[str, str] | None = None) -> JSONResponse:
    metrics = getattr(request.app.state, "metrics", None)
    if metrics is not None:
        metrics.errors.labels(code=body["code"], status=str(status)).inc()
    return JSONResponse(body, status_code=status, headers=dict(headers) if headers else None)


async def domain_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DomainError)
    status = status_of(exc)
    body: dict[str, Any] = {"code": exc.code, "message": exc.message, "field": exc.field}
    if isinstance(exc, CatalogImportError):
        body["message"] = exc.message.splitlines()[0]
        body["rows"] = [{"line": e.line, "field": e.field, "message": e.message}
                        for e in exc.errors]
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return _respond(request, status, body, headers)


async def request_validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = []
    for err in exc.errors():
        path = field_path(err.get("loc", ()))
        msg = str(err.get("msg", "invalid value"))
        if err.get("type") == "json_invalid":
            path, msg = "body", "the body is not valid JSON"
        errors.append({"field": path, "message": msg})
    first = errors[0] if errors else {"field": "body", "message": "invalid request"}
    body = {"code": "validation_error", "message": f"{first['field']}: {first['message']}",
            "field": first["field"], "errors": errors}
    return _respond(request, 422, body)


_HTTP_CODES = {400: "bad_request", 401: "unauthenticated", 403: "forbidden",
               404: "not_found", 405: "method_not_allowed", 406: "not_acceptable",
               413: "too_large", 415: "unsupported_media_type"}


async def http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
    if exc.status_code == 404:
        message = f"no such resource: {request.url.path}"
    return _respond(request, exc.status_code, {"code": code, "message": message,
                                               "field": None}, exc.headers)


async def integrity_error(request: Request, exc: Exception) -> JSONResponse:
    # Two requests raced for the same unique thing (e.g. a SKU code): the loser is told so.
    log.warning("integrity error answered as conflict: %s", str(exc).splitlines()[0])
    return _respond(request, 409, {"code": "conflict", "message": "the request conflicts "
                                   "with a concurrent change; retry it", "field": None})


async def data_error(request: Request, exc: Exception) -> JSONResponse:
    log.warning("data error answered as 422: %s", str(exc).splitlines()[0])
    return _respond(request, 422, {"code": "validation_error", "message": "a value is out of "
                                   "range or not storable", "field": None})


async def internal_error(request: Request, exc: Exception) -> JSONResponse:
    """A genuine bug: log everything, tell the client nothing but that it happened."""
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return _respond(request, 500, {"code": "internal_error", "message": "internal error",
                                   "field": None})


def install(app: FastAPI) -> None:
    app.add_exception_handler(DomainError, domain_error)
    app.add_exception_handler(RequestValidationError, request_validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(IntegrityError, integrity_error)
    app.add_exception_handler(DataError, data_error)
    app.add_exception_handler(Exception, internal_error)
