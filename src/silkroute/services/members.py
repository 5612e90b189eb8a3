"""The buyer's membership of the club over the API: status, subscribe, lapse.

Thin views over `services.payments`' membership flows (what `silkroute member ...` runs)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime
from typing import Any

from silkroute.domain import membership
from silkroute.services import payments
from silkroute.services.payments import _load_membership
from silkroute.store.uow import UnitOfWork

UowFactory = Callable[[], UnitOfWork]


@dataclass(frozen=True)
class MembershipView:
    buyer_id: int
    status: str  # none | active | lapsed, this month
    member: bool  # has the member benefits this month
    period: str  # this month, e.g. 2026-11
    paid_through: str | None  # the latest paid month
    auto_renew: bool
    monthly_fee: int | None  # minor units; None before the first subscription
    currency: str | None
    charged: int = 0  # what this call charged (a subscription pays this month's fee)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _today(today: date | None) -> date:
    return today or datetime.now(UTC).date()


def _from_result(res: payments.MembershipResult, day: date, auto_renew: bool
                 ) -> MembershipView:
    return MembershipView(res.buyer_id, res.status, res.status == "active",
                          membership.period_key(day), res.paid_through, auto_renew, res.fee,
                          res.currency, res.fee if res.charged else 0)


def status(uow: UnitOfWork, buyer_id: int, *, today: date | None = None) -> MembershipView:
    day = _today(today)
    with uow:
        current = _load_membership(uow, buyer_id)
    if current is None:
        return MembershipView(buyer_id, membership.MembershipStatus.NONE.value, False,
                              membership.period_key(day), None, False, None, None)
    state = current.status_at(day)
    return MembershipView(buyer_id, state.value, current.is_member_at(day),
                          membership.period_key(day), current.paid_through, current.auto_renew,
                          current.monthly_fee.amount, current.monthly_fee.currency)


def subscribe(uows: UowFactory, buyer_id: int, currency: str | None = None, *,
              today: date | None = None) -> MembershipView:
    """Join (or rejoin): pays this month's fee with the default card, in `currency` (default:
    the default card's currency, else KRW)."""
    day = _today(today)
    if currency is None:
        with uows() as uow:
            card = uow.repos.money.default_payment_method(buyer_id)
        currency = card.currency if card is not None else "KRW"
    res = payments.subscribe(uows(), buyer_id, currency=currency.upper(), today=day)
    return _from_result(res, day, True)


def lapse(uow: UnitOfWork, buyer_id: int, *, today: date | None = None) -> MembershipView:
    """Stop renewing; the benefits last to the end of the months already paid."""
    day = _today(today)
    return _from_result(payments.lapse(uow, buyer_id, today=day), day, False)
