"""The online router on a tiny hand-built network: exact plans, reasons, and invariants."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from routing_tinynet import DAY, network, order

from silkroute.domain.errors import ValidationError
from silkroute.routing import index as index_module
from silkroute.routing.capacity import CapacityState
from silkroute.routing.cost import CostModel, OpportunityCosts
from silkroute.routing.index import VIEW_HEAD, build_index
from silkroute.routing.router import (
    _INF,
    CAPACITY_EXHAUSTED,
    NO_CARRIER,
    NO_STOCK,
    _Pricer,
    apply_plan,
    check_feasible,
    resolve,
    route_order,
    stock_sources,
)
from silkroute.sim.demand import DemandSpec, generate_day
from silkroute.sim.network import NetworkSpec, generate_network

MODEL = CostModel.for_currency("KRW")


def _route(net_kwargs: dict | None = None, **order_kwargs):  # type: ignore[no-untyped-def]
    index = build_index(network(**(net_kwargs or {})))
    cap = CapacityState.fresh(index)
    lines = order_kwargs.pop("lines", [(1, 1)])
    req = order(lines, **order_kwargs)
    return route_order(req, index, cap, MODEL), index, cap, req


def test_single_location_cheapest_joint_choice() -> None:
    # given SKU 1 at both warehouses; when a standard order to Beta arrives at 10:00
    plan, _i, _c, _r = _route()
    # then Alpha warehouse (handling 500) + cheap local (2000, on time for sure) wins
    assert plan.ok and not plan.is_split
    (p,) = plan.parcels
    assert (p.location_id, p.carrier_id) == (1, 1)
    assert plan.cost.total == pytest.approx(2500.0)
    assert plan.promise_days == 2 and plan.promised_date == DAY + dt.timedelta(days=2)
    assert [(a.parcels, round(a.cost)) for a in plan.alternatives] == [
        (((2, 1),), 2800), (((1, 2),), 3600)]


def test_split_when_no_location_holds_everything() -> None:
    # given SKU 1 only at Alpha and SKU 2 only at Beta
    plan, *_ = _route({"stock": {(1, 1): 5, (2, 2): 5}}, lines=[(1, 1), (2, 1)])
    assert plan.is_split
    got = sorted((p.location_id, p.carrier_id, p.lines) for p in plan.parcels)
    assert got == [(1, 1, ((1, 1),)), (2, 1, ((2, 1),))]
    # 2500 (Alpha) + 2800 (Beta) + one extra parcel penalty 1500
    assert plan.cost.split == 1500.0
    assert plan.cost.total == pytest.approx(6800.0)


def test_single_location_preferred_over_split() -> None:
    # given Beta holds both lines: one parcel beats two parcels plus the penalty
    plan, *_ = _route(lines=[(1, 1), (2, 1)])
    assert not plan.is_split
    assert plan.parcels[0].location_id == 2
    assert plan.cost.total == pytest.approx(2000 + 800)


def test_member_gets_next_day_and_cutoff_makes_cheap_carrier_late() -> None:
    # at 10:00 the cheap carrier (cut-off 12:00) delivers next day with P=0.9
    plan, *_ = _route(service="member_next_day", hour=10.0)
    assert plan.promise_days == 1
    assert (plan.parcels[0].location_id, plan.parcels[0].carrier_id) == (1, 1)
    assert plan.cost.lateness == pytest.approx(5000 * 0.1)
    assert plan.cost.total == pytest.approx(2000 + 500 + 500)
    # at 15:00 it only picks up tomorrow: P(on time)=0, so the national carrier wins
    late, *_ = _route(service="member_next_day", hour=15.0)
    (p,) = late.parcels
    assert p.carrier_id == 2
    assert p.on_time_probability == pytest.approx(0.98)
    assert late.cost.total == pytest.approx(3000 + 100 + 500 + 5000 * 0.02)


def test_carrier_at_capacity_is_skipped() -> None:
    plan, *_ = _route({"c1_cap": 0})
    assert plan.parcels[0].carrier_id == 2
    assert plan.cost.total == pytest.approx(3000 + 100 + 500)


def test_zone_no_carrier_serves() -> None:
    plan, *_ = _route(zone=4)
    assert not plan.ok and plan.reason == NO_CARRIER


def test_no_stock_and_capacity_exhausted_reasons() -> None:
    plan, *_ = _route(lines=[(1, 11)])
    assert plan.reason == NO_STOCK and "SKU 1" in plan.message
    plan, *_ = _route({"c1_cap": 0, "c2_cap": 0})
    assert plan.reason == CAPACITY_EXHAUSTED


def test_pickup_collected_at_the_chosen_store() -> None:
    plan, *_ = _route({"stock": {(1, 1): 5, (1, 3): 2}}, service="pickup", pickup=3, zone=1)
    (p,) = plan.parcels
    assert (p.location_id, p.carrier_id) == (3, None)
    assert plan.cost.total == pytest.approx(1500.0)
    assert p.on_time_probability == 1.0


def test_pickup_shipped_to_the_point_when_it_has_no_stock() -> None:
    plan, *_ = _route({"stock": {(1, 1): 5}}, service="pickup", pickup=3, zone=1)
    (p,) = plan.parcels
    assert (p.location_id, p.carrier_id) == (1, 1)


def test_pickup_must_name_a_pickup_point() -> None:
    with pytest.raises(ValidationError) as err:
        _route(service="pickup", pickup=1)
    assert err.value.field == "pickup_location_id"


def test_apply_plan_consumes_capacity() -> None:
    plan, index, cap, _r = _route()
    apply_plan(plan, index, cap)
    assert cap.available(index, index.sku_pos[1], index.loc_pos[1]) == 4
    assert cap.car_left[index.car_pos[1]] == 9
    assert cap.loc_left[index.loc_pos[1]] == 99


# ---- properties on a generated network ---------------------------------------------
_NET = generate_network(NetworkSpec("KR", carriers=120, locations=40, seed=5,
                                    design_orders=400))
_INDEX = build_index(_NET)
_ORDERS = generate_day(_NET, DemandSpec(orders=400, seed=5))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(start=st.integers(0, 399), squeeze=st.integers(0, 3))
def test_plans_are_feasible_and_explained(start: int, squeeze: int) -> None:
    cap = CapacityState.fresh(_INDEX)
    cap.car_left //= (1 + 3 * squeeze)  # tighter carrier capacity
    for req in _ORDERS[start:start + 5]:
        plan = route_order(req, _INDEX, cap, MODEL)
        if not plan.ok:
            assert plan.reason in (NO_STOCK, NO_CARRIER, CAPACITY_EXHAUSTED)
            continue
        assert check_feasible(plan, _INDEX, cap, req) == []
        parts = sum(p.cost.total for p in plan.parcels) + plan.cost.split
        assert plan.cost.total == pytest.approx(parts)
        c = plan.cost
        assert c.total == pytest.approx(c.shipping + c.handling + c.lateness + c.split
                                        + c.opportunity)
        for alt in plan.alternatives:
            assert alt.cost >= plan.cost.total - 1e-6
        apply_plan(plan, _INDEX, cap)
    assert (cap.stock >= 0).all() and (cap.car_left >= 0).all() and (cap.loc_left >= 0).all()


# ---- shadow prices: the priced scan against brute force ------------------------------
def test_carrier_price_moves_the_plan_to_the_dearer_carrier() -> None:
    # given a price of 1,200 per parcel on the cheap local carrier (a re-plan's dual)
    index = build_index(network())
    opp = OpportunityCosts.zeros(index)
    opp.carrier[index.car_pos[1]] = 1_200.0
    opp.refresh()
    # when a standard order to Beta arrives at 10:00
    plan = route_order(order([(1, 1)]), index, CapacityState.fresh(index), MODEL, opp)
    # then Alpha + national (3,100 + 500) beats Alpha + cheap local (2,000 + 500 + 1,200)
    (p,) = plan.parcels
    assert (p.location_id, p.carrier_id) == (1, 2)
    assert plan.cost.total == pytest.approx(3_600.0)
    assert plan.cost.opportunity == 0.0
    assert [(a.parcels, round(a.cost)) for a in plan.alternatives] == [
        (((1, 1),), 3700), (((2, 2),), 3900)]
    # and when the price is dropped (refresh), the cheap local carrier is back
    opp.carrier[:] = 0.0
    opp.refresh()
    again = route_order(order([(1, 1)]), index, CapacityState.fresh(index), MODEL, opp)
    assert [(q.location_id, q.carrier_id) for q in again.parcels] == [(1, 1)]
    assert again.cost.total == pytest.approx(2_500.0)


def _brute_force(pr: _Pricer, lp: int, weight: float, base: float,
                 opp: np.ndarray) -> list[tuple[float, int]]:
    """Every carrier able to take the parcel, (total, carrier) by total: fee, lateness,
    scarcity and price, each worked out from the index arrays, no route or view."""
    ctx = pr.ctx
    zf = int(_INDEX.loc_zone[lp])
    band = int(_INDEX.loc_band[lp, ctx.zone])
    closes = float(_INDEX.loc_closes[lp])
    out = []
    for c in _INDEX.pair_carriers(zf, ctx.zone).tolist():
        fee = float(_INDEX.car_fee[c, band])
        left = int(pr.cap.car_left[c])
        if not np.isfinite(fee) or left <= 0 or weight > _INDEX.car_maxw[c]:
            continue
        today = ctx.hour < _INDEX.car_cutoff[c] and ctx.hour < closes
        days = ctx.promise - (0 if today else 1)
        p = float(_INDEX.car_cdf[c, band, min(days, _INDEX.car_cdf.shape[2] - 1)]) \
            if days >= 0 else 0.0
        u = 1.0 - left / max(int(_INDEX.car_capacity[c]), 1)
        total = (base + fee + _INDEX.car_perkg[c] / 1000.0 * weight
                 + ctx.penalty * (1.0 - p) + ctx.scarcity * u ** 4 + float(opp[c]))
        out.append((total, c))
    return sorted(out)


@pytest.mark.parametrize("head", [VIEW_HEAD, 3])
@pytest.mark.parametrize("hour", [9.0, 15.5, 19.5, 23.5])
def test_priced_scan_is_the_brute_force_best(hour: float, head: int,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    # (views of `head` positions: with 3, most scans run past a view's head into its tail)
    monkeypatch.setattr(index_module, "VIEW_HEAD", head)
    # given carrier prices on a third of the carriers, high on the cheap ones (so the
    # scan's order and bounds differ most from the unpriced ones), a day half used
    # (scarcity) and a few carriers used up
    rng = np.random.default_rng(7)
    opp = OpportunityCosts.zeros(_INDEX)
    n = _INDEX.n_carriers
    priced = rng.choice(n, n // 3, replace=False)
    opp.carrier[priced] = np.round(rng.uniform(0.0, 2_000.0, len(priced)), 2)
    opp.refresh()
    cap = CapacityState.fresh(_INDEX)
    cap.car_left[:] = cap.car_left * rng.uniform(0.05, 1.0, n)
    cap.car_left[rng.choice(n, 10, replace=False)] = 0
    checked = moved = 0
    for req in _ORDERS[:40]:
        ctx = resolve(req, _INDEX, MODEL)
        ctx.hour = hour  # evening: many cut-offs have passed; some locations closed
        pr = _Pricer(_INDEX, ctx, cap, opp)
        assert pr.opp_car is not None
        locs = stock_sources(ctx, _INDEX, cap)[0][0]
        line_w = float(ctx.lines[0][1] * ctx.lines[0][2])
        for lp in list(locs)[:6]:
            base = pr.loc_base(lp)
            # (weights on both sides of every reference weight of the views' bounds)
            for weight in (150.0, 1_000.0, 2_200.0, 4_500.0, 18_000.0, line_w):
                want = _brute_force(pr, lp, weight, base, opp.carrier)
                unpriced = _brute_force(pr, lp, weight, base, 0.0 * opp.carrier)
                moved += bool(want) and want[0][1] != unpriced[0][1]
                t1, c1, t2, c2 = pr.best(lp, weight, base, _INF)
                if not want:
                    assert c1 == -1
                    continue
                # then the best carrier and cost, and the next best cost, are brute force's
                assert t1 == pytest.approx(want[0][0], abs=1e-6)
                if len(want) == 1 or want[1][0] - want[0][0] > 1e-6:
                    assert c1 == want[0][1]
                if len(want) > 1:
                    assert t2 == pytest.approx(want[1][0], abs=1e-6)
                # and `best1` under a threshold finds it only when it is below it
                assert pr.best1(lp, weight, base, want[0][0] + 1.0)[1] == c1
                assert pr.best1(lp, weight, base, want[0][0] - 1.0)[1] == -1
                # and the parcel's cost breakdown adds up to the same total
                if weight == line_w:
                    parcel = pr.parcel(lp, c1, [0], [ctx.lines[0][1]], 0.0)
                    assert parcel.cost.total == pytest.approx(t1)
                    assert parcel.cost.opportunity >= float(opp.carrier[c1])
                checked += 1
    assert checked > 300
    assert moved > 20  # the prices do change the best carrier, often
    # and views were made of their heads, light and heavy (sorted at W_HEAVY: parcels above
    # W_MID), and with heads of 3 scans ran past them (their tails were made)
    views = [v for by_key in opp.cache.values() if isinstance(by_key, dict)
             for v in by_key.values()]
    heads = [v for v in views if len(v[0]) == head and v[6] is not None]
    assert {vkey & 1 for by_key in opp.cache.values() if isinstance(by_key, dict)
            for vkey in by_key} == {0, 1}
    assert len(heads) > 0
    if head == 3:
        assert sum(v[6].made for v in heads) > 20



def test_split_stock_price_per_subset_is_the_direct_sum() -> None:
    # given stock prices on every entry and the generated day's multi-line orders
    from silkroute.routing.router import _line_prices, _stock_price, _subset_price

    rng = np.random.default_rng(3)
    prices = np.round(rng.uniform(0.0, 900.0, len(CapacityState.fresh(_INDEX).stock)), 3)
    cap = CapacityState.fresh(_INDEX)
    checked = 0
    for req in [r for r in _ORDERS if len(r.lines) >= 2][:40]:
        ctx = resolve(req, _INDEX, MODEL)
        src = stock_sources(ctx, _INDEX, cap)
        full = (1 << len(ctx.lines)) - 1
        for lp in {lp for locs, _av, _es in src for lp in locs}:
            per_line = _line_prices(prices, src, ctx.lines, lp)
            # then every subset's price from the per-line prices is the direct sum, exactly
            for s in range(1, full + 1):
                assert _subset_price(per_line, s) == _stock_price(prices, src, ctx.lines,
                                                                 lp, s)
                checked += 1
    assert checked > 200
