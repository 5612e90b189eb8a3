"""The payment-provider port: what the platform asks of any card processor, and its errors."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol, runtime_checkable

from silkroute.domain.errors import DomainError, ValidationError
from silkroute.domain.money import Money


class PaymentStatus(StrEnum):
    AUTHORIZED = "authorized"
    CAPTURED = "captured"
    VOIDED = "voided"
    REFUNDED = "refunded"
    PAID_OUT = "paid_out"
    DECLINED = "declined"


class PaymentOperation(StrEnum):
    AUTHORIZE = "authorize"
    CAPTURE = "capture"
    VOID = "void"
    REFUND = "refund"
    PAYOUT = "payout"


@dataclass(frozen=True, slots=True)
class PaymentResult:
    """What the provider answered: its reference for the operation, the status, the amount
    and, for a decline, the reason. `parent` is the authorization/capture it acted on."""

    operation: PaymentOperation
    provider_reference: str
    status: PaymentStatus
    amount: Money
    idempotency_key: str
    parent: str | None = None
    decline_reason: str | None = None


class PaymentError(DomainError):
    """The provider refused or could not complete an operation; nothing was moved."""

    code = "payment_error"


class PaymentDeclined(PaymentError):
    """The card (or the operation) was declined; `reason` is the provider's reason code."""

    code = "payment_declined"

    def __init__(self, reason: str, result: PaymentResult | None = None):
        super().__init__(f"payment declined: {reason}", field="payment_method")
        self.reason = reason
        self.result = result


class PaymentTimeout(PaymentError):
    """No answer in time: the outcome is unknown, so retry with the SAME idempotency key."""

    code = "payment_timeout"

    def __init__(self, operation: str, idempotency_key: str):
        super().__init__(
            f"payment provider timed out on {operation} (key {idempotency_key}); "
            "retry with the same idempotency key",
            field="payment_method",
        )
        self.operation = operation
        self.idempotency_key = idempotency_key


class IdempotencyKeyReused(PaymentError):
    """The same idempotency key was sent with a different request."""

    code = "idempotency_key_reused"


def derive_key(operation: str, *parts: object) -> str:
    """The idempotency key the platform sends: one per business event, stable across retries.

    e.g. ``derive_key("capture", "payment", 17)`` -> ``silkroute:capture:payment:17``.
    """
    if not operation or not parts:
        raise ValidationError("idempotency key needs an operation and at least one part",
                              field="idempotency_key")
    return ":".join(["silkroute", operation, *(str(p) for p in parts)])


@runtime_checkable
class PaymentProvider(Protocol):
    """A card processor behind the platform. Every call is idempotent by `idempotency_key`:
    the same key returns the first result (or raises the first decline) and never moves
    money twice; the same key with different arguments raises IdempotencyKeyReused.
    Declines raise PaymentDeclined; no answer raises PaymentTimeout (retry with the key)."""

    name: str

    def authorize(self, *, idempotency_key: str, payment_method: str, amount: Money
                  ) -> PaymentResult:
        """Reserve `amount` on the payment method; nothing is captured yet."""
        ...

    def capture(self, *, idempotency_key: str, authorization: str, amount: Money | None = None
                ) -> PaymentResult:
        """Take (up to) the authorized amount; the default is all of it."""
        ...

    def void(self, *, idempotency_key: str, authorization: str) -> PaymentResult:
        """Release an authorization that was not captured."""
        ...

    def refund(self, *, idempotency_key: str, capture: str, amount: Money) -> PaymentResult:
        """Give back part or all of a capture (never more than captured less refunded)."""
        ...

    def payout(self, *, idempotency_key: str, destination: str, amount: Money
               ) -> PaymentResult:
        """Send `amount` to a seller's or carrier's account `destination`."""
        ...
