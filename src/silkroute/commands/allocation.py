"""`silkroute solve` and `silkroute bench gap`: the batch allocator from the command line."""

from __future__ import annotations

import json
import math
import sys
from enum import StrEnum
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table


class ProblemFormat(StrEnum):
    """Problem file formats `silkroute solve` reads."""

    orlib = "orlib"
    json = "json"


def _fmt(x: float | None, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "—"
    return f"{x:.{digits}f}" if isinstance(x, float) else str(x)


_PORTFOLIO: Any = typer.Option(
    None, "--portfolio/--no-portfolio",
    help="Also run the plain MIP (SciPy's HiGHS) in a child process and keep the better "
         "answer; by default on with two cores or more and a time limit of 2 s or more.")


def solve_command(
    file: Path = typer.Argument(..., help="Problem file (OR-Library GAP or silkroute JSON)."),
    format: ProblemFormat | None = typer.Option(
        None, "--format", help="File format; guessed from the content when omitted."
    ),
    time_limit: float = typer.Option(10.0, "--time-limit", min=0.1, help="Seconds."),
    seed: int = typer.Option(0, "--seed", help="Random seed (same seed, same search)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
    portfolio: bool | None = _PORTFOLIO,
) -> None:
    """Solve a generalised assignment problem: objective, lower bound, gap and seconds."""
    from silkroute.routing.batch import solve
    from silkroute.routing.gap import ProblemFormatError, read_problem

    try:
        problem = read_problem(file, format.value if format is not None else None)
    except ProblemFormatError as exc:
        typer.echo(f"error: {file}: {exc.message}", err=True)
        raise typer.Exit(2) from None
    except OSError as exc:
        typer.echo(f"error: {file}: {exc.strerror or exc}", err=True)
        raise typer.Exit(2) from None
    result = solve(problem, time_limit=time_limit, seed=seed, portfolio=portfolio)
    if as_json:
        out = result.to_json()
        typer.echo(json.dumps(out))
    else:
        table = Table(title=f"{file.name}: {problem.agents} agents × {problem.jobs} jobs")
        table.add_column("status")
        table.add_column("objective", justify="right")
        table.add_column("lower bound", justify="right")
        table.add_column("gap %", justify="right")
        table.add_column("seconds", justify="right")
        table.add_row(result.status, _fmt(result.objective), _fmt(result.lower_bound, 2),
                      _fmt(result.gap, 4), _fmt(result.seconds, 2))
        Console().print(table)
        if result.reason:
            Console().print(f"[yellow]{result.reason}[/yellow]")


def bench_gap_command(
    dir: Path = typer.Argument(..., help="Folder laid out like shared/data/gap (with data.csv)."),
    time_limit: float = typer.Option(10.0, "--time-limit", min=0.1, help="Seconds per solver "
                                     "per instance."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
    workers: int | None = typer.Option(None, "--workers", min=1, help="Run on a Dask "
                                       "LocalCluster of this many workers."),
    scheduler: str | None = typer.Option(None, "--scheduler", help="Run on the Dask cluster "
                                         "at this scheduler address."),
    set_names: list[str] | None = typer.Option(None, "--set", help="Only instances whose path "
                                               "starts with this (repeatable)."),
    min_jobs: int | None = typer.Option(None, "--min-jobs", help="Only instances with at "
                                        "least this many jobs."),
    max_jobs: int | None = typer.Option(None, "--max-jobs", help="Only instances with at "
                                        "most this many jobs."),
    seed: int = typer.Option(0, "--seed"),
    portfolio: bool | None = _PORTFOLIO,
) -> None:
    """Benchmark the batch allocator against SciPy's HiGHS MIP at the same time limit."""
    from silkroute.bench.gap import run_gap_bench

    if not (dir / "data.csv").is_file():
        typer.echo(f"error: {dir}: no data.csv with reference values", err=True)
        raise typer.Exit(2)
    console = Console(stderr=True)

    def progress(row: Any) -> None:
        if not as_json:
            console.print(f"  {row.path}: silkroute {row.silkroute.objective}, "
                          f"HiGHS {row.highs.objective} (ref {row.reference})")

    report = run_gap_bench(dir, time_limit, workers=workers, scheduler=scheduler,
                           sets=set_names or None, seed=seed, min_jobs=min_jobs,
                           max_jobs=max_jobs, progress=progress, portfolio=portfolio)
    if as_json:
        sys.stdout.write(json.dumps(report) + "\n")
        return
    out = Console()
    table = Table(title=f"GAP benchmark, {time_limit:g} s per solver per instance")
    for col in ("instance", "ref", "silkroute", "gap %", "s", "HiGHS", "gap %", "s"):
        table.add_column(col, justify="left" if col == "instance" else "right")
    for r in report["instances"]:
        s, h = r["silkroute"], r["highs"]
        table.add_row(r["path"], str(r["reference"]) + ("" if r["reference_is_optimum"] else "*"),
                      _fmt(s["objective"]) + ("†" if s["found_by"] == "plain MIP" else ""),
                      _fmt(s["gap_percent"], 3), _fmt(s["seconds"], 1),
                      _fmt(h["objective"]), _fmt(h["gap_percent"], 3), _fmt(h["seconds"], 1))
    out.print(table)
    summary = Table(title="per set: gap to optimum / best known (%)")
    for col in ("set", "n", "silkroute mean", "silkroute worst", "HiGHS mean", "HiGHS worst"):
        summary.add_column(col, justify="left" if col == "set" else "right")
    for name, e in report["sets"].items():
        summary.add_row(name, str(e["instances"]),
                        _fmt(e["silkroute"]["mean_gap_percent"], 3),
                        _fmt(e["silkroute"]["worst_gap_percent"], 3),
                        _fmt(e["highs"]["mean_gap_percent"], 3),
                        _fmt(e["highs"]["worst_gap_percent"], 3))
    out.print(summary)
    if any(r["silkroute"]["found_by"] == "plain MIP" for r in report["instances"]):
        out.print("†: found by the portfolio's plain MIP (SciPy's HiGHS in a child process)")


def register(app: typer.Typer, bench: typer.Typer) -> None:
    """Add `solve` to the main app and `gap` to the `bench` group."""
    app.command("solve")(solve_command)
    bench.command("gap")(bench_gap_command)
