"""Group commit of buy-nows (`one_click_group`, `SharedUnitOfWork`) on PostgreSQL: every
request answers exactly as `one_click` alone would, in a handful of shared statements."""

from __future__ import annotations

import random
import re
import threading
from collections import Counter
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import Engine, event, func, select
from sqlalchemy.exc import IntegrityError

from silkroute.domain.carriers import NetworkSnapshot
from silkroute.domain.catalog import Product, Sku
from silkroute.domain.errors import Conflict, OutOfStock
from silkroute.domain.money import Money
from silkroute.domain.shipping import ShippingTemplate
from silkroute.payments.test_provider import TestPaymentProvider
from silkroute.services import ledger_check, payments
from silkroute.services import one_click as oc
from silkroute.services import routing_policy as rp
from silkroute.services.buyers import register_buyer
from silkroute.services.catalog import add_location, list_product, open_shop, set_stock
from silkroute.services.checkout import cancel
from silkroute.store import money_tables as mt
from silkroute.store import sql
from silkroute.store import tables as t
from silkroute.store.engine import make_engine
from silkroute.store.migrate import upgrade
from silkroute.store.network_repo import load_snapshot, store_network
from silkroute.store.repositories import _more_reserved
from silkroute.store.sql import Guard, PendingWrites
from silkroute.store.uow import BrokenGroup, SharedUnitOfWork, UnitOfWork
from tests.integration.money_helpers import APPROVE, DECLINE, assert_invariants
from tests.integration.test_checkout_router import BUSAN, SEOUL, _carrier

pg = pytest.mark.postgres
ID_FETCH = "SELECT nextval(pg_get_serial_sequence(%s, 'id'))"
PRICES = {"TEA-1": 12000, "MUG-1": 8000, "POT-1": 30000, "CUP-1": 5000}
CODES = list(PRICES)
GROUP = ["SELECT req.idx, ctx.sku_id,", "WITH w0 AS", "WITH w0 AS"]  # contexts, checkouts,
# payment records


@pytest.fixture
def backend() -> str:  # group commit needs write-behind: PostgreSQL only
    return "postgres"


@dataclass
class Shop:
    engine: Engine
    seller: int
    seoul: int
    buyers: list[int]
    skus: dict[str, int] = field(default_factory=dict)

    def uow(self) -> UnitOfWork:
        return UnitOfWork(self.engine)

    def add_buyers(self, n: int, card: str | None = APPROVE) -> list[int]:
        new = [register_buyer(self.uow(), f"buyer {len(self.buyers) + i}",
                              city="Seoul").buyer_id for i in range(n)]
        for buyer in new if card else ():
            payments.add_card(self.uow(), buyer, card)
        self.buyers += new
        return new


def shop(engine: Engine, stock: dict[str, int], buyers: int) -> Shop:
    """A KRW seller with a Seoul warehouse holding `stock`, a flat ₩3,000 shipping template
    free from ₩50,000, and `buyers` Seoul buyers, each with a card that approves."""
    s = Shop(engine, 0, 0, [])
    s.seller = open_shop(s.uow(), "Tea House", "KRW").seller_id
    s.seoul = add_location(s.uow(), s.seller, "Seoul WH", city="Seoul").location_id
    list_product(s.uow(), Product(s.seller, "Tea things", tuple(
        Sku(code, Money(price, "KRW"), 300) for code, price in PRICES.items())))
    for code, units in stock.items():
        set_stock(s.uow(), code, s.seoul, units)
    payments.set_shipping_template(s.uow(), s.seller, ShippingTemplate.flat(
        Money(3000, "KRW"), free_threshold=Money(50000, "KRW")))
    s.add_buyers(buyers)
    with engine.connect() as conn:
        s.skus = dict(conn.execute(select(t.skus.c.code, t.skus.c.id)).all())
    return s


def paid(out: Any, code: str, qty: int) -> None:
    """`out` is a first (not replayed) paid result of `qty` × `code` with exact amounts."""
    items = PRICES[code] * qty
    shipping = 0 if items >= 50000 else 3000
    assert isinstance(out, oc.OneClickResult), out
    assert (out.state, out.currency, out.items_amount, out.shipping_amount, out.total,
            out.replayed) == ("paid", "KRW", items, shipping, items + shipping, False)


def same_error(got: Any, alone: Exception) -> None:
    assert isinstance(got, Exception), got
    assert (type(got), got.code, got.field, str(got)) == \
        (type(alone), alone.code, alone.field, str(alone))  # type: ignore[attr-defined]


def raised(call: Any) -> Any:
    try:
        call()
    except Exception as exc:
        return exc
    raise AssertionError("did not raise")


def alone(s: Shop, r: oc.BuyNow, provider: Any) -> Any:
    return oc.one_click(s.uow(), r.buyer_id, r.sku, r.quantity,
                        idempotency_key=r.idempotency_key, provider=provider)


def bought(s: Shop, reqs: Iterable[oc.BuyNow]) -> Counter[int]:
    return sum((Counter({s.skus[r.sku]: r.quantity}) for r in reqs), Counter())


def reserved(engine: Engine) -> dict[int, tuple[int, int]]:
    """(on hand, reserved) per SKU id (of the one location)."""
    with engine.connect() as conn:
        return {r.sku_id: (r.on_hand, r.reserved) for r in conn.execute(select(t.stock))}


def states(engine: Engine) -> Counter[str]:
    with engine.connect() as conn:
        return Counter(conn.execute(select(t.orders.c.state)).scalars())


def ledger_ok(engine: Engine, transactions: int) -> None:
    check = ledger_check.check(UnitOfWork(engine))
    assert (check.violations, check.transactions) == ((), transactions)
    assert_invariants(engine)  # the ledger again, and stock reserved == allocations held


@pytest.fixture
def provider(engine: Engine) -> Iterator[Any]:
    """The durable test provider: authorizes and captures a whole group in one statement."""
    durable = TestPaymentProvider.durable(engine)
    yield durable
    durable.close()


@contextmanager
def statements(engine: Engine) -> Iterator[Any]:
    """What the engine sends: `.words`, the first words of each statement through SQLAlchemy
    or on the driver (ids fetches left out), and
    `.on_driver`, the (sql, params) of those on the driver (`execute_on_driver`: the
    contexts read, then the flushes)."""
    sent = SimpleNamespace(words=[], on_driver=[])

    def record(_conn, _cursor, statement, *_rest):
        if (words := " ".join(statement.split()[:3])) != ID_FETCH:
            sent.words.append(words)

    def record_on_driver(conn, statement, params):
        if conn.engine is engine:
            sent.words.append(" ".join(statement.split()[:3]))
            sent.on_driver.append((statement, params))

    event.listen(engine, "before_cursor_execute", record)
    try:
        with sql.driver_statements(record_on_driver):
            yield sent
    finally:
        event.remove(engine, "before_cursor_execute", record)


def alone_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The idempotency keys of the requests that took `one_click`'s own path."""
    calls: list[str] = []
    real = oc.one_click

    def counting(uow, buyer_id, sku, quantity, **kw):
        calls.append(kw["idempotency_key"])
        return real(uow, buyer_id, sku, quantity, **kw)

    monkeypatch.setattr(oc, "one_click", counting)
    return calls


def reservations(statement: tuple[str, Any]) -> list[tuple[int, int]]:
    """(sku id, quantity) of each stock reservation in a flushed statement, in order (the
    guards' parameters come first: quantity, sku, location, quantity)."""
    text, params = statement
    return [(params[4 * i + 1], params[4 * i]) for i in range(text.count("UPDATE stock"))]


# 1, 2: a group of usual requests -----------------------------------------------------------
@pg
@pytest.mark.parametrize("size", [4, 8, 16])
def test_a_group_pays_every_request_in_three_statements_whatever_its_size(
        engine: Engine, monkeypatch: pytest.MonkeyPatch, size: int, provider: Any) -> None:
    s = shop(engine, dict.fromkeys(CODES, 100), size)
    # SKUs in reverse id order: the statement still reserves in (sku, location) order
    reqs = [oc.BuyNow(b, CODES[-1 - i % 4], 1 + i % 3, f"k{i}") for i, b in enumerate(s.buyers)]
    calls = alone_calls(monkeypatch)
    with statements(engine) as sent:
        out = oc.one_click_group(engine, reqs, provider=provider)
        assert (provider.authorization_count, provider.capture_count) == (size, size)
        assert provider.captured_total("KRW") == Money(sum(o.total for o in out), "KRW")
    assert calls == []  # nobody took the alone path
    assert sent.words == GROUP  # the contexts, the checkouts, the payments: for any size
    for r, o in zip(reqs, out, strict=True):
        paid(o, r.sku, r.quantity)
    assert len({o.order_id for o in out}) == len({o.checkout_id for o in out}) == \
        len({o.payment_id for o in out}) == size
    units = bought(s, reqs)
    assert reservations(sent.on_driver[1]) == sorted(units.items())  # one per SKU, summed
    assert reserved(engine) == {k: (100, units[k]) for k in units}
    assert states(engine) == {"paid": size}
    ledger_ok(engine, size)


@pg
def test_requests_for_one_sku_at_one_location_make_one_summed_reservation(
        engine: Engine, monkeypatch: pytest.MonkeyPatch, provider: Any) -> None:
    s = shop(engine, {"TEA-1": 20}, 6)
    reqs = [oc.BuyNow(b, "TEA-1", 1 + i % 3, f"k{b}") for i, b in enumerate(s.buyers)]
    calls = alone_calls(monkeypatch)
    with statements(engine) as sent:
        out = oc.one_click_group(engine, reqs, provider=provider)
    assert (calls, sent.words) == ([], GROUP)
    assert reservations(sent.on_driver[1]) == [(s.skus["TEA-1"], 12)]
    for r, o in zip(reqs, out, strict=True):
        paid(o, r.sku, r.quantity)
    assert reserved(engine)[s.skus["TEA-1"]] == (20, 12)
    # a group with one valid request: it runs alone
    zero = oc.BuyNow(s.buyers[1], "TEA-1", 0, "zero")
    out = oc.one_click_group(engine, [oc.BuyNow(s.buyers[0], "TEA-1", 1, "ok"), zero])
    assert calls == ["ok"]
    paid(out[0], "TEA-1", 1)
    same_error(out[1], raised(lambda: alone(s, zero, None)))
    assert states(engine) == {"paid": 7}
    ledger_ok(engine, 7)


# 3: stock short ----------------------------------------------------------------------------
@pg
def test_a_group_wanting_more_than_the_stock_falls_back_and_sells_exactly_the_stock(
        engine: Engine, monkeypatch: pytest.MonkeyPatch, provider: Any) -> None:
    s = shop(engine, {"TEA-1": 10}, 17)
    reqs = [oc.BuyNow(b, "TEA-1", 1, f"k{i}") for i, b in enumerate(s.buyers[:16])]
    calls = alone_calls(monkeypatch)
    out = oc.one_click_group(engine, reqs, provider=provider)
    # the summed reservation (16 of 10) failed: the whole statement, then each alone
    assert calls == [r.idempotency_key for r in reqs]
    for o in out[:10]:
        paid(o, "TEA-1", 1)
    late = raised(lambda: alone(s, oc.BuyNow(s.buyers[16], "TEA-1", 1, "late"), provider))
    assert (type(late), late.code, late.field, str(late)) == (
        OutOfStock, "out_of_stock", "sku",
        "out of stock: SKU TEA-1 has 0 available, 1 requested")
    for o in out[10:]:
        same_error(o, late)
        assert (o.sku, o.requested, o.available) == ("TEA-1", 1, 0)
    assert provider.capture_count == 10
    assert reserved(engine)[s.skus["TEA-1"]] == (10, 10)
    assert states(engine) == {"paid": 10}
    ledger_ok(engine, 10)


# 4: a mixed group, each answer compared with one_click alone -------------------------------
@pg
def test_a_mixed_group_answers_each_request_as_one_click_alone(
        engine: Engine, monkeypatch: pytest.MonkeyPatch, provider: Any) -> None:
    s = shop(engine, {"TEA-1": 50, "MUG-1": 50}, 4)
    (no_card,), (declined,) = s.add_buyers(1, card=None), s.add_buyers(1, card=DECLINE)
    b0, b1, b2, b3 = s.buyers[:4]
    first = alone(s, oc.BuyNow(b0, "TEA-1", 1, "first"), provider)
    reqs = [oc.BuyNow(b1, "TEA-1", 1, "g0"),
            oc.BuyNow(b2, "NOPE-1", 1, "g1"),       # no such SKU
            oc.BuyNow(no_card, "TEA-1", 1, "g2"),   # no payment method
            oc.BuyNow(declined, "TEA-1", 1, "g3"),  # the card declines
            oc.BuyNow(b3, "TEA-1", 1, ""),          # an invalid key
            oc.BuyNow(b0, "TEA-1", 1, "first"),     # a replay
            oc.BuyNow(b0, "TEA-1", 2, "first"),     # the key, another request
            oc.BuyNow(b2, "MUG-1", 2, "g7"),
            oc.BuyNow(b3, "TEA-1", 5, "g8")]
    calls = alone_calls(monkeypatch)
    out = oc.one_click_group(engine, reqs, provider=provider)
    # the decline was placed in the group and charged on its own (not via one_click)
    assert calls == ["g1", "g2", "first", "first"]
    for i in (0, 7, 8):
        paid(out[i], reqs[i].sku, reqs[i].quantity)
    assert out[5] == replace(first, replayed=True)
    assert alone(s, reqs[5], provider) == out[5]
    for i in (1, 2, 4, 6):  # the same request alone now
        same_error(out[i], raised(lambda i=i: alone(s, reqs[i], provider)))
    assert [out[i].code for i in (1, 2, 4, 6)] == [
        "not_found", "no_payment_method", "validation_error", "idempotency_key_reused"]
    # a decline alone, under another key: the same refusal, remembered the same way
    decline_alone = oc.BuyNow(declined, "TEA-1", 1, "g3-alone")
    same_error(out[3], raised(lambda: alone(s, decline_alone, provider)))
    assert (out[3].code, str(out[3])) == ("payment_declined",
                                          "payment declined: card_declined")
    same_error(raised(lambda: alone(s, reqs[3], provider)),  # the retries replay it
               raised(lambda: alone(s, decline_alone, provider)))
    with engine.connect() as conn:
        keys = {k.key: (k.status, k.response.get("error")) for k in conn.execute(
            select(mt.idempotency_keys).where(mt.idempotency_keys.c.scope.like(
                f"%:{declined}")))}
        order_states = Counter((o.buyer_id, o.state) for o in conn.execute(select(t.orders)))
    assert keys["g3"] == keys["g3-alone"] == ("failed", {
        "code": "payment_declined", "message": "payment declined: card_declined",
        "field": "payment_method"})
    assert order_states == {(b0, "paid"): 1, (b1, "paid"): 1, (b2, "paid"): 1,
                            (b3, "paid"): 1, (declined, "cancelled"): 2}
    assert reserved(engine)[s.skus["TEA-1"]] == (50, 7)
    ledger_ok(engine, 4)


@pg
def test_one_new_key_twice_in_a_group_makes_one_order_and_replays_it(
        engine: Engine, monkeypatch: pytest.MonkeyPatch, provider: Any) -> None:
    s = shop(engine, {"TEA-1": 50}, 2)
    reqs = [oc.BuyNow(s.buyers[0], "TEA-1", 1, "dup"), oc.BuyNow(s.buyers[1], "TEA-1", 1, "x"),
            oc.BuyNow(s.buyers[0], "TEA-1", 1, "dup")]
    calls = alone_calls(monkeypatch)
    out = oc.one_click_group(engine, reqs, provider=provider)
    assert provider.capture_count == 2
    paid(out[0], "TEA-1", 1)
    paid(out[1], "TEA-1", 1)
    assert out[2] == replace(out[0], replayed=True)
    # both claims of the key in one statement break its unique index: all of it alone
    assert calls == ["dup", "x", "dup"]
    assert states(engine) == {"paid": 2}
    ledger_ok(engine, 2)


@pg
def test_a_refused_shared_payment_record_records_the_others_alone(
        engine: Engine, monkeypatch: pytest.MonkeyPatch, provider: Any) -> None:
    s = shop(engine, {"TEA-1": 10}, 4)
    real_pay, real_charge = oc._pay_group, oc._charge

    def cancel_second(eng, hooks, placed, provider, outcomes):  # say, by its buyer
        cancel(s.uow(), placed[1].orders[0].order_id)
        return real_pay(eng, hooks, placed, provider, outcomes)

    def cancel_then_charge(uow, hooks, placed, provider):
        cancel(s.uow(), placed.orders[0].order_id)
        return real_charge(uow, hooks, placed, provider)

    monkeypatch.setattr(oc, "_pay_group", cancel_second)
    reqs = [oc.BuyNow(b, "TEA-1", 1, f"k{b}") for b in s.buyers[:3]]
    out = oc.one_click_group(engine, reqs, provider=provider)
    monkeypatch.setattr(oc, "_charge", cancel_then_charge)
    refused = raised(lambda: alone(s, oc.BuyNow(s.buyers[3], "TEA-1", 1, "a"), provider))
    paid(out[0], "TEA-1", 1)
    paid(out[2], "TEA-1", 1)
    assert isinstance(out[1], Conflict) and isinstance(refused, Conflict)
    said = "orders [id] changed concurrently; nothing recorded"
    assert [(e.code, e.field, re.sub(r"\[\d+\]", "[id]", str(e))) for e in (out[1], refused)] \
        == [("concurrent_change", "state", said)] * 2
    assert states(engine) == {"paid": 2, "cancelled": 2}
    ledger_ok(engine, 2)


# 5: SharedUnitOfWork ------------------------------------------------------------------------
def _checkouts(engine: Engine) -> list[int]:
    with engine.connect() as conn:
        return list(conn.execute(select(t.checkouts.c.id).order_by(t.checkouts.c.id))
                    .scalars())


def _short(changed: int) -> None:
    raise RuntimeError(f"short: {changed} rows")


def _opened(engine: Engine) -> tuple[SharedUnitOfWork, list[bool]]:
    told: list[bool] = []
    group = SharedUnitOfWork(engine).open()
    group.defer(told.append)
    return group, told


@pg
def test_a_shared_unit_keeps_the_calls_that_succeeded_unless_one_failed_after_a_flush(
        engine: Engine) -> None:
    s = shop(engine, {"TEA-1": 5}, 1)
    group, told = _opened(engine)
    with group:
        kept = group.repos.orders.add_checkout(s.buyers[0])
    with pytest.raises(RuntimeError, match="refused"), group:  # its rows and reservation
        group.repos.orders.add_checkout(s.buyers[0])
        assert group.repos.stock.reserve_kept(s.skus["TEA-1"], s.seoul, 9, _short)
        raise RuntimeError("refused")
    with group:
        assert group.repos.stock.reserve_kept(s.skus["TEA-1"], s.seoul, 2, _short)
    assert told == [] and not group.broken
    group.commit()
    assert told == [True]
    assert _checkouts(engine) == [kept]
    assert reserved(engine)[s.skus["TEA-1"]] == (5, 2)
    # a call that fails after the group's rows were sent (a read flushes them) breaks it
    group, told = _opened(engine)
    with group:
        group.repos.orders.add_checkout(s.buyers[0])
    with pytest.raises(RuntimeError, match="refused"), group:
        group.repos.orders.add_checkout(s.buyers[0])
        group.conn.execute(select(func.count()).select_from(t.checkouts)).scalar_one()
        raise RuntimeError("refused")
    assert group.broken
    with pytest.raises(BrokenGroup):
        group.commit()
    assert told == [False]
    assert _checkouts(engine) == [kept]


@pg
@pytest.mark.parametrize("failure", ["guard", "duplicate key"])
def test_a_shared_commit_that_fails_keeps_nothing_and_tells_false(
        engine: Engine, failure: str) -> None:
    s = shop(engine, {"TEA-1": 5}, 1)
    group, told = _opened(engine)
    for i in range(2):  # a guard: 3 + 3 of 5 once summed; else one key twice
        with group:
            group.repos.orders.add_checkout(s.buyers[0])
            assert group.repos.stock.reserve_kept(s.skus["TEA-1"], s.seoul,
                                                  3 if failure == "guard" else 1, _short)
            group.repos.money.add_key(scope="s", key=f"k{i}" if failure == "guard" else "k",
                                      request_hash="h", status="claimed", response={},
                                      expires_at=datetime(2099, 1, 1, tzinfo=UTC))
    with pytest.raises(RuntimeError if failure == "guard" else IntegrityError,
                       match="short: 0 rows" if failure == "guard" else "idempotency_keys"):
        group.commit()
    assert told == [False]
    assert _checkouts(engine) == []
    assert reserved(engine)[s.skus["TEA-1"]] == (5, 0)


def test_on_sqlite_a_shared_unit_refuses_and_a_group_runs_each_request_alone(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    eng = make_engine(f"sqlite:///{tmp_path / 'g.db'}")
    upgrade(eng)
    try:
        with pytest.raises(RuntimeError, match="needs write-behind"):
            SharedUnitOfWork(eng).open()
        assert eng.pool.checkedout() == 0  # its connection went back
        s = shop(eng, {"TEA-1": 10}, 2)
        calls = alone_calls(monkeypatch)
        out = oc.one_click_group(eng, [oc.BuyNow(b, "TEA-1", 2, f"k{b}") for b in s.buyers])
        assert calls == [f"k{b}" for b in s.buyers]
        for o in out:
            paid(o, "TEA-1", 2)
        ledger_ok(eng, 2)  # and 4 reserved, by their allocations
    finally:
        eng.dispose()


# 6: PendingWrites --------------------------------------------------------------------------
def _guard(qty: int, sku: int, keyed: bool = True) -> Guard:
    return Guard("UPDATE stock ... %s %s %s %s", (qty, sku, 1, qty), 1, _short,
                 ("stock", sku, 1) if keyed else None, _more_reserved)


def test_keyed_guards_merge_and_undo_drops_what_was_kept_after_the_mark() -> None:
    pending = PendingWrites()
    for guard in (_guard(2, 7), _guard(1, 8), _guard(3, 7), _guard(4, 7, keyed=False)):
        pending.add_guard(guard)
    assert [(g.params, g.key) for g in pending.guards] == [
        ((5, 7, 1, 5), ("stock", 7, 1)), ((1, 8, 1, 1), ("stock", 8, 1)),
        ((4, 7, 1, 4), None)]  # unkeyed: never merged
    pending.guards[0] = pending.guards[0]._replace(merge=None)
    with pytest.raises(AssertionError, match="needs `merge`"):
        pending.add_guard(_guard(1, 7))
    # mark / undo: what was kept after the mark goes, unless a flush sent it meanwhile
    pending = PendingWrites()
    pending.add(t.checkouts, {"buyer_id": 1, "id": 1})
    pending.add_guard(_guard(2, 7))
    mark = pending.mark()
    pending.add(t.checkouts, {"buyer_id": 2, "id": 2})
    pending.add(t.orders, {"id": 3})
    pending.add_guard(_guard(3, 7))  # merged into the kept guard: undone too
    pending.add_guard(_guard(1, 9))
    assert pending.params == 5  # row parameters (guards carry their own)
    assert pending.undo(mark) is True
    assert {k[0].name: v for k, v in pending.groups.items()} == {
        "checkouts": [{"buyer_id": 1, "id": 1}]}
    assert ([g.params for g in pending.guards], pending.params) == ([(2, 7, 1, 2)], 2)
    assert pending.undo(pending.mark()) is True  # nothing after it: nothing changes
    sent, pending.groups = pending.groups, {}  # as `flush` does
    assert pending.undo(mark) is False
    assert not pending.groups and sent


# 7: races ----------------------------------------------------------------------------------
def _race(engine: Engine, provider: Any, groups: list[list[list[oc.BuyNow]]]) -> list[Any]:
    """Each thread runs its groups in turn, all threads at once; every outcome."""
    start = threading.Barrier(len(groups))

    def run(mine: list[list[oc.BuyNow]]) -> list[Any]:
        start.wait()
        return [o for g in mine for o in oc.one_click_group(engine, g, provider=provider)]

    with ThreadPoolExecutor(len(groups)) as pool:
        return [o for outs in pool.map(run, groups) for o in outs]


@pg
def test_four_threads_of_groups_in_different_orders_never_deadlock(
        engine: Engine, monkeypatch: pytest.MonkeyPatch, provider: Any) -> None:
    s = shop(engine, dict.fromkeys(CODES, 1000), 8)

    def ordered(reqs: list[oc.BuyNow], thread: int, r: int) -> list[oc.BuyNow]:
        if thread > 1:  # shuffled, with a fixed seed
            random.Random(thread * 100 + r).shuffle(reqs)
        return reqs[::-1] if thread == 1 else reqs

    groups = [[ordered([oc.BuyNow(b, CODES[j % 4], 1 + j % 2, f"t{thread}-r{r}-{j}")
                        for j, b in enumerate(s.buyers)], thread, r) for r in range(10)]
              for thread in range(4)]
    calls = alone_calls(monkeypatch)
    out = _race(engine, provider, groups)
    assert [o for o in out if not isinstance(o, oc.OneClickResult)] == []
    assert calls == []  # no shared statement failed (a deadlock would send them alone)
    assert len({o.order_id for o in out}) == 320
    units = bought(s, (r for rounds in groups for reqs in rounds for r in reqs))
    assert reserved(engine) == {k: (1000, units[k]) for k in units}
    assert states(engine) == {"paid": 320}
    ledger_ok(engine, 320)


@pg
def test_four_threads_of_groups_racing_for_scarce_stock_sell_exactly_the_stock(
        engine: Engine, provider: Any) -> None:
    s = shop(engine, {"TEA-1": 20}, 8)
    groups = [[[oc.BuyNow(b, "TEA-1", 1, f"t{thread}-{b}") for b in s.buyers]]
              for thread in range(4)]
    out = _race(engine, provider, groups)
    assert Counter(type(o).__name__ for o in out) == {"OneClickResult": 20, "OutOfStock": 12}
    for o in out:
        if isinstance(o, OutOfStock):
            assert (o.code, o.field, o.sku, o.requested) == ("out_of_stock", "sku", "TEA-1", 1)
        else:
            paid(o, "TEA-1", 1)
    assert reserved(engine)[s.skus["TEA-1"]] == (20, 20)
    assert states(engine) == {"paid": 20}
    ledger_ok(engine, 20)


# 8: the router's capacity after a group that rolled back -----------------------------------
def _capacity_used(engine: Engine) -> tuple[dict[int, int], dict[int, int]]:
    """Parcels the router counts as taken today, per location and per carrier."""
    with UnitOfWork(engine) as u:
        state = rp.router_state(u)
    assert state is not None
    ix, cap = state.index, state.capacity
    return ({int(i): int(ix.loc_capacity[p] - cap.loc_left[p]) for i, p in ix.loc_pos.items()},
            {int(i): int(ix.car_capacity[p] - cap.car_left[p]) for i, p in ix.car_pos.items()})


@pg
def test_a_rolled_back_group_gives_the_router_back_every_parcel_it_took(
        engine: Engine, monkeypatch: pytest.MonkeyPatch, provider: Any) -> None:
    rp.forget_router_states()
    try:
        s = shop(engine, {"TEA-1": 3}, 5)
        busan = add_location(s.uow(), s.seller, "Busan WH", city="Busan").location_id
        set_stock(s.uow(), "TEA-1", busan, 10)
        with s.uow() as u:
            zones = load_snapshot(u.conn, with_stock=False).zones
            store_network(u.conn, NetworkSnapshot("KR", "KRW", zones, [], [
                _carrier(7, "Seoul courier", {SEOUL}, 2_000, 1),
                _carrier(9, "Seoul-Busan line", {SEOUL, BUSAN}, 3_000, 100)]), "test:tiny")
        assert _capacity_used(engine) == ({s.seoul: 0, busan: 0}, {7: 0, 9: 0})
        calls = alone_calls(monkeypatch)
        reqs = [oc.BuyNow(b, "TEA-1", 1, f"k{b}") for b in s.buyers]
        out = oc.one_click_group(engine, reqs, provider=provider)
        for o in out:
            paid(o, "TEA-1", 1)
        # each request routed to Seoul on its own read (3 there): 5 of 3 failed, all alone
        assert calls == [r.idempotency_key for r in reqs]
        with engine.connect() as conn:
            allocs = conn.execute(select(t.allocations.c.location_id,
                                         t.allocations.c.carrier_id)).all()
            held = dict(conn.execute(select(t.stock.c.location_id, t.stock.c.reserved)).all())
        assert len(allocs) == 5 and held[s.seoul] == 3
        assert held == Counter(a.location_id for a in allocs)
        assert _capacity_used(engine) == (  # exactly the committed orders' parcels
            {loc: sum(a.location_id == loc for a in allocs) for loc in (s.seoul, busan)},
            {car: sum(a.carrier_id == car for a in allocs) for car in (7, 9)})
        ledger_ok(engine, 5)
    finally:
        rp.forget_router_states()


# a call that sent statements (a split reservation) and then failed breaks the group -------
@pg
def test_a_split_order_refused_after_reserving_leaves_no_reservation(
        engine: Engine, provider: Any) -> None:
    s = shop(engine, {"TEA-1": 1, "MUG-1": 5}, 2)
    busan = add_location(s.uow(), s.seller, "Busan WH", city="Busan").location_id
    set_stock(s.uow(), "TEA-1", busan, 1)  # 2 TEA-1: one from each warehouse
    payments.set_shipping_template(s.uow(), s.seller, ShippingTemplate.by_weight(
        [(500, Money(3000, "KRW"))]))  # 2 x 300 g is above the heaviest band
    heavy = oc.BuyNow(s.buyers[0], "TEA-1", 2, "heavy")
    refused = raised(lambda: alone(s, heavy, provider))
    assert (type(refused).__name__, refused.field) == ("ValidationError", "weight_grams")
    assert reserved(engine)[s.skus["TEA-1"]] == (1, 0)  # alone: nothing kept
    out = oc.one_click_group(engine, [heavy, oc.BuyNow(s.buyers[1], "MUG-1", 1, "light")],
                             provider=provider)
    paid(out[1], "MUG-1", 1)
    with engine.connect() as conn:
        assert conn.execute(select(func.sum(t.stock.c.reserved)).where(
            t.stock.c.sku_id == s.skus["TEA-1"])).scalar_one() == 0  # got 2: one per WH
    same_error(out[0], refused)  # got OutOfStock: its own leaked reservation


# the contexts of a group in one statement read as each one alone ---------------------------
@pg
def test_a_groups_contexts_in_one_statement_read_as_each_alone(engine: Engine,
                                                               provider: Any) -> None:
    s = shop(engine, {"TEA-1": 5, "MUG-1": 0}, 3)
    busan = add_location(s.uow(), s.seller, "Busan WH", city="Busan").location_id
    set_stock(s.uow(), "TEA-1", busan, 2)  # TEA-1 at two locations: two rows, in order
    paid(alone(s, oc.BuyNow(s.buyers[0], "TEA-1", 1, "used"), provider), "TEA-1", 1)
    scope = f"one_click:buyer:{s.buyers[0]}"
    asked = [(s.buyers[0], "TEA-1", "2026-11", scope, "used"),    # its key already claimed
             (s.buyers[1], "NOPE-1", "2026-11", "x", "k1"),       # no such SKU: no row
             (s.buyers[1], "MUG-1", "2026-11", "x", "k2"),        # no unit anywhere
             (999_999, "TEA-1", "2026-11", "x", "k3"),            # no such buyer
             (s.buyers[2], "TEA-1", "2026-11", "x", "k4")]
    with UnitOfWork(engine) as uow:
        together = uow.repos.money.one_click_contexts(asked)
    with UnitOfWork(engine) as uow:
        each = [list(uow.repos.money.one_click_context(*a)) for a in asked]
    assert [[tuple(row)[1:] for row in rows] for rows in together] == \
        [[tuple(row) for row in rows] for rows in each]
    assert [[row.idx for row in rows] for rows in together] == [[1, 1], [], [3], [4, 4],
                                                                [5, 5]]
    assert [len(rows) for rows in each] == [2, 0, 1, 2, 2]
    assert each[0][0].key_id is not None and each[3][0].buyer_found is None
    assert [row.location_id for row in each[4]] == [s.seoul, busan]
    assert [int(row.available) for row in each[4]] == [4, 2]
