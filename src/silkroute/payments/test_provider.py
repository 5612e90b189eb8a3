"""Built-in deterministic in-memory test provider: test cards approve, decline, time out.

Test cards (spaces and dashes are ignored; expiry and CVC are not checked):

=====================  =======================================================
card number            behaviour on authorize
=====================  =======================================================
4242 4242 4242 4242    approves
5555 5555 5555 4444    approves
4000 0000 0000 0002    declines: ``card_declined``
4000 0000 0000 9995    declines: ``insufficient_funds``
4000 0000 0000 0069    declines: ``card_expired``
4000 0000 0000 0127    declines: ``incorrect_cvc``
4000 0000 0000 0119    times out on every attempt (nothing is authorized)
4000 0000 0000 3220    first attempt with a key times out; the retry with the same key
                       approves (approve on retry)
any other Luhn-valid   approves
anything else          declines: ``invalid_card_number``
=====================  =======================================================

Every operation is idempotent by key: the same key with the same arguments returns the
first result (or raises the first decline again) and moves no money twice; the same key
with other arguments raises IdempotencyKeyReused. A timeout stores nothing, so the retry
decides. All state lives in memory behind one lock, so concurrent calls are safe.

``TestPaymentProvider.durable(url_or_engine)`` is the same sandbox kept in the database
instead (``silkroute.payments.durable_test_provider``): every process on one platform
database shares one account, and a restart forgets nothing.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:
    from silkroute.payments.durable_test_provider import DurableTestPaymentProvider

APPROVE = "4242424242424242"
APPROVE_MASTERCARD = "5555555555554444"
DECLINE = "4000000000000002"
DECLINE_INSUFFICIENT_FUNDS = "4000000000009995"
DECLINE_EXPIRED = "4000000000000069"
DECLINE_INCORRECT_CVC = "4000000000000127"
TIMEOUT = "4000000000000119"
APPROVE_ON_RETRY = "4000000000003220"

#: card number -> decline reason
DECLINING_CARDS: dict[str, str] = {
    DECLINE: "card_declined",
    DECLINE_INSUFFICIENT_FUNDS: "insufficient_funds",
    DECLINE_EXPIRED: "card_expired",
    DECLINE_INCORRECT_CVC: "incorrect_cvc",
}


def normalize_card(number: str) -> str:
    return "".join(ch for ch in str(number) if ch not in " -")


def luhn_valid(number: str) -> bool:
    if not number.isdigit() or not 12 <= len(number) <= 19:
        return False
    total = 0
    for i, ch in enumerate(reversed(number)):
        digit = int(ch)
        if i % 2:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return total % 10 == 0


def check_amount(amount: Money) -> None:
    if not isinstance(amount, Money) or amount.amount <= 0:
        raise ValidationError(f"amount must be positive Money, got {amount!r}",
                              field="amount")


def card_decline_reason(card: str, key: str, attempt: int) -> str | None:
    """What a test card does on its `attempt`-th authorize with `key`: None approves, a
    string is the decline reason; the timeout cards raise PaymentTimeout."""
    if card == TIMEOUT or (card == APPROVE_ON_RETRY and attempt == 1):
        raise PaymentTimeout(PaymentOperation.AUTHORIZE.value, key)
    return DECLINING_CARDS.get(card) or (None if luhn_valid(card) else "invalid_card_number")


@dataclass(slots=True)
class _Authorization:
    reference: str
    card_last4: str
    amount: Money
    status: PaymentStatus
    capture_reference: str | None = None


@dataclass(slots=True)
class _Capture:
    reference: str
    authorization: str
    amount: Money
    refunded: int = 0


@dataclass(frozen=True, slots=True)
class _Record:
    request: tuple[object, ...]
    result: PaymentResult | None
    error: PaymentError | None


class TestPaymentProvider:
    """The built-in provider: deterministic references, state in memory, thread-safe."""

    __test__ = False  # not a pytest test class despite the name
    name = "test"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: dict[str, _Record] = {}
        self._attempts: dict[str, int] = {}
        self._authorizations: dict[str, _Authorization] = {}
        self._captures: dict[str, _Capture] = {}
        self._payouts: list[PaymentResult] = []
        self._refunds: list[PaymentResult] = []
        self._counter = 0

    @staticmethod
    def durable(url_or_engine: Any) -> DurableTestPaymentProvider:
        """The same sandbox kept in the platform database named by `url_or_engine` (a URL
        or an Engine), shared by every process on it: see `DurableTestPaymentProvider`."""
        from silkroute.payments.durable_test_provider import DurableTestPaymentProvider

        return DurableTestPaymentProvider.for_database(url_or_engine)

    # the port ---------------------------------------------------------------------------
    def authorize(self, *, idempotency_key: str, payment_method: str, amount: Money
                  ) -> PaymentResult:
        card = normalize_card(payment_method)
        request = (PaymentOperation.AUTHORIZE, card, amount)
        return self._once(idempotency_key, request, lambda: self._authorize(
            idempotency_key, card, amount))

    def capture(self, *, idempotency_key: str, authorization: str, amount: Money | None = None
                ) -> PaymentResult:
        request = (PaymentOperation.CAPTURE, authorization, amount)
        return self._once(idempotency_key, request, lambda: self._capture(
            idempotency_key, authorization, amount))

    def void(self, *, idempotency_key: str, authorization: str) -> PaymentResult:
        request = (PaymentOperation.VOID, authorization)
        return self._once(idempotency_key, request, lambda: self._void(
            idempotency_key, authorization))

    def refund(self, *, idempotency_key: str, capture: str, amount: Money) -> PaymentResult:
        request = (PaymentOperation.REFUND, capture, amount)
        return self._once(idempotency_key, request, lambda: self._refund(
            idempotency_key, capture, amount))

    def payout(self, *, idempotency_key: str, destination: str, amount: Money
               ) -> PaymentResult:
        request = (PaymentOperation.PAYOUT, destination, amount)
        return self._once(idempotency_key, request, lambda: self._payout(
            idempotency_key, destination, amount))

    # inspection for tests and the demo --------------------------------------------------
    def captured_total(self, currency: str) -> Money:
        """Gross amount captured in `currency` (refunds not deducted)."""
        with self._lock:
            return Money(sum(c.amount.amount for c in self._captures.values()
                             if c.amount.currency == currency), currency)

    def refunded_total(self, currency: str) -> Money:
        with self._lock:
            return Money(sum(r.amount.amount for r in self._refunds
                             if r.amount.currency == currency), currency)

    def paid_out_total(self, currency: str) -> Money:
        with self._lock:
            return Money(sum(p.amount.amount for p in self._payouts
                             if p.amount.currency == currency), currency)

    @property
    def capture_count(self) -> int:
        with self._lock:
            return len(self._captures)

    @property
    def authorization_count(self) -> int:
        with self._lock:
            return len(self._authorizations)

    @property
    def payouts(self) -> tuple[PaymentResult, ...]:
        with self._lock:
            return tuple(self._payouts)

    def authorization_status(self, reference: str) -> PaymentStatus:
        with self._lock:
            return self._find_authorization(reference).status

    # machinery --------------------------------------------------------------------------
    def _once(
        self, key: str, request: tuple[object, ...], perform: Callable[[], PaymentResult]
    ) -> PaymentResult:
        if not key or not isinstance(key, str):
            raise ValidationError("idempotency_key must be a non-empty string",
                                  field="idempotency_key")
        with self._lock:
            record = self._records.get(key)
            if record is not None:
                if record.request != request:
                    raise IdempotencyKeyReused(
                        f"idempotency key {key!r} was already used for another request",
                        field="idempotency_key",
                    )
                if record.error is not None:
                    raise record.error.with_traceback(None)
                assert record.result is not None
                return record.result
            try:
                result = perform()
            except PaymentTimeout:
                raise  # outcome unknown: nothing stored, the retry decides
            except PaymentError as exc:
                self._records[key] = _Record(request, None, exc)
                raise
            self._records[key] = _Record(request, result, None)
            return result

    def _next_reference(self, prefix: str) -> str:
        self._counter += 1
        return f"test_{prefix}_{self._counter:06d}"

    def _authorize(self, key: str, card: str, amount: Money) -> PaymentResult:
        check_amount(amount)
        attempt = self._attempts.get(key, 0) + 1
        self._attempts[key] = attempt
        reason = card_decline_reason(card, key, attempt)
        if reason is not None:
            declined = PaymentResult(
                operation=PaymentOperation.AUTHORIZE,
                provider_reference=self._next_reference("decline"),
                status=PaymentStatus.DECLINED,
                amount=amount,
                idempotency_key=key,
                decline_reason=reason,
            )
            raise PaymentDeclined(reason, declined)
        reference = self._next_reference("auth")
        self._authorizations[reference] = _Authorization(
            reference, card[-4:], amount, PaymentStatus.AUTHORIZED
        )
        return PaymentResult(PaymentOperation.AUTHORIZE, reference, PaymentStatus.AUTHORIZED,
                             amount, key)

    def _find_authorization(self, reference: str) -> _Authorization:
        auth = self._authorizations.get(reference)
        if auth is None:
            raise PaymentError(f"unknown authorization {reference!r}", field="authorization",
                               code="unknown_authorization")
        return auth

    def _capture(self, key: str, reference: str, amount: Money | None) -> PaymentResult:
        auth = self._find_authorization(reference)
        take = auth.amount if amount is None else amount
        check_amount(take)
        if take.currency != auth.amount.currency:
            raise PaymentDeclined("currency_mismatch")
        if auth.status is not PaymentStatus.AUTHORIZED:
            raise PaymentDeclined(f"authorization_{auth.status.value}")
        if take > auth.amount:
            raise PaymentDeclined("amount_exceeds_authorization")
        capture_ref = self._next_reference("capture")
        self._captures[capture_ref] = _Capture(capture_ref, reference, take)
        auth.status = PaymentStatus.CAPTURED
        auth.capture_reference = capture_ref
        return PaymentResult(PaymentOperation.CAPTURE, capture_ref, PaymentStatus.CAPTURED,
                             take, key, parent=reference)

    def _void(self, key: str, reference: str) -> PaymentResult:
        auth = self._find_authorization(reference)
        if auth.status is not PaymentStatus.AUTHORIZED:
            raise PaymentDeclined(f"authorization_{auth.status.value}")
        auth.status = PaymentStatus.VOIDED
        return PaymentResult(PaymentOperation.VOID, self._next_reference("void"),
                             PaymentStatus.VOIDED, auth.amount, key, parent=reference)

    def _refund(self, key: str, reference: str, amount: Money) -> PaymentResult:
        check_amount(amount)
        cap = self._captures.get(reference)
        if cap is None:
            raise PaymentError(f"unknown capture {reference!r}", field="capture",
                               code="unknown_capture")
        if amount.currency != cap.amount.currency:
            raise PaymentDeclined("currency_mismatch")
        if amount.amount > cap.amount.amount - cap.refunded:
            raise PaymentDeclined("refund_exceeds_capture")
        cap.refunded += amount.amount
        result = PaymentResult(PaymentOperation.REFUND, self._next_reference("refund"),
                               PaymentStatus.REFUNDED, amount, key, parent=reference)
        self._refunds.append(result)
        return result

    def _payout(self, key: str, destination: str, amount: Money) -> PaymentResult:
        check_amount(amount)
        if not destination or not isinstance(destination, str):
            raise ValidationError("destination must be a non-empty string",
                                  field="destination")
        result = PaymentResult(PaymentOperation.PAYOUT, self._next_reference("payout"),
                               PaymentStatus.PAID_OUT, amount, key, parent=destination)
        self._payouts.append(result)
        return result
