"""Money: integer amounts in a currency's minor unit with an ISO 4217 code."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from silkroute.domain.errors import ValidationError

# ISO 4217 minor-unit exponents for the currencies the platform settles in.
MINOR_UNITS: dict[str, int] = {
    "KRW": 0,
    "JPY": 0,
    "CNY": 2,
    "USD": 2,
    "EUR": 2,
    "GBP": 2,
    "HKD": 2,
    "SGD": 2,
    "TWD": 2,
    "KWD": 3,
}
SYMBOLS: dict[str, str] = {
    "KRW": "₩", "JPY": "¥", "CNY": "CN¥", "USD": "$", "EUR": "€", "GBP": "£",
}


class CurrencyMismatch(ValidationError):
    """Two amounts in different currencies were combined or compared."""

    code = "currency_mismatch"


def check_currency(code: str, field: str = "currency") -> str:
    """Return the upper-case ISO code, or raise naming the field when it is unknown."""
    if not isinstance(code, str) or code.upper() not in MINOR_UNITS:
        raise ValidationError(
            f"{field}: unknown currency {code!r} (known: {', '.join(sorted(MINOR_UNITS))})",
            field=field,
        )
    return code.upper()


@dataclass(frozen=True, slots=True, order=False)
class Money:
    """An exact amount: `amount` in minor units (e.g. cents) of `currency`."""

    amount: int
    currency: str

    def __post_init__(self) -> None:
        if isinstance(self.amount, bool) or not isinstance(self.amount, int):
            raise ValidationError(
                f"amount must be an integer of minor units, got {self.amount!r}", field="amount"
            )
        object.__setattr__(self, "currency", check_currency(self.currency))

    # construction -------------------------------------------------------------------
    @classmethod
    def zero(cls, currency: str) -> Money:
        return cls(0, currency)

    @classmethod
    def parse(cls, text: str, currency: str, field: str = "price") -> Money:
        """Parse a human decimal amount ("12.50") into minor units; refuse sub-unit digits."""
        cur = check_currency(currency)
        try:
            value = Decimal(str(text).strip())
        except Exception as exc:  # decimal.InvalidOperation and friends
            raise ValidationError(f"{field}: {text!r} is not a number", field=field) from exc
        if not value.is_finite():
            raise ValidationError(f"{field}: {text!r} is not a finite number", field=field)
        scaled = value.scaleb(MINOR_UNITS[cur])
        if scaled != scaled.to_integral_value():
            raise ValidationError(
                f"{field}: {text!r} has more decimals than {cur} allows ({MINOR_UNITS[cur]})",
                field=field,
            )
        return cls(int(scaled), cur)

    # arithmetic ---------------------------------------------------------------------
    def _same(self, other: Any) -> Money:
        if not isinstance(other, Money):
            raise TypeError(f"cannot combine Money with {type(other).__name__}")
        if other.currency != self.currency:
            raise CurrencyMismatch(
                f"currency mismatch: {self.currency} and {other.currency}", field="currency"
            )
        return other

    def __add__(self, other: Money) -> Money:
        return Money(self.amount + self._same(other).amount, self.currency)

    def __sub__(self, other: Money) -> Money:
        return Money(self.amount - self._same(other).amount, self.currency)

    def __neg__(self) -> Money:
        return Money(-self.amount, self.currency)

    def __mul__(self, factor: int) -> Money:
        if isinstance(factor, bool) or not isinstance(factor, int):
            raise TypeError("Money can only be multiplied by an integer; use .scaled()")
        return Money(self.amount * factor, self.currency)

    __rmul__ = __mul__

    def scaled(self, rate: Decimal | str | int) -> Money:
        """Multiply by a decimal rate, rounding half to even to the minor unit."""
        value = (Decimal(self.amount) * Decimal(str(rate))).quantize(
            Decimal(1), rounding=ROUND_HALF_EVEN
        )
        return Money(int(value), self.currency)

    def __lt__(self, other: Money) -> bool:
        return self.amount < self._same(other).amount

    def __le__(self, other: Money) -> bool:
        return self.amount <= self._same(other).amount

    def __gt__(self, other: Money) -> bool:
        return self.amount > self._same(other).amount

    def __ge__(self, other: Money) -> bool:
        return self.amount >= self._same(other).amount

    def __bool__(self) -> bool:
        return self.amount != 0

    # presentation -------------------------------------------------------------------
    @property
    def exponent(self) -> int:
        return MINOR_UNITS[self.currency]

    def to_decimal(self) -> Decimal:
        return Decimal(self.amount).scaleb(-self.exponent)

    def format(self) -> str:
        """Human form: "₩12,000", "$1,234.50", "-CN¥3.00"."""
        sign = "-" if self.amount < 0 else ""
        value = abs(self.to_decimal())
        body = f"{value:,.{self.exponent}f}"
        symbol = SYMBOLS.get(self.currency)
        return f"{sign}{symbol}{body}" if symbol else f"{sign}{body} {self.currency}"

    def __str__(self) -> str:
        return self.format()
