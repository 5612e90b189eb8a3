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
