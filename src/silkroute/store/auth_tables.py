"""Accounts that act for a buyer, seller, carrier or the operator, and their API tokens."""

from __future__ import annotations

from sqlalchemy import CheckConstraint, Column, DateTime, ForeignKey, Integer, String, Table, func

from silkroute.store.tables import metadata

ROLES = ("buyer", "seller", "carrier", "operator")

accounts = Table(
    "accounts", metadata,
    Column("id", Integer, primary_key=True),
    Column("role", String(16), nullable=False),
    Column("name", String(200), nullable=False),
    Column("buyer_id", ForeignKey("buyers.id"), nullable=True, index=True),
    Column("seller_id", ForeignKey("sellers.id"), nullable=True, index=True),
    # The carriers table lives with the network; the link is checked by the service.
    Column("carrier_id", Integer, nullable=True, index=True),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint("role IN ('buyer', 'seller', 'carrier', 'operator')", name="role_known"),
    CheckConstraint("role <> 'buyer' OR buyer_id IS NOT NULL", name="buyer_has_buyer"),
    CheckConstraint("role <> 'seller' OR seller_id IS NOT NULL", name="seller_has_seller"),
    CheckConstraint("role <> 'carrier' OR carrier_id IS NOT NULL", name="carrier_has_carrier"),
)

api_tokens = Table(
    "api_tokens", metadata,
    Column("id", Integer, primary_key=True),
    Column("account_id", ForeignKey("accounts.id"), nullable=False, index=True),
    # SHA-256 of the token, hex: the token itself is shown once and never stored.
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("prefix", String(16), nullable=False),
    Column("label", String(100), nullable=False, server_default=""),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
)

__all__ = ["ROLES", "accounts", "api_tokens"]
