"""Control tower pages: network map, order flow, carriers, baselines and "why this route"."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from silkroute.console import data, svg
from silkroute.console.web import need, page, render, see_other, uows
from silkroute.services import listings
from silkroute.services.queries import get_order

router = APIRouter(prefix="/ops", include_in_schema=False)
TOP_CARRIERS = 10
CARRIER_PAGE = 50


@router.get("")
@page
def tower(request: Request, carrier: Annotated[int | None, Query(ge=1)] = None) -> Response:
    need(request, "operator")
    snap = data.network(uows(request)())
    covered = None
    chosen = None
    if carrier is not None:
        chosen = next((c for c in snap.carriers if c.id == carrier), None)
        covered = set(chosen.zones) if chosen else set()
    orders = data.all_orders(uows(request))
    hours, series = data.per_hour(orders)
    carriers = data.carriers(uows(request))
    top = sorted(carriers, key=lambda c: (-c["used"], -c["capacity"], c["id"]))[:TOP_CARRIERS]
    bench = data.latest_bench()
    summary = listings.market_summary(uows(request)())
    title = ("Map of zones and locations" + (f"; zones served by {chosen.name} filled"
                                              if chosen else ""))
    return render(request, "ops.html", {
        "tab": "tower", "summary": summary, "snap": snap, "chosen": chosen,
        "map": svg.network_map(snap.zones, snap.locations, title, covered),
        "flow": svg.stacked(hours, series, "Orders per hour by service level (latest day)"),
        "series": series, "hours": hours, "top": top, "n_carriers": len(carriers),
        "has_router": data.has_router(uows(request)()), "bench": bench,
        "bench_path": str(data.bench_path()),
        "recent": orders[:10]})


@router.get("/carriers")
@page
def carriers(request: Request, q: Annotated[str, Query(max_length=100)] = "",
             tier: Annotated[str, Query(max_length=20)] = "",
             sort: Annotated[str, Query(pattern="^(id|name|used|on_time|capacity)$")] = "used",
             offset: Annotated[int, Query(ge=0, le=10**7)] = 0) -> Response:
    need(request, "operator")
    rows = data.carriers(uows(request))
    needle = q.strip().lower()
    if needle:
        rows = [c for c in rows if needle in c["name"].lower() or needle == str(c["id"])]
    if tier:
        rows = [c for c in rows if c["tier"] == tier]
    reverse = sort in ("used", "on_time", "capacity")
    rows.sort(key=lambda c: (c[sort], -c["id"] if reverse else c["id"]), reverse=reverse)
    shown = rows[offset:offset + CARRIER_PAGE]
    return render(request, "ops_carriers.html", {
        "tab": "carriers", "rows": shown, "total": len(rows), "q": q, "tier": tier,
        "sort": sort, "offset": offset, "page": CARRIER_PAGE,
        "tiers": ("national", "regional", "local", "same_day")})


@router.get("/orders")
@page
def orders(request: Request, order_id: Annotated[str, Query(max_length=12)] = "",
           offset: Annotated[int, Query(ge=0, le=10**7)] = 0) -> Response:
    need(request, "operator")
    if order_id.strip().isdigit():
        return see_other(f"/ops/orders/{int(order_id.strip())}")
    listing = listings.list_orders(uows(request)(), limit=25, offset=offset)
    return render(request, "ops_orders.html", {"tab": "orders", "orders": listing,
                                               "offset": offset})


@router.get("/orders/{order_id}")
@page
def why_route(request: Request, order_id: int) -> Response:
    need(request, "operator")
    view = get_order(uows(request)(), order_id)
    why = data.why(view, uows(request))
    way = data.order_way(uows(request), view)
    chart = None
    if why is not None:
        chart = svg.bars(why["bars"], f"Cost of the chosen plan and of the alternatives, "
                                      f"order {view.id}", highlight=0)
    return render(request, "ops_why.html", {
        "tab": "orders", "order": view, "why": why, "chart": chart,
        "map": svg.way_map(way["sources"], way["dest"], f"Map: the way of order {view.id}")})
