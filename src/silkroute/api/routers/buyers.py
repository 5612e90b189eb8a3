"""Buyer routes: register, addresses, catalogue, checkout, own orders and cancelling them."""

from __future__ import annotations

import time
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Request

from silkroute.api.auth import Buyer, ReadUows, Uows, buyer_id_of
from silkroute.api.errors import ERROR_RESPONSES, NOT_FOUND, ErrorBody
from silkroute.api.routers.common import (
    Limit,
    Offset,
    OrderIdPath,
    StateFilter,
    checkout_out,
    order_out,
    page_out,
    registered,
)
from silkroute.api.schemas import (
    MAX_AMOUNT,
    MAX_INT,
    NO_NUL,
    AddressIn,
    AddressOut,
    BuyerRegistration,
    CancelledOut,
    CheckoutIn,
    CheckoutOut,
    Created,
    CurrencyCode,
    OrderOut,
    OrderSummary,
    PageOut,
    Registered,
    SkuCode,
    SkuItem,
)
from silkroute.services import listings
from silkroute.services.accounts import register_buyer_account
from silkroute.services.buyers import add_address
from silkroute.services.checkout import CartLine
from silkroute.services.purchases import checkout
from silkroute.services.storefront import get_sku, search_catalogue
from silkroute.store.read_queries import SkuFilter

router = APIRouter(tags=["buyers"], responses=ERROR_RESPONSES)


@router.post("/api/v1/buyers", response_model=Registered, status_code=201,
             summary="Register as a buyer: an account and its first API token")
def register(body: BuyerRegistration, uows: Uows) -> Registered:
    a = body.address
    res = register_buyer_account(
        uows(), body.name, city=a.city if a else None, latitude=a.latitude if a else None,
        longitude=a.longitude if a else None, line1=a.line1 if a else "",
        country=a.country.upper() if a else "KR")
    return registered(res)


# ---------------------------------------------------------------------------- catalogue
@router.get("/api/v1/catalog/skus", response_model=PageOut[SkuItem], tags=["catalogue"],
            summary="Browse and search SKUs on sale (no token needed)")
def browse(
    uows: ReadUows,
    q: Annotated[str | None, Query(max_length=200, pattern=NO_NUL,
                                   description="Words in the title, SKU code or category.")]
    = None,
    category: Annotated[str | None, Query(max_length=100, pattern=NO_NUL)] = None,
    min_price: Annotated[int | None, Query(ge=0, le=MAX_AMOUNT,
                                           description="Minor units, inclusive.")] = None,
    max_price: Annotated[int | None, Query(ge=0, le=MAX_AMOUNT)] = None,
    currency: Annotated[CurrencyCode | None, Query()] = None,
    seller_id: Annotated[int | None, Query(ge=1, le=MAX_INT)] = None,
    sort: Literal["newest", "price_asc", "price_desc", "title"] = "newest",
    limit: Limit = 20,
    offset: Offset = 0,
) -> dict[str, object]:
    filters = SkuFilter(q or None, category or None, min_price, max_price,
                        currency.upper() if currency else None, seller_id, sort)
    return page_out(search_catalogue(uows(), filters, limit=limit, offset=offset))


@router.get("/api/v1/catalog/skus/{sku}", response_model=SkuItem, tags=["catalogue"],
            responses=NOT_FOUND, summary="One SKU on sale")
def sku_detail(uows: ReadUows, sku: Annotated[SkuCode, Path()]) -> dict[str, object]:
    return get_sku(uows(), sku)


# ---------------------------------------------------------------------------- addresses
@router.get("/api/v1/buyer/addresses", response_model=list[AddressOut],
            summary="My delivery addresses")
def my_addresses(principal: Buyer, uows: ReadUows) -> list[dict[str, object]]:
    return listings.addresses(uows(), buyer_id_of(principal))


@router.post("/api/v1/buyer/addresses", response_model=Created, status_code=201,
             summary="Add a delivery address")
def new_address(principal: Buyer, uows: Uows, body: AddressIn) -> Created:
    address_id = add_address(uows(), buyer_id_of(principal), city=body.city,
                             latitude=body.latitude, longitude=body.longitude,
                             line1=body.line1, default=body.default,
                             country=body.country.upper())
    return Created(id=address_id)


# ------------------------------------------------------------------------------- orders
@router.post("/api/v1/buyer/checkouts", response_model=CheckoutOut, status_code=201,
             responses={**NOT_FOUND, 409: {"model": ErrorBody,
                                           "description": "Out of stock (`out_of_stock`)."}},
             summary="Check out a list of lines: one reserved order per seller")
def new_checkout(principal: Buyer, uows: Uows, body: CheckoutIn, request: Request
                 ) -> CheckoutOut:
    metrics = request.app.state.metrics
    started = time.perf_counter()
    try:
        res = checkout(uows(), buyer_id_of(principal),
                       [CartLine(ln.sku, ln.quantity) for ln in body.lines],
                       address_id=body.address_id, service=body.service,
                       pickup_location_id=body.pickup_location_id)
    finally:
        metrics.checkout_seconds.observe(time.perf_counter() - started)
    metrics.orders_created.inc(len(res.orders))
    return checkout_out(res)


@router.get("/api/v1/buyer/orders", response_model=PageOut[OrderSummary],
            summary="My orders, newest first")
def my_orders(principal: Buyer, uows: ReadUows, state: StateFilter = None, limit: Limit = 20,
              offset: Offset = 0) -> dict[str, object]:
    return page_out(listings.list_orders(uows(), buyer_id=buyer_id_of(principal), state=state,
                                         limit=limit, offset=offset))


@router.get("/api/v1/buyer/orders/{order_id}", response_model=OrderOut, responses=NOT_FOUND,
            summary="One of my orders with its lines and history")
def my_order(principal: Buyer, uows: ReadUows, order_id: OrderIdPath) -> OrderOut:
    return order_out(listings.order_of_buyer(uows(), buyer_id_of(principal), order_id))


@router.post("/api/v1/buyer/orders/{order_id}/cancel", response_model=CancelledOut,
             responses={**NOT_FOUND, 409: {"model": ErrorBody, "description":
                                           "The order can no longer be cancelled."}},
             summary="Cancel one of my unpaid orders; its stock is released")
def cancel_my_order(principal: Buyer, uows: Uows, order_id: OrderIdPath) -> CancelledOut:
    res = listings.cancel_order_of_buyer(uows, buyer_id_of(principal), order_id)
    return CancelledOut(order_id=res.order_id, released_units=res.released_units)
