"""What the console pages show, composed from the API's services and the router's state."""

from __future__ import annotations

import datetime as dt
import json
import os
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from silkroute.domain.carriers import NetworkSnapshot
from silkroute.domain.network import haversine_km
from silkroute.routing.policy import CandidateLocation, OrderLineRequest, OrderRequest
from silkroute.services import listings
from silkroute.services.queries import OrderView
from silkroute.services.routing_policy import router_state
from silkroute.services.storefront import get_sku
from silkroute.store.network_repo import load_snapshot, network_stamp
from silkroute.store.uow import UnitOfWork

BENCH_ENV = "SILKROUTE_BENCH_ROUTE_JSON"
BENCH_DEFAULT = "bench-route.json"
SNAPSHOT_TTL_S = 30.0
MAX_FLOW_ORDERS = 5000
ESTIMATE_KM_PER_DAY = 300.0  # the labelled estimate when no network is loaded


# ------------------------------------------------------------------------------ network
@dataclass
class _Cached:
    stamp: str | None
    at: float
    snapshot: NetworkSnapshot


_snapshots: dict[str, _Cached] = {}
_lock = threading.Lock()


def network(uow: UnitOfWork) -> NetworkSnapshot:
    """Zones, locations and carriers (no stock), cached per database and network save."""
    key = uow.engine.url.render_as_string(hide_password=True)
    with uow:
        stamp = network_stamp(uow.conn)
        with _lock:
            hit = _snapshots.get(key)
            if hit and hit.stamp == stamp and time.monotonic() - hit.at < SNAPSHOT_TTL_S:
                return hit.snapshot
        snap = load_snapshot(uow.conn, with_stock=False)
    with _lock:
        _snapshots[key] = _Cached(stamp, time.monotonic(), snap)
    return snap


def has_router(uow: UnitOfWork) -> bool:
    with uow:
        return router_state(uow) is not None


def pickup_points(uow: UnitOfWork, near: tuple[float, float] | None, limit: int = 25
                  ) -> list[dict[str, Any]]:
    """Stores and pickup points, nearest to `near` first."""
    points = [loc for loc in network(uow).locations if loc.is_pickup_point]
    if near is not None:
        points.sort(key=lambda p: haversine_km(near[0], near[1], p.latitude, p.longitude))
    out = []
    for p in points[:limit]:
        km = haversine_km(near[0], near[1], p.latitude, p.longitude) if near else None
        out.append({"id": p.id, "name": p.name, "kind": p.kind.value,
                    "km": round(km, 1) if km is not None else None})
    return out


# ------------------------------------------------------------------------------ promise
def promise(uow_factory: Any, buyer_id: int | None, sku_code: str) -> dict[str, Any] | None:
    """The delivery date promised for one unit of a SKU to the buyer's default address.

    From the router (a what-if plan that takes no capacity) when a network is loaded;
    otherwise an estimate from the distance, labelled as such. None without an address."""
    if buyer_id is None:
        return None
    addresses = listings.addresses(uow_factory(), buyer_id)
    address = next((a for a in addresses if a["is_default"]), addresses[0] if addresses else None)
    if address is None:
        return None
    sku = get_sku(uow_factory(), sku_code)
    with uow_factory() as uow:
        row = uow.repos.catalog.sku_by_code(sku_code)
        cands_rows = uow.repos.stock.candidates(int(sku["seller_id"]), [int(row.id)])
        state = router_state(uow)
    per_loc: dict[int, dict[str, Any]] = {}
    for r in cands_rows:
        entry = per_loc.setdefault(r.location_id, {"lat": r.latitude, "lon": r.longitude,
                                                   "name": r.name, "avail": {}})
        entry["avail"][r.sku_id] = int(r.available)
    cands = [CandidateLocation(loc, e["lat"], e["lon"], e["avail"], e["name"])
             for loc, e in per_loc.items() if any(v > 0 for v in e["avail"].values())]
    where = address["city"] or "your address"
    if not cands:
        return {"source": "none", "text": "Out of stock: no delivery date", "city": where}
    today = dt.date.today()
    if state is not None and any(c.location_id in state.index.loc_pos for c in cands):
        request = OrderRequest(int(sku["seller_id"]), (OrderLineRequest(
            int(row.id), sku_code, 1, int(row.weight_g)),), float(address["latitude"]),
            float(address["longitude"]), int(address["zone_id"]))
        with state.lock:
            plan = state.policy.plan(request, cands)
        if plan.ok and plan.promised_date is not None:
            return {"source": "router", "date": plan.promised_date, "city": where,
                    "on_time": round(plan.on_time_probability * 100, 1),
                    "days": plan.promise_days}
    lat, lon = float(str(address["latitude"])), float(str(address["longitude"]))
    near = min(haversine_km(lat, lon, c.latitude, c.longitude) for c in cands)
    days = 1 + int(near // ESTIMATE_KM_PER_DAY)
    return {"source": "estimate", "date": today + dt.timedelta(days=days), "city": where,
            "days": days}


# ------------------------------------------------------------------------ order's way
def order_way(uow_factory: Any, view: OrderView) -> dict[str, Any]:
    """Where the parcels start (locations) and where they go (address or pickup point)."""
    with uow_factory() as uow:
        order = uow.repos.orders.get(view.id)
        sources: list[dict[str, Any]] = []
        for loc_id in sorted({a["location_id"] for a in view.allocations}):
            loc = uow.repos.locations.get(loc_id)
            if loc is not None:
                sources.append({"id": loc.id, "name": loc.name, "lat": loc.latitude,
                                "lon": loc.longitude})
        dest_name = "delivery address"
        if order.pickup_location_id is not None:
            point = uow.repos.locations.get(order.pickup_location_id)
            dest_name = f"pickup: {point.name}" if point is not None else "pickup point"
        elif order.address_id is not None:
            addr = uow.repos.buyers.address(order.address_id)
            if addr is not None:
                dest_name = addr.city or dest_name
    lat, lon = float(order.latitude), float(order.longitude)
    dest: dict[str, Any] = {"name": dest_name, "lat": lat, "lon": lon}
    km = [haversine_km(float(s["lat"]), float(s["lon"]), lat, lon) for s in sources]
    return {"sources": sources, "dest": dest, "km": round(max(km), 1) if km else None,
            "pickup": order.pickup_location_id is not None}


TIMELINE = ("created", "reserved", "paid", "ready_to_ship", "shipped", "delivered", "completed")


def timeline(view: OrderView) -> list[dict[str, Any]]:
    """Each step of the order's life, done (with its time) or still to come."""
    done = {e["to"]: e for e in view.events}
    steps = []
    for state in TIMELINE:
        e = done.get(state)
        steps.append({"state": state, "label": state.replace("_", " "), "done": e is not None,
                      "at": (e["at"] or "").replace("T", " ")[:16] if e else None,
                      "note": e["note"] if e else ""})
    for e in view.events:  # cancellations, refunds and other side roads
        if e["to"] not in TIMELINE:
            steps.append({"state": e["to"], "label": e["to"].replace("_", " "), "done": True,
                          "at": (e["at"] or "").replace("T", " ")[:16], "note": e["note"]})
    return steps


# ----------------------------------------------------------------------- order flows
def all_orders(uow_factory: Any, *, seller_id: int | None = None,
               limit: int = MAX_FLOW_ORDERS) -> list[dict[str, Any]]:
    """The newest orders (up to `limit`), page by page through the listing service."""
    out: list[dict[str, Any]] = []
    offset = 0
    while len(out) < limit:
        page = listings.list_orders(uow_factory(), seller_id=seller_id, limit=100,
                                    offset=offset)
        out.extend(page.items)
        if page.next_offset is None:
            break
        offset = page.next_offset
    return out[:limit]


def per_hour(orders: list[dict[str, Any]]) -> tuple[list[str], dict[str, list[int]]]:
    """Orders per hour of the latest day with orders, by service level."""
    stamps = [(o, dt.datetime.fromisoformat(o["created_at"])) for o in orders
              if o.get("created_at")]
    if not stamps:
        return [f"{h:02d}" for h in range(24)], {}
    day = max(s for _, s in stamps).date()
    series: dict[str, list[int]] = defaultdict(lambda: [0] * 24)
    for o, s in stamps:
        if s.date() == day:
            series[o["service"] or "standard"][s.hour] += 1
    return [f"{h:02d}" for h in range(24)], dict(sorted(series.items()))


def per_day(orders: list[dict[str, Any]], days: int = 14) -> list[tuple[str, int]]:
    """Items sold per day (minor units) over the last `days` days with orders."""
    totals: Counter[str] = Counter()
    for o in orders:
        if o.get("created_at") and o["state"] not in ("cancelled", "created"):
            totals[o["created_at"][:10]] += int(o["items_amount"])
    keys = sorted(totals)[-days:]
    return [(k[5:], totals[k]) for k in keys]


# ----------------------------------------------------------------------------- carriers
def carriers(uow_factory: Any) -> list[dict[str, Any]]:
    """Every carrier: tier, zones served, capacity, today's parcels routed, on-time rate."""
    snap = network(uow_factory())
    used: dict[int, int] = {}
    with uow_factory() as uow:
        state = router_state(uow)
    if state is not None:
        left = state.capacity.car_left
        for cid, pos in state.index.car_pos.items():
            used[int(cid)] = int(state.index.car_capacity[pos] - left[pos])
    out = []
    for c in snap.carriers:
        n = used.get(c.id, 0)
        out.append({"id": c.id, "name": c.name, "tier": c.tier.value, "zones": len(c.zones),
                    "capacity": c.daily_capacity, "used": n,
                    "used_pct": round(100 * n / c.daily_capacity, 1) if c.daily_capacity else 0,
                    "on_time": round(100 * c.on_time_rate, 1)})
    return out


# -------------------------------------------------------------------------- bench runs
def bench_path() -> Path:
    return Path(os.environ.get(BENCH_ENV) or BENCH_DEFAULT)


def latest_bench() -> dict[str, Any] | None:
    """The saved output of `silkroute bench route --json` (see docs/console.md), or None."""
    path = bench_path()
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("policies"), dict):
        return None
    data["path"] = str(path)
    data["saved_at"] = dt.datetime.fromtimestamp(path.stat().st_mtime).strftime(
        "%Y-%m-%d %H:%M")
    return data


# ------------------------------------------------------------------------- why a route
COST_TERMS = ("shipping", "handling", "lateness", "split", "opportunity")


def why(view: OrderView, uow_factory: Any) -> dict[str, Any] | None:
    """The plan the router chose, with names, beside the alternatives it rejected."""
    plan = view.plan if isinstance(view.plan, dict) else None
    if not plan or "cost" not in plan:
        return None
    snap = network(uow_factory())
    loc_names = {loc.id: loc.name for loc in snap.locations}
    car_names = {c.id: c.name for c in snap.carriers}

    def name_of(loc: int | None, car: int | None) -> str:
        where = loc_names.get(loc or 0, f"location {loc}")
        how = car_names.get(car or 0, f"carrier {car}") if car is not None else "collected"
        return f"{where} → {how}"

    chosen = [{"route": name_of(p.get("location_id"), p.get("carrier_id")),
               "cost": p.get("cost", {}), "on_time": p.get("on_time_probability")}
              for p in plan.get("parcels", [])]
    alts = [{"route": " + ".join(name_of(x[0], x[1]) for x in a.get("parcels", [])),
             "cost": float(a.get("cost", 0.0)), "note": a.get("note", "")}
            for a in plan.get("alternatives", [])]
    total = float(plan["cost"].get("total", 0.0))
    bars = [("chosen", total)] + [(f"alt {i + 1}", a["cost"]) for i, a in enumerate(alts)]
    return {"cost": plan["cost"], "terms": COST_TERMS, "total": total, "parcels": chosen,
            "alternatives": alts, "promise_days": plan.get("promise_days"),
            "on_time": plan.get("on_time_probability"), "bars": bars,
            "policy": plan.get("policy", view.policy)}
