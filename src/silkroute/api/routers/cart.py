"""Buyer routes: the persistent cart (lines, view, checkout) and club membership."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Body, Path, Request

from silkroute.api.auth import Buyer, ReadUows, Uows, buyer_id_of
from silkroute.api.cart_schemas import (
    CartCheckoutIn,
    CartLinePut,
    CartOut,
    MembershipIn,
    MembershipOut,
)
from silkroute.api.errors import ERROR_RESPONSES, NOT_FOUND, ErrorBody
from silkroute.api.routers.common import checkout_out
from silkroute.api.schemas import CheckoutOut, SkuCode
from silkroute.services import cart, members

router = APIRouter(prefix="/api/v1/buyer", responses=ERROR_RESPONSES)
SkuPath = Annotated[SkuCode, Path(description="SKU code.")]
CONFLICT: dict[int | str, dict[str, object]] = {
    409: {"model": ErrorBody, "description": "A concurrent change (`conflict`)."}}


@router.get("/cart", response_model=CartOut, tags=["cart"],
            summary="My cart, priced now, with availability and totals per seller and currency")
def my_cart(principal: Buyer, uows: ReadUows) -> dict[str, object]:
    return cart.view(uows(), buyer_id_of(principal)).as_dict()


@router.put("/cart/lines/{sku}", response_model=CartOut, tags=["cart"],
            responses={**NOT_FOUND, **CONFLICT},
            summary="Set how many units of a SKU are in my cart (0 removes the line)")
def put_line(principal: Buyer, uows: Uows, sku: SkuPath, body: CartLinePut
             ) -> dict[str, object]:
    return cart.set_line(uows(), buyer_id_of(principal), sku, body.quantity).as_dict()


@router.delete("/cart/lines/{sku}", response_model=CartOut, tags=["cart"],
               responses={**NOT_FOUND, **CONFLICT},
               summary="Take a SKU out of my cart (not in it: nothing to do)")
def delete_line(principal: Buyer, uows: Uows, sku: SkuPath) -> dict[str, object]:
    return cart.remove_line(uows(), buyer_id_of(principal), sku).as_dict()


@router.post("/cart/checkout", response_model=CheckoutOut, status_code=201, tags=["cart"],
             responses={**NOT_FOUND, 409: {"model": ErrorBody, "description":
                                           "Out of stock (`out_of_stock`), or the cart changed "
                                           "while checking out (`cart_changed`)."}},
             summary="Check out my cart: one reserved order per seller; the cart empties")
def checkout_my_cart(principal: Buyer, uows: Uows, request: Request,
                     body: Annotated[CartCheckoutIn | None, Body()] = None) -> CheckoutOut:
    options = body or CartCheckoutIn.model_validate({})
    metrics = request.app.state.metrics
    started = time.perf_counter()
    try:
        res = cart.checkout_cart(uows, buyer_id_of(principal), address_id=options.address_id,
                                 service=options.service,
                                 pickup_location_id=options.pickup_location_id)
    finally:
        metrics.checkout_seconds.observe(time.perf_counter() - started)
    metrics.orders_created.inc(len(res.orders))
    return checkout_out(res)


# --------------------------------------------------------------------------- membership
@router.get("/membership", response_model=MembershipOut, tags=["membership"],
            summary="My membership this month")
def my_membership(principal: Buyer, uows: ReadUows) -> dict[str, object]:
    return members.status(uows(), buyer_id_of(principal)).as_dict()


@router.post("/membership", response_model=MembershipOut, tags=["membership"],
             responses={402: {"model": ErrorBody, "description": "The card was declined or "
                                                                "the provider did not answer."},
                        409: {"model": ErrorBody, "description": "Already a member "
                                                                "(`already_member`)."}},
             summary="Join the club: pays this month's fee with my default card")
def subscribe(principal: Buyer, uows: Uows,
              body: Annotated[MembershipIn | None, Body()] = None) -> dict[str, object]:
    return members.subscribe(uows, buyer_id_of(principal),
                             body.currency if body else None).as_dict()


@router.delete("/membership", response_model=MembershipOut, tags=["membership"],
               responses={404: {"model": ErrorBody, "description": "Not a member "
                                                                   "(`not_a_member`)."}},
               summary="Stop renewing; the benefits last to the end of the paid month")
def lapse(principal: Buyer, uows: Uows) -> dict[str, object]:
    return members.lapse(uows(), buyer_id_of(principal)).as_dict()
