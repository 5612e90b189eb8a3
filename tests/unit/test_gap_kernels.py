"""The compiled penalised tabu search with ejection chains (routing.gap_kernels)."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
from gap_helpers import brute_force

from silkroute.routing.gap import AllocationProblem
from silkroute.routing.gap_kernels import TabuState, compiled_tabu_search

FAR = math.inf


def _random_problem(seed: int, m: int, n: int, slack: float = 0.8) -> AllocationProblem:
    """A type-D-like instance (Chu and Beasley): cost anti-correlated with use, capacity
    `slack` × the agent's total use / m."""
    rng = np.random.default_rng(seed)
    weight = rng.integers(1, 101, size=(m, n))
    cost = 111 - weight + rng.integers(-10, 11, size=(m, n))
    capacity = (slack * weight.sum(axis=1) / m).astype(np.int64)
    return AllocationProblem(cost, weight, capacity)


def _penalised(problem: AllocationProblem, a: np.ndarray, alpha: np.ndarray) -> float:
    excess = np.maximum(0, problem.load(a) - problem.capacity)
    return float(problem.objective(a)) + float((alpha * excess).sum())


def _cheapest(problem: AllocationProblem) -> np.ndarray:
    return np.argmin(problem.cost, axis=0).astype(np.int64)


@pytest.mark.parametrize(("seed", "depth"), [(0, 2), (1, 2), (2, 2), (0, 5), (1, 6)])
def test_every_move_changes_the_penalised_objective_by_its_delta(seed: int, depth: int) -> None:
    # given an over-full start (each job on its cheapest agent), when the kernel makes one
    # move at a time, then the penalised objective (with the weights before the move) changes
    # by exactly the delta the kernel chose the move by, the kept loads and cost are those of
    # the assignment, and only the jobs of the move changed agent, in the way its kind says
    problem = _random_problem(seed, 6, 40)
    state = TabuState(problem, _cheapest(problem), seed=seed, depth=depth)
    kinds = set()
    lengths = set()
    for _ in range(300):
        a0, alpha0 = state.a.copy(), state.alpha.copy()
        assert state.step(1) == 0
        kind, x, y, z, delta, length = state.last
        kinds.add(int(kind))
        after = _penalised(problem, state.a, alpha0)
        assert after - _penalised(problem, a0, alpha0) == pytest.approx(delta, abs=1e-6)
        assert (state.load == problem.load(state.a)).all()
        assert state.cstate[0] == problem.objective(state.a)
        moved = set(np.flatnonzero(state.a != a0).tolist())
        x, y, z = int(x), int(y), int(z)
        if kind == 0:  # shift: job x to agent y
            assert moved == {x} and state.a[x] == y
        elif kind == 1:  # swap of jobs x and y
            assert moved == {x, y} and (state.a[x], state.a[y]) == (a0[y], a0[x])
        elif length == 2:  # chain: x to y's agent, y on to a third agent z
            assert moved == {x, y}
            assert (state.a[x], state.a[y]) == (a0[y], z)
            assert z not in (a0[x], a0[y])
        else:  # a longer chain: x to y's agent, y on, ... (each a job of the previous agent)
            assert 2 < length <= depth
            assert x in moved and y in moved and len(moved) == length
            assert state.a[x] == a0[y]
        lengths.add(int(length))
    assert {0, 2} <= kinds  # shifts and chains at least (swaps are rarer)
    assert (max(lengths) == 2) if depth == 2 else (2 < max(lengths) <= depth)


@pytest.mark.parametrize("kind", [0, 1, 2])
def test_one_neighbourhood_alone_changes_the_objective_by_its_delta(kind: int) -> None:
    # given only shifts, only swaps or only ejection chains, every move is of that kind, its
    # delta is exact, and it is counted
    problem = _random_problem(7, 5, 30)
    state = TabuState(problem, _cheapest(problem), seed=3, shift=kind == 0, swap=kind == 1,
                      chain=kind == 2)
    for _ in range(200):
        a0, alpha0 = state.a.copy(), state.alpha.copy()
        assert state.step(1) == 0
        assert state.last[0] == kind
        after = _penalised(problem, state.a, alpha0)
        assert after - _penalised(problem, a0, alpha0) == pytest.approx(state.last[4], abs=1e-6)
    assert state.istate[4 + kind] == state.moves == 200


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_search_with_chains_is_feasible_exact_and_repeatable(seed: int) -> None:
    # given a random anti-correlated instance and an infeasible start, when searched twice with
    # one seed and move budget, then the same feasible assignment comes back, its cost is the
    # reported one, and ejection chains were among the moves
    problem = _random_problem(100 + seed, 8, 60)
    runs = []
    for _ in range(2):
        stats: dict[str, float] = {}
        best = compiled_tabu_search(problem, _cheapest(problem), FAR, seed=seed,
                                    max_moves=3000, stats=stats, chain=True)
        runs.append((best, stats))
    (a, sa), (b, sb) = runs
    assert (a == b).all() and sa == sb
    assert problem.is_feasible(a)
    assert sa["best_cost"] == problem.objective(a)
    assert sa["iterations"] == 3000
    assert sa["shifts"] + sa["swaps"] + sa["chains"] == 3000
    assert sa["chains"] > 0


def test_tiny_instance_reaches_the_brute_force_optimum() -> None:
    # given 3 agents and 9 jobs (19 683 assignments), when searched from the over-full start,
    # then the enumerated optimum is found, with chains of two jobs and of up to four
    problem = _random_problem(11, 3, 9)
    optimum = brute_force(problem)
    assert optimum == 652 > problem.objective(_cheapest(problem)) == 328
    assert not problem.is_feasible(_cheapest(problem))
    best = compiled_tabu_search(problem, _cheapest(problem), FAR, seed=0, max_moves=500,
                                chain=True)
    assert problem.is_feasible(best) and problem.objective(best) == optimum
    deep = compiled_tabu_search(problem, _cheapest(problem), FAR, seed=0, max_moves=500,
                                chain=True, depth=4)
    assert problem.is_feasible(deep) and problem.objective(deep) == optimum


def test_chain_search_honours_the_deadline() -> None:
    problem = _random_problem(5, 20, 200)
    began = time.monotonic()
    stats: dict[str, float] = {}
    compiled_tabu_search(problem, _cheapest(problem), began + 0.3, seed=0, stats=stats)
    assert time.monotonic() - began < 0.8
    assert stats["iterations"] > 0
