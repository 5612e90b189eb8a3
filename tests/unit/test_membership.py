"""Membership rules: subscribe, renew once per period, lapse, status at a date."""

from __future__ import annotations

from datetime import date

import pytest

from silkroute.domain.errors import Conflict, ValidationError
from silkroute.domain.ledger import membership_fee
from silkroute.domain.membership import (
    MembershipStatus,
    lapse,
    monthly_fee,
    next_period,
    period_key,
    period_start,
    renew,
    subscribe,
)
from silkroute.domain.money import Money

FEE = Money(4_900, "KRW")


def test_period_keys() -> None:
    assert period_key(date(2026, 11, 30)) == "2026-11"
    assert next_period("2026-11") == "2026-12"
    assert next_period("2026-12") == "2027-01"
    assert period_start("2026-02") == date(2026, 2, 1)
    for bad in ("2026-13", "2026-1", "26-11", "2026/11", ""):
        with pytest.raises(ValidationError, match="is not a month like '2026-11'"):
            next_period(bad)


def test_monthly_fee_per_currency() -> None:
    assert monthly_fee("KRW") == Money(4_900, "KRW")
    assert monthly_fee("usd") == Money(499, "USD")
    with pytest.raises(ValidationError, match="currency: no membership fee in 'KWD'"):
        monthly_fee("KWD")


def test_subscribe_pays_the_current_period() -> None:
    renewal = subscribe(9, date(2026, 11, 15), FEE)
    assert renewal.charged and renewal.period == "2026-11" and renewal.fee == FEE
    m = renewal.membership
    assert m.status_at(date(2026, 11, 1)) is MembershipStatus.ACTIVE
    assert m.status_at(date(2026, 10, 31)) is MembershipStatus.NONE
    assert m.status_at(date(2026, 12, 1)) is MembershipStatus.LAPSED
    assert m.due_period(date(2026, 12, 1)) == "2026-12"
    assert m.due_period(date(2026, 11, 20)) is None
    # the fee is one ledger transaction keyed by the period
    assert membership_fee(9, renewal.period, renewal.fee).key == "membership:9:2026-11"


def test_renewal_is_idempotent_per_period() -> None:
    m = subscribe(9, date(2026, 11, 15), FEE).membership
    first = renew(m, "2026-12")
    second = renew(first.membership, "2026-12")
    assert first.charged and not second.charged
    assert second.membership == first.membership
    assert first.membership.paid_periods == frozenset({"2026-11", "2026-12"})
    assert first.membership.is_member_at(date(2026, 12, 31))
    assert first.membership.paid_through == "2026-12"


def test_subscribing_twice_is_a_conflict() -> None:
    m = subscribe(9, date(2026, 11, 15), FEE).membership
    with pytest.raises(Conflict) as err:
        subscribe(9, date(2026, 11, 20), FEE, existing=m)
    assert err.value.code == "already_member"
    assert err.value.message == "buyer 9 is already a member (paid through 2026-11)"


def test_lapse_keeps_benefits_to_end_of_paid_period_then_stops_renewal() -> None:
    m = renew(subscribe(9, date(2026, 11, 15), FEE).membership, "2026-12").membership
    lapsed = lapse(m, date(2026, 12, 3))
    assert lapse(lapsed, date(2026, 12, 4)) == lapsed  # idempotent
    assert lapsed.is_member_at(date(2026, 12, 31))
    assert lapsed.status_at(date(2027, 1, 1)) is MembershipStatus.LAPSED
    assert lapsed.due_period(date(2027, 1, 1)) is None
    with pytest.raises(Conflict) as err:
        renew(lapsed, "2027-01")
    assert err.value.code == "membership_lapsed"
    # renewing an already paid period stays a harmless no-op
    assert not renew(lapsed, "2026-12").charged


def test_resubscribe_after_lapse() -> None:
    m = lapse(subscribe(9, date(2026, 11, 15), FEE).membership, date(2026, 11, 16))
    again = subscribe(9, date(2027, 2, 2), FEE, existing=m)
    assert again.charged and again.period == "2027-02"
    assert again.membership.auto_renew and again.membership.lapsed_on is None
    assert again.membership.status_at(date(2027, 1, 15)) is MembershipStatus.LAPSED
    # resubscribing within an already paid period charges nothing
    same = subscribe(9, date(2026, 11, 20), FEE, existing=m)
    assert not same.charged and same.membership.auto_renew


def test_bad_renewals_are_refused() -> None:
    m = subscribe(9, date(2026, 11, 15), FEE).membership
    with pytest.raises(ValidationError, match="period: 2026-10 is before the membership started"):
        renew(m, "2026-10")
    with pytest.raises(ValidationError, match="membership belongs to buyer 9, not 10"):
        subscribe(10, date(2026, 12, 1), FEE, existing=m)
    with pytest.raises(ValidationError, match="monthly_fee must be positive"):
        subscribe(9, date(2026, 12, 1), Money(0, "KRW"))
