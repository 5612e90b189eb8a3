"""Money: integer minor units, currency rules, parsing, formatting and rounding."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from silkroute.domain.errors import ValidationError
from silkroute.domain.money import CurrencyMismatch, Money

KNOWN = "CNY, EUR, GBP, HKD, JPY, KRW, KWD, SGD, TWD, USD"


# construction ----------------------------------------------------------------------------
def test_money_holds_an_integer_amount_and_an_upper_case_code() -> None:
    # given / when
    money = Money(1250, "usd")
    # then
    assert (money.amount, money.currency) == (1250, "USD")


@pytest.mark.parametrize("amount", [True, False, 1.0, Decimal("1"), "1", None])
def test_money_refuses_anything_but_an_int_amount(amount: object) -> None:
    # given a non-integer amount (bool is an int subclass but still refused)
    # when / then
    with pytest.raises(ValidationError) as caught:
        Money(amount, "KRW")  # type: ignore[arg-type]
    assert caught.value.message == (
        f"amount must be an integer of minor units, got {amount!r}"
    )
    assert caught.value.field == "amount"


@pytest.mark.parametrize("code", ["XYZ", "", "KR", None])
def test_unknown_currency_is_refused_naming_the_field_and_known_codes(code: object) -> None:
    # given / when / then
    with pytest.raises(ValidationError) as caught:
        Money(1, code)  # type: ignore[arg-type]
    assert caught.value.message == f"currency: unknown currency {code!r} (known: {KNOWN})"
    assert caught.value.field == "currency"


def test_zero_is_zero_of_that_currency_and_falsy() -> None:
    # given / when
    zero = Money.zero("CNY")
    # then
    assert zero == Money(0, "CNY")
    assert not zero
    assert Money(1, "CNY")


@pytest.mark.parametrize(
    ("currency", "exponent"), [("KRW", 0), ("JPY", 0), ("CNY", 2), ("USD", 2), ("KWD", 3)]
)
def test_exponent_is_the_iso_minor_unit(currency: str, exponent: int) -> None:
    assert Money(1, currency).exponent == exponent


# parsing ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "currency", "amount"),
    [
        ("12.50", "USD", 1250),
        ("12.5", "USD", 1250),
        ("12", "USD", 1200),
        ("0.01", "USD", 1),
        ("-3", "CNY", -300),
        ("3.07", "CNY", 307),
        ("12000", "KRW", 12000),
        ("12000.0", "KRW", 12000),
        (" 7 ", "KRW", 7),
        ("1.005", "KWD", 1005),
    ],
)
def test_parse_turns_a_decimal_into_minor_units(text: str, currency: str, amount: int) -> None:
    # given a human amount / when parsed
    money = Money.parse(text, currency)
    # then it is exact in minor units
    assert money == Money(amount, currency)


@pytest.mark.parametrize(
    ("text", "currency", "message"),
    [
        ("12.505", "USD", "price: '12.505' has more decimals than USD allows (2)"),
        ("0.001", "CNY", "price: '0.001' has more decimals than CNY allows (2)"),
        ("12.5", "KRW", "price: '12.5' has more decimals than KRW allows (0)"),
        ("abc", "USD", "price: 'abc' is not a number"),
        ("", "KRW", "price: '' is not a number"),
        ("NaN", "USD", "price: 'NaN' is not a finite number"),
        ("Infinity", "KRW", "price: 'Infinity' is not a finite number"),
    ],
)
def test_parse_refuses_sub_unit_digits_and_non_numbers(
    text: str, currency: str, message: str
) -> None:
    # given / when / then
    with pytest.raises(ValidationError) as caught:
        Money.parse(text, currency)
    assert caught.value.message == message
    assert caught.value.field == "price"


def test_parse_names_the_field_it_is_given() -> None:
    with pytest.raises(ValidationError) as caught:
        Money.parse("1.234", "USD", field="shipping_fee")
    assert caught.value.message == "shipping_fee: '1.234' has more decimals than USD allows (2)"
    assert caught.value.field == "shipping_fee"


def test_parse_refuses_an_unknown_currency() -> None:
    with pytest.raises(ValidationError) as caught:
        Money.parse("1", "ABC")
    assert caught.value.message == f"currency: unknown currency 'ABC' (known: {KNOWN})"
    assert caught.value.field == "currency"


# formatting ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("money", "text"),
    [
        (Money(12000, "KRW"), "₩12,000"),
        (Money(0, "KRW"), "₩0"),
        (Money(-1234567, "KRW"), "-₩1,234,567"),
        (Money(123450, "USD"), "$1,234.50"),
        (Money(5, "USD"), "$0.05"),
        (Money(-300, "CNY"), "-CN¥3.00"),
        (Money(100000, "JPY"), "¥100,000"),
        (Money(99, "EUR"), "€0.99"),
        (Money(1234, "KWD"), "1.234 KWD"),
        (Money(-150, "SGD"), "-1.50 SGD"),
    ],
)
def test_format_for_humans(money: Money, text: str) -> None:
    assert money.format() == text
    assert str(money) == text


def test_to_decimal_is_exact() -> None:
    assert Money(123450, "USD").to_decimal() == Decimal("1234.50")
    assert Money(12000, "KRW").to_decimal() == Decimal("12000")


# arithmetic ------------------------------------------------------------------------------
def test_same_currency_arithmetic_is_exact() -> None:
    # given
    a, b = Money(1250, "USD"), Money(75, "USD")
    # then
    assert a + b == Money(1325, "USD")
    assert a - b == Money(1175, "USD")
    assert -a == Money(-1250, "USD")
    assert a * 3 == Money(3750, "USD")
    assert 3 * a == Money(3750, "USD")


@pytest.mark.parametrize("factor", [1.5, True, Decimal("2")])
def test_multiplying_by_a_non_integer_is_a_type_error(factor: object) -> None:
    with pytest.raises(TypeError, match=r"^Money can only be multiplied by an integer; use "
                                        r"\.scaled\(\)$"):
        Money(100, "USD") * factor  # type: ignore[operator]


@pytest.mark.parametrize(
    "combine",
    [
        lambda a, b: a + b,
        lambda a, b: a - b,
        lambda a, b: a < b,
        lambda a, b: a <= b,
        lambda a, b: a > b,
        lambda a, b: a >= b,
    ],
    ids=["add", "sub", "lt", "le", "gt", "ge"],
)
def test_combining_two_currencies_raises_currency_mismatch(combine) -> None:  # noqa: ANN001
    # given amounts in KRW and USD
    krw, usd = Money(1000, "KRW"), Money(1000, "USD")
    # when / then
    with pytest.raises(CurrencyMismatch) as caught:
        combine(krw, usd)
    assert caught.value.message == "currency mismatch: KRW and USD"
    assert caught.value.field == "currency"
    assert caught.value.code == "currency_mismatch"
    assert isinstance(caught.value, ValidationError)


def test_mismatch_message_names_left_then_right() -> None:
    with pytest.raises(CurrencyMismatch, match=r"^currency mismatch: CNY and KRW$"):
        Money(1, "CNY") + Money(1, "KRW")


def test_equal_amounts_in_different_currencies_are_not_equal() -> None:
    assert Money(5, "KRW") != Money(5, "JPY")


def test_combining_with_a_plain_number_is_a_type_error() -> None:
    with pytest.raises(TypeError, match=r"^cannot combine Money with int$"):
        Money(1, "USD") + 1  # type: ignore[operator]


@pytest.mark.parametrize(
    ("amount", "rate", "expected"),
    [
        (5, "0.5", 2),      # 2.5 -> 2 (half to even)
        (15, "0.5", 8),     # 7.5 -> 8
        (25, "0.1", 2),     # 2.5 -> 2
        (35, "0.1", 4),     # 3.5 -> 4
        (-25, "0.1", -2),   # -2.5 -> -2
        (1000, "0.0333", 33),  # 33.3 -> 33
        (1000, "0.0337", 34),  # 33.7 -> 34
        (1999, 2, 3998),
        (1000, Decimal("1.5"), 1500),
    ],
)
def test_scaled_rounds_half_to_even(amount: int, rate: object, expected: int) -> None:
    # given / when
    result = Money(amount, "KRW").scaled(rate)  # type: ignore[arg-type]
    # then
    assert result == Money(expected, "KRW")


# properties ------------------------------------------------------------------------------
amounts = st.integers(min_value=-(10**15), max_value=10**15)
currencies = st.sampled_from(["KRW", "CNY", "USD", "JPY", "KWD"])


@given(a=amounts, b=amounts, currency=currencies)
def test_add_then_subtract_roundtrips(a: int, b: int, currency: str) -> None:
    x, y = Money(a, currency), Money(b, currency)
    assert (x + y) - y == x
    assert (x - y) + y == x
    assert x + y == y + x


@given(a=amounts, b=amounts, currency=currencies)
def test_ordering_agrees_with_amounts(a: int, b: int, currency: str) -> None:
    x, y = Money(a, currency), Money(b, currency)
    assert (x < y) == (a < b)
    assert (x <= y) == (a <= b)
    assert (x > y) == (a > b)
    assert (x >= y) == (a >= b)
    assert (x == y) == (a == b)


@given(a=amounts, currency=currencies)
def test_format_then_parse_roundtrips(a: int, currency: str) -> None:
    money = Money(a, currency)
    assert Money.parse(str(money.to_decimal()), currency) == money
