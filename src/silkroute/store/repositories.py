"""Repositories: the only place that speaks SQL for the marketplace's aggregates."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, bindparam, func, insert, select, update

from silkroute.store import tables as t
from silkroute.store.ledger_repo import LedgerRepo
from silkroute.store.money_repo import MoneyRepo
from silkroute.store.sql import Guard, insert_id, insert_rows, keep_guard


class _Repo:
    def __init__(self, conn: Connection):
        self.conn = conn


class SellerRepo(_Repo):
    def add(self, name: str) -> int:
        return insert_id(self.conn, t.sellers, dict(name=name))

    def get(self, seller_id: int) -> Any:
        return self.conn.execute(select(t.sellers).where(t.sellers.c.id == seller_id)).first()

    def add_shop(self, seller_id: int, name: str, currency: str) -> int:
        return insert_id(self.conn, t.shops, dict(
            seller_id=seller_id, name=name, currency=currency))

    def shop_of(self, seller_id: int) -> Any:
        return self.conn.execute(select(t.shops).where(t.shops.c.seller_id == seller_id)).first()


class ZoneRepo(_Repo):
    def ensure(self, zone_id: int, name: str, country: str, latitude: float, longitude: float,
               population: int) -> int:
        """Insert the zone unless it exists; zones are keyed by GeoNames id."""
        if self.get(zone_id) is None:
            self.conn.execute(insert(t.zones).values(
                id=zone_id, name=name, country=country, latitude=latitude,
                longitude=longitude, population=population))
        return zone_id

    def get(self, zone_id: int) -> Any:
        return self.conn.execute(select(t.zones).where(t.zones.c.id == zone_id)).first()


class LocationRepo(_Repo):
    def add(self, **values: Any) -> int:
        return insert_id(self.conn, t.locations, values)

    def get(self, location_id: int) -> Any:
        return self.conn.execute(
            select(t.locations).where(t.locations.c.id == location_id)).first()

    def of_seller(self, seller_id: int) -> Sequence[Any]:
        return self.conn.execute(
            select(t.locations).where(t.locations.c.seller_id == seller_id)
            .order_by(t.locations.c.id)).all()

    def by_name(self, seller_id: int, name: str) -> Any:
        return self.conn.execute(select(t.locations).where(
            t.locations.c.seller_id == seller_id, t.locations.c.name == name)).first()


class CatalogRepo(_Repo):
    def add_product(self, seller_id: int, title: str, category: str) -> int:
        return insert_id(self.conn, t.products, dict(
            seller_id=seller_id, title=title, category=category))

    def add_sku(self, **values: Any) -> int:
        return insert_id(self.conn, t.skus, values)

    def existing_codes(self, codes: Iterable[str]) -> set[str]:
        codes = list(codes)
        found: set[str] = set()
        for start in range(0, len(codes), 500):
            chunk = codes[start:start + 500]
            found.update(self.conn.execute(
                select(t.skus.c.code).where(t.skus.c.code.in_(chunk))).scalars())
        return found

    def sku_by_code(self, code: str) -> Any:
        return self.conn.execute(select(t.skus).where(t.skus.c.code == code)).first()

    def skus_by_code(self, codes: Iterable[str]) -> dict[str, Any]:
        codes = sorted(set(codes))
        rows = self.conn.execute(select(t.skus, t.products.c.category).join(
            t.products, t.products.c.id == t.skus.c.product_id).where(
            t.skus.c.code.in_(codes))).all()
        return {r.code: r for r in rows}

    def count_products(self) -> int:
        return int(self.conn.execute(select(func.count()).select_from(t.products)).scalar_one())


# Built once: the checkout runs these on every order (see store/sql.py for why).
_CANDIDATES = (
    select(t.locations.c.id.label("location_id"), t.locations.c.name,
           t.locations.c.latitude, t.locations.c.longitude, t.stock.c.sku_id,
           (t.stock.c.on_hand - t.stock.c.reserved).label("available"))
    .join(t.stock, t.stock.c.location_id == t.locations.c.id)
    .where(t.locations.c.seller_id == bindparam("seller_id"),
           t.stock.c.sku_id.in_(bindparam("sku_ids", expanding=True)))
    .order_by(t.locations.c.id, t.stock.c.sku_id))
_RESERVE = (
    update(t.stock)
    .where(t.stock.c.sku_id == bindparam("want_sku"),
           t.stock.c.location_id == bindparam("want_location"),
           t.stock.c.on_hand - t.stock.c.reserved >= bindparam("want_qty"))
    .values(reserved=t.stock.c.reserved + bindparam("want_qty")))
_META = select(t.demo_marker.c.value).where(t.demo_marker.c.key == bindparam("key"))
_MOVE = (
    update(t.orders)
    .where(t.orders.c.id.in_(bindparam("ids", expanding=True)),
           t.orders.c.state == bindparam("from_state"))
    .values(state=bindparam("to_state"), updated_at=func.now()))


_RESERVE_SQL = ("UPDATE stock SET reserved = reserved + %s WHERE sku_id = %s::INTEGER "
                "AND location_id = %s::INTEGER AND on_hand - reserved >= %s RETURNING 1")


def _more_reserved(kept: Guard, new: Guard) -> Guard:
    """Two kept reservations of one (SKU, location) as one: both quantities, or neither
    (the transaction fails as a whole when their sum is not there)."""
    qty = kept.params[0] + new.params[0]
    return kept._replace(params=(qty, kept.params[1], kept.params[2], qty))


@functools.lru_cache(maxsize=16)
def _move_all_sql(n: int) -> str:
    # An IN list of plain integers: psycopg adapts those in C, an array in Python.
    return ("UPDATE orders SET state = %s, updated_at = now() WHERE id IN ("
            + ", ".join(["%s::INTEGER"] * n) + ") AND state = %s RETURNING 1")


class StockRepo(_Repo):
    def set_on_hand(self, sku_id: int, location_id: int, on_hand: int) -> bool:
        """Set on hand where it stays ≥ reserved; insert the row when missing.

        Returns False (and changes nothing) when reserved units exceed the new on hand.
        """
        res = self.conn.execute(
            update(t.stock)
            .where(t.stock.c.sku_id == sku_id, t.stock.c.location_id == location_id,
                   t.stock.c.reserved <= on_hand)
            .values(on_hand=on_hand))
        if res.rowcount == 1:
            return True
        if self.get(sku_id, location_id) is None:
            self.conn.execute(insert(t.stock).values(
                sku_id=sku_id, location_id=location_id, on_hand=on_hand, reserved=0))
            return True
        return False

    def get(self, sku_id: int, location_id: int) -> Any:
        return self.conn.execute(select(t.stock).where(
            t.stock.c.sku_id == sku_id, t.stock.c.location_id == location_id)).first()

    def candidates(self, seller_id: int, sku_ids: Sequence[int]) -> Sequence[Any]:
        """Per location of the seller: the available units of each of these SKUs."""
        return self.conn.execute(_CANDIDATES, {"seller_id": seller_id,
                                               "sku_ids": list(sku_ids)}).all()

    def reserve(self, sku_id: int, location_id: int, quantity: int) -> bool:
        """Conditional update: reserve only while available ≥ quantity. True if it did."""
        res = self.conn.execute(_RESERVE, {"want_sku": sku_id, "want_location": location_id,
                                           "want_qty": quantity})
        return res.rowcount == 1

    def reserve_kept(self, sku_id: int, location_id: int, quantity: int,
                     failed: Callable[[int], None]) -> bool:
        """`reserve`, kept to travel with the transaction's kept rows (store/sql.py) where
        `failed` raises if too little stock is left by then. False when this unit of work
        does not keep writes: call `reserve`."""
        return keep_guard(self.conn, Guard(_RESERVE_SQL, (quantity, sku_id, location_id,
                                                          quantity), 1, failed,
                                           ("stock", sku_id, location_id), _more_reserved))

    def release(self, sku_id: int, location_id: int, quantity: int) -> bool:
        res = self.conn.execute(
            update(t.stock)
            .where(t.stock.c.sku_id == sku_id, t.stock.c.location_id == location_id,
                   t.stock.c.reserved >= quantity)
            .values(reserved=t.stock.c.reserved - quantity))
        return res.rowcount == 1

    def consume(self, sku_id: int, location_id: int, quantity: int) -> bool:
        """Units leave the building: on hand and reserved both drop."""
        res = self.conn.execute(
            update(t.stock)
            .where(t.stock.c.sku_id == sku_id, t.stock.c.location_id == location_id,
                   t.stock.c.reserved >= quantity)
            .values(reserved=t.stock.c.reserved - quantity,
                    on_hand=t.stock.c.on_hand - quantity))
        return res.rowcount == 1

    def restock(self, sku_id: int, location_id: int, quantity: int) -> None:
        self.conn.execute(
            update(t.stock)
            .where(t.stock.c.sku_id == sku_id, t.stock.c.location_id == location_id)
            .values(on_hand=t.stock.c.on_hand + quantity))

    def totals(self) -> Sequence[Any]:
        return self.conn.execute(select(t.stock).order_by(
            t.stock.c.location_id, t.stock.c.sku_id)).all()


class BuyerRepo(_Repo):
    def add(self, name: str) -> int:
        return insert_id(self.conn, t.buyers, dict(name=name))

    def get(self, buyer_id: int) -> Any:
        return self.conn.execute(select(t.buyers).where(t.buyers.c.id == buyer_id)).first()

    def add_address(self, **values: Any) -> int:
        if values.get("is_default"):
            self.conn.execute(update(t.addresses).where(
                t.addresses.c.buyer_id == values["buyer_id"]).values(is_default=False))
        return insert_id(self.conn, t.addresses, values)

    def address(self, address_id: int) -> Any:
        return self.conn.execute(
            select(t.addresses).where(t.addresses.c.id == address_id)).first()

    def default_address(self, buyer_id: int) -> Any:
        return self.conn.execute(select(t.addresses).where(
            t.addresses.c.buyer_id == buyer_id).order_by(
            t.addresses.c.is_default.desc(), t.addresses.c.id)).first()


class OrderRepo(_Repo):
    def add_checkout(self, buyer_id: int) -> int:
        return insert_id(self.conn, t.checkouts, dict(buyer_id=buyer_id))

    def add(self, **values: Any) -> int:
        return insert_id(self.conn, t.orders, values)

    def add_line(self, **values: Any) -> int:
        return insert_id(self.conn, t.order_lines, values)

    def add_allocations(self, rows: list[dict[str, Any]]) -> None:
        insert_rows(self.conn, t.allocations, rows)

    def add_events(self, order_id: int, moves: list[tuple[str | None, str]]) -> None:
        """Record several moves of one order in one statement."""
        insert_rows(self.conn, t.order_events, [
            {"order_id": order_id, "from_state": a, "to_state": b, "note": ""}
            for a, b in moves])

    def add_event(self, order_id: int, from_state: str | None, to_state: str,
                  note: str = "") -> None:
        insert_rows(self.conn, t.order_events, [{
            "order_id": order_id, "from_state": from_state, "to_state": to_state,
            "note": note}])

    def get(self, order_id: int) -> Any:
        return self.conn.execute(select(t.orders).where(t.orders.c.id == order_id)).first()

    def of_checkout(self, checkout_id: int) -> Sequence[Any]:
        return self.conn.execute(select(t.orders).where(
            t.orders.c.checkout_id == checkout_id).order_by(t.orders.c.id)).all()

    def lines(self, order_id: int) -> Sequence[Any]:
        return self.conn.execute(
            select(t.order_lines, t.skus.c.code)
            .join(t.skus, t.skus.c.id == t.order_lines.c.sku_id)
            .where(t.order_lines.c.order_id == order_id).order_by(t.order_lines.c.id)).all()

    def allocations(self, order_id: int, status: str | None = None) -> Sequence[Any]:
        q = select(t.allocations).where(t.allocations.c.order_id == order_id)
        if status is not None:
            q = q.where(t.allocations.c.status == status)
        return self.conn.execute(q.order_by(t.allocations.c.location_id,
                                            t.allocations.c.sku_id)).all()

    def set_allocation_status(self, order_id: int, old: str, new: str) -> int:
        return self.conn.execute(update(t.allocations).where(
            t.allocations.c.order_id == order_id, t.allocations.c.status == old)
            .values(status=new)).rowcount

    def events(self, order_id: int) -> Sequence[Any]:
        return self.conn.execute(select(t.order_events).where(
            t.order_events.c.order_id == order_id).order_by(t.order_events.c.id)).all()

    def move(self, order_id: int, from_state: str, to_state: str) -> bool:
        """Compare-and-set the state: only one concurrent caller wins a transition."""
        return self.move_many([order_id], from_state, to_state) == 1

    def move_all(self, order_ids: Sequence[int], from_state: str, to_state: str,
                 failed: Callable[[int], None]) -> None:
        """Compare-and-set every order from `from_state`; `failed(moved)` raises unless all
        moved. In a write-behind unit of work (PostgreSQL) the update travels with the kept
        inserts and the check runs when they are sent (store/sql.py)."""
        ids = list(order_ids)
        if keep_guard(self.conn, Guard(_move_all_sql(len(ids)), (to_state, *ids, from_state),
                                       len(ids), failed)):
            return
        moved = self.move_many(ids, from_state, to_state)
        if moved != len(ids):
            failed(moved)

    def move_many(self, order_ids: Sequence[int], from_state: str, to_state: str) -> int:
        """Compare-and-set several orders from one state; returns how many moved."""
        res = self.conn.execute(_MOVE, {"ids": list(order_ids), "from_state": from_state,
                                        "to_state": to_state})
        return int(res.rowcount)

    def count_by_state(self) -> dict[str, int]:
        rows = self.conn.execute(
            select(t.orders.c.state, func.count()).group_by(t.orders.c.state)).all()
        return {r[0]: int(r[1]) for r in rows}


class MetaRepo(_Repo):
    def get(self, key: str) -> str | None:
        return self.conn.execute(_META, {"key": key}).scalar_one_or_none()

    def set(self, key: str, value: str) -> None:
        if self.get(key) is None:
            self.conn.execute(insert(t.demo_marker).values(key=key, value=value))
        else:
            self.conn.execute(update(t.demo_marker).where(t.demo_marker.c.key == key)
                              .values(value=value))


class OutboxRepo(_Repo):
    def add(self, topic: str, payload: dict[str, Any]) -> None:
        self.conn.execute(insert(t.outbox).values(topic=topic, payload=payload))


class Repositories:
    """All repositories bound to one connection (one transaction)."""

    def __init__(self, conn: Connection):
        self.sellers = SellerRepo(conn)
        self.zones = ZoneRepo(conn)
        self.locations = LocationRepo(conn)
        self.catalog = CatalogRepo(conn)
        self.stock = StockRepo(conn)
        self.buyers = BuyerRepo(conn)
        self.orders = OrderRepo(conn)
        self.meta = MetaRepo(conn)
        self.outbox = OutboxRepo(conn)
        self.ledger = LedgerRepo(conn)
        self.money = MoneyRepo(conn)


