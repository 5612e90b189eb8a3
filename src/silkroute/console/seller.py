"""Seller centre pages: overview charts, products and CSV import, stock, orders to ship."""

from __future__ import annotations

from collections import Counter
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from fastapi.responses import Response

from silkroute.console import data, svg
from silkroute.console.store import Csrf
from silkroute.console.web import check_csrf, need, page, render, see_other, uows
from silkroute.domain.errors import ValidationError
from silkroute.services import listings, payments
from silkroute.services.catalog_import import CatalogImportError, import_catalog

try:  # carrier parcels and tracking, where this build has the delivery service
    from silkroute.services import delivery
except ImportError:  # pragma: no cover
    delivery = None  # type: ignore[assignment]

router = APIRouter(prefix="/seller", include_in_schema=False)
MAX_CSV_BYTES = 5 * 1024 * 1024
TO_SHIP = ("paid", "ready_to_ship")


def _seller(request: Request) -> int:
    who = need(request, "seller")
    assert who.seller_id is not None
    return who.seller_id


@router.get("")
@page
def overview(request: Request) -> Response:
    seller_id = _seller(request)
    shop = listings.shop(uows(request)(), seller_id)
    orders = data.all_orders(uows(request), seller_id=seller_id, limit=2000)
    states = Counter(o["state"] for o in orders)
    sales = data.per_day(orders)
    delivered = states.get("delivered", 0) + states.get("completed", 0)
    shipped = states.get("shipped", 0)
    perf = [(s.replace("_", " "), float(states.get(s, 0))) for s in
            ("reserved", "paid", "ready_to_ship", "shipped", "delivered", "completed",
             "cancelled")]
    return render(request, "seller.html", {
        "shop": shop, "tab": "overview", "orders_total": len(orders),
        "to_ship": sum(states.get(s, 0) for s in TO_SHIP), "in_transit": shipped,
        "delivered": delivered,
        "sales_chart": svg.bars(sales, f"Sales per day ({shop['currency']}, items)"),
        "perf_chart": svg.bars(perf, "Orders by delivery state"),
        "sales": sales, "perf": perf})


@router.get("/products")
@page
def products(request: Request, offset: Annotated[int, Query(ge=0, le=10**7)] = 0) -> Response:
    seller_id = _seller(request)
    return _products_page(request, seller_id, offset)


def _products_page(request: Request, seller_id: int, offset: int = 0, status: int = 200,
                   **extra: Any) -> Response:
    listing = listings.products(uows(request)(), seller_id, limit=20, offset=offset)
    shop = listings.shop(uows(request)(), seller_id)
    locations = listings.locations(uows(request)(), seller_id)
    return render(request, "seller_products.html", {
        "shop": shop, "tab": "products", "products": listing, "offset": offset,
        "locations": locations, **extra}, status=status)


@router.post("/products/import")
@page
def import_csv(request: Request, *, csrf: Csrf = "",
               csv_text: Annotated[str, Form(max_length=MAX_CSV_BYTES)] = "",
               csv_file: Annotated[UploadFile | None, File()] = None) -> Response:
    check_csrf(request, csrf)
    seller_id = _seller(request)
    text = csv_text
    if csv_file is not None and csv_file.filename:
        raw = csv_file.file.read(MAX_CSV_BYTES + 1)
        if len(raw) > MAX_CSV_BYTES:
            raise ValidationError(f"csv_file: larger than {MAX_CSV_BYTES} bytes",
                                  field="csv_file")
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise ValidationError("csv_file: not UTF-8 text", field="csv_file") from None
    if not text.strip():
        raise ValidationError("csv: paste CSV text or choose a file", field="csv")
    if "\x00" in text:
        raise ValidationError("csv: contains a NUL character", field="csv")
    try:
        summary = import_catalog(uows(request)(), seller_id, text)
    except CatalogImportError as exc:
        return _products_page(request, seller_id, import_errors=exc.errors,
                              bad_rows=exc.bad_rows, csv_text=text)
    return _products_page(request, seller_id, imported=summary)


@router.get("/stock")
@page
def stock(request: Request) -> Response:
    seller_id = _seller(request)
    shop = listings.shop(uows(request)(), seller_id)
    locations = listings.locations(uows(request)(), seller_id)
    rows = listings.stock(uows(request)(), seller_id)
    by_loc: dict[int, list[dict[str, Any]]] = {}
    for r in rows:
        by_loc.setdefault(r["location_id"], []).append(r)
    return render(request, "seller_stock.html", {"shop": shop, "tab": "stock",
                                                 "locations": locations, "by_loc": by_loc})


@router.post("/stock")
@page
def set_stock(request: Request, *, csrf: Csrf = "", sku: Annotated[str, Form(max_length=64)],
              location_id: Annotated[int, Form(ge=1)],
              on_hand: Annotated[int, Form(ge=0, le=10**9)]) -> Response:
    check_csrf(request, csrf)
    seller_id = _seller(request)
    listings.set_stock_of_seller(uows(request), seller_id, sku, location_id, on_hand)
    return see_other("/seller/stock")


@router.get("/orders")
@page
def orders(request: Request, state: Annotated[str, Query(pattern="^[a-z_]{1,20}$")] = "paid",
           offset: Annotated[int, Query(ge=0, le=10**7)] = 0,
           shipped: int | None = None) -> Response:
    seller_id = _seller(request)
    shop = listings.shop(uows(request)(), seller_id)
    listing = listings.list_orders(uows(request)(), seller_id=seller_id, state=state,
                                   limit=20, offset=offset)
    return render(request, "seller_orders.html", {
        "shop": shop, "tab": "orders", "orders": listing, "state": state, "offset": offset,
        "shipped": shipped, "states": ("reserved", "paid", "ready_to_ship", "shipped",
                                       "delivered", "completed", "cancelled")})


@router.post("/orders/{order_id}/hand-over")
@page
def hand_over(request: Request, *, order_id: int, csrf: Csrf = "") -> Response:
    """Hand an order over to its carrier (the stand-in shipping step of the services)."""
    check_csrf(request, csrf)
    seller_id = _seller(request)
    listings.order_of_seller(uows(request)(), seller_id, order_id)  # 404 if not ours
    if delivery is not None:
        delivery.hand_over(uows(request)(), seller_id, order_id)
    else:
        payments.ship(uows(request)(), order_id)
    return see_other(f"/seller/orders?state=paid&shipped={order_id}")
