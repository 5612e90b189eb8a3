"""Delivery tables: parcels, carrier events, webhook secrets, daily carrier load, refund asks."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    func,
)

from silkroute.store.tables import _created, metadata

# One parcel per (order, shipping location): what the seller hands to the carrier.
parcels = Table(
    "parcels", metadata,
    Column("id", Integer, primary_key=True),
    Column("order_id", ForeignKey("orders.id"), nullable=False),
    Column("location_id", ForeignKey("locations.id"), nullable=False),
    Column("carrier_id", Integer, nullable=False, index=True),
    Column("tracking_number", String(40), nullable=False, unique=True),
    Column("state", String(24), nullable=False, index=True),
    Column("pickup_location_id", ForeignKey("locations.id"), nullable=True),
    # Pickup orders: salt and SHA-256 of the code (the code itself is derived, not stored).
    Column("pickup_salt", String(32), nullable=True),
    Column("pickup_code_hash", String(64), nullable=True),
    Column("pickup_attempts", Integer, nullable=False, server_default="0"),
    Column("weight_g", Integer, nullable=False, server_default="0"),
    _created(),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("last_event_at", DateTime(timezone=True), nullable=True),
    Column("picked_up_at", DateTime(timezone=True), nullable=True),
    Column("delivered_at", DateTime(timezone=True), nullable=True),
    Column("closed_at", DateTime(timezone=True), nullable=True),
    UniqueConstraint("order_id", "location_id", name="uq_parcels_order_location"),
    CheckConstraint("pickup_attempts >= 0", name="attempts_nonneg"),
)

# Every webhook event a carrier sent, applied or not: dedupe key and the parcel timeline.
carrier_events = Table(
    "carrier_events", metadata,
    Column("id", Integer, primary_key=True),
    Column("carrier_id", Integer, nullable=False),
    Column("event_id", String(100), nullable=False),
    Column("parcel_id", ForeignKey("parcels.id"), nullable=False, index=True),
    Column("kind", String(24), nullable=False),
    Column("occurred_at", DateTime(timezone=True), nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("applied", Boolean, nullable=False),
    Column("outcome", String(200), nullable=False, server_default=""),
    Column("payload", JSON, nullable=False),
    UniqueConstraint("carrier_id", "event_id", name="uq_carrier_events_carrier_event"),
)

# A carrier's webhook signing secret: shown once when set, never returned afterwards.
carrier_secrets = Table(
    "carrier_secrets", metadata,
    Column("carrier_id", Integer, primary_key=True, autoincrement=False),
    Column("secret", String(128), nullable=False),
    _created(),
)

# Parcels handed to a carrier per day: consumed against carriers.daily_capacity.
carrier_days = Table(
    "carrier_days", metadata,
    Column("carrier_id", Integer, primary_key=True, autoincrement=False),
    Column("day", Date, primary_key=True),
    Column("parcels", Integer, nullable=False, server_default="0"),
    CheckConstraint("parcels >= 0", name="parcels_nonneg"),
)

# A buyer's request for money back, decided by the seller (or at once before shipping).
refund_requests = Table(
    "refund_requests", metadata,
    Column("id", Integer, primary_key=True),
    Column("order_id", ForeignKey("orders.id"), nullable=False, index=True),
    Column("buyer_id", Integer, nullable=False),
    Column("seller_id", Integer, nullable=False, index=True),
    Column("amount", BigInteger, nullable=True),  # null: all that is left
    Column("reason", Text, nullable=False, server_default=""),
    Column("state", String(16), nullable=False),  # pending | approved | rejected
    Column("refund_id", Integer, nullable=True),
    _created(),
    Column("decided_at", DateTime(timezone=True), nullable=True),
    CheckConstraint("amount IS NULL OR amount > 0", name="amount_positive"),
)

__all__ = ["parcels", "carrier_events", "carrier_secrets", "carrier_days", "refund_requests"]
