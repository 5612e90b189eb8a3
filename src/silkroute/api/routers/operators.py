"""Operator routes, read-mostly: every order, a summary of the market, the saved network,
fees and commission rates (the one write: a category's commission rate)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query

from silkroute.api.auth import Operator, ReadUows, Uows
from silkroute.api.errors import ERROR_RESPONSES, ErrorBody
from silkroute.api.operator_schemas import (
    CommissionRateIn,
    CommissionRateOut,
    CommissionRatesOut,
    FeesOut,
    NetworkLocationOut,
    NetworkOut,
    ZoneOut,
)
from silkroute.api.routers.common import (
    Limit,
    Offset,
    OrderIdPath,
    StateFilter,
    order_out,
    page_out,
)
from silkroute.api.schemas import MAX_INT, MarketSummary, OrderOut, OrderSummary, PageOut
from silkroute.services import fees, listings, network
from silkroute.services.queries import get_order

router = APIRouter(prefix="/api/v1/operator", tags=["operators"], responses=ERROR_RESPONSES)
TenantFilter = Annotated[int | None, Query(ge=1, le=MAX_INT)]
KindFilter = Annotated[
    Literal["warehouse", "store", "pickup_point", "fulfilment_centre"] | None,
    Query(description="Only locations of this kind.")]
ZoneFilter = Annotated[int | None, Query(ge=1, le=MAX_INT,
                                         description="Only locations in this zone.")]
CountryFilter = Annotated[str | None, Query(pattern=r"^[A-Za-z]{2}$",
                                            description="Only zones of this country.")]
CategoryPath = Annotated[str, Path(min_length=1, max_length=fees.MAX_CATEGORY,
                                   pattern=r"^[^\s\x00]([^\x00]*[^\s\x00])?$",
                                   description="A product category, e.g. `tea`.")]


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


# ------------------------------------------------------------------------------ network
@router.get("/network", response_model=NetworkOut,
            summary="The saved network: where it came from, counts, the router's index")
def network_summary(principal: Operator, uows: ReadUows) -> dict[str, object]:
    return network.network_summary(uows())


@router.get("/network/zones", response_model=PageOut[ZoneOut],
            summary="Zones (cities) by id, with their locations and carriers counted")
def network_zones(principal: Operator, uows: ReadUows, country: CountryFilter = None,
                  limit: Limit = 20, offset: Offset = 0) -> dict[str, object]:
    return page_out(network.list_zones(uows(), country=country, limit=limit, offset=offset))


@router.get("/network/locations", response_model=PageOut[NetworkLocationOut],
            summary="Warehouses, stores, pickup points and fulfilment centres by id")
def network_locations(principal: Operator, uows: ReadUows, kind: KindFilter = None,
                      zone_id: ZoneFilter = None, limit: Limit = 20, offset: Offset = 0
                      ) -> dict[str, object]:
    return page_out(network.list_locations(uows(), kind=kind, zone_id=zone_id, limit=limit,
                                           offset=offset))


# ---------------------------------------------------------------- fees and commission
@router.get("/fees", response_model=FeesOut,
            summary="The platform's fee settings: commission, membership, job periods")
def fee_settings(principal: Operator) -> FeesOut:
    settings = fees.fee_settings()
    return FeesOut(**{**settings, "default_commission_rate": fees.rate_text(
        settings["default_commission_rate"])})


@router.get("/commission-rates", response_model=CommissionRatesOut,
            summary="Commission rates: the default and the rate of each category set")
def commission_rates(principal: Operator, uows: ReadUows) -> CommissionRatesOut:
    rates = fees.commission_rates(uows())
    return CommissionRatesOut(default=fees.rate_text(rates["default"]), by_category={
        k: fees.rate_text(v) for k, v in rates["by_category"].items()})


@router.put("/commission-rates/{category}", response_model=CommissionRateOut,
            summary="Set a category's commission rate; the next escrow releases use it")
def set_commission_rate(principal: Operator, uows: Uows, category: CategoryPath,
                        body: CommissionRateIn) -> CommissionRateOut:
    rate = fees.set_commission_rate(uows(), category, body.rate)
    return CommissionRateOut(category=category, rate=fees.rate_text(rate))
