"""Periodic jobs: reservation expiry, uncollected pickups, settling, auto-confirm, payouts."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from silkroute.domain import ledger
from silkroute.domain.errors import DomainError, ValidationError
from silkroute.services import delivery, payments
from silkroute.services.checkout import cancel
from silkroute.store.delivery_repo import DeliveryRepo
from silkroute.store.uow import UnitOfWork

UowFactory = Callable[[], UnitOfWork]
JOBS = ("reservations", "pickups", "settle", "auto_confirm", "payouts")


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    if not raw.strip().isdigit():
        raise ValidationError(f"${name} must be a non-negative integer, got {raw!r}",
                              field=name)
    return int(raw)


@dataclass(frozen=True)
class JobSettings:
    auto_confirm_days: int = payments.DEFAULT_AUTO_CONFIRM_DAYS
    reservation_minutes: int = 30
    pickup_days: int = 7

    @classmethod
    def from_env(cls) -> JobSettings:
        """$SILKROUTE_AUTO_CONFIRM_DAYS, $SILKROUTE_RESERVATION_MINUTES, $SILKROUTE_PICKUP_DAYS."""
        return cls(_env_int("SILKROUTE_AUTO_CONFIRM_DAYS", payments.DEFAULT_AUTO_CONFIRM_DAYS),
                   _env_int("SILKROUTE_RESERVATION_MINUTES", 30),
                   _env_int("SILKROUTE_PICKUP_DAYS", 7))


@dataclass
class JobReport:
    reservations_expired: list[int] = field(default_factory=list)
    pickups_expired: list[int] = field(default_factory=list)
    refunds_settled: list[int] = field(default_factory=list)
    auto_confirmed: list[int] = field(default_factory=list)
    payout_batch_id: int | None = None
    payouts: int = 0
    paid_out: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def expire_reservations(uows: UowFactory, minutes: int, *, now: datetime | None = None
                        ) -> list[int]:
    """Cancel orders reserved but unpaid for `minutes` minutes; their units come back."""
    cutoff = (now or datetime.now(UTC)) - timedelta(minutes=minutes)
    with uows() as uow:
        due = DeliveryRepo(uow.conn).unpaid_before(cutoff)
    done = []
    for order_id in due:
        try:
            cancel(uows(), order_id)
        except DomainError:
            continue  # paid or cancelled meanwhile
        done.append(order_id)
    return done


def _payouts_due(uows: UowFactory) -> bool:
    with uows() as uow:
        kinds = [k.value for k in ledger.PAYABLE_KINDS]
        return any(v > 0 for v in uow.repos.ledger.balances(kinds).values())


def run_jobs(uows: UowFactory, settings: JobSettings | None = None, *,
             only: tuple[str, ...] | None = None, now: datetime | None = None) -> JobReport:
    """Run the jobs (all, or `only` these, in JOBS order) once; each is safe to repeat."""
    cfg = settings or JobSettings()
    chosen = set(only or JOBS)
    unknown = chosen - set(JOBS)
    if unknown:
        raise ValidationError(f"only: unknown job(s) {', '.join(sorted(unknown))}; known: "
                              f"{', '.join(JOBS)}", field="only")
    report = JobReport()
    if "reservations" in chosen:
        report.reservations_expired = expire_reservations(uows, cfg.reservation_minutes,
                                                          now=now)
    if "pickups" in chosen:
        report.pickups_expired = delivery.expire_pickups(uows, cfg.pickup_days, now=now)
    if "settle" in chosen:
        report.refunds_settled = delivery.settle(uows)
    if "auto_confirm" in chosen:
        report.auto_confirmed = payments.auto_confirm(uows(), days=cfg.auto_confirm_days,
                                                      now=now)
    if "payouts" in chosen and _payouts_due(uows):
        run = payments.run_payouts(uows())
        report.payout_batch_id = run.batch_id
        report.payouts = len(run.payouts)
        report.paid_out = run.total_by_currency
    return report
