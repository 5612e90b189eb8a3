"""Cyclic and path exchanges (routing.gap_exchange) and the iterated exchange search of the
batch allocator."""

from __future__ import annotations

import itertools
import math
import time

import numpy as np
import pytest
from gap_helpers import brute_force

from silkroute.routing import batch
from silkroute.routing.gap import AllocationProblem
from silkroute.routing.gap_exchange import (
    best_exchange,
    exchange_arrays,
    exchange_descent,
    exchange_polish,
)
from silkroute.routing.gap_kernels import compiled_tabu_search


def _random_problem(seed: int, m: int, n: int, slack: float = 0.8) -> AllocationProblem:
    """A type-D-like instance: cost anti-correlated with use, capacity `slack` × the agent's
    total use / m."""
    rng = np.random.default_rng(seed)
    weight = rng.integers(1, 101, size=(m, n))
    cost = 111 - weight + rng.integers(-10, 11, size=(m, n))
    capacity = (slack * weight.sum(axis=1) / m).astype(np.int64)
    return AllocationProblem(cost, weight, capacity)


def _feasible_start(problem: AllocationProblem) -> np.ndarray:
    """The first feasible assignments the tabu search meets from the over-full start (each
    job on its cheapest agent): feasible, and far from a local optimum."""
    start = np.argmin(problem.cost, axis=0).astype(np.int64)
    a = compiled_tabu_search(problem, start, math.inf, seed=0, max_moves=40)
    assert problem.is_feasible(a)
    return a


def _exchange(problem: AllocationProblem, a: np.ndarray, depth: int) -> tuple[int, list[int],
                                                                                list[int]]:
    ct, wt, cap = exchange_arrays(problem)
    jobs = np.empty(depth, dtype=np.int64)
    to = np.empty(depth, dtype=np.int64)
    delta, count = best_exchange(ct, wt, cap, a.copy(), problem.load(a).astype(np.int64),
                                 depth, jobs, to)
    return int(delta), jobs[:count].tolist(), to[:count].tolist()


def test_a_three_cycle_is_found_where_no_shift_or_swap_improves() -> None:
    # given three full agents holding one job each, where moving every job on to the next
    # agent saves 12 and every shift is over capacity and every swap costs more, when
    # searched with chains of up to three jobs, then exactly that cycle comes back; with up
    # to two, nothing
    cost = np.array([[5, 20, 1], [1, 5, 20], [20, 1, 5]])
    problem = AllocationProblem(cost, np.full((3, 3), 10), np.array([10, 10, 10]))
    a = np.array([0, 1, 2])
    delta, jobs, to = _exchange(problem, a, 3)
    assert delta == -12
    moved = dict(zip(jobs, to, strict=True))
    assert moved == {0: 1, 1: 2, 2: 0}
    assert _exchange(problem, a, 2) == (0, [], [])


def test_a_path_ends_on_an_agent_with_room() -> None:
    # given agent 0 full with job 0, agent 1 full with jobs 1 and 2, and agent 2 empty with
    # room for one job, the cheapest move is job 0 to agent 1 in place of job 1, which goes
    # on to agent 2 (cost 1 + 1 instead of 5 + 5); alone, either shift saves only 4
    cost = np.array([[5, 20, 9], [1, 5, 9], [20, 1, 9]])
    problem = AllocationProblem(cost, np.full((3, 3), 10), np.array([10, 20, 10]))
    a = np.array([0, 1, 1])
    delta, jobs, to = _exchange(problem, a, 3)
    assert delta == -8
    assert dict(zip(jobs, to, strict=True)) == {0: 1, 1: 2}


@pytest.mark.parametrize(("seed", "depth"), [(1, 2), (0, 4), (4, 6), (5, 8)])
def test_every_exchange_is_feasible_and_changes_the_cost_by_its_delta(seed: int,
                                                                      depth: int) -> None:
    # given a feasible assignment of a tight random instance, when the best exchange is
    # made again and again, then each moves at most `depth` jobs, each job once, to distinct
    # agents, keeps every capacity, and lowers the cost by exactly its delta
    problem = _random_problem(seed, 8, 60)
    a = _feasible_start(problem)
    ct, wt, cap = exchange_arrays(problem)
    jobs = np.empty(depth, dtype=np.int64)
    to = np.empty(depth, dtype=np.int64)
    made = 0
    for _ in range(200):
        load = problem.load(a).astype(np.int64)
        delta, count = best_exchange(ct, wt, cap, a, load, depth, jobs, to)
        if count == 0:
            break
        assert 1 <= count <= depth and delta < 0
        moved = jobs[:count]
        assert len(set(moved.tolist())) == count
        touched = set(a[moved].tolist()) | set(to[:count].tolist())
        assert len(set(a[moved].tolist())) == count  # each job leaves a different agent
        assert len(touched) <= count + 1
        b = a.copy()
        b[moved] = to[:count]
        assert problem.is_feasible(b)
        assert problem.objective(b) - problem.objective(a) == delta
        a = b
        made += 1
    assert made > 0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_descent_ends_feasible_shift_optimal_and_with_the_cost_it_reports(seed: int) -> None:
    problem = _random_problem(10 + seed, 10, 80)
    start = _feasible_start(problem)
    ct, wt, cap = exchange_arrays(problem)
    a = start.copy()
    load = problem.load(a).astype(np.int64)
    cost = exchange_descent(ct, wt, cap, a, load, problem.objective(a), 6, 1 << 30)
    assert problem.is_feasible(a)
    assert cost == problem.objective(a) <= problem.objective(start)
    assert (load == problem.load(a)).all()
    # no feasible shift improves
    room = problem.capacity - problem.load(a)
    cols = np.arange(problem.jobs)
    gain = problem.cost - problem.cost[a, cols][None, :]
    fits = problem.weight <= room[:, None]
    assert not (fits & (gain < 0)).any()
    # and the polish wrapper gives the same
    assert (exchange_polish(problem, start, 6) == a).all()


def test_iterated_exchange_reaches_the_brute_force_optimum() -> None:
    # given 3 agents and 9 jobs (19 683 assignments), when the iterated exchange search runs
    # from a feasible start, then it ends at the enumerated optimum, 652, and stops there
    # (the bound closes the search)
    problem = _random_problem(11, 3, 9)
    optimum = brute_force(problem)
    assert optimum == 652
    # the start: the most expensive feasible assignment
    start = max((np.array(x) for x in itertools.product(range(3), repeat=9)
                 if problem.is_feasible(np.array(x))), key=problem.objective)
    assert problem.objective(start) > optimum
    search = batch._Search(problem, math.inf)
    search.offer(start)
    search.bound = float(optimum)
    batch._iterated_exchange(search, math.inf, seed=0, max_kicks=500)
    assert search.best is not None and search.best_cost == optimum
    assert search.closed()


def test_iterated_exchange_is_repeatable_for_a_seed_and_a_time() -> None:
    # given a random tight instance, two searches with the same seed and no bound end at the
    # same assignment when each is cut off by the same (generous) budget of kicks
    problem = _random_problem(5, 10, 80)
    start = _feasible_start(problem)
    out = []
    for _ in range(2):
        search = batch._Search(problem, math.inf)
        search.bound = 0.0
        search.offer(start)
        batch._iterated_exchange(search, math.inf, seed=3, max_kicks=40)
        assert search.best is not None and problem.is_feasible(search.best)
        out.append(search.best.copy())
    assert (out[0] == out[1]).all()
    assert problem.objective(out[0]) < problem.objective(start)


def test_a_search_without_a_finite_bound_is_not_closed() -> None:
    # given an incumbent but no bound (the LP ran out of time on a large instance: -inf),
    # the search is open (it used to raise OverflowError on math.ceil(-inf)); with a bound
    # equal to the incumbent's cost it is closed
    problem = _random_problem(11, 3, 9)
    search = batch._Search(problem, math.inf)
    search.offer(_feasible_start(problem))
    assert search.best is not None and search.bound == -math.inf
    assert not search.closed()
    search.bound = float(search.best_cost)
    assert search.closed()


def test_iterated_exchange_gives_up_after_its_patience_without_a_gain() -> None:
    # given the brute-force optimum as the incumbent and no bound to close the search, when
    # the iterated exchange search gets one second, then it keeps the optimum (652) and hands
    # the time back after `ILS_PATIENCE` of it without a new best
    problem = _random_problem(11, 3, 9)
    search = batch._Search(problem, math.inf)
    search.bound = 0.0
    search.offer(_feasible_start(problem))
    batch._iterated_exchange(search, math.inf, seed=0, max_kicks=200)
    assert search.best_cost == 652
    began = time.monotonic()
    batch._iterated_exchange(search, began + 1.0, seed=1)
    spent = time.monotonic() - began
    assert search.best_cost == 652
    assert batch.ILS_PATIENCE * 1.0 <= spent < 0.9
