"""cart: the buyers' persistent carts (one line per buyer and SKU)

Revision ID: 0008_cart
Revises: 0007_test_provider
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_cart"
down_revision = "0007_test_provider"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('cart_lines',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('buyer_id', sa.Integer(), nullable=False),
    sa.Column('sku_id', sa.Integer(), nullable=False),
    sa.Column('quantity', sa.Integer(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.CheckConstraint('quantity > 0', name=op.f('ck_cart_lines_quantity_positive')),
    sa.ForeignKeyConstraint(['buyer_id'], ['buyers.id'], name=op.f('fk_cart_lines_buyer_id_buyers')),
    sa.ForeignKeyConstraint(['sku_id'], ['skus.id'], name=op.f('fk_cart_lines_sku_id_skus')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_cart_lines')),
    sa.UniqueConstraint('buyer_id', 'sku_id', name=op.f('uq_cart_lines_buyer_id'))
    )
    with op.batch_alter_table('cart_lines', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_cart_lines_sku_id'), ['sku_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('cart_lines', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_cart_lines_sku_id'))
    op.drop_table('cart_lines')
