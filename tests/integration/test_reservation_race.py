"""Many threads race for the last units of one SKU on a real database; none oversells."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from silkroute.domain.errors import OutOfStock
from silkroute.services.checkout import CartLine, checkout
from tests.integration.helpers import small_market, stock_of

THREADS = 16
UNITS = 25
ATTEMPTS = 80


def test_exactly_the_units_on_hand_are_sold_under_a_race(uow, backend):
    # given a SKU with 25 units at one location and 16 threads wanting 80 units in total
    m = small_market(uow, stock={("TEA-1", "seoul"): UNITS})
    start = threading.Barrier(THREADS)
    lock = threading.Lock()
    won: list[int] = []
    refused: list[str] = []
    other: list[BaseException] = []

    def buyer(worker: int) -> None:
        start.wait()
        for _ in range(ATTEMPTS // THREADS):
            try:
                res = checkout(uow(), m.buyer_seoul, [CartLine("TEA-1", 1)])
                with lock:
                    won.append(res.orders[0].order_id)
            except OutOfStock as exc:
                with lock:
                    refused.append(exc.message)
            except BaseException as exc:  # anything else is a failure of the test
                with lock:
                    other.append(exc)
            on_hand, reserved = stock_of(uow, "TEA-1", m.seoul)
            assert 0 <= reserved <= on_hand

    # when they all check out one unit at a time, at once
    with ThreadPoolExecutor(THREADS) as pool:
        list(pool.map(buyer, range(THREADS)))

    # then exactly 25 orders won, the rest got a clean out-of-stock error
    assert other == []
    assert len(won) == UNITS
    assert len(set(won)) == UNITS
    assert len(refused) == ATTEMPTS - UNITS
    assert set(refused) == {"out of stock: SKU TEA-1 has 0 available, 1 requested"}
    assert stock_of(uow, "TEA-1", m.seoul) == (UNITS, UNITS)
    with uow() as u:
        assert u.repos.orders.count_by_state() == {"reserved": UNITS}
        reserved = sum(a.quantity for oid in won for a in u.repos.orders.allocations(oid))
    assert reserved == UNITS
    print(f"\n[{backend}] race: {THREADS} threads, {ATTEMPTS} one-unit checkouts for "
          f"{UNITS} units -> {len(won)} won, {len(refused)} out of stock")


def test_a_race_across_two_locations_and_multi_line_carts_never_oversells(uow):
    # given two locations and carts that need both SKUs (lock order matters on PostgreSQL)
    m = small_market(uow, stock={("TEA-1", "seoul"): 6, ("TEA-1", "busan"): 6,
                                 ("MUG-1", "seoul"): 6, ("MUG-1", "busan"): 6})
    start = threading.Barrier(8)
    results: list[str] = []
    lock = threading.Lock()

    def buyer(worker: int) -> None:
        start.wait()
        lines = [CartLine("TEA-1", 1), CartLine("MUG-1", 1)]
        if worker % 2:
            lines.reverse()
        who = m.buyer_seoul if worker % 3 else m.buyer_busan
        for _ in range(4):
            try:
                checkout(uow(), who, lines)
                outcome = "ok"
            except OutOfStock:
                outcome = "out"
            with lock:
                results.append(outcome)

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(buyer, range(8)))
    # then 12 carts of one of each fit, 20 are refused, and every unit is reserved once
    assert results.count("ok") == 12
    assert results.count("out") == 20
    assert [stock_of(uow, s, loc) for s in ("TEA-1", "MUG-1") for loc in (m.seoul, m.busan)
            ] == [(6, 6)] * 4
