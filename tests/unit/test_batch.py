"""The batch allocator: optimum on small public instances, valid bounds, feasibility, limits."""

from __future__ import annotations

import csv
import math
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from silkroute.bench.gap import run_gap_bench
from silkroute.routing.batch import solve
from silkroute.routing.batch_bound import lower_bound
from silkroute.routing.batch_search import (
    regret_construction,
)
from silkroute.routing.gap import AllocationProblem, parse_allocation_json, read_orlib
from silkroute.routing.gap_kernels import compiled_tabu_search

DATA = Path(__file__).parents[3] / "shared" / "data" / "gap"


def _optima() -> dict[str, int]:
    with (DATA / "data.csv").open(newline="") as fh:
        return {r["Path"]: int(r["Optimum"]) for r in csv.DictReader(fh) if r["Optimum"]}


SMALL = [f"cattrysse1994/gap{k}-{i}" for k in (1, 2) for i in range(5)]


@pytest.mark.parametrize("name", SMALL)
def test_reaches_the_known_optimum(name: str) -> None:
    # given a Cattrysse instance, when solved, then the optimum is reached and proven
    problem = read_orlib(DATA / name)
    result = solve(problem, time_limit=10, seed=0)
    assert result.objective == _optima()[name]
    assert result.status == "optimal"
    assert result.feasible
    assert result.lower_bound <= result.objective
    assert result.gap == 0.0
    assert problem.is_feasible(result.assignment)
    loads = np.zeros(problem.agents, dtype=np.int64)
    for j, i in enumerate(result.assignment):
        loads[i] += problem.weight[i, j]
    assert (loads <= problem.capacity).all()


def test_time_limit_is_honoured_and_bound_is_valid() -> None:
    # given a hard type D instance, when given 2 s, then it answers within 3 s
    problem = read_orlib(DATA / "chu1997" / "d10200")
    started = time.monotonic()
    result = solve(problem, time_limit=2, seed=0)
    elapsed = time.monotonic() - started
    assert elapsed <= 3.0
    assert result.feasible and problem.is_feasible(result.assignment)
    assert result.objective is not None and result.objective >= 12430  # the known optimum
    assert 12418 <= result.lower_bound <= 12430  # at least the LP bound, never above optimum
    assert result.gap == pytest.approx(
        100 * (result.objective - result.lower_bound) / result.objective
    )


def test_same_seed_same_answer() -> None:
    problem = read_orlib(DATA / "cattrysse1994" / "gap3-2")
    a = solve(problem, time_limit=5, seed=7)
    b = solve(problem, time_limit=5, seed=7)
    assert (a.objective, a.assignment) == (b.objective, b.assignment)


def test_compiled_tabu_search_is_feasible_and_repeats_for_a_seed() -> None:
    # given a tight type E instance and a regret start, when the compiled tabu search makes a
    # fixed number of moves twice with one seed, then both answers are the same feasible
    # assignment, no worse than the start; another seed walks elsewhere
    problem = read_orlib(DATA / "yagiura2004" / "e10100")
    prices = lower_bound(problem, time.monotonic() + 5).capacity_price
    start = regret_construction(problem, prices, time.monotonic() + 5)
    assert start is not None
    far = time.monotonic() + 60
    runs = []
    for seed in (5, 5, 6):
        stats: dict[str, float] = {}
        runs.append(compiled_tabu_search(problem, start, far, seed=seed, max_moves=20_000,
                                         stats=stats))
        assert stats["iterations"] == 20_000
    for run in runs:
        assert problem.is_feasible(run)
        assert problem.objective(run) <= problem.objective(start)
    assert (runs[0] == runs[1]).all()
    assert problem.objective(runs[0]) < problem.objective(start)
    assert not (runs[0] == runs[2]).all()


@pytest.mark.parametrize(("name", "moves", "start_cost", "optimum"),
                         [("gap3-0", 200, 446, 438), ("gap2-0", 10, 286, 277)])
def test_compiled_tabu_search_reaches_the_optimum_from_a_regret_start(
    name: str, moves: int, start_cost: int, optimum: int
) -> None:
    problem = read_orlib(DATA / "cattrysse1994" / name)
    prices = lower_bound(problem, time.monotonic() + 5).capacity_price
    start = regret_construction(problem, prices, time.monotonic() + 5)
    assert start is not None and problem.objective(start) == start_cost
    best = compiled_tabu_search(problem, start, time.monotonic() + 60, seed=0, max_moves=moves)
    assert problem.is_feasible(best)
    assert problem.objective(best) == optimum == _optima()[f"cattrysse1994/{name}"]


def test_compiled_tabu_search_repairs_an_infeasible_start() -> None:
    # given every job on its cheapest agent (over capacity), when searched, then the
    # optimum of the Cattrysse instance is found
    problem = read_orlib(DATA / "cattrysse1994" / "gap1-0")
    start = np.argmin(problem.cost, axis=0)
    assert not problem.is_feasible(start)
    best = compiled_tabu_search(problem, start, time.monotonic() + 60, seed=0, max_moves=50)
    assert problem.is_feasible(best)
    assert problem.objective(best) == 261


def test_compiled_tabu_search_honours_the_deadline() -> None:
    problem = read_orlib(DATA / "yagiura2004" / "e20200")
    prices = lower_bound(problem, time.monotonic() + 5).capacity_price
    start = regret_construction(problem, prices, time.monotonic() + 5)
    assert start is not None
    compiled_tabu_search(problem, start, time.monotonic() + 60, seed=0, max_moves=1)  # compile
    began = time.monotonic()
    stats: dict[str, float] = {}
    best = compiled_tabu_search(problem, start, began + 0.5, seed=0, stats=stats)
    assert time.monotonic() - began < 1.0
    assert stats["iterations"] > 0
    assert problem.objective(best) <= problem.objective(start)


def test_job_that_fits_nowhere_is_infeasible() -> None:
    p = AllocationProblem(cost=np.array([[1, 1]]), weight=np.array([[1, 9]]),
                          capacity=np.array([5]))
    result = solve(p, time_limit=2, seed=0)
    assert (result.status, result.feasible, result.objective) == ("infeasible", False, None)
    assert result.reason == "job 1 fits no agent (no allowed agent has enough capacity)"


def test_too_little_capacity_is_infeasible() -> None:
    # three jobs of size 2, two agents of capacity 3: the LP fits, no integer assignment does
    p = AllocationProblem(cost=np.ones((2, 3), dtype=np.int64),
                          weight=np.full((2, 3), 2), capacity=np.array([3, 3]))
    result = solve(p, time_limit=2, seed=0)
    assert (result.status, result.feasible, result.assignment) == ("infeasible", False, [])
    assert result.reason == "no assignment fits the capacities (proven by HiGHS)"


def test_capacity_sum_too_small_is_infeasible() -> None:
    p = AllocationProblem(cost=np.ones((2, 3), dtype=np.int64),
                          weight=np.full((2, 3), 3), capacity=np.array([4, 4]))
    result = solve(p, time_limit=2, seed=0)
    assert (result.status, result.feasible) == ("infeasible", False)
    assert result.reason == ("the LP relaxation is infeasible: the capacities cannot hold "
                             "every job")


def test_sparse_json_problem_respects_forbidden_options() -> None:
    # given order-2 may only go north, when solved, then order-1 goes south despite its cost
    p = parse_allocation_json(
        '{"agents": [{"id": "north", "capacity": 10}, {"id": "south", "capacity": 6}],'
        ' "jobs": [{"id": "o1", "options": [{"agent": "north", "cost": 80, "use": 5},'
        ' {"agent": "south", "cost": 90, "use": 5}]},'
        ' {"id": "o2", "options": [{"agent": "north", "cost": 70, "use": 6}]}]}'
    )
    result = solve(p, time_limit=2, seed=0)
    assert (result.objective, result.assignment, result.status) == (160, [1, 0], "optimal")


def test_dask_cluster_gives_the_same_bench_results(tmp_path: Path) -> None:
    # given two small instances, when benched in-process and on a 2-worker LocalCluster,
    # then objectives and gaps are the same
    root = tmp_path / "gap"
    (root / "cattrysse1994").mkdir(parents=True)
    lines = ["Path,Format,Dataset,Item number,Agent number,Best known bound,Optimum,"
             "Best known solution value"]
    for name, opt in (("gap1-0", 261), ("gap2-1", 269)):
        shutil.copy(DATA / "cattrysse1994" / name, root / "cattrysse1994" / name)
        lines.append(f"cattrysse1994/{name},orlibrary,cattrysse1994,15,5,{opt},{opt},{opt}")
    (root / "data.csv").write_text("\n".join(lines) + "\n")
    local = run_gap_bench(root, time_limit=5)
    dask = run_gap_bench(root, time_limit=5, workers=2)

    def key(report: dict) -> list[tuple]:
        return [(r["path"], r["silkroute"]["objective"], r["silkroute"]["gap_percent"],
                 r["highs"]["objective"], r["highs"]["gap_percent"])
                for r in report["instances"]]

    assert key(local) == key(dask) == [
        ("cattrysse1994/gap1-0", 261, 0.0, 261, 0.0),
        ("cattrysse1994/gap2-1", 269, 0.0, 269, 0.0),
    ]
    assert local["sets"]["cattrysse1994"]["silkroute"]["mean_gap_percent"] == 0.0
    assert dask["sets"]["all"]["instances"] == 2


def test_kick_moves_a_share_of_the_jobs_to_allowed_agents() -> None:
    # given 40 jobs each allowed on two of four agents, when 10 % are kicked, then at most 4
    # jobs change agent, each to an allowed one, and the same generator seed kicks the same
    from silkroute.routing.batch import _kicked

    rng = np.random.default_rng(0)
    allowed = np.zeros((4, 40), dtype=np.bool_)
    allowed[rng.integers(0, 4, 40), np.arange(40)] = True
    allowed[rng.integers(0, 4, 40), np.arange(40)] = True
    start = np.argmax(allowed, axis=0).astype(np.int64)
    p = AllocationProblem(np.ones((4, 40), dtype=np.int64), np.ones((4, 40), dtype=np.int64),
                          np.full(4, 40), allowed)
    a = _kicked(p, start, 0.1, np.random.default_rng(3))
    b = _kicked(p, start, 0.1, np.random.default_rng(3))
    assert (a == b).all()
    assert 1 <= int((a != start).sum()) <= 4
    assert allowed[a, np.arange(40)].all()
    assert (start == np.argmax(allowed, axis=0)).all()  # the input is not changed


def test_when_the_greedy_finds_nothing_the_tabu_search_repairs_a_priced_start(
        monkeypatch) -> None:
    """yagiura2004 c801600 (1,600 jobs, 80 agents) is so tight that the regret greedy finds
    no assignment; the allocator then starts the penalised tabu search from each job's
    cheapest agent at the LP's prices, over capacity, and the search walks into the
    capacities. Here the greedy and the exact model are switched off, so the answer can
    only come from that repair."""
    import silkroute.routing.batch as batch

    class NoMip:
        status, assignment, bound = "time_limit", None, -np.inf

    monkeypatch.setattr(batch, "regret_construction", lambda *a, **k: None)
    monkeypatch.setattr(batch, "solve_mip", lambda *a, **k: NoMip())
    problem = read_orlib(DATA / "cattrysse1994/gap1-0")
    result = solve(problem, time_limit=5, seed=0)
    assert (result.feasible, result.objective) == (True, 261)  # the optimum
    assert problem.is_feasible(result.assignment)
    assert problem.objective(np.array(result.assignment)) == 261


def _tiny_problem(seed: int, m: int = 3, n: int = 8) -> AllocationProblem:
    """A small random instance (cost independent of use) with some pairs forbidden."""
    rng = np.random.default_rng(seed)
    weight = rng.integers(5, 26, size=(m, n))
    cost = rng.integers(10, 51, size=(m, n))
    allowed = rng.random((m, n)) < 0.85
    allowed[rng.integers(0, m, n), np.arange(n)] = True
    capacity = (0.8 * weight.sum(axis=1) / m).astype(np.int64)
    return AllocationProblem(cost, weight, capacity, allowed)


def _all_optima(problem: AllocationProblem) -> tuple[int, list[np.ndarray]]:
    import itertools

    best, found = math.inf, []
    for x in itertools.product(range(problem.agents), repeat=problem.jobs):
        a = np.array(x)
        if problem.allowed[a, np.arange(problem.jobs)].all() and problem.is_feasible(a):
            c = problem.objective(a)
            if c < best:
                best, found = c, [a]
            elif c == best:
                found.append(a)
    return int(best), found


@pytest.mark.parametrize(("seed", "expected"), [(1, 193), (2, 275), (3, 222), (5, 250),
                                                (10, 263)])
def test_knapsack_bound_and_reduction_keep_every_optimum(seed: int, expected: int) -> None:
    # given a small random instance and its enumerated optima, when the knapsack Lagrangian
    # bound is computed from the LP's duals, then LP ≤ bound ≤ optimum; when the pairs are
    # reduced (with probing) for assignments cheaper than optimum + 1, then every optimal
    # assignment keeps all its pairs and the reduced bound is at most the optimum; and the
    # branch and bound on what is left, from optimum + 1, ends at the optimum, complete
    from silkroute.routing.batch_lagrange import branch_and_bound, knapsack_bound, reduce

    problem = _tiny_problem(seed)
    optimum, optima = _all_optima(problem)
    assert optimum == expected
    lp = lower_bound(problem, time.monotonic() + 5)
    assert lp.job_price is not None
    kb = knapsack_bound(problem, lp.job_price, optimum + 1, math.inf)
    assert kb is not None
    assert lp.value - 1e-6 <= kb.value <= optimum + 1e-6
    red = reduce(problem, lp.job_price, optimum + 1, math.inf)
    assert red is not None and red.value <= optimum + 1e-6
    cols = np.arange(problem.jobs)
    for a in optima:
        assert red.mask[a, cols].all()
        assert (kb.forced_in[a, cols] <= optimum + 1e-6).all()
    out = branch_and_bound(problem, red.mask, red.prices, optimum + 1, math.inf)
    assert out.complete and out.upper == optimum
    assert out.assignment is not None and problem.objective(out.assignment) == optimum
    assert problem.is_feasible(out.assignment)


def test_branch_and_bound_proves_that_nothing_is_cheaper_and_repeats_for_a_node_budget() \
        -> None:
    # given chu1997 b10200 (optimum 2827) and its pairs reduced below 2829, when the tree
    # searches for an assignment cheaper than 2829, then it finds 2827 and searches to the
    # end; two runs cut off after the same number of nodes give the same answer; below
    # 2827 the tree is complete and finds nothing (2827 is proven optimal)
    from silkroute.routing.batch_lagrange import branch_and_bound, reduce

    problem = read_orlib(DATA / "chu1997" / "b10200")
    lp = lower_bound(problem, time.monotonic() + 5)
    assert lp.job_price is not None
    red = reduce(problem, lp.job_price, 2829, math.inf, max_probes=100)
    assert red is not None and 2825 < red.value < 2827
    out = branch_and_bound(problem, red.mask, red.prices, 2829, math.inf)
    assert out.complete and out.upper == 2827
    assert out.assignment is not None and problem.is_feasible(out.assignment)
    cut = [branch_and_bound(problem, red.mask, red.prices, 2829, math.inf, max_nodes=60)
           for _ in range(2)]
    assert not cut[0].complete and cut[0].nodes == cut[1].nodes == 60
    assert cut[0].upper == cut[1].upper
    if cut[0].assignment is not None:
        assert cut[1].assignment is not None
        assert (cut[0].assignment == cut[1].assignment).all()
    below = reduce(problem, red.prices, 2827, math.inf, mask=red.mask, probe=False)
    assert below is not None
    none = branch_and_bound(problem, below.mask, below.prices, 2827, math.inf)
    assert none.complete and none.assignment is None and none.upper == 2827


def test_independent_cost_instances_are_closed_by_the_lagrangian_tree(monkeypatch) -> None:
    # given a Cattrysse instance (cost independent of use) and HiGHS's MIP switched off, when
    # solved, then the optimum is reached and proven: the answer and its proof can only come
    # from the tabu search and the knapsack Lagrangian reduction and branch and bound; the
    # same seed gives the same assignment
    import silkroute.routing.batch as batch

    class NoMip:
        status, assignment, bound = "time_limit", None, -np.inf

    monkeypatch.setattr(batch, "solve_mip", lambda *a, **k: NoMip())
    problem = read_orlib(DATA / "cattrysse1994/gap4-1")
    assert batch._heuristic_weight(problem) == 0.0
    runs = [solve(problem, time_limit=10, seed=3) for _ in range(2)]
    assert runs[0].objective == _optima()["cattrysse1994/gap4-1"]
    assert runs[0].status == "optimal" and runs[0].lower_bound == runs[0].objective
    assert runs[0].assignment == runs[1].assignment
