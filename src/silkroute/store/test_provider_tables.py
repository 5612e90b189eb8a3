"""The durable test payment provider's sandbox account: its operations, authorizations,
captures and approve-on-retry attempts (`silkroute.payments.durable_test_provider`).

These tables stand for an external processor's books, so nothing of the platform refers to
them and the provider writes them in its own short transactions, never in the platform's.
On PostgreSQL the provider uses these tables in the platform database; on SQLite it keeps
the same tables in a file beside the database (SQLite has one writer per file, and the
platform calls the provider inside its own write transactions for refunds and fees).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Integer,
    String,
    Table,
    Text,
    func,
)

from silkroute.store.tables import metadata

#: `silkroute_meta` key of the platform database's sandbox id (set by migration 0007): a
#: SQLite side file that remembers another id belongs to an earlier database and is reset.
SANDBOX_META_KEY = "testpay_sandbox"

# One row per idempotency key: the request's fingerprint and the first answer (a result, or
# the decline/error to raise again). A timeout writes no row: the retry decides.
testpay_operations = Table(
    "testpay_operations", metadata,
    Column("id", Integer, primary_key=True),
    Column("key", String(255), nullable=False, unique=True),
    Column("fingerprint", String(64), nullable=False),  # SHA-256 of the request
    Column("operation", String(16), nullable=False),
    Column("status", String(16), nullable=True),  # None: the answer was an error, no result
    Column("reference", String(64), nullable=True, unique=True),
    Column("amount", BigInteger, nullable=True),
    Column("currency", String(3), nullable=True),
    Column("parent", String(255), nullable=True),
    Column("decline_reason", String(64), nullable=True),
    Column("error_code", String(64), nullable=True),  # None: the operation succeeded
    Column("error_field", String(64), nullable=True),
    Column("error_message", Text, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

testpay_authorizations = Table(
    "testpay_authorizations", metadata,
    Column("reference", String(64), primary_key=True),
    Column("card_last4", String(4), nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("status", String(16), nullable=False),  # authorized | captured | voided
    Column("capture_reference", String(64), nullable=True),
)

testpay_captures = Table(
    "testpay_captures", metadata,
    Column("reference", String(64), primary_key=True),
    Column("authorization_ref", ForeignKey("testpay_authorizations.reference"), nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("refunded", BigInteger, nullable=False, server_default="0"),
    CheckConstraint("refunded >= 0 AND refunded <= amount", name="refunded_within_amount"),
)

# Attempts per authorize key, for the approve-on-retry card: kept even when the attempt
# timed out (which stores no operation).
testpay_attempts = Table(
    "testpay_attempts", metadata,
    Column("key", String(255), primary_key=True),
    Column("attempts", Integer, nullable=False),
)

TEST_PROVIDER_TABLES = (testpay_operations, testpay_authorizations, testpay_captures,
                        testpay_attempts)

__all__ = ["SANDBOX_META_KEY", "TEST_PROVIDER_TABLES", "testpay_attempts",
           "testpay_authorizations", "testpay_captures", "testpay_operations"]
