"""Read-side SQL for the API: catalogue search, paged order lists, per-tenant listings."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Select, func, select

from silkroute.store import tables as t

SORTS = ("newest", "price_asc", "price_desc", "title")


@dataclass(frozen=True)
class SkuFilter:
    text: str | None = None
    category: str | None = None
    min_price: int | None = None
    max_price: int | None = None
    currency: str | None = None
    seller_id: int | None = None
    sort: str = "newest"


def _available() -> Any:
    return (select(t.stock.c.sku_id,
                   func.sum(t.stock.c.on_hand - t.stock.c.reserved).label("available"))
            .group_by(t.stock.c.sku_id).subquery("avail"))


def _sku_select() -> tuple[Select[Any], Any]:
    avail = _available()
    q = (select(t.skus.c.id, t.skus.c.code, t.skus.c.product_id, t.skus.c.seller_id,
                t.skus.c.attributes, t.skus.c.price_amount, t.skus.c.currency,
                t.skus.c.weight_g, t.skus.c.on_sale, t.products.c.title,
                t.products.c.category,
                func.coalesce(avail.c.available, 0).label("available"))
         .join(t.products, t.products.c.id == t.skus.c.product_id)
         .outerjoin(avail, avail.c.sku_id == t.skus.c.id))
    return q, avail


def search_skus(conn: Connection, f: SkuFilter, limit: int, offset: int
                ) -> tuple[Sequence[Any], int]:
    """SKUs on sale matching the filter, one page of them, and how many match in all."""
    q, _ = _sku_select()
    q = q.where(t.skus.c.on_sale.is_(True))
    if f.text:
        q = q.where(t.products.c.title.icontains(f.text, autoescape=True)
                    | t.skus.c.code.icontains(f.text, autoescape=True)
                    | t.products.c.category.icontains(f.text, autoescape=True))
    if f.category:
        q = q.where(t.products.c.category == f.category)
    if f.min_price is not None:
        q = q.where(t.skus.c.price_amount >= f.min_price)
    if f.max_price is not None:
        q = q.where(t.skus.c.price_amount <= f.max_price)
    if f.currency:
        q = q.where(t.skus.c.currency == f.currency)
    if f.seller_id is not None:
        q = q.where(t.skus.c.seller_id == f.seller_id)
    total = int(conn.execute(select(func.count()).select_from(q.subquery())).scalar_one())
    order = {
        "newest": (t.skus.c.id.desc(),),
        "price_asc": (t.skus.c.price_amount.asc(), t.skus.c.id.asc()),
        "price_desc": (t.skus.c.price_amount.desc(), t.skus.c.id.asc()),
        "title": (t.products.c.title.asc(), t.skus.c.id.asc()),
    }[f.sort]
    rows = conn.execute(q.order_by(*order).limit(limit).offset(offset)).all()
    return rows, total


def sku_by_code(conn: Connection, code: str) -> Any:
    q, _ = _sku_select()
    return conn.execute(q.where(t.skus.c.code == code)).first()


def skus_of_products(conn: Connection, product_ids: Sequence[int]) -> Sequence[Any]:
    if not product_ids:
        return []
    q, _ = _sku_select()
    return conn.execute(q.where(t.skus.c.product_id.in_(product_ids))
                        .order_by(t.skus.c.id)).all()


def products_of_seller(conn: Connection, seller_id: int, limit: int, offset: int
                       ) -> tuple[Sequence[Any], int]:
    q = select(t.products).where(t.products.c.seller_id == seller_id)
    total = int(conn.execute(select(func.count()).select_from(q.subquery())).scalar_one())
    rows = conn.execute(q.order_by(t.products.c.id).limit(limit).offset(offset)).all()
    return rows, total


def orders_page(conn: Connection, *, buyer_id: int | None = None, seller_id: int | None = None,
                state: str | None = None, limit: int, offset: int
                ) -> tuple[Sequence[Any], int]:
    """Orders, newest first, optionally of one buyer, one seller and/or in one state."""
    q = select(t.orders)
    if buyer_id is not None:
        q = q.where(t.orders.c.buyer_id == buyer_id)
    if seller_id is not None:
        q = q.where(t.orders.c.seller_id == seller_id)
    if state is not None:
        q = q.where(t.orders.c.state == state)
    total = int(conn.execute(select(func.count()).select_from(q.subquery())).scalar_one())
    rows = conn.execute(q.order_by(t.orders.c.id.desc()).limit(limit).offset(offset)).all()
    return rows, total


def addresses_of(conn: Connection, buyer_id: int) -> Sequence[Any]:
    return conn.execute(select(t.addresses).where(t.addresses.c.buyer_id == buyer_id)
                        .order_by(t.addresses.c.id)).all()


def stock_of_seller(conn: Connection, seller_id: int, location_id: int | None = None
                    ) -> Sequence[Any]:
    """Stock rows of a seller's SKUs at the seller's locations."""
    q = (select(t.skus.c.code.label("sku"), t.stock.c.location_id, t.stock.c.on_hand,
                t.stock.c.reserved)
         .join(t.skus, t.skus.c.id == t.stock.c.sku_id)
         .join(t.locations, t.locations.c.id == t.stock.c.location_id)
         .where(t.skus.c.seller_id == seller_id, t.locations.c.seller_id == seller_id))
    if location_id is not None:
        q = q.where(t.stock.c.location_id == location_id)
    return conn.execute(q.order_by(t.stock.c.location_id, t.skus.c.code)).all()


def market_counts(conn: Connection) -> dict[str, int]:
    def count(table: Any) -> int:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())

    return {"buyers": count(t.buyers), "sellers": count(t.sellers),
            "products": count(t.products), "skus": count(t.skus),
            "locations": count(t.locations), "orders": count(t.orders)}


def payment_methods_of(conn: Connection, buyer_id: int) -> Sequence[Any]:
    """A buyer's saved payment methods (never the provider token)."""
    from silkroute.store.money_tables import payment_methods as pm

    return conn.execute(select(pm.c.id, pm.c.last4, pm.c.currency, pm.c.is_default)
                        .where(pm.c.buyer_id == buyer_id).order_by(pm.c.id)).all()


def busiest_buyer(conn: Connection) -> int | None:
    """The buyer with the most orders (lowest id on a tie), or None without orders."""
    n = func.count().label("n")
    row = conn.execute(select(t.orders.c.buyer_id, n).group_by(t.orders.c.buyer_id)
                       .order_by(n.desc(), t.orders.c.buyer_id).limit(1)).first()
    return int(row.buyer_id) if row is not None else None
