"""The built-in test provider: test cards, idempotency by key, thread safety."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from silkroute.domain.money import Money
from silkroute.payments import (
    IdempotencyKeyReused,
    PaymentDeclined,
    PaymentError,
    PaymentProvider,
    PaymentStatus,
    PaymentTimeout,
    TestPaymentProvider,
    derive_key,
)
from silkroute.payments import test_provider as cards

KRW = Money(10_000, "KRW")


@pytest.fixture
def provider() -> TestPaymentProvider:
    return TestPaymentProvider()


def test_it_implements_the_port(provider: TestPaymentProvider) -> None:
    port: PaymentProvider = provider
    assert isinstance(port, PaymentProvider)
    assert derive_key("capture", "payment", 17) == "silkroute:capture:payment:17"


def test_approving_card_authorizes_then_captures(provider: TestPaymentProvider) -> None:
    auth = provider.authorize(idempotency_key="a1", payment_method="4242 4242 4242 4242",
                              amount=KRW)
    assert auth.status is PaymentStatus.AUTHORIZED
    assert auth.provider_reference == "test_auth_000001"
    cap = provider.capture(idempotency_key="c1", authorization=auth.provider_reference)
    assert (cap.status, cap.amount) == (PaymentStatus.CAPTURED, KRW)
    assert cap.parent == auth.provider_reference
    assert provider.captured_total("KRW") == KRW


@pytest.mark.parametrize(
    ("card", "reason"),
    [
        (cards.DECLINE, "card_declined"),
        (cards.DECLINE_INSUFFICIENT_FUNDS, "insufficient_funds"),
        (cards.DECLINE_EXPIRED, "card_expired"),
        (cards.DECLINE_INCORRECT_CVC, "incorrect_cvc"),
        ("4242 4242 4242 4241", "invalid_card_number"),
    ],
)
def test_declining_cards_name_the_reason_and_capture_nothing(
    provider: TestPaymentProvider, card: str, reason: str
) -> None:
    with pytest.raises(PaymentDeclined) as err:
        provider.authorize(idempotency_key="a1", payment_method=card, amount=KRW)
    assert err.value.reason == reason
    assert err.value.message == f"payment declined: {reason}"
    assert err.value.code == "payment_declined"
    assert err.value.result is not None and err.value.result.decline_reason == reason
    # the same key replays the decline; nothing was authorized or captured
    with pytest.raises(PaymentDeclined, match=reason):
        provider.authorize(idempotency_key="a1", payment_method=card, amount=KRW)
    assert provider.authorization_count == 0
    assert provider.captured_total("KRW") == Money(0, "KRW")


def test_timeout_card_always_times_out_and_leaves_nothing(provider: TestPaymentProvider) -> None:
    for _ in range(3):
        with pytest.raises(PaymentTimeout) as err:
            provider.authorize(idempotency_key="a1", payment_method=cards.TIMEOUT, amount=KRW)
    assert err.value.code == "payment_timeout"
    assert "retry with the same idempotency key" in err.value.message
    assert provider.authorization_count == 0
    assert provider.captured_total("KRW") == Money(0, "KRW")


def test_approve_on_retry_card(provider: TestPaymentProvider) -> None:
    with pytest.raises(PaymentTimeout):
        provider.authorize(idempotency_key="a1", payment_method=cards.APPROVE_ON_RETRY,
                           amount=KRW)
    auth = provider.authorize(idempotency_key="a1", payment_method=cards.APPROVE_ON_RETRY,
                              amount=KRW)
    assert auth.status is PaymentStatus.AUTHORIZED
    again = provider.authorize(idempotency_key="a1", payment_method=cards.APPROVE_ON_RETRY,
                               amount=KRW)
    assert again == auth and provider.authorization_count == 1
    # a fresh key starts over with a timeout
    with pytest.raises(PaymentTimeout):
        provider.authorize(idempotency_key="a2", payment_method=cards.APPROVE_ON_RETRY,
                           amount=KRW)


def test_same_key_returns_first_result_and_charges_once(provider: TestPaymentProvider) -> None:
    auth = provider.authorize(idempotency_key="a1", payment_method=cards.APPROVE, amount=KRW)
    first = provider.capture(idempotency_key="c1", authorization=auth.provider_reference)
    second = provider.capture(idempotency_key="c1", authorization=auth.provider_reference)
    assert first == second
    assert provider.capture_count == 1


def test_same_key_other_request_is_refused(provider: TestPaymentProvider) -> None:
    provider.authorize(idempotency_key="a1", payment_method=cards.APPROVE, amount=KRW)
    with pytest.raises(IdempotencyKeyReused) as err:
        provider.authorize(idempotency_key="a1", payment_method=cards.APPROVE,
                           amount=Money(10_001, "KRW"))
    assert err.value.code == "idempotency_key_reused"


def test_two_threads_one_key_make_one_charge(provider: TestPaymentProvider) -> None:
    auth = provider.authorize(idempotency_key="a1", payment_method=cards.APPROVE, amount=KRW)
    barrier = threading.Barrier(8)

    def pay() -> str:
        barrier.wait()
        result = provider.capture(idempotency_key="c1", authorization=auth.provider_reference)
        return result.provider_reference

    with ThreadPoolExecutor(8) as pool:
        refs = list(pool.map(lambda _: pay(), range(8)))
    assert len(set(refs)) == 1
    assert provider.capture_count == 1
    assert provider.captured_total("KRW") == KRW


def test_concurrent_authorize_and_payout_with_one_key(provider: TestPaymentProvider) -> None:
    barrier = threading.Barrier(2)

    def both(op: str) -> str:
        barrier.wait()
        if op == "auth":
            return provider.authorize(idempotency_key="k", payment_method=cards.APPROVE,
                                      amount=KRW).provider_reference
        return provider.payout(idempotency_key="p", destination="seller:42",
                               amount=KRW).provider_reference

    for _ in range(20):
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(both, ["auth", "payout"]))
        barrier.reset()
    assert provider.authorization_count == 1
    assert len(provider.payouts) == 1
    assert provider.paid_out_total("KRW") == KRW


def test_void_releases_an_uncaptured_authorization(provider: TestPaymentProvider) -> None:
    auth = provider.authorize(idempotency_key="a1", payment_method=cards.APPROVE, amount=KRW)
    void = provider.void(idempotency_key="v1", authorization=auth.provider_reference)
    assert void.status is PaymentStatus.VOIDED
    assert provider.authorization_status(auth.provider_reference) is PaymentStatus.VOIDED
    with pytest.raises(PaymentDeclined, match="authorization_voided"):
        provider.capture(idempotency_key="c1", authorization=auth.provider_reference)
    assert provider.captured_total("KRW") == Money(0, "KRW")


def test_partial_and_full_refunds_never_exceed_the_capture(
    provider: TestPaymentProvider,
) -> None:
    auth = provider.authorize(idempotency_key="a1", payment_method=cards.APPROVE, amount=KRW)
    cap = provider.capture(idempotency_key="c1", authorization=auth.provider_reference)
    part = provider.refund(idempotency_key="r1", capture=cap.provider_reference,
                           amount=Money(4_000, "KRW"))
    assert part.status is PaymentStatus.REFUNDED
    provider.refund(idempotency_key="r1", capture=cap.provider_reference,
                    amount=Money(4_000, "KRW"))  # replay: no second refund
    assert provider.refunded_total("KRW") == Money(4_000, "KRW")
    with pytest.raises(PaymentDeclined, match="refund_exceeds_capture"):
        provider.refund(idempotency_key="r2", capture=cap.provider_reference,
                        amount=Money(6_001, "KRW"))
    provider.refund(idempotency_key="r3", capture=cap.provider_reference,
                    amount=Money(6_000, "KRW"))
    assert provider.refunded_total("KRW") == KRW
    with pytest.raises(PaymentDeclined, match="already_captured|authorization_captured"):
        provider.capture(idempotency_key="c2", authorization=auth.provider_reference)


def test_unknown_references_are_refused(provider: TestPaymentProvider) -> None:
    with pytest.raises(PaymentError) as err:
        provider.capture(idempotency_key="c1", authorization="nope")
    assert err.value.code == "unknown_authorization"
    with pytest.raises(PaymentError) as err:
        provider.refund(idempotency_key="r1", capture="nope", amount=KRW)
    assert err.value.code == "unknown_capture"


def test_capture_above_authorization_or_in_other_currency_is_declined(
    provider: TestPaymentProvider,
) -> None:
    auth = provider.authorize(idempotency_key="a1", payment_method=cards.APPROVE, amount=KRW)
    with pytest.raises(PaymentDeclined, match="amount_exceeds_authorization"):
        provider.capture(idempotency_key="c1", authorization=auth.provider_reference,
                         amount=Money(10_001, "KRW"))
    with pytest.raises(PaymentDeclined, match="currency_mismatch"):
        provider.capture(idempotency_key="c2", authorization=auth.provider_reference,
                         amount=Money(100, "USD"))
    partial = provider.capture(idempotency_key="c3", authorization=auth.provider_reference,
                               amount=Money(9_000, "KRW"))
    assert partial.amount == Money(9_000, "KRW")
