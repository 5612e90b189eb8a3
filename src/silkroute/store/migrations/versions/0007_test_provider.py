"""test provider: the durable test payment provider's sandbox account

Its own tables (operations by idempotency key, authorizations, captures with refunded
totals, approve-on-retry attempts) and the database's sandbox id in `silkroute_meta`.

Revision ID: 0007_test_provider
Revises: 0006_delivery
"""
from __future__ import annotations

import uuid

import sqlalchemy as sa
from alembic import op

revision = "0007_test_provider"
down_revision = "0006_delivery"
branch_labels = None
depends_on = None

SANDBOX_META_KEY = "testpay_sandbox"  # silkroute.store.test_provider_tables.SANDBOX_META_KEY
_meta = sa.table("silkroute_meta", sa.column("key", sa.String), sa.column("value", sa.Text))


def upgrade() -> None:
    op.create_table('testpay_attempts',
    sa.Column('key', sa.String(length=255), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_testpay_attempts'))
    )
    op.create_table('testpay_authorizations',
    sa.Column('reference', sa.String(length=64), nullable=False),
    sa.Column('card_last4', sa.String(length=4), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('capture_reference', sa.String(length=64), nullable=True),
    sa.PrimaryKeyConstraint('reference', name=op.f('pk_testpay_authorizations'))
    )
    op.create_table('testpay_operations',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=255), nullable=False),
    sa.Column('fingerprint', sa.String(length=64), nullable=False),
    sa.Column('operation', sa.String(length=16), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=True),
    sa.Column('reference', sa.String(length=64), nullable=True),
    sa.Column('amount', sa.BigInteger(), nullable=True),
    sa.Column('currency', sa.String(length=3), nullable=True),
    sa.Column('parent', sa.String(length=255), nullable=True),
    sa.Column('decline_reason', sa.String(length=64), nullable=True),
    sa.Column('error_code', sa.String(length=64), nullable=True),
    sa.Column('error_field', sa.String(length=64), nullable=True),
    sa.Column('error_message', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_testpay_operations')),
    sa.UniqueConstraint('key', name=op.f('uq_testpay_operations_key')),
    sa.UniqueConstraint('reference', name=op.f('uq_testpay_operations_reference'))
    )
    op.create_table('testpay_captures',
    sa.Column('reference', sa.String(length=64), nullable=False),
    sa.Column('authorization_ref', sa.String(length=64), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('refunded', sa.BigInteger(), server_default='0', nullable=False),
    sa.CheckConstraint('refunded >= 0 AND refunded <= amount', name=op.f('ck_testpay_captures_refunded_within_amount')),
    sa.ForeignKeyConstraint(['authorization_ref'], ['testpay_authorizations.reference'], name=op.f('fk_testpay_captures_authorization_ref_testpay_authorizations')),
    sa.PrimaryKeyConstraint('reference', name=op.f('pk_testpay_captures'))
    )
    # A fresh id per database: a SQLite side file remembering another one is stale.
    op.execute(_meta.delete().where(_meta.c.key == SANDBOX_META_KEY))
    op.execute(_meta.insert().values(key=SANDBOX_META_KEY, value=uuid.uuid4().hex))


def downgrade() -> None:
    op.execute(_meta.delete().where(_meta.c.key == SANDBOX_META_KEY))
    op.drop_table('testpay_captures')
    op.drop_table('testpay_operations')
    op.drop_table('testpay_authorizations')
    op.drop_table('testpay_attempts')
