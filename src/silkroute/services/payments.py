"""Money flows: pay into escrow, ship/deliver, confirm and release, refund, payouts, membership."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine, func, select
from sqlalchemy.exc import IntegrityError

from silkroute.domain import ledger, membership
from silkroute.domain.errors import Conflict, DomainError, NotFound, ValidationError
from silkroute.domain.ledger import AccountRef, CommissionRates, SaleLine
from silkroute.domain.money import CurrencyMismatch, Money, check_currency
from silkroute.domain.orders import HOLDS_RESERVATION, OrderState, transition
from silkroute.domain.shipping import ShippingTemplate
from silkroute.payments.durable_test_provider import DurableTestPaymentProvider
from silkroute.payments.port import (
    PaymentDeclined,
    PaymentError,
    PaymentProvider,
    PaymentResult,
    PaymentTimeout,
    derive_key,
)
from silkroute.payments.test_provider import TestPaymentProvider, luhn_valid, normalize_card
from silkroute.routing.policy import OrderRequest
from silkroute.services.checkout import (
    CartLine,
    CheckoutResult,
    checkout,
    move_order,
    release_reservations,
)
from silkroute.store import tables as t
from silkroute.store.engine import is_sqlite
from silkroute.store.ledger_repo import post
from silkroute.store.sql import insert_rows
from silkroute.store.uow import UnitOfWork

DEFAULT_AUTO_CONFIRM_DAYS = 10
DEFAULT_CARRIER_ID = 1  # the stand-in carrier until carriers exist

# the process-wide provider ----------------------------------------------------------------
_provider: PaymentProvider = TestPaymentProvider()
_injected = False  # set_provider was called: that provider wins over use_database_provider


def get_provider() -> PaymentProvider:
    return _provider


def set_provider(provider: PaymentProvider) -> PaymentProvider:
    """Install `provider` for this process (tests inject their own); returns the old one."""
    global _provider, _injected
    old, _provider, _injected = _provider, provider, True
    return old


def use_database_provider(engine: Engine) -> PaymentProvider:
    """For a process that works on `engine`'s database (`serve`'s workers, the CLI, the
    demo): the test provider's sandbox kept in that database, so every process on it shares
    one account and a restart forgets nothing. A provider installed with `set_provider`
    stays (tests inject theirs); an in-memory SQLite database keeps the in-memory one."""
    global _provider
    if _injected or (is_sqlite(engine) and engine.url.database in (None, "", ":memory:")):
        return _provider
    old, _provider = _provider, TestPaymentProvider.durable(engine)
    if isinstance(old, DurableTestPaymentProvider):
        old.close()
    return _provider


class OrderNotPaid(DomainError):
    """A money operation needs a paid order."""

    code = "order_not_paid"


def _now(now: datetime | None) -> datetime:
    return now if now is not None else datetime.now(UTC)


def _retry(call: Callable[[], PaymentResult]) -> PaymentResult:
    """Call the provider; on a timeout retry once with the same idempotency key."""
    try:
        return call()
    except PaymentTimeout:
        return call()


# payment methods -------------------------------------------------------------------------
@dataclass(frozen=True)
class CardAdded:
    payment_method_id: int
    buyer_id: int
    last4: str
    currency: str
    default: bool


def add_card(uow: UnitOfWork, buyer_id: int, number: str, *, currency: str = "KRW",
             default: bool = True) -> CardAdded:
    """Save a card as a payment method of the buyer (the test provider's numbers work)."""
    card = normalize_card(number)
    if not luhn_valid(card):
        raise ValidationError(f"card: {number!r} is not a valid card number", field="card")
    cur = check_currency(currency)
    with uow:
        if uow.repos.buyers.get(buyer_id) is None:
            raise NotFound(f"buyer_id: no buyer {buyer_id}", field="buyer_id")
        first = uow.repos.money.default_payment_method(buyer_id) is None
        pm_id = uow.repos.money.add_payment_method(buyer_id, card, card[-4:], cur,
                                                   default or first)
    return CardAdded(pm_id, buyer_id, card[-4:], cur, default or first)


def _method(uow: UnitOfWork, buyer_id: int, method_id: int | None) -> Any:
    repos = uow.repos
    if method_id is None:
        pm = repos.money.default_payment_method(buyer_id)
        if pm is None:
            raise ValidationError(f"payment_method: buyer {buyer_id} has no saved payment "
                                  "method", field="payment_method", code="no_payment_method")
        return pm
    pm = repos.money.payment_method(method_id)
    if pm is None:
        raise NotFound(f"payment_method: no payment method {method_id}",
                       field="payment_method", code="unknown_payment_method")
    if pm.buyer_id != buyer_id:
        raise NotFound(f"payment_method: payment method {method_id} is not one of buyer "
                       f"{buyer_id}'s", field="payment_method", code="foreign_payment_method")
    return pm


# shipping fee and commission setup ---------------------------------------------------------
def set_shipping_template(uow: UnitOfWork, seller_id: int, template: ShippingTemplate,
                          carrier_id: int = DEFAULT_CARRIER_ID) -> None:
    with uow:
        shop = uow.repos.sellers.shop_of(seller_id)
        if shop is None:
            raise NotFound(f"seller_id: no seller {seller_id}", field="seller_id")
        if shop.currency != template.currency:
            raise CurrencyMismatch(f"shipping template: currency mismatch: {template.currency}, "
                                   f"seller {seller_id} sells in {shop.currency}",
                                   field="currency")
        uow.repos.money.set_shipping_template(seller_id, template.to_dict(), carrier_id)


def set_commission_rate(uow: UnitOfWork, category: str, rate: Decimal | str) -> None:
    value = ledger.check_rate(rate)
    with uow:
        uow.repos.money.set_commission_rate(category, value)


def carrier_fee(template: ShippingTemplate, weight_g: int) -> Money:
    """What the carrier charges for a parcel: the template's fee without the free rules."""
    plain = replace(template, free_threshold=None, free_for_members=False)
    return plain.fee_for(goods_value=Money.zero(template.currency), weight_grams=weight_g,
                         is_member=False)


class ShippingHooks:
    """Checkout hooks charging the seller's shipping template (free for members)."""

    def __init__(self, buyer_id: int, today: date, *, is_member: bool | None = None,
                 templates: dict[int, tuple[Any, int]] | None = None,
                 on_placed: Callable[[UnitOfWork, CheckoutResult], None] | None = None):
        self.buyer_id = buyer_id
        self._on_placed = on_placed
        self.period = membership.period_key(today)
        self._member = is_member
        self._templates = dict(templates or {})
        self.carriers: dict[int, tuple[int, int]] = {}  # seller -> (carrier id, carrier fee)

    def _template(self, uow: UnitOfWork, seller_id: int) -> tuple[Any, int]:
        if seller_id not in self._templates:
            row = uow.repos.money.shipping_template(seller_id)
            self._templates[seller_id] = ((row.template, row.carrier_id) if row is not None
                                          else (None, DEFAULT_CARRIER_ID))
        return self._templates[seller_id]

    def shipping_fee(self, uow: UnitOfWork, request: OrderRequest, items_amount: int,
                     currency: str) -> int:
        data, carrier_id = self._template(uow, request.seller_id)
        if data is None:
            self.carriers[request.seller_id] = (carrier_id, 0)
            return 0
        if self._member is None:
            self._member = uow.repos.money.is_member(self.buyer_id, self.period)
        tpl = ShippingTemplate.from_dict(data)
        weight = sum(ln.weight_g * ln.quantity for ln in request.lines)
        self.carriers[request.seller_id] = (carrier_id, carrier_fee(tpl, weight).amount)
        return tpl.fee_for(goods_value=Money(items_amount, currency), weight_grams=weight,
                           is_member=self._member).amount

    def placed(self, uow: UnitOfWork, result: CheckoutResult) -> None:
        if self._on_placed is not None:
            self._on_placed(uow, result)


def checkout_with_shipping(
        uow: UnitOfWork, buyer_id: int, lines: Sequence[CartLine], *, today: date | None = None,
        on_placed: Callable[[UnitOfWork, CheckoutResult], None] | None = None, **kwargs: Any
) -> CheckoutResult:
    """`checkout` that charges each seller's shipping fee (what the money flows expect).
    `on_placed` runs in the checkout's transaction once its orders are recorded (the cart
    empties itself there); raising in it rolls the whole checkout back."""
    hooks = ShippingHooks(buyer_id, today or _now(None).date(), on_placed=on_placed)
    return checkout(uow, buyer_id, lines, hooks=hooks, **kwargs)


# pay ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Paid:
    payment_id: int
    checkout_id: int
    buyer_id: int
    amount: int
    currency: str
    order_ids: tuple[int, ...]
    status: str = "captured"

    @property
    def total(self) -> Money:
        return Money(self.amount, self.currency)


@dataclass
class _Plan:
    checkout_id: int
    buyer_id: int
    method_id: int
    token: str
    currency: str
    orders: list[dict[str, Any]] = field(default_factory=list)  # order money rows

    @property
    def total(self) -> int:
        return sum(int(o["hold"]) for o in self.orders)


def _weights(uow: UnitOfWork, order_ids: list[int]) -> dict[int, int]:
    ol = t.order_lines
    rows = uow.conn.execute(
        select(ol.c.order_id, func.sum(ol.c.quantity * t.skus.c.weight_g))
        .join(t.skus, t.skus.c.id == ol.c.sku_id).where(ol.c.order_id.in_(order_ids))
        .group_by(ol.c.order_id)).all()
    return {int(r[0]): int(r[1]) for r in rows}


def _plan(uow: UnitOfWork, orders: Sequence[Any], pm: Any,
          carriers: dict[int, tuple[int, int]] | None = None) -> _Plan:
    """Check what is about to be charged: reserved orders, one currency, the card's."""
    for o in orders:
        transition(o.id, o.state, OrderState.PAID)
    currencies = sorted({o.currency for o in orders})
    if len(currencies) > 1:
        raise CurrencyMismatch(f"checkout {orders[0].checkout_id}: orders in "
                               f"{', '.join(currencies)} cannot be paid in one payment",
                               field="currency")
    if pm.currency != currencies[0]:
        raise CurrencyMismatch(f"payment_method: currency mismatch: card {pm.id} pays in "
                               f"{pm.currency}, the orders are in {currencies[0]}",
                               field="payment_method")
    if carriers is None:
        weights = _weights(uow, [o.id for o in orders])
        carriers = {}
        for o in orders:
            row = uow.repos.money.shipping_template(o.seller_id)
            if row is None:
                carriers[o.seller_id] = (DEFAULT_CARRIER_ID, 0)
            else:
                tpl = ShippingTemplate.from_dict(row.template)
                carriers[o.seller_id] = (row.carrier_id,
                                         carrier_fee(tpl, weights.get(o.id, 0)).amount)
    plan = _Plan(orders[0].checkout_id, orders[0].buyer_id, pm.id, pm.token, currencies[0])
    for o in orders:
        carrier_id, fee = carriers.get(o.seller_id, (DEFAULT_CARRIER_ID, 0))
        plan.orders.append({
            "order_id": o.id, "buyer_id": o.buyer_id, "seller_id": o.seller_id,
            "currency": o.currency, "hold": int(o.items_amount) + int(o.shipping_amount),
            "shipping_charged": int(o.shipping_amount), "carrier_id": carrier_id,
            "carrier_fee": fee})
    return plan


def pay(uow: UnitOfWork, checkout_id: int, payment_method_id: int | None = None, *,
        provider: PaymentProvider | None = None) -> Paid:
    """Capture all orders of a checkout into escrow in one payment.

    A decline or a timeout (after one retry with the same key) cancels the orders and
    releases their reservations, then raises; the ledger is unchanged. Paying a checkout
    that is already paid returns the first payment.
    """
    with uow:
        existing = uow.repos.money.payment_of_checkout(checkout_id)
        if existing is not None:
            return _existing(uow, existing)
        orders = uow.repos.orders.of_checkout(checkout_id)
        if not orders:
            raise NotFound(f"checkout_id: no checkout {checkout_id}", field="checkout_id")
        pm = _method(uow, orders[0].buyer_id, payment_method_id)
        plan = _plan(uow, orders, pm)
    return charge(uow, plan, provider or _provider)


def _existing(uow: UnitOfWork, payment: Any) -> Paid:
    if payment.status != "captured":
        raise PaymentDeclined(payment.decline_reason or payment.status)
    ids = tuple(int(r.id) for r in uow.repos.orders.of_checkout(payment.checkout_id))
    return Paid(payment.id, payment.checkout_id, payment.buyer_id, int(payment.amount),
                payment.currency, ids)


def first_pair_call(plan: _Plan) -> dict[str, Any]:
    """The arguments of a provider's `authorize_and_capture` for `plan` (its keys derive
    from the checkout, so a retry is the same call)."""
    return {"authorize_key": derive_key("authorize", "checkout", plan.checkout_id),
            "capture_key": derive_key("capture", "checkout", plan.checkout_id),
            "payment_method": plan.token, "amount": Money(plan.total, plan.currency)}


def charge(uow: UnitOfWork, plan: _Plan, provider: PaymentProvider,
           on_fail: Callable[[UnitOfWork, PaymentError], None] | None = None) -> Paid:
    """Authorize and capture `plan` at the provider, then record it in one transaction."""
    amount = Money(plan.total, plan.currency)
    auth: PaymentResult | None = None
    # A provider that can take both first calls in one request does (the durable test
    # provider on PostgreSQL: one round trip instead of two); None means "call them".
    both = getattr(provider, "authorize_and_capture", None)
    pair = None if both is None else both(**first_pair_call(plan))
    if pair is not None:
        return _recorded(uow, plan, provider, *pair)
    try:
        auth = _retry(lambda: provider.authorize(
            idempotency_key=derive_key("authorize", "checkout", plan.checkout_id),
            payment_method=plan.token, amount=amount))
        assert auth is not None
        ref = auth.provider_reference
        cap = _retry(lambda: provider.capture(
            idempotency_key=derive_key("capture", "checkout", plan.checkout_id),
            authorization=ref))
    except PaymentError as exc:
        if auth is not None:
            with contextlib.suppress(PaymentError):
                provider.void(idempotency_key=derive_key("void", "checkout", plan.checkout_id),
                              authorization=auth.provider_reference)
        _fail(uow, plan, provider, exc, on_fail)
        raise
    return _recorded(uow, plan, provider, auth, cap)


def _recorded(uow: UnitOfWork, plan: _Plan, provider: PaymentProvider, auth: PaymentResult,
              cap: PaymentResult) -> Paid:
    """Record a captured payment in one transaction (or answer with a concurrent pay's)."""
    try:
        with uow:
            return _record(uow, plan, provider, auth, cap)
    except IntegrityError:
        with uow:  # a concurrent pay of the same checkout recorded it first
            existing = uow.repos.money.payment_of_checkout(plan.checkout_id)
            if existing is None:
                raise
            return _existing(uow, existing)


def _record(uow: UnitOfWork, plan: _Plan, provider: PaymentProvider, auth: PaymentResult,
            cap: PaymentResult) -> Paid:
    repos = uow.repos
    ids = [o["order_id"] for o in plan.orders]
    # On PostgreSQL the compare-and-set and the inserts travel as one statement at commit
    # (write-behind, store/sql.py); a failed compare-and-set rolls all of it back.
    _set_state_all(uow, ids, OrderState.RESERVED, OrderState.PAID)
    payment_id = repos.money.add_payment(
        checkout_id=plan.checkout_id, buyer_id=plan.buyer_id, payment_method_id=plan.method_id,
        status="captured", amount=plan.total, currency=plan.currency, provider=provider.name,
        authorization_ref=auth.provider_reference, capture_ref=cap.provider_reference)
    holds = {o["order_id"]: Money(o["hold"], plan.currency) for o in plan.orders}
    post(uow, ledger.capture(payment_id, plan.buyer_id, holds))
    repos.money.add_order_money([{**o, "payment_id": payment_id} for o in plan.orders])
    _add_events(uow, ids, OrderState.RESERVED, OrderState.PAID, f"payment {payment_id}")
    return Paid(payment_id, plan.checkout_id, plan.buyer_id, plan.total, plan.currency,
                tuple(ids))


def _move_all(uow: UnitOfWork, order_ids: list[int], source: OrderState, target: OrderState,
              note: str) -> None:
    """Move orders known to be in `source` with one compare-and-set and one event insert."""
    _set_state_all(uow, order_ids, source, target)
    _add_events(uow, order_ids, source, target, note)


def _set_state_all(uow: UnitOfWork, order_ids: list[int], source: OrderState,
                   target: OrderState) -> None:
    for oid in order_ids:
        transition(oid, source, target)

    def failed(_moved: int) -> None:
        raise Conflict(f"orders {order_ids} changed concurrently; nothing recorded",
                       field="state", code="concurrent_change")

    uow.repos.orders.move_all(order_ids, source.value, target.value, failed)


def _add_events(uow: UnitOfWork, order_ids: list[int], source: OrderState,
                target: OrderState, note: str) -> None:
    insert_rows(uow.conn, t.order_events, [
        {"order_id": oid, "from_state": source.value, "to_state": target.value, "note": note}
        for oid in order_ids])


def _fail(uow: UnitOfWork, plan: _Plan, provider: PaymentProvider, exc: PaymentError,
          on_fail: Callable[[UnitOfWork, PaymentError], None] | None) -> None:
    """The payment failed: record the attempt, cancel the orders, release their stock."""
    reason = exc.reason if isinstance(exc, PaymentDeclined) else exc.code
    status = "timed_out" if isinstance(exc, PaymentTimeout) else "declined"
    try:
        with uow:
            uow.repos.money.add_payment(
                checkout_id=plan.checkout_id, buyer_id=plan.buyer_id,
                payment_method_id=plan.method_id, status=status, amount=plan.total,
                currency=plan.currency, provider=provider.name, decline_reason=reason)
            for o in plan.orders:
                order = move_order(uow, o["order_id"], OrderState.CANCELLED,
                                   f"payment {status}: {reason}")
                if OrderState(order.state) in HOLDS_RESERVATION:
                    release_reservations(uow, o["order_id"])
            if on_fail is not None:
                on_fail(uow, exc)
    except IntegrityError:
        pass  # a concurrent attempt on the same checkout recorded the failure first


# ship, deliver (stand-in until carriers exist), confirm -------------------------------------
@dataclass(frozen=True)
class Moved:
    order_id: int
    state: str


def ship(uow: UnitOfWork, order_id: int) -> Moved:
    """Stand-in "handed over to the carrier": paid -> ready_to_ship -> shipped; the reserved
    units leave their locations (on hand and reserved both drop)."""
    with uow:
        order = uow.repos.orders.get(order_id)
        if order is None:
            raise NotFound(f"order_id: no order {order_id}", field="order_id")
        if order.state == OrderState.PAID.value:
            move_order(uow, order_id, OrderState.READY_TO_SHIP)
        move_order(uow, order_id, OrderState.SHIPPED, "handed over (stand-in carrier)")
        for alloc in uow.repos.orders.allocations(order_id, status="reserved"):
            if not uow.repos.stock.consume(alloc.sku_id, alloc.location_id, alloc.quantity):
                raise RuntimeError(f"order {order_id}: reservation of SKU {alloc.sku_id} "
                                   f"at location {alloc.location_id} is missing")
        uow.repos.orders.set_allocation_status(order_id, "reserved", "shipped")
    return Moved(order_id, OrderState.SHIPPED.value)


def deliver(uow: UnitOfWork, order_id: int, *, now: datetime | None = None) -> Moved:
    """Stand-in "delivered": shipped -> delivered; starts the auto-confirm clock."""
    with uow:
        move_order(uow, order_id, OrderState.DELIVERED, "delivered (stand-in carrier)")
        uow.repos.money.update_order_money(order_id, delivered_at=_now(now))
    return Moved(order_id, OrderState.DELIVERED.value)


@dataclass(frozen=True)
class Released:
    order_id: int
    hold: int
    seller: int
    carrier: int
    platform: int
    currency: str


def confirm_receipt(uow: UnitOfWork, order_id: int, *, buyer_id: int | None = None,
                    note: str = "receipt confirmed by the buyer") -> Released:
    """The buyer has the goods: delivered -> completed, and the escrow hold is released to
    the seller (price less commission), the carrier (its fee) and the platform."""
    with uow:
        repos = uow.repos
        order = repos.orders.get(order_id)
        if order is None or (buyer_id is not None and order.buyer_id != buyer_id):
            raise NotFound(f"order_id: no order {order_id}" + (
                f" of buyer {buyer_id}" if buyer_id is not None else ""), field="order_id")
        om = repos.money.order_money(order_id, lock=True)
        if om is None:
            raise OrderNotPaid(f"order {order_id} is not paid (state {order.state})",
                               field="order_id")
        move_order(uow, order_id, OrderState.COMPLETED, note)
        cur = om.currency
        rates = CommissionRates(repos.money.commission_rates())
        lines = [SaleLine(Money(int(r.quantity) * int(r.unit_price), cur),
                          rates.rate_for(r.category))
                 for r in repos.money.lines_with_category(order_id)]
        refunded = Money(int(om.refunded_from_escrow), cur)
        net_lines, net_shipping = ledger.reduce_lines(
            lines, Money(int(om.shipping_charged), cur), refunded)
        hold = Money(int(om.hold), cur) - refunded
        txn = ledger.release(order_id, om.seller_id, om.carrier_id, hold, net_lines,
                             net_shipping, Money(int(om.carrier_fee), cur))
        post(uow, txn)
        repos.money.update_order_money(order_id, released=True)
        split = ledger.split_release(hold, net_lines, net_shipping,
                                     Money(int(om.carrier_fee), cur))
        return Released(order_id, hold.amount, split.seller.amount, split.carrier.amount,
                        split.platform.amount, cur)


def auto_confirm(uow: UnitOfWork, *, days: int = DEFAULT_AUTO_CONFIRM_DAYS,
                 now: datetime | None = None) -> list[int]:
    """Confirm every order delivered at least `days` days ago; returns their ids."""
    if isinstance(days, bool) or not isinstance(days, int) or days < 0:
        raise ValidationError(f"days must be a non-negative integer, got {days!r}",
                              field="days")
    cutoff = _now(now) - timedelta(days=days)
    with uow:
        due = uow.repos.money.delivered_before(cutoff)
    done = []
    for order_id in due:
        try:
            confirm_receipt(uow, order_id, note=f"confirmed automatically after {days} days")
        except DomainError:
            continue  # confirmed, refunded or returned meanwhile
        done.append(order_id)
    return done


# refunds ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Refunded:
    refund_id: int
    order_id: int
    amount: int
    currency: str
    stage: str  # from_escrow | after_release
    order_state: str
    units_released: int


def refund(uow: UnitOfWork, order_id: int, amount: Money | int | None = None, *,
           reason: str = "", provider: PaymentProvider | None = None) -> Refunded:
    """Refund all that is left (amount None) or part of a paid order.

    Before release the money comes out of the order's escrow hold; after release it is
    clawed back from the seller's payable (which may go negative). A full refund moves the
    order to `refunded` and, before shipment, gives its reserved units back.
    """
    prov = provider or _provider
    with uow:
        repos = uow.repos
        order = repos.orders.get(order_id)
        if order is None:
            raise NotFound(f"order_id: no order {order_id}", field="order_id")
        om = repos.money.order_money(order_id, lock=True)
        if om is None:
            raise OrderNotPaid(f"order {order_id} is not paid (state {order.state}); "
                               "nothing to refund", field="order_id")
        cur = om.currency
        refundable = Money(int(om.hold) - int(om.refunded_from_escrow)
                           - int(om.refunded_after_release), cur)
        if amount is None:
            if refundable.amount == 0:
                raise ledger.RefundExceedsPaid(f"order {order_id} is already fully refunded",
                                               field="amount")
            amt = refundable
        else:
            amt = amount if isinstance(amount, Money) else Money(amount, cur)
        ledger.check_refund(amt, refundable)
        stage = "after_release" if om.released else "from_escrow"
        payment = repos.money.payment(om.payment_id)
        refund_id = repos.money.add_refund(order_id=order_id, payment_id=om.payment_id,
                                           amount=amt.amount, currency=cur, stage=stage,
                                           reason=reason)
        if om.released:
            txn = ledger.refund_after_release(refund_id, order_id, om.buyer_id, om.seller_id,
                                              amt, refundable)
            repos.money.update_order_money(
                order_id, refunded_after_release=int(om.refunded_after_release) + amt.amount)
        else:
            open_hold = Money(int(om.hold) - int(om.refunded_from_escrow), cur)
            txn = ledger.refund_from_escrow(refund_id, order_id, om.buyer_id, amt, open_hold)
            repos.money.update_order_money(
                order_id, refunded_from_escrow=int(om.refunded_from_escrow) + amt.amount)
        post(uow, txn)
        state = order.state
        units = 0
        if amt == refundable:
            move_order(uow, order_id, OrderState.REFUNDED, f"refund {refund_id}")
            state = OrderState.REFUNDED.value
            if OrderState(order.state) in HOLDS_RESERVATION:
                units = release_reservations(uow, order_id)
        # The provider key names the refund by its place in the order's refunds (what was
        # refunded before it) and its amount, not by `refund_id`: if this transaction rolls
        # back after the provider refunded, a retry sees the same state, sends the same key
        # and gets the first refund back instead of a second one (on PostgreSQL a retry
        # would get a new refund id).
        key = derive_key("refund", "order", order_id, "after",
                         int(om.hold) - refundable.amount, "amount", amt.amount)
        res = _retry(lambda: prov.refund(idempotency_key=key, capture=payment.capture_ref,
                                         amount=amt))
        repos.money.set_refund_provider_ref(refund_id, res.provider_reference)
        return Refunded(refund_id, order_id, amt.amount, cur, stage, state, units)


# payouts ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class PayoutRun:
    batch_id: int
    key: str
    created: bool
    payouts: tuple[tuple[str, int, str], ...]  # (account, amount, currency)
    sent: int

    @property
    def total_by_currency(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for _, amount, cur in self.payouts:
            out[cur] = out.get(cur, 0) + amount
        return out


def run_payouts(uow: UnitOfWork, batch_key: str | None = None, *,
                provider: PaymentProvider | None = None) -> PayoutRun:
    """Pay every positive seller and carrier payable through the provider.

    Idempotent per batch key: running a batch again sends only what it has not sent yet,
    with the same provider keys. Batches are serialised, so two at once pay each payable
    once: the second sees the first's payouts in the ledger.
    """
    prov = provider or _provider
    key = batch_key or f"batch-{_now(None):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
    if not isinstance(key, str) or not key.strip() or len(key) > 120:
        raise ValidationError("batch key must be a non-empty string of at most 120 "
                              "characters", field="batch")
    with uow:
        repos = uow.repos
        repos.money.lock_payouts()
        batch = repos.money.batch(key)
        created = batch is None
        if batch is None:
            batch_id = repos.money.add_batch(key)
            kinds = [k.value for k in ledger.PAYABLE_KINDS]
            balances = {AccountRef.parse(code): Money(v, code.rsplit(":", 1)[1])
                        for code, v in repos.ledger.balances(kinds).items()}
            for account, amount in ledger.payouts_due(balances):
                repos.money.add_payout(batch_id=batch_id, account=account.code,
                                       amount=amount.amount, currency=amount.currency,
                                       status="pending")
                post(uow, ledger.payout(batch_id, account, amount))
        else:
            batch_id = batch.id
        rows = repos.money.payouts_of(batch_id)
    sent = 0
    for row in rows:
        if row.status == "sent":
            continue
        res = _send_payout(prov, batch_id, row.account, Money(int(row.amount), row.currency))
        with uow:
            uow.repos.money.mark_payout_sent(row.id, res.provider_reference)
        sent += 1
    with uow:
        uow.repos.money.set_batch_status(batch_id, "sent")
    return PayoutRun(batch_id, key, created,
                     tuple((r.account, int(r.amount), r.currency) for r in rows), sent)


def _send_payout(provider: PaymentProvider, batch_id: int, account: str, amount: Money
                 ) -> PaymentResult:
    return _retry(lambda: provider.payout(
        idempotency_key=derive_key("payout", batch_id, account), destination=account,
        amount=amount))


# membership ------------------------------------------------------------------------------
@dataclass(frozen=True)
class MembershipResult:
    buyer_id: int
    status: str
    period: str | None
    charged: bool
    fee: int
    currency: str
    paid_through: str | None
    declined: str | None = None


def _load_membership(uow: UnitOfWork, buyer_id: int) -> membership.Membership | None:
    row = uow.repos.money.membership(buyer_id)
    if row is None:
        return None
    return membership.Membership(
        buyer_id=buyer_id, monthly_fee=Money(int(row.monthly_fee), row.currency),
        started_on=row.started_on, paid_periods=frozenset(uow.repos.money.paid_periods(
            buyer_id)), auto_renew=bool(row.auto_renew), lapsed_on=row.lapsed_on)


def _save(uow: UnitOfWork, m: membership.Membership) -> None:
    uow.repos.money.save_membership(m.buyer_id, m.monthly_fee.currency, m.monthly_fee.amount,
                                    m.started_on, m.auto_renew, m.lapsed_on)


def _charge_period(uow: UnitOfWork, renewal: membership.Renewal,
                   provider: PaymentProvider) -> None:
    m = renewal.membership
    pm = _method(uow, m.buyer_id, None)
    if pm.currency != renewal.fee.currency:
        raise CurrencyMismatch(f"payment_method: card {pm.id} pays in {pm.currency}, the fee "
                               f"is in {renewal.fee.currency}", field="payment_method")
    auth = _retry(lambda: provider.authorize(
        idempotency_key=derive_key("authorize", "membership", m.buyer_id, renewal.period),
        payment_method=pm.token, amount=renewal.fee))
    cap = _retry(lambda: provider.capture(
        idempotency_key=derive_key("capture", "membership", m.buyer_id, renewal.period),
        authorization=auth.provider_reference))
    uow.repos.money.add_period(buyer_id=m.buyer_id, period=renewal.period,
                               fee=renewal.fee.amount, currency=renewal.fee.currency,
                               provider_ref=cap.provider_reference)
    post(uow, ledger.membership_fee(m.buyer_id, renewal.period, renewal.fee))


def _result(m: membership.Membership, today: date, renewal: membership.Renewal | None,
            declined: str | None = None) -> MembershipResult:
    return MembershipResult(m.buyer_id, m.status_at(today).value,
                            renewal.period if renewal else None,
                            bool(renewal and renewal.charged), m.monthly_fee.amount,
                            m.monthly_fee.currency, m.paid_through, declined)


def subscribe(uow: UnitOfWork, buyer_id: int, *, currency: str = "KRW",
              today: date | None = None, provider: PaymentProvider | None = None
              ) -> MembershipResult:
    """Join the club (or rejoin after a lapse): charges the current month's fee."""
    day = today or _now(None).date()
    fee = membership.monthly_fee(currency)
    with uow:
        if uow.repos.buyers.get(buyer_id) is None:
            raise NotFound(f"buyer_id: no buyer {buyer_id}", field="buyer_id")
        renewal = membership.subscribe(buyer_id, day, fee, _load_membership(uow, buyer_id))
        if renewal.charged:
            _charge_period(uow, renewal, provider or _provider)
        _save(uow, renewal.membership)
        return _result(renewal.membership, day, renewal)


def renew(uow: UnitOfWork, buyer_id: int, *, period: str | None = None,
          today: date | None = None, provider: PaymentProvider | None = None
          ) -> MembershipResult:
    """Charge a period (default: the current month) once; a declined card lapses it."""
    day = today or _now(None).date()
    key = period or membership.period_key(day)
    with uow:
        current = _load_membership(uow, buyer_id)
        if current is None:
            raise NotFound(f"buyer_id: buyer {buyer_id} is not a member", field="buyer_id",
                           code="not_a_member")
        renewal = membership.renew(current, key)
        if renewal.charged:
            savepoint = uow.conn.begin_nested()
            try:
                _charge_period(uow, renewal, provider or _provider)
            except PaymentError as exc:
                savepoint.rollback()
                lapsed = membership.lapse(current, day)
                _save(uow, lapsed)
                reason = exc.reason if isinstance(exc, PaymentDeclined) else exc.code
                return _result(lapsed, day, None, reason)
            savepoint.commit()
        _save(uow, renewal.membership)
        return _result(renewal.membership, day, renewal)


def lapse(uow: UnitOfWork, buyer_id: int, *, today: date | None = None) -> MembershipResult:
    """Stop renewing; benefits last to the end of the months already paid."""
    day = today or _now(None).date()
    with uow:
        current = _load_membership(uow, buyer_id)
        if current is None:
            raise NotFound(f"buyer_id: buyer {buyer_id} is not a member", field="buyer_id",
                           code="not_a_member")
        lapsed = membership.lapse(current, day)
        _save(uow, lapsed)
        return _result(lapsed, day, None)
