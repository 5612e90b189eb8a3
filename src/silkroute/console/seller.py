"""Seller centre pages: overview charts, products and CSV import, stock, orders to ship,
refunds to decide, the ledger statement and payouts."""

from __future__ import annotations

from collections import Counter
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Path, Query, Request, UploadFile
from fastapi.responses import Response

from silkroute.api.errors import status_of
from silkroute.console import data, svg
from silkroute.console.store import Csrf
from silkroute.console.web import check_csrf, need, page, render, see_other, uows
from silkroute.domain.errors import DomainError, NotFound, ValidationError
from silkroute.services import delivery, listings
from silkroute.services.catalog_import import CatalogImportError, import_catalog

router = APIRouter(prefix="/seller", include_in_schema=False)
MAX_CSV_BYTES = 5 * 1024 * 1024
TO_SHIP = ("paid", "ready_to_ship")
PAGE = 20
REFUND_STATES = ("pending", "approved", "rejected")
# How the ledger's transaction kinds read on a seller's payable account.
POSTING_LABELS = {"release": "Sale released from escrow", "refund": "Refund clawed back",
                  "payout": "Payout to your bank", "capture": "Payment captured",
                  "membership_fee": "Membership fee"}


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
    pending = delivery.refund_requests(uows(request)(), seller_id, "pending", limit=1).total
    balances = delivery.statement(uows(request)(), seller_id, limit=1)["balances"]
    payouts = delivery.payouts_of_seller(uows(request)(), seller_id, limit=1)
    return render(request, "seller.html", {
        "refunds_pending": pending, "balances": balances, "payouts_total": payouts.total,
        "last_payout": payouts.items[0] if payouts.items else None,
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
    delivery.hand_over(uows(request)(), seller_id, order_id)
    return see_other(f"/seller/orders?state=paid&shipped={order_id}")


# ------------------------------------------------------------------------------ refunds
@router.get("/refunds")
@page
def refunds(request: Request,
            state: Annotated[str, Query(pattern="^(pending|approved|rejected|all)$")] = "pending",
            offset: Annotated[int, Query(ge=0, le=10**7)] = 0,
            decided: Annotated[int | None, Query(ge=1)] = None,
            outcome: Annotated[str | None, Query(pattern="^(approved|rejected)$")] = None,
            order: Annotated[int | None, Query(ge=1)] = None) -> Response:
    seller_id = _seller(request)
    done = ({"id": decided, "outcome": outcome, "order_id": order}
            if decided is not None and outcome is not None else None)
    return _refunds_page(request, seller_id, state, offset, done=done)


def _refunds_page(request: Request, seller_id: int, state: str = "pending", offset: int = 0,
                  status: int = 200, **extra: Any) -> Response:
    """Buyers' refund requests on this shop's orders, each with its order's total."""
    shop = listings.shop(uows(request)(), seller_id)
    listing = delivery.refund_requests(uows(request)(), seller_id,
                                       None if state == "all" else state, PAGE, offset)
    rows = []
    for r in listing.items:
        view = listings.order_of_seller(uows(request)(), seller_id, r["order_id"])
        rows.append({**r, "currency": view.currency, "order_total": view.total.amount,
                     "order_state": view.state})
    return render(request, "seller_refunds.html", {
        "shop": shop, "tab": "refunds", "requests": listing, "rows": rows, "state": state,
        "states": (*REFUND_STATES, "all"), "offset": offset, **extra}, status=status)


@router.post("/refunds/{request_id}/{decision}")
@page
def decide(request: Request, *, request_id: Annotated[int, Path(ge=1, le=2**31 - 1)],
           decision: Annotated[str, Path(pattern="^(approve|reject)$")],
           csrf: Csrf = "") -> Response:
    """Approve (the buyer is refunded) or reject a pending refund request of this shop."""
    check_csrf(request, csrf)
    seller_id = _seller(request)
    try:
        done = delivery.decide_refund(uows(request), seller_id, request_id,
                                      approve=decision == "approve")
    except NotFound:
        raise  # another shop's request, or none: the 404 page, as in the API
    except DomainError as exc:  # already decided, refund refused: say so on the list
        return _refunds_page(request, seller_id, status=status_of(exc), error=exc,
                             failed={"id": request_id, "decision": decision})
    return see_other(f"/seller/refunds?decided={request_id}&outcome={done['state']}"
                     f"&order={done['order_id']}")


# ----------------------------------------------------------------- statement and payouts
@router.get("/statement")
@page
def statement(request: Request, offset: Annotated[int, Query(ge=0, le=10**7)] = 0
              ) -> Response:
    seller_id = _seller(request)
    shop = listings.shop(uows(request)(), seller_id)
    st = delivery.statement(uows(request)(), seller_id, PAGE, offset)
    return render(request, "seller_statement.html", {
        "shop": shop, "tab": "statement", "statement": st, "offset": offset,
        "labels": POSTING_LABELS})


@router.get("/payouts")
@page
def payouts(request: Request, offset: Annotated[int, Query(ge=0, le=10**7)] = 0) -> Response:
    seller_id = _seller(request)
    shop = listings.shop(uows(request)(), seller_id)
    listing = delivery.payouts_of_seller(uows(request)(), seller_id, PAGE, offset)
    return render(request, "seller_payouts.html", {
        "shop": shop, "tab": "payouts", "payouts": listing, "offset": offset})
