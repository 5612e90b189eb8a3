"""Buyer payment routes: saved cards, paying a checkout, buy-now with an Idempotency-Key."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Annotated, Any

from fastapi import APIRouter, Body, Header, Path, Request
from starlette.concurrency import run_in_threadpool

from silkroute.api.auth import Buyer, ReadUows, Uows, buyer_id_of
from silkroute.api.errors import ERROR_RESPONSES, NOT_FOUND, ErrorBody
from silkroute.api.group_commit import NotABuyer
from silkroute.api.schemas import (
    MAX_INT,
    BuyNowIn,
    BuyNowOut,
    PaidOut,
    PaymentIn,
    PaymentMethodIn,
    PaymentMethodOut,
)
from silkroute.services import purchases
from silkroute.services.one_click import OneClickResult
from silkroute.store.uow import UnitOfWork

router = APIRouter(prefix="/api/v1/buyer", tags=["payments"], responses=ERROR_RESPONSES)
PAYMENT_ERRORS: dict[int | str, dict[str, object]] = {
    402: {"model": ErrorBody, "description": "The card was declined or the provider did not "
                                            "answer (`payment_declined`, `payment_timeout`); "
                                            "the orders are cancelled and stock released."},
    409: {"model": ErrorBody, "description": "Out of stock, an order not payable any more, or "
                                            "an Idempotency-Key reused for another request."},
}
IdempotencyKey = Annotated[str, Header(alias="Idempotency-Key", min_length=1, max_length=200,
                                       pattern=r"^[\x21-\x7e]+$",
                                       description="Any unique string per intended purchase; "
                                                   "kept at least 24 hours.")]


@router.get("/payment-methods", response_model=list[PaymentMethodOut],
            summary="My saved payment methods")
def my_payment_methods(principal: Buyer, uows: ReadUows) -> list[dict[str, object]]:
    return purchases.payment_methods(uows(), buyer_id_of(principal))


@router.post("/payment-methods", response_model=PaymentMethodOut, status_code=201,
             summary="Save a card (test cards: docs/payments.md)")
def new_payment_method(principal: Buyer, uows: Uows, body: PaymentMethodIn
                       ) -> PaymentMethodOut:
    res = purchases.add_payment_method(uows(), buyer_id_of(principal), body.card,
                                       body.currency.upper(), body.default)
    return PaymentMethodOut(id=res.payment_method_id, last4=res.last4, currency=res.currency,
                            is_default=res.default)


@router.post("/checkouts/{checkout_id}/payment", response_model=PaidOut, status_code=201,
             responses={**NOT_FOUND, **PAYMENT_ERRORS},
             summary="Pay all orders of one of my checkouts into escrow")
def pay_checkout(principal: Buyer, uows: Uows, request: Request,
                 checkout_id: Annotated[int, Path(ge=1, le=MAX_INT)],
                 body: Annotated[PaymentIn | None, Body()] = None) -> PaidOut:
    metrics = request.app.state.metrics
    try:
        paid = purchases.pay_own_checkout(uows, buyer_id_of(principal), checkout_id,
                                          body.payment_method_id if body else None)
    except Exception:
        metrics.payments.labels(outcome="failed").inc()
        raise
    metrics.payments.labels(outcome="captured").inc()
    return PaidOut(payment_id=paid.payment_id, checkout_id=paid.checkout_id,
                   amount=paid.amount, currency=paid.currency, order_ids=list(paid.order_ids),
                   status=paid.status)


@router.post("/buy-now", response_model=BuyNowOut, status_code=201,
             responses={**NOT_FOUND, **PAYMENT_ERRORS},
             summary="One click: buy a SKU to my default address with my default card")
async def buy_now(principal: Buyer, uows: Uows, request: Request, body: BuyNowIn,
                  idempotency_key: IdempotencyKey) -> BuyNowOut:
    # Async, with the purchase itself in a worker thread: FastAPI runs a sync endpoint in
    # one thread and then checks its response model in another, a thread hop per request
    # for nothing (profiled on `bench http`).
    return await counted_buy_now(request.app.state.metrics, uows(), buyer_id_of(principal),
                                 body.sku, body.quantity, idempotency_key)


async def counted_buy_now(metrics: Any, uow: UnitOfWork, buyer_id: int, sku: str,
                          quantity: int, idempotency_key: str) -> BuyNowOut:
    """The purchase in a worker thread, counted in the metrics."""
    return await count_buy_now(metrics, run_in_threadpool(
        purchases.buy_now, uow, buyer_id, sku, quantity, idempotency_key))


async def count_buy_now(metrics: Any, purchase: Awaitable[OneClickResult]) -> BuyNowOut:
    """A purchase's answer, counted in the metrics (the route and buy-now's fast path,
    `api/fast_paths.py`, alone or in a group, all answer through it)."""
    try:
        res = await purchase
    except NotABuyer:  # not a purchase: the route answers it
        raise
    except Exception:
        metrics.payments.labels(outcome="failed").inc()
        raise
    if not res.replayed:
        metrics.orders_created.inc()
        metrics.payments.labels(outcome="captured").inc()
    return BuyNowOut(**res.as_dict())
