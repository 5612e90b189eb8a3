"""The buyers' carts: one line per (buyer, SKU), kept until removed or checked out."""

from __future__ import annotations

from sqlalchemy import (
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Integer,
    Table,
    UniqueConstraint,
    func,
)

from silkroute.store.tables import metadata

# `id` orders the lines as they were first added (an upsert keeps it); the unique pair is
# what concurrent `PUT`s of one line meet on (INSERT ... ON CONFLICT DO UPDATE).
cart_lines = Table(
    "cart_lines", metadata,
    Column("id", Integer, primary_key=True),
    Column("buyer_id", ForeignKey("buyers.id"), nullable=False),
    Column("sku_id", ForeignKey("skus.id"), nullable=False, index=True),
    Column("quantity", Integer, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint("quantity > 0", name="quantity_positive"),
    UniqueConstraint("buyer_id", "sku_id"),
)

__all__ = ["cart_lines"]
