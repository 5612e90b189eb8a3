"""Baseline policies (Magento MSI, Saleor, nearest-cheapest), the policy registry and adapters."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from silkroute.domain.errors import DomainError, OutOfStock, ValidationError
from silkroute.routing.capacity import CapacityState
from silkroute.routing.cost import CostModel, OpportunityCosts, parcel_cost
from silkroute.routing.index import NetworkIndex
from silkroute.routing.policy import (
    CandidateLocation,
    FulfilmentDecision,
    FulfilmentPolicy,
    NearestWithStockPolicy,
    OrderRequest,
    Shipment,
)
from silkroute.routing.router import (
    FulfilmentPlan,
    OrderContext,
    Parcel,
    Sources,
    _make_parcel,
    apply_plan,
    assemble,
    no_plan,
    plan_for,
    resolve,
    stock_sources,
)

# A router: decides one order against the index and live capacity (never writes capacity).
Router = Callable[[OrderContext, NetworkIndex, CapacityState, CostModel, Sources], FulfilmentPlan]


def cheapest_carrier(index: NetworkIndex, cap: CapacityState, loc: int, zone: int,
                     weight_g: float, exclude: dict[int, int] | None = None) -> int | None:
    """The carrier with the lowest fee that covers the route, offers the band, takes the
    weight and has capacity left (minus `exclude`d parcels already planned); None if none."""
    cids = index.pair_carriers(int(index.loc_zone[loc]), zone)
    if not len(cids):
        return None
    band = index.loc_band[loc, zone]
    fee = index.car_fee[cids, band] + index.car_perkg[cids] * (weight_g / 1000.0)
    left = cap.car_left[cids]
    if exclude:
        left = left - np.array([exclude.get(int(c), 0) for c in cids])
    fee = np.where((left > 0) & (index.car_maxw[cids] >= weight_g), fee, np.inf)
    j = int(np.argmin(fee))
    return int(cids[j]) if np.isfinite(fee[j]) else None


def _parcels_from(index: NetworkIndex, cap: CapacityState, model: CostModel,
                  ctx: OrderContext, take: dict[int, dict[int, int]]) -> list[Parcel] | None:
    """Give each location's parcel the cheapest covering carrier; judge it by the model."""
    parcels: list[Parcel] = []
    planned: dict[int, int] = {}
    for lp, part in take.items():
        idx = list(part)
        qs = [part[i] for i in idx]
        weight = float(sum(ctx.lines[i][2] * q for i, q in zip(idx, qs, strict=True)))
        car: int | None
        if ctx.pickup is not None and lp == ctx.pickup:
            car = None
        else:
            car = cheapest_carrier(index, cap, lp, ctx.zone, weight, planned)
            if car is None:
                return None
            planned[car] = planned.get(car, 0) + 1
        cost, p = parcel_cost(index, model, lp, car, ctx.zone, weight, ctx.service,
                              ctx.promise, ctx.hour)
        parcels.append(_make_parcel(index, ctx, lp, car, idx, qs, cost, p))
    return parcels


def _can_ship(index: NetworkIndex, cap: CapacityState, ctx: OrderContext, loc: int) -> bool:
    if cap.loc_left[loc] <= 0:
        return False
    if ctx.pickup is not None and loc == ctx.pickup:
        return True
    w = float(sum(q * wt for _s, q, wt, _i in ctx.lines))
    return cheapest_carrier(index, cap, loc, ctx.zone, min(w, 10_000.0)) is not None


def _greedy_sources(ctx: OrderContext, index: NetworkIndex, cap: CapacityState,
                    model: CostModel, src: Sources, key: Callable[[int], float]
                    ) -> FulfilmentPlan:
    """Magento MSI style: sources in `key` order, each line filled greedily from them."""
    locs = sorted({lp for locs, av, _e in src for lp, a in zip(locs, av, strict=True) if a > 0},
                  key=lambda lp: (key(lp), lp))
    avail = [dict(zip(ls, av, strict=True)) for ls, av, _e in src]
    take: dict[int, dict[int, int]] = {}
    shippable: dict[int, bool] = {}
    for i, (_s, q, _w, _id) in enumerate(ctx.lines):
        need = q
        for lp in locs:
            got = min(need, avail[i].get(lp, 0))
            if got > 0 and lp not in shippable:
                shippable[lp] = _can_ship(index, cap, ctx, lp)
            if got > 0 and shippable[lp]:
                take.setdefault(lp, {})[i] = got
                need -= got
            if need == 0:
                break
        if need > 0:
            return no_plan(index, ctx, src, cap)
    ordered = {lp: take[lp] for lp in locs if lp in take}
    parcels = _parcels_from(index, cap, model, ctx, ordered)
    return assemble(index, model, ctx, parcels) if parcels else no_plan(index, ctx, src, cap)


def magento_priority(ctx: OrderContext, index: NetworkIndex, cap: CapacityState,
                     model: CostModel, src: Sources) -> FulfilmentPlan:
    """Magento MSI "source priority": sources in the seller's priority order."""
    return _greedy_sources(ctx, index, cap, model, src, lambda lp: float(index.loc_priority[lp]))


def magento_distance(ctx: OrderContext, index: NetworkIndex, cap: CapacityState,
                     model: CostModel, src: Sources) -> FulfilmentPlan:
    """Magento MSI "distance priority": nearest source to the shipping address first."""
    return _greedy_sources(ctx, index, cap, model, src,
                           lambda lp: float(index.loc_dist[lp, ctx.zone]))


def saleor_sorted(ctx: OrderContext, index: NetworkIndex, cap: CapacityState,
                  model: CostModel, src: Sources) -> FulfilmentPlan:
    """Saleor "prioritize sorted warehouses": the channel's warehouse sort order (by id)."""
    return _greedy_sources(ctx, index, cap, model, src, lambda lp: float(index.loc_ids[lp]))


def saleor_high_stock(ctx: OrderContext, index: NetworkIndex, cap: CapacityState,
                      model: CostModel, src: Sources) -> FulfilmentPlan:
    """Saleor "prioritize high stock": each line from the warehouses holding most of it."""
    take: dict[int, dict[int, int]] = {}
    for i, (_s, q, _w, _id) in enumerate(ctx.lines):
        ls, av, _e = src[i]
        need = q
        for a, lp in sorted(zip(av, ls, strict=True), key=lambda x: (-x[0], x[1])):
            if a <= 0 or not _can_ship(index, cap, ctx, lp):
                continue
            got = min(need, a)
            take.setdefault(lp, {})[i] = got
            need -= got
            if need == 0:
                break
        if need > 0:
            return no_plan(index, ctx, src, cap)
    parcels = _parcels_from(index, cap, model, ctx, take)
    return assemble(index, model, ctx, parcels) if parcels else no_plan(index, ctx, src, cap)


def nearest_cheapest(ctx: OrderContext, index: NetworkIndex, cap: CapacityState,
                     model: CostModel, src: Sources) -> FulfilmentPlan:
    """Nearest location holding every line, with its cheapest covering carrier; else split
    nearest-first."""
    holders: dict[int, int] = {}
    for i, (ls, av, _e) in enumerate(src):
        q = ctx.lines[i][1]
        for lp, a in zip(ls, av, strict=True):
            if a >= q:
                holders[lp] = holders.get(lp, 0) + 1
    full = [lp for lp, k in holders.items() if k == len(ctx.lines)]
    for lp in sorted(full, key=lambda lp: (float(index.loc_dist[lp, ctx.zone]), lp)):
        if _can_ship(index, cap, ctx, lp):
            parcels = _parcels_from(index, cap, model, ctx,
                                    {lp: {i: ln[1] for i, ln in enumerate(ctx.lines)}})
            if parcels:
                return assemble(index, model, ctx, parcels)
    return magento_distance(ctx, index, cap, model, src)


def silkroute_router(ctx: OrderContext, index: NetworkIndex, cap: CapacityState,
                     model: CostModel, src: Sources) -> FulfilmentPlan:
    """The cost-model router (routing/router.py)."""
    return plan_for(ctx, index, cap, model, None, src)


ROUTERS: dict[str, Router] = {
    "silkroute": silkroute_router,
    "magento-priority": magento_priority,
    "magento-distance": magento_distance,
    "saleor-sorted": saleor_sorted,
    "saleor-high-stock": saleor_high_stock,
    "nearest-cheapest": nearest_cheapest,
}
DEFAULT_POLICY = "silkroute"
POLICY_NAMES: tuple[str, ...] = (*ROUTERS, NearestWithStockPolicy.name)


def route_with(name: str, order: OrderRequest, index: NetworkIndex, capacity: CapacityState,
               model: CostModel | None = None) -> FulfilmentPlan:
    """Route one order with the named policy against the live capacity state."""
    router = ROUTERS.get(name)
    if router is None:
        raise ValidationError(f"policy: unknown {name!r} (known: {', '.join(ROUTERS)})",
                              field="policy")
    model = model or CostModel.for_currency(index.currency)
    ctx = resolve(order, index, model)
    return router(ctx, index, capacity, model, stock_sources(ctx, index, capacity))


class IndexPolicy:
    """A router behind the FulfilmentPolicy interface: stock from checkout's candidates,
    carriers and their remaining capacity from the index and a capacity state."""

    def __init__(self, name: str, index: NetworkIndex, capacity: CapacityState | None = None,
                 model: CostModel | None = None,
                 opportunity: OpportunityCosts | None = None) -> None:
        if name not in ROUTERS:
            raise ValidationError(f"policy: unknown {name!r}", field="policy")
        self.name = name
        self.index = index
        self.capacity = capacity or CapacityState.fresh(index)
        self.model = model or CostModel.for_currency(index.currency)
        self.opportunity = opportunity
        self._fallback = NearestWithStockPolicy()

    def _sources(self, ctx: OrderContext, candidates: Sequence[CandidateLocation]) -> Sources:
        known = [(self.index.loc_pos[c.location_id], c) for c in candidates
                 if c.location_id in self.index.loc_pos]
        out: Sources = []
        for sp, _q, _w, sku_id in ctx.lines:
            locs, avail, entries = [], [], []
            for lp, c in known:
                a = int(c.available.get(sku_id, 0))
                if a > 0:
                    locs.append(lp)
                    avail.append(a)
                    e = -1
                    if sp >= 0:
                        lo, hi = int(self.index.sku_ptr[sp]), int(self.index.sku_ptr[sp + 1])
                        hits = np.flatnonzero(self.index.sku_loc[lo:hi] == lp)
                        e = lo + int(hits[0]) if len(hits) else -1
                    entries.append(e)
            out.append((locs, avail, entries))
        return out

    def plan(self, request: OrderRequest, candidates: Sequence[CandidateLocation]
             ) -> FulfilmentPlan:
        ctx = resolve(request, self.index, self.model)
        src = self._sources(ctx, candidates)
        if self.name == "silkroute":
            return plan_for(ctx, self.index, self.capacity, self.model, self.opportunity, src)
        return ROUTERS[self.name](ctx, self.index, self.capacity, self.model, src)

    def decide(self, request: OrderRequest, candidates: Sequence[CandidateLocation]
               ) -> FulfilmentDecision:
        if candidates and not any(c.location_id in self.index.loc_pos for c in candidates):
            decision = self._fallback.decide(request, candidates)
            return FulfilmentDecision(decision.shipments, {
                "policy": self.name, "note": "locations not in the network index; "
                "fell back to nearest-with-stock"})
        plan = self.plan(request, candidates)
        if not plan.ok:
            if plan.reason == "no_stock":
                for ln in request.lines:
                    total = sum(int(c.available.get(ln.sku_id, 0)) for c in candidates)
                    if total < ln.quantity:
                        raise OutOfStock(ln.sku_code, ln.quantity, total)
            raise DomainError(plan.message, field="address", code=plan.reason or "no_plan")
        for parcel in plan.parcels:  # carriers' and locations' capacity for the day
            self.capacity.take_parcel(parcel.location_pos, parcel.carrier_pos)
        shipments = tuple(
            Shipment(p.location_id, p.lines, p.carrier_id, int(round(p.cost.total)), p.service,
                     p.promised_date, round(p.on_time_probability, 4))
            for p in plan.parcels)
        return FulfilmentDecision(shipments, {"policy": self.name, **plan.explain()})


class SilkroutePolicy(IndexPolicy):
    """The default policy: the cost-model router behind checkout's interface."""

    def __init__(self, index: NetworkIndex, capacity: CapacityState | None = None,
                 model: CostModel | None = None,
                 opportunity: OpportunityCosts | None = None) -> None:
        super().__init__("silkroute", index, capacity, model, opportunity)


def policy_by_name(name: str, index: NetworkIndex | None = None,
                   capacity: CapacityState | None = None,
                   model: CostModel | None = None) -> FulfilmentPolicy:
    """A FulfilmentPolicy by name; every name but nearest-with-stock needs a NetworkIndex."""
    if name == NearestWithStockPolicy.name:
        return NearestWithStockPolicy()
    if name not in ROUTERS:
        raise ValidationError(f"policy: unknown {name!r} (known: {', '.join(POLICY_NAMES)})",
                              field="policy")
    if index is None:
        raise ValidationError(f"policy {name!r} needs a network index; generate or import a "
                              "network first", field="policy")
    if name == "silkroute":
        return SilkroutePolicy(index, capacity, model)
    return IndexPolicy(name, index, capacity, model)


__all__ = ["ROUTERS", "IndexPolicy", "SilkroutePolicy", "apply_plan", "policy_by_name",
           "route_with"]
