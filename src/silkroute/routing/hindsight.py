"""Hindsight: the day's batch plan with every order known in advance (LP, rounding, repair)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from silkroute.routing.capacity import CapacityState
from silkroute.routing.cost import CostModel
from silkroute.routing.index import NetworkIndex
from silkroute.routing.policy import OrderRequest
from silkroute.routing.pricing import (
    PricedRouter,
    build_columns,
    column_plan,
    fits,
    group_orders,
    plan_columns,
    solve_columns,
    unfulfilled_penalty,
)
from silkroute.routing.router import FulfilmentPlan, apply_plan, stock_sources


@dataclass
class Hindsight:
    """One plan per order (None = not fulfilled), feasible together from the start state.

    `lp_value` is the optimum of the LP relaxation over the generated options (a few
    single-location options per order, the router's split when needed, the unfulfilled
    option, and every plan in the pool): a lower bound for plans made of those options, not
    for every conceivable plan. `cost` is the rounded plan's total (real cost plus the
    penalty per unfulfilled order); `gap` = cost / lp_value - 1."""

    plans: list[FulfilmentPlan | None]
    cost: float
    lp_value: float
    info: dict[str, Any] = field(default_factory=dict)


def _signature(plan: FulfilmentPlan) -> tuple[Any, ...]:
    return tuple((p.location_pos, p.carrier_pos, p.line_pos) for p in plan.parcels)


def solve_hindsight(orders: Sequence[OrderRequest], index: NetworkIndex,
                    start: CapacityState, model: CostModel | None = None,
                    penalty: float | None = None,
                    pool: Sequence[Sequence[FulfilmentPlan | None]] = (),
                    time_limit: float = 600.0) -> Hindsight:
    """The LP over the whole day (orders with identical options aggregated), rounded: the
    integral part of the LP solution first (it always fits), then every other order by its
    LP columns in decreasing weight, else by the router priced with the LP's duals, in
    arrival order. `pool` holds other complete plans of the same day (e.g. the policies'
    own), added as columns so that the LP is never worse than any of them."""
    model = model or CostModel.for_currency(index.currency)
    pen = unfulfilled_penalty(model) if penalty is None else penalty
    t0 = time.perf_counter()
    groups = group_orders(orders, index, model)
    cols = build_columns(groups, index, model, start, pen)
    group_of = np.empty(len(orders), dtype=np.int64)
    for g, mem in enumerate(groups.members):
        group_of[mem] = g
    seen: set[tuple[int, tuple[Any, ...]]] = set()
    for plans in pool:
        for i, plan in enumerate(plans):
            if plan is None or not plan.ok:
                continue
            g = int(group_of[i])
            sig = (g, _signature(plan))
            if sig in seen:
                continue
            seen.add(sig)
            cols.add(g, plan.cost.real, -1, -1, plan_columns(plan), index, plan)
    t1 = time.perf_counter()
    sol = solve_columns(cols, [len(m) for m in groups.members], index, start, time_limit)
    if sol.status != "optimal":
        raise RuntimeError(f"hindsight LP not solved: {sol.status}")
    t2 = time.perf_counter()
    by_group: list[list[int]] = [[] for _ in groups.members]
    for k, g in enumerate(cols.group):
        by_group[g].append(k)
    cap = start.copy()
    out: list[FulfilmentPlan | None] = [None] * len(orders)
    done = np.zeros(len(orders), dtype=bool)
    x = sol.x
    # 1. the integral part of the LP solution (fits: it uses at most the LP's capacity)
    for g, members in enumerate(groups.members):
        free = list(members)
        for k in sorted(by_group[g], key=lambda k: -x[k]):
            take = int(np.floor(x[k] + 1e-6))
            while take > 0 and free:
                i = free.pop(0)
                take -= 1
                done[i] = True
                plan = column_plan(cols, k, groups.ctx[g], index, model)
                if plan is not None and fits(plan, index, cap):
                    apply_plan(plan, index, cap)
                    out[i] = plan
                elif plan is not None:
                    done[i] = False  # should not happen; repaired below
    n_integral = int(done.sum())
    # 2. the rest in arrival order: LP columns by weight, then the priced router
    router = PricedRouter(index, sol.prices, model)
    n_repaired = 0
    for i in np.flatnonzero(~done).tolist():
        g = int(group_of[i])
        ctx = groups.ctx[g]
        chosen = None
        for k in sorted(by_group[g], key=lambda k: (-x[k], cols.cost[k])):
            if x[k] <= 1e-9:
                break
            plan = column_plan(cols, k, ctx, index, model)
            if plan is not None and fits(plan, index, cap):
                chosen = plan
                break
        if chosen is None:
            plan = router.plan(ctx, cap, stock_sources(ctx, index, cap))
            if plan.ok and plan.cost.real < pen:
                chosen = plan
                n_repaired += 1
        if chosen is not None:
            apply_plan(chosen, index, cap)
            out[i] = chosen
    # 3. orders the plan leaves out, if capacity is left for them now (cheaper than the
    # penalty by construction)
    for i, plan_i in enumerate(out):
        if plan_i is None:
            ctx = groups.ctx[int(group_of[i])]
            plan = router.plan(ctx, cap, stock_sources(ctx, index, cap))
            if plan.ok and plan.cost.real < pen:
                apply_plan(plan, index, cap)
                out[i] = plan
    cost = sum(p.cost.real if p is not None else pen for p in out)
    # 4. a complete plan of the pool (another policy's day) is feasible too: keep the best
    method = "lp_rounding"
    for j, plans in enumerate(pool):
        if len(plans) != len(orders):
            continue
        c = sum(p.cost.real if p is not None and p.ok else pen for p in plans)
        if c < cost - 1e-6:
            cost, method = c, f"pool[{j}]"
            out = [p if p is not None and p.ok else None for p in plans]
    t3 = time.perf_counter()
    info = {"method": method, "exact": False, "groups": len(groups.key),
            "columns": sol.columns, "rows": sol.rows, "pool_columns": len(seen),
            "lp_value": round(sol.value, 2), "cost": round(cost, 2),
            "gap_to_lp": round(cost / sol.value - 1.0, 6) if sol.value > 0 else None,
            "integral_orders": n_integral, "router_repaired": n_repaired,
            "build_seconds": round(t1 - t0, 2), "lp_seconds": round(t2 - t1, 2),
            "round_seconds": round(t3 - t2, 2), "seconds": round(t3 - t0, 2)}
    return Hindsight(out, cost, sol.value, info)
