"""`silkroute bench http`: buy-now over real HTTP against a `silkroute serve` process."""

from __future__ import annotations

from typing import Annotated

import typer

from silkroute.cli import DbOpt, JsonOpt, out, print_json, user_errors


@user_errors
def bench_http(
    db: DbOpt = None,
    clients: Annotated[int, typer.Option(help="Concurrent HTTP clients (threads), each a "
                                         "buyer of its own.", min=1, max=256)] = 32,
    seconds: Annotated[float, typer.Option(help="Measured seconds per backend (after a "
                                           "1 s warm-up).", min=0.5, max=600)] = 10.0,
    workers: Annotated[int, typer.Option(help="Server worker processes.", min=1,
                                         max=16)] = 2,
    as_json: JsonOpt = False,
) -> None:
    """Paid buy-now orders/s and p50/p99 latency over loopback HTTP, client included.

    Without --db: a temporary SQLite file and (when reachable) a temporary PostgreSQL
    database on $SILKROUTE_TEST_POSTGRES_URL's server. It reports; it never fails on timing.
    """
    from silkroute.bench.http import run_http_bench

    results = run_http_bench(db, clients, seconds, workers)
    if as_json:
        print_json(results)
        return
    for name, r in results.items():
        if "skipped" in r:
            out.print(f"{name}: skipped ({r['skipped']})", markup=False)
            continue
        errors = ", ".join(f"{k}: {v}" for k, v in sorted(r["errors"].items())) or "none"
        out.print(f"{name}: {r['paid_per_s']} paid orders/s ({r['paid_orders']} in "
                  f"{r['seconds']} s), p50 {r['p50_ms']} ms, p99 {r['p99_ms']} ms; "
                  f"{r['clients']} clients, {r['workers']} server workers, {r['skus']} SKUs; "
                  f"errors: {errors}", markup=False, soft_wrap=True)


def register(app: typer.Typer, bench: typer.Typer) -> None:
    bench.command("http")(bench_http)
