"""Repositories for accounts and API tokens: the only SQL of authentication."""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, func, select, update
from sqlalchemy.dialects.postgresql.psycopg import dialect as psycopg_dialect

from silkroute.store.auth_tables import accounts, api_tokens
from silkroute.store.raw_pg import AsyncAutocommitPool
from silkroute.store.sql import LOCK_FREE_READ, insert_id

_LIVE_ACCOUNT = (
    select(accounts, api_tokens.c.id.label("token_id"))
    .join(api_tokens, api_tokens.c.account_id == accounts.c.id)
    .where(api_tokens.c.token_hash == bindparam("token_hash"),
           api_tokens.c.revoked_at.is_(None))
    .execution_options(**{LOCK_FREE_READ: True}))


class AccountRepo:
    def __init__(self, conn: Connection):
        self.conn = conn

    def add(self, role: str, name: str, *, buyer_id: int | None = None,
            seller_id: int | None = None, carrier_id: int | None = None) -> int:
        return insert_id(self.conn, accounts, dict(
            role=role, name=name, buyer_id=buyer_id, seller_id=seller_id,
            carrier_id=carrier_id))

    def get(self, account_id: int) -> Any:
        return self.conn.execute(select(accounts).where(accounts.c.id == account_id)).first()

    def all(self) -> Sequence[Any]:
        return self.conn.execute(select(accounts).order_by(accounts.c.id)).all()

    def count_by_role(self) -> dict[str, int]:
        rows = self.conn.execute(
            select(accounts.c.role, func.count()).group_by(accounts.c.role)).all()
        return {r[0]: int(r[1]) for r in rows}


class TokenRepo:
    def __init__(self, conn: Connection):
        self.conn = conn

    def add(self, account_id: int, token_hash: str, prefix: str, label: str) -> int:
        return insert_id(self.conn, api_tokens, dict(
            account_id=account_id, token_hash=token_hash, prefix=prefix, label=label))

    def get(self, token_id: int) -> Any:
        return self.conn.execute(select(api_tokens).where(api_tokens.c.id == token_id)).first()

    def of_account(self, account_id: int) -> Sequence[Any]:
        return self.conn.execute(select(api_tokens).where(
            api_tokens.c.account_id == account_id).order_by(api_tokens.c.id)).all()

    def revoke(self, token_id: int, at: datetime) -> bool:
        """Mark a live token revoked; False when it was already revoked."""
        res = self.conn.execute(update(api_tokens).where(
            api_tokens.c.id == token_id, api_tokens.c.revoked_at.is_(None))
            .values(revoked_at=at))
        return res.rowcount == 1

    def live_account(self, token_hash: str) -> Any:
        """The account a live (unrevoked) token acts for, or None. Every API request runs
        this: one statement built once, and lock-free, so on PostgreSQL it needs no BEGIN
        and COMMIT around it (`store.sql.begin_outside`)."""
        return self.conn.execute(_LIVE_ACCOUNT, {"token_hash": token_hash}).first()


# `_LIVE_ACCOUNT` as PostgreSQL's driver takes it, and its rows' shape (for `LiveAccounts`)
_LIVE_ACCOUNT_PG = str(_LIVE_ACCOUNT.compile(dialect=psycopg_dialect()))
# ... and for many tokens at once: the same conditions, the hash among the rows' columns
_LIVE_ACCOUNTS_PG = str(
    select(accounts, api_tokens.c.id.label("token_id"), api_tokens.c.token_hash)
    .join(api_tokens, api_tokens.c.account_id == accounts.c.id)
    .where(api_tokens.c.token_hash == func.any(bindparam("token_hashes")),
           api_tokens.c.revoked_at.is_(None))
    .compile(dialect=psycopg_dialect()))
LiveAccount = namedtuple(  # type: ignore[misc]
    "LiveAccount", list(_LIVE_ACCOUNT.selected_columns.keys()))


class LiveAccounts:
    """`TokenRepo.live_account` on PostgreSQL, awaited: the same statement, compiled once,
    on psycopg's async connection in autocommit (`store.raw_pg`), the same lock-free read
    without a unit of work, SQLAlchemy or a worker thread around it. Every API request
    runs it."""

    def __init__(self, pool: AsyncAutocommitPool):
        self.pool = pool

    async def __call__(self, token_hash: str) -> Any:
        row = await self.pool.first_row(_LIVE_ACCOUNT_PG, {"token_hash": token_hash})
        return None if row is None else LiveAccount._make(row)

    async def many(self, token_hashes: Sequence[str]) -> dict[str, Any]:
        """`self(h)` for each hash at once (one statement): the accounts of the live
        tokens among them, by hash (a hash not there has no live token)."""
        rows = await self.pool.all_rows(_LIVE_ACCOUNTS_PG,
                                        {"token_hashes": list(dict.fromkeys(token_hashes))})
        return {row[-1]: LiveAccount._make(row[:-1]) for row in rows}
