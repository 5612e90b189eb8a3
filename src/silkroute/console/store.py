"""Storefront pages: sign-in, search and browse, product, buy now, cart, checkout, orders."""

from __future__ import annotations

import json
import secrets
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import Response

from silkroute.console import data, svg
from silkroute.console.web import (
    CSRF_FIELD,
    check_csrf,
    clear_session,
    need,
    page,
    principal,
    render,
    see_other,
    set_session,
    uows,
)
from silkroute.domain.errors import DomainError, ValidationError
from silkroute.domain.money import MINOR_UNITS
from silkroute.services import listings, purchases
from silkroute.services.accounts import Unauthenticated, authenticate
from silkroute.services.checkout import CartLine
from silkroute.services.storefront import get_sku, search_catalogue
from silkroute.store.read_queries import SORTS, SkuFilter

try:  # carrier parcels and their events, where this build has the delivery service
    from silkroute.services import delivery
except ImportError:  # pragma: no cover
    delivery = None  # type: ignore[assignment]

router = APIRouter(include_in_schema=False)
CART_COOKIE = "sr_cart"
PAGE_SIZE = 12
HOME = {"buyer": "/", "seller": "/seller", "operator": "/ops"}
Csrf = Annotated[str, Form(alias=CSRF_FIELD)]


# ------------------------------------------------------------------------------ sign-in
def _safe_next(target: str | None, role: str) -> str:
    if target and target.startswith("/") and not target.startswith("//"):
        return target
    return HOME.get(role, "/")


@router.get("/signin")
@page
def signin_form(request: Request, next: str | None = None, role: str | None = None
                ) -> Response:
    return render(request, "signin.html", {"next": next or "", "want": role})


@router.post("/signin")
@page
def signin(request: Request, *, token: Annotated[str, Form(max_length=300)], csrf: Csrf = "",
           next: Annotated[str, Form()] = "") -> Response:
    check_csrf(request, csrf)
    try:
        who = authenticate(uows(request)(), token.strip())
    except Unauthenticated as exc:
        return render(request, "signin.html", {"next": next, "error": exc.message,
                                                "want": None}, status=401)
    response = see_other(_safe_next(next, who.role))
    set_session(request, response, token.strip())
    return response


@router.post("/signout")
@page
def signout(request: Request, *, csrf: Csrf = "") -> Response:
    check_csrf(request, csrf)
    response = see_other("/signin")
    clear_session(response)
    return response


# ------------------------------------------------------------------------------- browse
def _minor(value: str | None, currency: str) -> int | None:
    if value is None or not value.strip():
        return None
    try:
        number = float(value)
    except ValueError:
        raise ValidationError(f"price: {value!r} is not a number", field="price") from None
    if number < 0:
        raise ValidationError("price: must be ≥ 0", field="price")
    return int(round(number * 10 ** MINOR_UNITS.get(currency, 0)))


@router.get("/")
@page
def storefront(request: Request, q: Annotated[str, Query(max_length=200)] = "",
               category: Annotated[str, Query(max_length=100)] = "",
               min_price: str | None = None, max_price: str | None = None,
               seller: str | None = None, sort: str = "newest",
               currency: Annotated[str, Query(max_length=3)] = "KRW",
               offset: Annotated[int, Query(ge=0, le=10**7)] = 0) -> Response:
    currency = (currency or "KRW").upper()
    seller_id = int(seller) if seller and seller.isdigit() else None
    if sort not in SORTS:
        sort = "newest"
    filters = SkuFilter(q.strip() or None, category.strip() or None,
                        _minor(min_price, currency), _minor(max_price, currency),
                        currency, seller_id, sort)
    result = search_catalogue(uows(request)(), filters, limit=PAGE_SIZE, offset=offset)
    params = {"q": q, "category": category, "min_price": min_price or "",
              "max_price": max_price or "", "seller": seller or "", "sort": sort,
              "currency": currency}
    base = {k: v for k, v in params.items() if v}

    def link(off: int) -> str:
        return "/?" + urlencode({**base, "offset": off})

    prev_link = link(max(0, offset - PAGE_SIZE)) if offset > 0 else None
    next_link = link(result.next_offset) if result.next_offset is not None else None
    return render(request, "store_index.html", {
        "items": result.items, "total": result.total, "params": params, "sorts": SORTS,
        "prev": prev_link, "next": next_link, "offset": offset,
        "categories": ("fashion", "beauty", "electronics", "home", "food", "sports", "books",
                       "toys")})


def _buyer_defaults(request: Request, buyer_id: int) -> dict[str, Any]:
    addresses = listings.addresses(uows(request)(), buyer_id)
    cards = purchases.payment_methods(uows(request)(), buyer_id)
    return {"address": next((a for a in addresses if a["is_default"]), None),
            "addresses": addresses,
            "card": next((c for c in cards if c["is_default"]), None)}


@router.get("/products/{sku}")
@page
def product(request: Request, sku: str) -> Response:
    item = get_sku(uows(request)(), sku)
    who = principal(request)
    ctx: dict[str, Any] = {"item": item, "idempotency_key": secrets.token_urlsafe(18)}
    if who is not None and who.role == "buyer" and who.buyer_id is not None:
        ctx.update(_buyer_defaults(request, who.buyer_id))
        ctx["promise"] = data.promise(uows(request), who.buyer_id, sku)
    return render(request, "product.html", ctx)


@router.post("/buy-now")
@page
def buy_now(request: Request, *, csrf: Csrf = "", sku: Annotated[str, Form(max_length=64)],
            idempotency_key: Annotated[str, Form(min_length=8, max_length=200)],
            quantity: Annotated[int, Form(ge=1, le=99)] = 1) -> Response:
    check_csrf(request, csrf)
    who = need(request, "buyer")
    assert who.buyer_id is not None
    res = purchases.buy_now(uows(request)(), who.buyer_id, sku, quantity,
                            f"console:{idempotency_key}")
    return see_other(f"/orders/{res.order_id}?bought=1")


# --------------------------------------------------------------------------------- cart
def _cart(request: Request) -> dict[str, int]:
    try:
        raw = json.loads(request.cookies.get(CART_COOKIE) or "{}")
    except ValueError:
        return {}
    if not isinstance(raw, dict):
        return {}
    return {str(k)[:64]: int(v) for k, v in list(raw.items())[:50]
            if isinstance(v, int) and 0 < v < 100}


def _with_cart(request: Request, response: Response, cart: dict[str, int]) -> Response:
    response.set_cookie(CART_COOKIE, json.dumps(cart, separators=(",", ":")), httponly=True,
                        samesite="lax", secure=request.url.scheme == "https", path="/",
                        max_age=7 * 86400)
    return response


@router.post("/cart/add")
@page
def cart_add(request: Request, *, csrf: Csrf = "", sku: Annotated[str, Form(max_length=64)],
             quantity: Annotated[int, Form(ge=1, le=99)] = 1) -> Response:
    check_csrf(request, csrf)
    get_sku(uows(request)(), sku)  # 404 for a SKU not on sale
    cart = _cart(request)
    cart[sku] = min(99, cart.get(sku, 0) + quantity)
    return _with_cart(request, see_other("/cart?added=" + sku), cart)


@router.post("/cart/update")
@page
def cart_update(request: Request, *, csrf: Csrf = "", sku: Annotated[str, Form(max_length=64)],
                quantity: Annotated[int, Form(ge=0, le=99)] = 0) -> Response:
    check_csrf(request, csrf)
    cart = _cart(request)
    if quantity == 0:
        cart.pop(sku, None)
    else:
        cart[sku] = quantity
    return _with_cart(request, see_other("/cart"), cart)


@router.get("/cart")
@page
def cart_page(request: Request, added: str | None = None) -> Response:
    cart = _cart(request)
    lines: list[dict[str, Any]] = []
    by_seller: dict[int, list[dict[str, Any]]] = {}
    for code, qty in cart.items():
        try:
            item = get_sku(uows(request)(), code)
        except DomainError:
            continue
        line = {"item": item, "quantity": qty, "amount": item["price"]["amount"] * qty}
        lines.append(line)
        by_seller.setdefault(item["seller_id"], []).append(line)
    who = principal(request)
    ctx: dict[str, Any] = {"lines": lines, "by_seller": by_seller, "added": added}
    if who is not None and who.role == "buyer" and who.buyer_id is not None:
        defaults = _buyer_defaults(request, who.buyer_id)
        ctx.update(defaults)
        addr = defaults["address"]
        near = (float(addr["latitude"]), float(addr["longitude"])) if addr else None
        ctx["pickups"] = data.pickup_points(uows(request)(), near)
    return render(request, "cart.html", ctx)


@router.post("/checkout")
@page
def checkout(request: Request, *, csrf: Csrf = "",
             delivery: Annotated[str, Form(pattern="^(home|pickup)$")] = "home",
             address_id: Annotated[int | None, Form(ge=1)] = None,
             pickup_location_id: Annotated[str, Form()] = "") -> Response:
    check_csrf(request, csrf)
    who = need(request, "buyer")
    assert who.buyer_id is not None
    cart = _cart(request)
    if not cart:
        raise ValidationError("lines: the cart is empty", field="lines")
    pickup = None
    if delivery == "pickup":
        if not pickup_location_id.isdigit():
            raise ValidationError("pickup_location_id: choose a pickup point",
                                  field="pickup_location_id")
        pickup = int(pickup_location_id)
    res = purchases.checkout(uows(request)(), who.buyer_id,
                             [CartLine(k, v) for k, v in cart.items()], address_id=address_id,
                             service="pickup" if pickup else "standard",
                             pickup_location_id=pickup)
    purchases.pay_own_checkout(uows(request), who.buyer_id, res.checkout_id, None)
    ids = ",".join(str(o.order_id) for o in res.orders)
    response = see_other(f"/orders?placed={ids}")
    response.delete_cookie(CART_COOKIE, path="/")
    return response


# ------------------------------------------------------------------------------- orders
@router.get("/orders")
@page
def my_orders(request: Request, placed: str | None = None,
              offset: Annotated[int, Query(ge=0, le=10**7)] = 0) -> Response:
    who = need(request, "buyer")
    assert who.buyer_id is not None
    orders = listings.list_orders(uows(request)(), buyer_id=who.buyer_id, limit=20,
                                  offset=offset)
    return render(request, "orders.html", {"orders": orders, "placed": placed,
                                           "offset": offset})


@router.get("/orders/{order_id}")
@page
def my_order(request: Request, order_id: int, bought: int = 0) -> Response:
    who = need(request, "buyer")
    assert who.buyer_id is not None
    view = listings.order_of_buyer(uows(request)(), who.buyer_id, order_id)
    way = data.order_way(uows(request), view)
    parcels = (delivery.tracking(uows(request)(), order_id, buyer_id=who.buyer_id)["parcels"]
               if delivery is not None else [])
    return render(request, "order.html", {"parcels": parcels,
        "order": view, "bought": bought, "steps": data.timeline(view), "way": way,
        "map": svg.way_map(way["sources"], way["dest"],
                           f"Map: order {view.id} from its shipping location to "
                           f"{way['dest']['name']}")})
