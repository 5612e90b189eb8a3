"""`bench route`: replay one generated day through every routing policy from the same state."""

from __future__ import annotations

import gc
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from silkroute.routing.baselines import ROUTERS, route_with
from silkroute.routing.capacity import CapacityState
from silkroute.routing.cost import CostModel
from silkroute.routing.index import NetworkIndex, build_index, rss_mb
from silkroute.routing.policy import OrderRequest
from silkroute.routing.router import apply_plan
from silkroute.sim.demand import DemandSpec, generate_day
from silkroute.sim.network import NetworkSpec, generate_network

MAX_PARCELS = 16  # per order, for the common random numbers that decide punctuality
Progress = Callable[[str, int, int], None]


@dataclass(frozen=True, slots=True)
class RouteBenchSpec:
    country: str = "KR"
    carriers: int = 3000
    locations: int = 1000
    orders: int = 100_000
    seed: int = 1
    policies: tuple[str, ...] = tuple(ROUTERS)


def replay(name: str, orders: Sequence[OrderRequest], index: NetworkIndex,
           start: CapacityState, model: CostModel, luck: np.ndarray,
           progress: Progress | None = None) -> dict[str, float]:
    """Route every order in arrival order with one policy; figures judged by `model`.

    A parcel arrives on time when its common random number is below its on-time
    probability, so every policy faces the same luck."""
    cap = start.copy()
    lat = np.zeros(len(orders))
    cost = 0.0
    fulfilled = on_time = split = 0
    carriers: Counter[int] = Counter()
    gc.collect()
    gc.freeze()
    clock = time.perf_counter
    try:
        for i, order in enumerate(orders):
            t0 = clock()
            plan = route_with(name, order, index, cap, model)
            if plan.ok:
                apply_plan(plan, index, cap)
            lat[i] = clock() - t0
            if not plan.ok:
                continue
            fulfilled += 1
            cost += plan.cost.real
            split += plan.is_split
            ok = True
            for j, parcel in enumerate(plan.parcels):
                if parcel.carrier_id is not None:
                    carriers[parcel.carrier_id] += 1
                if luck[i, j % MAX_PARCELS] >= parcel.on_time_probability:
                    ok = False
            on_time += ok
            if progress and i % 1000 == 0:
                progress(name, i, len(orders))
    finally:
        gc.unfreeze()
    n = max(1, len(orders))
    total_parcels = sum(carriers.values())
    top10 = sum(c for _, c in carriers.most_common(10))
    us = lat * 1e6
    return {
        "cost_per_order": round(cost / max(1, fulfilled), 2),
        "on_time_rate": round(on_time / max(1, fulfilled), 4),
        "split_rate": round(split / max(1, fulfilled), 4),
        "unfulfilled_rate": round((len(orders) - fulfilled) / n, 4),
        "p50_us": round(float(np.percentile(us, 50)), 1) if len(us) else 0.0,
        "p99_us": round(float(np.percentile(us, 99)), 1) if len(us) else 0.0,
        "decisions_per_s": round(len(orders) / float(lat.sum()), 1) if lat.sum() else 0.0,
        "top10_carrier_share": round(top10 / total_parcels, 4) if total_parcels else 0.0,
    }


def run_route_bench(spec: RouteBenchSpec, progress: Progress | None = None) -> dict[str, Any]:
    """The whole benchmark: generate, compile, replay each policy; one JSON-able dict."""
    net = generate_network(NetworkSpec(spec.country, spec.carriers, spec.locations, spec.seed,
                                       design_orders=spec.orders))
    index = build_index(net)
    rss = rss_mb()
    orders = generate_day(net, DemandSpec(orders=spec.orders, seed=spec.seed))
    model = CostModel.for_currency(index.currency)
    luck = np.random.default_rng([spec.seed, 99]).random((len(orders), MAX_PARCELS))
    start = CapacityState.fresh(index)
    policies = {name: replay(name, orders, index, start, model, luck, progress)
                for name in spec.policies}
    return {
        "orders": len(orders),
        "carriers": index.n_carriers,
        "locations": index.n_locations,
        "index": {"build_seconds": round(index.build_seconds, 3), "rss_mb": round(rss, 1)},
        "policies": policies,
    }
