"""`silkroute plan wave`: allocate a generated wave of orders under shared capacities."""

from __future__ import annotations

import json
import math
import sys
import time
from typing import Any

import typer
from rich.console import Console
from rich.table import Table


def run_wave(
    orders: int, *, seed: int = 1, country: str = "KR", carriers: int = 3000,
    locations: int = 1000, workers: int | None = None, scheduler: str | None = None,
    time_limit: float = 240.0, regions: int = 8, target_gap: float = 0.5,
    max_iterations: int = 3000, progress: Any = None,
) -> dict[str, Any]:
    """Generate the network and the wave, build the problem, solve it (in this process, on a
    LocalCluster of `workers`, or on the cluster at `scheduler`) and report."""
    from silkroute.routing.cost import CostModel
    from silkroute.routing.index import build_index
    from silkroute.routing.wave import build_wave, generate_wave
    from silkroute.routing.wave_solve import DaskRunner, LocalRunner, region_blocks, solve_wave
    from silkroute.sim.network import NetworkSpec, generate_network

    started = time.monotonic()
    net = generate_network(NetworkSpec(country=country, carriers=carriers, locations=locations,
                                       seed=seed))
    index = build_index(net)
    model = CostModel.for_currency(index.currency)
    wave = generate_wave(index, orders, seed)
    problem = build_wave(index, model, wave, regions=regions)
    build_seconds = time.monotonic() - started
    blocks = region_blocks(problem)
    cluster = client = None
    try:
        if workers is None and scheduler is None:
            runner: Any = LocalRunner(blocks)
        else:
            from dask.distributed import Client, LocalCluster

            if scheduler is not None:
                client = Client(scheduler)
            else:
                cluster = LocalCluster(n_workers=workers or 1, threads_per_worker=1,
                                       processes=True, dashboard_address=None)
                client = Client(cluster)
                client.wait_for_workers(workers or 1)
            runner = DaskRunner(client, blocks, token=f"wave-{seed}-{orders}")
        plan = solve_wave(problem, runner, time_limit=time_limit, target_gap=target_gap,
                          max_iterations=max_iterations, progress=progress)
    finally:
        if client is not None:
            client.close()
        if cluster is not None:
            cluster.close()
    return {
        "orders": problem.n,
        "carriers": len(problem.car_cap),
        "locations": len(problem.loc_cap),
        "regions": problem.regions,
        "cost": round(plan.cost, 2),
        "lower_bound": round(plan.lower_bound, 2),
        "gap_percent": round(plan.gap_percent, 4),
        "feasible": plan.feasible and plan.table is not None
        and plan.table.is_feasible(plan.choice),
        "columns_generated": 0 if plan.table is None else plan.table.width - problem.width,
        "over_capacity_share": round(float(problem.info["over_capacity_share"]), 4),
        "iterations": plan.iterations,
        "build_seconds": round(build_seconds, 2),
        "solve_seconds": round(plan.seconds, 2),
        "seconds": round(time.monotonic() - started, 2),
        "seed": seed,
        "workers": workers,
        "scheduler": scheduler,
        "bound_scope": "full option set (every option priced through the catalog)",
        "problem": problem.info,
    }


def wave_command(
    orders: int = typer.Option(100_000, "--orders", min=1, help="Orders in the wave."),
    workers: int | None = typer.Option(None, "--workers", min=1, help="Solve the regions on "
                                       "a Dask LocalCluster of this many workers."),
    scheduler: str | None = typer.Option(None, "--scheduler", help="Solve the regions on the "
                                         "Dask cluster at this scheduler address."),
    seed: int = typer.Option(1, "--seed", help="Network and wave seed."),
    country: str = typer.Option("KR", "--country"),
    carriers: int = typer.Option(3000, "--carriers", min=1),
    locations: int = typer.Option(1000, "--locations", min=1),
    time_limit: float = typer.Option(240.0, "--time-limit", min=1.0, help="Seconds for the "
                                     "solver (network and wave generation not included)."),
    target_gap: float = typer.Option(0.5, "--target-gap", min=0.0, help="Stop at this gap "
                                     "(percent)."),
    max_iterations: int = typer.Option(3000, "--max-iterations", min=1, help="Stop after "
                                       "this many evaluations of the smoothed dual."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Allocate a wave of generated orders to location × carrier options under carrier and
    location capacities; print cost, lower bound and gap."""
    if workers is not None and scheduler is not None:
        typer.echo("error: give --workers or --scheduler, not both", err=True)
        raise typer.Exit(2)
    err = Console(stderr=True)

    def progress(entry: dict[str, float]) -> None:
        if as_json:
            return
        if "sample" in entry:
            err.print(f"  sample of {int(entry['sample']):,} orders, round "
                      f"{int(entry['round'])} ({int(entry['iteration'])} evaluations, "
                      f"{entry['seconds']:.0f} s): {int(entry['columns_added']):,} columns "
                      "added")
        else:
            plan = (f"cost {entry['cost']:,.0f}, gap {entry['gap']:.3f}%"
                    if math.isfinite(entry["cost"]) else "no plan yet")
            err.print(f"  round {int(entry['round'])} ({int(entry['iteration'])} evaluations, "
                      f"{entry['seconds']:.0f} s): bound {entry['bound']:,.0f}, {plan}, "
                      f"{int(entry['columns_added']):,} columns added")

    report = run_wave(orders, seed=seed, country=country, carriers=carriers,
                      locations=locations, workers=workers, scheduler=scheduler,
                      time_limit=time_limit, target_gap=target_gap,
                      max_iterations=max_iterations, progress=progress)
    if as_json:
        sys.stdout.write(json.dumps(report) + "\n")
        return
    table = Table(title=f"wave plan: {report['orders']:,} orders, {report['carriers']:,} "
                  f"carriers, {report['locations']:,} locations")
    table.add_column("")
    table.add_column("value", justify="right")
    rows = [
        ("cost", f"{report['cost']:,.2f}"),
        ("lower bound", f"{report['lower_bound']:,.2f}"),
        ("gap %", f"{report['gap_percent']:.4f}"),
        ("feasible", str(report["feasible"])),
        ("over-capacity share (cheapest options)", f"{report['over_capacity_share']:.2%}"),
        ("evaluations of the smoothed dual", str(report["iterations"])),
        ("option columns generated", str(report["columns_generated"])),
        ("seconds (total / solve)", f"{report['seconds']:.1f} / {report['solve_seconds']:.1f}"),
    ]
    for name, value in rows:
        table.add_row(name, value)
    Console().print(table)


def register(app: typer.Typer, bench: typer.Typer) -> None:
    """Add the `plan` group (with `plan wave`) to the main app."""
    _ = bench
    plan_app = typer.Typer(help="Batch planning: waves of orders over carriers and locations.",
                           no_args_is_help=True)
    plan_app.command("wave")(wave_command)
    app.add_typer(plan_app, name="plan")
