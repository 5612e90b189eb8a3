"""`silkroute bench gap`: the batch allocator and SciPy's HiGHS MIP on public GAP instances."""

from __future__ import annotations

import csv
import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from silkroute.routing.gap import AllocationProblem, read_orlib
from silkroute.routing.plain_mip import plain_milp


@dataclass
class SolverRun:
    """One solver on one instance."""

    objective: int | None
    gap_percent: float | None  # to the optimum (or best known value), in percent
    seconds: float
    lower_bound: float | None = None
    #: silkroute only: whether its portfolio's plain MIP ran, and which member found the answer
    portfolio: bool | None = None
    found_by: str | None = None


@dataclass
class InstanceRow:
    """One instance: its reference value and both solvers' runs."""

    path: str
    set: str
    jobs: int
    agents: int
    reference: int
    reference_is_optimum: bool
    silkroute: SolverRun
    highs: SolverRun


def _gap(objective: int | None, reference: int) -> float | None:
    if objective is None:
        return None
    return round(100.0 * (objective - reference) / max(1, abs(reference)), 4)


def highs_mip(problem: AllocationProblem, time_limit: float) -> tuple[int | None, float]:
    """The plain assignment model solved by `scipy.optimize.milp` (HiGHS) within a time limit."""
    out = plain_milp(problem.cost, problem.weight, problem.capacity, problem.allowed,
                     time_limit)
    return out.objective, out.seconds


def run_instance(
    root: str, path: str, set_name: str, reference: int, is_optimum: bool,
    time_limit: float, seed: int = 0, portfolio: bool | None = None,
) -> InstanceRow:
    """Solve one instance with silkroute and with HiGHS (in that order, one after the other)."""
    from silkroute.routing.batch import solve

    problem = read_orlib(Path(root) / path)
    res = solve(problem, time_limit=time_limit, seed=seed, portfolio=portfolio)
    ours = SolverRun(res.objective, _gap(res.objective, reference), round(res.seconds, 3),
                     res.lower_bound if math.isfinite(res.lower_bound) else None,
                     res.portfolio, res.found_by if res.feasible else None)
    h_obj, h_sec = highs_mip(problem, time_limit)
    theirs = SolverRun(h_obj, _gap(h_obj, reference), round(h_sec, 3))
    return InstanceRow(path, set_name, problem.jobs, problem.agents, reference, is_optimum,
                       ours, theirs)


def list_instances(
    root: str | Path, sets: Sequence[str] | None = None,
    min_jobs: int | None = None, max_jobs: int | None = None,
) -> list[tuple[str, str, int, bool]]:
    """(path, set, reference value, reference is a proven optimum) from `data.csv`, for the
    instances present under `root`; `sets` keeps paths starting with one of the names
    (`chu1997`, `chu1997/d`, `yagiura2004/e201600`)."""
    root = Path(root)
    table = root / "data.csv"
    if not table.is_file():
        raise FileNotFoundError(f"{table}: no data.csv with reference values")
    out: list[tuple[str, str, int, bool]] = []
    seen: set[str] = set()
    with table.open(newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            path = (row.get("Path") or "").strip()
            if not path or path in seen or not (root / path).is_file():
                continue
            if sets and not any(path == s or path.startswith(s.rstrip("/") + ("/" if "/" not in s
                                else "")) for s in sets):
                continue
            jobs = int(row.get("Item number") or 0)
            if min_jobs is not None and jobs < min_jobs:
                continue
            if max_jobs is not None and jobs > max_jobs:
                continue
            optimum = (row.get("Optimum") or "").strip()
            best = (row.get("Best known solution value") or "").strip()
            if not optimum and not best:
                continue
            seen.add(path)
            out.append((path, path.split("/")[0], int(optimum or best), bool(optimum)))
    return out


def summarise(rows: Sequence[InstanceRow]) -> dict[str, dict[str, Any]]:
    """Per set: instances, and mean and worst gap (percent) for silkroute and HiGHS."""
    out: dict[str, dict[str, Any]] = {}
    for name in sorted({r.set for r in rows} | {"all"}):
        chosen = [r for r in rows if name == "all" or r.set == name]
        entry: dict[str, Any] = {"instances": len(chosen)}
        for solver in ("silkroute", "highs"):
            gaps = [getattr(r, solver).gap_percent for r in chosen]
            known = [g for g in gaps if g is not None]
            entry[solver] = {
                "mean_gap_percent": round(sum(known) / len(known), 4) if known else None,
                "worst_gap_percent": max(known) if known else None,
                "no_solution": len(gaps) - len(known),
                "optimal": sum(1 for g in known if g <= 0),
                "seconds": round(sum(getattr(r, solver).seconds for r in chosen), 1),
            }
        out[name] = entry
    return out


def run_gap_bench(
    dir: str | Path,
    time_limit: float,
    workers: int | None = None,
    scheduler: str | None = None,
    sets: Sequence[str] | None = None,
    seed: int = 0,
    min_jobs: int | None = None,
    max_jobs: int | None = None,
    progress: Any = None,
    portfolio: bool | None = None,
) -> dict[str, Any]:
    """Solve every instance under `dir` with silkroute and with SciPy's HiGHS MIP at the same
    time limit; in this process, or on Dask (a LocalCluster of `workers`, or `scheduler`)."""
    root = str(Path(dir))
    todo = list_instances(root, sets, min_jobs, max_jobs)
    started = time.monotonic()
    rows: list[InstanceRow] = []
    if workers is None and scheduler is None:
        for path, set_name, ref, is_opt in todo:
            rows.append(run_instance(root, path, set_name, ref, is_opt, time_limit, seed,
                                     portfolio))
            if progress is not None:
                progress(rows[-1])
    else:
        rows = _run_on_dask(root, todo, time_limit, seed, workers, scheduler, progress,
                            portfolio)
    return {
        "time_limit": time_limit,
        "seed": seed,
        "instances": [asdict(r) for r in rows],
        "sets": summarise(rows),
        "wall_seconds": round(time.monotonic() - started, 1),
    }


def _run_on_dask(
    root: str, todo: list[tuple[str, str, int, bool]], time_limit: float, seed: int,
    workers: int | None, scheduler: str | None, progress: Any, portfolio: bool | None,
) -> list[InstanceRow]:
    from dask.distributed import Client, LocalCluster, as_completed

    cluster = None
    if scheduler is not None:
        client = Client(scheduler)
    else:
        cluster = LocalCluster(n_workers=workers or 1, threads_per_worker=1, processes=True,
                               dashboard_address=None)
        client = Client(cluster)
    try:
        futures = [
            client.submit(run_instance, root, path, set_name, ref, is_opt, time_limit, seed,
                          portfolio, key=f"gap-{path}-{seed}-{time_limit}", pure=False)
            for path, set_name, ref, is_opt in todo
        ]
        done: dict[str, InstanceRow] = {}
        for fut in as_completed(futures):
            row = fut.result()
            done[row.path] = row
            if progress is not None:
                progress(row)
        return [done[path] for path, *_ in todo]
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
