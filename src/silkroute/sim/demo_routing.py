"""The demo's logistics: carriers for its cities, and the router judged against a baseline."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
from sqlalchemy import Engine, select

from silkroute.bench.route import MAX_PARCELS, replay
from silkroute.routing.capacity import CapacityState
from silkroute.routing.cost import CostModel
from silkroute.routing.index import NetworkIndex, build_index
from silkroute.routing.policy import OrderLineRequest, OrderRequest
from silkroute.sim.network import NetworkSpec, generate_network
from silkroute.store import tables as t
from silkroute.store.network_repo import load_snapshot, store_network
from silkroute.store.uow import UnitOfWork

BASELINE = "nearest-cheapest"


def contract_carriers(engine: Engine, *, carriers: int, orders: int, seed: int) -> int:
    """Generate and save the carriers of a South Korean network sized for `orders` a day.

    Only the carriers (and the cities they serve) are saved: the demo's sellers keep their
    own warehouses and stores, which the router reads from the database like any other.
    """
    net = generate_network(NetworkSpec("KR", carriers=carriers, locations=10, seed=seed,
                                       design_orders=orders))
    only_carriers = dataclasses.replace(net, locations=[], skus=[], stock=[])
    with UnitOfWork(engine) as uow:
        store_network(uow.conn, only_carriers, network_ref=f"demo-carriers-{seed}")
    return len(net.carriers)


def starting_index(engine: Engine) -> NetworkIndex:
    """The network and stock as they are before the day starts."""
    with engine.connect() as conn:
        return build_index(load_snapshot(conn))


def requests_of(engine: Engine, order_ids: list[int]) -> list[OrderRequest]:
    """The placed orders as the router saw them, in the order they were placed."""
    wanted = set(order_ids)
    with engine.connect() as conn:
        orders = {r.id: r for r in conn.execute(select(t.orders).order_by(t.orders.c.id))
                  if r.id in wanted}
        lines: dict[int, list[OrderLineRequest]] = {}
        for r in conn.execute(
                select(t.order_lines.c.order_id, t.order_lines.c.sku_id,
                       t.order_lines.c.quantity, t.skus.c.code, t.skus.c.weight_g)
                .join(t.skus, t.skus.c.id == t.order_lines.c.sku_id)
                .order_by(t.order_lines.c.id)):
            if r.order_id in wanted:
                lines.setdefault(r.order_id, []).append(
                    OrderLineRequest(r.sku_id, r.code, r.quantity, r.weight_g))
    return [OrderRequest(o.seller_id, tuple(lines[o.id]), o.latitude, o.longitude, o.zone_id,
                         o.service, o.pickup_location_id, order_ref=str(o.id))
            for oid in order_ids if (o := orders.get(oid)) is not None]


def compare_with_baseline(index: NetworkIndex, requests: list[OrderRequest], seed: int
                          ) -> dict[str, dict[str, Any]]:
    """Replay the day's orders from the same starting stock and capacity through the
    router and the baseline; both judged by one cost model and one draw of luck."""
    model = CostModel.for_currency(index.currency)
    luck = np.random.default_rng([seed, 99]).random((len(requests), MAX_PARCELS))
    start = CapacityState.fresh(index)
    return {name: replay(name, requests, index, start, model, luck)
            for name in ("silkroute", BASELINE)}
