"""Read-side use cases: an order with its lines, allocations and history."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from silkroute.domain.errors import NotFound
from silkroute.domain.money import Money
from silkroute.store.uow import UnitOfWork


@dataclass(frozen=True)
class OrderView:
    id: int
    checkout_id: int
    buyer_id: int
    seller_id: int
    state: str
    currency: str
    items_amount: int
    shipping_amount: int
    service: str
    policy: str
    lines: list[dict[str, Any]]
    allocations: list[dict[str, Any]]
    events: list[dict[str, Any]]
    plan: Any

    @property
    def total(self) -> Money:
        return Money(self.items_amount + self.shipping_amount, self.currency)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["total"] = {"amount": self.total.amount, "currency": self.currency,
                         "formatted": self.total.format()}
        return data


def get_order(uow: UnitOfWork, order_id: int) -> OrderView:
    with uow:
        repos = uow.repos
        order = repos.orders.get(order_id)
        if order is None:
            raise NotFound(f"order_id: no order {order_id}", field="order_id")
        lines = [{"sku": ln.code, "quantity": ln.quantity, "unit_price": int(ln.unit_price)}
                 for ln in repos.orders.lines(order_id)]
        allocs = [{"sku_id": a.sku_id, "location_id": a.location_id, "quantity": a.quantity,
                   "carrier_id": a.carrier_id, "status": a.status}
                  for a in repos.orders.allocations(order_id)]
        events = [{"from": e.from_state, "to": e.to_state, "note": e.note,
                   "at": e.created_at.isoformat() if e.created_at else None}
                  for e in repos.orders.events(order_id)]
        return OrderView(order.id, order.checkout_id, order.buyer_id, order.seller_id,
                         order.state, order.currency, int(order.items_amount),
                         int(order.shipping_amount), order.service, order.policy, lines,
                         allocs, events, order.plan)
