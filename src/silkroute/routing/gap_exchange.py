"""Cyclic and path exchanges for the batch allocator (Numba): a very large neighbourhood
over feasible assignments in the style of Ahuja, Orlin and Sharma's multi-exchange
neighbourhoods (improvement graph, label-correcting search for negative cycles).

A path of jobs u1, u2, …, ul on distinct agents means: u1 leaves its agent, each u_i goes
to the agent of u_{i+1} in its place, and the last job ul either closes the cycle (it goes
to the agent of u1) or goes to an agent outside the path where it fits. Every agent is
touched at most once, so each capacity is checked exactly by the arc that enters it. The
search keeps, per path length and last job, only the cheapest path found (label
correcting) and extends only paths of negative cost so far (the gain criterion: a
negative cycle has a rotation whose every prefix is negative), so it is a heuristic
search of the neighbourhood, but every move it returns is exact and feasible. Shifts
(l = 1, to an agent outside) and swaps (l = 2, closed) are among its moves."""

from __future__ import annotations

import math
import time

import numpy as np
import numpy.typing as npt
from numba import njit

from silkroute.routing.gap import AllocationProblem
from silkroute.routing.gap_kernels import FORBIDDEN

IntArray = npt.NDArray[np.int64]

#: longest path or cycle searched (jobs moved)
EXCHANGE_DEPTH = 6
#: exchanges made between two looks at the clock
POLISH_CHUNK = 1


@njit(cache=True, nogil=True)
def _on_path(pred: IntArray, level: int, v: int, a: IntArray, agent: int) -> bool:
    """Whether `agent` holds one of the jobs on the path ending at (level, v)."""
    while level >= 0:
        if a[v] == agent:
            return True
        v = pred[level, v]
        level -= 1
    return False


@njit(cache=True, nogil=True)
def best_exchange(ct: IntArray, wt: IntArray, cap: IntArray, a: IntArray, load: IntArray,
                  depth: int, jobs: IntArray, to: IntArray) -> tuple[int, int]:  # pragma: no cover
    """The cheapest improving cyclic or path exchange found from the feasible assignment
    `a` (jobs × agents `ct`, `wt`; `load` its loads): (cost change, jobs moved), and job
    `jobs[k]` goes to agent `to[k]` for k below the count; (0, 0) when none is found."""
    n, m = ct.shape
    half = FORBIDDEN // 2
    big = 1 << 60
    g = np.full((depth, n), big, dtype=np.int64)
    pred = np.full((depth, n), -1, dtype=np.int64)
    for v in range(n):
        g[0, v] = 0
    best = 0
    best_level = -1
    best_v = -1
    best_target = -1
    for level in range(depth):
        for v in range(n):
            gv = g[level, v]
            if gv >= big:
                continue
            av = a[v]
            cv = ct[v, av]
            # close: v goes to the agent of the first job (a cycle, from two jobs on) or to
            # an agent outside the path where it fits
            first = v
            lv = level
            while lv > 0:
                first = pred[lv, first]
                lv -= 1
            if level >= 1:
                h = a[first]
                if ct[v, h] < half and load[h] - wt[first, h] + wt[v, h] <= cap[h]:
                    d = gv + ct[v, h] - cv
                    if d < best:
                        best, best_level, best_v, best_target = d, level, v, h
            for h in range(m):
                if ct[v, h] >= half or load[h] + wt[v, h] > cap[h]:
                    continue
                d = gv + ct[v, h] - cv
                if d >= best or _on_path(pred, level, v, a, h):
                    continue
                best, best_level, best_v, best_target = d, level, v, h
            if level + 1 >= depth:
                continue
            # extend: v goes to the agent of w in w's place
            for w in range(n):
                h = a[w]
                cvh = ct[v, h]
                if cvh >= half:
                    continue
                d = gv + cvh - cv
                if d >= 0 or d >= g[level + 1, w]:
                    continue
                if load[h] - wt[w, h] + wt[v, h] > cap[h]:
                    continue
                if _on_path(pred, level, v, a, h):
                    continue
                g[level + 1, w] = d
                pred[level + 1, w] = v
    if best_level < 0:
        return 0, 0
    count = best_level + 1
    v = best_v
    target = best_target
    for k in range(count - 1, -1, -1):
        jobs[k] = v
        to[k] = target
        target = a[v]
        v = pred[k, v]
    return best, count


@njit(cache=True, nogil=True)
def exchange_descent(ct: IntArray, wt: IntArray, cap: IntArray, a: IntArray, load: IntArray,
                     cost: int, depth: int, max_moves: int) -> int:  # pragma: no cover
    """Make the best exchange found until none improves (or `max_moves`); `a` and `load`
    change in place; returns the new cost."""
    jobs = np.empty(depth, dtype=np.int64)
    to = np.empty(depth, dtype=np.int64)
    for _ in range(max_moves):
        d, count = best_exchange(ct, wt, cap, a, load, depth, jobs, to)
        if count == 0:
            break
        for k in range(count):
            j = jobs[k]
            old = a[j]
            load[old] -= wt[j, old]
            load[to[k]] += wt[j, to[k]]
            a[j] = to[k]
        cost += d
    return cost


def exchange_arrays(problem: AllocationProblem) -> tuple[IntArray, IntArray, IntArray]:
    """Jobs × agents cost (`FORBIDDEN` where not allowed) and use, and the capacities, as
    `exchange_descent` takes them."""
    allowed_t = np.ascontiguousarray(problem.allowed.T)
    ct = np.where(allowed_t, problem.cost.T, FORBIDDEN).astype(np.int64)
    wt = np.where(allowed_t, problem.weight.T, 0).astype(np.int64)
    return ct, wt, problem.capacity.astype(np.int64).copy()


def exchange_polish(problem: AllocationProblem, assignment: IntArray,
                    depth: int = EXCHANGE_DEPTH, deadline: float = math.inf,
                    arrays: tuple[IntArray, IntArray, IntArray] | None = None) -> IntArray:
    """`assignment` (feasible) improved by cyclic and path exchanges until none is found or
    the clock passes `deadline` (looked at every `POLISH_CHUNK` moves)."""
    ct, wt, cap = exchange_arrays(problem) if arrays is None else arrays
    a = np.asarray(assignment, dtype=np.int64).copy()
    load = problem.load(a).astype(np.int64)
    cost = problem.objective(a)
    while time.monotonic() < deadline:
        after = exchange_descent(ct, wt, cap, a, load, cost, int(depth), POLISH_CHUNK)
        if after == cost:
            break
        cost = after
    return a


def warm_up() -> None:
    """Compile (or load from Numba's cache) the exchange kernels on a tiny instance, so that
    the first solve does not pay for it out of its time limit (`routing.batch` calls it on
    import)."""
    tiny = AllocationProblem(np.array([[5, 20, 1], [1, 5, 20], [20, 1, 5]]),
                             np.full((3, 3), 10), np.array([10, 10, 10]))
    exchange_polish(tiny, np.array([0, 1, 2]), 3)
