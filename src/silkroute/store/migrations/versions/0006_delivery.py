"""delivery: parcels, carrier events, webhook secrets, carriers' daily load, refund requests

Revision ID: 0006_delivery
Revises: 0005_network
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_delivery"
down_revision = "0005_network"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('carrier_days',
    sa.Column('carrier_id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('parcels', sa.Integer(), server_default='0', nullable=False),
    sa.CheckConstraint('parcels >= 0', name=op.f('ck_carrier_days_parcels_nonneg')),
    sa.PrimaryKeyConstraint('carrier_id', 'day', name=op.f('pk_carrier_days'))
    )
    op.create_table('carrier_secrets',
    sa.Column('carrier_id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('secret', sa.String(length=128), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.PrimaryKeyConstraint('carrier_id', name=op.f('pk_carrier_secrets'))
    )
    op.create_table('parcels',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('order_id', sa.Integer(), nullable=False),
    sa.Column('location_id', sa.Integer(), nullable=False),
    sa.Column('carrier_id', sa.Integer(), nullable=False),
    sa.Column('tracking_number', sa.String(length=40), nullable=False),
    sa.Column('state', sa.String(length=24), nullable=False),
    sa.Column('pickup_location_id', sa.Integer(), nullable=True),
    sa.Column('pickup_salt', sa.String(length=32), nullable=True),
    sa.Column('pickup_code_hash', sa.String(length=64), nullable=True),
    sa.Column('pickup_attempts', sa.Integer(), server_default='0', nullable=False),
    sa.Column('weight_g', sa.Integer(), server_default='0', nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.Column('last_event_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('picked_up_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('delivered_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint('pickup_attempts >= 0', name=op.f('ck_parcels_attempts_nonneg')),
    sa.ForeignKeyConstraint(['location_id'], ['locations.id'], name=op.f('fk_parcels_location_id_locations')),
    sa.ForeignKeyConstraint(['order_id'], ['orders.id'], name=op.f('fk_parcels_order_id_orders')),
    sa.ForeignKeyConstraint(['pickup_location_id'], ['locations.id'], name=op.f('fk_parcels_pickup_location_id_locations')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_parcels')),
    sa.UniqueConstraint('order_id', 'location_id', name='uq_parcels_order_location'),
    sa.UniqueConstraint('tracking_number', name=op.f('uq_parcels_tracking_number'))
    )
    op.create_index(op.f('ix_parcels_carrier_id'), 'parcels', ['carrier_id'], unique=False)
    op.create_index(op.f('ix_parcels_state'), 'parcels', ['state'], unique=False)
    op.create_table('refund_requests',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('order_id', sa.Integer(), nullable=False),
    sa.Column('buyer_id', sa.Integer(), nullable=False),
    sa.Column('seller_id', sa.Integer(), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=True),
    sa.Column('reason', sa.Text(), server_default='', nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('refund_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint('amount IS NULL OR amount > 0', name=op.f('ck_refund_requests_amount_positive')),
    sa.ForeignKeyConstraint(['order_id'], ['orders.id'], name=op.f('fk_refund_requests_order_id_orders')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_refund_requests'))
    )
    op.create_index(op.f('ix_refund_requests_order_id'), 'refund_requests', ['order_id'], unique=False)
    op.create_index(op.f('ix_refund_requests_seller_id'), 'refund_requests', ['seller_id'], unique=False)
    op.create_table('carrier_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('carrier_id', sa.Integer(), nullable=False),
    sa.Column('event_id', sa.String(length=100), nullable=False),
    sa.Column('parcel_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=24), nullable=False),
    sa.Column('occurred_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.Column('applied', sa.Boolean(), nullable=False),
    sa.Column('outcome', sa.String(length=200), server_default='', nullable=False),
    sa.Column('payload', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['parcel_id'], ['parcels.id'], name=op.f('fk_carrier_events_parcel_id_parcels')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_carrier_events')),
    sa.UniqueConstraint('carrier_id', 'event_id', name='uq_carrier_events_carrier_event')
    )
    op.create_index(op.f('ix_carrier_events_parcel_id'), 'carrier_events', ['parcel_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_carrier_events_parcel_id"), table_name="carrier_events")
    op.drop_table("carrier_events")
    op.drop_index(op.f("ix_refund_requests_seller_id"), table_name="refund_requests")
    op.drop_index(op.f("ix_refund_requests_order_id"), table_name="refund_requests")
    op.drop_table("refund_requests")
    op.drop_index(op.f("ix_parcels_state"), table_name="parcels")
    op.drop_index(op.f("ix_parcels_carrier_id"), table_name="parcels")
    op.drop_table("parcels")
    op.drop_table("carrier_secrets")
    op.drop_table("carrier_days")
