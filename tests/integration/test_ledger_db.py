"""The database itself keeps the ledger append-only and every transaction balanced."""

from __future__ import annotations

import pytest
from sqlalchemy import delete, text, update
from sqlalchemy.exc import DBAPIError

from silkroute.domain.ledger import UnbalancedTransaction
from silkroute.services import ledger_check
from silkroute.services.one_click import one_click
from silkroute.store import money_tables as mt
from silkroute.store.ledger_repo import post_raw
from tests.integration.money_helpers import ledger_size, money_market


def _rows(amounts: list[int]) -> list[dict[str, object]]:
    return [{"account": f"buyer_funding:{i + 1}:KRW", "kind": "buyer_funding",
             "owner_id": i + 1, "currency": "KRW", "amount": a} for i, a in enumerate(amounts)]


def test_update_and_delete_of_postings_fail(uow, engine):
    m = money_market(uow)
    one_click(uow(), m.buyer_seoul, "TEA-1", 1, idempotency_key="k")
    before = ledger_size(uow)
    for stmt in (update(mt.ledger_postings).values(amount=1),
                 delete(mt.ledger_postings),
                 update(mt.ledger_transactions).values(kind="x"),
                 delete(mt.ledger_transactions)):
        with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
            conn.execute(stmt)
    assert ledger_size(uow) == before
    assert ledger_check.check(uow()).ok


def test_unbalanced_transaction_inserted_directly_is_refused_at_commit(uow, engine, backend):
    with pytest.raises((UnbalancedTransaction, DBAPIError), match="unbalanced|sum to"), \
            uow() as u:
        post_raw(u, "bad:1", "capture", "test", _rows([-500, 400]))
    with pytest.raises((UnbalancedTransaction, DBAPIError), match="posting|unbalanced"), \
            uow() as u:
        post_raw(u, "bad:2", "capture", "test", _rows([700]))
    assert ledger_size(uow) == (0, 0)
    with uow() as u:  # a balanced one goes through
        post_raw(u, "ok:1", "capture", "test", _rows([-500, 500]))
    assert ledger_size(uow) == (1, 2)


@pytest.mark.parametrize("backend", [pytest.param("postgres", marks=pytest.mark.postgres)])
def test_postgres_refuses_unbalanced_sql_at_commit_even_without_the_uow(engine, backend):
    # the deferred constraint trigger is PostgreSQL's; SQLite checks in the unit of work
    with pytest.raises(DBAPIError, match="unbalanced"), engine.begin() as conn:
        conn.execute(text("INSERT INTO ledger_transactions (id, key, kind, reference) "
                          "VALUES (900, 'raw', 'capture', 'x')"))
        conn.execute(text("INSERT INTO ledger_postings (transaction_id, account, kind, "
                          "owner_id, currency, amount) VALUES "
                          "(900, 'buyer_funding:1:KRW', 'buyer_funding', 1, 'KRW', -10)"))


def test_ledger_check_names_violations(uow, engine, backend):
    # escrow without an open hold: a capture posted with no payment record behind it
    with uow() as u:
        post_raw(u, "capture:x", "capture", "payment:x", [
            {"account": "buyer_funding:1:KRW", "kind": "buyer_funding", "owner_id": 1,
             "currency": "KRW", "amount": -100},
            {"account": "platform_escrow:7:KRW", "kind": "platform_escrow", "owner_id": 7,
             "currency": "KRW", "amount": 100}])
    res = ledger_check.check(uow())
    assert not res.ok
    assert any("order 7 holds ₩100 in escrow, its open hold is ₩0" in v
               for v in res.violations)
    assert (res.transactions, res.postings, res.accounts) == (1, 2, 2)
