"""One-click ordering: default address and card, checkout and pay, once per idempotency key."""

from __future__ import annotations

import functools
import hashlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError

from silkroute.domain.catalog import check_quantity, check_sku_code
from silkroute.domain.errors import NotFound, ValidationError
from silkroute.domain.money import CurrencyMismatch
from silkroute.payments.port import (
    IdempotencyKeyReused,
    PaymentError,
    PaymentProvider,
)
from silkroute.routing.policy import CandidateLocation
from silkroute.services import payments
from silkroute.services.checkout import CartLine, CheckoutResult, Known, checkout
from silkroute.store.network_repo import signature_of
from silkroute.store.sql import writes_behind
from silkroute.store.uow import SharedUnitOfWork, UnitOfWork

KEY_TTL = timedelta(hours=24)  # keys are kept at least this long
REPLAY_WAIT_S = 10.0  # how long a replay waits for a concurrent first call to finish
MAX_KEY_LENGTH = 200


@dataclass(frozen=True)
class OneClickResult:
    order_id: int
    checkout_id: int
    payment_id: int
    state: str
    currency: str
    items_amount: int
    shipping_amount: int
    total: int
    replayed: bool = False

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class _Claimed(Exception):
    """The idempotency key was claimed by an earlier call: return its result instead."""


class _Address(NamedTuple):
    id: int
    buyer_id: int
    latitude: float
    longitude: float
    zone_id: int | None


class _Sku(NamedTuple):
    id: int
    code: str
    seller_id: int
    on_sale: bool
    weight_g: int
    price_amount: int
    currency: str


class _Hooks(payments.ShippingHooks):
    """Reads everything one-click needs in one statement inside the checkout's transaction,
    charges shipping from it, and claims the idempotency key with the orders."""

    def __init__(self, buyer_id: int, sku: str, now: datetime, scope: str, key: str,
                 request_hash: str):
        super().__init__(buyer_id, now.date(), templates={})
        self._sku = sku
        self._claim = (scope, key, request_hash, now)
        self.ctx: Any = None
        self.rows: Sequence[Any] | None = None  # the context, when read beforehand

    def context_params(self) -> tuple[int, str, str, str, str]:
        scope, key, _digest, _now = self._claim
        return (self.buyer_id, self._sku, self.period, scope, key)

    def known(self, uow: UnitOfWork) -> Known:
        scope, key, _digest, now = self._claim
        money = uow.repos.money
        rows = self.rows if self.rows is not None else \
            money.one_click_context(*self.context_params())
        if not rows:  # no such SKU: a replay if the key was used, else a bad request
            if money.key(scope, key) is not None:
                raise _Claimed
            raise NotFound(f"sku: no SKU {self._sku!r}", field="sku")
        ctx = rows[0]
        if ctx.key_id is not None:
            raise _Claimed
        if ctx.buyer_found is None:
            raise NotFound(f"buyer_id: no buyer {self.buyer_id}", field="buyer_id")
        if ctx.pm_id is None:
            raise ValidationError(f"payment_method: buyer {self.buyer_id} has no saved "
                                  "payment method (add one with `silkroute buyer card add`)",
                                  field="payment_method", code="no_payment_method")
        if ctx.pm_currency != ctx.sku_currency:
            raise CurrencyMismatch(f"payment_method: currency mismatch: the default card pays "
                                   f"in {ctx.pm_currency}, {self._sku} sells in "
                                   f"{ctx.sku_currency}", field="payment_method")
        self.ctx = ctx
        self._member = ctx.member_period is not None
        self._templates[ctx.seller_id] = (ctx.template,
                                          ctx.carrier_id or payments.DEFAULT_CARRIER_ID)
        address = (None if ctx.address_id is None else
                   _Address(ctx.address_id, self.buyer_id, ctx.latitude, ctx.longitude,
                            ctx.zone_id))
        sku = _Sku(ctx.sku_id, ctx.code, ctx.seller_id, ctx.on_sale, ctx.weight_g,
                   ctx.price_amount, ctx.sku_currency)
        candidates = [CandidateLocation(r.location_id, r.location_latitude,
                                        r.location_longitude, {ctx.sku_id: int(r.available)},
                                        r.location_name)
                      for r in rows if r.location_id is not None]
        return Known(address, {ctx.code: sku}, candidates={ctx.seller_id: candidates},
                     signature=signature_of(ctx))

    def placed(self, uow: UnitOfWork, result: CheckoutResult) -> None:
        scope, key, request_hash, now = self._claim
        uow.repos.money.add_key(
            scope=scope, key=key, request_hash=request_hash, status="claimed",
            response={"checkout_id": result.checkout_id,
                      "order_ids": [o.order_id for o in result.orders]},
            expires_at=now + KEY_TTL)


def request_hash(sku: str, quantity: int) -> str:
    body = json.dumps({"op": "one_click", "sku": sku, "quantity": quantity}, sort_keys=True)
    return hashlib.sha256(body.encode()).hexdigest()


def one_click(uow: UnitOfWork, buyer_id: int, sku: str, quantity: int, *,
              idempotency_key: str, now: datetime | None = None,
              provider: PaymentProvider | None = None) -> OneClickResult:
    """Buy `quantity` of `sku` to the buyer's default address with their default card.

    The same key with the same request returns the first result and creates nothing; the
    same key with another request raises `idempotency_key_reused`. The key is claimed in
    the checkout's own transaction by a unique row, so of two concurrent calls exactly one
    creates an order and charges; the other waits for and returns its result.
    """
    hooks = _prepare(buyer_id, sku, quantity, idempotency_key, now)
    prov = provider or payments.get_provider()
    try:
        placed = checkout(uow, buyer_id, [CartLine(sku, quantity)], hooks=hooks,
                          known=hooks.known)
    except (IntegrityError, _Claimed):  # claimed before, or lost the race for the key
        return _replay(uow, hooks, prov)
    return _charge(uow, hooks, placed, prov)


def _prepare(buyer_id: int, sku: str, quantity: int, idempotency_key: str,
             now: datetime | None) -> _Hooks:
    """Check the request; the checkout hooks that carry it."""
    if not isinstance(idempotency_key, str) or not idempotency_key.strip() or \
            len(idempotency_key) > MAX_KEY_LENGTH:
        raise ValidationError(f"idempotency_key must be a non-empty string of at most "
                              f"{MAX_KEY_LENGTH} characters", field="idempotency_key")
    check_sku_code(sku)
    check_quantity(quantity)
    return _Hooks(buyer_id, sku, payments._now(now), f"one_click:buyer:{buyer_id}",
                  idempotency_key, request_hash(sku, quantity))


def _plan(hooks: _Hooks, placed: CheckoutResult) -> payments._Plan:
    ctx = hooks.ctx
    order = placed.orders[0]
    plan = payments._Plan(placed.checkout_id, hooks.buyer_id, ctx.pm_id, ctx.token,
                          order.currency)
    carrier_id, fee = hooks.carriers.get(order.seller_id, (payments.DEFAULT_CARRIER_ID, 0))
    plan.orders.append({
        "order_id": order.order_id, "buyer_id": hooks.buyer_id, "seller_id": order.seller_id,
        "currency": order.currency, "hold": order.items_amount + order.shipping_amount,
        "shipping_charged": order.shipping_amount, "carrier_id": carrier_id,
        "carrier_fee": fee})
    return plan


def _charge(uow: UnitOfWork, hooks: _Hooks, placed: CheckoutResult,
            provider: PaymentProvider) -> OneClickResult:
    """Pay a placed one-click order (a declined card is remembered under its key)."""
    paid = payments.charge(uow, _plan(hooks, placed), provider,
                           on_fail=functools.partial(_remember_failure, hooks))
    return _result(placed, paid)


def _result(placed: CheckoutResult, paid: payments.Paid) -> OneClickResult:
    order = placed.orders[0]
    return OneClickResult(order.order_id, placed.checkout_id, paid.payment_id, "paid",
                          order.currency, order.items_amount, order.shipping_amount,
                          paid.amount)


def _remember_failure(hooks: _Hooks, u: UnitOfWork, exc: PaymentError) -> None:
    scope, key, _digest, _now = hooks._claim
    row = u.repos.money.key(scope, key)
    u.repos.money.set_key_response(row.id, "failed", {
        **(row.response or {}), "error": {"code": exc.code, "message": exc.message,
                                          "field": exc.field}})


def _replay(uow: UnitOfWork, hooks: _Hooks, provider: PaymentProvider) -> OneClickResult:
    """Return the first call's result (waiting while it is still in flight)."""
    scope, key, digest, _now = hooks._claim
    deadline = time.monotonic() + REPLAY_WAIT_S
    delay = 0.005
    while True:
        with uow:
            row = uow.repos.money.key(scope, key)
            if row is None:
                raise RuntimeError(f"idempotency key {key!r} vanished")
            if row.request_hash != digest:
                raise IdempotencyKeyReused(
                    f"idempotency_key: {key!r} was already used for a different request",
                    field="idempotency_key")
            response = row.response or {}
            if row.status == "failed":
                error = response.get("error") or {}
                raise PaymentError(error.get("message", "the first request failed"),
                                  field=error.get("field"),
                                  code=error.get("code", "payment_error"))
            checkout_id = int(response["checkout_id"])
            payment = uow.repos.money.payment_of_checkout(checkout_id)
            orders = uow.repos.orders.of_checkout(checkout_id)
        if payment is not None and payment.status == "captured":
            o = orders[0]
            return OneClickResult(o.id, checkout_id, payment.id, o.state, o.currency,
                                  int(o.items_amount), int(o.shipping_amount),
                                  int(payment.amount), replayed=True)
        if time.monotonic() > deadline:
            # The first call stopped between checkout and payment: finish it (the provider
            # keys derive from the checkout, so nothing is charged twice).
            paid = payments.pay(uow, checkout_id, provider=provider)
            o = orders[0]
            return OneClickResult(o.id, checkout_id, paid.payment_id, "paid", o.currency,
                                  int(o.items_amount), int(o.shipping_amount), paid.amount,
                                  replayed=True)
        time.sleep(delay)
        delay = min(delay * 2, 0.1)


# group commit ---------------------------------------------------------------------------
@dataclass(frozen=True)
class BuyNow:
    """One buy-now request of a group."""

    buyer_id: int
    sku: str
    quantity: int
    idempotency_key: str


Outcome = OneClickResult | Exception


def one_click_group(engine: Engine, requests: Sequence[BuyNow], *,
                    now: datetime | None = None,
                    provider: PaymentProvider | None = None) -> list[Outcome]:
    """`one_click` for several concurrent requests at once (group commit): per request, in
    order, its result or the exception `one_click` would have raised for it.

    On PostgreSQL the requests' context reads go as one statement, their checkouts as one
    statement (one transaction: `SharedUnitOfWork`), their provider calls as one (when
    the provider takes many, `authorize_and_capture_many`) and the payments' records as
    one more: four round trips and three commits for the whole group instead of four
    round trips and three commits per request. Every request answers exactly as alone.
    Anything unusual for a request (a replayed key, no such SKU, a refusal, a declined
    card) sends it down `one_click`'s own path, and when
    a shared statement fails (a reservation that the group's summed quantities find
    short, a key claimed concurrently, a lock conflict), everything of that statement is
    rolled back and each of its requests runs alone: correctness never rests on the
    group, only the cost does.
    """
    prov = provider or payments.get_provider()
    outcomes: list[Outcome | None] = [None] * len(requests)
    alone: list[int] = []  # requests that take one_click's own path

    def run_alone(i: int) -> Outcome:
        r = requests[i]
        try:
            return one_click(UnitOfWork(engine), r.buyer_id, r.sku, r.quantity,
                             idempotency_key=r.idempotency_key, now=now, provider=prov)
        except Exception as exc:  # the request's own answer
            return exc

    hooks: dict[int, _Hooks] = {}
    for i, r in enumerate(requests):
        try:
            hooks[i] = _prepare(r.buyer_id, r.sku, r.quantity, r.idempotency_key, now)
        except Exception as exc:
            outcomes[i] = exc
    if len(hooks) < 2 or not writes_behind(engine):
        alone.extend(hooks)
        hooks = {}
    placed = _place_group(engine, requests, hooks, alone) if hooks else {}
    if placed:
        _pay_group(engine, hooks, placed, prov, outcomes)
    for i in sorted(alone):
        outcomes[i] = run_alone(i)
    assert all(o is not None for o in outcomes)
    return outcomes  # type: ignore[return-value]


def _place_group(engine: Engine, requests: Sequence[BuyNow], hooks: dict[int, _Hooks],
                 alone: list[int]) -> dict[int, CheckoutResult]:
    """The usual requests' checkouts in one transaction; the others into `alone`."""
    group = SharedUnitOfWork(engine).open()
    try:
        contexts = group.repos.money.one_click_contexts(
            [h.context_params() for h in hooks.values()])
    except BaseException:
        group.close(ok=False)
        raise
    calls: dict[int, Callable[[UnitOfWork], CheckoutResult]] = {}
    for (i, h), rows in zip(hooks.items(), contexts, strict=True):
        if not rows or rows[0].key_id is not None:  # no such SKU, or a replay
            alone.append(i)
            continue
        h.rows = rows
        r = requests[i]
        calls[i] = functools.partial(_checkout_in, buyer_id=r.buyer_id,
                                     line=CartLine(r.sku, r.quantity), hooks=h)
    placed, failed = _together(group, calls)
    alone.extend(failed)
    return placed


def _record_in(uow: UnitOfWork, *, plan: payments._Plan, provider: PaymentProvider,
               auth: Any, cap: Any) -> payments.Paid:
    return payments._recorded(uow, plan, provider, auth, cap)


def _checkout_in(uow: UnitOfWork, *, buyer_id: int, line: CartLine,
                 hooks: _Hooks) -> CheckoutResult:
    return checkout(uow, buyer_id, [line], hooks=hooks, known=hooks.known)


def _together(group: SharedUnitOfWork, calls: dict[int, Callable[[UnitOfWork], Any]]
              ) -> tuple[dict[int, Any], list[int]]:
    """Each call in the open shared unit, then its commit: the committed calls' results
    by key, and the keys to run alone (a call that raised, its writes dropped; every call
    when the shared statement failed, nothing of it kept)."""
    done: dict[int, Any] = {}
    alone: list[int] = []
    try:
        for i, call in calls.items():
            try:
                done[i] = call(group)
            except Exception:
                alone.append(i)
    except BaseException:
        group.close(ok=False)
        raise
    try:
        group.commit()
    except Exception:
        return {}, [*alone, *done]
    return done, alone


def _pay_group(engine: Engine, hooks: dict[int, _Hooks], placed: dict[int, CheckoutResult],
               provider: PaymentProvider, outcomes: list[Outcome | None]) -> None:
    """Pay the placed orders into `outcomes`: the provider per order, the records in one
    transaction."""
    plans = {i: _plan(hooks[i], result) for i, result in placed.items()}
    calls = [payments.first_pair_call(plan) for plan in plans.values()]
    # A provider that takes many first pairs at once does (the durable test provider: one
    # statement); one that takes a pair does it per order; None: `charge` calls it.
    many = getattr(provider, "authorize_and_capture_many", None)
    both = getattr(provider, "authorize_and_capture", None)
    try:
        pairs = many(calls) if many is not None else [
            None if both is None else both(**call) for call in calls]
    except Exception:  # `charge` meets it again and answers as alone
        pairs = [None] * len(calls)
    captured: dict[int, tuple[payments._Plan, Any, Any]] = {}
    for (i, plan), pair in zip(plans.items(), pairs, strict=True):
        if pair is None:  # the provider's own two calls, and a decline's bookkeeping
            try:
                outcomes[i] = _charge(UnitOfWork(engine), hooks[i], placed[i], provider)
            except Exception as exc:
                outcomes[i] = exc
            continue
        captured[i] = (plan, *pair)
    # the records in one transaction; alone, one that failed (a concurrent pay recorded
    # it first, say) or all of them when the shared statement failed
    done, later = _together(SharedUnitOfWork(engine).open(), {
        i: functools.partial(_record_in, plan=plan, provider=provider, auth=auth, cap=cap)
        for i, (plan, auth, cap) in captured.items()}) if captured else ({}, [])
    for i, paid in done.items():
        outcomes[i] = _result(placed[i], paid)
    for i in later:
        plan, auth, cap = captured[i]
        try:
            outcomes[i] = _result(placed[i], payments._recorded(
                UnitOfWork(engine), plan, provider, auth, cap))
        except Exception as exc:
            outcomes[i] = exc
