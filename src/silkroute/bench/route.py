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
from silkroute.routing.cost import CostBreakdown, CostModel
from silkroute.routing.hindsight import solve_hindsight
from silkroute.routing.index import NetworkIndex, build_index, rss_mb
from silkroute.routing.policy import OrderRequest
from silkroute.routing.pricing import (
    PricedRouter,
    Prices,
    RollingPrices,
    gap_captured,
    unfulfilled_penalty,
)
from silkroute.routing.router import CAPACITY_EXHAUSTED, FulfilmentPlan, apply_plan
from silkroute.sim.demand import DemandSpec, generate_day
from silkroute.sim.network import NetworkSpec, generate_network

MAX_PARCELS = 16  # per order, for the common random numbers that decide punctuality
Progress = Callable[[str, int, int], None]
# A policy given as a function of (order number, order, live capacity) -> plan.
RouteFn = Callable[[int, OrderRequest, CapacityState], FulfilmentPlan]
# Work a policy does between decisions, off the decision path (e.g. re-planning prices).
BeforeFn = Callable[[int, OrderRequest, CapacityState], None]
PRICED = "silkroute-priced"  # the silkroute router with the forecast plan's shadow prices
FORECAST_SEED_OFFSET = 1_000  # forecast day j is generated with seed + this + j
FORECAST_DAYS = 3  # sampled forecast days; each re-plan charges the mean of their prices
PRICE_SCALE = 0.4  # share of the forecast plans' shadow prices the priced router charges
ADMISSION_WEIGHT = 2.0  # x the charged opportunity in the admission test (PricedRouter)
PRICE_RESOLVES = 8  # price plans a day (the first before the first order; rest of forecast)
PRICE_WORKERS = 2  # threads solving the forecast days' LPs of one re-plan


@dataclass(frozen=True, slots=True)
class RouteBenchSpec:
    country: str = "KR"
    carriers: int = 3000
    locations: int = 1000
    orders: int = 100_000
    seed: int = 1
    policies: tuple[str, ...] = tuple(ROUTERS)
    priced: bool = True  # add "silkroute-priced" (prices from an expected day's LP)
    hindsight: bool = True  # add "hindsight" and "gap_captured"


def replay(name: str, orders: Sequence[OrderRequest], index: NetworkIndex,
           start: CapacityState, model: CostModel, luck: np.ndarray,
           progress: Progress | None = None, route: RouteFn | None = None,
           plans_out: list[FulfilmentPlan | None] | None = None,
           penalty: float | None = None, before: BeforeFn | None = None) -> dict[str, Any]:
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
            if before is not None:
                before(i, order, cap)
            t0 = clock()
            plan = (route_with(name, order, index, cap, model) if route is None
                     else route(i, order, cap))
            if plan.ok:
                apply_plan(plan, index, cap)
            lat[i] = clock() - t0
            if plans_out is not None:
                plans_out.append(plan if plan.ok else None)
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
            if i % 1000 == 999:
                # Outside the timed region: what this harness keeps (plans for the hindsight
                # warm start, the tallies) goes to the permanent generation, so the garbage
                # collector does not rescan a growing heap on behalf of later decisions; a
                # routing service would have handed those plans on long ago.
                gc.freeze()
                if progress:
                    progress(name, i + 1, len(orders))
    finally:
        gc.unfreeze()
    n = max(1, len(orders))
    total_parcels = sum(carriers.values())
    top10 = sum(c for _, c in carriers.most_common(10))
    us = lat * 1e6
    pen = unfulfilled_penalty(model) if penalty is None else penalty
    return {
        "cost_per_order": round(cost / max(1, fulfilled), 2),
        "on_time_rate": round(on_time / max(1, fulfilled), 4),
        "split_rate": round(split / max(1, fulfilled), 4),
        "unfulfilled_rate": round((len(orders) - fulfilled) / n, 4),
        "p50_us": round(float(np.percentile(us, 50)), 1) if len(us) else 0.0,
        "p99_us": round(float(np.percentile(us, 99)), 1) if len(us) else 0.0,
        "decisions_per_s": round(len(orders) / float(lat.sum()), 1) if lat.sum() else 0.0,
        "top10_carrier_share": round(top10 / total_parcels, 4) if total_parcels else 0.0,
        "cost_per_order_with_unfulfilled": round(
            (cost + pen * (len(orders) - fulfilled)) / n, 2),
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
    pool: list[list[FulfilmentPlan | None]] = []
    policies: dict[str, dict[str, Any]] = {}
    for name in spec.policies:
        pool.append([])
        policies[name] = replay(name, orders, index, start, model, luck, progress,
                                plans_out=pool[-1] if spec.hindsight else None)
    extra: dict[str, Any] = {}
    if spec.priced:
        # Prices from LPs over expected days: the same generator, other seeds.
        forecasts = [generate_day(net, DemandSpec(
            orders=spec.orders, seed=spec.seed + FORECAST_SEED_OFFSET + j))
            for j in range(FORECAST_DAYS)]
        # The first plan (whole forecast, fresh capacity) is made before the first order;
        # re-plans on the rest of the forecast during the day, off the decision path.
        priced = PricedRouter(index, Prices.zeros(index), model,
                              decline_above=unfulfilled_penalty(model),
                              admission_weight=ADMISSION_WEIGHT)
        rolling = RollingPrices(priced, forecasts, len(orders), PRICE_RESOLVES, PRICE_SCALE,
                                workers=PRICE_WORKERS)
        pool.append([])
        policies[PRICED] = replay(PRICED, orders, index, start, model, luck, progress,
                                  route=lambda _i, o, c: priced.route(o, c),
                                  plans_out=pool[-1], before=rolling.before)
        extra["pricing"] = rolling.summary()
    if spec.hindsight:
        hs = solve_hindsight(orders, index, start, model, pool=pool)
        row = replay("hindsight", orders, index, start, model, luck, progress,
                     route=lambda i, o, c: hs.plans[i] or _unplanned(o))
        # not an online policy: no per-decision latency; throughput = orders / planning time
        row["p50_us"] = row["p99_us"] = None
        row["decisions_per_s"] = round(len(orders) / max(hs.info["seconds"], 1e-9), 1)
        policies["hindsight"] = row
        extra["hindsight"] = hs.info
        if "silkroute" in policies and PRICED in policies:
            key = "cost_per_order_with_unfulfilled"
            g = gap_captured(policies["silkroute"][key], policies[PRICED][key], row[key])
            extra["gap_captured"] = None if g is None else round(g, 4)
    return {
        "orders": len(orders),
        "carriers": index.n_carriers,
        "locations": index.n_locations,
        "index": {"build_seconds": round(index.build_seconds, 3), "rss_mb": round(rss, 1)},
        "policies": policies,
        "unfulfilled_penalty": unfulfilled_penalty(model),
        **extra,
    }


def _unplanned(order: OrderRequest) -> FulfilmentPlan:
    """What the hindsight plan leaves out: an empty plan (counted as unfulfilled)."""
    return FulfilmentPlan(order.order_ref, (), CostBreakdown(), 0, None, 0.0,
                          reason=CAPACITY_EXHAUSTED, message="left out of the hindsight plan")
