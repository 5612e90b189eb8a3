"""Console plumbing: session cookie, CSRF double-submit token, templates and HTML errors."""

from __future__ import annotations

import functools
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from silkroute.api.errors import status_of
from silkroute.domain.errors import DomainError
from silkroute.domain.money import Money
from silkroute.services.accounts import Principal, Unauthenticated, authenticate
from silkroute.store.uow import UnitOfWork

SESSION_COOKIE = "sr_session"
CSRF_COOKIE = "sr_csrf"
CSRF_FIELD = "csrf_token"
SESSION_SECONDS = 8 * 3600
HERE = Path(__file__).parent
templates = Jinja2Templates(directory=str(HERE / "templates"))
F = TypeVar("F", bound=Callable[..., Any])


def money(amount: int | float | None, currency: str | None) -> str:
    if amount is None or not currency:
        return "–"
    try:
        return Money(int(amount), currency).format()
    except (DomainError, ValueError, TypeError):
        return f"{amount} {currency}"


templates.env.filters["money"] = money


class Redirect(Exception):
    """Leave the page for another (sign-in, or after a change: see other)."""

    def __init__(self, url: str):
        super().__init__(url)
        self.url = url


class CsrfRejected(DomainError):
    code = "csrf_rejected"


def uows(request: Request) -> Callable[[], UnitOfWork]:
    engine = request.app.state.engine
    return lambda: UnitOfWork(engine)


def principal(request: Request) -> Principal | None:
    """The account of the session cookie (an API token), or None when signed out."""
    if hasattr(request.state, "principal"):
        cached: Principal | None = request.state.principal
        return cached
    token = request.cookies.get(SESSION_COOKIE)
    who: Principal | None = None
    if token:
        try:
            who = authenticate(uows(request)(), token)
        except Unauthenticated:
            who = None
    request.state.principal = who
    return who


def need(request: Request, role: str) -> Principal:
    """The signed-in account when it has this role; else off to the sign-in page."""
    who = principal(request)
    if who is None or who.role != role:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise Redirect(f"/signin?role={role}&next={quote(target, safe='')}")
    return who


def csrf_value(request: Request) -> str:
    """This browser's CSRF token (made on first use, set as a cookie by `render`)."""
    value = getattr(request.state, "csrf", None)
    if value is None:
        value = request.cookies.get(CSRF_COOKIE) or secrets.token_urlsafe(32)
        request.state.csrf = value
    return str(value)


def check_csrf(request: Request, submitted: str | None) -> None:
    """Double submit: the form's hidden token must equal the cookie's (403 otherwise)."""
    cookie = request.cookies.get(CSRF_COOKIE)
    if not cookie or not submitted or not secrets.compare_digest(cookie, submitted):
        raise CsrfRejected("the form is stale or did not come from this site; reload the "
                           "page and try again", field=CSRF_FIELD)


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


def set_csrf_cookie(request: Request, response: Response) -> None:
    if request.cookies.get(CSRF_COOKIE) != csrf_value(request):
        response.set_cookie(CSRF_COOKIE, csrf_value(request), httponly=True, samesite="strict",
                            secure=_secure(request), path="/")


def set_session(request: Request, response: Response, token: str) -> None:
    response.set_cookie(SESSION_COOKIE, token, max_age=SESSION_SECONDS, httponly=True,
                        samesite="lax", secure=_secure(request), path="/")
    # A new session gets a new CSRF token too.
    fresh = secrets.token_urlsafe(32)
    response.set_cookie(CSRF_COOKIE, fresh, httponly=True, samesite="strict",
                        secure=_secure(request), path="/")


def clear_session(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/")
    response.delete_cookie(CSRF_COOKIE, path="/")


def render(request: Request, name: str, context: dict[str, Any] | None = None,
           status: int = 200) -> HTMLResponse:
    ctx = {"me": principal(request), "csrf": csrf_value(request), "path": request.url.path,
           **(context or {})}
    response = templates.TemplateResponse(request, name, ctx, status_code=status)
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Content-Security-Policy"] = (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'")
    set_csrf_cookie(request, response)
    return response


def see_other(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def page(func: F) -> F:
    """Turn domain errors into an HTML error page with the API's status; follow Redirects."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        request: Request = kwargs["request"]
        try:
            return func(*args, **kwargs)
        except Redirect as r:
            return see_other(r.url)
        except CsrfRejected as exc:
            return render(request, "error.html", {"title": "Form rejected", "error": exc},
                          status=403)
        except DomainError as exc:
            status = status_of(exc)
            title = {404: "Not found", 401: "Please sign in", 403: "Not allowed"}.get(
                status, "That did not work")
            return render(request, "error.html", {"title": title, "error": exc}, status=status)

    return wrapper  # type: ignore[return-value]
