"""auth: accounts and their API tokens

Revision ID: 0004_auth
Revises: 0003_money
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0004_auth'
down_revision = '0003_money'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('accounts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('buyer_id', sa.Integer(), nullable=True),
    sa.Column('seller_id', sa.Integer(), nullable=True),
    sa.Column('carrier_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.CheckConstraint("role IN ('buyer', 'seller', 'carrier', 'operator')", name=op.f('ck_accounts_role_known')),
    sa.CheckConstraint("role <> 'buyer' OR buyer_id IS NOT NULL", name=op.f('ck_accounts_buyer_has_buyer')),
    sa.CheckConstraint("role <> 'seller' OR seller_id IS NOT NULL", name=op.f('ck_accounts_seller_has_seller')),
    sa.CheckConstraint("role <> 'carrier' OR carrier_id IS NOT NULL", name=op.f('ck_accounts_carrier_has_carrier')),
    sa.ForeignKeyConstraint(['buyer_id'], ['buyers.id'], name=op.f('fk_accounts_buyer_id_buyers')),
    sa.ForeignKeyConstraint(['seller_id'], ['sellers.id'], name=op.f('fk_accounts_seller_id_sellers')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_accounts'))
    )
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_accounts_buyer_id'), ['buyer_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_accounts_seller_id'), ['seller_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_accounts_carrier_id'), ['carrier_id'], unique=False)

    op.create_table('api_tokens',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('prefix', sa.String(length=16), nullable=False),
    sa.Column('label', sa.String(length=100), server_default='', nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_api_tokens_account_id_accounts')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_api_tokens')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_api_tokens_token_hash'))
    )
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_api_tokens_account_id'), ['account_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_api_tokens_account_id'))
    op.drop_table('api_tokens')
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_accounts_carrier_id'))
        batch_op.drop_index(batch_op.f('ix_accounts_seller_id'))
        batch_op.drop_index(batch_op.f('ix_accounts_buyer_id'))
    op.drop_table('accounts')
