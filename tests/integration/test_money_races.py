"""Races on a real database: one idempotency key from two threads; payout batches at once."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import select

from silkroute.domain.money import Money
from silkroute.payments.test_provider import TestPaymentProvider
from silkroute.services import payments as P
from silkroute.services.one_click import one_click
from silkroute.store import money_tables as mt
from silkroute.store import tables as t
from tests.integration.money_helpers import assert_invariants, money_market


def test_two_threads_one_key_make_one_order_and_one_charge(uow, engine):
    m = money_market(uow)
    provider = TestPaymentProvider()
    for round_ in range(3):
        start = threading.Barrier(2)

        def buy(_: int, key: str = f"double-click-{round_}",
                start: threading.Barrier = start) -> object:
            start.wait()
            return one_click(uow(), m.buyer_seoul, "TEA-1", 1, idempotency_key=key,
                             provider=provider)

        with ThreadPoolExecutor(2) as pool:
            a, b = list(pool.map(buy, range(2)))
        assert a.order_id == b.order_id and a.payment_id == b.payment_id
        assert sorted([a.replayed, b.replayed]) == [False, True]
    assert provider.capture_count == 3
    with engine.connect() as conn:
        assert len(conn.execute(select(t.orders)).all()) == 3
        assert len(conn.execute(select(mt.payments)).all()) == 3
    assert_invariants(engine)


def test_concurrent_payout_batches_pay_each_payable_once(uow, engine):
    m = money_market(uow)
    provider = TestPaymentProvider()
    for i in range(3):
        r = one_click(uow(), m.buyer_seoul, "TEA-1", 1, idempotency_key=f"p{i}",
                      provider=provider)
        P.ship(uow(), r.order_id)
        P.deliver(uow(), r.order_id)
        P.confirm_receipt(uow(), r.order_id)
    start = threading.Barrier(4)
    keys = ["same", "same", "other-1", "other-2"]

    def run(key: str) -> object:
        start.wait()
        return P.run_payouts(uow(), key, provider=provider)

    with ThreadPoolExecutor(4) as pool:
        runs = list(pool.map(run, keys))
    # 3 x (12,000 - 600) to the seller, 3 x 3,000 to the carrier; paid once in all
    assert provider.paid_out_total("KRW") == Money(3 * 11400 + 3 * 3000, "KRW")
    paying = {r.key for r in runs if r.payouts}
    assert len(paying) == 1
    assert len(provider.payouts) == 2
    assert_invariants(engine)


def test_one_key_from_four_threads_through_the_durable_provider_charges_once(uow, engine):
    """Given the durable test provider (buy-now's authorize and capture in one statement on
    PostgreSQL, one side-file transaction on SQLite), when four threads click "buy now"
    with one key, three times over: one order, one authorization and one capture per key,
    and the other three threads replay it."""
    m = money_market(uow)
    provider = TestPaymentProvider.durable(engine)
    try:
        for round_ in range(3):
            start = threading.Barrier(4)

            def buy(_: int, key: str = f"quad-click-{round_}",
                    start: threading.Barrier = start) -> object:
                start.wait()
                return one_click(uow(), m.buyer_seoul, "TEA-1", 1, idempotency_key=key,
                                 provider=provider)

            with ThreadPoolExecutor(4) as pool:
                results = list(pool.map(buy, range(4)))
            assert len({(r.order_id, r.payment_id, r.total) for r in results}) == 1
            assert sorted(r.replayed for r in results) == [False, True, True, True]
        assert (provider.authorization_count, provider.capture_count) == (3, 3)
        assert provider.captured_total("KRW") == Money(3 * results[0].total, "KRW")
        with engine.connect() as conn:
            assert len(conn.execute(select(t.orders)).all()) == 3
            assert len(conn.execute(select(mt.payments)).all()) == 3
    finally:
        provider.close()
    assert_invariants(engine)


def test_eight_buyers_racing_for_five_units_through_the_durable_provider(uow, engine):
    """Eight threads, eight keys, five units: exactly five paid orders and five captures,
    three clean out-of-stock refusals, and the stock all reserved by the paid orders."""
    from silkroute.domain.errors import OutOfStock

    m = money_market(uow, units=5)
    provider = TestPaymentProvider.durable(engine)
    start = threading.Barrier(8)

    def buy(i: int) -> object:
        start.wait()
        try:
            return one_click(uow(), m.buyer_seoul, "TEA-1", 1, idempotency_key=f"k{i}",
                             provider=provider)
        except OutOfStock as exc:
            return exc

    try:
        with ThreadPoolExecutor(8) as pool:
            results = list(pool.map(buy, range(8)))
        paid = [r for r in results if not isinstance(r, OutOfStock)]
        assert (len(paid), len(results) - len(paid)) == (5, 3)
        assert (provider.authorization_count, provider.capture_count) == (5, 5)
        with engine.connect() as conn:
            assert conn.execute(select(t.stock.c.reserved).join(
                t.skus, t.skus.c.id == t.stock.c.sku_id).where(
                t.skus.c.code == "TEA-1")).scalars().all() == [5]
            assert sorted(r.state for r in conn.execute(select(t.orders.c.state))) == \
                ["paid"] * 5
    finally:
        provider.close()
    assert_invariants(engine)


def test_a_one_click_paid_in_one_provider_call_records_what_two_calls_record(
        uow, engine, monkeypatch):
    """Given the durable provider, an order paid through `authorize_and_capture` and one
    paid by the two calls (the method turned off) leave the same payment, ledger, order
    money, events and provider rows, ids and references aside."""
    from silkroute.store.test_provider_tables import testpay_authorizations, testpay_operations

    m = money_market(uow)
    provider = TestPaymentProvider.durable(engine)
    try:
        one = one_click(uow(), m.buyer_seoul, "TEA-1", 1, idempotency_key="one-call",
                        provider=provider)
        monkeypatch.setattr(provider, "authorize_and_capture", lambda **_kw: None)
        two = one_click(uow(), m.buyer_seoul, "TEA-1", 1, idempotency_key="two-calls",
                        provider=provider)

        def recorded(order_id: int, payment_id: int) -> dict[str, object]:
            with engine.connect() as conn:
                pay = conn.execute(select(mt.payments).where(
                    mt.payments.c.id == payment_id)).one()
                txn = conn.execute(select(mt.ledger_transactions).where(
                    mt.ledger_transactions.c.reference == f"payment:{payment_id}")).one()
                postings = conn.execute(
                    select(mt.ledger_postings.c.kind, mt.ledger_postings.c.amount,
                           mt.ledger_postings.c.currency)
                    .where(mt.ledger_postings.c.transaction_id == txn.id)
                    .order_by(mt.ledger_postings.c.id)).all()
                money = conn.execute(select(mt.order_money).where(
                    mt.order_money.c.order_id == order_id)).one()
                events = conn.execute(
                    select(t.order_events.c.from_state, t.order_events.c.to_state)
                    .where(t.order_events.c.order_id == order_id)
                    .order_by(t.order_events.c.id)).all()
            with provider.engine.connect() as conn:
                auth = conn.execute(select(testpay_authorizations).where(
                    testpay_authorizations.c.reference == pay.authorization_ref)).one()
                ops = conn.execute(
                    select(testpay_operations.c.operation, testpay_operations.c.status,
                           testpay_operations.c.amount, testpay_operations.c.parent)
                    .where(testpay_operations.c.reference.in_(
                        [pay.authorization_ref, pay.capture_ref]))
                    .order_by(testpay_operations.c.id)).all()
            return {
                "payment": (pay.status, pay.amount, pay.currency, pay.provider,
                            pay.decline_reason),
                "ledger": (txn.kind, [tuple(p) for p in postings]),
                "order_money": (money.hold, money.shipping_charged, money.carrier_id,
                                money.carrier_fee, money.currency),
                "events": [tuple(e) for e in events],
                "authorization": (auth.status, auth.amount, auth.currency,
                                  auth.capture_reference == pay.capture_ref),
                "operations": [(o.operation, o.status, o.amount,
                                o.parent == pay.authorization_ref) for o in ops],
            }

        assert recorded(one.order_id, one.payment_id) == \
            recorded(two.order_id, two.payment_id) == {
            "payment": ("captured", one.total, "KRW", "test", None),
            "ledger": ("capture", [("buyer_funding", -one.total, "KRW"),
                                   ("platform_escrow", one.total, "KRW")]),
            "order_money": (one.total, one.shipping_amount, 1, 3000, "KRW"),
            "events": [(None, "created"), ("created", "reserved"), ("reserved", "paid")],
            "authorization": ("captured", one.total, "KRW", True),
            "operations": [("authorize", "authorized", one.total, False),
                           ("capture", "captured", one.total, True)],
        }
    finally:
        provider.close()
    assert_invariants(engine)
