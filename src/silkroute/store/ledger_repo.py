"""Ledger persistence: append transactions and postings, derive balances, check balance."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, func, select

from silkroute.domain.ledger import LedgerTransaction, UnbalancedTransaction
from silkroute.store import money_tables as m
from silkroute.store.engine import is_sqlite
from silkroute.store.sql import insert_id, insert_rows

if TYPE_CHECKING:
    from silkroute.store.uow import UnitOfWork


class LedgerRepo:
    """Appends to the ledger; it has no method that updates or deletes a posting."""

    def __init__(self, conn: Connection):
        self.conn = conn
        self.written: set[int] = set()  # transaction ids appended in this unit of work

    def append(self, txn: LedgerTransaction) -> int:
        """Write a (domain-checked, balanced) transaction; returns its id."""
        rows = [{"account": p.account.code, "kind": p.account.kind.value,
                 "owner_id": p.account.owner_id, "currency": p.amount.currency,
                 "amount": p.amount.amount} for p in txn.postings]
        return self.append_raw(txn.key, txn.kind.value, txn.reference, rows)

    def append_raw(self, key: str, kind: str, reference: str,
                   postings: Sequence[dict[str, Any]]) -> int:
        """Write rows as given (no domain check): the database and `check_balanced` judge."""
        txn_id = insert_id(self.conn, m.ledger_transactions,
                           {"key": key, "kind": kind, "reference": reference})
        insert_rows(self.conn, m.ledger_postings,
                    [{**row, "transaction_id": txn_id} for row in postings])
        self.written.add(txn_id)
        return txn_id

    def check_balanced(self, conn: Connection) -> None:
        """Refuse the commit if a transaction written here does not sum to zero per currency
        (the SQLite stand-in for PostgreSQL's deferred constraint trigger)."""
        if not self.written:
            return
        ids = sorted(self.written)
        p = m.ledger_postings
        bad = conn.execute(
            select(p.c.transaction_id, p.c.currency, func.sum(p.c.amount),
                   func.count())
            .where(p.c.transaction_id.in_(ids))
            .group_by(p.c.transaction_id, p.c.currency)).all()
        counts: dict[int, int] = {}
        problems = []
        for txn_id, cur, total, n in bad:
            counts[txn_id] = counts.get(txn_id, 0) + int(n)
            if int(total) != 0:
                problems.append(f"transaction {txn_id}: {cur} postings sum to {int(total)}, "
                                "not 0")
        problems += [f"transaction {i}: has {counts.get(i, 0)} posting(s), needs at least 2"
                     for i in ids if counts.get(i, 0) < 2]
        if problems:
            raise UnbalancedTransaction("ledger refused at commit: " + "; ".join(problems),
                                        field="postings")
        self.written.clear()

    # reads ------------------------------------------------------------------------------
    def transactions(self) -> Sequence[Any]:
        t = m.ledger_transactions
        return self.conn.execute(select(t.c.id, t.c.kind, t.c.reference, t.c.key)
                                 .order_by(t.c.id)).all()

    def postings(self) -> Sequence[Any]:
        p = m.ledger_postings
        return self.conn.execute(select(p.c.transaction_id, p.c.account, p.c.amount,
                                        p.c.currency).order_by(p.c.id)).all()

    def balance(self, account: str) -> int:
        p = m.ledger_postings
        return int(self.conn.execute(select(func.coalesce(func.sum(p.c.amount), 0))
                                     .where(p.c.account == account)).scalar_one())

    def balances(self, kinds: Iterable[str] | None = None) -> dict[str, int]:
        """Balance per account code (optionally only accounts of these kinds)."""
        p = m.ledger_postings
        q = select(p.c.account, func.sum(p.c.amount)).group_by(p.c.account)
        if kinds is not None:
            q = q.where(p.c.kind.in_(list(kinds)))
        return {acc: int(total) for acc, total in self.conn.execute(q)}

    def has_key(self, key: str) -> bool:
        t = m.ledger_transactions
        return self.conn.execute(select(t.c.id).where(t.c.key == key)).first() is not None

    def count_accounts(self) -> int:
        return int(self.conn.execute(select(func.count()).select_from(m.ledger_accounts))
                   .scalar_one())


def post(uow: UnitOfWork, txn: LedgerTransaction) -> int:
    """Append `txn` in this unit of work; on SQLite also check balance before commit."""
    repo = uow.repos.ledger
    txn_id = repo.append(txn)
    if is_sqlite(uow.engine):
        uow.before_commit(repo.check_balanced)
    return txn_id


def post_raw(uow: UnitOfWork, key: str, kind: str, reference: str,
             postings: Sequence[dict[str, Any]]) -> int:
    """Append rows without the domain's check (tests, repairs): the store still judges."""
    repo = uow.repos.ledger
    txn_id = repo.append_raw(key, kind, reference, postings)
    if is_sqlite(uow.engine):
        uow.before_commit(repo.check_balanced)
    return txn_id
