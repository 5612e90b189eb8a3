"""Membership rules: the fast-free-shipping club's subscribe, monthly renew, lapse, status."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import date
from enum import StrEnum

from silkroute.domain.errors import Conflict, ValidationError
from silkroute.domain.money import Money

#: Monthly fee per settlement currency, in minor units (₩4,900, $4.99, ...).
DEFAULT_MONTHLY_FEES: dict[str, Money] = {
    "KRW": Money(4900, "KRW"),
    "JPY": Money(500, "JPY"),
    "CNY": Money(1500, "CNY"),
    "USD": Money(499, "USD"),
    "EUR": Money(499, "EUR"),
    "GBP": Money(399, "GBP"),
}

_PERIOD = re.compile(r"^(\d{4})-(\d{2})$")


class MembershipStatus(StrEnum):
    NONE = "none"  # never subscribed (or not yet started at that date)
    ACTIVE = "active"  # the period containing the date is paid
    LAPSED = "lapsed"  # was a member, the period containing the date is not paid


def monthly_fee(currency: str) -> Money:
    """The club's monthly fee in `currency`."""
    fee = DEFAULT_MONTHLY_FEES.get(currency.upper() if isinstance(currency, str) else "")
    if fee is None:
        raise ValidationError(
            f"currency: no membership fee in {currency!r} "
            f"(offered in: {', '.join(sorted(DEFAULT_MONTHLY_FEES))})",
            field="currency",
        )
    return fee


def period_key(day: date) -> str:
    """The billing period containing `day`: ``2026-11``."""
    return f"{day.year:04d}-{day.month:02d}"


def parse_period(key: str) -> tuple[int, int]:
    """(year, month) of a period key; refuse anything but ``YYYY-MM``."""
    match = _PERIOD.match(key) if isinstance(key, str) else None
    if match is None or not 1 <= int(match.group(2)) <= 12 or int(match.group(1)) < 1:
        raise ValidationError(f"period: {key!r} is not a month like '2026-11'", field="period")
    return int(match.group(1)), int(match.group(2))


def period_start(key: str) -> date:
    year, month = parse_period(key)
    return date(year, month, 1)


def next_period(key: str) -> str:
    year, month = parse_period(key)
    return f"{year + month // 12:04d}-{month % 12 + 1:02d}"


@dataclass(frozen=True, slots=True)
class Membership:
    """A buyer's club membership: which periods are paid and whether it renews."""

    buyer_id: int
    monthly_fee: Money
    started_on: date
    paid_periods: frozenset[str] = field(default_factory=frozenset)
    auto_renew: bool = True
    lapsed_on: date | None = None

    def __post_init__(self) -> None:
        if self.monthly_fee.amount <= 0:
            raise ValidationError(
                f"monthly_fee must be positive, got {self.monthly_fee.format()}",
                field="monthly_fee",
            )
        object.__setattr__(self, "paid_periods", frozenset(self.paid_periods))
        for key in self.paid_periods:
            parse_period(key)

    def status_at(self, day: date) -> MembershipStatus:
        if period_key(day) in self.paid_periods:
            return MembershipStatus.ACTIVE
        if day < self.started_on:
            return MembershipStatus.NONE
        return MembershipStatus.LAPSED

    def is_member_at(self, day: date) -> bool:
        """Members get free shipping and the member service level."""
        return self.status_at(day) is MembershipStatus.ACTIVE

    @property
    def paid_through(self) -> str | None:
        """The latest paid period, if any."""
        return max(self.paid_periods) if self.paid_periods else None

    def due_period(self, today: date) -> str | None:
        """The period to charge for on `today`: the current one if renewing and unpaid."""
        key = period_key(today)
        if not self.auto_renew or key in self.paid_periods:
            return None
        return key


@dataclass(frozen=True, slots=True)
class Renewal:
    """Outcome of subscribe/renew: `charged` False means the period was already paid,
    so no fee transaction is due (renewal is idempotent per period)."""

    membership: Membership
    period: str
    fee: Money
    charged: bool


def subscribe(
    buyer_id: int, today: date, fee: Money, existing: Membership | None = None
) -> Renewal:
    """Join (or rejoin after a lapse); pays the period containing `today`."""
    if existing is not None:
        if existing.buyer_id != buyer_id:
            raise ValidationError(
                f"membership belongs to buyer {existing.buyer_id}, not {buyer_id}",
                field="buyer_id",
            )
        if existing.auto_renew and existing.is_member_at(today):
            raise Conflict(
                f"buyer {buyer_id} is already a member (paid through {existing.paid_through})",
                field="buyer_id",
                code="already_member",
            )
        membership = replace(existing, monthly_fee=fee, auto_renew=True, lapsed_on=None)
    else:
        membership = Membership(buyer_id=buyer_id, monthly_fee=fee, started_on=today)
    return renew(membership, period_key(today))


def renew(membership: Membership, period: str) -> Renewal:
    """Pay `period` once: a second call for the same period charges nothing."""
    parse_period(period)
    if period in membership.paid_periods:
        return Renewal(membership, period, membership.monthly_fee, charged=False)
    if not membership.auto_renew:
        raise Conflict(
            f"membership of buyer {membership.buyer_id} lapsed on {membership.lapsed_on}; "
            "subscribe again",
            field="period",
            code="membership_lapsed",
        )
    if period < period_key(membership.started_on):
        raise ValidationError(
            f"period: {period} is before the membership started "
            f"({period_key(membership.started_on)})",
            field="period",
        )
    renewed = replace(membership, paid_periods=membership.paid_periods | {period})
    return Renewal(renewed, period, membership.monthly_fee, charged=True)


def lapse(membership: Membership, today: date) -> Membership:
    """Stop renewing (cancelled, or the renewal payment failed). Benefits last to the end of
    the periods already paid; a lapsed membership is idempotently lapsed again."""
    if not membership.auto_renew:
        return membership
    return replace(membership, auto_renew=False, lapsed_on=today)
