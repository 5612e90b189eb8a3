"""Compiled penalised tabu search of the batch allocator (Numba).

Shift and swap moves, capacity excess allowed but paid for with an adaptive weight per
agent (× 1.005 per move while the agent is over capacity, × 0.998 while it is not), in the
style of Yagiura, Ibaraki and Glover; tabu: a moved job may not go back to the agent it
left for a random tenure (3 to 10 moves at 200 jobs); aspiration for a new best feasible
assignment. Written as plain loops over incrementally kept agent loads, so one move costs
tens of microseconds where the numpy version it replaced made a few dozen numpy calls
(that one changed weights by × 1.02 / × 0.99 and had a tenure of 10 to 30; the new values
were tuned on types D and E at a fixed move budget). The search runs in slices of a fixed
number of moves; the random draws of a slice come from a generator seeded with (seed, slice
number), so the trajectory depends only on the seed, and the clock only decides where it is
cut off."""

from __future__ import annotations

import math
import time

import numpy as np
import numpy.typing as npt
from numba import njit

from silkroute.routing.gap import AllocationProblem

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]

#: cost of a forbidden (agent, job) pair: never chosen
FORBIDDEN = 1 << 40
#: adaptive weight change per move: agent over capacity / not
ALPHA_UP = 1.005
ALPHA_DOWN = 0.998
#: rows of the swap neighbourhood per move: jobs on agents over capacity, and random jobs
SWAP_HOT_ROWS = 24
SWAP_RANDOM_ROWS = 24
#: work (pair evaluations) per slice between two looks at the clock
SLICE_WORK = 4_000_000

# integer state: moves made, moves since the last new best, slices run, feasible visits
_IT, _SINCE, _SLICE, _FEAS = 0, 1, 2, 3


class TabuState:
    """Everything the compiled search keeps between slices."""

    def __init__(self, problem: AllocationProblem, start: IntArray, seed: int):
        m, n = problem.agents, problem.jobs
        allowed_t = np.ascontiguousarray(problem.allowed.T)
        self.ct = np.where(allowed_t, problem.cost.T, FORBIDDEN).astype(np.int64)
        self.wt = np.where(allowed_t, problem.weight.T, 0).astype(np.int64)
        self.c = np.ascontiguousarray(self.ct.T)
        self.w = np.ascontiguousarray(self.wt.T)
        self.cap = problem.capacity.astype(np.int64).copy()
        self.a = np.asarray(start, dtype=np.int64).copy()
        cols = np.arange(n)
        self.load = np.bincount(self.a, weights=self.wt[cols, self.a], minlength=m)\
            .astype(np.int64)
        self.best = self.a.copy()
        self.tabu = np.zeros((n, m), dtype=np.int64)  # tabu[j, i]: job j may not go to i
        spread = float(np.median(np.ptp(np.where(problem.allowed, problem.cost, 0), axis=0)))
        base = max(1.0, spread) / max(1.0, float(np.mean(problem.weight[problem.allowed])))
        base *= 10.0
        self.alpha = np.full(m, base)
        cost = int(self.ct[cols, self.a].sum())
        # int state: it, since_best, slice, feasible visits; cost state: now, best
        self.istate = np.zeros(4, dtype=np.int64)
        self.cstate = np.array([cost, cost], dtype=np.int64)
        if (self.load > self.cap).any():
            self.cstate[1] = np.iinfo(np.int64).max // 4
        tenure_lo = max(3, n // 100)
        tenure_hi = tenure_lo + max(7, n // 40)
        # params: alpha lo, alpha hi, up, down
        self.fparams = np.array([base * 1e-3, base * 1e3, ALPHA_UP, ALPHA_DOWN])
        # params: tenure lo, tenure hi, hot rows, random rows
        self.iparams = np.array([tenure_lo, tenure_hi, min(n, SWAP_HOT_ROWS),
                                 min(n, SWAP_RANDOM_ROWS)], dtype=np.int64)
        self.seed = int(seed)
        work = m * n + (SWAP_HOT_ROWS + SWAP_RANDOM_ROWS) * n
        self.slice_moves = int(max(20, min(5000, SLICE_WORK // max(1, work))))

    @property
    def best_cost(self) -> int:
        return int(self.cstate[1])

    @property
    def moves(self) -> int:
        return int(self.istate[_IT])


def compiled_tabu_search(
    problem: AllocationProblem,
    start: IntArray,
    deadline: float,
    seed: int = 0,
    stall_limit: int = 1 << 62,
    target: float = -math.inf,
    max_moves: int | None = None,
    stats: dict[str, float] | None = None,
) -> IntArray:
    """Penalised shift/swap tabu search, compiled. Returns the best feasible assignment met
    (the start if none is better, even an infeasible start: the search repairs those).
    Stops at the deadline, after `max_moves` moves, after `stall_limit` moves without a new
    best, or on reaching `target`; for a seed and a move budget the answer is always the
    same."""
    state = TabuState(problem, start, seed)
    if problem.agents < 2:
        return state.best
    tgt = int(math.ceil(target)) if math.isfinite(target) else -(1 << 62)
    budget = (1 << 62) if max_moves is None else int(max_moves)
    while True:
        if time.monotonic() >= deadline:
            break
        left = budget - state.moves
        if left <= 0:
            break
        status = tabu_slice(
            state.c, state.w, state.ct, state.wt, state.cap, state.a, state.load, state.alpha,
            state.tabu, state.best, state.istate, state.cstate, state.fparams, state.iparams,
            min(left, state.slice_moves), int(stall_limit), tgt, state.seed,
        )
        if status != 0:
            break
    if stats is not None:
        stats["iterations"] = state.moves
        stats["best_cost"] = state.best_cost
        stats["feasible"] = int(state.istate[_FEAS])
    return state.best.copy()


@njit(cache=True, nogil=True)
def tabu_slice(c: IntArray, w: IntArray, ct: IntArray, wt: IntArray, cap: IntArray,
               a: IntArray, load: IntArray, alpha: FloatArray, tabu: IntArray, best: IntArray,
               istate: IntArray, cstate: IntArray, fparams: FloatArray, iparams: IntArray,
               moves: int, stall_limit: int, target: int, seed: int) -> int:  # pragma: no cover
    """Up to `moves` moves of the penalised tabu search; 0 when they were all made, 1 on
    stalling, 2 on reaching `target`. `c`, `w` are agent × job, `ct`, `wt` (the same,
    transposed) and `tabu` job × agent."""
    n, m = ct.shape
    np.random.seed((seed * 1_000_003 + istate[_SLICE]) % 4294967296)
    istate[_SLICE] += 1
    lo_alpha, hi_alpha, up, down = fparams[0], fparams[1], fparams[2], fparams[3]
    tenure_lo, tenure_hi = iparams[0], iparams[1]
    hot_rows, rand_rows = iparams[2], iparams[3]
    half = FORBIDDEN // 2
    over = np.empty(m, dtype=np.int64)
    rows = np.empty(hot_rows + max(rand_rows, n), dtype=np.int64)
    hot = np.empty(n, dtype=np.int64)
    cur = np.empty(n, dtype=np.int64)
    own = np.empty(n, dtype=np.int64)
    it = istate[_IT]
    since_best = istate[_SINCE]
    cost_now = cstate[0]
    best_cost = cstate[1]
    status = 0
    for _ in range(moves):
        if since_best >= stall_limit:
            status = 1
            break
        if best_cost <= target:
            status = 2
            break
        it += 1
        total_over = 0
        for i in range(m):
            e = load[i] - cap[i]
            over[i] = e if e > 0 else 0
            total_over += over[i]
        feasible_now = total_over == 0
        best_val = math.inf
        kind = -1
        bx = -1
        by = -1
        # shift: job j to agent i
        off = np.random.randint(0, n)
        for jj in range(n):
            j = jj + off
            if j >= n:
                j -= n
            aj = a[j]
            cj = ct[j, aj]
            ex_out = load[aj] - cap[aj]
            rest = ex_out - wt[j, aj]
            d_out = alpha[aj] * ((rest if rest > 0 else 0) - over[aj])
            for i in range(m):
                if i == aj:
                    continue
                cij = ct[j, i]
                if cij >= half:
                    continue
                ex_in = load[i] - cap[i] + wt[j, i]
                d_in = (ex_in if ex_in > 0 else 0) - over[i]
                dc = cij - cj
                val = dc + alpha[i] * d_in + d_out
                if val >= best_val:
                    continue
                if tabu[j, i] > it and not (feasible_now and d_in <= 0
                                            and cost_now + dc < best_cost):
                    continue
                best_val = val
                kind = 0
                bx = j
                by = i
        # swap: job r goes to a[y], job y goes to a[r]; rows r: every job on small
        # instances, else jobs on agents over capacity (from a random place) and random jobs
        nr = 0
        if rand_rows >= n:
            for j in range(n):
                rows[j] = j
            nr = n
        else:
            nh = 0
            for j in range(n):
                if over[a[j]] > 0:
                    hot[nh] = j
                    nh += 1
            if nh > 0:
                first = np.random.randint(0, nh)
                for k in range(min(nh, hot_rows)):
                    p = first + k
                    if p >= nh:
                        p -= nh
                    rows[nr] = hot[p]
                    nr += 1
            for _k in range(rand_rows):
                rows[nr] = np.random.randint(0, n)
                nr += 1
        for y in range(n):
            cur[y] = ct[y, a[y]]
            own[y] = wt[y, a[y]]
        for x in range(nr):
            r = rows[x]
            ar = a[r]
            cr = cur[r]
            base_r = load[ar] - cap[ar] - own[r]
            over_r = over[ar]
            for y in range(n):
                ay = a[y]
                if ay == ar:
                    continue
                c_r_at_y = ct[r, ay]
                c_y_at_r = c[ar, y]
                if c_r_at_y >= half or c_y_at_r >= half:
                    continue
                e_r = base_r + w[ar, y]
                p_r = (e_r if e_r > 0 else 0) - over_r
                e_y = load[ay] - cap[ay] - own[y] + wt[r, ay]
                p_y = (e_y if e_y > 0 else 0) - over[ay]
                dc2 = c_r_at_y + c_y_at_r - cr - cur[y]
                val = dc2 + alpha[ar] * p_r + alpha[ay] * p_y
                if val >= best_val:
                    continue
                if (tabu[r, ay] > it or tabu[y, ar] > it) and not (
                        feasible_now and p_r <= 0 and p_y <= 0 and cost_now + dc2 < best_cost):
                    continue
                best_val = val
                kind = 1
                bx = r
                by = y
        if kind < 0:
            tabu[:, :] = 0
            continue
        tenure = it + np.random.randint(tenure_lo, tenure_hi + 1)
        if kind == 0:
            j = bx
            i = by
            old = a[j]
            load[old] -= wt[j, old]
            load[i] += wt[j, i]
            cost_now += ct[j, i] - ct[j, old]
            a[j] = i
            tabu[j, old] = tenure
        else:
            r = bx
            y = by
            ar = a[r]
            ay = a[y]
            load[ar] += wt[y, ar] - wt[r, ar]
            load[ay] += wt[r, ay] - wt[y, ay]
            cost_now += ct[r, ay] + ct[y, ar] - ct[r, ar] - ct[y, ay]
            a[r] = ay
            a[y] = ar
            tabu[r, ar] = tenure
            tabu[y, ay] = tenure
        since_best += 1
        any_over = False
        for i in range(m):
            if load[i] > cap[i]:
                any_over = True
                v = alpha[i] * up
                alpha[i] = v if v < hi_alpha else hi_alpha
            else:
                v = alpha[i] * down
                alpha[i] = v if v > lo_alpha else lo_alpha
        if not any_over:
            istate[_FEAS] += 1
            if cost_now < best_cost:
                best_cost = cost_now
                since_best = 0
                for j in range(n):
                    best[j] = a[j]
    istate[_IT] = it
    istate[_SINCE] = since_best
    cstate[0] = cost_now
    cstate[1] = best_cost
    return status


def warm_up() -> None:
    """Compile (or load from Numba's on-disk cache) the kernel on a tiny instance, so that
    the first solve does not pay the compilation (3–6 s once per install, about 0.3 s to
    load afterwards) out of its time limit. `routing.batch` calls it on import."""
    tiny = AllocationProblem(np.array([[1, 2, 3], [3, 2, 1]]), np.ones((2, 3), dtype=np.int64),
                             np.array([2, 2]))
    compiled_tabu_search(tiny, np.array([0, 0, 1]), math.inf, max_moves=3)
