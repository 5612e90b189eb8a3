"""Builders and invariant checks shared by the money tests."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, select

from silkroute.domain.money import Money
from silkroute.domain.shipping import ShippingTemplate
from silkroute.services import ledger_check, payments
from silkroute.store import money_tables as mt
from silkroute.store import tables as t
from silkroute.store.uow import UnitOfWork
from tests.integration.helpers import Market, UowFactory, small_market

APPROVE = "4242 4242 4242 4242"
DECLINE = "4000 0000 0000 0002"
TIMEOUT = "4000 0000 0000 0119"
RETRY = "4000 0000 0000 3220"


def money_market(uow: UowFactory, units: int = 20) -> Market:
    """small_market with stock, a flat ₩3,000 template free from ₩50,000, and a card."""
    m = small_market(uow, stock={("TEA-1", "seoul"): units, ("MUG-1", "seoul"): units})
    payments.set_shipping_template(uow(), m.seller_id, ShippingTemplate.flat(
        Money(3000, "KRW"), free_threshold=Money(50000, "KRW")))
    payments.add_card(uow(), m.buyer_seoul, APPROVE)
    return m


def balances(uow: UowFactory) -> dict[str, int]:
    with uow() as u:
        return u.repos.ledger.balances()


def ledger_size(uow: UowFactory) -> tuple[int, int]:
    with uow() as u:
        return (u.repos.money.count(mt.ledger_transactions),
                u.repos.money.count(mt.ledger_postings))


def reserved_total(engine: Engine) -> int:
    with engine.connect() as conn:
        return sum(r.reserved for r in conn.execute(select(t.stock)))


def assert_invariants(engine: Engine) -> None:
    """Ledger invariants, stock consistency, and no payable paid twice at the provider."""
    res = ledger_check.check(UnitOfWork(engine))
    assert res.violations == (), res.violations
    with engine.connect() as conn:
        stock = {(r.sku_id, r.location_id): (r.on_hand, r.reserved)
                 for r in conn.execute(select(t.stock))}
        held: dict[tuple[int, int], int] = {}
        for a in conn.execute(select(t.allocations.c.sku_id, t.allocations.c.location_id,
                                     t.allocations.c.quantity, t.allocations.c.status,
                                     t.orders.c.state)
                              .join(t.orders, t.orders.c.id == t.allocations.c.order_id)):
            if a.status == "reserved":
                assert a.state in ("reserved", "paid", "ready_to_ship"), a
                k = (a.sku_id, a.location_id)
                held[k] = held.get(k, 0) + a.quantity
        for k, (on_hand, reserved) in stock.items():
            assert 0 <= reserved <= on_hand, (k, on_hand, reserved)
            assert reserved == held.get(k, 0), (k, reserved, held.get(k, 0))
        payouts: list[Any] = list(conn.execute(select(mt.payouts)))
        seen = set()
        for p in payouts:
            assert (p.batch_id, p.account) not in seen
            seen.add((p.batch_id, p.account))
