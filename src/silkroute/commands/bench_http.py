"""`silkroute bench http`: buy-now over real HTTP against a `silkroute serve` process."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from silkroute.api.tuning import DEFAULT_GROUP
from silkroute.cli import DbOpt, JsonOpt, print_per_backend, user_errors


@user_errors
def bench_http(
    db: DbOpt = None,
    clients: Annotated[int, typer.Option(help="Concurrent HTTP clients (threads), each a "
                                         "buyer of its own.", min=1, max=256)] = 32,
    seconds: Annotated[float, typer.Option(help="Measured seconds per backend (after a "
                                           "1 s warm-up).", min=0.5, max=600)] = 10.0,
    workers: Annotated[int, typer.Option(help="Server worker processes.", min=1,
                                         max=16)] = 2,
    buy_now_group: Annotated[int, typer.Option(help="The server's --buy-now-group: "
                                               "buy-nows a worker runs together at most "
                                               "(PostgreSQL); 0 runs each alone.", min=0,
                                               max=1024)] = DEFAULT_GROUP,
    as_json: JsonOpt = False,
) -> None:
    """Paid buy-now orders/s and p50/p99 latency over loopback HTTP, client included.

    Without --db: a temporary SQLite file and (when reachable) a temporary PostgreSQL
    database on $SILKROUTE_TEST_POSTGRES_URL's server. It reports; it never fails on timing.
    """
    from silkroute.bench.http import run_http_bench

    def line(r: dict[str, Any]) -> str:
        errors = ", ".join(f"{k}: {v}" for k, v in sorted(r["errors"].items())) or "none"
        return (f"{r['paid_per_s']} paid orders/s ({r['paid_orders']} in {r['seconds']} s), "
                f"p50 {r['p50_ms']} ms, p99 {r['p99_ms']} ms; {r['clients']} clients, "
                f"{r['workers']} server workers, {r['skus']} SKUs, buy-now groups of at most "
                f"{r['buy_now_group']}; errors: {errors}; CPU ms per paid order: "
                + (", ".join(f"{k} {v}" for k, v in r["cpu_ms_per_order"].items())
                   or "not measured"))

    print_per_backend(run_http_bench(db, clients, seconds, workers, buy_now_group), as_json,
                      line)


def register(app: typer.Typer, bench: typer.Typer) -> None:
    bench.command("http")(bench_http)
