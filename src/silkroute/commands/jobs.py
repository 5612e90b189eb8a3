"""`silkroute jobs run`: reservation expiry, uncollected pickups, auto-confirm, payouts."""

from __future__ import annotations

from typing import Annotated

import typer

from silkroute.cli import DbOpt, JsonOpt, out, print_json, uow_for, user_errors

jobs_app = typer.Typer(help="Periodic jobs (also run inside `silkroute serve`).",
                       no_args_is_help=True)


@jobs_app.command("run")
@user_errors
def jobs_run(
    only: Annotated[list[str] | None, typer.Option(
        "--only", help="Run only this job (repeatable): reservations, pickups, settle, "
                       "auto_confirm, payouts.")] = None,
    auto_confirm_days: Annotated[int | None, typer.Option(
        min=0, help="Confirm orders delivered this many days ago "
                    "(default $SILKROUTE_AUTO_CONFIRM_DAYS or 10).")] = None,
    reservation_minutes: Annotated[int | None, typer.Option(
        min=0, help="Cancel orders unpaid for this many minutes "
                    "(default $SILKROUTE_RESERVATION_MINUTES or 30).")] = None,
    pickup_days: Annotated[int | None, typer.Option(
        min=0, help="Return and refund pickups not collected in this many days "
                    "(default $SILKROUTE_PICKUP_DAYS or 7).")] = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Run every periodic job once; each is safe to run again at any time."""
    from dataclasses import replace

    from silkroute.services.jobs import JobSettings, run_jobs
    from silkroute.store.uow import UnitOfWork

    first = uow_for(db)  # checks the schema is current
    engine = first.engine
    settings = JobSettings.from_env()
    for name, value in (("auto_confirm_days", auto_confirm_days),
                        ("reservation_minutes", reservation_minutes),
                        ("pickup_days", pickup_days)):
        if value is not None:
            settings = replace(settings, **{name: value})
    report = run_jobs(lambda: UnitOfWork(engine), settings,
                      only=tuple(only) if only else None)
    if as_json:
        print_json(report.as_dict())
        return
    out.print(f"reservations expired: {len(report.reservations_expired)}; pickups expired: "
              f"{len(report.pickups_expired)}; refunds settled: "
              f"{len(report.refunds_settled)}; auto-confirmed: {len(report.auto_confirmed)}; "
              f"payouts: {report.payouts}"
              + (f" (batch {report.payout_batch_id})" if report.payout_batch_id else ""))


def register(app: typer.Typer, bench: typer.Typer) -> None:
    app.add_typer(jobs_app, name="jobs")
