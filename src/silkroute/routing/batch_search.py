"""Heuristics of the batch allocator: regret construction and shift/swap local search."""

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


def penalty_tabu_search(
    problem: AllocationProblem,
    start: IntArray,
    deadline: float,
    rng: np.random.Generator,
    stall_limit: int = 4000,
    target: float = -np.inf,
    stats: dict[str, float] | None = None,
) -> IntArray:
    """Tabu search over shift and swap moves in which capacity excess is allowed but paid for
    with a weight per agent that adapts (raised while the agent is over capacity, lowered while
    it is not), in the style of Yagiura, Ibaraki and Glover. Every move is evaluated at once
    with numpy over the agent × job (shift) and job × job (swap) matrices. Returns the best
    feasible assignment met (the start if none is better). Stops at the deadline, after
    `stall_limit` moves without a new best, or on reaching `target`."""
    m, n = problem.agents, problem.jobs
    big = 1e15
    c = np.where(problem.allowed, problem.cost, big).astype(np.float64)
    w = np.where(problem.allowed, problem.weight, 0).astype(np.float64)
    cap = problem.capacity.astype(np.float64)
    cols = np.arange(n)
    a = start.astype(np.int64).copy()
    load = np.bincount(a, weights=w[a, cols], minlength=m)
    best = a.copy()
    best_cost = float(c[a, cols].sum())
    if m < 2:
        return best
    # penalty per unit of excess: about the cost spread per unit of weight
    spread = float(np.median(np.ptp(np.where(problem.allowed, problem.cost, 0), axis=0)))
    base = max(1.0, spread) / max(1.0, float(np.mean(w[problem.allowed])))
    base *= 10.0
    up, down = 1.02, 0.99  # weight change per move: agent over capacity / not
    alpha = np.full(m, base)
    lo_alpha, hi_alpha = base * 1e-3, base * 1e3
    tabu = np.zeros((m, n), dtype=np.int64)  # tabu[i, j]: job j may not go to i before then
    tenure_lo = max(3, n // 20)
    tenure_hi = tenure_lo + max(3, n // 10)
    do_swap = True
    swap_rows = min(n, 24)
    it = 0
    since_best = 0
    check_every = 4
    while True:
        it += 1
        if it % check_every == 0 and time.monotonic() >= deadline:
            break
        if since_best >= stall_limit or best_cost <= target:
            break
        excess = load - cap
        over = np.maximum(excess, 0.0)
        total_over = float(over.sum())
        feasible_now = total_over <= 0.0
        cur = c[a, cols]
        own_w = w[a, cols]
        cost_now = float(cur.sum())
        # shift: job j from a[j] to agent i (forbidden pairs cost `big`, never chosen)
        d_over_out = np.maximum(excess[a] - own_w, 0.0) - over[a]
        d_over_in = np.maximum(w + excess[:, None], 0.0) - over[:, None]
        dc = c - cur
        shift = dc + alpha[:, None] * d_over_in + alpha[a] * d_over_out
        shift[a, cols] = np.inf
        is_tabu = tabu > it
        shift_free = np.where(is_tabu, np.inf, shift)
        k = int(np.argmin(shift_free))
        best_move = float(shift_free.flat[k])
        if feasible_now:
            # aspiration: a tabu shift that gives a new best feasible assignment
            gain = np.where(is_tabu & (d_over_in <= 0.0), dc, np.inf)
            k_a = int(np.argmin(gain))
            if cost_now + float(gain.flat[k_a]) < best_cost - 0.5 and shift.flat[k_a] < best_move:
                k, best_move = k_a, float(shift.flat[k_a])
        move: tuple[int, int, int] | None = None  # (kind, x, y)
        if np.isfinite(best_move) and best_move < big / 2:
            move = (0, k // n, k % n)
        if do_swap:
            # rows: jobs on agents over capacity plus a random sample; columns: every job
            hot = np.flatnonzero(over[a] > 0)
            if hot.size > swap_rows:
                hot = np.roll(hot, int(rng.integers(hot.size)))[:swap_rows]
            rows = np.concatenate([hot, rng.integers(0, n, size=swap_rows)])
            ar = a[rows]
            # job r = rows[x] goes to a[y] and job y goes to a[r]
            ca_r = c[ar]  # ca_r[x, y]: cost of job y at the agent of job rows[x]
            ca_t = c[:, rows][a]  # ca_t[y, x]: cost of job rows[x] at the agent of job y
            p_r = np.maximum(w[ar] + (excess[ar] - own_w[rows])[:, None], 0.0) \
                - over[ar][:, None]
            p_y = np.maximum(w[:, rows][a] + (excess[a] - own_w)[:, None], 0.0) \
                - over[a][:, None]
            dc2 = ca_r + ca_t.T - cur[rows][:, None] - cur[None, :]
            swap = dc2 + alpha[ar][:, None] * p_r + (alpha[a][:, None] * p_y).T
            # tabu: job r may not go to a[y], job y may not go to a[r]
            s_tabu = (it < tabu[:, rows][a].T) | (tabu[ar] > it)
            if feasible_now:
                s_aspire = (p_r <= 0.0) & (p_y.T <= 0.0) & (cost_now + dc2 < best_cost - 0.5)
                s_tabu &= ~s_aspire
            swap = np.where(s_tabu | (ar[:, None] == a[None, :]), np.inf, swap)
            k2 = int(np.argmin(swap))
            v2 = float(swap.flat[k2])
            if v2 < best_move and v2 < big / 2:
                best_move = v2
                move = (1, int(rows[k2 // n]), k2 % n)
        if move is None:
            tabu[:] = 0
            continue
        kind, x, y = move
        if kind == 0:
            i, j = x, y
            old = int(a[j])
            load[old] -= w[old, j]
            load[i] += w[i, j]
            a[j] = i
            tabu[old, j] = it + int(rng.integers(tenure_lo, tenure_hi + 1))
        else:
            j, q = x, y
            p_agent, q_agent = int(a[j]), int(a[q])
            load[p_agent] += w[p_agent, q] - w[p_agent, j]
            load[q_agent] += w[q_agent, j] - w[q_agent, q]
            a[j], a[q] = q_agent, p_agent
            t = it + int(rng.integers(tenure_lo, tenure_hi + 1))
            tabu[p_agent, j] = t
            tabu[q_agent, q] = t
        over = np.maximum(load - cap, 0.0)
        since_best += 1
        if not over.any():
            if stats is not None:
                stats["feasible"] = stats.get("feasible", 0) + 1
            cost = float(c[a, cols].sum())
            if cost < best_cost - 0.5:
                best, best_cost, since_best = a.copy(), cost, 0
            alpha = np.maximum(alpha * down, lo_alpha)
        else:
            alpha = np.where(over > 0, np.minimum(alpha * up, hi_alpha),
                             np.maximum(alpha * down, lo_alpha))
    if stats is not None:
        stats["iterations"] = it
        stats["best_cost"] = best_cost
    return best
