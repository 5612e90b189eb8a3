"""Write-behind on PostgreSQL (store/sql.py): a unit of work keeps the inserts of the order
and payment tables and sends them as one statement before its next statement or its
commit, with ids taken from sequence blocks that double per process."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import pytest
from psycopg.pq import TransactionStatus
from sqlalchemy import Engine, event, func, select
from sqlalchemy.exc import IntegrityError

from silkroute.domain.errors import OutOfStock
from silkroute.services import checkout as checkout_mod
from silkroute.services import one_click as oc
from silkroute.services.catalog import set_stock
from silkroute.services.checkout import CartLine, cancel
from silkroute.services.payments import TestPaymentProvider, checkout_with_shipping
from silkroute.store import money_tables as mt
from silkroute.store import sql
from silkroute.store import tables as t
from silkroute.store.engine import make_engine
from silkroute.store.sql import insert_id
from silkroute.store.uow import UnitOfWork
from tests.integration.money_helpers import money_market

pg = pytest.mark.postgres
IDLE, INTRANS = TransactionStatus.IDLE, TransactionStatus.INTRANS


@pytest.fixture
def backend() -> str:  # the engine fixture on PostgreSQL only: SQLite inserts at once
    return "postgres"


@contextmanager
def statements(engine: Engine) -> Iterator[list[str]]:
    """Every statement the engine sends while the block runs, first words only: through
    SQLAlchemy, and on the driver directly (`sql.execute_on_driver`: the flushes and the
    lock-free reads run before a transaction)."""
    sent: list[str] = []

    def record(_conn, _cursor, statement, *_rest) -> None:  # noqa: ANN001
        sent.append(" ".join(statement.split()[:3]))

    def record_on_driver(conn, statement, _params) -> None:  # noqa: ANN001
        if conn.engine is engine:
            sent.append(" ".join(statement.split()[:3]))

    event.listen(engine, "before_cursor_execute", record)
    try:
        with sql.driver_statements(record_on_driver):
            yield sent
    finally:
        event.remove(engine, "before_cursor_execute", record)


def _buy(uow, market, key: str) -> oc.OneClickResult:  # noqa: ANN001
    return oc.one_click(uow(), market.buyer_seoul, "TEA-1", 1, idempotency_key=key,
                        provider=TestPaymentProvider())


ID_FETCH = "SELECT nextval(pg_get_serial_sequence(%s, 'id'))"
# Three round trips, no BEGIN or COMMIT: the lock-free context read, then two statements
# that are each a transaction of their own (autocommit).
ORDER = ["SELECT skus.id AS",  # context, candidates and network signature
         "WITH w0 AS",         # the reservation (a compare-and-set), checkout, order, line,
         #                       allocation, events, key
         "WITH w0 AS"]         # reserved -> paid (a compare-and-set), payment, ledger,
#                                order money, event


@pg
def test_a_paid_one_click_order_is_three_statements_plus_id_blocks_that_double(
        engine: Engine, uow, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    monkeypatch.setattr(sql, "MAX_BLOCK_AGE_S", 3600.0)  # no block expires in this test
    market = money_market(uow)
    with statements(engine) as sent:
        first = _buy(uow, market, "k1")
    # Six tables take ids (checkouts, orders, order_lines, idempotency_keys, payments,
    # ledger_transactions): a fresh engine fetches a block of one for each.
    assert [s for s in sent if s != ID_FETCH] == ORDER
    assert sent.count(ID_FETCH) == 6
    with statements(engine) as sent:
        second = _buy(uow, market, "k2")
    assert [s for s in sent if s != ID_FETCH] == ORDER
    assert sent.count(ID_FETCH) == 6  # blocks of two now
    with statements(engine) as sent:
        third = _buy(uow, market, "k3")
    assert sent == ORDER  # the second id of each block: no fetch at all
    assert (first.order_id, second.order_id, third.order_id) == (1, 2, 3)
    assert (first.payment_id, second.payment_id, third.payment_id) == (1, 2, 3)
    with engine.connect() as conn:
        key = conn.execute(select(mt.idempotency_keys.c.response)
                           .where(mt.idempotency_keys.c.key == "k3")).scalar_one()
        assert key == {"checkout_id": 3, "order_ids": [3]}  # JSON written as JSON
        assert conn.execute(select(t.order_events.c.order_id, t.order_events.c.from_state,
                                   t.order_events.c.to_state, t.order_events.c.note)
                            .where(t.order_events.c.order_id == 3)
                            .order_by(t.order_events.c.id)).all() == [
            (3, None, "created", ""), (3, "created", "reserved", ""),
            (3, "reserved", "paid", "payment 3")]
        assert conn.execute(select(func.count()).select_from(mt.ledger_postings)
                            .join(mt.ledger_transactions)
                            .where(mt.ledger_transactions.c.reference == "payment:3")
                            ).scalar_one() >= 2


@pg
def test_ids_of_two_processes_interleave_by_block_without_gaps_for_single_orders(
        engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sql, "MAX_BLOCK_AGE_S", 3600.0)  # no block expires in this test
    with two_processes(engine) as (other, checkout_row):
        got = [checkout_row(engine), checkout_row(other),   # blocks of one: 1 | 2
               checkout_row(engine), checkout_row(engine),  # block of two: 3, 4
               checkout_row(other), checkout_row(engine)]   # 5 (of 5, 6) | 7 (of 7..10)
    assert got == [1, 2, 3, 4, 5, 7]


@pg
def test_a_block_older_than_its_age_is_dropped_so_ids_follow_time_across_processes(
        engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sql, "MAX_BLOCK_AGE_S", 0.05)
    with two_processes(engine) as (other, checkout_row):
        got = [checkout_row(engine), checkout_row(engine)]  # 1; then a block of two: 2 (3)
        time.sleep(0.1)                                     # ... which expires unused
        got += [checkout_row(other), checkout_row(engine)]  # 4; 5, not the stale 3
    assert got == [1, 2, 4, 5]


@pg
def test_a_read_after_a_kept_insert_sees_it(engine: Engine) -> None:
    with statements(engine) as sent, UnitOfWork(engine) as u:
        buyer = u.repos.buyers.add("b")
        sent.clear()
        checkout_id = u.repos.orders.add_checkout(buyer)
        assert [s for s in sent if s != ID_FETCH] == []  # kept, not sent
        found = u.conn.execute(select(t.checkouts.c.buyer_id)
                               .where(t.checkouts.c.id == checkout_id)).scalar_one()
        assert found == buyer
        assert [s for s in sent if s != ID_FETCH] == ["INSERT INTO checkouts",
                                                      "SELECT checkouts.buyer_id FROM"]


@pg
def test_a_kept_row_that_breaks_a_constraint_rolls_back_the_whole_unit(
        engine: Engine, uow) -> None:  # noqa: ANN001
    market = money_market(uow)
    key = {"scope": "s", "key": "same", "request_hash": "h", "status": "claimed",
           "response": {}, "expires_at": datetime(2026, 12, 1, tzinfo=UTC)}
    tea = _sku(engine, "TEA-1")
    with pytest.raises(IntegrityError, match="idempotency_keys"), UnitOfWork(engine) as u:
        u.repos.orders.add_checkout(market.buyer_seoul)
        assert u.repos.stock.reserve(tea, market.seoul, 3)
        u.repos.money.add_key(**key)
        u.repos.money.add_key(**key)  # the same (scope, key): refused at the commit
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(t.checkouts)).scalar_one() == 0
        assert conn.execute(select(func.count())
                            .select_from(mt.idempotency_keys)).scalar_one() == 0
        assert conn.execute(select(func.sum(t.stock.c.reserved))).scalar_one() == 0


@pg
def test_a_kept_compare_and_set_that_fails_raises_and_rolls_back_the_whole_unit(
        engine: Engine, uow) -> None:  # noqa: ANN001
    order_id = _reserved_order(uow, 2)
    cancel(uow(), order_id)  # e.g. by a concurrent request: no longer reserved
    calls = []

    def failed(moved: int) -> None:
        calls.append(moved)
        raise RuntimeError(f"moved {moved} of 1")

    with statements(engine) as sent, pytest.raises(RuntimeError, match="moved 0 of 1"), \
            UnitOfWork(engine) as u:
        u.repos.orders.move_all([order_id], "reserved", "paid", failed)
        u.repos.orders.add_events(order_id, [("reserved", "paid")])
        assert calls == []  # kept: nothing sent, nothing checked yet
    assert calls == [0]
    assert [s for s in sent if s != ID_FETCH] == ["WITH w0 AS"]
    with engine.connect() as conn:
        assert conn.execute(select(t.orders.c.state)
                            .where(t.orders.c.id == order_id)).scalar_one() == "cancelled"
        assert conn.execute(select(t.order_events.c.to_state)
                            .where(t.order_events.c.order_id == order_id)
                            .order_by(t.order_events.c.id)).scalars().all() == [
            "created", "reserved", "cancelled"]


@pg
def test_a_unit_keeping_more_than_a_statement_can_carry_sends_it_in_parts(
        engine: Engine, uow) -> None:  # noqa: ANN001
    order_id = _reserved_order(uow, 1)
    # 20,000 rows of 4 columns: 80,000 parameters, more than PostgreSQL's 65,535 per
    # statement. Sent at 30,000 kept parameters (7,500 rows), twice, and the rest at commit.
    with statements(engine) as sent, UnitOfWork(engine) as u:
        u.repos.orders.add_events(order_id, [("reserved", "reserved")] * 20_000)
        assert sent == ["INSERT INTO order_events", "INSERT INTO order_events"]
    assert sent == ["INSERT INTO order_events"] * 3
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(t.order_events)
                            .where(t.order_events.c.order_id == order_id)).scalar_one() == 20_002


@pg
def test_a_kept_reservation_that_loses_its_race_at_commit_checks_out_again_at_once(
        engine: Engine, uow, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    market = money_market(uow, units=5)
    # another buyer takes 4 of the 5 units after we routed, before we commit
    tea = _sku(engine, "TEA-1")
    calls = another_buyer_takes(engine, monkeypatch, "TEA-1", market.seoul, 4)
    with statements(engine) as sent, pytest.raises(OutOfStock, match="1 available"):
        checkout_with_shipping(uow(), market.buyer_seoul, [CartLine("TEA-1", 2)])
    assert calls == [True, False]  # kept first; after the lost race, reserved at once
    reads = ["SELECT (SELECT silkroute_meta.value", "SELECT buyers.id, buyers.name,",
             "SELECT addresses.id, addresses.buyer_id,", "SELECT skus.id, skus.product_id,",
             "SELECT locations.id AS"]
    assert [s for s in sent if s != ID_FETCH] == [
        *reads,
        "UPDATE stock SET",  # the other buyer takes 4 units
        "WITH w0 AS",  # kept reservation and rows, sent before reading the shipping
        #                template: the guard fails there, the transaction rolls back
        *reads]  # again: 1 unit left, so the policy refuses before reserving anything
    with engine.connect() as conn:
        assert conn.execute(select(t.stock.c.reserved).where(
            t.stock.c.sku_id == tea, t.stock.c.location_id == market.seoul)).scalar_one() == 4
        assert conn.execute(select(func.count()).select_from(t.orders)).scalar_one() == 0


@pg
def test_after_a_lost_race_at_commit_the_order_is_routed_again_to_where_stock_is_left(
        engine: Engine, uow, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    market = money_market(uow, units=3)
    set_stock(uow(), "TEA-1", market.busan, 5)
    tea = _sku(engine, "TEA-1")
    # another buyer takes 2 of Seoul's 3 units after we routed, before we commit
    calls = another_buyer_takes(engine, monkeypatch, "TEA-1", market.seoul, 2)
    placed = checkout_with_shipping(uow(), market.buyer_seoul, [CartLine("TEA-1", 2)])
    assert calls == [True, False]
    assert [loc for loc, _lines in placed.orders[0].shipments] == [market.busan]
    with engine.connect() as conn:
        reserved = dict(conn.execute(select(t.stock.c.location_id, t.stock.c.reserved)
                                     .where(t.stock.c.sku_id == tea)).all())
    assert reserved == {market.seoul: 2, market.busan: 2}


@pg
def test_lock_free_reads_run_before_the_transaction_and_the_first_write_begins_it(
        engine: Engine, uow) -> None:  # noqa: ANN001
    market = money_market(uow)
    tea = _sku(engine, "TEA-1")
    read = select(t.buyers.c.id).execution_options(**{sql.LOCK_FREE_READ: True})
    with pytest.raises(RuntimeError, match="boom"), UnitOfWork(engine) as u:
        driver = u.conn.connection.driver_connection
        assert u.conn.execute(read).scalars().all() == [market.buyer_seoul,
                                                        market.buyer_busan]
        assert (driver.autocommit, driver.info.transaction_status) == (True, IDLE)
        assert u.repos.stock.reserve(tea, market.seoul, 3)  # not marked: begins it
        assert (driver.autocommit, driver.info.transaction_status) == (False, INTRANS)
        raise RuntimeError("boom")
    assert driver.autocommit is False  # back in the pool as it came
    with engine.connect() as conn:  # the reservation rolled back with the transaction
        assert conn.execute(select(t.stock.c.reserved).where(
            t.stock.c.sku_id == tea, t.stock.c.location_id == market.seoul)).scalar_one() == 0


@pg
def test_a_read_that_is_not_marked_begins_the_transaction_at_once(engine: Engine) -> None:
    with UnitOfWork(engine) as u:
        driver = u.conn.connection.driver_connection
        u.conn.execute(select(t.buyers.c.id)).all()
        assert (driver.autocommit, driver.info.transaction_status) == (False, INTRANS)


@pg
def test_a_savepoint_rollback_drops_the_rows_kept_after_it_only(engine: Engine) -> None:
    with UnitOfWork(engine) as u:
        buyer = u.repos.buyers.add("b")
        kept = u.repos.orders.add_checkout(buyer)
        savepoint = u.conn.begin_nested()
        dropped = u.repos.orders.add_checkout(buyer)
        savepoint.rollback()
        after = u.repos.orders.add_checkout(buyer)
    with engine.connect() as conn:
        ids = conn.execute(select(t.checkouts.c.id).order_by(t.checkouts.c.id)).scalars()
        assert list(ids) == [kept, after]
    assert dropped not in (kept, after)


@pg
def test_a_failed_unit_sends_nothing_it_kept(engine: Engine) -> None:
    with UnitOfWork(engine) as u:
        buyer = u.repos.buyers.add("b")
    with (statements(engine) as sent, pytest.raises(RuntimeError, match="boom"),
          UnitOfWork(engine) as u):
        u.repos.orders.add_checkout(buyer)
        raise RuntimeError("boom")
    assert [s for s in sent if s != ID_FETCH] == []
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(t.checkouts)).scalar_one() == 0


def test_sqlite_inserts_at_once(tmp_path) -> None:  # noqa: ANN001
    from silkroute.store.migrate import upgrade

    eng = make_engine(f"sqlite:///{tmp_path / 'w.db'}")
    upgrade(eng)
    try:
        with statements(eng) as sent, UnitOfWork(eng) as u:
            buyer = u.repos.buyers.add("b")
            sent.clear()
            u.repos.orders.add_checkout(buyer)
            assert sent == ["INSERT INTO checkouts"]
    finally:
        eng.dispose()


@contextmanager
def two_processes(engine: Engine) -> Iterator[tuple[Engine, Callable[[Engine], int]]]:
    """A second engine on the same database (another process's id blocks) and a function
    that inserts one checkout row through a given engine and returns its id."""
    other = make_engine(engine.url.render_as_string(hide_password=False))
    with UnitOfWork(engine) as u:
        buyer = u.repos.buyers.add("b")

    def checkout_row(eng: Engine) -> int:
        with UnitOfWork(eng) as u:
            return insert_id(u.conn, t.checkouts, {"buyer_id": buyer})

    try:
        yield other, checkout_row
    finally:
        other.dispose()


def another_buyer_takes(engine: Engine, monkeypatch: pytest.MonkeyPatch, sku: str,
                        location: int, units: int) -> list[bool]:
    """Make checkout's first routing (the one that keeps its reservation) be followed by
    another buyer reserving `units` there; returns the `keep` flag of every routing."""
    sku_id = _sku(engine, sku)
    real = checkout_mod._route_and_reserve
    calls: list[bool] = []

    def route_then_lose(u, requests, policy, first=None, keep=False):  # noqa: ANN001, ANN202
        calls.append(keep)
        decisions = real(u, requests, policy, first, keep)
        if keep:
            with UnitOfWork(engine) as other:
                assert other.repos.stock.reserve(sku_id, location, units)
        return decisions

    monkeypatch.setattr(checkout_mod, "_route_and_reserve", route_then_lose)
    return calls


def _reserved_order(uow, quantity: int) -> int:  # noqa: ANN001
    """A money market and one reserved (unpaid) order of `quantity` TEA-1; its id."""
    market = money_market(uow)
    placed = checkout_with_shipping(uow(), market.buyer_seoul, [CartLine("TEA-1", quantity)])
    return placed.orders[0].order_id


def _sku(engine: Engine, code: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(t.skus.c.id).where(t.skus.c.code == code))
                   .scalar_one())


@pg
def test_the_one_click_context_reads_the_same_on_the_driver_as_through_sqlalchemy(
        engine: Engine, uow) -> None:  # noqa: ANN001
    """Given a market and one paid one-click order, the context read run on the driver
    (before the unit of work's transaction) gives the rows SQLAlchemy gives inside it."""
    from silkroute.store.money_repo import _one_click_context

    market = money_market(uow)
    _buy(uow, market, "k1")
    context = _one_click_context()
    rows = {}
    for key in ("k1", "k2"):  # the key claimed, and a fresh one
        params = {"buyer_id": market.buyer_seoul, "sku": "TEA-1", "period": "2026-11",
                  "scope": f"one_click:buyer:{market.buyer_seoul}", "key": key}
        with statements(engine) as sent, UnitOfWork(engine) as u:
            on_driver = context.all(u.conn, params)
            assert u.conn.info.get(sql._OUTSIDE)  # no transaction begun by it
        assert sent == ["SELECT skus.id AS"]
        with UnitOfWork(engine) as u:
            u.conn.execute(select(1))  # the transaction has begun: through SQLAlchemy
            through_sqlalchemy = context.all(u.conn, params)
        assert [r._fields for r in on_driver] == [tuple(r._fields)
                                                  for r in through_sqlalchemy]
        assert [tuple(r) for r in on_driver] == [tuple(r) for r in through_sqlalchemy]
        rows[key] = on_driver
    template = {"currency": "KRW", "flat_fee": 3000, "weight_bands": [],
                "free_threshold": 50000, "free_for_members": True}
    assert [tuple(r) for r in rows["k2"]] == [(
        1, "KRW", 1, "TEA-1", True, 300, 12000, market.buyer_seoul, 1, 37.566, 126.9784,
        1835848, 1, "4242424242424242", "KRW", template, 1, None, None, 1, "Seoul WH",
        37.566, 126.9784, 19, None, None, 2, 2)]
    assert [r.key_id for r in rows["k1"]] == [1]  # the claimed key; otherwise the same
    assert [tuple(r)[:18] + tuple(r)[19:] for r in rows["k1"]] == \
        [tuple(r)[:18] + tuple(r)[19:] for r in rows["k2"]]
