"""NetworkIndex: a network snapshot compiled into read-only numpy arrays for the router."""

from __future__ import annotations

import bisect
import resource
import sys
import time
from array import array
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from silkroute.domain.carriers import (
    BAND_LIMITS_KM,
    N_BANDS,
    TRANSIT_DAYS,
    CarrierTier,
    NetworkSnapshot,
)
from silkroute.domain.errors import ValidationError
from silkroute.domain.network import LocationKind

TIERS: tuple[CarrierTier, ...] = tuple(CarrierTier)
KINDS: tuple[LocationKind, ...] = tuple(LocationKind)
# A route: the carriers serving an origin zone, a destination zone and a distance band that
# no other carrier of the route beats on every count (fee, fee per kg, P(on time) on every
# day, cut-off, max weight), by fee.
Route = tuple[int, ...]
# What the router's scan reads of one carrier in one (penalty, promise) scenario and
# distance band: (carrier, fee + penalty x P(late) when picked up today, the same when
# picked up tomorrow, cut-off hour, fee per gram, max weight g, 1 / daily capacity). One
# tuple per carrier, shared by every view of the scenario and band.
Rec = tuple[int, float, float, float, float, float, float]
# A route seen by one (penalty, promise) scenario: its carriers' records by their cost for
# a parcel of W_REF handed over as early as possible, and per position the least fee +
# penalty x P(late) and the least fee per gram of the carriers from that position on (a
# lower bound of all of them, for any weight and hour).
View = tuple[tuple[Rec, ...], Any, Any]
# A carrier of a route seen with shadow prices (`NetworkIndex.priced_view`): its `Rec`, then
# its shadow price per parcel and its rank in the route's `View` (the order a scan without
# prices visits the route in, which breaks ties between carriers of equal cost).
PRec = tuple[int, float, float, float, float, float, float, float, int]
# A route seen with shadow prices at one hour class: its carriers' `PRec`s by their sort key
# (fee + penalty x P(late) + price of a parcel of W_REF handed over at that hour), per
# position the least fee + penalty x P(late) + price and the least fee per gram from there
# on (at the first position, those of `View`, without prices), the sort keys, the least
# cost with the price of a parcel of W_MID and of W_HEAVY from there on, and (when these
# hold only the first VIEW_HEAD positions) the `ViewTail` that makes the whole view.
PricedView = tuple[tuple[PRec, ...], Any, Any, Any, Any, Any, "ViewTail | None"]
# Positions of a priced view made at once: most scans stop within them, and a view is used
# by a few orders between re-plans, so the rest is made only for a scan that reaches it.
VIEW_HEAD = 16
W_REF = 1_000.0
# Heavier reference weights (g) of a priced view's bounds: a scan bounds a parcel's cost by
# interpolating the least costs at the two reference weights around its weight.
W_MID = 3_000.0
W_HEAVY = 8_000.0
EAGER_ROUTES = 60_000  # build every route with the index when there are at most this many
_DOM_BLOCK = 1 << 18  # pairs compared at once by `_dominated`
# Probe scenarios of the dominance filter: per row, weight (kg) and penalty x P(late) on
# days 0, 1, 2 (same-day, next-day and two-day promises; standard and member penalties).
_PROBE_W = np.array([[w] for w in (0.0, 1.0, 5.0, 20.0) for _ in range(6)])
_PROBE_P = np.array([[pen if d == j else 0.0 for j in range(3)]
                     for _ in range(4) for pen in (2_500.0, 5_000.0) for d in range(3)])


def _view_lists(prec: np.ndarray, idx: np.ndarray, suf: np.ndarray,
                tail: ViewTail | None) -> PricedView:
    """A priced view's lists for the carriers `idx` (sorted) and their suffix minima `suf`
    (plain lists: a priced view lives until the next re-plan, and lists are quicker to
    build and to scan than arrays)."""
    asuf, bsuf, keys, mid, heavy, a_view = suf.tolist()
    asuf[0] = min(a_view[0], asuf[0])  # `view`'s (prices >= 0)
    return tuple(prec[idx].tolist()), asuf, bsuf, keys, mid, heavy, tail


class ViewTail:
    """The rest of a priced view made of its first VIEW_HEAD positions: `full()` makes (once)
    the whole view, for a scan that runs past them."""

    __slots__ = ("_args", "_full")

    def __init__(self, prec: np.ndarray, idx: np.ndarray, suf: np.ndarray) -> None:
        self._args: tuple[np.ndarray, np.ndarray, np.ndarray] | None = (prec, idx, suf)
        self._full: PricedView | None = None

    @property
    def made(self) -> bool:
        """Whether a scan has needed the whole view."""
        return self._full is not None

    def full(self) -> PricedView:
        got = self._full
        if got is None:
            assert self._args is not None
            got = self._full = _view_lists(*self._args, None)
            self._args = None
        return got


def _dominated(by: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Rows of `x` that some row of `by` dominates (<= everywhere, < somewhere).

    Compared column by column on (rows of `by`) x (rows of `x`) blocks: a reduction over a
    short last axis is several times slower in numpy than a few whole-block operations."""
    nb, nx = len(by), len(x)
    out = np.zeros(nx, dtype=bool)
    if nb == 0 or nx == 0:
        return out
    by_t = np.ascontiguousarray(by.T)
    step = max(1, _DOM_BLOCK // nb)  # bounds the memory of the comparison
    for lo in range(0, nx, step):
        x_t = np.ascontiguousarray(x[lo:lo + step].T)
        a, b = by_t[0][:, None], x_t[0][None, :]
        le = a <= b
        lt = a < b
        for j in range(1, len(by_t)):
            a, b = by_t[j][:, None], x_t[j][None, :]
            le &= a <= b
            lt |= a < b
        le &= lt
        out[lo:lo + step] = le.any(axis=0)
    return out


def _maximal(x: np.ndarray) -> np.ndarray:
    """Mask of the rows of `x` that no other row dominates."""
    keep = np.ones(len(x), dtype=bool)
    if len(x) > 64:
        # first drop what the cheapest rows of a few typical scenarios dominate
        probes = np.unique(np.argmin(_PROBE_W @ x[:, 1:2].T + x[:, 0][None, :]
                                     + _PROBE_P @ (1.0 + x[:, 2:5]).T, axis=1))
        keep = ~_dominated(x[probes], x)
        keep[probes] = True
    idx = np.flatnonzero(keep)
    keep[idx[_dominated(x[idx], x[idx])]] = False
    return keep


class Hot:
    """Plain-Python copies of what the router reads per decision (scalar reads of lists and
    bytes are several times faster than of numpy arrays), built with the index."""

    __slots__ = ("loc_zone", "loc_handling", "loc_closes", "loc_cap_inv", "loc_ids",
                 "car_ids", "car_cap_inv", "band_rows", "sku_loc", "sku_ptr", "sku_entry",
                 "next_day", "car_fee", "car_perkg", "car_cdf",
                 "car_cutoff", "zone_ptr", "car_b", "car_maxw", "car_ints", "zone_min_fee",
                 "loc_capacity")

    def __init__(self, ix: NetworkIndex) -> None:
        self.loc_zone: list[int] = ix.loc_zone.tolist()
        self.loc_handling: list[float] = ix.loc_handling.tolist()
        self.loc_closes: list[float] = ix.loc_closes.tolist()
        self.loc_cap_inv: list[float] = (1.0 / np.maximum(ix.loc_capacity, 1)).tolist()
        self.loc_ids: list[int] = ix.loc_ids.tolist()
        self.car_ids: list[int] = ix.car_ids.tolist()
        self.car_cap_inv: list[float] = (1.0 / np.maximum(ix.car_capacity, 1)).tolist()
        self.band_rows: list[bytes] = [bytes(r) for r in ix.loc_band.astype(np.uint8)]
        self.sku_loc: list[int] = ix.sku_loc.tolist()
        self.sku_ptr: list[int] = ix.sku_ptr.tolist()
        # per SKU position: location position -> stock entry
        self.sku_entry: list[dict[int, int]] = [
            {lp: lo + j for j, lp in enumerate(self.sku_loc[lo:hi])}
            for lo, hi in zip(self.sku_ptr[:-1], self.sku_ptr[1:], strict=True)]
        self.next_day: list[bool] = ix.next_day_zone.tolist()
        self.car_fee: list[list[float]] = ix.car_fee.tolist()
        self.car_perkg: list[float] = ix.car_perkg.tolist()
        self.car_cdf: list[list[list[float]]] = ix.car_cdf.tolist()
        self.car_cutoff: list[float] = ix.car_cutoff.tolist()
        self.car_b: list[float] = (ix.car_perkg / 1000.0).tolist()  # fee per gram
        self.car_maxw: list[float] = ix.car_maxw.tolist()
        self.car_ints: list[int] = list(range(ix.n_carriers))  # shared int objects
        self.zone_min_fee: list[float] = ix.zone_min_fee.tolist()
        self.loc_capacity: list[int] = ix.loc_capacity.tolist()
        self.zone_ptr: list[int] = ix.zone_ptr.tolist()


def _km(lat1: np.ndarray, lon1: np.ndarray, lat2: np.ndarray, lon2: np.ndarray) -> np.ndarray:
    p1, p2 = np.radians(lat1)[:, None], np.radians(lat2)[None, :]
    dl = np.radians(lon2)[None, :] - np.radians(lon1)[:, None]
    a = np.sin((p2 - p1) / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    return 2 * 6371.0088 * np.arcsin(np.minimum(1.0, np.sqrt(a)))


def rss_mb() -> float:
    """Peak resident set size of this process in MB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


@dataclass
class NetworkIndex:
    """Positions (0..n-1) index every array; `*_ids` map positions back to database ids.

    Carriers are stored sorted by base fee, so every per-zone carrier list is pre-sorted
    cheapest first. Arrays are never written after `build`; the pair cache only grows.
    """

    country: str
    currency: str
    # zones
    zone_ids: np.ndarray
    zone_lat: np.ndarray
    zone_lon: np.ndarray
    zone_pop: np.ndarray
    zone_pos: dict[int, int]
    # locations
    loc_ids: np.ndarray
    loc_pos: dict[int, int]
    loc_zone: np.ndarray
    loc_lat: np.ndarray
    loc_lon: np.ndarray
    loc_capacity: np.ndarray
    loc_handling: np.ndarray
    loc_opens: np.ndarray
    loc_closes: np.ndarray
    loc_kind: np.ndarray
    loc_owner: np.ndarray  # seller id, -1 when not a seller's
    loc_priority: np.ndarray
    loc_pickup: np.ndarray
    loc_dist: np.ndarray  # (locations, zones) km, float32
    loc_band: np.ndarray  # (locations, zones) int8
    # carriers
    car_ids: np.ndarray
    car_pos: dict[int, int]
    car_tier: np.ndarray
    car_fee: np.ndarray  # (carriers, bands): base + band surcharge; inf where not offered
    car_perkg: np.ndarray
    car_cdf: np.ndarray  # (carriers, bands, days)
    car_cutoff: np.ndarray
    car_capacity: np.ndarray
    car_ontime: np.ndarray
    car_maxw: np.ndarray
    coverage: np.ndarray  # (zones, carriers) bool
    zone_ptr: np.ndarray  # CSR: carriers serving each zone, cheapest first
    zone_car: np.ndarray
    zone_min_fee: np.ndarray
    next_day_zone: np.ndarray  # bool per zone: some carrier can keep a next-day promise
    zone_best_cdf: np.ndarray  # (zones, days): best P(within d days) of a carrier serving it
    zone_max_cutoff: np.ndarray  # latest cut-off among carriers serving the zone
    # SKUs and stock positions (CSR by SKU)
    sku_ids: np.ndarray
    sku_pos: dict[int, int]
    sku_seller: np.ndarray
    sku_weight: np.ndarray
    sku_ptr: np.ndarray
    sku_loc: np.ndarray
    stock0: np.ndarray
    build_seconds: float = 0.0
    _pairs: dict[int, np.ndarray] = field(default_factory=dict, repr=False)
    _lists: dict[str, list[int]] = field(default_factory=dict, repr=False)
    _top: dict[tuple[int, int, int, float, int, int, int], tuple[np.ndarray, np.ndarray]] = field(
        default_factory=dict, repr=False)
    _cut: list[float] = field(default_factory=list, repr=False)
    _hot: list[Hot] = field(default_factory=list, repr=False)
    _routes: dict[int, Route] = field(default_factory=dict, repr=False)
    _scen: dict[tuple[float, int], tuple[list[list[float]], list[list[float]]]] = field(
        default_factory=dict, repr=False)
    _scen_np: dict[tuple[float, int], tuple[np.ndarray, np.ndarray]] = field(
        default_factory=dict, repr=False)
    # (penalty, promise) -> per band, per carrier: its `Rec`
    _recs: dict[tuple[float, int], list[list[Rec]]] = field(default_factory=dict, repr=False)
    # (penalty, promise) -> route key x 2 + closed -> (the route, its view)
    _views: dict[tuple[float, int], dict[int, tuple[Route, View]]] = field(
        default_factory=dict, repr=False)
    # (penalty, promise, band, closed) -> per carrier, its rank in `view`'s order
    _ranks: dict[tuple[float, int, int, bool], np.ndarray] = field(
        default_factory=dict, repr=False)
    # route key -> (carriers serving it with a fee, their fees, their dominance columns)
    _dom: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = field(
        default_factory=dict, repr=False)

    # ------------------------------------------------------------------------------
    @property
    def n_zones(self) -> int:
        return len(self.zone_ids)

    @property
    def n_locations(self) -> int:
        return len(self.loc_ids)

    @property
    def n_carriers(self) -> int:
        return len(self.car_ids)

    def pair_carriers(self, zone_from: int, zone_to: int) -> np.ndarray:
        """Positions of the carriers serving both zones, cheapest base fee first (cached)."""
        key = zone_from * self.n_zones + zone_to
        hit = self._pairs.get(key)
        if hit is None:
            lo, hi = self.zone_ptr[zone_to], self.zone_ptr[zone_to + 1]
            cands = self.zone_car[lo:hi]
            hit = cands[self.coverage[zone_from, cands]]
            self._pairs[key] = hit
        return hit

    def top_carriers(self, zone_from: int, zone_to: int, band: int, penalty: float,
                     promise: int, hour: float, weight_g: float, car_left: np.ndarray,
                     k: int, refresh: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Up to `k` carriers serving both zones with capacity left, cheapest first by
        fee + penalty x P(late) for this band, promise, hour class and weight class.

        Returns carrier positions and a block of their columns for this scenario: fee in the
        band, per kg, cut-off hour, P(on time) if picked up today, P(on time) if picked up
        tomorrow, max weight. Cached; the caller asks for a `refresh` when too many of a
        cached list have run out of capacity."""
        hc = bisect.bisect_right(self._cutoff_levels(), hour)
        wc = 0 if weight_g < 1_000 else 1 if weight_g < 4_000 else 2 if weight_g < 10_000 else 3
        key = (zone_from, zone_to, band, penalty, promise, hc, wc)
        hit = self._top.get(key)
        if hit is not None and not refresh:
            return hit
        cids = self.pair_carriers(zone_from, zone_to)
        cids = cids[car_left[cids] > 0]
        days = promise - (hour >= self.car_cutoff[cids]).astype(np.intp)
        p = self.car_cdf[cids, band, np.minimum(np.maximum(days, 0), self.car_cdf.shape[2] - 1)]
        if promise < 1:
            p = np.where(days >= 0, p, 0.0)
        lb = (self.car_fee[cids, band] + self.car_perkg[cids] * (weight_g / 1000.0)
              + penalty * (1.0 - p))
        lb = np.where(self.car_maxw[cids] >= weight_g, lb, np.inf)
        if len(lb) > k:
            part = np.argpartition(lb, k - 1)[:k]
            order = part[np.argsort(lb[part], kind="stable")]
        else:
            order = np.argsort(lb, kind="stable")
        order = order[np.isfinite(lb[order])]
        top = cids[order]
        dmax = self.car_cdf.shape[2] - 1
        p_today = self.car_cdf[top, band, min(max(promise, 0), dmax)]
        p_late = (self.car_cdf[top, band, min(promise - 1, dmax)] if promise >= 1
                  else np.zeros(len(top)))
        if promise < 0:
            p_today = np.zeros(len(top))
        block = np.column_stack((self.car_fee[top, band], self.car_perkg[top],
                                 self.car_cutoff[top], p_today, p_late, self.car_maxw[top]))
        hit = (top, block)
        self._top[key] = hit
        return hit

    def hot(self) -> Hot:
        """The plain-Python copies of the hot arrays (built with the index)."""
        got = self._hot
        if not got:
            got.append(Hot(self))
        return got[0]

    def scenario(self, penalty: float, promise: int
                 ) -> tuple[list[list[float]], list[list[float]]]:
        """Per band, per carrier: fee + penalty x P(late) when picked up today, and when
        picked up tomorrow, for one (penalty, promise) scenario (cached)."""
        key = (penalty, promise)
        got = self._scen.get(key)
        if got is None:
            dmax = self.car_cdf.shape[2] - 1
            today, tomorrow = [], []
            for band in range(self.car_fee.shape[1]):
                cdf = self.car_cdf[:, band]
                p_today = cdf[:, min(promise, dmax)] if promise >= 0 else np.zeros(len(cdf))
                p_tom = cdf[:, min(promise - 1, dmax)] if promise >= 1 else np.zeros(len(cdf))
                fee = self.car_fee[:, band]
                today.append((fee + penalty * (1.0 - p_today)).tolist())
                tomorrow.append((fee + penalty * (1.0 - p_tom)).tolist())
            got = self._scen[key] = (today, tomorrow)
        return got

    def records(self, penalty: float, promise: int) -> list[list[Rec]]:
        """Per band, per carrier: its `Rec` in the (penalty, promise) scenario (cached)."""
        key = (penalty, promise)
        got = self._recs.get(key)
        if got is None:
            hot = self.hot()
            today, tomorrow = self.scenario(penalty, promise)
            got = self._recs[key] = [
                list(zip(hot.car_ints, td, tm, hot.car_cutoff, hot.car_b, hot.car_maxw,
                         hot.car_cap_inv, strict=True))
                for td, tm in zip(today, tomorrow, strict=True)]
        return got

    def view(self, route: Route, band: int, penalty: float, promise: int, closed: bool
             ) -> View:
        """See `View`; `closed`: the location has closed (every carrier picks up tomorrow)."""
        cars = route
        if not cars:
            return (), array("d"), array("d")
        recs = self.records(penalty, promise)[band]
        if len(cars) <= 64:
            # plain Python: the same floats and order as below, without numpy's overhead
            row = (self.scenario(penalty, promise)[1 if closed else 0])[band]
            per_g = self.hot().car_b
            srt = sorted(cars, key=lambda c: row[c] + per_g[c] * W_REF)
            n = len(srt)
            av = [row[c] for c in srt]
            bv = [per_g[c] for c in srt]
            for j in range(n - 2, -1, -1):
                if av[j + 1] < av[j]:
                    av[j] = av[j + 1]
                if bv[j + 1] < bv[j]:
                    bv[j] = bv[j + 1]
            return tuple(map(recs.__getitem__, srt)), array("d", av), array("d", bv)
        today, tomorrow = self.scenario_arrays(penalty, promise)
        idx = np.fromiter(cars, dtype=np.int64, count=len(cars))
        a = (tomorrow if closed else today)[band][idx]
        b = self.car_perkg[idx] / 1000.0
        order = np.argsort(a + b * W_REF, kind="stable")
        a, b = a[order], b[order]
        asuf = np.minimum.accumulate(a[::-1])[::-1]
        bsuf = np.minimum.accumulate(b[::-1])[::-1]
        return (tuple(map(recs.__getitem__, idx[order].tolist())),
                array("d", asuf.tolist()), array("d", bsuf.tolist()))

    def car_ranks(self, penalty: float, promise: int, band: int, closed: bool) -> np.ndarray:
        """Per carrier, its rank in the order `view` puts any route's carriers in for this
        scenario, band and closing: by fee + penalty x P(late) for a parcel of W_REF (the
        same floats), then by fee in the band and position (the route's order, in which
        that sort is stable). Cached; prices do not enter it."""
        key = (penalty, promise, band, closed)
        got = self._ranks.get(key)
        if got is None:
            today, tomorrow = self.scenario_arrays(penalty, promise)
            n = self.n_carriers
            w = (tomorrow if closed else today)[band] + self.car_perkg / 1000.0 * W_REF
            order = np.lexsort((np.arange(n), self.car_fee[:, band], w))
            got = self._ranks[key] = np.empty(n, dtype=np.int64)
            got[order] = np.arange(n)
        return got

    def priced_records(self, penalty: float, promise: int, band: int, closed: bool,
                       price: np.ndarray, cache: dict[Any, Any]) -> np.ndarray:
        """Per carrier (an object array), its `PRec` with the shadow prices `price` for this
        scenario, band and closing; cached in `cache`, which belongs to the prices (see
        `OpportunityCosts.cache`)."""
        key = ("records", penalty, promise, band, closed)
        got = cache.get(key)
        if got is None:
            recs = self.records(penalty, promise)[band]
            rank = self.car_ranks(penalty, promise, band, closed)
            got = cache[key] = np.fromiter(
                (r + (p, k) for r, p, k in zip(recs, price.tolist(), rank.tolist(),
                                                strict=True)),
                dtype=object, count=len(recs))
        return got

    def warm_priced(self, scenarios: list[tuple[float, int]], price: np.ndarray,
                    cache: dict[Any, Any]) -> None:
        """Build `priced_records` for each (penalty, promise) scenario, band and closing,
        and `priced_view`'s columns for each hour class too, ahead (when the prices are
        set, off the decision path): a few milliseconds for the records and about a tenth
        of a second for the columns each time the prices change, which would otherwise fall
        on a few hundred decisions (a column set sorts every carrier twice)."""
        levels = self._cutoff_levels()
        # an hour in each class: before the first cut-off, at each cut-off; and closed
        hours = [(levels[0] - 1.0 if levels else 0.0, False)] + \
            [(h, False) for h in levels] + [(float("inf"), True)]
        for pen, promise in dict.fromkeys(scenarios):
            for band in range(self.car_fee.shape[1]):
                for closed in (False, True):
                    self.priced_records(pen, promise, band, closed, price, cache)
                for hour, closed in hours:
                    self.priced_columns(pen, promise, band, closed, hour, price, cache)

    def priced_view(self, route: Route, band: int, penalty: float, promise: int,
                    closed: bool, hour: float, price: np.ndarray, cache: dict[Any, Any],
                    idx: np.ndarray, heavy: bool = False) -> PricedView:
        """The route as `view` sees it, with the carriers' shadow prices `price` (per parcel,
        by carrier position) folded in, for a router that charges them, for parcels handed
        over at `hour` (inf once the location has closed).

        A price can make a carrier that is cheap without it dear, so the `view` bounds (which
        ignore prices) would let a scan run through most of the route; so do the carriers
        whose cut-off has passed at `hour` (they pick up tomorrow: more lateness than `view`
        bounds them by), most of them in the evening peak. Here the carriers are sorted by
        their cost with the price for a parcel of W_REF handed over at `hour`, with per
        position the suffix minima of fee + penalty x P(late) + price at that hour, of fee
        per gram and of the cost with the price at W_MID and W_HEAVY, so a scan can bound
        what is left from a position on by the key there and those minima (see
        `_Pricer._best_priced`) and stop after the few carriers that can still win. With
        `heavy` the carriers are sorted by their cost with the price at W_HEAVY instead (a
        view for parcels above W_MID; every list is the suffix minima in that order). Only
        the first VIEW_HEAD positions are made into lists at once (most scans stop there;
        a view serves a few orders between re-plans): `ViewTail` makes the rest when a
        scan needs it. The view only depends on the hour through which of the route's
        carriers' cut-offs have passed (the router keys views by that class). Each record
        carries the carrier's rank in `view`'s order (`car_ranks`), so a scan can break ties
        between carriers of equal cost exactly as the scan of `view` would (the earlier one
        wins). The first position's minima are `view`'s (the least fee and fee per gram,
        without prices or passed cut-offs: a lower bound, since prices are >= 0), so the
        location bounds read from them (`_Pricer.ship_bound`, `_best_single`) are the same
        as without the fold. Prices are constant between re-plans: the router caches these
        views with the prices, in `cache` (`OpportunityCosts.cache`). `idx` is the route's
        carriers as an array (the router keeps one per route)."""
        if not route:
            return (), [], [], [], [], [], None
        prec = self.priced_records(penalty, promise, band, closed, price, cache)
        got = self.priced_columns(penalty, promise, band, closed, hour, price, cache)
        table = got[2]
        idx = idx[got[heavy][idx].argsort()]
        # suffix minima of every column at once (the keys are sorted: theirs are the keys)
        suf = np.minimum.accumulate(table[:, idx[::-1]], axis=1)[:, ::-1]
        tail = None
        if len(idx) > VIEW_HEAD:
            tail = ViewTail(prec, idx, suf)
            idx, suf = idx[:VIEW_HEAD], suf[:, :VIEW_HEAD]
        return _view_lists(prec, idx, suf, tail)

    def priced_columns(self, penalty: float, promise: int, band: int, closed: bool,
                       hour: float, price: np.ndarray, cache: dict[Any, Any]
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """`_priced_columns` for the hour class of `hour` (every hour once closed), cached
        in `cache` with the prices."""
        levels = self._cutoff_levels()
        hc = len(levels) + 1 if closed else bisect.bisect_right(levels, hour)
        key = ("columns", penalty, promise, band, hc)
        got = cache.get(key)
        if got is None:
            got = cache[key] = self._priced_columns(penalty, promise, band, closed, hour,
                                                    price)
        return got

    def _priced_columns(self, penalty: float, promise: int, band: int, closed: bool,
                        hour: float, price: np.ndarray
                        ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """What `priced_view` reads per carrier for one scenario, band and hour class: its
        position in the order of all carriers by (sort key, rank in `view`), the same by
        (cost at W_HEAVY, rank) for the heavy view, and a table with a column per carrier:
        fee + penalty x P(late) + price as handed over at `hour`, fee per gram, the sort key
        (that + fee per gram x W_REF), the cost with the price of a parcel of W_MID and of
        W_HEAVY, and fee + penalty x P(late) as `view` has it."""
        today, tomorrow = self.scenario_arrays(penalty, promise)
        a_view = (tomorrow if closed else today)[band]
        late = self.car_cutoff <= hour  # picked up tomorrow (all once closed)
        ap = np.where(late, tomorrow[band], a_view) + price
        b = self.car_perkg / 1000.0
        k = ap + b * W_REF
        heavy = ap + b * W_HEAVY
        ranks = self.car_ranks(penalty, promise, band, closed)
        pos = np.empty((2, len(k)), dtype=np.int64)
        for row, key in enumerate((k, heavy)):
            pos[row, np.lexsort((ranks, key))] = np.arange(len(k))
        return pos[0], pos[1], np.stack((ap, b, k, ap + b * W_MID, heavy, a_view))

    def scenario_arrays(self, penalty: float, promise: int) -> tuple[np.ndarray, np.ndarray]:
        """`scenario` as (bands, carriers) arrays."""
        key = (penalty, promise)
        got = self._scen_np.get(key)
        if got is None:
            today, tomorrow = self.scenario(penalty, promise)
            got = self._scen_np[key] = (np.array(today), np.array(tomorrow))
        return got

    def route(self, zone_from: int, zone_to: int, band: int) -> Route:
        """The route's non-dominated carriers and scan bounds (built with the index)."""
        key = (zone_from * self.n_zones + zone_to) * 4 + band
        got = self._routes.get(key)
        if got is None:
            got = self._routes[key] = self.build_route(zone_from, zone_to, band)
        return got

    def build_route(self, zone_from: int, zone_to: int, band: int,
                    car_left: np.ndarray | None = None, dominance: bool = True) -> Route:
        """See `Route`; carriers without capacity in `car_left` (if given) are left out, and
        with `dominance=False` dominated carriers are kept too."""
        cids = self.pair_carriers(zone_from, zone_to)
        if car_left is not None:
            cids = cids[car_left[cids] > 0]
        fee = self.car_fee[cids, band]
        ok = np.isfinite(fee)
        if not ok.all():
            cids, fee = cids[ok], fee[ok]
        if len(cids) > 1 and dominance:
            x = np.column_stack((fee, self.car_perkg[cids], -self.car_cdf[cids, band],
                                 -self.car_cutoff[cids], -self.car_maxw[cids]))
            # First drop what the cheapest carriers of a few typical scenarios dominate,
            # then compare the rest pairwise.
            if len(cids) > 64:
                probes = np.unique(np.argmin(_PROBE_W @ x[:, 1:2].T + x[:, 0][None, :]
                                             + _PROBE_P @ (1.0 + x[:, 2:5]).T, axis=1))
                keep = ~_dominated(x[probes], x)
                keep[probes] = True
                cids, fee, x = cids[keep], fee[keep], x[keep]
            keep = ~_dominated(x, x)
            cids, fee = cids[keep], fee[keep]
        cids = cids[np.argsort(fee, kind="stable")]
        return tuple(map(self.hot().car_ints.__getitem__, cids.tolist()))

    def rebuild_route(self, zone_from: int, zone_to: int, band: int, car_left: np.ndarray,
                      prev: tuple[np.ndarray, Route] | None) -> tuple[Route, np.ndarray]:
        """`build_route(zone_from, zone_to, band, car_left)`, worked out from `prev` (the
        carriers with capacity then, as a mask over the route's carriers with a fee, and the
        route built for them) when no carrier has regained capacity since: a carrier not
        dominated now was in the route before or is dominated only by carriers of that route
        that have run out (dominance is transitive), so only those are compared. Returns the
        route and the mask of the carriers with capacity now."""
        key = (zone_from * self.n_zones + zone_to) * 4 + band
        got = self._dom.get(key)
        if got is None:
            cids = self.pair_carriers(zone_from, zone_to)
            fee = self.car_fee[cids, band]
            ok = np.isfinite(fee)
            cids, fee = cids[ok], fee[ok]
            x = np.column_stack((fee, self.car_perkg[cids], -self.car_cdf[cids, band],
                                 -self.car_cutoff[cids], -self.car_maxw[cids]))
            got = self._dom[key] = (cids, fee, x)
        cids, fee, x = got
        live = car_left[cids] > 0
        if prev is None:
            prev = (np.ones(len(cids), dtype=bool), self.route(zone_from, zone_to, band))
        was, old = prev
        if (live & ~was).any() or len(cids) <= 1:
            return self.build_route(zone_from, zone_to, band, car_left), live
        in_old = np.zeros(len(cids), dtype=bool)
        if old:
            in_old[np.searchsorted(cids, np.fromiter(old, dtype=np.int64, count=len(old)))] = True
        gone = np.flatnonzero(in_old & ~live)
        kept = np.flatnonzero(in_old & live)  # still not dominated: fewer carriers now
        rest = np.flatnonzero(live & ~in_old)
        if len(gone) and len(rest):
            rest = rest[_dominated(x[gone], x[rest])]
            if len(kept) and len(rest):
                rest = rest[~_dominated(x[kept], x[rest])]
            if len(rest) > 1:
                rest = rest[_maximal(x[rest])]
            idx = np.sort(np.concatenate((kept, rest)))
        else:
            idx = kept
        idx = idx[np.argsort(fee[idx], kind="stable")]
        return tuple(map(self.hot().car_ints.__getitem__, cids[idx].tolist())), live

    def build_views(self, scenarios: list[tuple[float, int]]) -> int:
        """Build every built route's view (open and closed) for each (penalty, promise)
        scenario, as the router would on first use. Returns how many were built."""
        n = 0
        for pen, promise in dict.fromkeys(scenarios):
            views = self._views.setdefault((pen, promise), {})
            for key, route in self._routes.items():
                band = key % 4
                for closed in (0, 1):
                    if key * 2 + closed not in views:
                        views[key * 2 + closed] = (
                            route, self.view(route, band, pen, promise, bool(closed)))
                        n += 1
        return n

    def build_routes(self) -> int:
        """Build every route some location can ship on, unless there are too many (then
        they are built on first use). Returns how many were built."""
        nz = self.n_zones
        keys = np.unique((self.loc_zone[:, None] * nz + np.arange(nz)[None, :]) * 4
                         + self.loc_band.astype(np.int64))
        if len(keys) > EAGER_ROUTES:
            return 0
        for k in keys.tolist():
            pair, band = divmod(k, 4)
            zf, zt = divmod(pair, nz)
            self.route(zf, zt, band)
            self._pairs.pop(pair, None)
        return len(keys)

    def _cutoff_levels(self) -> list[float]:
        levels = self._cut
        if not levels:
            levels.extend(sorted(set(self.car_cutoff.tolist())))
        return levels

    def lists(self) -> dict[str, list[int]]:
        """Plain-list copies of hot per-location arrays (scalar access is faster on lists)."""
        got = self._lists
        if not got:
            got["loc_zone"] = self.loc_zone.tolist()
        return got

    def nearest_zone(self, latitude: float, longitude: float) -> int:
        d = _km(np.array([latitude]), np.array([longitude]), self.zone_lat, self.zone_lon)[0]
        return int(np.argmin(d))

    def nbytes(self) -> int:
        return sum(v.nbytes for v in vars(self).values() if isinstance(v, np.ndarray))

    def __getstate__(self) -> dict[str, Any]:
        state = dict(vars(self))
        state["_pairs"] = {}
        state["_top"] = {}
        state["_cut"] = []
        state["_lists"] = {}
        state["_hot"] = []
        state["_scen"] = {}
        state["_scen_np"] = {}
        state["_recs"] = {}
        state["_views"] = {}
        state["_dom"] = {}
        state["_ranks"] = {}
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        vars(self).update(state)


def build_index(net: NetworkSnapshot) -> NetworkIndex:
    """Compile a snapshot; raises ValidationError on dangling references."""
    t0 = time.perf_counter()
    zones = net.zones
    zone_ids = np.array([z.id for z in zones], dtype=np.int64)
    zone_pos = {int(z): i for i, z in enumerate(zone_ids)}
    zlat = np.array([z.latitude for z in zones], dtype=np.float64)
    zlon = np.array([z.longitude for z in zones], dtype=np.float64)
    nz = len(zones)

    locs = net.locations
    loc_ids = np.array([loc.id for loc in locs], dtype=np.int64)
    loc_pos = {int(v): i for i, v in enumerate(loc_ids)}
    for loc in locs:
        if loc.zone_id not in zone_pos:
            raise ValidationError(f"location {loc.id}: unknown zone {loc.zone_id}",
                                  field="zone_id")
    llat = np.array([loc.latitude for loc in locs], dtype=np.float64)
    llon = np.array([loc.longitude for loc in locs], dtype=np.float64)
    dist = _km(llat, llon, zlat, zlon).astype(np.float32) if locs else np.zeros((0, nz),
                                                                                 np.float32)
    band = np.searchsorted(np.array(BAND_LIMITS_KM[:-1]), dist, side="left").astype(np.int8)
    loc_zone = np.array([zone_pos[loc.zone_id] for loc in locs], dtype=np.int64)

    # carriers, sorted by base fee so per-zone lists come out cheapest first
    order = sorted(net.carriers, key=lambda c: (c.rate_card.base_fee, c.id))
    nc = len(order)
    car_ids = np.array([c.id for c in order], dtype=np.int64)
    car_pos = {int(v): i for i, v in enumerate(car_ids)}
    car_fee = np.full((nc, N_BANDS), np.inf)
    car_cdf = np.zeros((nc, N_BANDS, TRANSIT_DAYS))
    coverage = np.zeros((nz, nc), dtype=bool)
    for i, c in enumerate(order):
        for b, extra in enumerate(c.rate_card.band_fees):
            if extra is not None:
                car_fee[i, b] = c.rate_card.base_fee + extra
        car_cdf[i] = np.array(c.transit.cdf)
        for z in c.zones:
            p = zone_pos.get(z)
            if p is None:
                raise ValidationError(f"carrier {c.id}: unknown zone {z}", field="zones")
            coverage[p, i] = True
    counts = coverage.sum(axis=1)
    zone_ptr = np.zeros(nz + 1, dtype=np.int64)
    zone_ptr[1:] = np.cumsum(counts)
    zone_car = np.nonzero(coverage)[1].astype(np.int64)  # row-major: per zone, ascending pos
    best_cdf = np.zeros((nz, TRANSIT_DAYS))
    max_cut = np.zeros(nz)
    for z in range(nz):
        cs = zone_car[zone_ptr[z]:zone_ptr[z + 1]]
        if len(cs):
            best_cdf[z] = car_cdf[cs].max(axis=(0, 1))
            max_cut[z] = max(float(c.cutoff_hour) for c in (order[i] for i in cs.tolist()))
    min_fee = np.array([car_fee[zone_car[zone_ptr[z]:zone_ptr[z + 1]]].min()
                        if counts[z] else np.inf for z in range(nz)])

    # A zone gets next-day promises when a carrier serving it and the zone of its nearest
    # stock-holding location delivers within one day with probability >= 0.8.
    stocking = np.array([loc.kind is not LocationKind.PICKUP_POINT for loc in locs], bool)
    next_day = np.zeros(nz, dtype=bool)
    if stocking.any() and nc:
        sidx = np.flatnonzero(stocking)
        near = sidx[np.argmin(dist[sidx], axis=0)]
        for z in range(nz):
            lz = loc_zone[near[z]]
            cs = np.flatnonzero(coverage[z] & coverage[lz])
            if len(cs):
                next_day[z] = bool((car_cdf[cs, band[near[z], z], 1] >= 0.8).any())

    skus = net.skus
    sku_ids = np.array([s.id for s in skus], dtype=np.int64)
    sku_pos = {int(v): i for i, v in enumerate(sku_ids)}
    per_sku: list[list[tuple[int, int]]] = [[] for _ in skus]
    for sp in net.stock:
        sp_pos = sku_pos.get(sp.sku_id)
        lp = loc_pos.get(sp.location_id)
        if sp_pos is None or lp is None:
            raise ValidationError(
                f"stock: unknown SKU {sp.sku_id} or location {sp.location_id}", field="stock")
        per_sku[sp_pos].append((lp, sp.quantity))
    sku_ptr = np.zeros(len(skus) + 1, dtype=np.int64)
    sku_ptr[1:] = np.cumsum([len(x) for x in per_sku])
    flat = [p for x in per_sku for p in x]
    sku_loc = np.array([p[0] for p in flat], dtype=np.int64)
    stock0 = np.array([p[1] for p in flat], dtype=np.int64)

    idx = NetworkIndex(
        country=net.country, currency=net.currency,
        zone_ids=zone_ids, zone_lat=zlat, zone_lon=zlon,
        zone_pop=np.array([z.population for z in zones], dtype=np.int64), zone_pos=zone_pos,
        loc_ids=loc_ids, loc_pos=loc_pos, loc_zone=loc_zone, loc_lat=llat, loc_lon=llon,
        loc_capacity=np.array([loc.daily_capacity for loc in locs], dtype=np.int64),
        loc_handling=np.array([loc.handling_cost for loc in locs], dtype=np.float64),
        loc_opens=np.array([loc.opens_hour for loc in locs], dtype=np.float64),
        loc_closes=np.array([loc.closes_hour for loc in locs], dtype=np.float64),
        loc_kind=np.array([KINDS.index(loc.kind) for loc in locs], dtype=np.int8),
        loc_owner=np.array([loc.owner_id if loc.owner_id is not None else -1 for loc in locs],
                           dtype=np.int64),
        loc_priority=np.array([loc.priority for loc in locs], dtype=np.int64),
        loc_pickup=np.array([loc.is_pickup_point for loc in locs], dtype=bool),
        loc_dist=dist, loc_band=band,
        car_ids=car_ids, car_pos=car_pos,
        car_tier=np.array([TIERS.index(c.tier) for c in order], dtype=np.int8),
        car_fee=car_fee,
        car_perkg=np.array([c.rate_card.per_kg for c in order], dtype=np.float64),
        car_cdf=car_cdf,
        car_cutoff=np.array([c.cutoff_hour for c in order], dtype=np.float64),
        car_capacity=np.array([c.daily_capacity for c in order], dtype=np.int64),
        car_ontime=np.array([c.on_time_rate for c in order], dtype=np.float64),
        car_maxw=np.array([c.max_weight_g for c in order], dtype=np.float64),
        coverage=coverage, zone_ptr=zone_ptr, zone_car=zone_car, zone_min_fee=min_fee,
        next_day_zone=next_day, zone_best_cdf=best_cdf, zone_max_cutoff=max_cut,
        sku_ids=sku_ids, sku_pos=sku_pos,
        sku_seller=np.array([s.seller_id for s in skus], dtype=np.int64),
        sku_weight=np.array([s.weight_g for s in skus], dtype=np.int64),
        sku_ptr=sku_ptr, sku_loc=sku_loc, stock0=stock0,
    )
    idx.hot()  # the router's plain-Python views are part of the build
    if idx.build_routes():
        # and their views for the default cost model's services
        from silkroute.routing.cost import SERVICES, CostModel

        model = CostModel.for_currency(idx.currency)
        idx.build_views([(model.penalty(s), model.promise_days(s, nd))
                         for s in SERVICES for nd in (False, True)])
    idx.build_seconds = time.perf_counter() - t0
    return idx
