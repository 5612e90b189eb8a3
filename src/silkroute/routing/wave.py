"""Wave planning: a wave of orders over location × carrier options under shared capacities."""

from __future__ import annotations

import math
from collections.abc import Sequence
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
class OptionCatalog:
    """Every option of every order of a wave, kept compact for pricing: the options of an
    order are its incidences (a location stocking its SKU, with that location's handling)
    × the carriers of the incidence's key (every carrier serving both zones in the band,
    within its weight limit). A carrier's cost on a key is linear in the weight: the key's
    weight-free part `key_a` (fee + penalty × P(late)) plus the carrier's per-gram rate.

    Used two ways at carrier prices λ and location prices μ:
    - `rest_bound`: per order, a lower bound on the priced cost of every option, from the
      cheapest priced carrier of each key at the weight class's lightest and heaviest weight
      (the cheapest of lines in the weight is concave, so it lies above that chord);
    - `price_out`: per order whose bound is under its table's best, the cheapest priced
      option among the keys' cheapest carriers at either end of the class, costed exactly:
      a column to add to the table (column generation)."""

    key_ptr: IntArray  # (keys + 1,) segments of key_car / key_a
    key_car: I32Array  # carriers of each key
    key_a: FloatArray  # their weight-free cost on the key
    key_wlo: FloatArray  # (keys,) lightest and heaviest weight of the key's class (g)
    key_whi: FloatArray
    inc_ptr: IntArray  # (n + 1,) incidences of each order (sorted by order)
    inc_key: IntArray
    inc_loc: I32Array
    inc_handling: FloatArray
    weight: FloatArray  # (n,) parcel weight (g)
    car_b: FloatArray  # (carriers,) cost per gram
    car_maxw: FloatArray  # (carriers,) weight limit (g)
    inc_order: IntArray = field(init=False)  # order of each incidence
    key_straddle: npt.NDArray[np.bool_] = field(init=False)

    def __post_init__(self) -> None:
        key_seg = np.repeat(np.arange(len(self.key_wlo)), np.diff(self.key_ptr))
        self.inc_order = np.repeat(np.arange(len(self.weight)), np.diff(self.inc_ptr))
        maxw = self.car_maxw[self.key_car]
        # a carrier whose limit lies inside the class breaks the chord (see `_key_ends`)
        inside = (maxw > self.key_wlo[key_seg]) & (maxw < self.key_whi[key_seg])
        self.key_straddle = np.bincount(key_seg[inside],
                                        minlength=len(self.key_wlo)) > 0

    def subset(self, rows: IntArray) -> OptionCatalog:
        """The catalog of the orders `rows` (the keys are shared)."""
        cnt = np.diff(self.inc_ptr)[rows]
        start = np.repeat(self.inc_ptr[rows] - np.cumsum(cnt) + cnt, cnt)
        inc = start + np.arange(int(cnt.sum()))
        return OptionCatalog(self.key_ptr, self.key_car, self.key_a, self.key_wlo,
                             self.key_whi, np.r_[0, np.cumsum(cnt)].astype(np.int64),
                             self.inc_key[inc], self.inc_loc[inc], self.inc_handling[inc],
                             self.weight[rows], self.car_b, self.car_maxw)

    @property
    def size(self) -> int:
        """(key, carrier) pairs held."""
        return len(self.key_car)

    def _key_ends(self, lam: FloatArray) -> tuple[FloatArray, FloatArray, IntArray, IntArray]:
        """Per key: the cheapest priced carrier cost at the lightest and at the heaviest
        weight of its class, and where that carrier sits in `key_car` (-1: none). At the
        heaviest weight only carriers that can carry it count; a key with a carrier whose
        limit lies strictly inside its class has no heavy end (inf): its bound is then the
        light end alone, which every option of the key costs at least (costs grow with the
        weight)."""
        from silkroute.routing.wave_kernels import key_ends

        nk = len(self.key_wlo)
        e_lo, e_hi = np.empty(nk), np.empty(nk)
        p_lo, p_hi = np.empty(nk, dtype=np.int64), np.empty(nk, dtype=np.int64)
        key_ends(self.key_ptr, self.key_car, self.key_a, self.key_wlo, self.key_whi,
                 self.car_b, self.car_maxw, np.ascontiguousarray(lam, dtype=np.float64),
                 e_lo, e_hi, p_lo, p_hi)
        e_hi[self.key_straddle] = np.inf
        return e_lo, e_hi, p_lo, p_hi

    def _chords(self, lam: FloatArray, mu: FloatArray) -> tuple[FloatArray, Any]:
        e_lo, e_hi, a_lo, a_hi = self._key_ends(lam)
        k = self.inc_key
        order = self.inc_order
        w = self.weight[order]
        wlo, whi = self.key_wlo[k], self.key_whi[k]
        lo, hi = e_lo[k], e_hi[k]
        both = np.isfinite(hi)
        frac = (w - wlo) / np.maximum(whi - wlo, 1e-9)
        chord = np.where(both, lo + (np.where(both, hi, lo) - lo) * frac, lo)
        value = chord + self.inc_handling + mu[self.inc_loc]
        return value, (order, w, a_lo[k], a_hi[k])

    def rest_bound(self, lam: FloatArray, mu: FloatArray) -> FloatArray:
        """Per order: a lower bound on the priced cost (cost + λ + μ) of every option."""
        value, _ = self._chords(lam, mu)
        return _seg_min(value, self.inc_ptr)

    def price_out(self, lam: FloatArray, mu: FloatArray, best: FloatArray, tol: float
                  ) -> tuple[FloatArray, list[tuple[IntArray, FloatArray, I32Array, I32Array]]]:
        """Per order, the bound (as `rest_bound`), and the options outside the table that are
        cheaper at these prices than the order's `best` by more than `tol`: for each
        incidence whose bound is under `best`, the better (priced, at the order's weight) of
        its key's cheapest carriers at the two ends of the weight class. Returned as columns
        to add: the first holds each order's cheapest such option, the second its next one
        from another incidence, and so on; each column is (rows, real cost, carrier,
        location)."""
        value, (order, w, a_lo, a_hi) = self._chords(lam, mu)
        bound = _seg_min(value, self.inc_ptr)
        hit = np.flatnonzero(value < best[order] - tol)
        price = np.full((len(hit), 2), np.inf)
        cost = np.zeros((len(hit), 2))
        car = np.zeros((len(hit), 2), dtype=np.int64)
        for j, pos in enumerate((a_lo, a_hi)):
            p = pos[hit]
            c = self.key_car[np.maximum(p, 0)].astype(np.int64)
            ok = (p >= 0) & (self.car_maxw[c] >= w[hit])
            cost[:, j] = self.key_a[np.maximum(p, 0)] + self.car_b[c] * w[hit] \
                + self.inc_handling[hit]
            price[:, j] = np.where(ok, cost[:, j] + lam[c] + mu[self.inc_loc[hit]], np.inf)
            car[:, j] = c
        pick = np.argmin(price, axis=1)
        r = np.arange(len(hit))
        price, cost, car = price[r, pick], cost[r, pick], car[r, pick]
        rows = order[hit]
        keep = price < best[rows] - tol
        hit, rows, price, cost, car = hit[keep], rows[keep], price[keep], cost[keep], car[keep]
        # group by order, cheapest first: column j takes each order's j-th option
        o = np.lexsort((price, rows))
        rows, cost, car, loc = rows[o], cost[o], car[o], self.inc_loc[hit[o]]
        first = np.r_[0, np.flatnonzero(np.diff(rows)) + 1] if len(rows) else np.zeros(0, int)
        rank = np.arange(len(rows)) - np.repeat(first, np.diff(np.r_[first, len(rows)]))
        columns = []
        for j in range(int(rank.max()) + 1 if len(rank) else 0):
            m = rank == j
            columns.append((rows[m], cost[m], car[m].astype(np.int32),
                            loc[m].astype(np.int32)))
        return bound, columns


def _seg_min(values: FloatArray, ptr: IntArray) -> FloatArray:
    """Per segment [ptr[i], ptr[i+1]) of `values`: the minimum (inf when empty)."""
    out = np.full(len(ptr) - 1, np.inf)
    full = ptr[1:] > ptr[:-1]
    if full.any():
        out[full] = np.minimum.reduceat(values, ptr[:-1][full])
    return out


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
    car_cap: npt.NDArray[Any]  # whole parcels (int); fractions in a `subset` (float)
    loc_cap: npt.NDArray[Any]
    region: IntArray  # (n,) region of each order (0..regions-1)
    regions: int = 1
    info: dict[str, Any] = field(default_factory=dict)
    #: every option, for priced bounds and column generation (None: the table is all)
    catalog: OptionCatalog | None = None

    @property
    def n(self) -> int:
        return int(self.cost.shape[0])

    @property
    def width(self) -> int:
        return int(self.cost.shape[1])

    def subset(self, rows: IntArray) -> WaveProblem:
        """The orders `rows` alone, with capacities scaled by their share of the orders (as
        fractions: a model of the whole wave for finding prices, not a plan)."""
        share = len(rows) / max(1, self.n)
        catalog = None if self.catalog is None else self.catalog.subset(rows)
        return WaveProblem(self.cost[rows], self.car[rows], self.loc[rows], self.rest_lb[rows],
                           self.car_cap * share, self.loc_cap * share, self.region[rows],
                           self.regions, self.info, catalog)

    def with_columns(self, columns: Sequence[tuple[IntArray, FloatArray, I32Array, I32Array]]
                     ) -> WaveProblem:
        """The problem with more option columns: each (rows, cost, car, loc) gives those rows
        an option, the other orders none (inf) in that column. Everything else is shared."""
        n, k = self.n, len(columns)
        new_cost = np.full((n, k), np.inf)
        new_car = np.zeros((n, k), dtype=self.car.dtype)
        new_loc = np.zeros((n, k), dtype=self.loc.dtype)
        for j, (rows, cost, car, loc) in enumerate(columns):
            new_cost[rows, j] = cost
            new_car[rows, j] = car
            new_loc[rows, j] = loc
        return WaveProblem(np.hstack((self.cost, new_cost)), np.hstack((self.car, new_car)),
                           np.hstack((self.loc, new_loc)), self.rest_lb, self.car_cap,
                           self.loc_cap, self.region, self.regions, self.info, self.catalog)

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
    kk, kw, key_rest, (key_ptr, key_car, key_a) = _key_tables(index, model, ukeys, hour,
                                                               per_key, backbone)
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
    edges_g = np.array(WEIGHT_EDGES_G)
    kwcl = ukeys % nw
    catalog = OptionCatalog(
        key_ptr, key_car, key_a, edges_g[kwcl], edges_g[kwcl + 1],
        # incidences are already grouped by order (inc_order is sorted)
        np.r_[0, np.cumsum(cnt)].astype(np.int64), inc_key.astype(np.int64),
        inc_loc.astype(np.int32), index.loc_handling[inc_loc],
        wave.weight_g.astype(np.float64), index.car_perkg / 1000.0,
        index.car_maxw.astype(np.float64))
    info["catalog_pairs"] = catalog.size
    return WaveProblem(cost, car, loc, rest, car_cap, loc_cap,
                       zone_regions(index, regions)[wave.zone], regions, info, catalog)


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
                per_key: int, backbone: int
                ) -> tuple[IntArray, FloatArray, FloatArray,
                           tuple[IntArray, I32Array, FloatArray]]:
    """Per key: the `per_key` cheapest carriers (positions, -1 padded) at the class's middle
    weight, their weight-free cost (fee + penalty × P(late)), and a lower bound on every other
    carrier's cost at the class's lightest and heaviest weight (the cheapest of them is a
    concave function of the weight, so it lies above the chord between those two values);
    and the catalog's per-key arrays (segment pointers, carriers, weight-free costs) of every
    carrier of the key (see `OptionCatalog`)."""
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
    cat_car: list[I32Array] = []
    cat_a: list[FloatArray] = []
    cat_len = np.zeros(nk, dtype=np.int64)
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
        # the catalog: every carrier of the key that can carry some weight of the class
        rr, cc = np.nonzero((index.car_maxw[cids][None, :] >= w_lo) & np.isfinite(a))
        cat_car.append(cids[cc].astype(np.int32))
        cat_a.append(a[rr, cc])
        cat_len[lo:hi] = np.bincount(rr, minlength=hi - lo)
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
    catalog = (np.r_[0, np.cumsum(cat_len)].astype(np.int64),
               np.concatenate(cat_car) if cat_car else np.zeros(0, dtype=np.int32),
               np.concatenate(cat_a) if cat_a else np.zeros(0))
    return kk, kw, rest, catalog


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
