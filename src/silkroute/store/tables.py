"""The core tables of the marketplace: catalogue, network places, stock, orders, outbox."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    func,
)

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
metadata = MetaData(naming_convention=NAMING)


def _created() -> Column:
    return Column("created_at", DateTime(timezone=True), nullable=False,
                  server_default=func.now())


sellers = Table(
    "sellers", metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(200), nullable=False),
    _created(),
)

shops = Table(
    "shops", metadata,
    Column("id", Integer, primary_key=True),
    Column("seller_id", ForeignKey("sellers.id"), nullable=False, unique=True),
    Column("name", String(200), nullable=False),
    Column("currency", String(3), nullable=False),
    _created(),
)

zones = Table(
    "zones", metadata,
    # The GeoNames id of the city: stable across networks, imports and machines.
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("name", String(200), nullable=False),
    Column("country", String(2), nullable=False),
    Column("latitude", Float, nullable=False),
    Column("longitude", Float, nullable=False),
    Column("population", BigInteger, nullable=False, server_default="0"),
    Index("ix_zones_country_name", "country", "name"),
)

locations = Table(
    "locations", metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(200), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("owner_kind", String(16), nullable=False),
    Column("seller_id", ForeignKey("sellers.id"), nullable=True, index=True),
    Column("zone_id", ForeignKey("zones.id"), nullable=False),
    Column("latitude", Float, nullable=False),
    Column("longitude", Float, nullable=False),
    Column("daily_capacity", Integer, nullable=False),
    Column("handling_cost", Integer, nullable=False),
    Column("opens_hour", Integer, nullable=False, server_default="8"),
    Column("closes_hour", Integer, nullable=False, server_default="20"),
    CheckConstraint("daily_capacity >= 0", name="capacity_nonneg"),
    CheckConstraint("handling_cost >= 0", name="handling_nonneg"),
    _created(),
)

products = Table(
    "products", metadata,
    Column("id", Integer, primary_key=True),
    Column("seller_id", ForeignKey("sellers.id"), nullable=False, index=True),
    Column("title", String(300), nullable=False),
    Column("category", String(100), nullable=False, server_default="general"),
    _created(),
)

skus = Table(
    "skus", metadata,
    Column("id", Integer, primary_key=True),
    Column("product_id", ForeignKey("products.id"), nullable=False, index=True),
    Column("seller_id", ForeignKey("sellers.id"), nullable=False),
    Column("code", String(64), nullable=False, unique=True),
    Column("attributes", JSON, nullable=False),
    Column("price_amount", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("weight_g", Integer, nullable=False),
    Column("length_mm", Integer, nullable=False, server_default="0"),
    Column("width_mm", Integer, nullable=False, server_default="0"),
    Column("height_mm", Integer, nullable=False, server_default="0"),
    Column("on_sale", Boolean, nullable=False, server_default="1"),
    CheckConstraint("price_amount > 0", name="price_positive"),
)

stock = Table(
    "stock", metadata,
    Column("sku_id", ForeignKey("skus.id"), primary_key=True),
    Column("location_id", ForeignKey("locations.id"), primary_key=True, index=True),
    Column("on_hand", Integer, nullable=False),
    Column("reserved", Integer, nullable=False, server_default="0"),
    # The database itself refuses negative availability, whatever the code does.
    CheckConstraint("reserved >= 0", name="reserved_nonneg"),
    CheckConstraint("on_hand >= reserved", name="available_nonneg"),
)

buyers = Table(
    "buyers", metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(200), nullable=False),
    _created(),
)

addresses = Table(
    "addresses", metadata,
    Column("id", Integer, primary_key=True),
    Column("buyer_id", ForeignKey("buyers.id"), nullable=False, index=True),
    Column("line1", String(300), nullable=False, server_default=""),
    Column("city", String(200), nullable=False),
    Column("zone_id", ForeignKey("zones.id"), nullable=False),
    Column("latitude", Float, nullable=False),
    Column("longitude", Float, nullable=False),
    Column("is_default", Boolean, nullable=False, server_default="0"),
)

checkouts = Table(
    "checkouts", metadata,
    Column("id", Integer, primary_key=True),
    Column("buyer_id", ForeignKey("buyers.id"), nullable=False, index=True),
    _created(),
)

orders = Table(
    "orders", metadata,
    Column("id", Integer, primary_key=True),
    Column("checkout_id", ForeignKey("checkouts.id"), nullable=False, index=True),
    Column("buyer_id", ForeignKey("buyers.id"), nullable=False, index=True),
    Column("seller_id", ForeignKey("sellers.id"), nullable=False, index=True),
    Column("state", String(16), nullable=False, index=True),
    Column("currency", String(3), nullable=False),
    Column("items_amount", BigInteger, nullable=False),
    Column("shipping_amount", BigInteger, nullable=False, server_default="0"),
    Column("address_id", ForeignKey("addresses.id"), nullable=True),
    Column("zone_id", ForeignKey("zones.id"), nullable=False),
    Column("latitude", Float, nullable=False),
    Column("longitude", Float, nullable=False),
    Column("service", String(32), nullable=False, server_default="standard"),
    Column("pickup_location_id", ForeignKey("locations.id"), nullable=True),
    Column("policy", String(40), nullable=False, server_default=""),
    Column("plan", JSON, nullable=True),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    _created(),
)

order_lines = Table(
    "order_lines", metadata,
    Column("id", Integer, primary_key=True),
    Column("order_id", ForeignKey("orders.id"), nullable=False, index=True),
    Column("sku_id", ForeignKey("skus.id"), nullable=False),
    Column("quantity", Integer, nullable=False),
    Column("unit_price", BigInteger, nullable=False),
    CheckConstraint("quantity > 0", name="quantity_positive"),
)

# Which location holds (reserved) or shipped how many units of a line.
allocations = Table(
    "allocations", metadata,
    Column("id", Integer, primary_key=True),
    Column("order_id", ForeignKey("orders.id"), nullable=False, index=True),
    Column("line_id", ForeignKey("order_lines.id"), nullable=False),
    Column("sku_id", ForeignKey("skus.id"), nullable=False),
    Column("location_id", ForeignKey("locations.id"), nullable=False),
    Column("quantity", Integer, nullable=False),
    Column("carrier_id", Integer, nullable=True),
    Column("status", String(16), nullable=False, server_default="reserved"),
    CheckConstraint("quantity > 0", name="quantity_positive"),
)

order_events = Table(
    "order_events", metadata,
    Column("id", Integer, primary_key=True),
    Column("order_id", ForeignKey("orders.id"), nullable=False, index=True),
    Column("from_state", String(16), nullable=True),
    Column("to_state", String(16), nullable=False),
    Column("note", Text, nullable=False, server_default=""),
    _created(),
)

outbox = Table(
    "outbox", metadata,
    Column("id", Integer, primary_key=True),
    Column("topic", String(64), nullable=False),
    Column("payload", JSON, nullable=False),
    Column("sent_at", DateTime(timezone=True), nullable=True),
    _created(),
)

demo_marker = Table(
    "silkroute_meta", metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

__all__ = [
    "metadata", "sellers", "shops", "zones", "locations", "products", "skus", "stock",
    "buyers", "addresses", "checkouts", "orders", "order_lines", "allocations",
    "order_events", "outbox", "demo_marker",
]
