"""Price-guided routing: capacity shadow prices from an LP over forecast demand, for the router."""

from __future__ import annotations

import bisect
import dataclasses
import datetime as dt
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from silkroute.domain.errors import ValidationError
from silkroute.routing.capacity import CapacityState
from silkroute.routing.cost import (
    SERVICES,
    CostBreakdown,
    CostModel,
    OpportunityCosts,
    parcel_cost,
)
from silkroute.routing.index import NetworkIndex
from silkroute.routing.policy import OrderRequest
from silkroute.routing.router import (
    FulfilmentPlan,
    OrderContext,
    Parcel,
    Sources,
    assemble,
    plan_for,
    resolve,
    stock_sources,
)

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

#: What an order that is not fulfilled costs the platform in the comparison of policies
#: (KRW; scaled like the other penalties): the lost margin, the refund handling and the
#: buyer who does not come back. Well above the dearest plan a policy would choose, so a
#: policy cannot look cheap by starving orders.
UNFULFILLED_PENALTY_KRW = 20_000.0
LOCS_PER_ORDER = 4  # single-location options per order in the LP (cheapest-looking first)
CARS_PER_LOC = 3  # carriers per location in the LP (cheapest exact cost first)
_INF = float("inf")
DECLINED = "declined"


def unfulfilled_penalty(model: CostModel) -> float:
    """The unfulfilled-order penalty in the model's currency."""
    return UNFULFILLED_PENALTY_KRW * model.late_standard / 2_500.0


@dataclass
class Prices:
    """Shadow prices (>= 0) of one unit of capacity: a carrier parcel, a location's handling of
    one parcel, and one unit of stock at a stock position (aligned with the index's CSR)."""

    carrier: FloatArray
    location: FloatArray
    stock: FloatArray

    @classmethod
    def zeros(cls, index: NetworkIndex) -> Prices:
        return cls(np.zeros(index.n_carriers), np.zeros(index.n_locations),
                   np.zeros(len(index.stock0)))

    def is_zero(self) -> bool:
        return not (self.carrier.any() or self.location.any() or self.stock.any())

    def opportunity(self) -> OpportunityCosts:
        """The router's opportunity-cost arrays (carrier per parcel, stock per unit); the
        location price is charged per order by `PricedRouter` (the hook has no location
        array)."""
        opp = OpportunityCosts(self.carrier.copy(), self.stock.copy())
        opp.refresh()
        return opp


@dataclass
class Columns:
    """Options of the assignment LP. Column k serves one unit of demand of group
    `group[k]` at cost `cost[k]`; its use of capacity is in the triplet arrays. A column
    with `loc[k] >= 0` is a single parcel from that location with carrier `car[k]` (-1 =
    collected at the pickup point); `loc[k] == -1` is a stored plan (`plans[k]`) or, when
    absent, the unfulfilled option."""

    group: list[int] = field(default_factory=list)
    cost: list[float] = field(default_factory=list)
    loc: list[int] = field(default_factory=list)
    car: list[int] = field(default_factory=list)
    plans: dict[int, FulfilmentPlan] = field(default_factory=dict)
    # capacity use: (column, row) with amount; rows: carriers, locations, stock entries
    car_use: tuple[list[int], list[int]] = field(default_factory=lambda: ([], []))
    loc_use: tuple[list[int], list[int]] = field(default_factory=lambda: ([], []))
    stock_use: tuple[list[int], list[int], list[int]] = field(
        default_factory=lambda: ([], [], []))

    def __len__(self) -> int:
        return len(self.group)

    def add(self, group: int, cost: float, loc: int, car: int,
            parcels: Sequence[tuple[int, int | None, Sequence[tuple[int, int]]]],
            index: NetworkIndex, plan: FulfilmentPlan | None = None) -> int:
        """A column; `parcels` = (location, carrier or None, ((SKU position, qty), ...))."""
        k = len(self.group)
        self.group.append(group)
        self.cost.append(cost)
        self.loc.append(loc)
        self.car.append(car)
        if plan is not None:
            self.plans[k] = plan
        entries = index.hot().sku_entry
        for lp, cp, lines in parcels:
            if cp is not None:
                self.car_use[0].append(k)
                self.car_use[1].append(cp)
            self.loc_use[0].append(k)
            self.loc_use[1].append(lp)
            for sp, q in lines:
                self.stock_use[0].append(k)
                self.stock_use[1].append(entries[sp][lp])
                self.stock_use[2].append(q)
        return k


@dataclass
class Groups:
    """Orders grouped by everything their options' costs depend on (destination zone,
    service, promise, hour class, lines): `members[g]` are the orders of group g."""

    key: list[tuple[Any, ...]] = field(default_factory=list)
    members: list[list[int]] = field(default_factory=list)
    ctx: list[OrderContext] = field(default_factory=list)


def _hour_levels(index: NetworkIndex) -> list[float]:
    return sorted(set(index.car_cutoff.tolist()) | set(index.loc_closes.tolist()))


def group_orders(orders: Sequence[OrderRequest], index: NetworkIndex, model: CostModel,
                 aggregate: bool = True) -> Groups:
    """Resolve and (optionally) aggregate orders; costs are the same within a group since the
    hour only matters through carriers' cut-offs and locations' closing hours."""
    levels = _hour_levels(index)
    groups = Groups()
    seen: dict[tuple[Any, ...], int] = {}
    for i, order in enumerate(orders):
        ctx = resolve(order, index, model)
        key = (ctx.zone, ctx.service, ctx.promise, ctx.pickup,
               bisect.bisect_right(levels, ctx.hour),
               tuple((sp, q, w) for sp, q, w, _ in ctx.lines))
        g = seen.get(key) if aggregate else None
        if g is None:
            g = len(groups.key)
            if aggregate:
                seen[key] = g
            groups.key.append(key)
            groups.members.append([])
            groups.ctx.append(ctx)
        groups.members[g].append(i)
    return groups


def carrier_options(index: NetworkIndex, ctx: OrderContext, lp: int, weight: float,
                    car_left: npt.NDArray[np.int64], k: int) -> tuple[IntArray, FloatArray]:
    """The `k` carriers (with capacity left) of least real cost for the order's parcel from
    `lp`: fee + handling + penalty x P(late), exactly as `cost.parcel_cost` prices it."""
    zone = ctx.zone
    cids = index.pair_carriers(int(index.loc_zone[lp]), zone)
    if not len(cids):
        return cids, np.zeros(0)
    band = int(index.loc_band[lp, zone])
    fee = index.car_fee[cids, band] + index.car_perkg[cids] * (weight / 1000.0)
    closes = float(index.loc_closes[lp])
    late_ship = ctx.hour >= np.minimum(index.car_cutoff[cids], closes)
    days = ctx.promise - late_ship.astype(np.int64)
    dmax = index.car_cdf.shape[2] - 1
    p = np.where(days >= 0, index.car_cdf[cids, band, np.clip(days, 0, dmax)], 0.0)
    total = fee + float(index.loc_handling[lp]) + ctx.penalty * (1.0 - p)
    ok = np.isfinite(total) & (index.car_maxw[cids] >= weight) & (car_left[cids] > 0)
    cids, total = cids[ok], total[ok]
    if len(total) > k:
        part = np.argpartition(total, k - 1)[:k]
        cids, total = cids[part], total[part]
    order = np.argsort(total, kind="stable")
    return cids[order], total[order]


def plan_columns(plan: FulfilmentPlan) -> list[tuple[int, int | None, tuple[tuple[int, int],
                                                                           ...]]]:
    return [(p.location_pos, p.carrier_pos, p.line_pos) for p in plan.parcels]


def build_columns(groups: Groups, index: NetworkIndex, model: CostModel, cap: CapacityState,
                  penalty: float, locs_per_order: int = LOCS_PER_ORDER,
                  cars_per_loc: int = CARS_PER_LOC) -> Columns:
    """Per group: the cheapest single-location parcels (a few locations x a few carriers,
    exact costs by the cost model), the router's own plan when no location holds the whole
    order (a split), and the unfulfilled option at `penalty`."""
    cols = Columns()
    plain = dataclasses.replace(model, scarcity_price=0.0)
    loc_left = cap.loc_left
    for g, ctx0 in enumerate(groups.ctx):
        ctx = dataclasses.replace(ctx0, scarcity=0.0)
        src = stock_sources(ctx, index, cap)
        common: set[int] | None = None
        for i, (locs, av, _e) in enumerate(src):
            q = ctx.lines[i][1]
            here = {lp for lp, a in zip(locs, av, strict=True) if a >= q and loc_left[lp] > 0}
            common = here if common is None else common & here
        lines = tuple((sp, q) for sp, q, _w, _id in ctx.lines)
        if common:
            cands = sorted(common)
            d = (index.loc_handling[cands] + index.loc_dist[cands, ctx.zone]
                 * (model.split_penalty / 400.0))
            ranked = [cands[j] for j in np.argsort(d, kind="stable")]
            pick = ranked[:locs_per_order]
            weight = float(sum(q * w for _sp, q, w, _id in ctx.lines))
            for lp in pick:
                cids, real = carrier_options(index, ctx, lp, weight, cap.car_left,
                                             cars_per_loc)
                for c, r in zip(cids.tolist(), real.tolist(), strict=True):
                    cols.add(g, r, lp, c, [(lp, c, lines)], index)
            if ctx.pickup is not None and ctx.pickup in common:
                cost, _p = parcel_cost(index, plain, ctx.pickup, None, ctx.zone, weight,
                                       ctx.service, ctx.promise, ctx.hour)
                cols.add(g, cost.real, ctx.pickup, -1, [(ctx.pickup, None, lines)], index)
        else:
            plan = plan_for(ctx, index, cap, plain, None, src)
            if plan.ok:
                cols.add(g, plan.cost.real, -1, -1, plan_columns(plan), index, plan)
        cols.add(g, penalty, -1, -1, [], index)  # unfulfilled
    return cols


@dataclass
class LpSolution:
    """The LP over the columns: status, value, column values and the capacity prices."""

    status: str
    value: float
    x: FloatArray
    prices: Prices
    seconds: float
    rows: int
    columns: int


def solve_columns(cols: Columns, demand: Sequence[float], index: NetworkIndex,
                  cap: CapacityState, time_limit: float = 300.0,
                  extra_columns: Columns | None = None) -> LpSolution:
    """min Σ cost x  s.t.  Σ_{k in group g} x_k = demand_g;  carrier, location and stock use
    <= what is left in `cap`;  0 <= x_k <= demand_{group k} — solved with HiGHS (dual
    simplex); the prices are minus the duals of the capacity rows (>= 0).

    The upper bound x_k <= demand_g is implied by the group's row, so the LP (its optimum and
    its capacity prices) is the same with or without it; stating it makes every column boxed,
    so the dual simplex starts dual feasible at once instead of fighting its way there: the
    100,000-order forecast LP (686,124 columns) solves in about 20 s with the bound and did
    not solve within 300 s without it."""
    import highspy
    from scipy import sparse

    t0 = time.perf_counter()
    n_groups = len(demand)
    n_car, n_loc, n_st = index.n_carriers, index.n_locations, len(index.stock0)
    k = len(cols)
    rows = np.concatenate([
        np.asarray(cols.group, dtype=np.int64),
        n_groups + np.asarray(cols.car_use[1], dtype=np.int64),
        n_groups + n_car + np.asarray(cols.loc_use[1], dtype=np.int64),
        n_groups + n_car + n_loc + np.asarray(cols.stock_use[1], dtype=np.int64)])
    colidx = np.concatenate([np.arange(k), np.asarray(cols.car_use[0], dtype=np.int64),
                             np.asarray(cols.loc_use[0], dtype=np.int64),
                             np.asarray(cols.stock_use[0], dtype=np.int64)])
    vals = np.concatenate([np.ones(k + len(cols.car_use[0]) + len(cols.loc_use[0])),
                           np.asarray(cols.stock_use[2], dtype=np.float64)])
    # keep only capacity rows some column uses
    used = np.zeros(n_groups + n_car + n_loc + n_st, dtype=bool)
    used[rows] = True
    used[:n_groups] = True
    keep = np.flatnonzero(used)
    remap = np.full(len(used), -1, dtype=np.int64)
    remap[keep] = np.arange(len(keep))
    a = sparse.csc_matrix((vals, (remap[rows], colidx)), shape=(len(keep), k))
    a.sum_duplicates()
    upper_all = np.concatenate([np.asarray(demand, dtype=np.float64),
                                cap.car_left.astype(np.float64),
                                cap.loc_left.astype(np.float64),
                                cap.stock.astype(np.float64)])
    lower_all = np.concatenate([np.asarray(demand, dtype=np.float64),
                                np.full(n_car + n_loc + n_st, -highspy.kHighsInf)])
    lp = highspy.HighsLp()
    lp.num_col_ = k
    lp.num_row_ = len(keep)
    lp.col_cost_ = np.asarray(cols.cost, dtype=np.float64)
    lp.col_lower_ = np.zeros(k)
    lp.col_upper_ = np.asarray(demand, dtype=np.float64)[np.asarray(cols.group,
                                                                     dtype=np.int64)]
    lp.row_lower_ = lower_all[keep]
    lp.row_upper_ = np.maximum(upper_all[keep], 0.0)
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = a.indptr.astype(np.int32)
    lp.a_matrix_.index_ = a.indices.astype(np.int32)
    lp.a_matrix_.value_ = a.data.astype(np.float64)
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("threads", 1)
    h.setOptionValue("random_seed", 0)
    h.setOptionValue("time_limit", float(time_limit))
    h.passModel(lp)
    h.run()
    status = h.getModelStatus()
    prices = Prices.zeros(index)
    x = np.zeros(k)
    value = float("nan")
    name = "optimal" if status == highspy.HighsModelStatus.kOptimal else str(status)
    if status == highspy.HighsModelStatus.kOptimal:
        sol = h.getSolution()
        x = np.asarray(sol.col_value, dtype=np.float64)
        dual_all = np.zeros(len(used))
        dual_all[keep] = np.asarray(sol.row_dual, dtype=np.float64)
        p = np.maximum(-dual_all, 0.0)
        prices = Prices(p[n_groups:n_groups + n_car].copy(),
                        p[n_groups + n_car:n_groups + n_car + n_loc].copy(),
                        p[n_groups + n_car + n_loc:].copy())
        value = float(h.getInfo().objective_function_value)
    return LpSolution(name, value, x, prices, time.perf_counter() - t0, len(keep), k)


def plan_prices(forecast: Sequence[OrderRequest], index: NetworkIndex, cap: CapacityState,
                model: CostModel | None = None, penalty: float | None = None,
                time_limit: float = 300.0, days: int = 1) -> tuple[Prices, dict[str, Any]]:
    """Shadow prices of carrier, location and stock capacity from the LP over a forecast
    (aggregated by zone, service, promise, hour class and lines), and figures. A forecast of
    `days` days (e.g. several sampled days, concatenated) is one expected day: each group's
    demand is its orders / `days` (the sample-average LP; one day's capacity)."""
    model = model or CostModel.for_currency(index.currency)
    pen = unfulfilled_penalty(model) if penalty is None else penalty
    t0 = time.perf_counter()
    groups = group_orders(forecast, index, model)
    cols = build_columns(groups, index, model, cap, pen)
    t1 = time.perf_counter()
    sol = solve_columns(cols, [len(m) / days for m in groups.members], index, cap, time_limit)
    info = {"forecast_orders": len(forecast), "days": days, "groups": len(groups.key),
            "columns": sol.columns, "rows": sol.rows, "status": sol.status,
            "lp_value": round(sol.value, 2), "build_seconds": round(t1 - t0, 2),
            "solve_seconds": round(sol.seconds, 2),
            "priced_carriers": int((sol.prices.carrier > 0).sum()),
            "priced_locations": int((sol.prices.location > 0).sum()),
            "priced_stock": int((sol.prices.stock > 0).sum())}
    return sol.prices, info


class PricedRouter:
    """The online router with the plan's shadow prices as opportunity costs: carrier and
    stock prices through the cost model's hook; a location's handling price is spread over
    the order's units at that location (exact for a one-parcel plan)."""

    def __init__(self, index: NetworkIndex, prices: Prices, model: CostModel | None = None,
                 scale: float = 1.0, decline_above: float | None = None,
                 admission_weight: float = 0.0) -> None:
        self.index = index
        self.model = model or CostModel.for_currency(index.currency)
        # Admission (as in the LP, where every order may take the unfulfilled option): a
        # plan is declined when its real cost plus `admission_weight` x its opportunity cost
        # exceeds `decline_above` (a bid-price test: what the order saves against what its
        # capacity is worth to later orders). None = never decline.
        if admission_weight < 0:
            raise ValueError("admission_weight must not be negative")
        self.decline_above = decline_above
        self.admission_weight = admission_weight
        self.set_prices(prices, scale)

    def set_prices(self, prices: Prices, scale: float = 1.0) -> None:
        self.prices = prices
        self.opp = OpportunityCosts(prices.carrier * scale, prices.stock * scale)
        self.opp.refresh()
        self.loc_price: list[float] = (prices.location * scale).tolist()
        self.any_loc = bool(prices.location.any())
        self.opp.active = self.opp.active or self.any_loc
        if self.opp.active:
            # The router's per-carrier priced records for the model's services, built now
            # (off the decision path) rather than by the first decisions after a re-plan.
            self.index.warm_priced([(self.model.penalty(s), self.model.promise_days(s, nd))
                                    for s in SERVICES for nd in (False, True)],
                                   self.opp.carrier, self.opp.cache)

    def plan(self, ctx: OrderContext, cap: CapacityState, src: Sources) -> FulfilmentPlan:
        """Route one resolved order against `cap` (never writes it)."""
        plan = self._plan(ctx, cap, src)
        if (self.decline_above is not None and plan.ok
                and plan.cost.real + self.admission_weight * plan.cost.opportunity
                > self.decline_above):
            return FulfilmentPlan(ctx.ref, (), CostBreakdown(), ctx.promise, None, 0.0,
                                  reason=DECLINED,
                                  message="declined: the plan's cost and the capacity it "
                                          "takes are worth more than the "
                                          "unfulfilled-order penalty")
        return plan

    def _plan(self, ctx: OrderContext, cap: CapacityState, src: Sources) -> FulfilmentPlan:
        if not self.any_loc:
            return plan_for(ctx, self.index, cap, self.model, self.opp, src)
        stock = self.opp.stock
        lp_ = self.loc_price
        n = len(ctx.lines)
        touched: list[tuple[int, float]] = []
        for i, (locs, _av, es) in enumerate(src):
            share = 1.0 / (ctx.lines[i][1] * n)
            for lp, e in zip(locs, es, strict=True):
                extra = lp_[lp]
                if extra:
                    touched.append((e, float(stock[e])))
                    stock[e] += extra * share
        try:
            return plan_for(ctx, self.index, cap, self.model, self.opp, src)
        finally:
            for e, v in reversed(touched):
                stock[e] = v

    def route(self, order: OrderRequest, cap: CapacityState) -> FulfilmentPlan:
        ctx = resolve(order, self.index, self.model)
        return self.plan(ctx, cap, stock_sources(ctx, self.index, cap))

    def warm(self, orders: Sequence[OrderRequest], cap: CapacityState) -> int:
        """Route `orders` (expected ones: a forecast's next hours) against `cap` without
        applying their plans, for what routing leaves behind: the priced views and routes
        it builds for the current prices, which the real orders of those hours will then
        find made. Run after new prices are set, off the decision path (with the
        re-plan): most views are otherwise made by the first decisions that need them, each
        a sort of its route's carriers. Plans are not changed by it: a view is a function of
        the prices, the route and the hour class, and a route rebuilt now is the one the
        next order would build (`_Pricer`). Returns the number of orders routed."""
        n = 0
        for order in orders:
            try:
                self.route(order, cap)
            except ValidationError:
                continue
            n += 1
        return n


def order_hour(order: OrderRequest) -> float:
    """The local hour an order arrived (10:00 when not given, as the router assumes)."""
    return 10.0 if order.placed_hour is None else float(order.placed_hour)


class RollingPrices:
    """Re-plans the prices during the day: at `resolves` evenly spaced points of the day's
    orders (the first before its first order), the LP over the rest of the forecast (its
    orders from the current hour on) against the capacity left now, solved off the decision
    path; its prices replace the router's (a plan that is not solved to optimality keeps the
    prices the router has). Where capacity is left over the prices fall; where the day has
    used up more than the forecast expected they rise.

    With several forecast days (independent samples of the expected day), each re-plan
    solves one LP per day and the router gets the mean of their prices: one sampled day
    prices a SKU's stock by that day's chance demand for it, and the mean over samples is
    nearer the expected price. `workers` > 1 solves the days' LPs in threads (HiGHS
    releases the GIL while it solves).

    With `warm`, each re-plan that sets new prices then routes every forecast day's
    orders of the coming stretch of the day (as many per day as the real orders until the
    next re-plan, without applying them: `PricedRouter.warm`), so the views the real
    orders will need are made off the decision path, with the re-plan (three sampled days
    make more of them than one: paired replay, mean 0.94 x and p99 0.91 x of one day's)."""

    def __init__(self, router: PricedRouter, forecasts: Sequence[Sequence[OrderRequest]],
                 n_orders: int, resolves: int = 8, scale: float = 1.0,
                 time_limit: float = 300.0, workers: int = 1, warm: bool = True) -> None:
        if not forecasts:
            raise ValueError("RollingPrices needs at least one forecast day")
        self.router = router
        self.forecasts = [list(f) for f in forecasts]
        self.hours = [[order_hour(o) for o in f] for f in self.forecasts]
        self.points = frozenset(n_orders * j // max(1, resolves) for j in range(resolves))
        self.n_orders = n_orders
        self.stretch = n_orders // max(1, resolves)  # real orders between two re-plans
        self.warm = warm
        self.scale = scale
        self.time_limit = time_limit
        self.workers = max(1, workers)
        self.log: list[dict[str, Any]] = []

    def _plan_day(self, day: int, hour: float,
                  cap: CapacityState) -> tuple[Prices, dict[str, Any]]:
        rest = [o for o, oh in zip(self.forecasts[day], self.hours[day], strict=True)
                if oh >= hour]
        return plan_prices(rest, self.router.index, cap, self.router.model,
                           time_limit=self.time_limit)

    def before(self, i: int, order: OrderRequest, cap: CapacityState) -> None:
        """Called before order `i` is routed (outside the decision's timing)."""
        if i not in self.points:
            return
        t0 = time.perf_counter()
        h = order_hour(order)
        days = range(len(self.forecasts))
        if self.workers > 1 and len(self.forecasts) > 1:
            with ThreadPoolExecutor(min(self.workers, len(self.forecasts))) as pool:
                plans = list(pool.map(lambda d: self._plan_day(d, h, cap), days))
        else:
            plans = [self._plan_day(d, h, cap) for d in days]
        info = dict(plans[0][1])
        statuses = sorted({p[1]["status"] for p in plans})
        info["status"] = statuses[0] if len(statuses) == 1 else "+".join(statuses)
        info["forecast_days"] = len(plans)
        info["build_seconds"] = round(sum(p[1]["build_seconds"] for p in plans), 2)
        info["solve_seconds"] = round(max(p[1]["solve_seconds"] for p in plans), 2)
        info["seconds"] = round(time.perf_counter() - t0, 2)
        info["at_order"] = i
        info["hour"] = round(h, 2)
        self.log.append(info)
        if info["status"] != "optimal":
            return
        mean = Prices(np.mean([p[0].carrier for p in plans], axis=0),
                      np.mean([p[0].location for p in plans], axis=0),
                      np.mean([p[0].stock for p in plans], axis=0))
        info["priced_carriers"] = int((mean.carrier > 0).sum())
        info["priced_locations"] = int((mean.location > 0).sum())
        info["priced_stock"] = int((mean.stock > 0).sum())
        self.router.set_prices(mean, self.scale)
        if self.warm:
            t1 = time.perf_counter()
            warmed = 0
            for day in self.forecasts:
                lo = i * len(day) // max(1, self.n_orders)
                hi = (i + self.stretch) * len(day) // max(1, self.n_orders)
                warmed += self.router.warm(day[lo:hi], cap)
            info["warmed_orders"] = warmed
            info["warm_seconds"] = round(time.perf_counter() - t1, 2)

    def summary(self) -> dict[str, Any]:
        """The first plan's figures (the first forecast day, fresh capacity) and the
        re-plans'."""
        if not self.log:
            return {}
        out = dict(self.log[0])
        out["resolves"] = len(self.log)
        out["resolve_statuses"] = sorted({r["status"] for r in self.log})
        out["resolve_seconds_total"] = round(sum(r["seconds"] for r in self.log), 2)
        out["resolve_solve_seconds_max"] = max(r["solve_seconds"] for r in self.log)
        if self.warm:
            out["warm_seconds_total"] = round(sum(r.get("warm_seconds", 0.0)
                                                  for r in self.log), 2)
        return out


def column_plan(cols: Columns, k: int, ctx: OrderContext, index: NetworkIndex,
                model: CostModel) -> FulfilmentPlan | None:
    """The plan of column k for an order (None for the unfulfilled option)."""
    if k in cols.plans:
        return cols.plans[k]
    lp, c = cols.loc[k], cols.car[k]
    if lp < 0:
        return None
    weight = float(sum(q * w for _sp, q, w, _id in ctx.lines))
    car = None if c < 0 else c
    cost, p = parcel_cost(index, model, lp, car, ctx.zone, weight, ctx.service, ctx.promise,
                          ctx.hour)
    parcel = Parcel(int(index.loc_ids[lp]), tuple((ln[3], ln[1]) for ln in ctx.lines),
                    None if car is None else int(index.car_ids[car]), ctx.service, cost,
                    ctx.day + dt.timedelta(days=ctx.promise), p, weight, lp, car,
                    tuple((ln[0], ln[1]) for ln in ctx.lines))
    return assemble(index, model, ctx, [parcel])


def fits(plan: FulfilmentPlan, index: NetworkIndex, cap: CapacityState) -> bool:
    """Whether `cap` has room for every parcel of `plan`."""
    loc: dict[int, int] = {}
    car: dict[int, int] = {}
    st: dict[int, int] = {}
    entries = index.hot().sku_entry
    for p in plan.parcels:
        loc[p.location_pos] = loc.get(p.location_pos, 0) + 1
        if p.carrier_pos is not None:
            car[p.carrier_pos] = car.get(p.carrier_pos, 0) + 1
        for sp, q in p.line_pos:
            e = entries[sp].get(p.location_pos)
            if e is None:
                return False
            st[e] = st.get(e, 0) + q
    return (all(cap.loc_left[lp] >= v for lp, v in loc.items())
            and all(cap.car_left[c] >= v for c, v in car.items())
            and all(cap.stock[e] >= v for e, v in st.items()))


def gap_captured(myopic: float, priced: float, hindsight: float) -> float | None:
    """(myopic - priced) / (myopic - hindsight): the share of the gap between myopic and
    clairvoyant routing that the prices close; None when there is no gap to close."""
    gap = myopic - hindsight
    if gap <= 1e-9:
        return None
    return (myopic - priced) / gap
