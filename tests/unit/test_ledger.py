"""Ledger rules: balanced transactions, every money flow's postings, global invariants."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from silkroute.domain.errors import ValidationError
from silkroute.domain.ledger import (
    AccountKind,
    AccountRef,
    CommissionRates,
    LedgerTransaction,
    Posting,
    PostingRow,
    RefundExceedsPaid,
    SaleLine,
    TransactionKind,
    TransactionRow,
    UnbalancedTransaction,
    balances,
    capture,
    check_escrow_matches_holds,
    check_global_zero,
    check_ledger,
    check_no_double_payout,
    check_transactions_balanced,
    commission_for,
    membership_fee,
    payout,
    payouts_due,
    reduce_lines,
    refund_after_release,
    refund_from_escrow,
    release,
    rows_for,
    split_release,
)
from silkroute.domain.money import CurrencyMismatch, Money


def krw(amount: int) -> Money:
    return Money(amount, "KRW")


def usd(amount: int) -> Money:
    return Money(amount, "USD")


def legs(txn: LedgerTransaction) -> dict[str, int]:
    return {p.account.code: p.amount.amount for p in txn.postings}


# accounts -------------------------------------------------------------------------------


def test_account_code_is_stable_and_parses_back() -> None:
    acc = AccountRef.seller_payable(42, "krw")
    assert acc.code == "seller_payable:42:KRW"
    assert AccountRef.parse("seller_payable:42:KRW") == acc
    assert AccountRef.platform_revenue("USD").code == "platform_revenue:0:USD"
    assert AccountRef("refunds", 5, "KRW").kind is AccountKind.REFUNDS  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("code", "message"),
    [
        (
            "seller_payable:42",
            "account: 'seller_payable:42' is not of the form kind:owner_id:CURRENCY",
        ),
        ("wallet:1:KRW", "account: unknown kind 'wallet' in 'wallet:1:KRW'"),
        ("seller_payable:1:XXX", "currency: unknown currency 'XXX'"),
    ],
)
def test_bad_account_code_is_refused(code: str, message: str) -> None:
    with pytest.raises(ValidationError) as err:
        AccountRef.parse(code)
    assert str(err.value).startswith(message)


def test_posting_currency_must_match_account() -> None:
    with pytest.raises(CurrencyMismatch, match="posting to seller_payable:1:KRW: amount is in USD"):
        Posting(AccountRef.seller_payable(1, "KRW"), usd(100))


# transactions ---------------------------------------------------------------------------


def test_unbalanced_transaction_is_refused_with_exact_message() -> None:
    # given postings that leave ₩500 unaccounted for
    postings = (
        Posting(AccountRef.escrow(1, "KRW"), krw(10_000)),
        Posting(AccountRef.buyer_funding(9, "KRW"), krw(-9_500)),
    )
    # when / then
    with pytest.raises(UnbalancedTransaction) as err:
        LedgerTransaction(TransactionKind.CAPTURE, "payment:1", postings, "capture:1")
    assert err.value.message == (
        "transaction 'capture:1' is unbalanced: KRW postings sum to ₩500 (500 minor units), not 0"
    )
    assert err.value.code == "unbalanced_transaction"
    assert err.value.field == "postings"


def test_imbalance_is_reported_per_currency() -> None:
    postings = (
        Posting(AccountRef.escrow(1, "KRW"), krw(100)),
        Posting(AccountRef.escrow(2, "USD"), usd(-250)),
    )
    with pytest.raises(UnbalancedTransaction) as err:
        LedgerTransaction(TransactionKind.CAPTURE, "payment:1", postings, "capture:1")
    assert err.value.message == (
        "transaction 'capture:1' is unbalanced: KRW postings sum to ₩100 (100 minor units), "
        "not 0; USD postings sum to -$2.50 (-250 minor units), not 0"
    )


def test_transaction_needs_two_postings() -> None:
    with pytest.raises(UnbalancedTransaction, match="has 1 posting\\(s\\); a transaction needs"):
        LedgerTransaction(
            TransactionKind.CAPTURE, "x", (Posting(AccountRef.escrow(1, "KRW"), krw(0)),), "k"
        )


def test_balanced_multi_currency_transaction_is_accepted() -> None:
    txn = LedgerTransaction(
        TransactionKind.CAPTURE,
        "x",
        (
            Posting(AccountRef.escrow(1, "KRW"), krw(100)),
            Posting(AccountRef.buyer_funding(1, "KRW"), krw(-100)),
            Posting(AccountRef.escrow(2, "USD"), usd(5)),
            Posting(AccountRef.buyer_funding(1, "USD"), usd(-5)),
        ),
        "k",
    )
    assert txn.currencies == ("KRW", "USD")


# capture ----------------------------------------------------------------------------------


def test_capture_holds_each_order_in_escrow() -> None:
    txn = capture("p1", buyer_id=9, holds={11: krw(10_000), 12: krw(25_500)})
    assert txn.kind is TransactionKind.CAPTURE
    assert txn.key == "capture:p1"
    assert txn.reference == "payment:p1"
    assert legs(txn) == {
        "buyer_funding:9:KRW": -35_500,
        "platform_escrow:11:KRW": 10_000,
        "platform_escrow:12:KRW": 25_500,
    }


def test_capture_refuses_mixed_currencies_and_empty_holds() -> None:
    with pytest.raises(CurrencyMismatch, match="hold of order 12: currency mismatch: USD"):
        capture("p1", 9, {11: krw(100), 12: usd(100)})
    with pytest.raises(ValidationError, match="at least one order hold"):
        capture("p1", 9, {})
    with pytest.raises(ValidationError, match="hold of order 11 must be positive, got ₩0"):
        capture("p1", 9, {11: krw(0)})


# release ----------------------------------------------------------------------------------


def test_release_of_10000_won_hold_with_5pct_and_3000_carrier_fee() -> None:
    # given a ₩10,000 hold: ₩7,000 of goods at 5% and ₩3,000 shipping charged
    txn = release(
        order_id=7, seller_id=42, carrier_id=3, hold=krw(10_000),
        lines=[SaleLine(krw(7_000))], shipping_charged=krw(3_000), carrier_fee=krw(3_000),
    )
    # then the seller gets price less ₩350 commission, carrier ₩3,000, platform ₩350
    assert txn.key == "release:order:7"
    assert legs(txn) == {
        "platform_escrow:7:KRW": -10_000,
        "seller_payable:42:KRW": 6_650,
        "carrier_payable:3:KRW": 3_000,
        "platform_revenue:0:KRW": 350,
    }


def test_release_with_free_shipping_platform_subsidises_carrier() -> None:
    # a ₩10,000 item shipped free (member): the platform pays the ₩3,000 carrier fee
    txn = release(7, 42, 3, krw(10_000), [SaleLine(krw(10_000))], krw(0), krw(3_000))
    assert legs(txn) == {
        "platform_escrow:7:KRW": -10_000,
        "seller_payable:42:KRW": 9_500,
        "carrier_payable:3:KRW": 3_000,
        "platform_revenue:0:KRW": -2_500,
    }


def test_release_with_shipping_borne_by_seller() -> None:
    txn = release(7, 42, 3, krw(10_000), [SaleLine(krw(10_000))], krw(0), krw(3_000),
                  shipping_borne_by_seller=krw(3_000))
    assert legs(txn) == {
        "platform_escrow:7:KRW": -10_000,
        "seller_payable:42:KRW": 6_500,
        "carrier_payable:3:KRW": 3_000,
        "platform_revenue:0:KRW": 500,
    }


def test_release_in_usd_with_shipping_margin_and_category_rates() -> None:
    # $24.99 of electronics at 8%, $10.01 of books at 5%, $4.99 shipping, carrier $3.75
    rates = CommissionRates({"electronics": Decimal("0.08")})
    lines = [
        SaleLine(usd(2_499), rates.rate_for("electronics")),
        SaleLine(usd(1_001), rates.rate_for("books")),
    ]
    txn = release(8, 5, 2, usd(3_999), lines, usd(499), usd(375))
    # 8% of 2499 = 199.92 -> 200; 5% of 1001 = 50.05 -> 50; commission 250
    assert legs(txn) == {
        "platform_escrow:8:USD": -3_999,
        "seller_payable:5:USD": 3_250,
        "carrier_payable:2:USD": 375,
        "platform_revenue:0:USD": 374,
    }


def test_commission_rounds_half_even_in_minor_units() -> None:
    assert commission_for([SaleLine(krw(10))]) == krw(0)  # 0.5 -> 0
    assert commission_for([SaleLine(krw(30))]) == krw(2)  # 1.5 -> 2
    assert commission_for([SaleLine(krw(50))]) == krw(2)  # 2.5 -> 2
    # lines at one rate are summed before rounding: 0.5 + 0.5 -> 1, not 0 + 0
    assert commission_for([SaleLine(krw(10)), SaleLine(krw(10))]) == krw(1)


def test_release_refuses_hold_that_is_not_goods_plus_shipping() -> None:
    with pytest.raises(ValidationError) as err:
        release(7, 42, 3, krw(10_000), [SaleLine(krw(8_000))], krw(1_000), krw(1_000))
    assert err.value.message == (
        "hold ₩10,000 does not equal goods ₩8,000 + shipping ₩1,000; "
        "pass the lines net of refunds"
    )
    assert err.value.field == "hold"


def test_commission_rates_validate() -> None:
    assert CommissionRates().rate_for("anything") == Decimal("0.05")
    with pytest.raises(ValidationError, match=r"commission_rate\[toys\]: 1.5 must be between 0"):
        CommissionRates({"toys": Decimal("1.5")})


@given(
    goods=st.lists(
        st.tuples(st.integers(0, 10**9), st.decimals(0, 1, places=4)), min_size=1, max_size=5
    ),
    shipping=st.integers(0, 10**7),
    carrier_fee=st.integers(0, 10**7),
    borne=st.integers(0, 10**6),
    currency=st.sampled_from(["KRW", "USD", "KWD"]),
)
def test_any_split_sums_exactly_to_the_hold(
    goods: list[tuple[int, Decimal]], shipping: int, carrier_fee: int, borne: int, currency: str
) -> None:
    lines = [SaleLine(Money(a, currency), rate) for a, rate in goods]
    hold = sum(a for a, _ in goods) + shipping
    if hold == 0:
        return
    m = lambda n: Money(n, currency)  # noqa: E731
    split = split_release(m(hold), lines, m(shipping), m(carrier_fee), m(borne))
    assert (split.seller + split.carrier + split.platform).amount == hold
    assert split.carrier.amount == carrier_fee
    assert 0 <= split.commission.amount <= split.goods.amount
    txn = release(1, 2, 3, m(hold), lines, m(shipping), m(carrier_fee), m(borne))
    assert txn.amount_for(AccountRef.escrow(1, currency)).amount == -hold
    assert sum(p.amount.amount for p in txn.postings) == 0


# refunds ----------------------------------------------------------------------------------


def test_partial_refund_before_release_comes_out_of_escrow() -> None:
    txn = refund_from_escrow("r1", order_id=7, buyer_id=9, amount=krw(4_000),
                             open_hold=krw(10_000))
    assert txn.kind is TransactionKind.REFUND
    assert txn.key == "refund:r1"
    assert legs(txn) == {"platform_escrow:7:KRW": -4_000, "refunds:9:KRW": 4_000}


def test_refund_after_release_claws_back_from_seller() -> None:
    txn = refund_after_release("r2", 7, 9, 42, krw(10_000), refundable=krw(10_000))
    assert legs(txn) == {"seller_payable:42:KRW": -10_000, "refunds:9:KRW": 10_000}


def test_refund_above_what_is_refundable_is_refused() -> None:
    with pytest.raises(RefundExceedsPaid) as err:
        refund_from_escrow("r1", 7, 9, krw(10_001), open_hold=krw(10_000))
    assert err.value.message == "refund of ₩10,001 exceeds the ₩10,000 still refundable"
    assert err.value.code == "refund_exceeds_paid"
    with pytest.raises(ValidationError, match="amount must be positive, got ₩0"):
        refund_from_escrow("r1", 7, 9, krw(0), open_hold=krw(10_000))
    with pytest.raises(CurrencyMismatch, match="amount: currency mismatch: USD, expected KRW"):
        refund_after_release("r1", 7, 9, 42, usd(5), refundable=krw(10_000))


def test_reduce_lines_takes_refund_off_goods_then_shipping() -> None:
    lines = [SaleLine(krw(5_000)), SaleLine(krw(2_000), Decimal("0.1"))]
    net, shipping = reduce_lines(lines, krw(3_000), krw(2_500))
    assert [line.amount.amount for line in net] == [4_500, 0]
    assert net[1].commission_rate == Decimal("0.1")
    assert shipping == krw(3_000)
    net, shipping = reduce_lines(lines, krw(3_000), krw(8_000))
    assert [line.amount.amount for line in net] == [0, 0] and shipping == krw(2_000)
    with pytest.raises(RefundExceedsPaid, match="refunded ₩10,001 exceeds goods and shipping"):
        reduce_lines(lines, krw(3_000), krw(10_001))
    # release after a ₩2,500 refund splits the remaining ₩7,500 hold
    net, shipping = reduce_lines(lines, krw(3_000), krw(2_500))
    assert split_release(krw(7_500), net, shipping, krw(3_000)).seller == krw(4_275)


# payout and membership --------------------------------------------------------------------


def test_payout_moves_payable_to_provider_clearing() -> None:
    payee = AccountRef.seller_payable(42, "KRW")
    txn = payout("b1", payee, krw(6_650))
    assert txn.key == "payout:b1:seller_payable:42:KRW"
    assert txn.reference == "payout_batch:b1"
    assert legs(txn) == {"seller_payable:42:KRW": -6_650, "provider_clearing:0:KRW": 6_650}
    with pytest.raises(ValidationError, match="payee: platform_revenue:0:KRW is not a seller"):
        payout("b1", AccountRef.platform_revenue("KRW"), krw(1))


def test_payouts_due_lists_positive_payables_only() -> None:
    bals = {
        AccountRef.seller_payable(2, "KRW"): krw(500),
        AccountRef.seller_payable(1, "KRW"): krw(-300),
        AccountRef.carrier_payable(3, "KRW"): krw(3_000),
        AccountRef.platform_revenue("KRW"): krw(900),
        AccountRef.carrier_payable(4, "KRW"): krw(0),
    }
    assert payouts_due(bals) == [
        (AccountRef.carrier_payable(3, "KRW"), krw(3_000)),
        (AccountRef.seller_payable(2, "KRW"), krw(500)),
    ]


def test_membership_fee_is_one_transaction_per_period() -> None:
    txn = membership_fee(9, "2026-11", krw(4_900))
    assert txn.key == "membership:9:2026-11"
    assert legs(txn) == {"buyer_funding:9:KRW": -4_900, "membership_revenue:0:KRW": 4_900}


# invariants -------------------------------------------------------------------------------


def _journey() -> list[LedgerTransaction]:
    """Two orders paid together; one released then paid out, one partly refunded."""
    return [
        capture("p1", 9, {7: krw(10_000), 8: krw(5_000)}),
        release(7, 42, 3, krw(10_000), [SaleLine(krw(7_000))], krw(3_000), krw(3_000)),
        refund_from_escrow("r1", 8, 9, krw(1_000), open_hold=krw(5_000)),
        payout("b1", AccountRef.seller_payable(42, "KRW"), krw(6_650)),
        payout("b1", AccountRef.carrier_payable(3, "KRW"), krw(3_000)),
        membership_fee(9, "2026-11", krw(4_900)),
    ]


def _rows(txns: list[LedgerTransaction]) -> tuple[list[TransactionRow], list[PostingRow]]:
    t_rows = [TransactionRow(i, t.kind.value, t.reference, t.key) for i, t in enumerate(txns, 1)]
    p_rows = [row for i, t in enumerate(txns, 1) for row in rows_for(i, t)]
    return t_rows, p_rows


def test_a_consistent_ledger_passes_every_check() -> None:
    txns = _journey()
    t_rows, p_rows = _rows(txns)
    report = check_ledger(t_rows, p_rows, open_holds={8: krw(4_000)})
    assert report.violations == ()
    assert report.ok
    assert (report.transactions, report.postings, report.accounts) == (6, 15, 9)
    bal = balances(p for t in txns for p in t.postings)
    assert bal[AccountRef.seller_payable(42, "KRW")] == krw(0)
    assert bal[AccountRef.platform_revenue("KRW")] == krw(350)
    assert bal[AccountRef.escrow(8, "KRW")] == krw(4_000)


def test_tampered_rows_are_named() -> None:
    _, p_rows = _rows(_journey())
    p_rows[0] = PostingRow(1, "buyer_funding:9:KRW", -14_000, "KRW")  # was -15,000
    assert check_transactions_balanced(p_rows) == [
        "transaction 1: KRW postings sum to ₩1,000, not 0"
    ]
    assert check_global_zero(p_rows) == ["ledger: all KRW accounts sum to ₩1,000, not 0"]
    assert check_transactions_balanced([PostingRow(5, "escrow_x", 0, "KRW")]) == [
        "transaction 5: posting to escrow_x is in KRW",
        "transaction 5: has 1 posting(s), needs at least 2",
    ]


def test_escrow_must_equal_open_holds() -> None:
    _, p_rows = _rows(_journey())
    assert check_escrow_matches_holds(p_rows, {8: krw(5_000)}) == [
        "escrow: order 8 holds ₩4,000 in escrow, its open hold is ₩5,000",
        "escrow: KRW escrow balance ₩4,000 differs from open holds ₩5,000",
    ]
    # an order released but still listed as open
    assert check_escrow_matches_holds(p_rows, {7: krw(10_000), 8: krw(4_000)})[0] == (
        "escrow: order 7 holds ₩0 in escrow, its open hold is ₩10,000"
    )


def test_double_payout_is_detected() -> None:
    txns = _journey()
    txns.append(payout("b2", AccountRef.seller_payable(42, "KRW"), krw(6_650)))
    t_rows, p_rows = _rows(txns)
    assert check_no_double_payout(t_rows, p_rows) == [
        "payout: transaction 7 took seller_payable:42:KRW to -₩6,650 (paid more than owed)"
    ]
    # the same key stored twice, in one batch
    t_rows, p_rows = _rows(_journey()[:5] + [_journey()[4]])
    violations = check_no_double_payout(t_rows, p_rows)
    assert violations == [
        "payout: key payout:b1:carrier_payable:3:KRW used by transactions 5 and 6",
        "payout: carrier_payable:3:KRW paid twice in payout_batch:b1 (transactions 5 and 6)",
        "payout: transaction 6 took carrier_payable:3:KRW to -₩3,000 (paid more than owed)",
    ]
    report = check_ledger(t_rows, p_rows, {8: krw(4_000)})
    assert not report.ok and len(report.violations) == 3


def test_clawback_may_leave_seller_owing_without_a_payout_violation() -> None:
    txns = _journey() + [refund_after_release("r2", 7, 9, 42, krw(10_000), krw(10_000))]
    t_rows, p_rows = _rows(txns)
    assert check_ledger(t_rows, p_rows, {8: krw(4_000)}).ok
    bal = balances(p for t in txns for p in t.postings)
    assert bal[AccountRef.seller_payable(42, "KRW")] == krw(-10_000)


def test_orphan_and_empty_transactions_are_named() -> None:
    report = check_ledger(
        [TransactionRow(1, "capture", "x", "k")],
        [PostingRow(2, "refunds:1:KRW", 5, "KRW"), PostingRow(2, "escrow:1:KRW", -5, "KRW")],
        {},
    )
    assert report.violations[:2] == (
        "posting of unknown transaction 2",
        "transaction 1: has no postings",
    )
