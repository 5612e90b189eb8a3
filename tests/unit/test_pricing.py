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
    Prices,
    RollingPrices,
    build_columns,
    gap_captured,
    group_orders,
    plan_prices,
    solve_columns,
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


def _lp_by_linprog(cols, demand, index, cap):  # type: ignore[no-untyped-def]
    """The same LP without the column bounds, by scipy's linprog: its optimum."""
    import numpy as np
    from scipy import sparse
    from scipy.optimize import linprog

    n_car, n_loc = index.n_carriers, index.n_locations
    n_rows = n_car + n_loc + len(index.stock0)
    rows = np.concatenate([np.asarray(cols.car_use[1]), n_car + np.asarray(cols.loc_use[1]),
                           n_car + n_loc + np.asarray(cols.stock_use[1])]).astype(int)
    cidx = np.concatenate([cols.car_use[0], cols.loc_use[0], cols.stock_use[0]]).astype(int)
    vals = np.concatenate([np.ones(len(cols.car_use[0]) + len(cols.loc_use[0])),
                           np.asarray(cols.stock_use[2], dtype=float)])
    a_ub = sparse.csr_matrix((vals, (rows, cidx)), shape=(n_rows, len(cols)))
    b_ub = np.concatenate([cap.car_left, cap.loc_left, cap.stock]).astype(float)
    a_eq = sparse.csr_matrix((np.ones(len(cols)), (cols.group, np.arange(len(cols)))),
                             shape=(len(demand), len(cols)))
    res = linprog(cols.cost, A_ub=a_ub, b_ub=b_ub, A_eq=a_eq, b_eq=demand,
                  bounds=(0, None), method="highs")
    assert res.status == 0
    return res.fun, a_ub, b_ub


def _dual_value(cols, demand, prices, a_ub, b_ub):  # type: ignore[no-untyped-def]
    """The dual objective of the unbounded LP at the capacity prices `prices` (>= 0), each
    group's dual at its least priced column: it equals the LP optimum iff the prices are
    optimal duals."""
    import numpy as np

    p = np.concatenate([prices.carrier, prices.location, prices.stock])
    priced = np.asarray(cols.cost) + a_ub.T @ p
    best = np.full(len(demand), np.inf)
    np.minimum.at(best, np.asarray(cols.group), priced)
    return float(np.dot(demand, best) - np.dot(b_ub, p))


def test_forecast_lp_value_and_prices_match_the_lp_without_column_bounds() -> None:
    # given the tiny network with one national parcel and a forecast of A, B and B2
    index = build_index(network(c2_cap=1))
    a, b = _day()
    cap = CapacityState.fresh(index)
    groups = group_orders([a, b, dataclasses.replace(b, order_ref="B2")], index, MODEL)
    demand = [len(m) for m in groups.members]
    cols = build_columns(groups, index, MODEL, cap, unfulfilled_penalty(MODEL))
    # when the LP is solved with the (implied) bounds x_k <= demand of its group
    sol = solve_columns(cols, demand, index, cap)
    # then its value is that of the LP without them: A cheap local 7,500, one B national
    # 3,600, the other B unfulfilled 20,000
    value, a_ub, b_ub = _lp_by_linprog(cols, demand, index, cap)
    assert sol.status == "optimal"
    assert sol.value == pytest.approx(31_100.0)
    assert value == pytest.approx(31_100.0)
    # and its prices are optimal duals of the LP without the bounds (strong duality)
    assert _dual_value(cols, demand, sol.prices, a_ub, b_ub) == pytest.approx(31_100.0)
    assert sol.prices.carrier[index.car_pos[2]] == pytest.approx(16_400.0)


def test_generated_forecast_lp_matches_the_lp_without_column_bounds() -> None:
    from silkroute.routing.index import build_index as build
    from silkroute.sim.demand import DemandSpec, generate_day
    from silkroute.sim.network import NetworkSpec, generate_network

    # given a generated network sized for 1,500 orders and a forecast day of 1,500 orders
    net = generate_network(NetworkSpec("KR", 80, 40, 3, design_orders=1_500))
    index = build(net)
    cap = CapacityState.fresh(index)
    forecast = generate_day(net, DemandSpec(orders=1_500, seed=1_003))
    groups = group_orders(forecast, index, MODEL)
    demand = [len(m) for m in groups.members]
    cols = build_columns(groups, index, MODEL, cap, unfulfilled_penalty(MODEL))
    # when the forecast LP is solved
    sol = solve_columns(cols, demand, index, cap)
    value, a_ub, b_ub = _lp_by_linprog(cols, demand, index, cap)
    # then it is optimal, with the unbounded LP's value, and its prices are >= 0 and optimal
    # duals of the unbounded LP
    assert sol.status == "optimal"
    assert sol.value == pytest.approx(value, rel=1e-9)
    assert min(sol.prices.carrier.min(), sol.prices.location.min(),
               sol.prices.stock.min()) >= 0.0
    assert _dual_value(cols, demand, sol.prices, a_ub, b_ub) == pytest.approx(value, rel=1e-9)
    # and some capacity binds (the day is sized to be tight): a positive price
    assert not sol.prices.is_zero()


def test_scarce_stock_gets_the_price_of_the_next_best_location() -> None:
    # given one unit of SKU 1 at the Alpha warehouse (handling 500) and five at Beta (800),
    # and two orders of SKU 1 to Alpha at 10:00 (cheap local carrier, 2,000, on time)
    index = build_index(network(stock={(1, 1): 1, (1, 2): 5, (2, 2): 5}))
    o = dataclasses.replace(order([(1, 1)], zone=1), order_ref="S")
    # when the forecast LP prices stock
    prices, info = plan_prices([o, dataclasses.replace(o, order_ref="S2")], index,
                               CapacityState.fresh(index), MODEL)
    # then one order ships from Alpha (2,500), the other from Beta (2,800), and the scarce
    # unit at Alpha is worth the difference, 300; nothing else is priced
    assert info["status"] == "optimal"
    assert info["lp_value"] == pytest.approx(5_300.0)
    e = index.hot().sku_entry[index.sku_pos[1]][index.loc_pos[1]]
    assert prices.stock[e] == pytest.approx(300.0)
    assert prices.stock.sum() == pytest.approx(300.0)
    assert not prices.carrier.any() and not prices.location.any()


def test_rolling_prices_replan_on_the_rest_of_the_forecast() -> None:
    # given the day of A (15:00) and B, B2 (16:00), one national parcel, and prices re-planned
    # twice: before A and before B
    index = build_index(network(c2_cap=1))
    a, b = _day()
    b = dataclasses.replace(b, placed_hour=16.0)
    forecast = [a, b, dataclasses.replace(b, order_ref="B2")]
    router = PricedRouter(index, Prices.zeros(index), MODEL)
    rolling = RollingPrices(router, [forecast], 2, resolves=2)
    cap = CapacityState.fresh(index)
    plans = []
    for i, o in enumerate([a, b]):
        rolling.before(i, o, cap)
        plan = router.route(o, cap)
        apply_plan(plan, index, cap)
        plans.append(plan)
    # then the first plan saw the whole forecast and priced the national carrier, so A went
    # cheap local; the second saw only B and B2 (16:00 on)
    assert [r["at_order"] for r in rolling.log] == [0, 1]
    assert [r["forecast_orders"] for r in rolling.log] == [3, 2]
    # (each re-plan routed the forecast's orders of the stretch to the next one ahead)
    assert [r["warmed_orders"] for r in rolling.log] == [1, 2]
    assert [(p.location_id, p.carrier_id) for p in plans[0].parcels] == [(1, 1)]
    assert [(p.location_id, p.carrier_id) for p in plans[1].parcels] == [(1, 2)]
    summary = rolling.summary()
    assert summary["resolves"] == 2 and summary["resolve_statuses"] == ["optimal"]
    assert summary["forecast_orders"] == 3


def test_a_forecast_of_two_days_prices_one_expected_day() -> None:
    # given the same three-order day twice, as a two-day forecast
    index = build_index(network(c2_cap=1))
    a, b = _day()
    day = [a, b, dataclasses.replace(b, order_ref="B2")]
    one, info1 = plan_prices(day, index, CapacityState.fresh(index), MODEL)
    two, info2 = plan_prices(day + day, index, CapacityState.fresh(index), MODEL, days=2)
    # then it is the one-day LP: same value and the national carrier's price, 16,400
    assert info2["days"] == 2 and info2["forecast_orders"] == 6
    assert info2["lp_value"] == pytest.approx(info1["lp_value"]) == pytest.approx(31_100.0)
    assert two.carrier[index.car_pos[2]] == pytest.approx(16_400.0)
    assert one.carrier[index.car_pos[2]] == pytest.approx(16_400.0)


def test_admission_declines_an_order_whose_capacity_is_worth_more_than_it_saves() -> None:
    # given B (to Gamma, only the national carrier serves it: 3,600) and a national parcel
    # priced at 17,000
    index = build_index(network(c2_cap=5))
    _a, b = _day()
    prices = Prices.zeros(index)
    prices.carrier[index.car_pos[2]] = 17_000.0
    penalty = unfulfilled_penalty(MODEL)
    plans = {}
    for weight in (0.0, 0.5, 1.0):
        router = PricedRouter(index, prices, MODEL, decline_above=penalty,
                              admission_weight=weight)
        plans[weight] = router.route(b, CapacityState.fresh(index))
    # then without the admission weight B ships: real 3,600, opportunity 17,000
    shipped = plans[0.0]
    assert [(p.location_id, p.carrier_id) for p in shipped.parcels] == [(1, 2)]
    assert shipped.cost.real == pytest.approx(3_600.0)
    assert shipped.cost.opportunity == pytest.approx(17_000.0)
    # with half the opportunity charged it still ships (3,600 + 8,500 < 20,000)
    assert plans[0.5].parcels == shipped.parcels
    # with all of it, 3,600 + 17,000 > 20,000: declined, nothing planned
    declined = plans[1.0]
    assert not declined.ok and declined.reason == "declined" and declined.parcels == ()
    assert declined.message == ("declined: the plan's cost and the capacity it takes are "
                                "worth more than the unfulfilled-order penalty")
    # a negative weight is refused
    with pytest.raises(ValueError, match="admission_weight must not be negative"):
        PricedRouter(index, prices, MODEL, decline_above=penalty, admission_weight=-1.0)


@pytest.mark.parametrize("workers", [1, 2])
def test_rolling_prices_charge_the_mean_over_forecast_days(workers: int) -> None:
    # given one national parcel and two sampled forecast days: A, B, B2 (an extra parcel
    # would serve B2: worth 20,000 - 3,600) and A, B (it would let A ship national instead
    # of cheap local: worth 7,500 - 3,700)
    index = build_index(network(c2_cap=1))
    a, b = _day()
    days = [[a, b, dataclasses.replace(b, order_ref="B2")], [a, b]]
    router = PricedRouter(index, Prices.zeros(index), MODEL)
    rolling = RollingPrices(router, days, 2, resolves=1, workers=workers)
    rolling.before(0, a, CapacityState.fresh(index))
    # then the router charges the mean of the two days' prices
    national = index.car_pos[2]
    assert router.prices.carrier[national] == pytest.approx((16_400.0 + 3_800.0) / 2)
    assert router.prices.carrier.sum() == pytest.approx(10_100.0)
    assert not router.prices.stock.any() and not router.prices.location.any()
    (log,) = rolling.log
    assert log["forecast_days"] == 2 and log["status"] == "optimal"
    assert log["forecast_orders"] == 3 and log["priced_carriers"] == 1
    # and a re-plan needs a forecast
    with pytest.raises(ValueError, match="needs at least one forecast day"):
        RollingPrices(router, [], 2)


def test_warming_with_the_forecast_makes_the_views_and_leaves_the_plans_alone(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from silkroute.routing.index import build_index as build
    from silkroute.sim.demand import DemandSpec, generate_day
    from silkroute.sim.network import NetworkSpec, generate_network

    # given a generated network, a forecast day's prices, and the real day of 600 orders
    net = generate_network(NetworkSpec("KR", 80, 40, 3, design_orders=1_500))
    forecast = generate_day(net, DemandSpec(orders=600, seed=1_003))
    day = generate_day(net, DemandSpec(orders=600, seed=3))
    runs = []
    for warm in (False, True):
        index = build(net)
        built = []
        make = index.priced_view

        def counted(*args, _make=make, _built=built):  # type: ignore[no-untyped-def]
            _built.append(args[0])
            return _make(*args)

        monkeypatch.setattr(index, "priced_view", counted)
        router = PricedRouter(index, Prices.zeros(index), MODEL,
                              decline_above=unfulfilled_penalty(MODEL), admission_weight=2.0)
        rolling = RollingPrices(router, [forecast], len(day), resolves=2, scale=0.4,
                                warm=warm)
        cap = CapacityState.fresh(index)
        plans, in_decisions = [], 0
        for i, o in enumerate(day):
            rolling.before(i, o, cap)
            n0 = len(built)
            plan = router.route(o, cap)
            in_decisions += len(built) - n0
            if plan.ok:
                apply_plan(plan, index, cap)
            plans.append((plan.reason, plan.cost.total,
                          [(p.location_id, p.carrier_id) for p in plan.parcels]))
        assert [r["status"] for r in rolling.log] == ["optimal", "optimal"]
        runs.append((plans, in_decisions, rolling))
    (cold, cold_built, cold_roll), (warmed, warm_built, warm_roll) = runs
    # then every plan is the same, to the last digit of its cost
    assert warmed == cold
    assert sum(1 for p in cold if p[2]) > 550
    # and each re-plan routed the forecast's next 300 orders ahead, so the decisions made
    # far fewer views than they made cold (578 against 319 here)
    assert [r["warmed_orders"] for r in warm_roll.log] == [300, 300]
    assert "warmed_orders" not in cold_roll.log[0]
    assert warm_roll.summary()["warm_seconds_total"] >= 0.0
    assert cold_built > 100
    assert warm_built < 0.6 * cold_built
