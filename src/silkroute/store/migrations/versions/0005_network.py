"""network: carriers, the zones they serve, and location extras of imported networks

Revision ID: 0005_network
Revises: 0004_auth
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_network"
down_revision = "0004_auth"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "carriers",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("tier", sa.String(length=16), nullable=False),
        sa.Column("base_fee", sa.BigInteger(), nullable=False),
        sa.Column("per_kg", sa.BigInteger(), nullable=False),
        sa.Column("band_fees", sa.JSON(), nullable=False),
        sa.Column("transit_cdf", sa.JSON(), nullable=False),
        sa.Column("cutoff_hour", sa.Float(), nullable=False),
        sa.Column("daily_capacity", sa.Integer(), nullable=False),
        sa.Column("on_time_rate", sa.Float(), nullable=False),
        sa.Column("max_weight_g", sa.Integer(), server_default="30000", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True),
                  server_default=sa.text("(CURRENT_TIMESTAMP)"), nullable=False),
        sa.CheckConstraint("base_fee >= 0 AND per_kg >= 0", name=op.f("ck_carriers_fees_nonneg")),
        sa.CheckConstraint("daily_capacity >= 0", name=op.f("ck_carriers_capacity_nonneg")),
        sa.CheckConstraint("on_time_rate >= 0 AND on_time_rate <= 1",
                           name=op.f("ck_carriers_on_time_range")),
        sa.CheckConstraint("cutoff_hour >= 0 AND cutoff_hour <= 24",
                           name=op.f("ck_carriers_cutoff_range")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_carriers")),
    )
    op.create_table(
        "carrier_zones",
        sa.Column("carrier_id", sa.Integer(), nullable=False),
        sa.Column("zone_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["carrier_id"], ["carriers.id"], ondelete="CASCADE",
                                name=op.f("fk_carrier_zones_carrier_id_carriers")),
        sa.ForeignKeyConstraint(["zone_id"], ["zones.id"],
                                name=op.f("fk_carrier_zones_zone_id_zones")),
        sa.PrimaryKeyConstraint("carrier_id", "zone_id", name=op.f("pk_carrier_zones")),
    )
    with op.batch_alter_table("carrier_zones", schema=None) as batch_op:
        batch_op.create_index("ix_carrier_zones_zone_id", ["zone_id"], unique=False)
    op.create_table(
        "network_locations",
        sa.Column("location_id", sa.Integer(), nullable=False),
        sa.Column("network_ref", sa.String(length=200), nullable=False),
        sa.Column("external_id", sa.Integer(), nullable=False),
        sa.Column("external_owner_id", sa.Integer(), nullable=True),
        sa.Column("priority", sa.Integer(), server_default="0", nullable=False),
        sa.ForeignKeyConstraint(["location_id"], ["locations.id"],
                                name=op.f("fk_network_locations_location_id_locations")),
        sa.PrimaryKeyConstraint("location_id", name=op.f("pk_network_locations")),
        sa.UniqueConstraint("network_ref", "external_id",
                            name="uq_network_locations_ref_external"),
    )


def downgrade() -> None:
    op.drop_table("network_locations")
    with op.batch_alter_table("carrier_zones", schema=None) as batch_op:
        batch_op.drop_index("ix_carrier_zones_zone_id")
    op.drop_table("carrier_zones")
    op.drop_table("carriers")
