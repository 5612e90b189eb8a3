"""The online router: one order in, one fulfilment plan (parcels, carriers, costs) out."""

from __future__ import annotations

import bisect
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import islice
from typing import Any, cast

import numpy as np

from silkroute.domain.errors import ValidationError
from silkroute.routing.capacity import CapacityState
from silkroute.routing.cost import CostBreakdown, CostModel, OpportunityCosts
from silkroute.routing.index import (
    W_HEAVY,
    W_MID,
    W_REF,
    NetworkIndex,
    PricedView,
    Route,
    View,
)
from silkroute.routing.policy import OrderRequest

NO_STOCK = "no_stock"
NO_CARRIER = "no_carrier"
CAPACITY_EXHAUSTED = "capacity_exhausted"
N_ALTERNATIVES = 3
BIG_CANDIDATES = 16  # above this many holders, bounds are computed in handling order
SPLIT_LOCATIONS = 40  # locations a split considers at most (the cheapest handling)
# Shortage price of a location, per unit of the scarcity price (see `_Pricer.loc_base`):
# 20 x 1,000 KRW, what an order that finds no capacity costs (an unfulfilled order).
SHORTAGE = 20.0
# Typical share of a day's orders arriving in each hour (00..23): quiet nights, a morning
# ramp, a long evening with the 21:00 peak; used to project a location's use to the end of
# the day.
DAY_CURVE: tuple[float, ...] = (2.0, 1.2, 0.7, 0.4, 0.3, 0.4, 0.8, 1.6, 2.6, 3.4, 4.0, 4.4,
                                4.8, 4.4, 4.0, 3.9, 3.9, 4.0, 4.5, 5.4, 6.6, 7.3, 6.2, 3.8)
_CUM = [sum(DAY_CURVE[:h]) / sum(DAY_CURVE) for h in range(25)]


def day_share(hour: float) -> float:
    """Share of a typical day's orders that have arrived by `hour` (at least 5 %)."""
    h = min(max(hour, 0.0), 23.999)
    i = int(h)
    return max(0.05, _CUM[i] + (_CUM[i + 1] - _CUM[i]) * (h - i))
_INF = float("inf")
# Key in `CapacityState.tables` of the masks of carriers with capacity behind its routes.
_LIVE = (-1.0, 0)
# Keys in `CapacityState.tables` of its routes' ids (see `_Pricer._priced_view`).
_LEVELS = (1.0, 0)
_ROUTE_IDS = (1.0, 1)
# A `_Pricer.memo` entry, unpriced or priced (what `best` and `_best_priced` read).
_Seen = tuple[View, int, float]
_PricedSeen = tuple[PricedView, int, float]
# Shrinks the bound coefficients of `_Pricer._best_priced` (against rounding, not to prune).
_SHRINK = 1.0 - 1e-9


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
    promised: dt.date | None = None  # day + promise


# Per line: location positions, units available, and stock-entry positions (for prices).
Sources = list[tuple[Sequence[int], Sequence[int], Sequence[int]]]


def resolve(order: OrderRequest, index: NetworkIndex, model: CostModel) -> OrderContext:
    """Map ids to index positions; compute the promise. Raises ValidationError on bad ids."""
    pickup = None
    hot = index.hot()
    if order.service == "pickup":
        if order.pickup_location_id is None:
            raise ValidationError("pickup order needs a pickup point",
                                  field="pickup_location_id")
        pickup = index.loc_pos.get(order.pickup_location_id)
        if pickup is None or not index.loc_pickup[pickup]:
            raise ValidationError(
                f"pickup_location_id: {order.pickup_location_id} is not a pickup point",
                field="pickup_location_id")
        zone = hot.loc_zone[pickup]
    elif order.zone_id is not None and order.zone_id in index.zone_pos:
        zone = index.zone_pos[order.zone_id]
    else:
        zone = index.nearest_zone(order.latitude, order.longitude)
    lines = []
    sku_pos = index.sku_pos
    for ln in order.lines:
        if ln.quantity <= 0:
            raise ValidationError(f"quantity must be positive, got {ln.quantity}",
                                  field="quantity")
        sp = sku_pos.get(ln.sku_id, -1)
        w = ln.weight_g or (int(index.sku_weight[sp]) if sp >= 0 else 0)
        lines.append((sp, ln.quantity, w, ln.sku_id))
    service = order.service
    promise = model.promise_days(service, hot.next_day[zone])
    day = order.order_date or dt.date.today()
    return OrderContext(order.order_ref, zone, service, promise, model.penalty(service),
                        order.placed_hour if order.placed_hour is not None else 10.0, day,
                        lines, pickup, model.scarcity_price, day + dt.timedelta(days=promise))


def stock_sources(ctx: OrderContext, index: NetworkIndex, cap: CapacityState) -> Sources:
    """Where each line's SKU is on hand, from the live capacity state."""
    out: Sources = []
    hot = index.hot()
    stock = cap.views()[0]
    ptr, sku_loc = hot.sku_ptr, hot.sku_loc
    for sp, _q, _w, _id in ctx.lines:
        if sp < 0:
            out.append(([], [], []))
            continue
        lo, hi = ptr[sp], ptr[sp + 1]
        out.append((sku_loc[lo:hi], stock[lo:hi].tolist(), range(lo, hi)))
    return out


class _Pricer:
    """Prices parcels of one order: per location, the best two carriers by the cost model.

    A location's carriers are its route's (see `index.Route`): the non-dominated carriers
    serving its zone and the destination in its distance band, built with the index, sorted
    by fee with bounds that stop the scan at the first carrier from which on none can beat
    what the scan has (or the caller's threshold). When a carrier of the route has run out
    of capacity the route is rebuilt without it for this capacity state, so the carriers it
    dominated come back. Scarcity and shadow prices are added to the exact costs.

    With shadow prices, dominated carriers are kept (a price can make them cheaper), and
    the routes are seen through priced views (`NetworkIndex.priced_view`: sorted and
    bounded with each carrier's price, cached with the prices), so a scan stops after the
    few carriers that can still win instead of running through the ~200 of the route; see
    `_best_priced` for why its choice is the same as a scan of the unpriced view's."""

    __slots__ = ("index", "hot", "ctx", "zone", "hour", "refreshed", "routes", "car_left",
                 "loc_left", "car_np", "price", "opp_car", "opp_stock", "promise",
                 "penalty", "n_zones", "pace", "views", "memo", "cap", "opp_cache",
                 "route_levels", "route_ids", "hmemo")

    def __init__(self, index: NetworkIndex, ctx: OrderContext, cap: CapacityState,
                 opp: OpportunityCosts | None) -> None:
        self.index = index
        self.hot = index.hot()
        self.ctx = ctx
        self.zone = ctx.zone
        self.hour = ctx.hour
        self.n_zones = len(self.hot.next_day)
        self.promise = ctx.promise
        self.penalty = ctx.penalty
        # Views by route key, per (penalty, promise): the index's, or with shadow prices the
        # priced views, cached with the prices (`OpportunityCosts.cache`: a re-plan makes
        # new prices or calls `refresh`, which drops what was built with the old ones).
        cache: dict[Any, Any] = opp.cache if opp is not None and opp.active else index._views
        views = cache.get((ctx.penalty, ctx.promise))
        if views is None:
            views = cache[(ctx.penalty, ctx.promise)] = {}
        # view key -> (the route, its `View`), or with shadow prices its `PricedView`
        self.views: dict[int, Any] = views
        self.opp_cache: dict[Any, Any] = cache  # (read with shadow prices only)
        # (with shadow prices, kept with the capacity state like the routes) route key ->
        # (the route, its id), and a route's carriers -> its id: (a number, the sorted
        # cut-off hours of its carriers, its carriers as an array); see `_priced_view`
        self.route_levels: dict[int, tuple[Route, tuple[int, list[float], Any]]] = \
            cap.tables.setdefault(_LEVELS, {})
        self.route_ids: dict[Route, tuple[int, list[float], Any]] = \
            cap.tables.setdefault(_ROUTE_IDS, {})  # type: ignore[assignment]
        # location -> (its view, its route's key, the hour its carriers see: inf once closed)
        self.memo: dict[int, tuple[View | PricedView, int, float]] = {}
        # (with shadow prices) the same for the location's view for heavy parcels
        self.hmemo: dict[int, tuple[View | PricedView, int, float]] = {}
        _s, self.loc_left, self.car_left = cap.views()
        self.car_np = cap.car_left
        self.cap = cap
        self.price = ctx.scarcity
        # Demand still to come today per unit already seen (the typical arrival curve).
        done = day_share(ctx.hour)
        self.pace = (1.0 - done) / done
        self.opp_car = opp.carrier if opp is not None and opp.active else None
        self.opp_stock = opp.stock if opp is not None and opp.active else None
        # Routes rebuilt for this capacity state (carriers used up), or without dominance.
        self.refreshed = cap.tables.setdefault((0.0, 0 if self.opp_car is None else 1), {})
        self.routes = index._routes

    def route(self, lp: int) -> tuple[Route, int]:
        """The route for parcels from location `lp`, and its key."""
        hot = self.hot
        zone = self.zone
        zf = hot.loc_zone[lp]
        band = hot.band_rows[lp][zone]
        key = (zf * self.n_zones + zone) * 4 + band
        got = self.refreshed.get(key) if self.refreshed else None
        if got is None:
            if self.opp_car is not None:
                got = self.refreshed[key] = self.index.build_route(
                    zf, zone, band, self.car_np, dominance=False)
            else:
                got = self.routes.get(key)
                if got is None:
                    got = self.index.route(zf, zone, band)
        return got, key

    def loc_base(self, lp: int) -> float:
        """Handling plus the location's scarcity price: `price` x u^4 for a location that
        has used a fraction u of its handling capacity, plus a shortage price when, at the
        pace it has been used so far today, the location will run out before the day ends:
        SHORTAGE x `price` x the share of its remaining demand it will not be able to
        handle. A parcel placed there now then displaces a later one, which may have no
        other location (an unfulfilled order) — so orders that have other options go
        elsewhere, and the capacity stays for those that do not."""
        left = self.loc_left[lp]
        hot = self.hot
        u = 1.0 - left * hot.loc_cap_inv[lp]
        u2 = u * u
        base = hot.loc_handling[lp] + self.price * u2 * u2
        if u > 0.0:
            ahead = (hot.loc_capacity[lp] - left) * self.pace  # expected use from now
            if ahead > left:
                base += self.price * SHORTAGE * (1.0 - left / ahead)
        return base

    def view(self, lp: int) -> tuple[View | PricedView, int, float]:
        """The location's route as this order's scenario sees it, the route's key, and the
        hour the carriers see (inf once the location has closed: picked up tomorrow)."""
        got = self.memo.get(lp)
        if got is not None:
            return got
        route, key = self.route(lp)
        hot = self.hot
        hour = self.hour
        closed = hour >= hot.loc_closes[lp]
        if self.opp_car is not None:
            return self._priced_view(lp, route, key, closed)
        vkey = key * 2 + closed
        v = self.views.get(vkey)
        if v is not None and v[0] is not route and v[0] == route:
            # the route was rebuilt (a carrier ran out) with the same carriers as before:
            # the view still holds
            v = self.views[vkey] = (route, v[1])
        if v is None or v[0] is not route:
            v = self.views[vkey] = (route, self.index.view(
                route, key & 3, self.penalty, self.promise, closed))
        got = self.memo[lp] = (v[1], key, _INF if closed else hour)
        return got

    def heavy_view(self, lp: int) -> tuple[View | PricedView, int, float]:
        """`view` with shadow prices for parcels heavier than W_MID: the priced view in the
        order of the carriers' costs at W_HEAVY (see `NetworkIndex.priced_view`). A view
        sorted at W_REF bounds a heavy parcel's scan loosely (the carrier cheapest at 8 kg
        may sit far down the order of costs at 1 kg), so such scans ran through 60-150
        positions; in this order they stop after about 10."""
        got = self.hmemo.get(lp)
        if got is not None:
            return got
        route, key = self.route(lp)
        return self._priced_view(lp, route, key, self.hour >= self.hot.loc_closes[lp], True)

    def _priced_view(self, lp: int, route: Route, key: int, closed: bool, heavy: bool = False
                     ) -> tuple[View | PricedView, int, float]:
        """`view` with shadow prices. A priced view is a function of the route's carriers
        (not of its key: many pairs of zones are served by the same carriers), its band,
        the scenario, and the hour class: how many of the route's own carriers' cut-off
        hours have passed (other carriers' cut-offs do not change it; in the evening peak,
        past the last cut-off of most routes, one view serves every hour). So views are
        cached by (the route's content, band, closing, hour class, `heavy`: see
        `heavy_view`), with the prices."""
        lv = self.route_levels.get(key)
        if lv is None or lv[0] is not route:
            ids = self.route_ids
            rid = ids.get(route)
            if rid is None:
                cut = self.hot.car_cutoff
                rid = ids[route] = (len(ids), sorted({cut[c] for c in route}),
                                    np.fromiter(route, dtype=np.int64, count=len(route)))
            lv = self.route_levels[key] = (route, rid)
        rid = lv[1]
        hour = self.hour
        vkey = ((((rid[0] * 4 + (key & 3)) * 2 + closed) * 64 + (
            63 if closed else bisect.bisect_right(rid[1], hour))) << 1) | heavy
        v = self.views.get(vkey)
        if v is None:
            opp = self.opp_car
            assert opp is not None
            v = self.views[vkey] = self.index.priced_view(
                route, key & 3, self.penalty, self.promise, closed, _INF if closed else hour,
                opp, self.opp_cache, rid[2], heavy)
        got = (v, key, _INF if closed else hour)
        (self.hmemo if heavy else self.memo)[lp] = got
        return got

    def _rebuild(self, lp: int, key: int) -> None:
        """Carriers of the location's route have run out of capacity: rebuild it without
        them (for this capacity state), so the carriers they dominated come back."""
        hot = self.hot
        zf = hot.loc_zone[lp]
        band = hot.band_rows[lp][self.zone]
        if self.opp_car is None:
            # carriers only run out: rework the previous build (see `rebuild_route`)
            live = self.cap.tables.setdefault(_LIVE, {})
            prev = live.get(key)
            route = self.refreshed.get(key)
            self.refreshed[key], mask = self.index.rebuild_route(
                zf, self.zone, band, self.car_np,
                None if prev is None or route is None else (prev, route))
            live[key] = mask
        else:
            self.refreshed[key] = self.index.build_route(
                zf, self.zone, band, self.car_np, dominance=False)
            self.hmemo.pop(lp, None)
        self.memo.pop(lp, None)

    def best(self, lp: int, weight: float, base: float, thr: float, two: bool = True
             ) -> tuple[float, int, float, int]:
        """(total, carrier) of the best and second-best carrier of a parcel of `weight`
        from `lp` (carrier -1 when none under `thr`); `base` = handling + location terms.
        With `two` False the second best is not wanted: the scan stops as soon as no
        carrier further on can beat the best found (and the second best it returns is
        whatever it met on the way)."""
        if self.opp_car is not None:
            return self._best_priced(lp, weight, base, thr, two)
        for attempt in (0, 1):
            got = self.memo.get(lp) or self.view(lp)
            (recs, asuf, bsuf), key, hour = cast(_Seen, got)
            t1 = t2 = _INF
            c1 = c2 = -1
            lim = thr - base
            left_of = self.car_left
            price = self.price
            skipped = False
            for rec, a_lo, b_lo in zip(recs, asuf, bsuf, strict=True):
                if a_lo + b_lo * weight >= lim:
                    break
                c, a_today, a_tom, cutoff, per_g, maxw, inv = rec
                left = left_of[c]
                if left <= 0:
                    skipped = True
                    continue
                if weight > maxw:
                    continue
                u = 1.0 - left * inv
                u *= u
                t = (a_today if hour < cutoff else a_tom) + per_g * weight + price * u * u
                if t < lim:
                    t += base
                    if t < t1:
                        t2, c2, t1, c1 = t1, c1, t, c
                    else:
                        t2, c2 = t, c
                    bound = t2 if two else t1
                    lim = (bound if bound < thr else thr) - base
            if not skipped or attempt:
                break
            self._rebuild(lp, key)
        return t1, c1, t2, c2

    def _best_priced(self, lp: int, weight: float, base: float, thr: float, two: bool
                     ) -> tuple[float, int, float, int]:
        """`best` with shadow prices, on the location's priced view.

        Same answer as the scan of the unpriced view: that scan keeps a carrier when its
        cost is below `thr` - `base` and the bound, and replaces the best only with a
        strictly lower total, so its best is the carrier of least total (of those equal,
        the one it meets first) and its next best the same among the rest. This scan meets
        the carriers in another order (by cost with the price), so it compares (total, rank
        in the unpriced view) instead of the total alone, and stops at the first position
        whose bound + `base` exceeds the total to beat (strictly: a carrier of equal total
        and lower rank may follow). Totals are the same floats as there (price added last).

        The bound of the carriers from position j on: a carrier's cost without scarcity
        (>= 0) is linear in the weight, so for w between two reference weights it is at
        least the interpolation of the least costs from j on at those two weights. The
        view has them at 0 g (A = the least fee + lateness, as handed over at the order's
        hour, + price), W_REF (K = the sort key at j: keys only grow), W_MID and W_HEAVY;
        above W_HEAVY the bound is the least cost there + B (w - W_HEAVY), B = the least
        fee per gram. (This beats the unpriced view's A + B w, which lets a scan of a long
        route run on; the references above W_REF halve the scans of parcels of a few kg.)
        The coefficients are shrunk by 1e-9 so that rounding cannot lift the bound over a
        cost (all terms are >= 0: prices are). A view holds its first VIEW_HEAD positions
        (`NetworkIndex.priced_view`); a scan that runs through them goes on in the whole
        view (`ViewTail`). Its next best with `two` False is whatever it met on the way, as
        there. A parcel above W_MID is scanned in the heavy view (`heavy_view`): the same
        columns in the order of the costs at W_HEAVY, each list the suffix minima in that
        order, so the same bounds hold (the W_REF list is then the least cost at W_REF from
        a position on rather than the sort key)."""
        # the bound from a position on: k1 x1 + k2 x2 (+ k3 x3), the x's being the view's
        # lists at positions i1, i2, i3 (see the docstring)
        if weight <= W_REF:
            i1, i2, i3 = 1, 3, 2  # least fee + lateness + price, sort key, least fee per g
            k2 = weight / W_REF
            k1, k3 = 1.0 - k2, 0.0
        elif weight <= W_MID:
            i1, i2, i3 = 3, 4, 2  # sort key (W_REF), least cost at W_MID
            k2 = (weight - W_REF) / (W_MID - W_REF)
            k1, k3 = 1.0 - k2, 0.0
        elif weight <= W_HEAVY:
            i1, i2, i3 = 4, 5, 2  # least cost at W_MID, at W_HEAVY
            k2 = (weight - W_MID) / (W_HEAVY - W_MID)
            k1, k3 = 1.0 - k2, 0.0
        else:
            i1, i2, i3 = 5, 2, 2  # least cost at W_HEAVY, least fee per gram
            k1, k2, k3 = 1.0, weight - W_HEAVY, 0.0
        k1 *= _SHRINK
        k2 *= _SHRINK
        heavy = weight > W_MID
        for attempt in (0, 1):
            got = (self.hmemo.get(lp) or self.heavy_view(lp)) if heavy else \
                (self.memo.get(lp) or self.view(lp))
            v: Any
            v, key, hour = cast(_PricedSeen, got)
            recs = v[0]
            tail = v[6]
            t1 = t2 = _INF
            c1 = c2 = -1
            r1 = r2 = 0
            cut = thr - base
            bt = _INF  # the total to beat: the best's (or with `two` the next best's)
            left_of = self.car_left
            price = self.price
            skipped = False
            seg: Any = zip(recs, v[i1], v[i2], v[i3], strict=True)
            while True:
                for rec, y1, y2, y3 in seg:
                    lb = k1 * y1 + k2 * y2 + k3 * y3
                    if lb >= cut or lb + base > bt:
                        break
                    c, a_today, a_tom, cutoff, per_g, maxw, inv, o, r = rec
                    left = left_of[c]
                    if left <= 0:
                        skipped = True
                        continue
                    if weight > maxw:
                        continue
                    u = 1.0 - left * inv
                    u *= u
                    t = (a_today if hour < cutoff else a_tom) + per_g * weight \
                        + price * u * u
                    t += o
                    if t < cut:
                        t += base
                        if t < t1 or (t == t1 and r < r1):
                            t2, c2, r2, t1, c1, r1 = t1, c1, r1, t, c, r
                        elif t < t2 or (t == t2 and r < r2):
                            t2, c2, r2 = t, c, r
                        bt = t2 if two else t1
                else:
                    if tail is not None:
                        # the scan ran through the view's head: go on in the whole view
                        full: Any = tail.full()
                        tail = None
                        n0 = len(recs)
                        seg = zip(islice(full[0], n0, None), islice(full[i1], n0, None),
                                  islice(full[i2], n0, None), islice(full[i3], n0, None),
                                  strict=True)
                        continue
                break
            if not skipped or attempt:
                break
            self._rebuild(lp, key)
        return t1, c1, t2, c2

    def best1(self, lp: int, weight: float, base: float, thr: float) -> tuple[float, int]:
        """`best`'s best carrier alone (the scan stops at the best's bound)."""
        t1, c1, _t2, _c2 = self.best(lp, weight, base, thr, False)
        return t1, c1

    def ship_bound(self, lp: int, weight: float) -> float:
        """A lower bound of shipping (fee and lateness) a parcel of `weight` from `lp`."""
        v = (self.memo.get(lp) or self.view(lp))[0]
        recs, asuf, bsuf = v[0], v[1], v[2]  # (a priced view has one more field)
        if not recs:
            return _INF
        return asuf[0] + bsuf[0] * weight

    def lower_bound(self, lp: int, weight: float) -> float:
        """A lower bound of any parcel of `weight` from `lp` (ignoring capacity)."""
        return self.ship_bound(lp, weight) + self.loc_base(lp)

    def parcel(self, lp: int, car: int | None, line_idx: Sequence[int], qtys: Sequence[int],
               extra: float) -> Parcel:
        """The parcel with its exact cost breakdown and P(on time); `extra` = stock price."""
        ctx = self.ctx
        hot = self.hot
        lines = ctx.lines
        weight = 0.0
        for i, q in zip(line_idx, qtys, strict=True):
            weight += lines[i][2] * q
        h = hot.loc_handling[lp]
        if car is None:  # collected where it is
            p = 1.0 if (ctx.hour < hot.loc_closes[lp] or ctx.promise >= 1) else 0.0
            cost = CostBreakdown(0.0, h, ctx.penalty * (1.0 - p), 0.0, extra)
        else:
            band = hot.band_rows[lp][ctx.zone]
            today = ctx.hour < hot.car_cutoff[car] and ctx.hour < hot.loc_closes[lp]
            days = ctx.promise - (0 if today else 1)
            cdf = hot.car_cdf[car][band]
            p = cdf[min(days, len(cdf) - 1)] if days >= 0 else 0.0
            fee = hot.car_fee[car][band] + hot.car_perkg[car] / 1000.0 * weight
            u = 1.0 - self.car_left[car] * hot.car_cap_inv[car]
            u *= u
            opp = self.loc_base(lp) - h + self.price * u * u + extra
            if self.opp_car is not None:
                opp += float(self.opp_car[car])
            cost = CostBreakdown(fee, h, ctx.penalty * (1.0 - p), 0.0, opp)
        return Parcel(hot.loc_ids[lp],
                      tuple([(lines[i][3], q) for i, q in zip(line_idx, qtys, strict=True)]),
                      None if car is None else hot.car_ids[car], ctx.service, cost,
                      ctx.promised or ctx.day + dt.timedelta(days=ctx.promise), p, weight,
                      lp, car,
                      tuple([(lines[i][0], q) for i, q in zip(line_idx, qtys, strict=True)]))


def _make_parcel(index: NetworkIndex, ctx: OrderContext, loc: int, car: int | None,
                 line_idx: Sequence[int], qtys: Sequence[int], cost: CostBreakdown,
                 p: float) -> Parcel:
    hot = index.hot()
    lines = tuple((ctx.lines[i][3], q) for i, q in zip(line_idx, qtys, strict=True))
    lpos = tuple((ctx.lines[i][0], q) for i, q in zip(line_idx, qtys, strict=True))
    weight = float(sum(ctx.lines[i][2] * q for i, q in zip(line_idx, qtys, strict=True)))
    return Parcel(hot.loc_ids[loc], lines, None if car is None else hot.car_ids[car],
                  ctx.service, cost, ctx.promised or ctx.day + dt.timedelta(days=ctx.promise),
                  p, weight, loc, car, lpos)


def assemble(index: NetworkIndex, model: CostModel, ctx: OrderContext,
             parcels: Sequence[Parcel], alternatives: Sequence[Alternative] = ()
             ) -> FulfilmentPlan:
    """A plan from parcels: split penalty per extra parcel, on-time = all parcels on time."""
    if len(parcels) == 1:
        total = parcels[0].cost
        p = parcels[0].on_time_probability
    else:
        total = CostBreakdown()
        p = 1.0
        for parcel in parcels:
            total = total + parcel.cost
            p *= parcel.on_time_probability
        total = total + CostBreakdown(split=model.split_penalty * max(0, len(parcels) - 1))
    kept = tuple(a for a in alternatives if a.cost >= total.total - 1e-9)
    return FulfilmentPlan(ctx.ref, tuple(parcels), total, ctx.promise,
                          ctx.promised or ctx.day + dt.timedelta(days=ctx.promise), p, kept)


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
            if a > 0 and (lp == ctx.pickup
                          or len(index.pair_carriers(int(index.loc_zone[lp]), ctx.zone))):
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
    for (_sp, q, _w, _id), (_l, av, _e) in zip(ctx.lines, src, strict=True):
        if sum(av) < q:
            return no_plan(index, ctx, src, cap)
    pr = _Pricer(index, ctx, cap, opp)
    loc_left = pr.loc_left
    stock_price = pr.opp_stock
    # Locations that hold every line (dict: location -> stock-opportunity of the order there)
    first_locs, first_av, first_e = src[0]
    q0 = ctx.lines[0][1]
    common: dict[int, float] = {}
    for lp, a, e in zip(first_locs, first_av, first_e, strict=True):
        if a >= q0 and loc_left[lp] > 0:
            common[lp] = float(stock_price[e]) * q0 if stock_price is not None and e >= 0 \
                else 0.0
    for i in range(1, n):
        if not common:
            break
        locs, av, es = src[i]
        qi = ctx.lines[i][1]
        nxt: dict[int, float] = {}
        for lp, a, e in zip(locs, av, es, strict=True):
            if a >= qi and lp in common:
                nxt[lp] = common[lp] + (float(stock_price[e]) * qi
                                        if stock_price is not None and e >= 0 else 0.0)
        common = nxt
    all_idx = list(range(n))
    all_q = [ln[1] for ln in ctx.lines]
    total_w = 0.0
    for ln in ctx.lines:
        total_w += ln[1] * ln[2]

    single: Parcel | None = None  # the best single-location plan's parcel
    alts: list[Alternative] = []
    if common:
        single = _best_single(pr, ctx, common, all_idx, all_q, total_w, alts)
    single_total = single.cost.total if single is not None else _INF

    # Splitting: only when nothing ships whole, or a split could beat the best single plan:
    # two parcels cost at least the penalty plus twice the cheapest handling of a location
    # holding a line and the cheapest fee of any carrier into the zone.
    try_split = single is None or n >= 2
    if single is not None and n >= 2:
        h_min = _INF
        handling = pr.hot.loc_handling
        for locs, _av, _e in src:
            for lp in locs:
                if handling[lp] < h_min:
                    h_min = handling[lp]
        fee_min = 0.0 if ctx.pickup is not None else pr.hot.zone_min_fee[ctx.zone]
        if model.split_penalty + 2.0 * (h_min + fee_min) >= single_total:
            try_split = False
    best_plan: FulfilmentPlan | None = None
    if try_split:
        split = _split_plan(pr, model, ctx, cap, src, single_total)
        if split is not None:
            split_total = split.cost.total
            if single is None or split_total < single_total - 1e-9:
                if single is not None:
                    alts.insert(0, Alternative(((single.location_id, single.carrier_id),),
                                               single_total, "best single-location plan"))
                best_plan = split
            else:
                alts.append(Alternative(
                    tuple([(p.location_id, p.carrier_id) for p in split.parcels]),
                    split_total, "best split plan"))
    if best_plan is None:
        if single is None:
            return no_plan(index, ctx, src, cap)
        floor = single_total - 1e-9
        if len(alts) > 1:
            alts.sort(key=_alt_cost)
        return FulfilmentPlan(ctx.ref, (single,), single.cost, ctx.promise,
                              ctx.promised or ctx.day + dt.timedelta(days=ctx.promise),
                              single.on_time_probability,
                              tuple([a for a in alts if a.cost >= floor][:N_ALTERNATIVES + 1]))
    alts.sort(key=_alt_cost)
    floor = best_plan.cost.total - 1e-9
    return FulfilmentPlan(best_plan.order_ref, best_plan.parcels, best_plan.cost,
                          best_plan.promise_days, best_plan.promised_date,
                          best_plan.on_time_probability,
                          tuple([a for a in alts if a.cost >= floor][:N_ALTERNATIVES + 1]))


def _alt_cost(a: Alternative) -> float:
    return a.cost


def _best_single(pr: _Pricer, ctx: OrderContext, common: dict[int, float], all_idx: list[int],
                 all_q: list[int], total_w: float, alts: list[Alternative]) -> Parcel | None:
    """The parcel of the best single-location plan (branch and bound over locations ranked
    by lower bound); fills `alts` with the next best locations and the chosen location's
    next carrier."""
    collect = ctx.pickup if ctx.pickup is not None and ctx.pickup in common else None
    cands: list[tuple[float, int, float]] = []  # (lower bound, location, base)
    hot = pr.hot
    order: Any = common
    cheap = _INF
    if len(common) > BIG_CANDIDATES:
        # Many holders: visit them by handling cost, and stop computing bounds once the
        # handling plus the cheapest fee into the zone cannot beat the best bounds found.
        order = sorted(common, key=hot.loc_handling.__getitem__)
        cheap = hot.zone_min_fee[ctx.zone]  # the pickup point's own stock is `collect`
    memo = pr.memo
    low1 = low2 = _INF  # the two least bounds in `cands`
    for lp in order:
        if lp == collect:
            continue
        if cheap < _INF and len(cands) >= 2 * BIG_CANDIDATES \
                and hot.loc_handling[lp] + cheap >= low2:
            break
        v = (memo.get(lp) or pr.view(lp))[0]
        recs, asuf, bsuf = v[0], v[1], v[2]  # (a priced view has one more field)
        if recs:
            base = pr.loc_base(lp) + common[lp]
            lb = asuf[0] + bsuf[0] * total_w + base
            cands.append((lb, lp, base))
            if lb < low2:
                if lb < low1:
                    low1, low2 = lb, low1
                else:
                    low2 = lb
    cands.sort()
    keep = 2  # the best and the next location are priced exactly; others when on the way
    # (total, location, carrier, base, threshold it was priced under)
    found: list[tuple[float, int, int, float, float]] = []
    tops: list[float] = []  # the best `keep` totals so far, ascending
    thr = _INF
    if collect is not None:
        t = pr.hot.loc_handling[collect] + common[collect]
        found.append((t, collect, -1, 0.0, _INF))
        tops.append(t)
    # The first location priced is priced in full (best and next carrier): it is usually
    # the one chosen; others only for their best carrier, the chosen one again if needed.
    first = -1
    t2 = _INF
    c2 = -1
    for lb, lp, base in cands:
        if lb >= thr:
            break
        if first < 0:
            first = lp
            t1, c1, t2, c2 = pr.best(lp, total_w, base, thr)
        else:
            t1, c1 = pr.best1(lp, total_w, base, thr)
        if c1 < 0:
            continue
        found.append((t1, lp, c1, base, thr))
        bisect.insort(tops, t1)
        if len(tops) >= keep:
            del tops[keep:]
            thr = tops[-1]
    if not found:
        return None
    if len(found) > 1:
        found.sort(key=_first)
    t, lp, c, base, thr = found[0]
    if c < 0:
        t2, c2 = _INF, -1
        parcel = pr.parcel(lp, None, all_idx, all_q, common[lp])
    else:
        if lp != first:
            # the chosen location's next carrier, as its scan under the same threshold sees it
            _t1, _c1, t2, c2 = pr.best(lp, total_w, base, thr)
        parcel = pr.parcel(lp, c, all_idx, all_q, common[lp])
    loc_ids = hot.loc_ids
    car_ids = hot.car_ids
    options = [(f[0], f[1], f[2], "next location") for f in found[1:]]
    if c2 >= 0:
        options.append((t2, lp, c2, "same location, next carrier"))
        options.sort(key=_first)
    for ta, la, ca, note in options[:N_ALTERNATIVES]:
        alts.append(Alternative(((loc_ids[la], None if ca < 0 else car_ids[ca]),), ta, note))
    return parcel


def _first(f: tuple[Any, ...]) -> Any:
    return f[0]


def _fewest(pr: _Pricer, ctx: OrderContext, locs: Sequence[int]) -> list[int]:
    """At most SPLIT_LOCATIONS of `locs`, those with the cheapest handling (and the pickup
    point): what a split or a quantity split considers when very many locations qualify."""
    if len(locs) <= SPLIT_LOCATIONS:
        return list(locs)
    out = sorted(locs, key=pr.hot.loc_handling.__getitem__)[:SPLIT_LOCATIONS]
    if ctx.pickup is not None and ctx.pickup in locs and ctx.pickup not in out:
        out.append(ctx.pickup)
    return out


def _split_plan(pr: _Pricer, model: CostModel, ctx: OrderContext, cap: CapacityState,
                src: Sources, single: float) -> FulfilmentPlan | None:
    """Cheapest partition of the lines over locations (exact over subsets of <= 6 lines,
    over the cheapest-looking few locations per line), searched only when no single location
    can ship or when a lower bound of any split is below the best single plan (`single`);
    lines no single location can fill are split by quantity."""
    n = len(ctx.lines)
    lines = ctx.lines
    loc_left = pr.loc_left
    stock_price = pr.opp_stock
    masks: dict[int, int] = {}
    for i, (locs, av, _es) in enumerate(src):
        qi = lines[i][1]
        for lp, a in zip(locs, av, strict=True):
            if a >= qi and loc_left[lp] > 0:
                masks[lp] = masks.get(lp, 0) | (1 << i)
    full = (1 << n) - 1
    coverable = 0
    for m in masks.values():
        coverable |= m
    if len(masks) > SPLIT_LOCATIONS:
        few = _fewest(pr, ctx, list(masks))
        covered = 0
        for lp in few:
            covered |= masks[lp]
        if covered == coverable:
            masks = {lp: masks[lp] for lp in few}
    if coverable != full or n > 6:
        if single < _INF:
            return None  # a single location ships it; splitting by quantity will not beat it
        return _quantity_split(pr, model, ctx, cap, src)
    # Lower bound per location: a parcel of its lightest line, ignoring capacity.
    min_w = min(ln[2] * ln[1] for ln in lines)
    hot = pr.hot
    lbs: dict[int, float] = {}
    for lp in masks:
        lbs[lp] = (hot.loc_handling[lp] if lp == ctx.pickup
                   else pr.lower_bound(lp, min_w))
    ranked = sorted((v, lp) for lp, v in lbs.items() if v < _INF)
    if len(ranked) == 0:
        return _quantity_split(pr, model, ctx, cap, src) if single == _INF else None
    low2 = ranked[0][0] + (ranked[1][0] if len(ranked) > 1 else ranked[0][0])
    if model.split_penalty + low2 >= single:
        return None
    # Keep, per line and for multi-line sets, the three cheapest-looking locations.
    keep: list[int] = []
    for bit in [1 << i for i in range(n)] + [-1]:
        got = 0
        for _v, lp in ranked:
            m = masks[lp]
            if (bit > 0 and m & bit) or (bit < 0 and m & (m - 1)):
                if lp not in keep:
                    keep.append(lp)
                got += 1
                if got == 3:
                    break
    if ctx.pickup is not None and ctx.pickup in masks and ctx.pickup not in keep:
        keep.append(ctx.pickup)
    # A part can only help if it plus the penalty and the cheapest other part beats `single`.
    thr = single - model.split_penalty - ranked[0][0] if single < _INF else _INF
    best_sub: dict[int, tuple[float, int, int]] = {}  # subset -> (cost, location, carrier)
    wsub = [0.0] * (full + 1)
    for s in range(1, full + 1):
        low = s & -s
        wsub[s] = wsub[s ^ low] + lines[low.bit_length() - 1][1] * lines[low.bit_length() - 1][2]
    for lp in keep:
        m = masks[lp]
        if lp == ctx.pickup:
            h = hot.loc_handling[lp]
            s = m
            while s:
                if h < best_sub.get(s, (_INF, 0, 0))[0]:
                    best_sub[s] = (h, lp, -1)
                s = (s - 1) & m
            continue
        base = pr.loc_base(lp)
        per_line = _line_prices(stock_price, src, lines, lp) if stock_price is not None \
            else None
        s = m
        while s:
            extra = 0.0 if per_line is None else _subset_price(per_line, s)
            t, c = pr.best1(lp, wsub[s], base + extra, min(thr, best_sub.get(s, (_INF,))[0]))
            if c >= 0:
                best_sub[s] = (t, lp, c)
            s = (s - 1) & m
    # DP over subsets: f[mask] = cheapest cover of `mask` (+ penalty for each extra parcel)
    f: list[float] = [_INF] * (full + 1)
    choice: list[int] = [0] * (full + 1)
    f[0] = -model.split_penalty
    for mask in range(1, full + 1):
        low = mask & -mask
        s = mask
        while s:
            if s & low:
                hit = best_sub.get(s)
                if hit is not None:
                    v = hit[0] + model.split_penalty + f[mask ^ s]
                    if v < f[mask]:
                        f[mask], choice[mask] = v, s
            s = (s - 1) & mask
    if f[full] == _INF or f[full] >= single - 1e-9:
        if single == _INF:
            return _quantity_split(pr, model, ctx, cap, src)
        return None
    parcels: list[Parcel] = []
    mask = full
    used_car: dict[int, int] = {}
    used_loc: dict[int, int] = {}
    while mask:
        s = choice[mask]
        _t, lp, c = best_sub[s]
        idx = [i for i in range(n) if s >> i & 1]
        extra = _stock_price(stock_price, src, lines, lp, s) if stock_price is not None else 0.0
        parcels.append(pr.parcel(lp, None if c < 0 else c, idx, [lines[i][1] for i in idx],
                                 extra))
        if c >= 0:
            used_car[c] = used_car.get(c, 0) + 1
        used_loc[lp] = used_loc.get(lp, 0) + 1
        mask ^= s
    if any(pr.car_left[c] < k for c, k in used_car.items()) or any(
            loc_left[lp] < k for lp, k in used_loc.items()):
        return _quantity_split(pr, model, ctx, cap, src) if single == _INF else None
    return assemble(pr.index, model, ctx, parcels)


def _line_prices(prices: Any, src: Sources, lines: list[tuple[int, int, int, int]],
                 lp: int) -> list[float | None]:
    """Per line, the shadow price of its stock at `lp` (None: no priced entry there)."""
    out: list[float | None] = []
    for i, (locs, _av, es) in enumerate(src):
        got = None
        for lq, e in zip(locs, es, strict=True):
            if lq == lp and e >= 0:
                got = float(prices[e]) * lines[i][1]
                break
        out.append(got)
    return out


def _subset_price(per_line: list[float | None], s: int) -> float:
    """`_stock_price` of subset `s` from `_line_prices` (the same sum, in the same order)."""
    total = 0.0
    i = 0
    while s:
        if s & 1:
            v = per_line[i]
            if v is not None:
                total += v
        s >>= 1
        i += 1
    return total


def _stock_price(prices: Any, src: Sources, lines: list[tuple[int, int, int, int]], lp: int,
                 s: int) -> float:
    """Shadow price of the stock a parcel of the lines in subset `s` takes at `lp`."""
    total = 0.0
    for i, (locs, _av, es) in enumerate(src):
        if s >> i & 1:
            for lq, e in zip(locs, es, strict=True):
                if lq == lp and e >= 0:
                    total += float(prices[e]) * lines[i][1]
                    break
    return total


def _quantity_split(pr: _Pricer, model: CostModel, ctx: OrderContext, cap: CapacityState,
                    src: Sources) -> FulfilmentPlan | None:
    """Greedy: fill each line from the locations with the cheapest parcel, in that order,
    then give each location's parcel its cheapest carrier with capacity left."""
    n = len(ctx.lines)
    loc_left = pr.loc_left
    locs_all = sorted({lp for locs, av, _e in src for lp, a in zip(locs, av, strict=True)
                       if a > 0 and loc_left[lp] > 0})
    if not locs_all:
        return None
    if len(locs_all) > SPLIT_LOCATIONS:
        # the cheapest-handling locations first; all of them if those lack the stock
        few = set(_fewest(pr, ctx, locs_all))
        if all(sum(a for lp, a in zip(locs, av, strict=True) if lp in few) >= ctx.lines[i][1]
               for i, (locs, av, _e) in enumerate(src)):
            locs_all = sorted(few)
    unit_w = max(1.0, sum(ln[2] for ln in ctx.lines) / n)
    rank: dict[int, float] = {}
    for lp in locs_all:
        if ctx.pickup is not None and lp == ctx.pickup:
            rank[lp] = pr.hot.loc_handling[lp]
        else:
            rank[lp] = pr.best1(lp, unit_w, pr.loc_base(lp), _INF)[0]
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
    car_left = pr.car_left
    taken: list[int] = []
    try:
        for lp, part in take.items():
            idx = list(part)
            qs = [part[i] for i in idx]
            if ctx.pickup is not None and lp == ctx.pickup:
                parcels.append(pr.parcel(lp, None, idx, qs, 0.0))
                continue
            w = float(sum(ctx.lines[i][2] * q for i, q in zip(idx, qs, strict=True)))
            _t, c = pr.best1(lp, w, pr.loc_base(lp), _INF)
            if c < 0:
                return None
            parcels.append(pr.parcel(lp, c, idx, qs, 0.0))
            car_left[c] -= 1  # hold the parcel's slot while the others choose
            taken.append(c)
    finally:
        for c in taken:
            car_left[c] += 1
    if any(loc_left[p.location_pos] < sum(1 for q in parcels
                                          if q.location_pos == p.location_pos)
           for p in parcels):
        return None
    return assemble(pr.index, model, ctx, parcels)


def apply_plan(plan: FulfilmentPlan, index: NetworkIndex, capacity: CapacityState) -> None:
    """Consume the plan's stock, handling and carrier capacity."""
    for parcel in plan.parcels:
        capacity.take(index, parcel.location_pos, parcel.carrier_pos, parcel.line_pos)


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
