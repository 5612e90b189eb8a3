"""Compiled penalised tabu search of the batch allocator (Numba).

Shift, swap and ejection-chain moves in the style of Yagiura, Ibaraki and Glover ("An
ejection chain approach for the generalized assignment problem", INFORMS J. Computing 2004):
capacity excess is allowed but paid for with an adaptive weight per agent (× 1.005 per move
while the agent is over capacity, × 0.998 while it is not), so a move is judged by
Σ cost + Σ_i α_i·max(0, load_i − cap_i). An ejection chain moves job j1 to the agent of j2
and pushes j2 on to a third agent (its best one not tabu, the excess it causes included);
with `CHAIN_DEPTH` > 2 the chain found is extended greedily (j2 ejects j3, and so on) and
its best prefix made. The chains start from a restricted candidate list, as the swaps do:
jobs on agents over capacity, the jobs with the best shifts, and a few random jobs; the
second job is any job of another agent, so a move costs O(candidates × n + m × n).
Tabu: a moved job may not go back to the agent it left for a random tenure (3 to 10 moves
at 200 jobs); aspiration for a new best feasible assignment. Written as plain loops over
incrementally kept agent loads (tens of microseconds a move). The search runs in slices of
a fixed number of moves; the random draws of a slice come from a generator seeded with
(seed, slice number), so the trajectory depends only on the seed, and the clock only
decides where it is cut off."""

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
#: rows (first jobs) of the swap and ejection-chain neighbourhoods per move: jobs on agents
#: over capacity, the jobs with the best shifts, and random jobs
SWAP_HOT_ROWS = 24
SWAP_GOOD_ROWS = 8
SWAP_RANDOM_ROWS = 24
#: the ejection-chain move (a job goes to another agent and pushes one of its jobs on to a
#: third agent) on or off
EJECTION_CHAINS = True
#: an ejection chain found among the pairs is extended greedily (the last job pushed ejects
#: one of its new agent's jobs, and so on) up to this many jobs; the best prefix is made
CHAIN_DEPTH = 2
#: tabu tenure: a random number of moves from max(this, n / 100) on, over a range of
#: max(TENURE_SPAN, n / 40)
TENURE_MIN = 3
TENURE_SPAN = 7
#: work (pair evaluations) per slice between two looks at the clock
SLICE_WORK = 4_000_000

# integer state: moves made, moves since the last new best, slices run, feasible visits,
# shift, swap and ejection-chain moves made
_IT, _SINCE, _SLICE, _FEAS, _N_SHIFT, _N_SWAP, _N_CHAIN = range(7)
# integer parameters: tenure range, candidate rows (hot, random, good), neighbourhoods on/off
# and the longest ejection chain (jobs moved)
_P_TENURE_LO, _P_TENURE_HI, _P_HOT, _P_RANDOM, _P_GOOD, _P_SHIFT, _P_SWAP, _P_CHAIN, \
    _P_DEPTH = range(9)
# the last move: kind, first job, second job (or target agent of a shift), third agent, delta,
# jobs moved
_K_KIND, _K_X, _K_Y, _K_Z, _K_DELTA, _K_LEN = range(6)


class TabuState:
    """Everything the compiled search keeps between slices."""

    def __init__(self, problem: AllocationProblem, start: IntArray, seed: int,
                 shift: bool = True, swap: bool = True, chain: bool | None = None,
                 depth: int | None = None):
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
        # int state: it, since_best, slice, feasible visits, moves of each kind; cost state:
        # now, best
        self.istate = np.zeros(7, dtype=np.int64)
        self.cstate = np.array([cost, cost], dtype=np.int64)
        if (self.load > self.cap).any():
            self.cstate[1] = np.iinfo(np.int64).max // 4
        tenure_lo = max(TENURE_MIN, n // 100)
        tenure_hi = tenure_lo + max(TENURE_SPAN, n // 40)
        # params: alpha lo, alpha hi, up, down
        self.fparams = np.array([base * 1e-3, base * 1e3, ALPHA_UP, ALPHA_DOWN])
        self.iparams = np.zeros(9, dtype=np.int64)
        self.iparams[_P_DEPTH] = max(2, min(n, CHAIN_DEPTH if depth is None else depth))
        self.iparams[[_P_TENURE_LO, _P_TENURE_HI, _P_HOT, _P_RANDOM, _P_GOOD]] = [
            tenure_lo, tenure_hi, min(n, SWAP_HOT_ROWS), min(n, SWAP_RANDOM_ROWS),
            min(n, SWAP_GOOD_ROWS)]
        chain = EJECTION_CHAINS if chain is None else chain
        self.iparams[[_P_SHIFT, _P_SWAP, _P_CHAIN]] = [shift, swap, chain]
        self.last = np.full(6, -1.0)
        self.seed = int(seed)
        work = m * n + (SWAP_HOT_ROWS + SWAP_GOOD_ROWS + SWAP_RANDOM_ROWS) * n
        self.slice_moves = int(max(20, min(5000, SLICE_WORK // max(1, work))))

    def step(self, moves: int, stall_limit: int = 1 << 62, target: int = -(1 << 62)) -> int:
        """Up to `moves` moves (a slice); 0 if all were made, 1 on stalling, 2 on reaching
        `target`. `last` then describes the last move."""
        return int(tabu_slice(
            self.c, self.w, self.ct, self.wt, self.cap, self.a, self.load, self.alpha,
            self.tabu, self.best, self.istate, self.cstate, self.fparams, self.iparams,
            self.last, int(moves), int(stall_limit), int(target), self.seed,
        ))

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
    chain: bool | None = None,
    depth: int | None = None,
) -> IntArray:
    """Penalised shift, swap and ejection-chain tabu search, compiled (`chain`, `depth`:
    override `EJECTION_CHAINS` and `CHAIN_DEPTH`). Returns the best feasible assignment met
    (the start if none is better, even an infeasible start: the search repairs those).
    Stops at the deadline, after `max_moves` moves, after `stall_limit` moves without a new
    best, or on reaching `target`; for a seed and a move budget the answer is always the
    same."""
    state = TabuState(problem, start, seed, chain=chain, depth=depth)
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
        status = state.step(min(left, state.slice_moves), stall_limit, tgt)
        if status != 0:
            break
    if stats is not None:
        stats["iterations"] = state.moves
        stats["best_cost"] = state.best_cost
        stats["feasible"] = int(state.istate[_FEAS])
        stats["shifts"] = int(state.istate[_N_SHIFT])
        stats["swaps"] = int(state.istate[_N_SWAP])
        stats["chains"] = int(state.istate[_N_CHAIN])
    return state.best.copy()


@njit(cache=True, nogil=True)
def tabu_slice(c: IntArray, w: IntArray, ct: IntArray, wt: IntArray, cap: IntArray,
               a: IntArray, load: IntArray, alpha: FloatArray, tabu: IntArray, best: IntArray,
               istate: IntArray, cstate: IntArray, fparams: FloatArray, iparams: IntArray,
               last: FloatArray, moves: int, stall_limit: int, target: int,
               seed: int) -> int:  # pragma: no cover
    """Up to `moves` moves of the penalised tabu search; 0 when they were all made, 1 on
    stalling, 2 on reaching `target`. `c`, `w` are agent × job, `ct`, `wt` (the same,
    transposed) and `tabu` job × agent. `last` gets the last move: kind (0 shift, 1 swap,
    2 ejection chain), its jobs and agents (see `_K_*`) and its change of the penalised
    objective (with the weights before the move)."""
    n, m = ct.shape
    np.random.seed((seed * 1_000_003 + istate[_SLICE]) % 4294967296)
    istate[_SLICE] += 1
    lo_alpha, hi_alpha, up, down = fparams[0], fparams[1], fparams[2], fparams[3]
    tenure_lo, tenure_hi = iparams[_P_TENURE_LO], iparams[_P_TENURE_HI]
    hot_rows, rand_rows = iparams[_P_HOT], iparams[_P_RANDOM]
    good_rows = iparams[_P_GOOD]
    use_shift = iparams[_P_SHIFT] != 0
    use_swap = iparams[_P_SWAP] != 0
    use_chain = iparams[_P_CHAIN] != 0
    depth = iparams[_P_DEPTH]
    half = FORBIDDEN // 2
    dload = np.zeros(m, dtype=np.int64)
    moved = np.zeros(n, dtype=np.bool_)
    chain_job = np.empty(depth, dtype=np.int64)
    chain_to = np.empty(depth, dtype=np.int64)
    over = np.empty(m, dtype=np.int64)
    rows = np.empty(hot_rows + good_rows + max(rand_rows, n), dtype=np.int64)
    hot = np.empty(n, dtype=np.int64)
    cur = np.empty(n, dtype=np.int64)
    own = np.empty(n, dtype=np.int64)
    # per job: its best shift (for the candidate list), and its best and second best agent
    # to be pushed to (not tabu), with the penalised cost of getting there and whether it fits
    shift_best = np.empty(n)
    ins1_agent = np.empty(n, dtype=np.int64)
    ins2_agent = np.empty(n, dtype=np.int64)
    ins1_val = np.empty(n)
    ins2_val = np.empty(n)
    ins1_fit = np.empty(n, dtype=np.bool_)
    ins2_fit = np.empty(n, dtype=np.bool_)
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
        bz = -1
        # shift: job j to agent i; on the way, each job's best places to be pushed to
        off = np.random.randint(0, n)
        for jj in range(n):
            j = jj + off
            if j >= n:
                j -= n
            aj = a[j]
            cj = ct[j, aj]
            cur[j] = cj
            own[j] = wt[j, aj]
            ex_out = load[aj] - cap[aj]
            rest = ex_out - wt[j, aj]
            d_out = alpha[aj] * ((rest if rest > 0 else 0) - over[aj])
            sb = math.inf
            b1 = -1
            b2 = -1
            v1 = math.inf
            v2 = math.inf
            f1 = False
            f2 = False
            for i in range(m):
                if i == aj:
                    continue
                cij = ct[j, i]
                if cij >= half:
                    continue
                ex_in = load[i] - cap[i] + wt[j, i]
                d_in = (ex_in if ex_in > 0 else 0) - over[i]
                push = cij + alpha[i] * d_in
                val = push - cj + d_out
                if val < sb:
                    sb = val
                is_tabu = tabu[j, i] > it
                if not is_tabu:
                    if push < v1:
                        b2, v2, f2 = b1, v1, f1
                        b1, v1, f1 = i, push, ex_in <= 0
                    elif push < v2:
                        b2, v2, f2 = i, push, ex_in <= 0
                if not use_shift or val >= best_val:
                    continue
                if is_tabu and not (feasible_now and d_in <= 0
                                    and cost_now + cij - cj < best_cost):
                    continue
                best_val = val
                kind = 0
                bx = j
                by = i
            shift_best[j] = sb
            ins1_agent[j] = b1
            ins2_agent[j] = b2
            ins1_val[j] = v1
            ins2_val[j] = v2
            ins1_fit[j] = f1
            ins2_fit[j] = f2
        # swap (r goes to a[y], y to a[r]) and ejection chain (r goes to a[y] and pushes y
        # on to its best other agent, not a[r]); rows r: every job on small instances, else
        # jobs on agents over capacity (from a random place), the jobs with the best shifts,
        # and random jobs
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
            if good_rows > 0:
                order = np.argsort(shift_best)
                for k in range(min(n, good_rows)):
                    rows[nr] = order[k]
                    nr += 1
            for _k in range(rand_rows):
                rows[nr] = np.random.randint(0, n)
                nr += 1
        if use_swap or use_chain:
            for x in range(nr):
                r = rows[x]
                ar = a[r]
                cr = cur[r]
                base_r = load[ar] - cap[ar] - own[r]
                over_r = over[ar]
                p_leave = (base_r if base_r > 0 else 0) - over_r
                leave = alpha[ar] * p_leave
                for y in range(n):
                    ay = a[y]
                    if ay == ar:
                        continue
                    c_r_at_y = ct[r, ay]
                    if c_r_at_y >= half:
                        continue
                    e_y = load[ay] - cap[ay] - own[y] + wt[r, ay]
                    p_y = (e_y if e_y > 0 else 0) - over[ay]
                    pen_y = alpha[ay] * p_y
                    r_tabu = tabu[r, ay] > it
                    if use_swap:
                        c_y_at_r = c[ar, y]
                        if c_y_at_r < half:
                            e_r = base_r + w[ar, y]
                            p_r = (e_r if e_r > 0 else 0) - over_r
                            dc2 = c_r_at_y + c_y_at_r - cr - cur[y]
                            val = dc2 + alpha[ar] * p_r + pen_y
                            if val < best_val and (
                                    not (r_tabu or tabu[y, ar] > it) or (
                                        feasible_now and p_r <= 0 and p_y <= 0
                                        and cost_now + dc2 < best_cost)):
                                best_val = val
                                kind = 1
                                bx = r
                                by = y
                    if use_chain:
                        k = ins1_agent[y]
                        v = ins1_val[y]
                        fit = ins1_fit[y]
                        if k == ar:
                            k = ins2_agent[y]
                            v = ins2_val[y]
                            fit = ins2_fit[y]
                        if k < 0:
                            continue
                        val = c_r_at_y - cr - cur[y] + leave + pen_y + v
                        if val >= best_val:
                            continue
                        dc3 = c_r_at_y - cr - cur[y] + ct[y, k]
                        if r_tabu and not (feasible_now and p_y <= 0 and fit
                                           and cost_now + dc3 < best_cost):
                            continue
                        best_val = val
                        kind = 2
                        bx = r
                        by = y
                        bz = k
        if kind < 0:
            tabu[:, :] = 0
            continue
        length = 1 if kind == 0 else 2
        if kind == 2 and depth > 2:
            # greedy extension: the job last pushed (to agent src) ejects one of src's jobs
            # to any other agent, evaluated exactly with the chain's pending load changes
            chain_job[0] = bx
            chain_to[0] = a[by]
            chain_job[1] = by
            chain_to[1] = bz
            moved[bx] = True
            moved[by] = True
            dload[a[bx]] -= wt[bx, a[bx]]
            dload[a[by]] += wt[bx, a[by]] - wt[by, a[by]]
            dload[bz] += wt[by, bz]
            val_now = best_val
            best_len = 2
            level = 2
            while level < depth:
                src = chain_to[level - 1]
                base_src = load[src] + dload[src] - cap[src]
                pen_src = base_src if base_src > 0 else 0
                ext_val = math.inf
                ez = -1
                ei = -1
                for z in range(n):
                    if a[z] != src or moved[z]:
                        continue
                    e_src = base_src - wt[z, src]
                    d_src = alpha[src] * ((e_src if e_src > 0 else 0) - pen_src)
                    cz = ct[z, src]
                    for i in range(m):
                        if i == src or tabu[z, i] > it:
                            continue
                        ciz = ct[z, i]
                        if ciz >= half:
                            continue
                        e_i = load[i] + dload[i] - cap[i]
                        e_in = e_i + wt[z, i]
                        v = val_now + ciz - cz + d_src + alpha[i] * (
                            (e_in if e_in > 0 else 0) - (e_i if e_i > 0 else 0))
                        if v < ext_val:
                            ext_val = v
                            ez = z
                            ei = i
                if ez < 0:
                    break
                chain_job[level] = ez
                chain_to[level] = ei
                moved[ez] = True
                dload[src] -= wt[ez, src]
                dload[ei] += wt[ez, ei]
                val_now = ext_val
                level += 1
                if val_now < best_val - 1e-9:
                    best_val = val_now
                    best_len = level
            for k in range(level):
                moved[chain_job[k]] = False
            for i in range(m):
                dload[i] = 0
            length = best_len
        last[_K_KIND] = kind
        last[_K_LEN] = length
        istate[_N_SHIFT + kind] += 1
        last[_K_X] = bx
        last[_K_Y] = by
        last[_K_Z] = bz
        last[_K_DELTA] = best_val
        tenure = it + np.random.randint(tenure_lo, tenure_hi + 1)
        # every move is a sequence of shifts (job chain_job[x] to agent chain_to[x], in
        # order): a shift is one, a swap is r to a[y] then y to a[r], a chain its links
        if kind == 0:
            chain_job[0] = bx
            chain_to[0] = by
        elif kind == 1:
            chain_job[0] = bx
            chain_to[0] = a[by]
            chain_job[1] = by
            chain_to[1] = a[bx]
        elif length == 2:
            chain_job[0] = bx
            chain_to[0] = a[by]
            chain_job[1] = by
            chain_to[1] = bz
        for x in range(length):
            j = chain_job[x]
            i = chain_to[x]
            old = a[j]
            load[old] -= wt[j, old]
            load[i] += wt[j, i]
            cost_now += ct[j, i] - ct[j, old]
            a[j] = i
            tabu[j, old] = tenure
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
