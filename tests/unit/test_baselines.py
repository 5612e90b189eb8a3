"""Baseline policies, the policy registry and the router behind checkout's interface."""

from __future__ import annotations

import pytest
from routing_tinynet import network, order

from silkroute.domain.errors import DomainError, OutOfStock, ValidationError
from silkroute.routing.baselines import (
    ROUTERS,
    SilkroutePolicy,
    policy_by_name,
    route_with,
)
from silkroute.routing.capacity import CapacityState
from silkroute.routing.index import build_index
from silkroute.routing.policy import CandidateLocation, NearestWithStockPolicy


def _plan(name: str, stock: dict[tuple[int, int], int], lines: list[tuple[int, int]],
          **kw):  # type: ignore[no-untyped-def]
    index = build_index(network(stock))
    return route_with(name, order(lines, **kw), index, CapacityState.fresh(index))


def test_magento_priority_follows_source_priority() -> None:
    # Beta (priority 1) before Alpha (priority 2), although Alpha is cheaper to ship from
    plan = _plan("magento-priority", {(1, 1): 5, (1, 2): 5}, [(1, 1)])
    assert [(p.location_id, p.carrier_id) for p in plan.parcels] == [(2, 1)]


def test_magento_distance_takes_nearest_and_fills_greedily() -> None:
    # Beta is in the destination zone; it has 1 of 3 units, Alpha the rest: a split
    plan = _plan("magento-distance", {(1, 1): 5, (1, 2): 1}, [(1, 3)])
    assert sorted((p.location_id, p.lines) for p in plan.parcels) == [
        (1, ((1, 2),)), (2, ((1, 1),))]
    assert plan.cost.split == 1500.0


def test_saleor_sorted_and_high_stock() -> None:
    stock = {(1, 1): 2, (1, 2): 9}
    assert _plan("saleor-sorted", stock, [(1, 1)]).parcels[0].location_id == 1
    assert _plan("saleor-high-stock", stock, [(1, 1)]).parcels[0].location_id == 2


def test_nearest_cheapest_picks_cheapest_fee_even_when_late() -> None:
    # member order at 15:00: the cheap local carrier misses its cut-off, the baseline
    # does not care; the silkroute router pays for the national carrier
    stock = {(1, 2): 5}
    base = _plan("nearest-cheapest", stock, [(1, 1)], service="member_next_day", hour=15.0)
    smart = _plan("silkroute", stock, [(1, 1)], service="member_next_day", hour=15.0)
    assert base.parcels[0].carrier_id == 1 and smart.parcels[0].carrier_id == 2
    assert smart.cost.total < base.cost.total
    assert base.cost.lateness == pytest.approx(5000.0)


def test_every_baseline_reports_why_when_no_stock() -> None:
    for name in ROUTERS:
        plan = _plan(name, {(1, 1): 1}, [(1, 2)])
        assert not plan.ok and plan.reason == "no_stock", name


def test_registry_by_name() -> None:
    index = build_index(network())
    assert isinstance(policy_by_name("nearest-with-stock"), NearestWithStockPolicy)
    assert isinstance(policy_by_name("silkroute", index), SilkroutePolicy)
    assert policy_by_name("saleor-high-stock", index).name == "saleor-high-stock"
    with pytest.raises(ValidationError) as err:
        policy_by_name("fastest", index)
    assert err.value.field == "policy"
    with pytest.raises(ValidationError):
        policy_by_name("silkroute")


def test_silkroute_policy_decides_from_checkout_candidates() -> None:
    index = build_index(network())
    policy = SilkroutePolicy(index)
    cands = [CandidateLocation(1, 37.5, 127.0, {1: 3}), CandidateLocation(2, 37.5, 127.2, {1: 1})]
    decision = policy.decide(order([(1, 1)]), cands)
    (s,) = decision.shipments
    assert (s.location_id, s.carrier_id, s.cost, s.lines) == (1, 1, 2500, ((1, 1),))
    assert decision.explanation["cost"]["total"] == 2500.0
    assert decision.explanation["alternatives"]
    assert policy.capacity.car_left[index.car_pos[1]] == 9
    with pytest.raises(OutOfStock):
        policy.decide(order([(1, 9)]), cands)
    with pytest.raises(DomainError) as err:
        policy.decide(order([(1, 1)], zone=4), cands)
    assert err.value.code == "no_carrier"


def test_policy_falls_back_when_locations_are_not_in_the_index() -> None:
    policy = SilkroutePolicy(build_index(network()))
    decision = policy.decide(order([(1, 1)]), [CandidateLocation(99, 37.5, 127.0, {1: 3})])
    assert decision.shipments[0].location_id == 99
    assert "fell back" in str(decision.explanation["note"])
