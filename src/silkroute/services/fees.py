"""The platform's fees and commission rates: read them all, set a category's commission."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from silkroute.domain import ledger, membership
from silkroute.domain.errors import ValidationError
from silkroute.services import payments
from silkroute.services.jobs import JobSettings
from silkroute.store.uow import UnitOfWork

RATE_PLACES = 4  # commission_rates.rate is NUMERIC(6, 4)
MAX_CATEGORY = 100  # the length of products.category and commission_rates.category


def check_category(category: str) -> str:
    if not category.strip() or len(category) > MAX_CATEGORY or category != category.strip():
        raise ValidationError(f"category: 1 to {MAX_CATEGORY} characters without surrounding "
                              f"spaces, got {category!r}", field="category")
    return category


def check_commission_rate(rate: Decimal | str, field_name: str = "rate") -> Decimal:
    """A rate in [0, 1] with at most four decimal places (what the database keeps)."""
    value = ledger.check_rate(rate, field_name)
    exponent = value.normalize().as_tuple().exponent
    if isinstance(exponent, int) and -exponent > RATE_PLACES:
        raise ValidationError(f"{field_name}: {rate} has more than {RATE_PLACES} decimal "
                              "places", field=field_name)
    return value


def commission_rates(uow: UnitOfWork) -> dict[str, Any]:
    """The default rate and the rate set per category (categories not listed pay the
    default)."""
    with uow:
        rates = uow.repos.money.commission_rates()
    return {"default": ledger.DEFAULT_COMMISSION_RATE,
            "by_category": {str(k): Decimal(str(v)) for k, v in sorted(rates.items())}}


def set_commission_rate(uow: UnitOfWork, category: str, rate: Decimal | str) -> Decimal:
    """Set the commission on a category's goods; every later release of escrow uses it."""
    value = check_commission_rate(rate)
    payments.set_commission_rate(uow, check_category(category), value)
    return value


def fee_settings() -> dict[str, Any]:
    """Every fee and money-related setting the platform runs with (none stored per seller)."""
    jobs = JobSettings.from_env()
    return {
        "default_commission_rate": ledger.DEFAULT_COMMISSION_RATE,
        "membership_monthly_fees": {cur: fee.amount for cur, fee in
                                    sorted(membership.DEFAULT_MONTHLY_FEES.items())},
        "auto_confirm_days": jobs.auto_confirm_days,
        "reservation_minutes": jobs.reservation_minutes,
        "pickup_days": jobs.pickup_days,
    }


def rate_text(rate: Decimal) -> str:
    """A rate as the API shows it: "0.05", "0.125", "1", "0" (no exponent, no padding)."""
    return format(Decimal(rate).normalize(), "f")
