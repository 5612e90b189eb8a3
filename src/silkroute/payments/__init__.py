"""Payments: the provider port, the built-in test provider, and the errors they raise."""

from silkroute.payments.port import (
    IdempotencyKeyReused,
    PaymentDeclined,
    PaymentError,
    PaymentOperation,
    PaymentProvider,
    PaymentResult,
    PaymentStatus,
    PaymentTimeout,
    derive_key,
)
from silkroute.payments.test_provider import TestPaymentProvider

__all__ = [
    "IdempotencyKeyReused",
    "PaymentDeclined",
    "PaymentError",
    "PaymentOperation",
    "PaymentProvider",
    "PaymentResult",
    "PaymentStatus",
    "PaymentTimeout",
    "TestPaymentProvider",
    "derive_key",
]
