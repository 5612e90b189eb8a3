"""A buyer paying over the API: saved cards, paying an own checkout, buy-now once per key."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from silkroute.domain.errors import NotFound
from silkroute.services import payments
from silkroute.services.checkout import CartLine, CheckoutResult
from silkroute.services.one_click import OneClickResult, one_click
from silkroute.store import read_queries as rq
from silkroute.store.uow import UnitOfWork

UowFactory = Callable[[], UnitOfWork]


def add_payment_method(uow: UnitOfWork, buyer_id: int, card: str, currency: str,
                       default: bool) -> payments.CardAdded:
    return payments.add_card(uow, buyer_id, card, currency=currency, default=default)


def payment_methods(uow: UnitOfWork, buyer_id: int) -> list[dict[str, Any]]:
    with uow:
        rows = rq.payment_methods_of(uow.conn, buyer_id)
    return [{"id": r.id, "last4": r.last4, "currency": r.currency,
             "is_default": bool(r.is_default)} for r in rows]


def checkout(uow: UnitOfWork, buyer_id: int, lines: list[CartLine], **kwargs: Any
             ) -> CheckoutResult:
    """Checkout charging each seller's shipping fee, as paying expects."""
    return payments.checkout_with_shipping(uow, buyer_id, lines, **kwargs)


def _own_method(uows: UowFactory, buyer_id: int, method_id: int | None) -> None:
    if method_id is None:
        return
    with uows() as uow:
        pm = uow.repos.money.payment_method(method_id)
    if pm is None or pm.buyer_id != buyer_id:
        # Another buyer's card answers exactly like a card that does not exist.
        raise NotFound(f"payment_method_id: no payment method {method_id}",
                       field="payment_method_id")


def pay_own_checkout(uows: UowFactory, buyer_id: int, checkout_id: int,
                     method_id: int | None) -> payments.Paid:
    """Pay every order of one of the buyer's checkouts into escrow (again: the same answer)."""
    with uows() as uow:
        orders = uow.repos.orders.of_checkout(checkout_id)
    if not orders or orders[0].buyer_id != buyer_id:
        raise NotFound(f"checkout_id: no checkout {checkout_id}", field="checkout_id")
    _own_method(uows, buyer_id, method_id)
    return payments.pay(uows(), checkout_id, method_id)


def buy_now(uow: UnitOfWork, buyer_id: int, sku: str, quantity: int,
            idempotency_key: str) -> OneClickResult:
    return one_click(uow, buyer_id, sku, quantity, idempotency_key=idempotency_key)
