"""The durable test provider on SQLite and PostgreSQL: two instances on one database stand
for two processes (serve workers, a CLI command, a restarted server) sharing one sandbox."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from typing import Any

import pytest
from sqlalchemy import Engine, inspect, select, update

from silkroute.domain.money import Money
from silkroute.payments.durable_test_provider import SIDE_FILE_SUFFIX, DurableTestPaymentProvider
from silkroute.payments.port import (
    IdempotencyKeyReused,
    PaymentDeclined,
    PaymentError,
    PaymentResult,
    PaymentStatus,
    PaymentTimeout,
)
from silkroute.payments.test_provider import TestPaymentProvider
from silkroute.services import payments as P
from silkroute.services.one_click import one_click
from silkroute.store import tables as t
from silkroute.store.migrate import downgrade, head_revision, upgrade
from silkroute.store.test_provider_tables import SANDBOX_META_KEY, TEST_PROVIDER_TABLES
from tests.integration.money_helpers import APPROVE, RETRY, TIMEOUT, assert_invariants, money_market

KRW = "KRW"


def krw(amount: int) -> Money:
    return Money(amount, KRW)


@pytest.fixture
def pair(engine: Engine) -> Iterator[tuple[DurableTestPaymentProvider, ...]]:
    """Two providers on the engine's database, as two processes would have."""
    a, b = TestPaymentProvider.durable(engine), TestPaymentProvider.durable(engine)
    yield a, b
    a.close()
    b.close()


def paid(prov: DurableTestPaymentProvider, amount: int, key: str) -> PaymentResult:
    auth = prov.authorize(idempotency_key=f"auth-{key}", payment_method=APPROVE,
                          amount=krw(amount))
    return prov.capture(idempotency_key=f"cap-{key}", authorization=auth.provider_reference)


def test_capture_in_one_refund_in_the_other(pair):
    a, b = pair
    cap = paid(a, 10000, "1")
    assert cap.status is PaymentStatus.CAPTURED and cap.amount == krw(10000)
    r1 = b.refund(idempotency_key="r1", capture=cap.provider_reference, amount=krw(4000))
    r2 = a.refund(idempotency_key="r2", capture=cap.provider_reference, amount=krw(6000))
    assert (r1.status, r1.parent, r2.amount) == (PaymentStatus.REFUNDED,
                                                 cap.provider_reference, krw(6000))
    for prov in (a, b):
        assert prov.captured_total(KRW) == krw(10000)
        assert prov.refunded_total(KRW) == krw(10000)
        assert (prov.capture_count, prov.authorization_count) == (1, 1)
        assert prov.authorization_status(cap.parent or "") is PaymentStatus.CAPTURED
    # a "restarted" provider (a new instance) still knows the capture
    a.close()
    fresh = TestPaymentProvider.durable(a.platform_url)
    try:
        with pytest.raises(PaymentDeclined) as exc:
            fresh.refund(idempotency_key="r3", capture=cap.provider_reference, amount=krw(1))
        assert exc.value.reason == "refund_exceeds_capture"
        assert fresh.refund(idempotency_key="r1", capture=cap.provider_reference,
                            amount=krw(4000)) == r1
    finally:
        fresh.close()


def test_same_key_from_both_returns_one_result_and_moves_money_once(pair):
    a, b = pair
    auth_a = a.authorize(idempotency_key="k-auth", payment_method=APPROVE, amount=krw(5000))
    auth_b = b.authorize(idempotency_key="k-auth", payment_method="4242-4242-4242-4242",
                         amount=krw(5000))
    assert auth_a == auth_b and a.authorization_count == 1
    cap_b = b.capture(idempotency_key="k-cap", authorization=auth_a.provider_reference)
    assert a.capture(idempotency_key="k-cap", authorization=auth_a.provider_reference) == cap_b
    refund = a.refund(idempotency_key="k-ref", capture=cap_b.provider_reference,
                      amount=krw(2000))
    assert b.refund(idempotency_key="k-ref", capture=cap_b.provider_reference,
                    amount=krw(2000)) == refund
    payout = b.payout(idempotency_key="k-pay", destination="seller_payable:1:KRW",
                      amount=krw(3000))
    assert a.payout(idempotency_key="k-pay", destination="seller_payable:1:KRW",
                    amount=krw(3000)) == payout
    assert (a.captured_total(KRW), a.refunded_total(KRW), a.paid_out_total(KRW)) == (
        krw(5000), krw(2000), krw(3000))
    assert b.payouts == (payout,)
    # the same key with another request is refused, whichever process sees it
    with pytest.raises(IdempotencyKeyReused):
        b.refund(idempotency_key="k-ref", capture=cap_b.provider_reference, amount=krw(1))
    with pytest.raises(IdempotencyKeyReused):
        a.authorize(idempotency_key="k-cap", payment_method=APPROVE, amount=krw(5000))


def test_concurrent_calls_with_one_key_from_both_move_money_once(pair):
    a, b = pair
    auth = a.authorize(idempotency_key="auth", payment_method=APPROVE, amount=krw(7000))
    cap = a.capture(idempotency_key="cap", authorization=auth.provider_reference)
    start = threading.Barrier(8)

    def call(i: int) -> Any:
        prov = (a, b)[i % 2]
        start.wait()
        if i < 4:
            return prov.refund(idempotency_key="same-refund",
                               capture=cap.provider_reference, amount=krw(3000))
        return prov.payout(idempotency_key="same-payout", destination="carrier_payable:1:KRW",
                           amount=krw(1000))

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(call, range(8)))
    assert len(set(results[:4])) == 1 and len(set(results[4:])) == 1
    assert a.refunded_total(KRW) == krw(3000)
    assert b.paid_out_total(KRW) == krw(1000) and len(b.payouts) == 1


def test_refund_above_captured_is_refused(pair):
    a, b = pair
    cap = paid(a, 10000, "1")
    with pytest.raises(PaymentDeclined) as exc:
        b.refund(idempotency_key="too-much", capture=cap.provider_reference,
                 amount=krw(10001))
    assert exc.value.reason == "refund_exceeds_capture"
    a.refund(idempotency_key="part", capture=cap.provider_reference, amount=krw(9000))
    with pytest.raises(PaymentDeclined, match="refund_exceeds_capture"):
        b.refund(idempotency_key="rest+1", capture=cap.provider_reference, amount=krw(1001))
    # a decline is the key's answer: the same request raises it again, in either process
    with pytest.raises(PaymentDeclined, match="refund_exceeds_capture"):
        a.refund(idempotency_key="rest+1", capture=cap.provider_reference, amount=krw(1001))
    b.refund(idempotency_key="rest", capture=cap.provider_reference, amount=krw(1000))
    assert a.refunded_total(KRW) == krw(10000)
    with pytest.raises(PaymentDeclined, match="currency_mismatch"):
        a.refund(idempotency_key="usd", capture=cap.provider_reference,
                 amount=Money(1, "USD"))
    with pytest.raises(PaymentError) as unknown:
        b.refund(idempotency_key="nope", capture="test_capture_nope", amount=krw(1))
    assert unknown.value.code == "unknown_capture"
    with pytest.raises(PaymentError) as again:
        a.refund(idempotency_key="nope", capture="test_capture_nope", amount=krw(1))
    assert again.value.code == "unknown_capture"


def test_references_are_distinct_across_instances(pair):
    a, b = pair
    refs: list[str] = []
    for i in range(5):
        for prov in (a, b):
            cap = paid(prov, 1000 + i, f"{id(prov)}-{i}")
            refs += [cap.parent or "", cap.provider_reference,
                     prov.refund(idempotency_key=f"r-{id(prov)}-{i}",
                                 capture=cap.provider_reference,
                                 amount=krw(1)).provider_reference,
                     prov.payout(idempotency_key=f"p-{id(prov)}-{i}", destination="d",
                                 amount=krw(1)).provider_reference]
    assert len(refs) == len(set(refs)) == 40
    assert all(r.startswith("test_") and len(r) <= 64 for r in refs)


def test_racing_refunds_of_one_capture_never_refund_more_than_captured(pair):
    a, b = pair
    cap = paid(a, 10000, "race")
    threads = 16
    start = threading.Barrier(threads)

    def refund(i: int) -> str:
        start.wait()
        try:
            (a, b)[i % 2].refund(idempotency_key=f"race-{i}", capture=cap.provider_reference,
                                 amount=krw(700))
        except PaymentDeclined as exc:
            return exc.reason
        return "refunded"

    with ThreadPoolExecutor(threads) as pool:
        outcomes = list(pool.map(refund, range(threads)))
    # 14 x ₩700 = ₩9,800 fit in ₩10,000; the other two are refused
    assert outcomes.count("refunded") == 14
    assert outcomes.count("refund_exceeds_capture") == 2
    assert a.refunded_total(KRW) == b.refunded_total(KRW) == krw(9800)
    b.refund(idempotency_key="last", capture=cap.provider_reference, amount=krw(200))
    assert a.refunded_total(KRW) == krw(10000)


def test_racing_captures_and_voids_of_one_authorization_take_it_once(pair):
    a, b = pair
    auth = a.authorize(idempotency_key="auth", payment_method=APPROVE, amount=krw(5000))
    start = threading.Barrier(6)

    def act(i: int) -> str:
        prov = (a, b)[i % 2]
        start.wait()
        try:
            if i % 3 == 2:
                return prov.void(idempotency_key=f"void-{i}",
                                 authorization=auth.provider_reference).status.value
            return prov.capture(idempotency_key=f"cap-{i}",
                                authorization=auth.provider_reference).status.value
        except PaymentDeclined as exc:
            return exc.reason

    with ThreadPoolExecutor(6) as pool:
        outcomes = list(pool.map(act, range(6)))
    winners = [o for o in outcomes if o in ("captured", "voided")]
    assert len(winners) == 1, outcomes
    assert all(o == f"authorization_{winners[0]}" for o in outcomes if o not in winners)
    assert a.capture_count == (1 if winners == ["captured"] else 0)


@pytest.mark.parametrize("card,reason", [
    ("4000 0000 0000 0002", "card_declined"),
    ("4000 0000 0000 9995", "insufficient_funds"),
    ("4000 0000 0000 0069", "card_expired"),
    ("4000 0000 0000 0127", "incorrect_cvc"),
    ("1234 5678 9012 3456", "invalid_card_number"),
])
def test_declining_cards_decline_and_replay_their_decline(pair, card, reason):
    a, b = pair
    with pytest.raises(PaymentDeclined) as first:
        a.authorize(idempotency_key="d", payment_method=card, amount=krw(100))
    assert first.value.reason == reason and first.value.result is not None
    assert first.value.result.status is PaymentStatus.DECLINED
    with pytest.raises(PaymentDeclined) as again:
        b.authorize(idempotency_key="d", payment_method=card, amount=krw(100))
    assert (again.value.reason, again.value.result) == (reason, first.value.result)
    assert a.authorization_count == 0


def test_timeout_and_approve_on_retry_cards_across_instances(pair):
    a, b = pair
    for prov in (a, b, a):
        with pytest.raises(PaymentTimeout):
            prov.authorize(idempotency_key="t", payment_method=TIMEOUT, amount=krw(100))
    with pytest.raises(PaymentTimeout):
        a.authorize(idempotency_key="r", payment_method=RETRY, amount=krw(100))
    retried = b.authorize(idempotency_key="r", payment_method=RETRY, amount=krw(100))
    assert retried.status is PaymentStatus.AUTHORIZED
    assert a.authorize(idempotency_key="r", payment_method=RETRY, amount=krw(100)) == retried
    assert a.authorization_count == 1
    # capture: all by default, never more than authorized, once; void after is refused
    with pytest.raises(PaymentDeclined, match="amount_exceeds_authorization"):
        a.capture(idempotency_key="c0", authorization=retried.provider_reference,
                  amount=krw(101))
    cap = b.capture(idempotency_key="c1", authorization=retried.provider_reference)
    assert cap.amount == krw(100)
    with pytest.raises(PaymentDeclined, match="authorization_captured"):
        a.capture(idempotency_key="c2", authorization=retried.provider_reference)
    with pytest.raises(PaymentDeclined, match="authorization_captured"):
        a.void(idempotency_key="v", authorization=retried.provider_reference)
    with pytest.raises(PaymentError) as unknown:
        b.capture(idempotency_key="c3", authorization="test_auth_nope")
    assert unknown.value.code == "unknown_authorization"


def test_a_voided_authorization_cannot_be_captured_by_another_process(pair):
    a, b = pair
    auth = a.authorize(idempotency_key="auth", payment_method=APPROVE, amount=krw(900))
    voided = b.void(idempotency_key="void", authorization=auth.provider_reference)
    assert (voided.status, voided.amount) == (PaymentStatus.VOIDED, krw(900))
    with pytest.raises(PaymentDeclined, match="authorization_voided"):
        a.capture(idempotency_key="cap", authorization=auth.provider_reference)
    assert a.authorization_status(auth.provider_reference) is PaymentStatus.VOIDED


def test_platform_pays_in_one_process_and_refunds_in_another(uow, engine, pair):
    """The services with the provider of one process, then of another: the refund (which
    calls the provider inside the platform's transaction) and a membership fee work."""
    a, b = pair
    m = money_market(uow)
    bought = one_click(uow(), m.buyer_seoul, "TEA-1", 2, idempotency_key="k1", provider=a)
    assert bought.state == "paid"
    part = P.refund(uow(), bought.order_id, 5000, provider=b)
    assert part.amount == 5000
    rest = P.refund(uow(), bought.order_id, provider=a)
    assert (rest.amount, rest.order_state) == (22000, "refunded")
    assert b.refunded_total(KRW) == krw(27000) == b.captured_total(KRW)
    fee = P.subscribe(uow(), m.buyer_seoul, today=date(2026, 11, 5), provider=b)
    assert fee.charged and a.captured_total(KRW) == krw(27000 + fee.fee)
    assert_invariants(engine)


def test_use_database_provider_installs_it_unless_one_was_injected(engine, monkeypatch):
    injected = P.get_provider()  # conftest installed a fresh in-memory provider
    assert P.use_database_provider(engine) is injected
    monkeypatch.setattr(P, "_injected", False)
    durable = P.use_database_provider(engine)
    try:
        assert isinstance(durable, DurableTestPaymentProvider)
        assert P.get_provider() is durable
    finally:
        durable.close()


@pytest.mark.parametrize("backend", ["sqlite"])  # PostgreSQL keeps it in the platform DB
def test_a_side_file_of_an_earlier_sqlite_database_starts_empty(engine, backend):
    first = TestPaymentProvider.durable(engine)
    paid(first, 1000, "old")
    first.close()
    assert (first.platform_url or "").endswith("silkroute.db")
    # same database: same sandbox
    again = TestPaymentProvider.durable(engine)
    assert again.capture_count == 1
    again.close()
    # the database is replaced (a new sandbox id): the side file is emptied on first use
    with engine.begin() as conn:
        conn.execute(update(t.demo_marker).where(t.demo_marker.c.key == SANDBOX_META_KEY)
                     .values(value="another-database"))
    fresh = TestPaymentProvider.durable(engine)
    try:
        assert (fresh.capture_count, fresh.authorization_count) == (0, 0)
        assert paid(fresh, 1000, "old").amount == krw(1000)  # the old keys are free again
    finally:
        fresh.close()
    assert str(fresh.engine.url.database).endswith("silkroute.db" + SIDE_FILE_SUFFIX)


def test_migration_downgrade_removes_the_tables_and_upgrade_restores_them(engine):
    names = {tbl.name for tbl in TEST_PROVIDER_TABLES}
    assert names <= set(inspect(engine).get_table_names())
    try:
        downgrade(engine, "0006_delivery")
        assert not names & set(inspect(engine).get_table_names())
        with engine.connect() as conn:
            assert conn.execute(select(t.demo_marker).where(
                t.demo_marker.c.key == SANDBOX_META_KEY)).first() is None
    finally:
        assert upgrade(engine) == head_revision() == "0008_cart"
    assert names <= set(inspect(engine).get_table_names())
    with engine.connect() as conn:
        assert conn.execute(select(t.demo_marker.c.value).where(
            t.demo_marker.c.key == SANDBOX_META_KEY)).scalar_one()


def test_in_memory_sqlite_has_no_durable_sandbox():
    with pytest.raises(Exception, match="needs a database file or server"):
        TestPaymentProvider.durable("sqlite://")


def test_a_capture_of_part_takes_that_part_once_and_checks_the_currency(pair):
    a, b = pair
    auth = a.authorize(idempotency_key="auth", payment_method=APPROVE, amount=krw(900))
    with pytest.raises(PaymentDeclined, match="currency_mismatch"):
        b.capture(idempotency_key="usd", authorization=auth.provider_reference,
                  amount=Money(400, "USD"))
    part = b.capture(idempotency_key="part", authorization=auth.provider_reference,
                     amount=krw(400))
    assert (part.status, part.amount, part.parent) == (
        PaymentStatus.CAPTURED, krw(400), auth.provider_reference)
    assert a.capture(idempotency_key="part", authorization=auth.provider_reference,
                     amount=krw(400)) == part
    with pytest.raises(PaymentDeclined, match="authorization_captured"):
        a.capture(idempotency_key="rest", authorization=auth.provider_reference,
                  amount=krw(500))
    assert (a.capture_count, a.captured_total(KRW)) == (1, krw(400))


def test_a_key_reused_for_another_authorization_captures_nothing(pair):
    a, b = pair
    first = a.authorize(idempotency_key="auth-1", payment_method=APPROVE, amount=krw(100))
    second = a.authorize(idempotency_key="auth-2", payment_method=APPROVE, amount=krw(200))
    taken = b.capture(idempotency_key="cap", authorization=first.provider_reference)
    with pytest.raises(IdempotencyKeyReused):
        a.capture(idempotency_key="cap", authorization=second.provider_reference)
    with pytest.raises(IdempotencyKeyReused):
        b.authorize(idempotency_key="auth-1", payment_method=APPROVE, amount=krw(999))
    assert taken.amount == krw(100)
    assert a.authorization_status(second.provider_reference) is PaymentStatus.AUTHORIZED
    assert (a.capture_count, a.authorization_count, a.captured_total(KRW)) == (1, 2, krw(100))


def _spy(prov: DurableTestPaymentProvider) -> tuple[list[str], Any]:
    """Record the first word of every statement `prov` sends: through its engine (with
    BEGIN and COMMIT), and on PostgreSQL through its plain-driver pool as `raw:<word>`.
    Returns the list and a function that stops recording."""
    from sqlalchemy import event

    sent: list[str] = []

    def seen(_conn, _cursor, statement, *_args):
        sent.append(statement.split()[0].upper())

    def commits(_conn):
        sent.append("COMMIT")

    event.listen(prov.engine, "before_cursor_execute", seen)
    event.listen(prov.engine, "commit", commits)
    raw = prov._raw
    first_row = raw.first_row if raw is not None else None
    if raw is not None:
        def spied(sql: str, params: Any) -> Any:
            sent.append("raw:" + sql.split()[0].upper())
            return first_row(sql, params)

        raw.first_row = spied  # type: ignore[method-assign]

    def stop() -> None:
        event.remove(prov.engine, "before_cursor_execute", seen)
        event.remove(prov.engine, "commit", commits)
        if raw is not None:
            del raw.first_row  # back to the class's method

    return sent, stop


def test_first_calls_are_one_statement_each_on_postgresql(pair, backend):
    """The buy-now path calls authorize and capture once per order: on PostgreSQL each first
    call is one statement in autocommit (no BEGIN, no COMMIT), sent on the driver directly;
    SQLite runs the general path in a transaction (BEGIN IMMEDIATE, the work, the claim of
    the key)."""
    a, _ = pair
    assert a.authorization_count == 0  # (on SQLite this prepares the side file first)
    sent, stop = _spy(a)
    auth = a.authorize(idempotency_key="auth", payment_method=APPROVE, amount=krw(300))
    after_authorize = list(sent)
    cap = a.capture(idempotency_key="cap", authorization=auth.provider_reference)
    after_capture = sent[len(after_authorize):]
    stop()
    assert cap.amount == krw(300)
    if backend == "postgres":
        assert (after_authorize, after_capture) == (["raw:WITH"], ["raw:WITH"])
    else:
        assert (after_authorize, after_capture) == (
            ["BEGIN", "INSERT", "INSERT", "COMMIT"],
            ["BEGIN", "UPDATE", "INSERT", "INSERT", "COMMIT"])


def _books(prov: DurableTestPaymentProvider) -> dict[str, list[tuple[Any, ...]]]:
    """The sandbox's rows, references replaced by their kind and order of appearance."""
    from silkroute.store.test_provider_tables import (
        testpay_authorizations,
        testpay_captures,
        testpay_operations,
    )

    names: dict[str, str] = {}

    def name(ref: Any) -> Any:
        if not isinstance(ref, str) or not ref.startswith("test_"):
            return ref
        return names.setdefault(ref, f"{ref.split('_')[1]}{len(names)}")

    ops = testpay_operations
    with prov.engine.connect() as conn:
        return {
            "operations": [
                (r.key, r.fingerprint if r.operation == "authorize" else None, r.operation,
                 r.status, name(r.reference), r.amount, r.currency, name(r.parent),
                 r.decline_reason, r.error_code)
                for r in conn.execute(select(ops).order_by(ops.c.id))],
            "authorizations": [
                (name(r.reference), r.card_last4, r.amount, r.currency, r.status,
                 name(r.capture_reference))
                for r in conn.execute(select(testpay_authorizations))],
            "captures": [
                (name(r.reference), name(r.authorization_ref), r.amount, r.currency,
                 r.refunded)
                for r in conn.execute(select(testpay_captures))],
        }


def test_authorize_and_capture_leave_the_rows_of_the_two_calls(engine, backend):
    """Given a provider, when one order is paid by authorize-then-capture and another by
    `authorize_and_capture`, both leave the same rows (with their own keys); the latter is
    one statement on PostgreSQL and one transaction of the side file on SQLite."""
    one, other = TestPaymentProvider.durable(engine), TestPaymentProvider.durable(engine)
    try:
        auth = one.authorize(idempotency_key="auth-k", payment_method=APPROVE,
                             amount=krw(2500))
        cap = one.capture(idempotency_key="cap-k", authorization=auth.provider_reference)
        two_calls = _books(one)
        with one.engine.begin() as conn:
            for table in reversed(TEST_PROVIDER_TABLES):
                conn.execute(table.delete())
        assert other.authorization_count == 0  # (on SQLite this prepares the side file)
        sent, stop = _spy(other)
        pair_ = other.authorize_and_capture(authorize_key="auth-k", capture_key="cap-k",
                                            payment_method=APPROVE, amount=krw(2500))
        stop()
        assert sent == (["raw:WITH"] if backend == "postgres" else
                        ["BEGIN", "INSERT", "INSERT", "INSERT", "INSERT", "COMMIT"])
        assert pair_ is not None
        a2, c2 = pair_
        assert (a2.operation, a2.status, a2.amount, a2.idempotency_key, a2.parent) == (
            auth.operation, auth.status, auth.amount, "auth-k", None)
        assert (c2.operation, c2.status, c2.amount, c2.idempotency_key, c2.parent) == (
            cap.operation, cap.status, cap.amount, "cap-k", a2.provider_reference)
        assert _books(other) == two_calls == {
            "operations": [
                ("auth-k", two_calls["operations"][0][1], "authorize", "authorized",
                 "auth0", 2500, "KRW", None, None, None),
                ("cap-k", None, "capture", "captured", "capture1", 2500, "KRW", "auth0",
                 None, None)],
            "authorizations": [("auth0", "4242", 2500, "KRW", "captured", "capture1")],
            "captures": [("capture1", "auth0", 2500, "KRW", 0)],
        }
        # the same keys again: not a first call, nothing of it stays; the two calls then
        # replay the first answers
        assert other.authorize_and_capture(authorize_key="auth-k", capture_key="cap-k",
                                           payment_method=APPROVE, amount=krw(2500)) is None
        assert other.authorize(idempotency_key="auth-k", payment_method=APPROVE,
                               amount=krw(2500)) == a2
        assert other.capture(idempotency_key="cap-k",
                             authorization=a2.provider_reference) == c2
        assert (other.capture_count, other.authorization_count) == (1, 1)
        # another card than an approving one is never taken in one go
        for card in (TIMEOUT, RETRY, "4000000000000002"):
            assert other.authorize_and_capture(
                authorize_key=f"a-{card}", capture_key=f"c-{card}", payment_method=card,
                amount=krw(100)) is None
        assert (other.capture_count, other.authorization_count) == (1, 1)
    finally:
        one.close()
        other.close()
