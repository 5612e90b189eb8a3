"""The online router: one order in, one fulfilment plan (parcels, carriers, costs) out."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from silkroute.domain.errors import ValidationError
from silkroute.routing.capacity import CapacityState
from silkroute.routing.cost import CostBreakdown, CostModel, OpportunityCosts, parcel_cost
from silkroute.routing.index import NetworkIndex
from silkroute.routing.policy import OrderRequest

NO_STOCK = "no_stock"
NO_CARRIER = "no_carrier"
CAPACITY_EXHAUSTED = "capacity_exhausted"
MAX_CANDIDATES = 6  # single-location candidates evaluated, cheapest-looking first
SPLIT_LOCATIONS = 8  # locations considered by the split search (the cheapest-looking)
K_CARRIERS = 24  # carriers priced exactly per location (the index ranks them)
N_ALTERNATIVES = 3
_INF = float("inf")


@dataclass(frozen=True, slots=True)
class Parcel:
    """One parcel of a plan. `carrier_id` is None when the buyer collects it where it is."""

    location_id: int
    lines: tuple[tuple[int, int], ...]  # (sku_id, quantity)
    carrier_id: int | None
    service: str
    cost: CostBreakdown
    promised_date: dt.date
    on_time_probability: float
    weight_g: float
    location_pos: int
    carrier_pos: int | None
    line_pos: tuple[tuple[int, int], ...]  # (SKU position, quantity)


@dataclass(frozen=True, slots=True)
class Alternative:
    """A plan the router could have chosen: (location_id, carrier_id) per parcel, and cost."""

    parcels: tuple[tuple[int, int | None], ...]
    cost: float
    note: str = ""


@dataclass(frozen=True, slots=True)
class FulfilmentPlan:
    """The router's answer. With no parcels, `reason` says why: no_stock, no_carrier or
    capacity_exhausted."""

    order_ref: str
    parcels: tuple[Parcel, ...]
    cost: CostBreakdown
    promise_days: int
    promised_date: dt.date | None
    on_time_probability: float
    alternatives: tuple[Alternative, ...] = ()
    reason: str | None = None
    message: str = ""

    @property
    def ok(self) -> bool:
        return bool(self.parcels)

    @property
    def is_split(self) -> bool:
        return len(self.parcels) > 1

    def explain(self) -> dict[str, object]:
        return {
            "cost": self.cost.as_dict(),
            "promise_days": self.promise_days,
            "on_time_probability": round(self.on_time_probability, 4),
            "parcels": [{"location_id": p.location_id, "carrier_id": p.carrier_id,
                         "lines": [list(x) for x in p.lines], "cost": p.cost.as_dict(),
                         "on_time_probability": round(p.on_time_probability, 4)}
                        for p in self.parcels],
            "alternatives": [{"parcels": [list(x) for x in a.parcels], "cost": round(a.cost, 2),
                              "note": a.note} for a in self.alternatives],
            "reason": self.reason,
        }


@dataclass(slots=True)
class OrderContext:
    """An order resolved against the index: positions, promise and penalty."""

    ref: str
    zone: int
    service: str
    promise: int
    penalty: float
    hour: float
    day: dt.date
    lines: list[tuple[int, int, int, int]]  # (SKU position, quantity, unit weight g, sku_id)
    pickup: int | None
    scarcity: float = 0.0


# Per line: location positions, units available, and stock-entry positions (for prices).
Sources = list[tuple[list[int], list[int], list[int]]]


def resolve(order: OrderRequest, index: NetworkIndex, model: CostModel) -> OrderContext:
    """Map ids to index positions; compute the promise. Raises ValidationError on bad ids."""
    pickup = None
    if order.service == "pickup":
        if order.pickup_location_id is None:
            raise ValidationError("pickup order needs a pickup point",
                                  field="pickup_location_id")
        pickup = index.loc_pos.get(order.pickup_location_id)
        if pickup is None or not index.loc_pickup[pickup]:
            raise ValidationError(
                f"pickup_location_id: {order.pickup_location_id} is not a pickup point",
                field="pickup_location_id")
        zone = int(index.loc_zone[pickup])
    elif order.zone_id is not None and order.zone_id in index.zone_pos:
        zone = index.zone_pos[order.zone_id]
    else:
        zone = index.nearest_zone(order.latitude, order.longitude)
    lines = []
    for ln in order.lines:
        if ln.quantity <= 0:
            raise ValidationError(f"quantity must be positive, got {ln.quantity}",
                                  field="quantity")
        sp = index.sku_pos.get(ln.sku_id, -1)
        w = ln.weight_g or (int(index.sku_weight[sp]) if sp >= 0 else 0)
        lines.append((sp, ln.quantity, w, ln.sku_id))
    service = order.service
    promise = model.promise_days(service, bool(index.next_day_zone[zone]))
    day = order.order_date or dt.date.today()
    return OrderContext(order.order_ref, zone, service, promise, model.penalty(service),
                        order.placed_hour if order.placed_hour is not None else 10.0, day,
                        lines, pickup, model.scarcity_price)


def stock_sources(ctx: OrderContext, index: NetworkIndex, cap: CapacityState) -> Sources:
    """Where each line's SKU is on hand, from the live capacity state."""
    out: Sources = []
    for sp, _q, _w, _id in ctx.lines:
        if sp < 0:
            out.append(([], [], []))
            continue
        lo, hi = int(index.sku_ptr[sp]), int(index.sku_ptr[sp + 1])
        out.append((index.sku_loc[lo:hi].tolist(), cap.stock[lo:hi].tolist(),
                    list(range(lo, hi))))
    return out


def _evaluate(index: NetworkIndex, ctx: OrderContext, cap: CapacityState,
              opp: OpportunityCosts | None, locs: Sequence[int], weights_g: Sequence[float],
              stock_opp: Sequence[float] | None = None, n_car: int = 0
              ) -> dict[str, np.ndarray]:
    """Every (location entry, carrier) row: components of the cost; infeasible rows = inf.

    Per location the K carriers (capacity left) ranked cheapest by the index for this
    scenario are priced exactly.
    """
    n_car = n_car or K_CARRIERS
    zone = ctx.zone
    car_left = cap.car_left
    loc_zone = index.lists()["loc_zone"]
    larr = np.asarray(locs, dtype=np.int64)
    bands = index.loc_band[larr, zone]
    parts: list[tuple[np.ndarray, np.ndarray]] = []
    blist = bands.tolist()
    for lp, b, w in zip(locs, blist, weights_g, strict=True):
        parts.append(index.top_carriers(loc_zone[lp], zone, b, ctx.penalty, ctx.promise,
                                        ctx.hour, w, car_left, n_car))
    lens = np.fromiter((len(p[0]) for p in parts), dtype=np.int64, count=len(parts))
    if lens.sum() == 0:
        return {"n": lens}
    cids = np.concatenate([p[0] for p in parts])
    alive = car_left[cids] > 0
    if not alive.all():
        # Refresh the cached ranking of locations that lost half of their carriers.
        starts = np.concatenate(([0], np.cumsum(lens)[:-1]))
        nonempty = lens > 0
        n_alive = np.zeros(len(parts), dtype=np.int64)
        n_alive[nonempty] = np.add.reduceat(alive.astype(np.int64), starts[nonempty])
        stale = np.flatnonzero(2 * n_alive < lens).tolist()
        if stale:
            for j in stale:
                parts[j] = index.top_carriers(loc_zone[locs[j]], zone, blist[j], ctx.penalty,
                                              ctx.promise, ctx.hour, weights_g[j], car_left,
                                              n_car, refresh=True)
            lens = np.fromiter((len(p[0]) for p in parts), dtype=np.int64, count=len(parts))
            if lens.sum() == 0:
                return {"n": lens}
            cids = np.concatenate([p[0] for p in parts])
            alive = car_left[cids] > 0
    block = np.concatenate([p[1] for p in parts]) if len(parts) > 1 else parts[0][1]
    if len(locs) == 1:
        entry = np.zeros(len(cids), dtype=np.int64)
        wkg: float | np.ndarray = weights_g[0] / 1000.0
        closes = index.loc_closes[locs[0]]
    else:
        entry = np.repeat(np.arange(len(locs)), lens)
        wkg = (np.asarray(weights_g, dtype=np.float64) / 1000.0)[entry]
        closes = index.loc_closes[larr][entry]
    lrow = larr[entry]
    fee = block[:, 0] + block[:, 1] * wkg
    late_ship = ctx.hour >= np.minimum(block[:, 2], closes)
    p = np.where(late_ship, block[:, 4], block[:, 3])
    late = ctx.penalty * (1.0 - p)
    handling = index.loc_handling[lrow]
    if opp is not None and opp.active:
        o = opp.carrier[cids]
        if stock_opp is not None:
            o = o + np.asarray(stock_opp, dtype=np.float64)[entry]
    else:
        o = np.zeros(len(cids))
    if ctx.scarcity > 0.0:
        used_c = 1.0 - car_left[cids] / np.maximum(index.car_capacity[cids], 1)
        used_l = 1.0 - cap.loc_left[larr] / np.maximum(index.loc_capacity[larr], 1)
        o = o + ctx.scarcity * (used_c ** 4 + (used_l ** 4)[entry])
    total = fee + handling + late + o
    ok = alive & (block[:, 5] >= wkg * 1000.0)
    if not ok.all():
        total = np.where(ok, total, _INF)
    return {"n": lens, "cid": cids, "entry": entry, "fee": fee, "handling": handling,
            "late": late, "opp": o, "p": p, "total": total}


def _row_parcel(index: NetworkIndex, ctx: OrderContext, ev: dict[str, np.ndarray], r: int,
                loc: int, line_idx: Sequence[int], qtys: Sequence[int]) -> Parcel:
    c = int(ev["cid"][r])
    cost = CostBreakdown(float(ev["fee"][r]), float(ev["handling"][r]), float(ev["late"][r]),
                         0.0, float(ev["opp"][r]))
    return _make_parcel(index, ctx, loc, c, line_idx, qtys, cost, float(ev["p"][r]))


def _make_parcel(index: NetworkIndex, ctx: OrderContext, loc: int, car: int | None,
                 line_idx: Sequence[int], qtys: Sequence[int], cost: CostBreakdown,
                 p: float) -> Parcel:
    lines = tuple((ctx.lines[i][3], q) for i, q in zip(line_idx, qtys, strict=True))
    lpos = tuple((ctx.lines[i][0], q) for i, q in zip(line_idx, qtys, strict=True))
    weight = float(sum(ctx.lines[i][2] * q for i, q in zip(line_idx, qtys, strict=True)))
    return Parcel(int(index.loc_ids[loc]), lines, None if car is None else
                  int(index.car_ids[car]), ctx.service, cost,
                  ctx.day + dt.timedelta(days=ctx.promise), p, weight, loc, car, lpos)


def _collect_parcel(index: NetworkIndex, model: CostModel, ctx: OrderContext, loc: int,
                    line_idx: Sequence[int], qtys: Sequence[int], opp: float) -> Parcel:
    weight = sum(ctx.lines[i][2] * q for i, q in zip(line_idx, qtys, strict=True))
    cost, p = parcel_cost(index, model, loc, None, ctx.zone, weight, ctx.service,
                          ctx.promise, ctx.hour, opp)
    return _make_parcel(index, ctx, loc, None, line_idx, qtys, cost, p)


def assemble(index: NetworkIndex, model: CostModel, ctx: OrderContext,
             parcels: Sequence[Parcel], alternatives: Sequence[Alternative] = ()
             ) -> FulfilmentPlan:
    """A plan from parcels: split penalty per extra parcel, on-time = all parcels on time."""
    total = CostBreakdown()
    p = 1.0
    for parcel in parcels:
        total = total + parcel.cost
        p *= parcel.on_time_probability
    total = total + CostBreakdown(split=model.split_penalty * max(0, len(parcels) - 1))
    kept = tuple(a for a in alternatives if a.cost >= total.total - 1e-9)
    return FulfilmentPlan(ctx.ref, tuple(parcels), total, ctx.promise,
                          ctx.day + dt.timedelta(days=ctx.promise), p, kept)


def no_plan(index: NetworkIndex, ctx: OrderContext, sources: Sources,
            cap: CapacityState | None = None) -> FulfilmentPlan:
    """An empty plan that says why nothing could be planned."""
    for (_sp, q, _w, sku_id), (_locs, av, _e) in zip(ctx.lines, sources, strict=True):
        if sum(av) < q:
            return FulfilmentPlan(ctx.ref, (), CostBreakdown(), ctx.promise, None, 0.0,
                                  reason=NO_STOCK,
                                  message=f"no stock: SKU {sku_id} has {sum(av)} of {q} units")
    zone_has = index.zone_ptr[ctx.zone + 1] > index.zone_ptr[ctx.zone]
    covered = False
    for locs, av, _e in sources:
        for lp, a in zip(locs, av, strict=True):
            if a > 0 and len(index.pair_carriers(int(index.loc_zone[lp]), ctx.zone)):
                covered = True
    if not zone_has or not covered:
        name = int(index.zone_ids[ctx.zone])
        return FulfilmentPlan(ctx.ref, (), CostBreakdown(), ctx.promise, None, 0.0,
                              reason=NO_CARRIER,
                              message=f"no carrier serves zone {name} from where the stock is")
    return FulfilmentPlan(ctx.ref, (), CostBreakdown(), ctx.promise, None, 0.0,
                          reason=CAPACITY_EXHAUSTED,
                          message="capacity exhausted: every carrier or location that could "
                                  "ship this order is full today")


def route_order(order: OrderRequest, index: NetworkIndex, capacity: CapacityState,
                model: CostModel | None = None, opportunity: OpportunityCosts | None = None,
                sources: Sources | None = None) -> FulfilmentPlan:
    """The cheapest feasible plan by the cost model, with the next best alternatives.

    Joint choice of location and carrier; splits only when no location can ship the whole
    order or a split is cheaper after the per-parcel penalty. Reads, never writes, `capacity`.
    """
    model = model or CostModel.for_currency(index.currency)
    ctx = resolve(order, index, model)
    src = sources if sources is not None else stock_sources(ctx, index, capacity)
    return plan_for(ctx, index, capacity, model, opportunity, src)


def plan_for(ctx: OrderContext, index: NetworkIndex, cap: CapacityState, model: CostModel,
             opp: OpportunityCosts | None, src: Sources) -> FulfilmentPlan:
    n = len(ctx.lines)
    loc_left = cap.loc_left
    use_opp = opp is not None and opp.active
    # Locations that hold every line (dict: location -> stock-opportunity of the order there)
    first_locs, first_av, first_e = src[0]
    q0 = ctx.lines[0][1]
    common: dict[int, float] = {}
    for lp, a, e in zip(first_locs, first_av, first_e, strict=True):
        if a >= q0 and loc_left[lp] > 0:
            common[lp] = float(opp.stock[e]) * q0 if use_opp and opp and e >= 0 else 0.0
    for i in range(1, n):
        if not common:
            break
        locs, av, es = src[i]
        qi = ctx.lines[i][1]
        nxt: dict[int, float] = {}
        for lp, a, e in zip(locs, av, es, strict=True):
            if lp in common and a >= qi:
                nxt[lp] = common[lp] + (float(opp.stock[e]) * qi if use_opp and opp and e >= 0
                                         else 0.0)
        common = nxt
    all_idx = list(range(n))
    all_q = [ln[1] for ln in ctx.lines]
    total_w = float(sum(ln[1] * ln[2] for ln in ctx.lines))

    best_plan: FulfilmentPlan | None = None
    alts: list[Alternative] = []
    if common:
        cands = list(common)
        collect = ctx.pickup if ctx.pickup is not None and ctx.pickup in common else None
        rest: list[int] = []
        if len(cands) > MAX_CANDIDATES:
            d = index.loc_handling[cands] + index.loc_dist[cands, ctx.zone] * (
                model.split_penalty / 400.0)
            ranked = [cands[j] for j in np.argsort(d, kind="stable")]
            cands, rest = ranked[:MAX_CANDIDATES], ranked[MAX_CANDIDATES:]
            if collect is not None and collect not in cands:
                cands.append(collect)
        ev = _evaluate(index, ctx, cap, opp, cands, [total_w] * len(cands),
                       [common[c] for c in cands])
        if rest and ("total" not in ev or not np.isfinite(ev["total"]).any()):
            # None of the cheapest-looking locations can ship: price all the others.
            cands = rest
            ev = _evaluate(index, ctx, cap, opp, cands, [total_w] * len(cands),
                           [common[c] for c in cands])
        options: list[tuple[float, int, int]] = []  # (total, location, row or -1 = collect)
        if "total" in ev:
            tot = ev["total"]
            k = min(len(tot), 24)
            top = np.argpartition(tot, k - 1)[:k] if len(tot) > k else np.arange(len(tot))
            top = top[np.argsort(tot[top], kind="stable")]
            for r in top.tolist():
                t = float(tot[r])
                if t == _INF:
                    break
                options.append((t, cands[int(ev["entry"][r])], r))
        collect_parcel = None
        if collect is not None:
            collect_parcel = _collect_parcel(index, model, ctx, collect, all_idx, all_q,
                                             common[collect])
            options.append((collect_parcel.cost.total, collect, -1))
            options.sort(key=lambda o: o[0])
        if options:
            t, loc, r = options[0]
            parcel = collect_parcel if r < 0 else _row_parcel(index, ctx, ev, r, loc, all_idx,
                                                              all_q)
            assert parcel is not None
            seen_locs = {loc}
            second_carrier = False
            for t2, l2, r2 in options[1:]:
                if len(alts) >= N_ALTERNATIVES:
                    break
                car = None if r2 < 0 else int(index.car_ids[int(ev["cid"][r2])])
                if l2 in seen_locs:
                    if l2 != loc or second_carrier:
                        continue
                    second_carrier = True
                    note = "same location, next carrier"
                else:
                    seen_locs.add(l2)
                    note = "next location"
                alts.append(Alternative(((int(index.loc_ids[l2]), car),), t2, note))
            best_plan = assemble(index, model, ctx, [parcel])

    # Splitting: only when nothing ships whole, or a split could beat the best single plan.
    if n >= 2 or best_plan is None:
        h_min = min((float(index.loc_handling[locs].min()) for locs, _a, _e in src if locs),
                    default=0.0)
        bound = model.split_penalty + 2 * h_min
        if ctx.pickup is None:
            bound += 2 * float(index.zone_min_fee[ctx.zone])
            late_day = ctx.hour >= index.zone_max_cutoff[ctx.zone]
            days = ctx.promise - int(late_day)
            p_max = float(index.zone_best_cdf[ctx.zone, min(days, 4)]) if days >= 0 else 0.0
            bound += 2 * ctx.penalty * (1.0 - p_max)
        if best_plan is None or best_plan.cost.total > bound:
            split = _split_plan(index, model, ctx, cap, opp, src)
            if split is not None:
                if best_plan is None or split.cost.total < best_plan.cost.total - 1e-9:
                    if best_plan is not None:
                        alts.insert(0, Alternative(
                            tuple((p.location_id, p.carrier_id) for p in best_plan.parcels),
                            best_plan.cost.total, "best single-location plan"))
                    best_plan = split
                else:
                    alts.append(Alternative(
                        tuple((p.location_id, p.carrier_id) for p in split.parcels),
                        split.cost.total, "best split plan"))
    if best_plan is None:
        return no_plan(index, ctx, src, cap)
    alts.sort(key=lambda a: a.cost)
    return FulfilmentPlan(best_plan.order_ref, best_plan.parcels, best_plan.cost,
                          best_plan.promise_days, best_plan.promised_date,
                          best_plan.on_time_probability,
                          tuple(a for a in alts if a.cost >= best_plan.cost.total - 1e-9)
                          [:N_ALTERNATIVES + 1])


def _best_rows(ev: dict[str, np.ndarray], n_entries: int) -> list[tuple[float, int]]:
    """Per entry, (cheapest total, its row); (inf, -1) when nothing is feasible."""
    out: list[tuple[float, int]] = []
    if "total" not in ev:
        return [(_INF, -1)] * n_entries
    tot = ev["total"]
    start = 0
    for ln in ev["n"].tolist():
        if ln == 0:
            out.append((_INF, -1))
            continue
        r = start + int(np.argmin(tot[start:start + ln]))
        out.append((float(tot[r]), r))
        start += ln
    return out


def _split_plan(index: NetworkIndex, model: CostModel, ctx: OrderContext, cap: CapacityState,
                opp: OpportunityCosts | None, src: Sources) -> FulfilmentPlan | None:
    """Cheapest partition of the lines over locations (exact over subsets of <= 5 lines);
    lines no single location can fill are split by quantity, cheapest location first."""
    n = len(ctx.lines)
    use_opp = opp is not None and opp.active
    masks: dict[int, int] = {}
    unit_opp: dict[tuple[int, int], float] = {}
    for i, (locs, av, es) in enumerate(src):
        qi = ctx.lines[i][1]
        for lp, a, e in zip(locs, av, es, strict=True):
            if a >= qi and cap.loc_left[lp] > 0:
                masks[lp] = masks.get(lp, 0) | (1 << i)
                unit_opp[(lp, i)] = (float(opp.stock[e]) * qi if use_opp and opp and e >= 0
                                     else 0.0)
    coverable = 0
    for m in masks.values():
        coverable |= m
    full = (1 << n) - 1
    if coverable != full or n > 6:
        return _quantity_split(index, model, ctx, cap, opp, src)
    if len(masks) > SPLIT_LOCATIONS:
        # Keep, per line and for multi-line sets, the few cheapest-looking locations that
        # some carrier serves.
        loc_zone = index.lists()["loc_zone"]
        ml = [lp for lp in masks if lp == ctx.pickup
              or len(index.pair_carriers(loc_zone[lp], ctx.zone))]
        key = (index.loc_handling[ml] + index.loc_dist[ml, ctx.zone] * (
            model.split_penalty / 400.0)).tolist()
        ranked = sorted(range(len(ml)), key=lambda j: (key[j], ml[j]))
        keep: set[int] = set()
        for bit in [1 << i for i in range(n)] + [-1]:
            got = 0
            for j in ranked:
                m = masks[ml[j]]
                if (bit > 0 and m & bit) or (bit < 0 and m & (m - 1)):
                    keep.add(ml[j])
                    got += 1
                    if got == 3:
                        break
        if ctx.pickup is not None and ctx.pickup in masks:
            keep.add(ctx.pickup)
        masks = {lp: masks[lp] for lp in ml if lp in keep}
    entries: list[tuple[int, int]] = []
    for lp, m in masks.items():
        s = m
        while s:
            entries.append((lp, s))
            s = (s - 1) & m
    weights = [float(sum(ctx.lines[i][1] * ctx.lines[i][2] for i in range(n) if s >> i & 1))
               for _lp, s in entries]
    sopp = [sum(unit_opp[(lp, i)] for i in range(n) if s >> i & 1) for lp, s in entries]
    ev = _evaluate(index, ctx, cap, opp, [e[0] for e in entries], weights, sopp)
    best = _best_rows(ev, len(entries))
    best_sub: dict[int, tuple[float, int]] = {}  # subset -> (cost, entry)
    for j, (lp, s) in enumerate(entries):
        cost = best[j][0]
        if ctx.pickup is not None and lp == ctx.pickup:
            cost = float(index.loc_handling[lp]) + sopp[j]
            best[j] = (cost, -2)
        if cost < best_sub.get(s, (_INF, -1))[0]:
            best_sub[s] = (cost, j)
    # DP over subsets: f[mask] = cheapest cover of `mask` (+ penalty for each extra parcel)
    f: list[float] = [_INF] * (full + 1)
    choice: list[int] = [0] * (full + 1)
    f[0] = -model.split_penalty
    for mask in range(1, full + 1):
        low = mask & -mask
        s = mask
        while s:
            if s & low and s in best_sub:
                v = best_sub[s][0] + model.split_penalty + f[mask ^ s]
                if v < f[mask]:
                    f[mask], choice[mask] = v, s
            s = (s - 1) & mask
    if f[full] == _INF:
        return no_carrier_fallback(index, model, ctx, cap, opp, src)
    parcels: list[Parcel] = []
    mask = full
    used_car: dict[int, int] = {}
    used_loc: dict[int, int] = {}
    while mask:
        s = choice[mask]
        j = best_sub[s][1]
        lp = entries[j][0]
        idx = [i for i in range(n) if s >> i & 1]
        qs = [ctx.lines[i][1] for i in idx]
        r = best[j][1]
        if r == -2:
            parcels.append(_collect_parcel(index, model, ctx, lp, idx, qs, sopp[j]))
        else:
            parcels.append(_row_parcel(index, ctx, ev, r, lp, idx, qs))
        c = parcels[-1].carrier_pos
        if c is not None:
            used_car[c] = used_car.get(c, 0) + 1
        used_loc[lp] = used_loc.get(lp, 0) + 1
        mask ^= s
    if any(cap.car_left[c] < k for c, k in used_car.items()) or any(
            cap.loc_left[lp] < k for lp, k in used_loc.items()):
        return _quantity_split(index, model, ctx, cap, opp, src)
    return assemble(index, model, ctx, parcels)


def no_carrier_fallback(index: NetworkIndex, model: CostModel, ctx: OrderContext,
                        cap: CapacityState, opp: OpportunityCosts | None, src: Sources
                        ) -> FulfilmentPlan | None:
    return _quantity_split(index, model, ctx, cap, opp, src)


def _quantity_split(index: NetworkIndex, model: CostModel, ctx: OrderContext,
                    cap: CapacityState, opp: OpportunityCosts | None, src: Sources
                    ) -> FulfilmentPlan | None:
    """Greedy: fill each line from the locations with the cheapest parcel, in that order,
    then give each location's parcel its cheapest carrier with capacity left."""
    n = len(ctx.lines)
    locs_all = sorted({lp for locs, av, _e in src for lp, a in zip(locs, av, strict=True)
                       if a > 0 and cap.loc_left[lp] > 0})
    if not locs_all:
        return None
    unit_w = max(1.0, float(np.mean([ln[2] for ln in ctx.lines])))
    ev = _evaluate(index, ctx, cap, opp, locs_all, [unit_w] * len(locs_all))
    best = _best_rows(ev, len(locs_all))
    rank = {lp: best[j][0] for j, lp in enumerate(locs_all)}
    if ctx.pickup is not None and ctx.pickup in rank:
        rank[ctx.pickup] = float(index.loc_handling[ctx.pickup])
    take: dict[int, dict[int, int]] = {}
    for i in range(n):
        need = ctx.lines[i][1]
        locs, av, _e = src[i]
        for a, lp in sorted(((a, lp) for lp, a in zip(locs, av, strict=True)
                             if a > 0 and rank.get(lp, _INF) < _INF),
                            key=lambda x: (rank[x[1]], -x[0])):
            got = min(a, need)
            take.setdefault(lp, {})[i] = got
            need -= got
            if need == 0:
                break
        if need > 0:
            return None
    parcels: list[Parcel] = []
    car_left = cap.car_left
    taken: list[int] = []
    try:
        for lp, part in take.items():
            idx = list(part)
            qs = [part[i] for i in idx]
            if ctx.pickup is not None and lp == ctx.pickup:
                parcels.append(_collect_parcel(index, model, ctx, lp, idx, qs, 0.0))
                continue
            w = float(sum(ctx.lines[i][2] * q for i, q in zip(idx, qs, strict=True)))
            ev1 = _evaluate(index, ctx, cap, opp, [lp], [w])
            (t, r), = _best_rows(ev1, 1)
            if t == _INF:
                return None
            parcels.append(_row_parcel(index, ctx, ev1, r, lp, idx, qs))
            c = int(ev1["cid"][r])
            car_left[c] -= 1  # hold the parcel's slot while the others choose
            taken.append(c)
    finally:
        for c in taken:
            car_left[c] += 1
    if any(cap.loc_left[p.location_pos] < sum(1 for q in parcels
                                              if q.location_pos == p.location_pos)
           for p in parcels):
        return None
    return assemble(index, model, ctx, parcels)


def apply_plan(plan: FulfilmentPlan, index: NetworkIndex, capacity: CapacityState) -> None:
    """Consume the plan's stock, handling and carrier capacity."""
    for parcel in plan.parcels:
        capacity.take_parcel(parcel.location_pos, parcel.carrier_pos)
        for sp, q in parcel.line_pos:
            capacity.take_stock(index, sp, parcel.location_pos, q)


def check_feasible(plan: FulfilmentPlan, index: NetworkIndex, capacity: CapacityState,
                   order: OrderRequest) -> list[str]:
    """Problems that would make `plan` infeasible against `capacity` (empty when fine)."""
    problems: list[str] = []
    want: dict[int, int] = {}
    for ln in order.lines:
        want[ln.sku_id] = want.get(ln.sku_id, 0) + ln.quantity
    got: dict[int, int] = {}
    loc_use: dict[int, int] = {}
    car_use: dict[int, int] = {}
    stock_use: dict[tuple[int, int], int] = {}
    for p in plan.parcels:
        loc_use[p.location_pos] = loc_use.get(p.location_pos, 0) + 1
        if p.carrier_pos is not None:
            car_use[p.carrier_pos] = car_use.get(p.carrier_pos, 0) + 1
            zl = int(index.loc_zone[p.location_pos])
            zone = int(index.loc_zone[index.loc_pos[order.pickup_location_id]]) if (
                order.service == "pickup" and order.pickup_location_id is not None) else (
                index.zone_pos[order.zone_id] if order.zone_id in index.zone_pos
                else index.nearest_zone(order.latitude, order.longitude))
            if not (index.coverage[zl, p.carrier_pos] and index.coverage[zone, p.carrier_pos]):
                problems.append(f"carrier {p.carrier_id} does not cover the route")
            if not np.isfinite(index.car_fee[p.carrier_pos, index.loc_band[p.location_pos,
                                                                             zone]]):
                problems.append(f"carrier {p.carrier_id} does not offer the distance band")
        elif order.service != "pickup" or index.loc_ids[p.location_pos] != \
                order.pickup_location_id:
            problems.append("parcel without carrier is not a collection at the pickup point")
        for sp, q in p.line_pos:
            stock_use[(sp, p.location_pos)] = stock_use.get((sp, p.location_pos), 0) + q
        for sku_id, q in p.lines:
            got[sku_id] = got.get(sku_id, 0) + q
    if got != want:
        problems.append(f"lines shipped {got} differ from lines ordered {want}")
    for lp, k in loc_use.items():
        if capacity.loc_left[lp] < k:
            problems.append(f"location {lp} over handling capacity")
    for c, k in car_use.items():
        if capacity.car_left[c] < k:
            problems.append(f"carrier {c} over capacity")
    for (sp, lp), q in stock_use.items():
        if capacity.available(index, sp, lp) < q:
            problems.append(f"SKU {sp} at {lp}: {q} > available")
    return problems
