"""The test provider's sandbox kept in a database, shared by every process on it.

`TestPaymentProvider` keeps its account in process memory: under `silkroute serve
--workers N` each worker had its own account (a refund sent to another worker than the one
that captured failed, and per-process counters handed out the same references), and a
restart forgot every capture. `DurableTestPaymentProvider` answers the same test cards the
same way but keeps the account in tables (`silkroute.store.test_provider_tables`):

- It stands for an external processor, so it never joins the platform's transaction: it
  has its own engine and runs every call in its own short transaction.
- On PostgreSQL the tables live in the platform database (migration 0007). On SQLite they
  live in a side file `<database>-testpay`: SQLite lets one connection write a file at a
  time, and the platform calls the provider while it holds that lock (refunds, membership
  fees). The platform database's sandbox id (`silkroute_meta`) is copied into the side
  file; a side file holding another id belongs to an earlier database and is emptied.
- Idempotency across processes: the first call with a key inserts the key's row (unique),
  then acts and records its answer in the same transaction. A concurrent call with the
  key waits for that transaction or fails on the unique key, then replays the recorded
  answer (IdempotencyKeyReused if its request differs). A timeout records nothing.
- References are `test_<kind>_<uuid4>`, unique across processes and restarts.
- Capture, void and refund change their row with a conditional UPDATE, so two processes
  never capture an authorization twice or refund more than captured less refunded.
"""

from __future__ import annotations

import hashlib
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import (
    Column,
    Connection,
    Engine,
    MetaData,
    String,
    Table,
    bindparam,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import (
    IntegrityError,
    OperationalError,
    ProgrammingError,
    SQLAlchemyError,
)
from sqlalchemy.pool import NullPool

from silkroute.domain.errors import ValidationError
from silkroute.domain.money import Money
from silkroute.payments.port import (
    IdempotencyKeyReused,
    PaymentDeclined,
    PaymentError,
    PaymentOperation,
    PaymentResult,
    PaymentStatus,
    PaymentTimeout,
)
from silkroute.payments.test_provider import (
    APPROVE_ON_RETRY,
    TIMEOUT,
    card_decline_reason,
    check_amount,
    normalize_card,
)
from silkroute.store.engine import READ_ONLY, database_url, is_sqlite, make_engine
from silkroute.store.raw_pg import AutocommitPool, conninfo_of
from silkroute.store.tables import demo_marker as silkroute_meta
from silkroute.store.test_provider_tables import (
    SANDBOX_META_KEY,
    TEST_PROVIDER_TABLES,
    testpay_attempts,
    testpay_authorizations,
    testpay_captures,
    testpay_operations,
)

SIDE_FILE_SUFFIX = "-testpay"

# Only in a SQLite side file: the sandbox id of the platform database it belongs to.
_side_metadata = MetaData()
_side_meta = Table("testpay_meta", _side_metadata,
                   Column("key", String(64), primary_key=True),
                   Column("value", String(64), nullable=False))

_ops = testpay_operations
_auths = testpay_authorizations
_caps = testpay_captures


# The statements of the usual path, built once: SQLAlchemy memoizes a statement object's
# cache key, so executing these with parameters skips building and keying a new statement
# per call (that was a tenth of the server's time on buy-now).
_INSERT_OP = insert(_ops)
_INSERT_AUTH = insert(_auths)
_INSERT_CAP = insert(_caps)
_TAKE_AUTH = update(_auths).where(
    _auths.c.reference == bindparam("ref"),
    _auths.c.status == PaymentStatus.AUTHORIZED.value,
).values(status=PaymentStatus.CAPTURED.value,
         capture_reference=bindparam("capture_ref")).returning(_auths.c.amount,
                                                              _auths.c.currency)
_TAKE_AUTH_UP_TO = _TAKE_AUTH.where(_auths.c.currency == bindparam("b_currency"),
                                    _auths.c.amount >= bindparam("b_take"))

# On PostgreSQL the usual first call of authorize and of capture is ONE statement in
# autocommit (its own transaction: the data-modifying CTEs and the claim of the key commit
# together or not at all), instead of BEGIN, two or three statements and COMMIT: the
# provider was 9 of a buy-now's 15 round trips. A statement that changes nothing (a
# capture the authorization does not allow) or meets the key taken (IntegrityError) leaves
# no trace, and the general path (`_once`) then records the decline or replays the answer.
# They run on the driver directly (`store.raw_pg`), not through SQLAlchemy.
_PG_AUTHORIZE = (
    "WITH auth AS (INSERT INTO testpay_authorizations "
    "(reference, card_last4, amount, currency, status) "
    "VALUES (%(reference)s, %(last4)s, %(amount)s, %(currency)s, 'authorized')) "
    "INSERT INTO testpay_operations "
    "(key, fingerprint, operation, status, reference, amount, currency) "
    "VALUES (%(key)s, %(fingerprint)s, 'authorize', 'authorized', %(reference)s, %(amount)s, "
    "%(currency)s) RETURNING id")
_PG_CAPTURE = (
    "WITH took AS (UPDATE testpay_authorizations "
    "SET status = 'captured', capture_reference = %(capture_ref)s "
    "WHERE reference = %(ref)s AND status = 'authorized' AND (CAST(%(take)s AS BIGINT) IS NULL "
    "OR (currency = CAST(%(currency)s AS VARCHAR) AND amount >= CAST(%(take)s AS BIGINT))) "
    "RETURNING COALESCE(CAST(%(take)s AS BIGINT), amount) AS amount, currency), "
    "cap AS (INSERT INTO testpay_captures "
    "(reference, authorization_ref, amount, currency, refunded) "
    "SELECT %(capture_ref)s, %(ref)s, amount, currency, 0 FROM took "
    "RETURNING amount, currency), "
    "op AS (INSERT INTO testpay_operations "
    "(key, fingerprint, operation, status, reference, amount, currency, parent) "
    "SELECT %(key)s, %(fingerprint)s, 'capture', 'captured', %(capture_ref)s, amount, "
    "currency, %(ref)s FROM cap) "
    "SELECT amount, currency FROM cap")
# Authorize and capture in full, both first calls, as ONE statement (`authorize_and_capture`):
# the rows are those the two statements above leave (the authorization captured, its
# capture, and the two operations in that order), one round trip instead of two.
_PG_AUTHORIZE_AND_CAPTURE = (
    "WITH auth AS (INSERT INTO testpay_authorizations "
    "(reference, card_last4, amount, currency, status, capture_reference) "
    "VALUES (%(auth_ref)s, %(last4)s, %(amount)s, %(currency)s, 'captured', %(capture_ref)s)), "
    "cap AS (INSERT INTO testpay_captures "
    "(reference, authorization_ref, amount, currency, refunded) "
    "VALUES (%(capture_ref)s, %(auth_ref)s, %(amount)s, %(currency)s, 0)) "
    "INSERT INTO testpay_operations "
    "(key, fingerprint, operation, status, reference, amount, currency, parent) "
    "VALUES (%(auth_key)s, %(auth_fingerprint)s, 'authorize', 'authorized', %(auth_ref)s, "
    "%(amount)s, %(currency)s, NULL), "
    "(%(capture_key)s, %(capture_fingerprint)s, 'capture', 'captured', %(capture_ref)s, "
    "%(amount)s, %(currency)s, %(auth_ref)s) RETURNING id")

# The same rows for many first pairs at once: one statement (its text fixed, so prepared),
# the values as arrays. All or nothing: a key already taken fails the whole statement.
_PG_AUTHORIZE_AND_CAPTURE_MANY = (
    "WITH v AS (SELECT * FROM unnest(%(auth_ref)s::text[], %(capture_ref)s::text[], "
    "%(last4)s::text[], %(amount)s::bigint[], %(currency)s::text[], %(auth_key)s::text[], "
    "%(capture_key)s::text[], %(auth_fingerprint)s::text[], "
    "%(capture_fingerprint)s::text[]) AS v(auth_ref, capture_ref, last4, amount, currency, "
    "auth_key, capture_key, auth_fingerprint, capture_fingerprint)), "
    "auth AS (INSERT INTO testpay_authorizations "
    "(reference, card_last4, amount, currency, status, capture_reference) "
    "SELECT auth_ref, last4, amount, currency, 'captured', capture_ref FROM v), "
    "cap AS (INSERT INTO testpay_captures "
    "(reference, authorization_ref, amount, currency, refunded) "
    "SELECT capture_ref, auth_ref, amount, currency, 0 FROM v), "
    "ops AS (INSERT INTO testpay_operations "
    "(key, fingerprint, operation, status, reference, amount, currency, parent) "
    "SELECT auth_key, auth_fingerprint, 'authorize', 'authorized', auth_ref, amount, "
    "currency, NULL FROM v UNION ALL "
    "SELECT capture_key, capture_fingerprint, 'capture', 'captured', capture_ref, amount, "
    "currency, auth_ref FROM v RETURNING 1) "
    "SELECT count(*) FROM ops")


def _first_pair(authorize_key: str, capture_key: str, payment_method: str, amount: Money
                ) -> dict[str, Any] | None:
    """The rows' values of an authorize and a capture of all of it that both approve at
    once (`_PG_AUTHORIZE_AND_CAPTURE`'s parameters, new references), or None when they
    would not: a bad key or amount, a card that times out or declines."""
    if not _valid_key(authorize_key) or not _valid_key(capture_key) or \
            not isinstance(amount, Money) or amount.amount <= 0:
        return None
    card = normalize_card(payment_method)
    if card in (TIMEOUT, APPROVE_ON_RETRY) or \
            card_decline_reason(card, authorize_key, 1) is not None:
        return None
    auth_ref = _reference("auth")
    return {"auth_ref": auth_ref, "capture_ref": _reference("capture"), "last4": card[-4:],
            "amount": amount.amount, "currency": amount.currency,
            "auth_key": authorize_key, "capture_key": capture_key,
            "auth_fingerprint": _fingerprint(PaymentOperation.AUTHORIZE, card, amount),
            "capture_fingerprint": _fingerprint(PaymentOperation.CAPTURE, auth_ref, None)}


def _pair_results(pair: dict[str, Any], amount: Money
                  ) -> tuple[PaymentResult, PaymentResult]:
    """What the authorize and the capture of `pair` (`_first_pair`) answer."""
    return (PaymentResult(PaymentOperation.AUTHORIZE, pair["auth_ref"],
                          PaymentStatus.AUTHORIZED, amount, pair["auth_key"]),
            PaymentResult(PaymentOperation.CAPTURE, pair["capture_ref"],
                          PaymentStatus.CAPTURED, amount, pair["capture_key"],
                          parent=pair["auth_ref"]))


class _Claimed(Exception):
    """Another call holds (and has now recorded) this idempotency key."""


def _reference(kind: str) -> str:
    return f"test_{kind}_{uuid.uuid4().hex}"


def _fingerprint(*parts: object) -> str:
    text = "|".join("" if p is None else f"{p.amount}{p.currency}" if isinstance(p, Money)
                    else str(p) for p in parts)
    return hashlib.sha256(text.encode()).hexdigest()


def _valid_key(key: object) -> bool:
    return isinstance(key, str) and bool(key)


def _unknown_authorization(reference: str) -> PaymentError:
    return PaymentError(f"unknown authorization {reference!r}", field="authorization",
                        code="unknown_authorization")


class DurableTestPaymentProvider:
    """The test cards of `TestPaymentProvider`, with the account in a database."""

    __test__ = False  # not a pytest test class despite the name
    name = "test"

    def __init__(self, engine: Engine, *, platform_url: str | None = None,
                 side_file: bool = False):
        """`engine`: the database holding the testpay tables. `side_file`: it is a SQLite
        side file of the SQLite platform database at `platform_url` (created and checked
        against the platform's sandbox id on first use). Prefer `for_database`."""
        self.engine = engine
        self.platform_url = platform_url
        self._side_file = side_file
        self._one_statement = engine.dialect.name == "postgresql"
        # The one-statement first calls run on plain psycopg connections in autocommit.
        self._raw = AutocommitPool(conninfo_of(engine)) if self._one_statement else None
        self._ready = not side_file
        self._lock = threading.Lock()

    @classmethod
    def for_database(cls, url_or_engine: str | Engine | None) -> DurableTestPaymentProvider:
        """The sandbox of the platform database `url_or_engine` (a URL, an Engine, or None
        for $SILKROUTE_DATABASE_URL): the same account for every process and instance on
        it. The provider has an engine of its own; `close()` disposes of it."""
        if isinstance(url_or_engine, Engine):
            url = url_or_engine.url.render_as_string(hide_password=False)
        else:
            url = database_url(url_or_engine)
        if is_sqlite(url):
            path = make_url(url).database
            if not path or path == ":memory:" or path.startswith("file:"):
                raise ValidationError("db: the durable test provider needs a database file "
                                      f"or server, not {url!r}", field="db")
            side = Path(path + SIDE_FILE_SUFFIX)
            return cls(make_engine(f"sqlite:///{side}"), platform_url=url, side_file=True)
        # A pool of its own: never one of the platform's connections, so a refund holding
        # a platform connection never waits for the platform's pool to give one back. As
        # large as serve's worker threads, so that no call opens and closes a connection.
        return cls(make_engine(url, pool_size=8, max_overflow=8), platform_url=url)

    def close(self) -> None:
        if self._raw is not None:
            self._raw.close()
        self.engine.dispose()

    # the port ---------------------------------------------------------------------------
    def authorize(self, *, idempotency_key: str, payment_method: str, amount: Money
                  ) -> PaymentResult:
        card = normalize_card(payment_method)
        fingerprint = _fingerprint(PaymentOperation.AUTHORIZE, card, amount)
        attempt = 1

        def count_attempt() -> None:  # in a transaction of its own: kept on a timeout
            nonlocal attempt
            check_amount(amount)
            if card == APPROVE_ON_RETRY:
                attempt = self._attempt(idempotency_key)

        def perform(conn: Connection) -> PaymentResult:
            reason = card_decline_reason(card, idempotency_key, attempt)
            if reason is not None:
                raise PaymentDeclined(reason, PaymentResult(
                    PaymentOperation.AUTHORIZE, _reference("decline"), PaymentStatus.DECLINED,
                    amount, idempotency_key, decline_reason=reason))
            reference = _reference("auth")
            conn.execute(_INSERT_AUTH, {
                "reference": reference, "card_last4": card[-4:], "amount": amount.amount,
                "currency": amount.currency, "status": PaymentStatus.AUTHORIZED.value})
            return PaymentResult(PaymentOperation.AUTHORIZE, reference,
                                 PaymentStatus.AUTHORIZED, amount, idempotency_key)

        if self._one_statement and card != APPROVE_ON_RETRY and _valid_key(idempotency_key):
            check_amount(amount)
            if card_decline_reason(card, idempotency_key, attempt) is None:
                reference = _reference("auth")
                if self._first_call(_PG_AUTHORIZE, {
                        "reference": reference, "last4": card[-4:], "amount": amount.amount,
                        "currency": amount.currency, "key": idempotency_key,
                        "fingerprint": fingerprint}) is not None:
                    return PaymentResult(PaymentOperation.AUTHORIZE, reference,
                                         PaymentStatus.AUTHORIZED, amount, idempotency_key)
        return self._once(idempotency_key, PaymentOperation.AUTHORIZE, fingerprint, perform,
                          before=count_attempt)

    def capture(self, *, idempotency_key: str, authorization: str, amount: Money | None = None
                ) -> PaymentResult:
        fingerprint = _fingerprint(PaymentOperation.CAPTURE, authorization, amount)

        def perform(conn: Connection) -> PaymentResult:
            if amount is not None:
                check_amount(amount)
            reference = _reference("capture")
            # One statement decides and takes (the usual case): still authorized, in the
            # currency, and holding at least the amount. No row: find out which failed.
            params: dict[str, object] = {"ref": authorization, "capture_ref": reference}
            if amount is not None:
                params.update(b_currency=amount.currency, b_take=amount.amount)
            row = conn.execute(_TAKE_AUTH if amount is None else _TAKE_AUTH_UP_TO,
                               params).first()
            if row is None:
                raise self._capture_refused(conn, authorization, amount)
            take = Money(int(row.amount), row.currency) if amount is None else amount
            conn.execute(_INSERT_CAP, {
                "reference": reference, "authorization_ref": authorization,
                "amount": take.amount, "currency": take.currency, "refunded": 0})
            return PaymentResult(PaymentOperation.CAPTURE, reference, PaymentStatus.CAPTURED,
                                 take, idempotency_key, parent=authorization)

        if self._one_statement and _valid_key(idempotency_key):
            if amount is not None:
                check_amount(amount)
            reference = _reference("capture")
            row = self._first_call(_PG_CAPTURE, {
                "capture_ref": reference, "ref": authorization, "key": idempotency_key,
                "fingerprint": fingerprint,
                "take": None if amount is None else amount.amount,
                "currency": None if amount is None else amount.currency})
            if row is not None:
                return PaymentResult(PaymentOperation.CAPTURE, reference,
                                     PaymentStatus.CAPTURED, Money(int(row[0]), row[1]),
                                     idempotency_key, parent=authorization)
        return self._once(idempotency_key, PaymentOperation.CAPTURE, fingerprint, perform)

    def authorize_and_capture(self, *, authorize_key: str, capture_key: str,
                              payment_method: str, amount: Money
                              ) -> tuple[PaymentResult, PaymentResult] | None:
        """`authorize` then `capture` of all of it, when both are first calls that approve,
        in one transaction: on PostgreSQL one statement in autocommit, on SQLite one
        write transaction of the side file instead of two. The same rows and results as
        the two calls. None when it is not that case (another card, a key already used, a
        failure; nothing of it stays): the caller then makes the two calls, which answer
        it as usual."""
        pair = _first_pair(authorize_key, capture_key, payment_method, amount)
        if pair is None:
            return None
        if self._one_statement:
            if self._first_call(_PG_AUTHORIZE_AND_CAPTURE, pair) is None:
                return None
        else:
            auth_ref, capture_ref = pair["auth_ref"], pair["capture_ref"]
            money = {"amount": amount.amount, "currency": amount.currency}
            try:
                with self._begin() as conn:
                    conn.execute(_INSERT_AUTH, {
                        "reference": auth_ref, "card_last4": pair["last4"], **money,
                        "status": PaymentStatus.CAPTURED.value,
                        "capture_reference": capture_ref})
                    conn.execute(_INSERT_CAP, {"reference": capture_ref,
                                               "authorization_ref": auth_ref, **money,
                                               "refunded": 0})
                    for key, fingerprint, operation, status, reference, parent in (
                            (authorize_key, pair["auth_fingerprint"],
                             PaymentOperation.AUTHORIZE, PaymentStatus.AUTHORIZED, auth_ref,
                             None),
                            (capture_key, pair["capture_fingerprint"],
                             PaymentOperation.CAPTURE, PaymentStatus.CAPTURED, capture_ref,
                             auth_ref)):
                        conn.execute(_INSERT_OP, {
                            "key": key, "fingerprint": fingerprint,
                            "operation": operation.value, "status": status.value,
                            "reference": reference, **money, "parent": parent,
                            "decline_reason": None})
            except SQLAlchemyError:
                return None  # a key taken (or anything else): the two calls answer
        return _pair_results(pair, amount)

    def authorize_and_capture_many(self, calls: Sequence[Mapping[str, Any]]
                                   ) -> list[tuple[PaymentResult, PaymentResult] | None]:
        """`authorize_and_capture(**call)` for each of `calls`, in order. On PostgreSQL
        the calls that approve at once go as one statement (one round trip and one commit
        for all; group commit, services/one_click.py); if that statement fails (a key
        already used), nothing of it stays and each call is made alone."""
        if not self._one_statement or len(calls) < 2:
            return [self.authorize_and_capture(**call) for call in calls]
        rows: dict[int, dict[str, Any]] = {}
        for i, call in enumerate(calls):
            pair = _first_pair(**call)
            if pair is not None:
                rows[i] = pair
        done = None
        if len(rows) > 1:
            columns = next(iter(rows.values())).keys()
            done = self._first_call(_PG_AUTHORIZE_AND_CAPTURE_MANY, {
                name: [row[name] for row in rows.values()] for name in columns})
        # a call not in the statement (or all, when it failed) is made alone
        return [self.authorize_and_capture(**call) if done is None or i not in rows
                else _pair_results(rows[i], call["amount"]) for i, call in enumerate(calls)]

    def void(self, *, idempotency_key: str, authorization: str) -> PaymentResult:
        fingerprint = _fingerprint(PaymentOperation.VOID, authorization)

        def perform(conn: Connection) -> PaymentResult:
            auth = self._authorization(conn, authorization)
            if auth.status != PaymentStatus.AUTHORIZED.value:
                raise PaymentDeclined(f"authorization_{auth.status}")
            self._leave_authorized(conn, authorization, PaymentStatus.VOIDED, None)
            return PaymentResult(PaymentOperation.VOID, _reference("void"),
                                 PaymentStatus.VOIDED, Money(int(auth.amount), auth.currency),
                                 idempotency_key, parent=authorization)

        return self._once(idempotency_key, PaymentOperation.VOID, fingerprint, perform)

    def refund(self, *, idempotency_key: str, capture: str, amount: Money) -> PaymentResult:
        fingerprint = _fingerprint(PaymentOperation.REFUND, capture, amount)

        def perform(conn: Connection) -> PaymentResult:
            check_amount(amount)
            cap = conn.execute(select(_caps.c.currency).where(
                _caps.c.reference == capture)).first()
            if cap is None:
                raise PaymentError(f"unknown capture {capture!r}", field="capture",
                                   code="unknown_capture")
            if amount.currency != cap.currency:
                raise PaymentDeclined("currency_mismatch")
            # One statement decides and takes: never more than captured less refunded, even
            # with refunds of the same capture arriving from several processes at once.
            taken = conn.execute(update(_caps).where(
                _caps.c.reference == capture,
                _caps.c.refunded + amount.amount <= _caps.c.amount,
            ).values(refunded=_caps.c.refunded + amount.amount)).rowcount
            if taken != 1:
                raise PaymentDeclined("refund_exceeds_capture")
            return PaymentResult(PaymentOperation.REFUND, _reference("refund"),
                                 PaymentStatus.REFUNDED, amount, idempotency_key,
                                 parent=capture)

        return self._once(idempotency_key, PaymentOperation.REFUND, fingerprint, perform)

    def payout(self, *, idempotency_key: str, destination: str, amount: Money
               ) -> PaymentResult:
        fingerprint = _fingerprint(PaymentOperation.PAYOUT, destination, amount)

        def perform(conn: Connection) -> PaymentResult:
            check_amount(amount)
            if not destination or not isinstance(destination, str):
                raise ValidationError("destination must be a non-empty string",
                                      field="destination")
            return PaymentResult(PaymentOperation.PAYOUT, _reference("payout"),
                                 PaymentStatus.PAID_OUT, amount, idempotency_key,
                                 parent=destination)

        return self._once(idempotency_key, PaymentOperation.PAYOUT, fingerprint, perform)

    # inspection for tests and the demo (the same as TestPaymentProvider's) --------------
    def captured_total(self, currency: str) -> Money:
        """Gross amount captured in `currency` (refunds not deducted)."""
        return Money(self._scalar(select(func.coalesce(func.sum(_caps.c.amount), 0)).where(
            _caps.c.currency == currency)), currency)

    def refunded_total(self, currency: str) -> Money:
        return Money(self._scalar(select(func.coalesce(func.sum(_caps.c.refunded), 0)).where(
            _caps.c.currency == currency)), currency)

    def paid_out_total(self, currency: str) -> Money:
        return Money(self._scalar(select(func.coalesce(func.sum(_ops.c.amount), 0)).where(
            _ops.c.operation == PaymentOperation.PAYOUT.value, _ops.c.error_code.is_(None),
            _ops.c.currency == currency)), currency)

    @property
    def capture_count(self) -> int:
        return self._scalar(select(func.count()).select_from(_caps))

    @property
    def authorization_count(self) -> int:
        return self._scalar(select(func.count()).select_from(_auths))

    @property
    def payouts(self) -> tuple[PaymentResult, ...]:
        with self._begin() as conn:
            rows = conn.execute(select(_ops).where(
                _ops.c.operation == PaymentOperation.PAYOUT.value,
                _ops.c.error_code.is_(None)).order_by(_ops.c.id)).all()
        return tuple(self._result(row) for row in rows)

    def authorization_status(self, reference: str) -> PaymentStatus:
        with self._begin() as conn:
            return PaymentStatus(self._authorization(conn, reference).status)

    # machinery --------------------------------------------------------------------------
    def _first_call(self, statement: str, params: dict[str, Any]) -> Any:
        """Run a first call's one statement in autocommit (PostgreSQL): its first row, or
        None when it changed nothing, the key was taken, or it failed in any other way
        (nothing of it stays; the general path then answers, or raises SQLAlchemy's
        error as every other call does)."""
        assert self._raw is not None
        try:
            return self._raw.first_row(statement, params)
        except psycopg.Error:
            return None

    def _once(self, key: str, operation: PaymentOperation, fingerprint: str,
              perform: Callable[[Connection], PaymentResult], *,
              before: Callable[[], None] | None = None) -> PaymentResult:
        """`perform`, then claim the key with its answer (one insert), in one transaction;
        or, if the key is taken, replay its recorded answer. `before` runs first, in a
        transaction of its own.

        The claim comes last so that a first call costs one insert more than its work, not
        an insert and an update (profiled on buy-now: the provider took 60 % of the
        server's time). A concurrent call with the same key either waits on the row
        `perform` changes and then fails its own check, or fails on the unique key; either
        way its transaction rolls back, so nothing it did stays, and it replays the first
        answer."""
        if not _valid_key(key):
            raise ValidationError("idempotency_key must be a non-empty string",
                                  field="idempotency_key")
        if before is not None:
            before()
        error: PaymentError | None = None
        try:
            with self._begin() as conn:
                try:
                    result = perform(conn)
                except PaymentTimeout:
                    raise  # outcome unknown: nothing is recorded (rolled back), retry decides
                except PaymentError as exc:
                    error = exc
                    declined = exc.result if isinstance(exc, PaymentDeclined) else None
                    values = self._result_values(declined) if declined else {}
                    values.update(decline_reason=getattr(exc, "reason", None),
                                  error_code=exc.code, error_field=exc.field,
                                  error_message=exc.message)
                else:
                    values = self._result_values(result)
                try:
                    conn.execute(_INSERT_OP, {"key": key, "fingerprint": fingerprint,
                                              "operation": operation.value, **values})
                except IntegrityError as exc:
                    raise _Claimed from exc
        except (_Claimed, IntegrityError) as exc:
            with self._begin() as conn:
                first = conn.execute(select(_ops).where(_ops.c.key == key)).first()
            if first is None:  # not the key: some other constraint failed
                cause = exc.__cause__ if isinstance(exc, _Claimed) else exc
                raise cause or exc from None
            return self._replay(first, key, fingerprint)
        if error is not None:
            raise error
        return result

    @staticmethod
    def _result_values(result: PaymentResult) -> dict[str, Any]:
        return {"status": result.status.value, "reference": result.provider_reference,
                "amount": result.amount.amount, "currency": result.amount.currency,
                "parent": result.parent, "decline_reason": result.decline_reason}

    @staticmethod
    def _result(row: Any) -> PaymentResult:
        return PaymentResult(PaymentOperation(row.operation), row.reference,
                             PaymentStatus(row.status), Money(int(row.amount), row.currency),
                             row.key, parent=row.parent, decline_reason=row.decline_reason)

    def _replay(self, row: Any, key: str, fingerprint: str) -> PaymentResult:
        """The first answer to `key` again: its result, or its error raised again."""
        if row.fingerprint != fingerprint:
            raise IdempotencyKeyReused(
                f"idempotency key {key!r} was already used for another request",
                field="idempotency_key")
        if row.error_code is None:
            return self._result(row)
        if row.error_code == PaymentDeclined.code:
            raise PaymentDeclined(row.decline_reason,
                                  self._result(row) if row.status is not None else None)
        raise PaymentError(row.error_message, field=row.error_field, code=row.error_code)

    def _attempt(self, key: str) -> int:
        """Count one more authorize attempt with `key` (kept even when it times out)."""
        att = testpay_attempts
        for _ in range(5):
            try:
                with self._begin() as conn:
                    bumped = conn.execute(update(att).where(att.c.key == key).values(
                        attempts=att.c.attempts + 1)).rowcount
                    if not bumped:
                        conn.execute(insert(att).values(key=key, attempts=1))
                    return int(conn.execute(select(att.c.attempts).where(
                        att.c.key == key)).scalar_one())
            except IntegrityError:
                continue  # another first attempt inserted it meanwhile: bump theirs
        raise PaymentTimeout(PaymentOperation.AUTHORIZE.value, key)

    def _capture_refused(self, conn: Connection, authorization: str, amount: Money | None
                         ) -> PaymentError:
        """Why a capture's conditional update took no row, in the order the checks read."""
        auth = self._authorization(conn, authorization)  # unknown: raises
        held = Money(int(auth.amount), auth.currency)
        if amount is not None and amount.currency != held.currency:
            return PaymentDeclined("currency_mismatch")
        if auth.status != PaymentStatus.AUTHORIZED.value:
            return PaymentDeclined(f"authorization_{auth.status}")
        return PaymentDeclined("amount_exceeds_authorization")

    @staticmethod
    def _authorization(conn: Connection, reference: str) -> Any:
        auth = conn.execute(select(_auths).where(_auths.c.reference == reference)).first()
        if auth is None:
            raise _unknown_authorization(reference)
        return auth

    @staticmethod
    def _leave_authorized(conn: Connection, reference: str, status: PaymentStatus,
                          capture_reference: str | None) -> None:
        """Move an authorization on from `authorized`, if it still is (another process may
        have captured or voided it since we read it)."""
        moved = conn.execute(update(_auths).where(
            _auths.c.reference == reference,
            _auths.c.status == PaymentStatus.AUTHORIZED.value,
        ).values(status=status.value, capture_reference=capture_reference)).rowcount
        if moved != 1:
            now = conn.execute(select(_auths.c.status).where(
                _auths.c.reference == reference)).scalar_one()
            raise PaymentDeclined(f"authorization_{now}")

    def _scalar(self, statement: Any) -> int:
        with self._begin() as conn:
            return int(conn.execute(statement).scalar_one())

    def _begin(self) -> Any:
        if not self._ready:
            self._prepare_side_file()
        return self.engine.begin()

    def _prepare_side_file(self) -> None:
        """Create the side file's tables, and empty them if they belong to an earlier
        platform database (another sandbox id); once per instance."""
        with self._lock:
            if self._ready:
                return
            sandbox = self._platform_sandbox_id()
            with self.engine.begin() as conn:  # BEGIN IMMEDIATE: one process at a time
                _side_metadata.create_all(conn)
                for table in TEST_PROVIDER_TABLES:
                    table.create(conn, checkfirst=True)
                known = conn.execute(select(_side_meta.c.value).where(
                    _side_meta.c.key == SANDBOX_META_KEY)).scalar_one_or_none()
                if sandbox is not None and known != sandbox:
                    for table in reversed(TEST_PROVIDER_TABLES):
                        conn.execute(table.delete())
                    conn.execute(_side_meta.delete())
                    conn.execute(insert(_side_meta).values(key=SANDBOX_META_KEY,
                                                           value=sandbox))
            self._ready = True

    def _platform_sandbox_id(self) -> str | None:
        """The platform database's sandbox id, read without waiting for its writers."""
        assert self.platform_url is not None
        path = make_url(self.platform_url).database
        if not path or not Path(path).exists():
            return None  # (connecting would create an empty file)
        platform = make_engine(self.platform_url, poolclass=NullPool)
        try:
            with platform.connect() as conn:
                conn.execution_options(**{READ_ONLY: True})
                with conn.begin():
                    return conn.execute(select(silkroute_meta.c.value).where(
                        silkroute_meta.c.key == SANDBOX_META_KEY)).scalar_one_or_none()
        except (OperationalError, ProgrammingError):
            return None  # not a silkroute database (yet): nothing to compare with
        finally:
            platform.dispose()
