"""`silkroute network generate|import` and `silkroute bench route` on the command line."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from silkroute.domain.errors import ValidationError


def _save(net: Any, db: str | None) -> dict[str, Any]:
    """Write the network to the database at `db` (else $SILKROUTE_DATABASE_URL), all or
    nothing; raises ValidationError when the database is not usable."""
    from sqlalchemy.exc import ArgumentError

    from silkroute.store.network_repo import save_network

    try:
        return {"saved": True, **save_network(net, db)}
    except ArgumentError as exc:
        raise ValidationError(f"db: {exc}", field="db") from None


def _summary(net: Any, seconds: float) -> dict[str, Any]:
    return {"country": net.country, "currency": net.currency, "zones": len(net.zones),
            "locations": len(net.locations), "carriers": len(net.carriers),
            "skus": len(net.skus), "stock_positions": len(net.stock),
            "seconds": round(seconds, 3)}


def generate_command(
    country: str = typer.Option("KR", "--country", help="ISO country code of the cities."),
    carriers: int = typer.Option(3000, "--carriers", min=1, help="Number of carriers."),
    locations: int = typer.Option(1000, "--locations", min=1, help="Number of locations."),
    seed: int = typer.Option(1, "--seed", help="Same seed, same network."),
    out: Path | None = typer.Option(None, "--out", help="Also write the CSV files here."),
    db: str | None = typer.Option(None, "--db", help="Database URL (default: configured)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Generate a reproducible network from GeoNames cities and save it."""
    from silkroute.sim.network import NetworkSpec, generate_network
    from silkroute.sim.network_csv import write_network

    t0 = time.perf_counter()
    try:
        net = generate_network(NetworkSpec(country, carriers, locations, seed))
    except ValidationError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(2) from exc
    result = _summary(net, time.perf_counter() - t0)
    if out is not None:
        write_network(net, out)
        result["csv_dir"] = str(out)
    try:
        result.update(_save(net, db))
    except ValidationError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(2) from exc
    if as_json:
        typer.echo(json.dumps(result))
        return
    Console().print(f"[bold]network[/] {result['country']}: {result['zones']} zones, "
                    f"{result['locations']} locations, {result['carriers']} carriers, "
                    f"{result['skus']} SKUs ({result['seconds']} s)"
                    + (" — saved to the database" if result.get("saved") else ""))


def import_command(
    directory: Path = typer.Argument(..., help="Directory with the network CSV files."),
    db: str | None = typer.Option(None, "--db", help="Database URL (default: configured)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Import a network from CSV files (docs/network-format.md); all or nothing."""
    from silkroute.routing.index import build_index
    from silkroute.sim.network_csv import read_network

    t0 = time.perf_counter()
    try:
        net = read_network(directory)
        build_index(net)  # dangling references refuse the import too
        result = _summary(net, time.perf_counter() - t0)
        result.update(_save(net, db))  # one transaction: all or nothing
    except ValidationError as exc:
        if as_json:
            typer.echo(json.dumps({"error": exc.code, "message": exc.message}))
        else:
            typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(2) from exc
    if as_json:
        typer.echo(json.dumps(result))
        return
    Console().print(f"imported {result['zones']} zones, {result['locations']} locations, "
                    f"{result['carriers']} carriers from {directory}")


def route_bench_command(
    country: str = typer.Option("KR", "--country"),
    carriers: int = typer.Option(3000, "--carriers", min=1),
    locations: int = typer.Option(1000, "--locations", min=1),
    orders: int = typer.Option(100_000, "--orders", min=1),
    seed: int = typer.Option(1, "--seed"),
    policy: list[str] = typer.Option([], "--policy", help="Only these policies (repeatable)."),
    priced: bool = typer.Option(True, "--priced/--no-priced",
                                help="Add silkroute-priced (prices from a forecast LP)."),
    hindsight: bool = typer.Option(True, "--hindsight/--no-hindsight",
                                   help="Add the hindsight plan and gap_captured (slow: an LP "
                                        "over the whole day)."),
    as_json: bool = typer.Option(False, "--json", help="Print exactly one JSON object."),
) -> None:
    """Replay one generated day through every routing policy from the same starting state."""
    from silkroute.bench.route import RouteBenchSpec, run_route_bench
    from silkroute.routing.baselines import ROUTERS

    unknown = [p for p in policy if p not in ROUTERS]
    if unknown:
        typer.echo(f"error: policy: unknown {', '.join(unknown)} "
                   f"(known: {', '.join(ROUTERS)})", err=True)
        raise typer.Exit(2)
    spec = RouteBenchSpec(country, carriers, locations, orders, seed,
                          tuple(policy) if policy else tuple(ROUTERS), priced=priced,
                          hindsight=hindsight)
    try:
        if as_json:
            result = run_route_bench(spec)
        else:
            from rich.progress import Progress

            with Progress(console=Console(stderr=True)) as bar:
                tasks: dict[str, Any] = {}

                def tick(name: str, done: int, total: int) -> None:
                    if name not in tasks:
                        tasks[name] = bar.add_task(name, total=total)
                    bar.update(tasks[name], completed=done)

                result = run_route_bench(spec, tick)
    except ValidationError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(2) from exc
    if as_json:
        sys.stdout.write(json.dumps(result) + "\n")
        return
    table = Table(title=f"bench route: {result['orders']} orders, {result['carriers']} "
                        f"carriers, {result['locations']} locations (index "
                        f"{result['index']['build_seconds']} s, {result['index']['rss_mb']} MB)")
    cols = ("cost_per_order", "on_time_rate", "split_rate", "unfulfilled_rate", "p50_us",
            "p99_us", "decisions_per_s", "top10_carrier_share")
    labels = ("cost/order", "on-time", "split", "unfulfilled", "p50 µs", "p99 µs", "dec/s",
              "top-10")
    table.add_column("policy", no_wrap=True)
    for label in labels:
        table.add_column(label, justify="right")
    for name, row in result["policies"].items():
        table.add_row(name, *(str(row[c]) for c in cols))
    Console().print(table)


def register(app: typer.Typer, bench: typer.Typer) -> None:
    """Add `network generate|import` to `app` and `route` to `bench`."""
    network = typer.Typer(help="The logistics network: zones, locations, carriers.",
                          no_args_is_help=True)
    network.command("generate")(generate_command)
    network.command("import")(import_command)
    app.add_typer(network, name="network")
    bench.command("route")(route_bench_command)
