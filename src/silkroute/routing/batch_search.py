"""Heuristics of the batch allocator: regret construction and shift/swap local search (the tabu
search is compiled: `gap_kernels`)."""

from __future__ import annotations

import time

import numpy as np
import numpy.typing as npt

from silkroute.routing.gap import AllocationProblem

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


def regret_construction(
    problem: AllocationProblem, price: FloatArray, deadline: float
) -> IntArray | None:
    """Assign jobs one at a time, the job with the largest regret (second-best minus best
    priced cost among agents that still fit it) first. None if it gets stuck or out of time."""
    m, n = problem.agents, problem.jobs
    priced = problem.cost.astype(np.float64) + price[:, None] * problem.weight
    priced[~problem.allowed] = np.inf
    weight = problem.weight
    residual = problem.capacity.astype(np.int64).copy()
    assignment = np.full(n, -1, dtype=np.int64)
    open_jobs = np.ones(n, dtype=np.bool_)
    cols = np.arange(n)
    for _ in range(n):
        if time.monotonic() >= deadline:
            return None
        fits = weight <= residual[:, None]
        c = np.where(fits, priced, np.inf)
        if m >= 2:
            two = np.partition(c, 1, axis=0)[:2]
            best, second = two[0], two[1]
        else:
            best = c[0]
            second = np.full(n, np.inf)
        with np.errstate(invalid="ignore"):
            regret = np.where(np.isfinite(second), second - best, 1e18)
        regret[~np.isfinite(best)] = 2e18  # stuck jobs first: they fail fast
        regret[~open_jobs] = -1.0
        j = int(np.argmax(regret))
        if not np.isfinite(best[j]):
            return None
        i = int(np.argmin(c[:, j]))
        assignment[j] = i
        residual[i] -= weight[i, j]
        open_jobs[j] = False
    del cols
    return assignment


def local_search(
    problem: AllocationProblem, assignment: IntArray, deadline: float, max_rounds: int = 10_000
) -> IntArray:
    """Best-improvement shift and swap moves until none improves (or time runs out)."""
    n = problem.jobs
    cost = np.where(problem.allowed, problem.cost, np.iinfo(np.int64).max // 4)
    weight = problem.weight
    cap = problem.capacity
    a = assignment.copy()
    cols = np.arange(n)
    load = problem.load(a)
    swap_ok = n <= 2000
    for _ in range(max_rounds):
        if time.monotonic() >= deadline:
            break
        current = cost[a, cols]
        # shift: job j to agent i
        shift_delta = cost - current[None, :]
        fits = (load[:, None] + weight) <= cap[:, None]
        fits[a, cols] = False
        shift_delta = np.where(fits & problem.allowed, shift_delta, 0)
        k = int(np.argmin(shift_delta))
        best_shift = int(shift_delta.flat[k])
        if best_shift < 0:
            i, j = divmod(k, n)
            load[a[j]] -= weight[a[j], j]
            load[i] += weight[i, j]
            a[j] = i
            continue
        if not swap_ok:
            break
        # swap: jobs p and q exchange agents
        ca = cost[a[:, None], cols[None, :]]  # ca[p, q] = cost of job q at agent of p
        wa = weight[a[:, None], cols[None, :]]  # wa[p, q] = weight of job q at agent of p
        own_c = current
        own_w = wa[cols, cols]
        delta = ca.T + ca - own_c[:, None] - own_c[None, :]
        # agent of p after: loses p, gains q; agent of q after: loses q, gains p
        new_load_p = load[a][:, None] - own_w[:, None] + wa
        new_load_q = load[a][None, :] - own_w[None, :] + wa.T
        ok = (new_load_p <= cap[a][:, None]) & (new_load_q <= cap[a][None, :])
        ok &= a[:, None] != a[None, :]
        allowed_at = problem.allowed[a[:, None], cols[None, :]]
        ok &= allowed_at & allowed_at.T
        delta = np.where(ok, delta, 0)
        k = int(np.argmin(delta))
        if int(delta.flat[k]) >= 0:
            break
        p, q = divmod(k, n)
        ap, aq = int(a[p]), int(a[q])
        load[ap] += weight[ap, q] - weight[ap, p]
        load[aq] += weight[aq, p] - weight[aq, q]
        a[p], a[q] = aq, ap
    return a
