"""Money flows on SQLite and PostgreSQL with exact amounts, and their error paths."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from silkroute.domain.catalog import Product, Sku
from silkroute.domain.errors import Conflict, IllegalTransition, NotFound, ValidationError
from silkroute.domain.ledger import RefundExceedsPaid
from silkroute.domain.money import CurrencyMismatch, Money
from silkroute.payments.port import (
    IdempotencyKeyReused,
    PaymentDeclined,
    PaymentError,
    PaymentTimeout,
)
from silkroute.payments.test_provider import TestPaymentProvider
from silkroute.services import payments as P
from silkroute.services.catalog import list_product
from silkroute.services.checkout import CartLine, cancel, checkout
from silkroute.services.one_click import one_click
from silkroute.services.queries import get_order
from tests.integration.helpers import stock_of
from tests.integration.money_helpers import (
    DECLINE,
    RETRY,
    TIMEOUT,
    assert_invariants,
    balances,
    ledger_size,
    money_market,
    reserved_total,
)


@pytest.fixture
def provider():
    prov = TestPaymentProvider()
    old = P.set_provider(prov)
    yield prov
    P.set_provider(old)


def test_one_click_pays_ships_confirms_and_pays_out_exactly(uow, engine, provider):
    m = money_market(uow)
    # 2 x ₩12,000 tea + ₩3,000 shipping (under the ₩50,000 threshold)
    res = one_click(uow(), m.buyer_seoul, "TEA-1", 2, idempotency_key="k1")
    assert (res.state, res.items_amount, res.shipping_amount, res.total) == (
        "paid", 24000, 3000, 27000)
    assert balances(uow) == {f"buyer_funding:{m.buyer_seoul}:KRW": -27000,
                             f"platform_escrow:{res.order_id}:KRW": 27000}
    assert stock_of(uow, "TEA-1", m.seoul) == (20, 2)
    P.ship(uow(), res.order_id)
    assert stock_of(uow, "TEA-1", m.seoul) == (18, 0)
    P.deliver(uow(), res.order_id)
    rel = P.confirm_receipt(uow(), res.order_id, buyer_id=m.buyer_seoul)
    # commission 5% of 24,000 = 1,200; carrier fee = flat 3,000; margin 0
    assert (rel.hold, rel.seller, rel.carrier, rel.platform) == (27000, 22800, 3000, 1200)
    assert get_order(uow(), res.order_id).state == "completed"
    run = P.run_payouts(uow(), "b1")
    assert sorted(run.payouts) == [("carrier_payable:1:KRW", 3000, "KRW"),
                                   (f"seller_payable:{m.seller_id}:KRW", 22800, "KRW")]
    assert provider.paid_out_total("KRW") == Money(25800, "KRW")
    again = P.run_payouts(uow(), "b1")
    assert (again.created, again.sent) == (False, 0)
    assert P.run_payouts(uow(), "b2").payouts == ()
    assert provider.paid_out_total("KRW") == Money(25800, "KRW")
    b = balances(uow)
    assert b[f"seller_payable:{m.seller_id}:KRW"] == 0
    assert b["platform_revenue:0:KRW"] == 1200
    assert b["provider_clearing:0:KRW"] == 25800
    assert_invariants(engine)


def test_same_key_same_request_replays_and_other_request_is_refused(uow, engine, provider):
    m = money_market(uow)
    first = one_click(uow(), m.buyer_seoul, "TEA-1", 1, idempotency_key="dbl")
    size = ledger_size(uow)
    again = one_click(uow(), m.buyer_seoul, "TEA-1", 1, idempotency_key="dbl")
    assert again.replayed and again.order_id == first.order_id
    assert again.payment_id == first.payment_id and again.total == first.total
    assert ledger_size(uow) == size and provider.capture_count == 1
    with pytest.raises(IdempotencyKeyReused) as exc:
        one_click(uow(), m.buyer_seoul, "TEA-1", 2, idempotency_key="dbl")
    assert exc.value.code == "idempotency_key_reused"
    assert ledger_size(uow) == size and provider.capture_count == 1
    assert stock_of(uow, "TEA-1", m.seoul) == (20, 1)


def test_free_shipping_above_threshold_and_for_members(uow, engine, provider):
    m = money_market(uow)
    big = one_click(uow(), m.buyer_seoul, "TEA-1", 5, idempotency_key="big")  # ₩60,000
    assert (big.shipping_amount, big.total) == (0, 60000)
    sub = P.subscribe(uow(), m.buyer_seoul, today=datetime.now(UTC).date())
    assert (sub.status, sub.charged, sub.fee) == ("active", True, 4900)
    member = one_click(uow(), m.buyer_seoul, "MUG-1", 1, idempotency_key="m")
    assert (member.shipping_amount, member.total) == (0, 8000)
    P.ship(uow(), member.order_id)
    P.deliver(uow(), member.order_id)
    rel = P.confirm_receipt(uow(), member.order_id)
    # 5% of 8,000 = 400; carrier still paid ₩3,000: the platform subsidises -2,600
    assert (rel.seller, rel.carrier, rel.platform) == (7600, 3000, -2600)
    assert balances(uow)["membership_revenue:0:KRW"] == 4900
    assert_invariants(engine)


def test_checkout_with_shipping_then_pay_multi_order(uow, engine, provider):
    m = money_market(uow)
    co = P.checkout_with_shipping(uow(), m.buyer_seoul, [CartLine("TEA-1", 1),
                                                         CartLine("MUG-1", 2)])
    (order,) = co.orders
    assert (order.items_amount, order.shipping_amount) == (28000, 3000)
    paid = P.pay(uow(), co.checkout_id)
    assert (paid.amount, paid.order_ids) == (31000, (order.order_id,))
    assert P.pay(uow(), co.checkout_id).payment_id == paid.payment_id  # idempotent
    assert provider.capture_count == 1
    assert_invariants(engine)


@pytest.mark.parametrize("card,error,reason", [
    (DECLINE, PaymentDeclined, "card_declined"),
    (TIMEOUT, PaymentTimeout, None),
])
def test_declined_or_timed_out_card_cancels_and_releases(uow, engine, provider, card, error,
                                                         reason):
    m = money_market(uow)
    P.add_card(uow(), m.buyer_seoul, card)
    size = ledger_size(uow)
    with pytest.raises(error) as exc:
        one_click(uow(), m.buyer_seoul, "TEA-1", 2, idempotency_key="bad")
    if reason:
        assert exc.value.reason == reason and "payment declined: card_declined" in str(exc.value)
    assert ledger_size(uow) == size
    assert reserved_total(engine) == 0
    assert get_order(uow(), 1).state == "cancelled"
    with pytest.raises(PaymentError) as replay:  # the same key gives the same answer
        one_click(uow(), m.buyer_seoul, "TEA-1", 2, idempotency_key="bad")
    assert replay.value.code == exc.value.code
    assert provider.capture_count == 0
    assert_invariants(engine)


def test_approve_on_retry_card_is_charged_once(uow, engine, provider):
    m = money_market(uow)
    P.add_card(uow(), m.buyer_seoul, RETRY)
    res = one_click(uow(), m.buyer_seoul, "TEA-1", 1, idempotency_key="r")
    assert res.state == "paid" and provider.capture_count == 1


def test_unknown_foreign_missing_card_and_currency_mismatch(uow, engine, provider):
    m = money_market(uow)
    co = checkout(uow(), m.buyer_seoul, [CartLine("TEA-1", 1)])
    with pytest.raises(NotFound, match="payment_method: no payment method 99") as e1:
        P.pay(uow(), co.checkout_id, 99)
    assert e1.value.code == "unknown_payment_method"
    other = P.add_card(uow(), m.buyer_busan, "5555 5555 5555 4444")
    with pytest.raises(NotFound, match="is not one of buyer") as e2:
        P.pay(uow(), co.checkout_id, other.payment_method_id)
    assert e2.value.code == "foreign_payment_method"
    usd = P.add_card(uow(), m.buyer_seoul, "5555 5555 5555 4444", currency="USD",
                     default=False)
    with pytest.raises(CurrencyMismatch, match="pays in USD, the orders are in KRW"):
        P.pay(uow(), co.checkout_id, usd.payment_method_id)
    with pytest.raises(ValidationError, match="has no saved payment method") as e3:
        one_click(uow(), _buyer_without_card(uow), "TEA-1", 1, idempotency_key="x")
    assert e3.value.code == "no_payment_method"
    assert ledger_size(uow) == (0, 0)
    assert reserved_total(engine) == 1  # the valid reserved order stays payable
    assert P.pay(uow(), co.checkout_id).amount == 12000  # no template applied by checkout()


def _buyer_without_card(uow) -> int:  # noqa: ANN001
    from silkroute.services.buyers import register_buyer

    return register_buyer(uow(), "No Card", city="Seoul").buyer_id


def test_refunds_before_and_after_release_exact(uow, engine, provider):
    m = money_market(uow)
    a = one_click(uow(), m.buyer_seoul, "TEA-1", 2, idempotency_key="a")  # 27,000
    with pytest.raises(RefundExceedsPaid, match="exceeds the ₩27,000 still refundable"):
        P.refund(uow(), a.order_id, 27001)
    with pytest.raises(CurrencyMismatch):
        P.refund(uow(), a.order_id, Money(100, "USD"))
    part = P.refund(uow(), a.order_id, 5000)
    assert (part.stage, part.order_state, part.amount) == ("from_escrow", "paid", 5000)
    assert stock_of(uow, "TEA-1", m.seoul) == (20, 2)
    P.ship(uow(), a.order_id)
    P.deliver(uow(), a.order_id)
    rel = P.confirm_receipt(uow(), a.order_id)
    # goods net of refund 19,000: commission 950; carrier 3,000; shipping 3,000
    assert (rel.hold, rel.seller, rel.carrier, rel.platform) == (22000, 18050, 3000, 950)
    after = P.refund(uow(), a.order_id)
    assert (after.stage, after.amount, after.order_state) == ("after_release", 22000,
                                                              "refunded")
    assert balances(uow)[f"seller_payable:{m.seller_id}:KRW"] == 18050 - 22000  # owes 3,950
    with pytest.raises(RefundExceedsPaid, match="already fully refunded"):
        P.refund(uow(), a.order_id)
    assert provider.refunded_total("KRW") == Money(27000, "KRW")
    # full refund before shipment gives the stock back
    b = one_click(uow(), m.buyer_seoul, "MUG-1", 3, idempotency_key="b")
    full = P.refund(uow(), b.order_id)
    assert (full.amount, full.order_state, full.units_released) == (27000, "refunded", 3)
    assert stock_of(uow, "MUG-1", m.seoul) == (20, 0)
    run = P.run_payouts(uow(), "after-clawback")
    assert run.payouts == (("carrier_payable:1:KRW", 3000, "KRW"),)  # seller owes: unpaid
    assert_invariants(engine)


def test_a_refund_retried_after_a_rollback_refunds_once(uow, engine, provider,
                                                        monkeypatch):
    m = money_market(uow)
    paid = one_click(uow(), m.buyer_seoul, "TEA-1", 2, idempotency_key="r")  # 27,000
    # given the provider refunds, then the platform's transaction fails before commit
    from silkroute.store.money_repo import MoneyRepo

    real = MoneyRepo.set_refund_provider_ref
    calls = []

    def fail_once(self, refund_id, ref):
        calls.append(ref)
        if len(calls) == 1:
            raise RuntimeError("database went away")
        return real(self, refund_id, ref)

    monkeypatch.setattr(MoneyRepo, "set_refund_provider_ref", fail_once)
    with pytest.raises(RuntimeError, match="went away"):
        P.refund(uow(), paid.order_id, 5000)
    assert provider.refunded_total("KRW") == Money(5000, "KRW")  # the provider did refund
    # when the caller retries / then the provider replays its first refund: 5,000 in total
    again = P.refund(uow(), paid.order_id, 5000)
    assert (again.amount, calls[1] == calls[0]) == (5000, True)
    assert provider.refunded_total("KRW") == Money(5000, "KRW")
    # and a second, distinct refund of the same amount is a new refund
    P.refund(uow(), paid.order_id, 5000)
    assert provider.refunded_total("KRW") == Money(10000, "KRW")
    assert_invariants(engine)


def test_refund_of_unpaid_or_unknown_order_is_refused(uow, engine, provider):
    m = money_market(uow)
    co = checkout(uow(), m.buyer_seoul, [CartLine("TEA-1", 1)])
    with pytest.raises(P.OrderNotPaid, match="order 1 is not paid") as exc:
        P.refund(uow(), co.orders[0].order_id)
    assert exc.value.code == "order_not_paid"
    with pytest.raises(NotFound):
        P.refund(uow(), 999)
    with pytest.raises(IllegalTransition):
        P.ship(uow(), co.orders[0].order_id)
    assert ledger_size(uow) == (0, 0)


def test_auto_confirm_after_configurable_days(uow, engine, provider):
    m = money_market(uow)
    res = one_click(uow(), m.buyer_seoul, "TEA-1", 1, idempotency_key="ac")
    P.ship(uow(), res.order_id)
    delivered = datetime(2026, 11, 1, 12, tzinfo=UTC)
    P.deliver(uow(), res.order_id, now=delivered)
    assert P.auto_confirm(uow(), now=delivered + timedelta(days=9)) == []
    assert P.auto_confirm(uow(), days=3, now=delivered + timedelta(days=3)) == [res.order_id]
    assert get_order(uow(), res.order_id).state == "completed"
    assert P.auto_confirm(uow(), now=delivered + timedelta(days=30)) == []
    assert_invariants(engine)


def test_membership_subscribe_renew_lapse(uow, engine, provider):
    m = money_market(uow)
    nov = date(2026, 11, 5)
    s = P.subscribe(uow(), m.buyer_seoul, today=nov)
    assert (s.status, s.period, s.charged, s.paid_through) == ("active", "2026-11", True,
                                                                 "2026-11")
    r = P.renew(uow(), m.buyer_seoul, today=nov)
    assert r.charged is False  # idempotent per period
    dec = P.renew(uow(), m.buyer_seoul, today=date(2026, 12, 2))
    assert (dec.charged, dec.paid_through) == (True, "2026-12")
    assert balances(uow)["membership_revenue:0:KRW"] == 9800
    lapsed = P.lapse(uow(), m.buyer_seoul, today=date(2026, 12, 10))
    assert lapsed.status == "active"  # benefits last to the end of December
    with pytest.raises(Exception, match="lapsed"):
        P.renew(uow(), m.buyer_seoul, today=date(2027, 1, 3))
    # a declined renewal lapses the membership
    P.add_card(uow(), m.buyer_busan, DECLINE)
    with pytest.raises(PaymentDeclined):
        P.subscribe(uow(), m.buyer_busan, today=nov)
    assert balances(uow)["membership_revenue:0:KRW"] == 9800
    assert_invariants(engine)


def test_commission_rate_per_category(uow, engine, provider):
    m = money_market(uow)
    list_product(uow(), Product(m.seller_id, "Gadget", (Sku("GAD-1", Money(20000, "KRW"),
                                                            500),), category="electronics"))
    from silkroute.services.catalog import set_stock

    set_stock(uow(), "GAD-1", m.seoul, 3)
    P.set_commission_rate(uow(), "electronics", "0.08")
    res = one_click(uow(), m.buyer_seoul, "GAD-1", 1, idempotency_key="g")
    P.ship(uow(), res.order_id)
    P.deliver(uow(), res.order_id)
    rel = P.confirm_receipt(uow(), res.order_id)
    assert (rel.seller, rel.platform) == (18400, 1600)


def test_an_order_cancelled_while_its_payment_is_captured_records_nothing(
        uow, engine, provider, monkeypatch):
    m = money_market(uow)
    co = P.checkout_with_shipping(uow(), m.buyer_seoul, [CartLine("TEA-1", 1)])
    (order,) = co.orders
    capture = provider.capture

    def capture_then_cancel(**kwargs):  # the order is cancelled in between
        result = capture(**kwargs)
        cancel(uow(), order.order_id)
        return result

    monkeypatch.setattr(provider, "capture", capture_then_cancel)
    before = ledger_size(uow)
    with pytest.raises(Conflict) as info:
        P.pay(uow(), co.checkout_id)
    assert (info.value.code, info.value.field) == ("concurrent_change", "state")
    assert str(info.value) == (f"orders [{order.order_id}] changed concurrently; "
                               "nothing recorded")
    assert ledger_size(uow) == before
    assert get_order(uow(), order.order_id).state == "cancelled"
    with uow() as u:
        assert u.repos.money.payment_of_checkout(co.checkout_id) is None
