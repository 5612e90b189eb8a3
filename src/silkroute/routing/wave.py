"""Wave planning: a wave of orders over location × carrier options under shared capacities."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from silkroute.routing.cost import CostModel
from silkroute.routing.index import NetworkIndex
from silkroute.sim.network import sku_popularity

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
I32Array = npt.NDArray[np.int32]

#: carriers' weight limits (10, 20, 30 kg) are class edges, so a class never straddles one
WEIGHT_EDGES_G: tuple[float, ...] = (0.0, 250.0, 500.0, 750.0, 1_000.0, 1_500.0, 2_000.0,
                                     3_000.0, 4_000.0, 5_000.0, 7_500.0, 10_000.0, 15_000.0,
                                     20_000.0, 25_000.0, 30_000.0)
MAX_PARCEL_G = 30_000.0
QTY_PROBS = (0.75, 0.17, 0.08)  # as in the demand generator
#: the cheapest-option assignment must overload carriers carrying at least this volume share
TARGET_OVER_SHARE = 0.30


@dataclass
class WaveOrders:
    """One wave, one parcel per order: destination zone, SKU position, units, weight, service
    (0 standard, 1 member next day), all positions in a `NetworkIndex`."""

    zone: IntArray
    sku: IntArray
    qty: IntArray
    weight_g: FloatArray
    member: npt.NDArray[np.bool_]

    def __len__(self) -> int:
        return len(self.zone)


@dataclass
class WaveProblem:
    """The allocation problem: order i may take option k (columns of the dense arrays, cheapest
    first, `cost` = inf where absent), which uses one unit of carrier `car[i, k]` and of
    location `loc[i, k]`. Every option left out of the table costs at least `rest_lb[i]` (inf
    when none was left out), so a bound computed with it holds for the full option set."""

    cost: FloatArray  # (n, K)
    car: I32Array  # (n, K) carrier positions
    loc: I32Array  # (n, K) location positions
    rest_lb: FloatArray  # (n,)
    car_cap: IntArray
    loc_cap: IntArray
    region: IntArray  # (n,) region of each order (0..regions-1)
    regions: int = 1
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def n(self) -> int:
        return int(self.cost.shape[0])

    @property
    def width(self) -> int:
        return int(self.cost.shape[1])

    def loads(self, choice: IntArray) -> tuple[IntArray, IntArray]:
        """Parcels per carrier and per location when order i takes option `choice[i]`."""
        rows = np.arange(self.n)
        car = self.car[rows, choice]
        loc = self.loc[rows, choice]
        return (np.bincount(car, minlength=len(self.car_cap)).astype(np.int64),
                np.bincount(loc, minlength=len(self.loc_cap)).astype(np.int64))

    def objective(self, choice: IntArray) -> float:
        return float(self.cost[np.arange(self.n), choice].sum())

    def is_feasible(self, choice: IntArray) -> bool:
        if len(choice) != self.n or (self.n and (choice.min() < 0 or choice.max() >= self.width)):
            return False
        if not np.isfinite(self.cost[np.arange(self.n), choice]).all():
            return False
        car_load, loc_load = self.loads(choice)
        return bool((car_load <= self.car_cap).all() and (loc_load <= self.loc_cap).all())


def over_capacity_share(car: IntArray, car_cap: IntArray) -> float:
    """Share of the parcels (one per entry of `car`, a carrier position) that sit on carriers
    loaded beyond their capacity."""
    if len(car) == 0:
        return 0.0
    load = np.bincount(car, minlength=len(car_cap))
    over = load > car_cap
    return float(load[over].sum()) / float(len(car))


def generate_wave(index: NetworkIndex, orders: int, seed: int = 1) -> WaveOrders:
    """A wave drawn like the demand generator's day (population-weighted destinations, Zipf
    SKU popularity, 1–3 units, 30% members), vectorised; one parcel per order, capped at 30 kg.
    SKUs that no location stocks are never drawn."""
    rng = np.random.default_rng([seed, 11])
    pop = index.zone_pop.astype(np.float64).clip(min=1.0)
    zone = rng.choice(index.n_zones, size=orders, p=pop / pop.sum())
    stocked = np.diff(index.sku_ptr) > 0
    popw = sku_popularity(len(index.sku_ids)) * stocked
    sku = rng.choice(len(index.sku_ids), size=orders, p=popw / popw.sum())
    qty = rng.choice(3, size=orders, p=np.array(QTY_PROBS)) + 1
    unit = index.sku_weight[sku].astype(np.float64)
    qty = np.minimum(qty, np.maximum(1, (MAX_PARCEL_G // np.maximum(unit, 1.0)).astype(np.int64)))
    member = rng.random(orders) < 0.3
    return WaveOrders(zone.astype(np.int64), sku.astype(np.int64), qty.astype(np.int64),
                      np.minimum(unit * qty, MAX_PARCEL_G), member)


def _weight_class(w: FloatArray) -> IntArray:
    edges = np.array(WEIGHT_EDGES_G[1:-1])
    return np.searchsorted(edges, w, side="right").astype(np.int64)


def build_wave(
    index: NetworkIndex, model: CostModel, wave: WaveOrders, *, hour: float = 12.0,
    width: int = 20, per_key: int = 24, backbone: int = 2, max_locations: int = 3,
    regions: int = 8,
    capacity_scale: float | None = None, design_orders: int = 100_000,
) -> WaveProblem:
    """The wave's allocation problem with tight capacities.

    Options of an order: every location stocking its SKU × every carrier serving both that
    location's zone and the destination (fee in the distance band, per kg, weight limit),
    costed by the router's cost model (fee + handling + penalty × P(late) for a wave released
    at `hour`). The `per_key` cheapest carriers are kept per (origin zone, destination, band,
    location open, service, weight class), the `max_locations` cheapest-looking locations per
    order, and the `width` cheapest options per order; everything dropped is summarised in
    `rest_lb` (a lower bound on its cost), so the Lagrangian bound stays valid for the full
    problem.

    Capacities: the network's daily capacities are sized for `design_orders`; for the wave
    they are multiplied by `orders / design_orders` × a tightness factor t. Where the
    generated wave cannot fit at all (the generator's stock placement does not know the
    wave), `_fit_capacities` raises the carriers and locations that the repaired
    cheapest-option assignment still overloads to 105% of that load. With `capacity_scale`
    None, t starts at 1 and is multiplied by 0.85 until the carriers that would be over
    capacity if every order took its cheapest option carry at least `TARGET_OVER_SHARE` of
    the volume (never below t = 0.2). `info` reports t, that share and what was raised.
    """
    n = len(wave)
    promise_member = np.where(index.next_day_zone, model.member_days, model.standard_days)
    promise = np.where(wave.member, promise_member[wave.zone], model.standard_days)
    wc = _weight_class(wave.weight_g)
    # ---- incidences: (order, stocking location) -------------------------------------
    cnt = (index.sku_ptr[wave.sku + 1] - index.sku_ptr[wave.sku]).astype(np.int64)
    inc_order = np.repeat(np.arange(n, dtype=np.int64), cnt)
    starts = np.repeat(index.sku_ptr[wave.sku] - np.cumsum(cnt) + cnt, cnt)
    inc_loc = index.sku_loc[starts + np.arange(len(inc_order))].astype(np.int64)
    z = wave.zone[inc_order]
    lz = index.loc_zone[inc_loc]
    band = index.loc_band[inc_loc, z].astype(np.int64)
    open_today = (index.loc_closes[inc_loc] > hour).astype(np.int64)
    svc = wave.member[inc_order].astype(np.int64)
    prom = promise[inc_order].astype(np.int64)
    wcl = wc[inc_order]
    nz, nb, nw = index.n_zones, index.car_fee.shape[1], len(WEIGHT_EDGES_G) - 1
    # key = (origin zone, destination zone, band, open, service, promise, weight class)
    key = (((((lz * nz + z) * nb + band) * 2 + open_today) * 2 + svc) * 4 + prom) * nw + wcl
    ukeys, inc_key = np.unique(key, return_inverse=True)
    kk, kw, key_rest = _key_tables(index, model, ukeys, hour, per_key, backbone)
    per_key = kk.shape[1]
    # ---- exact costs of the kept carriers per incidence -------------------------------
    slots_car = kk[inc_key]  # (inc, per_key) carrier positions, -1 where absent
    valid = slots_car >= 0
    cpos = np.where(valid, slots_car, 0)
    w = wave.weight_g[inc_order]
    exact = (kw[inc_key] + index.car_perkg[cpos] * (w[:, None] / 1000.0)
             + index.loc_handling[inc_loc][:, None])
    exact = np.where(valid & (index.car_maxw[cpos] >= w[:, None]), exact, np.inf)
    # the cheapest carrier left out is a concave function of the weight: above the chord
    edges = np.array(WEIGHT_EDGES_G)
    frac = (w - edges[wcl]) / (edges[wcl + 1] - edges[wcl])
    r_lo, r_hi = key_rest[inc_key, 0], key_rest[inc_key, 1]
    both = np.isfinite(r_hi)
    chord = r_lo.copy()
    chord[both] = r_lo[both] + (r_hi[both] - r_lo[both]) * frac[both]
    inc_rest = chord + index.loc_handling[inc_loc]
    inc_min = np.minimum(exact.min(axis=1), inc_rest)
    # ---- keep the cheapest-looking `max_locations` locations per order ----------------
    order_sort = np.lexsort((inc_min, inc_order))
    inc_order_s = inc_order[order_sort]
    first = np.searchsorted(inc_order_s, np.arange(n))
    rank = np.arange(len(order_sort)) - first[inc_order_s]
    keep = rank < max_locations
    rest = np.full(n, np.inf)
    dropped = order_sort[~keep]
    np.minimum.at(rest, inc_order[dropped], inc_min[dropped])
    kept = order_sort[keep]
    np.minimum.at(rest, inc_order[kept], inc_rest[kept])
    # dense candidate block (n, max_locations * per_key)
    m = max_locations * per_key
    cand_cost = np.full((n, m), np.inf)
    cand_car = np.zeros((n, m), dtype=np.int32)
    cand_loc = np.zeros((n, m), dtype=np.int32)
    rows = inc_order[kept]
    base = rank[keep] * per_key
    for j in range(per_key):
        cand_cost[rows, base + j] = exact[kept, j]
        cand_car[rows, base + j] = cpos[kept, j]
        cand_loc[rows, base + j] = inc_loc[kept]
    # ---- per order: the cheapest `width - backbone` options, then the cheapest backbone ones
    width = min(width, m)
    order_idx = np.argsort(cand_cost, axis=1, kind="stable")
    r = np.arange(n)[:, None]
    sorted_cost = cand_cost[r, order_idx]
    sorted_car = cand_car[r, order_idx]
    head = max(0, width - backbone)
    pick = np.zeros((n, m), dtype=bool)
    pick[:, :head] = True
    spare = (~pick & (index.car_tier[sorted_car] == 0)) & np.isfinite(sorted_cost)
    spare &= np.cumsum(spare, axis=1) <= width - head
    pick |= spare
    # fill up to `width` with the next cheapest when fewer backbone options exist
    short = width - pick.sum(axis=1)
    fill = ~pick & (np.cumsum(~pick, axis=1) <= short[:, None])
    pick |= fill
    rest = np.minimum(rest, np.where(pick, np.inf, sorted_cost).min(axis=1))
    cols = np.argsort(~pick, axis=1, kind="stable")[:, :width]  # picked, cheapest first
    cost = np.ascontiguousarray(np.take_along_axis(sorted_cost, cols, axis=1))
    car = np.ascontiguousarray(np.take_along_axis(sorted_car, cols, axis=1))
    loc = np.ascontiguousarray(np.take_along_axis(cand_loc[r, order_idx], cols, axis=1))
    car[~np.isfinite(cost)] = 0
    loc[~np.isfinite(cost)] = 0
    # ---- capacities -------------------------------------------------------------------
    scale = n / design_orders
    cheapest_car = car[:, 0][np.isfinite(cost[:, 0])].astype(np.int64)
    t = 1.0 if capacity_scale is None else capacity_scale
    while True:
        car_cap0 = np.maximum(1, np.floor(index.car_capacity * scale * t)).astype(np.int64)
        loc_cap0 = np.maximum(1, np.floor(index.loc_capacity * scale * t)).astype(np.int64)
        # raised where the generated wave cannot fit at all (see the docstring)
        car_cap, loc_cap = _fit_capacities(cost, car, loc, car_cap0, loc_cap0)
        share = over_capacity_share(cheapest_car, car_cap)
        if capacity_scale is not None or share >= TARGET_OVER_SHARE or t <= 0.2:
            break
        t = max(0.2, t * 0.85)
    info: dict[str, Any] = {
        "hour": hour, "options_per_order": width, "capacity_factor": round(scale * t, 6),
        "tightness": round(t, 6), "over_capacity_share": share,
        "carriers_raised": int((car_cap > car_cap0).sum()),
        "locations_raised": int((loc_cap > loc_cap0).sum()),
        "capacity_added": int((car_cap - car_cap0).sum() + (loc_cap - loc_cap0).sum()),
        "orders_without_option": int((~np.isfinite(cost[:, 0])).sum()),
        "pruned_orders": int(np.isfinite(rest).sum()),
    }
    return WaveProblem(cost, car, loc, rest, car_cap, loc_cap,
                       zone_regions(index, regions)[wave.zone], regions, info)


def _fit_capacities(cost: FloatArray, car: I32Array, loc: I32Array, car_cap: IntArray,
                    loc_cap: IntArray) -> tuple[IntArray, IntArray]:
    """Capacities under which the wave fits: repair the cheapest-option assignment (at real
    cost) and raise every carrier or location it leaves overloaded to 105% of its load, until
    the repair succeeds. A wave that fits as generated is left alone."""
    from silkroute.routing.wave_solve import repair

    n = cost.shape[0]
    ccap, lcap = car_cap.copy(), loc_cap.copy()
    region = np.zeros(n, dtype=np.int64)
    for _ in range(10):
        probe = WaveProblem(cost, car, loc, np.full(n, np.inf), ccap, lcap, region)
        x, ok = repair(probe, np.zeros(n, dtype=np.int64), cost, eject_limit=500)
        if ok:
            break
        cl, ll = probe.loads(x)
        ccap = np.where(cl > ccap, np.ceil(cl * 1.05).astype(np.int64), ccap)
        lcap = np.where(ll > lcap, np.ceil(ll * 1.05).astype(np.int64), lcap)
    return ccap, lcap


def _key_tables(index: NetworkIndex, model: CostModel, ukeys: IntArray, hour: float,
                per_key: int, backbone: int) -> tuple[IntArray, FloatArray, FloatArray]:
    """Per key: the `per_key` cheapest carriers (positions, -1 padded) at the class's middle
    weight, their weight-free cost (fee + penalty × P(late)), and a lower bound on every other
    carrier's cost at the class's lightest and heaviest weight (the cheapest of them is a
    concave function of the weight, so it lies above the chord between those two values)."""
    nz, nb, nw = index.n_zones, index.car_fee.shape[1], len(WEIGHT_EDGES_G) - 1
    rem = ukeys.copy()
    wcl = rem % nw
    rem //= nw
    prom = rem % 4
    rem //= 4
    svc = rem % 2
    rem //= 2
    open_today = rem % 2
    rem //= 2
    band = rem % nb
    rem //= nb
    z = rem % nz
    lz = rem // nz
    nk = len(ukeys)
    width_k = per_key + backbone
    kk = np.full((nk, width_k), -1, dtype=np.int64)
    kw = np.zeros((nk, width_k))
    rest = np.full((nk, 2), np.inf)
    pen = np.where(svc == 1, model.late_member, model.late_standard)
    days_max = index.car_cdf.shape[2] - 1
    pair = lz * nz + z
    brk = np.flatnonzero(np.diff(pair)) + 1
    for lo, hi in zip(np.r_[0, brk], np.r_[brk, nk], strict=True):
        cids = index.pair_carriers(int(lz[lo]), int(z[lo]))
        sl = slice(lo, hi)
        if len(cids) == 0:
            continue
        b = band[sl][:, None]
        off = np.where(open_today[sl][:, None] == 1,
                       (hour >= index.car_cutoff[cids])[None, :].astype(np.int64), 1)
        days = prom[sl][:, None] - off
        p = index.car_cdf[cids[None, :], b, np.clip(days, 0, days_max)]
        p = np.where(days >= 0, p, 0.0)
        a = index.car_fee[cids[None, :], b] + pen[sl][:, None] * (1.0 - p)
        w_lo = np.array(WEIGHT_EDGES_G)[wcl[sl]][:, None]
        w_hi = np.array(WEIGHT_EDGES_G)[wcl[sl] + 1][:, None]
        ok = index.car_maxw[cids][None, :] > w_lo
        a = np.where(ok, a, np.inf)
        perkg = index.car_perkg[cids][None, :] / 1000.0
        mid = a + perkg * (w_lo + w_hi) / 2.0
        k = min(per_key, len(cids))
        sel = np.zeros_like(mid, dtype=bool)
        if len(cids) > k:
            np.put_along_axis(sel, np.argpartition(mid, k - 1, axis=1)[:, :k], True, axis=1)
        else:
            sel[:] = True
        # the backbone: the cheapest national carriers join every list
        nat = np.where(~sel & (index.car_tier[cids] == 0)[None, :], mid, np.inf)
        nb_k = min(backbone, len(cids))
        if nb_k:
            part = np.argpartition(nat, nb_k - 1, axis=1)[:, :nb_k] if len(cids) > nb_k \
                else np.broadcast_to(np.arange(nb_k), (hi - lo, nb_k))
            add = np.isfinite(np.take_along_axis(nat, part, axis=1))
            np.put_along_axis(sel, part, add | np.take_along_axis(sel, part, axis=1), axis=1)
        mask = ~sel
        if mask.any():
            rest[sl, 0] = np.where(mask, a + perkg * w_lo, np.inf).min(axis=1)
            # carriers above their weight limit at the heaviest weight: no chord
            hi_cost = np.where(index.car_maxw[cids][None, :] >= w_hi, a + perkg * w_hi, np.inf)
            all_ok = (np.where(mask, index.car_maxw[cids][None, :], np.inf) >= w_hi).all(axis=1)
            rest[sl, 1] = np.where(all_ok, np.where(mask, hi_cost, np.inf).min(axis=1), np.inf)
        # selected columns first (stable), at most per_key + backbone of them
        part = np.argsort(~sel, axis=1, kind="stable")[:, :min(width_k, len(cids))]
        ok_sel = np.take_along_axis(sel, part, axis=1)
        sel_a = np.where(ok_sel, np.take_along_axis(a, part, axis=1), np.inf)
        sel_c = cids[part]
        kk[sl, :part.shape[1]] = np.where(np.isfinite(sel_a), sel_c, -1)
        kw[sl, :part.shape[1]] = np.where(np.isfinite(sel_a), sel_a, 0.0)
    return kk, kw, rest


def zone_regions(index: NetworkIndex, regions: int) -> IntArray:
    """Zones grouped into `regions` by a deterministic k-means over their coordinates
    (initialised with the most populous zones), numbered by decreasing population."""
    nz = index.n_zones
    k = max(1, min(regions, nz))
    xy = np.column_stack((index.zone_lat, index.zone_lon * math.cos(math.radians(
        float(np.mean(index.zone_lat)) if nz else 0.0))))
    order = np.argsort(-index.zone_pop, kind="stable")
    centres = xy[order[:k]].copy()
    label = np.zeros(nz, dtype=np.int64)
    for _ in range(50):
        d = ((xy[:, None, :] - centres[None, :, :]) ** 2).sum(axis=2)
        new = np.argmin(d, axis=1)
        if _ and (new == label).all():
            break
        label = new
        for j in range(k):
            if (label == j).any():
                centres[j] = xy[label == j].mean(axis=0)
    pop = np.bincount(label, weights=index.zone_pop.astype(np.float64), minlength=k)
    rank = np.empty(k, dtype=np.int64)
    rank[np.argsort(-pop, kind="stable")] = np.arange(k)
    return rank[label]
