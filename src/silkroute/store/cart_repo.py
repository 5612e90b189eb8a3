"""SQL for the buyers' carts (table `cart_lines`)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, delete, func, select
from sqlalchemy.dialects import postgresql, sqlite

from silkroute.store import tables as t
from silkroute.store.cart_tables import cart_lines as cl


class CartRepo:
    def __init__(self, conn: Connection):
        self.conn = conn

    def lines(self, buyer_id: int) -> Sequence[Any]:
        """The buyer's lines in the order they were first added, each with its SKU's code,
        title, seller, price, currency, whether it is on sale and the units available now
        (on hand less reserved, over every location)."""
        avail = (select(t.stock.c.sku_id,
                        func.sum(t.stock.c.on_hand - t.stock.c.reserved).label("available"))
                 .where(t.stock.c.sku_id.in_(select(cl.c.sku_id)
                                              .where(cl.c.buyer_id == buyer_id)))
                 .group_by(t.stock.c.sku_id).subquery("avail"))
        return self.conn.execute(
            select(cl.c.sku_id, cl.c.quantity, t.skus.c.code, t.skus.c.seller_id,
                   t.skus.c.price_amount, t.skus.c.currency, t.skus.c.on_sale,
                   t.products.c.title, func.coalesce(avail.c.available, 0).label("available"))
            .join(t.skus, t.skus.c.id == cl.c.sku_id)
            .join(t.products, t.products.c.id == t.skus.c.product_id)
            .outerjoin(avail, avail.c.sku_id == cl.c.sku_id)
            .where(cl.c.buyer_id == buyer_id).order_by(cl.c.id)).all()

    def quantity(self, buyer_id: int, sku_id: int) -> int | None:
        return self.conn.execute(select(cl.c.quantity).where(
            cl.c.buyer_id == buyer_id, cl.c.sku_id == sku_id)).scalar_one_or_none()

    def count(self, buyer_id: int) -> int:
        return int(self.conn.execute(select(func.count()).select_from(cl)
                                     .where(cl.c.buyer_id == buyer_id)).scalar_one())

    def put(self, buyer_id: int, sku_id: int, quantity: int) -> None:
        """Set a line's quantity, adding the line if it is not there: one INSERT ... ON
        CONFLICT DO UPDATE, so two requests racing to add the same line both succeed (the
        later one's quantity stays) instead of one failing on the unique pair."""
        dialect = postgresql if self.conn.dialect.name == "postgresql" else sqlite
        stmt = dialect.insert(cl).values(buyer_id=buyer_id, sku_id=sku_id, quantity=quantity,
                                         updated_at=datetime.now(UTC))
        self.conn.execute(stmt.on_conflict_do_update(
            index_elements=[cl.c.buyer_id, cl.c.sku_id],
            set_={"quantity": stmt.excluded.quantity, "updated_at": stmt.excluded.updated_at}))

    def remove(self, buyer_id: int, sku_id: int) -> bool:
        res = self.conn.execute(delete(cl).where(cl.c.buyer_id == buyer_id,
                                                 cl.c.sku_id == sku_id))
        return res.rowcount > 0

    def take(self, buyer_id: int, sku_id: int, quantity: int) -> bool:
        """Remove a line only if it still holds `quantity` units (a compare-and-delete);
        False if it was changed or removed since it was read."""
        res = self.conn.execute(delete(cl).where(cl.c.buyer_id == buyer_id,
                                                 cl.c.sku_id == sku_id,
                                                 cl.c.quantity == quantity))
        return res.rowcount == 1
