"""Network and demand generators: real cities, realistic carrier mix, determinism by seed."""

from __future__ import annotations

import pickle
from collections import Counter

import numpy as np

from silkroute.domain.carriers import CarrierTier
from silkroute.domain.network import LocationKind
from silkroute.routing.index import build_index
from silkroute.sim.demand import DemandSpec, arrival_hours, generate_day
from silkroute.sim.network import NetworkSpec, generate_network


def test_same_seed_same_network_other_seed_other_network() -> None:
    a = generate_network(NetworkSpec("KR", carriers=200, locations=60, seed=3))
    b = generate_network(NetworkSpec("KR", carriers=200, locations=60, seed=3))
    c = generate_network(NetworkSpec("KR", carriers=200, locations=60, seed=4))
    assert a.locations == b.locations and a.carriers == b.carriers and a.stock == b.stock
    assert a.locations != c.locations


def test_default_mix_of_carriers_and_locations() -> None:
    net = generate_network(NetworkSpec("KR", carriers=3000, locations=1000, seed=1))
    tiers = Counter(c.tier for c in net.carriers)
    assert len(net.carriers) == 3000 and len(net.locations) == 1000
    assert 1 <= tiers[CarrierTier.NATIONAL] <= 10
    assert 100 <= tiers[CarrierTier.REGIONAL] <= 999
    assert tiers[CarrierTier.LOCAL] + tiers[CarrierTier.SAME_DAY] >= 1000
    kinds = Counter(loc.kind for loc in net.locations)
    assert set(kinds) == set(LocationKind)
    zone_ids = {z.id for z in net.zones}
    national = next(c for c in net.carriers if c.tier is CarrierTier.NATIONAL)
    assert national.zones == zone_ids
    assert all(loc.zone_id in zone_ids for loc in net.locations)
    assert net.currency == "KRW"


def test_china_works_with_about_two_thousand_cities() -> None:
    net = generate_network(NetworkSpec("CN", carriers=300, locations=100, seed=1))
    assert len(net.zones) >= 2000 and net.currency == "CNY"
    index = build_index(net)
    assert index.n_zones == len(net.zones)


def test_index_is_picklable_and_read_only_arrays_survive() -> None:
    net = generate_network(NetworkSpec("KR", carriers=100, locations=30, seed=2))
    index = build_index(net)
    copy = pickle.loads(pickle.dumps(index))
    assert np.array_equal(copy.coverage, index.coverage)
    assert copy.build_seconds == index.build_seconds > 0
    # per-zone carriers are pre-sorted by base fee
    by_id = {c.id: c.rate_card.base_fee for c in net.carriers}
    for z in range(index.n_zones):
        cars = index.zone_car[index.zone_ptr[z]:index.zone_ptr[z + 1]]
        base = [by_id[int(index.car_ids[c])] for c in cars]
        assert base == sorted(base)


def test_demand_is_deterministic_and_well_formed() -> None:
    net = generate_network(NetworkSpec("KR", carriers=100, locations=40, seed=2))
    a = generate_day(net, DemandSpec(orders=500, seed=9))
    b = generate_day(net, DemandSpec(orders=500, seed=9))
    assert a == b
    sellers = {s.id: s.seller_id for s in net.skus}
    pickups = {loc.id for loc in net.locations if loc.is_pickup_point}
    for o in a:
        assert 1 <= len(o.lines) <= 5
        assert {sellers[ln.sku_id] for ln in o.lines} == {o.seller_id}
        assert o.service in ("standard", "member_next_day", "pickup")
        if o.service == "pickup":
            assert o.pickup_location_id in pickups
    hours = [o.placed_hour for o in a]
    assert hours == sorted(hours) and hours[0] >= 0 and hours[-1] < 24
    services = Counter(o.service for o in a)
    assert services["member_next_day"] > 100 and services["pickup"] > 20
    # popularity is skewed: SKU 1 is ordered far more often than the median SKU
    counts = Counter(ln.sku_id for o in a for ln in o.lines)
    assert counts[1] >= 10 * max(1, int(np.median(list(counts.values()))))


def test_peak_hour_is_configurable() -> None:
    rng = np.random.default_rng(1)
    hours = arrival_hours(rng, 20_000, peak_hour=13.0, peak_share=0.6)
    in_peak = ((hours > 11.5) & (hours < 14.5)).mean()
    assert in_peak > 0.45
