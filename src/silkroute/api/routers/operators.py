"""Operator routes, read-mostly: every order, and a summary of the market."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from silkroute.api.auth import Operator, ReadUows
from silkroute.api.errors import ERROR_RESPONSES, ErrorBody
from silkroute.api.routers.common import (
    Limit,
    Offset,
    OrderIdPath,
    StateFilter,
    order_out,
    page_out,
)
from silkroute.api.schemas import MAX_INT, MarketSummary, OrderOut, OrderSummary, PageOut
from silkroute.services import listings
from silkroute.services.queries import get_order

router = APIRouter(prefix="/api/v1/operator", tags=["operators"], responses=ERROR_RESPONSES)
TenantFilter = Annotated[int | None, Query(ge=1, le=MAX_INT)]


@router.get("/orders", response_model=PageOut[OrderSummary],
            summary="All orders, newest first, by state, buyer or seller")
def all_orders(principal: Operator, uows: ReadUows, state: StateFilter = None,
               buyer_id: TenantFilter = None, seller_id: TenantFilter = None,
               limit: Limit = 20, offset: Offset = 0) -> dict[str, object]:
    return page_out(listings.list_orders(uows(), buyer_id=buyer_id, seller_id=seller_id,
                                         state=state, limit=limit, offset=offset))


@router.get("/orders/{order_id}", response_model=OrderOut,
            responses={404: {"model": ErrorBody, "description": "No such order."}},
            summary="Any order")
def any_order(principal: Operator, uows: ReadUows, order_id: OrderIdPath) -> OrderOut:
    return order_out(get_order(uows(), order_id))


@router.get("/summary", response_model=MarketSummary,
            summary="How many buyers, sellers, products, orders (by state), accounts (by role)")
def summary(principal: Operator, uows: ReadUows) -> dict[str, object]:
    return listings.market_summary(uows())
