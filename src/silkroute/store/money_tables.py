"""Money tables: the ledger, payments, saved cards, idempotency keys, membership, payouts."""

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
    Index,
    Integer,
    Numeric,
    String,
    Table,
    UniqueConstraint,
    func,
)

from silkroute.store.tables import metadata


def _created() -> Column:
    return Column("created_at", DateTime(timezone=True), nullable=False,
                  server_default=func.now())


# One row per account ever posted to; filled by a database trigger on ledger_postings.
ledger_accounts = Table(
    "ledger_accounts", metadata,
    Column("code", String(96), primary_key=True),  # kind:owner_id:CURRENCY
    Column("kind", String(32), nullable=False),
    Column("owner_id", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
)

ledger_transactions = Table(
    "ledger_transactions", metadata,
    Column("id", Integer, primary_key=True),
    Column("key", String(160), nullable=False, unique=True),
    Column("kind", String(32), nullable=False),
    Column("reference", String(160), nullable=False),
    _created(),
)

# Append-only: triggers refuse UPDATE and DELETE on both backends.
ledger_postings = Table(
    "ledger_postings", metadata,
    Column("id", Integer, primary_key=True),
    Column("transaction_id", ForeignKey("ledger_transactions.id"), nullable=False, index=True),
    Column("account", ForeignKey("ledger_accounts.code"), nullable=False, index=True),
    Column("kind", String(32), nullable=False),
    Column("owner_id", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("amount", BigInteger, nullable=False),
    CheckConstraint("amount <> 0", name="amount_nonzero"),
)

payment_methods = Table(
    "payment_methods", metadata,
    Column("id", Integer, primary_key=True),
    Column("buyer_id", ForeignKey("buyers.id"), nullable=False, index=True),
    Column("token", String(64), nullable=False),  # what the provider charges
    Column("last4", String(4), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("is_default", Boolean, nullable=False, server_default="0"),
    _created(),
)

# One payment per checkout: all its orders captured at once into escrow.
payments = Table(
    "payments", metadata,
    Column("id", Integer, primary_key=True),
    Column("checkout_id", ForeignKey("checkouts.id"), nullable=False, unique=True),
    Column("buyer_id", ForeignKey("buyers.id"), nullable=False, index=True),
    Column("payment_method_id", ForeignKey("payment_methods.id"), nullable=True),
    Column("status", String(16), nullable=False),  # captured | declined | timed_out
    Column("amount", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("provider", String(32), nullable=False),
    Column("authorization_ref", String(64), nullable=True),
    Column("capture_ref", String(64), nullable=True),
    Column("decline_reason", String(64), nullable=True),
    _created(),
)

# The money side of a paid order (the core `orders` table stays untouched).
order_money = Table(
    "order_money", metadata,
    Column("order_id", ForeignKey("orders.id"), primary_key=True),
    Column("payment_id", ForeignKey("payments.id"), nullable=False, index=True),
    Column("buyer_id", Integer, nullable=False),
    Column("seller_id", Integer, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("hold", BigInteger, nullable=False),  # goods + shipping captured
    Column("shipping_charged", BigInteger, nullable=False),
    Column("carrier_id", Integer, nullable=False),
    Column("carrier_fee", BigInteger, nullable=False),
    Column("refunded_from_escrow", BigInteger, nullable=False, server_default="0"),
    Column("refunded_after_release", BigInteger, nullable=False, server_default="0"),
    Column("released", Boolean, nullable=False, server_default="0"),
    Column("delivered_at", DateTime(timezone=True), nullable=True),
    CheckConstraint("hold > 0", name="hold_positive"),
    CheckConstraint("refunded_from_escrow >= 0 AND refunded_after_release >= 0 AND "
                    "refunded_from_escrow + refunded_after_release <= hold",
                    name="refunds_within_hold"),
)

refunds = Table(
    "refunds", metadata,
    Column("id", Integer, primary_key=True),
    Column("order_id", ForeignKey("orders.id"), nullable=False, index=True),
    Column("payment_id", ForeignKey("payments.id"), nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("stage", String(16), nullable=False),  # from_escrow | after_release
    Column("provider_ref", String(64), nullable=True),
    Column("reason", String(200), nullable=False, server_default=""),
    CheckConstraint("amount > 0", name="amount_positive"),
    _created(),
)

idempotency_keys = Table(
    "idempotency_keys", metadata,
    Column("id", Integer, primary_key=True),
    Column("scope", String(64), nullable=False),  # e.g. one_click:buyer:7
    Column("key", String(200), nullable=False),
    Column("request_hash", String(64), nullable=False),
    Column("status", String(16), nullable=False),  # done | failed
    Column("response", JSON, nullable=True),
    _created(),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("scope", "key", name="uq_idempotency_keys_scope_key"),
)

memberships = Table(
    "memberships", metadata,
    Column("buyer_id", ForeignKey("buyers.id"), primary_key=True),
    Column("currency", String(3), nullable=False),
    Column("monthly_fee", BigInteger, nullable=False),
    Column("started_on", Date, nullable=False),
    Column("auto_renew", Boolean, nullable=False),
    Column("lapsed_on", Date, nullable=True),
)

membership_periods = Table(
    "membership_periods", metadata,
    Column("buyer_id", ForeignKey("buyers.id"), primary_key=True),
    Column("period", String(7), primary_key=True),  # YYYY-MM, paid once
    Column("fee", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("provider_ref", String(64), nullable=True),
    _created(),
)

payout_batches = Table(
    "payout_batches", metadata,
    Column("id", Integer, primary_key=True),
    Column("key", String(120), nullable=False, unique=True),
    Column("status", String(16), nullable=False),  # posted | sent
    _created(),
)

payouts = Table(
    "payouts", metadata,
    Column("id", Integer, primary_key=True),
    Column("batch_id", ForeignKey("payout_batches.id"), nullable=False),
    Column("account", String(96), nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("status", String(16), nullable=False),  # pending | sent
    Column("provider_ref", String(64), nullable=True),
    UniqueConstraint("batch_id", "account", name="uq_payouts_batch_account"),
    CheckConstraint("amount > 0", name="amount_positive"),
)

shipping_templates = Table(
    "shipping_templates", metadata,
    Column("seller_id", ForeignKey("sellers.id"), primary_key=True),
    Column("template", JSON, nullable=False),  # ShippingTemplate.to_dict()
    Column("carrier_id", Integer, nullable=False, server_default="1"),
)

commission_rates = Table(
    "commission_rates", metadata,
    Column("category", String(100), primary_key=True),
    Column("rate", Numeric(6, 4), nullable=False),
    CheckConstraint("rate >= 0 AND rate <= 1", name="rate_range"),
)

Index("ix_order_money_open", order_money.c.released, order_money.c.delivered_at)
Index("ix_payment_methods_buyer_default", payment_methods.c.buyer_id,
      payment_methods.c.is_default)

__all__ = [
    "ledger_accounts", "ledger_transactions", "ledger_postings", "payment_methods", "payments",
    "order_money", "refunds", "idempotency_keys", "memberships", "membership_periods",
    "payout_batches", "payouts", "shipping_templates", "commission_rates",
]
