"""Network tables: carriers (coverage, rate card, transit bands, capacity) and location extras."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    UniqueConstraint,
)

from silkroute.store.tables import _created, metadata

carriers = Table(
    "carriers", metadata,
    # The carrier's id in the network it came from (generator or CSV import): stable, so
    # allocations.carrier_id and accounts.carrier_id keep meaning the same partner.
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("name", String(200), nullable=False),
    Column("tier", String(16), nullable=False),
    Column("base_fee", BigInteger, nullable=False),
    Column("per_kg", BigInteger, nullable=False),
    # Per distance band (domain.carriers.BAND_NAMES): surcharge in minor units, null where
    # the band is not offered; and the transit CDF, P(delivered within d days), per band.
    Column("band_fees", JSON, nullable=False),
    Column("transit_cdf", JSON, nullable=False),
    Column("cutoff_hour", Float, nullable=False),
    Column("daily_capacity", Integer, nullable=False),
    Column("on_time_rate", Float, nullable=False),
    Column("max_weight_g", Integer, nullable=False, server_default="30000"),
    CheckConstraint("base_fee >= 0 AND per_kg >= 0", name="fees_nonneg"),
    CheckConstraint("daily_capacity >= 0", name="capacity_nonneg"),
    CheckConstraint("on_time_rate >= 0 AND on_time_rate <= 1", name="on_time_range"),
    CheckConstraint("cutoff_hour >= 0 AND cutoff_hour <= 24", name="cutoff_range"),
    _created(),
)

carrier_zones = Table(
    "carrier_zones", metadata,
    Column("carrier_id", ForeignKey("carriers.id", ondelete="CASCADE"), primary_key=True),
    Column("zone_id", ForeignKey("zones.id"), primary_key=True),
    Index("ix_carrier_zones_zone_id", "zone_id"),
)

# What a network file or the generator knows about a location beyond `locations`: which
# network it came from, its id there (re-saving the same network updates, not duplicates)
# and its source priority (Magento-style priority policies).
network_locations = Table(
    "network_locations", metadata,
    Column("location_id", ForeignKey("locations.id"), primary_key=True),
    Column("network_ref", String(200), nullable=False),
    Column("external_id", Integer, nullable=False),
    Column("external_owner_id", Integer, nullable=True),
    Column("priority", Integer, nullable=False, server_default="0"),
    UniqueConstraint("network_ref", "external_id", name="uq_network_locations_ref_external"),
)

__all__ = ["carriers", "carrier_zones", "network_locations"]
