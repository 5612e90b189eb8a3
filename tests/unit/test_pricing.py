"""Price-guided routing: a greedy choice starves a later order, the priced one does not."""

from __future__ import annotations

import dataclasses

import pytest
from routing_tinynet import network, order

from silkroute.bench.route import PRICED, RouteBenchSpec, run_route_bench
from silkroute.routing.capacity import CapacityState
from silkroute.routing.cost import CostModel
from silkroute.routing.hindsight import solve_hindsight
from silkroute.routing.index import build_index
from silkroute.routing.pricing import (
    PricedRouter,
    gap_captured,
    plan_prices,
    unfulfilled_penalty,
)
from silkroute.routing.router import apply_plan, route_order

MODEL = CostModel.for_currency("KRW")


def _day() -> list:  # type: ignore[type-arg]
    # A: a member order to Beta at 15:00 (the worked example: the national carrier wins,
    # 3,700, the cheap local one has passed its cut-off: 7,500); B: a standard order to Gamma
    # at 15:00, which only the national carrier serves.
    a = dataclasses.replace(order([(1, 1)], zone=2, service="member_next_day", hour=15.0),
                            order_ref="A")
    b = dataclasses.replace(order([(1, 1)], zone=3, hour=15.0), order_ref="B")
    return [a, b]


def _replay(route, orders, index):  # type: ignore[no-untyped-def]
    cap = CapacityState.fresh(index)
    plans = []
    for o in orders:
        plan = route(o, cap)
        if plan.ok:
            apply_plan(plan, index, cap)
        plans.append(plan)
    return plans


def _total(plans) -> float:  # type: ignore[no-untyped-def]
    return sum(p.cost.real if p.ok else unfulfilled_penalty(MODEL) for p in plans)


def test_greedy_starves_the_later_order_and_the_priced_router_does_not() -> None:
    # given the national carrier can take one parcel today
    index = build_index(network(c2_cap=1))
    a, b = _day()
    # when the myopic router routes the day
    myopic = _replay(lambda o, c: route_order(o, index, c, MODEL), [a, b], index)
    # then A takes the national carrier (3,700) and B, which only it serves, is starved
    assert [(p.location_id, p.carrier_id) for p in myopic[0].parcels] == [(1, 2)]
    assert myopic[0].cost.real == pytest.approx(3_700.0)
    assert not myopic[1].ok and myopic[1].reason == "capacity_exhausted"
    # given prices from a forecast with more Gamma orders than the carrier can take
    prices, info = plan_prices([a, b, dataclasses.replace(b, order_ref="B2")], index,
                               CapacityState.fresh(index), MODEL)
    # the national carrier's parcel is worth what a Gamma order saves: 20,000 - 3,600
    assert info["status"] == "optimal"
    national = index.car_pos[2]
    assert prices.carrier[national] == pytest.approx(20_000.0 - 3_600.0)
    assert prices.carrier[index.car_pos[1]] == 0.0
    # when the priced router routes the same day
    router = PricedRouter(index, prices, MODEL)
    priced = _replay(router.route, [a, b], index)
    # then A goes Alpha + cheap local (7,500: late for sure) and B gets the national carrier
    assert [(p.location_id, p.carrier_id) for p in priced[0].parcels] == [(1, 1)]
    assert priced[0].cost.real == pytest.approx(7_500.0)
    assert [(p.location_id, p.carrier_id) for p in priced[1].parcels] == [(1, 2)]
    assert priced[1].cost.real == pytest.approx(3_600.0)
    assert _total(myopic) == pytest.approx(23_700.0)
    assert _total(priced) == pytest.approx(11_100.0)
    # and the hindsight plan of the day is the priced one
    hs = solve_hindsight([a, b], index, CapacityState.fresh(index), MODEL)
    assert hs.cost == pytest.approx(11_100.0)
    assert hs.lp_value == pytest.approx(11_100.0)
    assert gap_captured(_total(myopic), _total(priced), hs.cost) == pytest.approx(1.0)


def test_prices_are_zero_when_capacity_is_slack() -> None:
    index = build_index(network(c2_cap=10))
    a, b = _day()
    prices, info = plan_prices([a, b, b], index, CapacityState.fresh(index), MODEL)
    assert info["status"] == "optimal"
    assert prices.is_zero()
    # and the priced router then plans exactly as the myopic one
    router = PricedRouter(index, prices, MODEL)
    for o in (a, b):
        cap = CapacityState.fresh(index)
        assert router.route(o, cap).parcels == route_order(o, index, cap, MODEL).parcels


def test_gap_captured_on_hand_made_numbers() -> None:
    assert gap_captured(100.0, 60.0, 20.0) == pytest.approx(0.5)
    assert gap_captured(100.0, 100.0, 20.0) == pytest.approx(0.0)
    assert gap_captured(100.0, 110.0, 20.0) == pytest.approx(-0.125)
    assert gap_captured(100.0, 20.0, 20.0) == pytest.approx(1.0)
    assert gap_captured(100.0, 90.0, 100.0) is None  # no gap to close


def test_hindsight_is_no_worse_than_any_policy_on_a_small_day() -> None:
    out = run_route_bench(RouteBenchSpec(carriers=80, locations=40, orders=400, seed=3))
    pols = out["policies"]
    key = "cost_per_order_with_unfulfilled"
    assert PRICED in pols and "hindsight" in pols
    assert set(pols["hindsight"]) == set(pols["silkroute"])
    for name, row in pols.items():
        assert pols["hindsight"][key] <= row[key] + 0.01, name
    assert out["hindsight"]["lp_value"] <= out["hindsight"]["cost"] + 1e-6
    g = out["gap_captured"]
    mine = pols["silkroute"][key]
    gap = mine - pols["hindsight"][key]
    if g is not None:
        assert g == pytest.approx((mine - pols[PRICED][key]) / gap, abs=2e-3)
