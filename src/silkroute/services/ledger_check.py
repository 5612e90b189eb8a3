"""Check the ledger's global invariants over the whole database (`silkroute ledger check`)."""

from __future__ import annotations

from silkroute.domain.ledger import LedgerCheck, check_ledger
from silkroute.domain.money import Money
from silkroute.store.uow import UnitOfWork


def check(uow: UnitOfWork) -> LedgerCheck:
    """Every transaction balanced, all accounts summing to zero per currency, each order's
    escrow equal to its open hold (from the payment records, not the ledger), nobody paid
    out twice; read in one transaction so the picture is consistent."""
    with uow:
        transactions = uow.repos.ledger.transactions()
        postings = uow.repos.ledger.postings()
        holds = {int(r.order_id): Money(int(r.open), r.currency)
                 for r in uow.repos.money.open_holds()}
    return check_ledger(transactions, postings, holds)
