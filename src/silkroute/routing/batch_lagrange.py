"""The knapsack Lagrangian bound of the batch allocator, the variable fixing it allows and a
branch and bound on it.

Relaxing the assignment constraints (each job exactly once) with prices u_j leaves one 0-1
knapsack per agent: L(u) = Σ_j u_j − Σ_i max{Σ_j (u_j − c_ij) x_ij : Σ_j w_ij x_ij ≤ b_i}.
Unlike the capacity relaxation (which has the integrality property and so gives only the LP
bound), this bound is at least the LP bound at the LP's assignment duals and is raised above
it by subgradient steps. Each knapsack is solved exactly by dynamic programming over the
capacity (Numba). At the best prices, a forward and a backward table per agent give, for
every (agent, job), the bound with that job forced into or out of the agent's knapsack, so a
pair whose forced bound exceeds U − 1 (U the incumbent; costs are integers) is in no better
assignment: forced in → the pair is dropped; forced out → the job must go to that agent.
On chu1997 c10200 at U = 2807 it leaves 356 of the 716 pairs the LP's reduced costs leave
(of 2,000). `branch_and_bound` searches what is left, re-optimising the prices at each node.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from numba import njit

from silkroute.routing.gap import AllocationProblem

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

#: the bound is attempted only when the knapsack tables (Σ_i n × (b_i + 1) cells) are at most
#: this large (about 40 MB of float64 for the fixing tables)
MAX_CELLS = 5_000_000
#: subgradient: initial step factor, halved after this many iterations without a better bound
STEP = 1.0
STALL = 15
MIN_STEP = 1e-4
#: at most this many subgradient steps per bound (they converge in 200–700 at 200 jobs)
MAX_ITERATIONS = 3000
#: probing: steps and initial step factor from the root prices per forced pair
PROBE_ITERATIONS = 40
PROBE_STEP = 0.5
#: branch and bound: subgradient steps per node (from the parent's prices)
NODE_ITERATIONS = 20


@dataclass
class KnapsackBound:
    """The best Lagrangian bound found, its prices and the pairs it leaves (see `fix`)."""

    value: float  # −inf if not computed
    prices: FloatArray  # u_j at the best bound
    iterations: int
    forced_in: FloatArray  # m × n: the bound with job j forced onto agent i (inf if not allowed)
    forced_out: FloatArray  # m × n: the bound with job j kept off agent i
    knapsack: FloatArray  # per agent: its knapsack's best value at the prices


@njit(cache=True, nogil=True)
def _knapsack(profit: FloatArray, weight: IntArray, ok: npt.NDArray[np.bool_], cap: int,
              take: npt.NDArray[np.bool_], table: FloatArray,
              keep: npt.NDArray[np.bool_]) -> float:
    """Max Σ profit·x with Σ weight·x ≤ cap over the items where `ok` and profit > 0; the
    chosen items are set in `take` (cleared first). `table` (cap + 1) and `keep`
    (n × (cap + 1)) are scratch."""
    n = profit.shape[0]
    for c in range(cap + 1):
        table[c] = 0.0
    for j in range(n):
        take[j] = False
    last = -1
    for j in range(n):
        if not ok[j] or profit[j] <= 0.0 or weight[j] > cap:
            continue
        wj = weight[j]
        pj = profit[j]
        for c in range(cap + 1):
            keep[j, c] = False
        for c in range(cap, wj - 1, -1):
            v = table[c - wj] + pj
            if v > table[c]:
                table[c] = v
                keep[j, c] = True
        take[j] = True  # considered: cleared below unless chosen
        last = j
    c = cap
    for j in range(last, -1, -1):
        if take[j]:
            if keep[j, c]:
                c -= weight[j]
            else:
                take[j] = False
    return table[cap]


@njit(cache=True, nogil=True)
def _subgradient(cost: IntArray, weight: IntArray, allowed: npt.NDArray[np.bool_],
                 cap: IntArray, u: FloatArray, best_u: FloatArray, state: FloatArray,
                 upper: float, max_iter: int) -> int:
    """At most `max_iter` subgradient steps on L(u), Polyak steps towards `upper`. `u` (the
    current prices) and `best_u` (the prices of the best bound) are updated in place; `state`
    holds the best bound, the step factor and the iterations since the last better bound.
    Returns the iterations run; `state[3]` becomes 1 when the search is over (step vanished,
    the subgradient is 0, or the bound reached upper − 1)."""
    m, n = cost.shape
    bigcap = 0
    for i in range(m):
        if cap[i] > bigcap:
            bigcap = cap[i]
    table = np.empty(bigcap + 1)
    keep = np.zeros((n, bigcap + 1), dtype=np.bool_)
    take = np.zeros(n, dtype=np.bool_)
    profit = np.empty(n)
    count = np.zeros(n, dtype=np.int64)
    for it in range(max_iter):
        total = 0.0
        for j in range(n):
            total += u[j]
            count[j] = 0
        for i in range(m):
            for j in range(n):
                profit[j] = u[j] - cost[i, j]
            total -= _knapsack(profit, weight[i], allowed[i], cap[i], take, table, keep)
            for j in range(n):
                if take[j]:
                    count[j] += 1
        if total > state[0] + 1e-9:
            state[0] = total
            for j in range(n):
                best_u[j] = u[j]
            state[2] = 0.0
        else:
            state[2] += 1.0
            if state[2] >= STALL:
                state[1] *= 0.5
                state[2] = 0.0
        norm = 0.0
        for j in range(n):
            g = 1.0 - count[j]
            norm += g * g
        if norm == 0.0 or state[1] < MIN_STEP or state[0] >= upper - 1.0 + 1e-6:
            state[3] = 1.0
            return it + 1
        t = state[1] * max(upper - total, 1e-6) / norm
        for j in range(n):
            u[j] += t * (1.0 - count[j])
    return max_iter


@njit(cache=True, nogil=True)
def _forced(cost: IntArray, weight: IntArray, allowed: npt.NDArray[np.bool_], cap: IntArray,
            u: FloatArray, forced_in: FloatArray, forced_out: FloatArray,
            ks: FloatArray) -> float:
    """L(u), and in `forced_in[i, j]` / `forced_out[i, j]` the Lagrangian bound at u with job
    j forced into / kept out of agent i's knapsack (inf where not allowed or not fitting);
    each agent's knapsack value in `ks`. Forward and backward tables over the agent's allowed
    items only."""
    m, n = cost.shape
    total = 0.0
    for j in range(n):
        total += u[j]
    items = np.empty(n, dtype=np.int64)
    for i in range(m):
        b = cap[i]
        k = 0
        for j in range(n):
            if allowed[i, j] and weight[i, j] <= b:
                items[k] = j
                k += 1
        fw = np.zeros((k + 1, b + 1))
        bw = np.zeros((k + 2, b + 1))
        for t in range(k):
            j = items[t]
            p = u[j] - cost[i, j]
            wj = weight[i, j]
            for c in range(b + 1):
                fw[t + 1, c] = fw[t, c]
            for c in range(wj, b + 1):
                v = fw[t, c - wj] + p
                if v > fw[t + 1, c]:
                    fw[t + 1, c] = v
        for t in range(k - 1, -1, -1):
            j = items[t]
            p = u[j] - cost[i, j]
            wj = weight[i, j]
            for c in range(b + 1):
                bw[t + 1, c] = bw[t + 2, c]
            for c in range(wj, b + 1):
                v = bw[t + 2, c - wj] + p
                if v > bw[t + 1, c]:
                    bw[t + 1, c] = v
        best = fw[k, b]
        ks[i] = best
        total -= best
        for j in range(n):
            forced_in[i, j] = np.inf
            forced_out[i, j] = 0.0
        for t in range(k):
            j = items[t]
            wj = weight[i, j]
            best_out = -np.inf
            for c in range(b + 1):
                v = fw[t, c] + bw[t + 2, b - c]
                if v > best_out:
                    best_out = v
            forced_out[i, j] = best - best_out
            best_in = -np.inf
            for c in range(b - wj + 1):
                v = fw[t, c] + bw[t + 2, b - wj - c]
                if v > best_in:
                    best_in = v
            forced_in[i, j] = best - (best_in + u[j] - cost[i, j])
    for i in range(m):
        for j in range(n):
            forced_in[i, j] += total
            forced_out[i, j] += total
    return total


def knapsack_bound(problem: AllocationProblem, prices: FloatArray, upper: float,
                   deadline: float, chunk: int = 25,
                   max_iterations: int = MAX_ITERATIONS) -> KnapsackBound | None:
    """Subgradient ascent from `prices` (the LP's assignment duals) until the step vanishes,
    the bound reaches `upper` − 1, `max_iterations` or `deadline`; then the forced bounds at
    the best prices. None when the tables would be too large or no time is left.
    Deterministic up to where the clock stops it (the iterations depend only on the inputs)."""
    m, n = problem.agents, problem.jobs
    cap = _capacities(problem)
    if not fits(problem) or time.monotonic() >= deadline:
        return None
    cost = np.ascontiguousarray(problem.cost, dtype=np.int64)
    weight = np.ascontiguousarray(problem.weight, dtype=np.int64)
    allowed = np.ascontiguousarray(problem.allowed)
    u = np.asarray(prices, dtype=np.float64).copy()
    best_u = u.copy()
    state = np.array([-np.inf, STEP, 0.0, 0.0])
    iterations = 0
    up = float(upper) if math.isfinite(upper) else float(np.abs(cost).sum() + 1)
    while time.monotonic() < deadline and iterations < max_iterations:
        iterations += _subgradient(cost, weight, allowed, cap, u, best_u, state, up,
                                   min(chunk, max_iterations - iterations))
        if state[3] > 0:
            break
    forced_in = np.empty((m, n))
    forced_out = np.empty((m, n))
    ks = np.empty(m)
    value = float(_forced(cost, weight, allowed, cap, best_u, forced_in, forced_out, ks))
    return KnapsackBound(value, best_u, iterations, forced_in, forced_out, ks)


def _capacities(problem: AllocationProblem) -> IntArray:
    cap = np.minimum(problem.capacity, np.where(problem.allowed, problem.weight, 0).sum(axis=1))
    return np.maximum(cap, 0).astype(np.int64)


def fits(problem: AllocationProblem) -> bool:
    """Whether the knapsack tables of `problem` are small enough (`MAX_CELLS`)."""
    return int((problem.jobs + 2) * (_capacities(problem) + 1).sum()) <= MAX_CELLS


def fixing_mask(problem: AllocationProblem, kb: KnapsackBound, upper: float) -> BoolArray:
    """Pairs (agent, job) that can be in an assignment cheaper than `upper` by the forced
    bounds (costs are integers: a pair is dropped when its bound exceeds upper − 1)."""
    limit = upper - 1.0 + 1e-6
    keep = problem.allowed & (kb.forced_in <= limit)
    must = problem.allowed & (kb.forced_out > limit)
    jobs = must.any(axis=0)
    if jobs.any():
        keep[:, jobs] = must[:, jobs]
    return keep


@dataclass
class Reduction:
    """The pairs that can be in an assignment cheaper than `upper`, and a lower bound on such
    an assignment (+inf when there is none: `upper` is then optimal)."""

    upper: float
    mask: BoolArray
    value: float
    prices: FloatArray
    probes: int


def reduce(problem: AllocationProblem, prices: FloatArray, upper: float, deadline: float,
           mask: BoolArray | None = None, probe: bool = True,
           max_probes: int | None = None) -> Reduction | None:
    """Drop the pairs that cannot be in an assignment cheaper than `upper`: the knapsack
    bound on the problem restricted to `mask` (all allowed pairs if None; a mask from an
    earlier call with a higher `upper` is a valid start), its forced bounds, again on the
    smaller problem while it shrinks (at most 4 rounds), then probing: each remaining pair of a
    job with several, in order of its forced bound (highest first), is forced and the prices
    re-optimised for `PROBE_ITERATIONS` steps; when the bound exceeds upper − 1 the pair goes.
    Stops at `deadline` (or after `max_probes` probes). None when the tables are too large."""
    base = problem.allowed.copy() if mask is None else mask & problem.allowed
    if not fits(problem):
        return None
    u = np.asarray(prices, dtype=np.float64)
    value = -math.inf
    kb: KnapsackBound | None = None
    for _ in range(4):
        sub = AllocationProblem(problem.cost, problem.weight, problem.capacity, base)
        got = knapsack_bound(sub, u, upper, deadline)
        if got is None:
            break
        kb = got
        u, value = kb.prices, max(value, kb.value)
        new = fixing_mask(sub, kb, upper)
        shrunk = int(new.sum()) < int(base.sum())
        base = new
        if value > upper - 1.0 + 1e-6 or (~base.any(axis=0)).any():
            return Reduction(upper, base, math.inf, u, 0)
        if not shrunk:
            break
    if kb is None:
        return None
    probes = 0
    if probe:
        cost = np.ascontiguousarray(problem.cost, dtype=np.int64)
        weight = np.ascontiguousarray(problem.weight, dtype=np.int64)
        cap = _capacities(problem)
        score = np.where(base, kb.forced_in, -np.inf)
        order = np.argsort(-score, axis=None, kind="stable")
        n = problem.jobs
        for k in order:
            i, j = divmod(int(k), n)
            if not base[i, j] or int(base[:, j].sum()) <= 1:
                continue
            if time.monotonic() >= deadline or (max_probes is not None and probes >= max_probes):
                break
            trial = base.copy()
            trial[:, j] = False
            trial[i, j] = True
            uu = kb.prices.copy()
            state = np.array([-np.inf, PROBE_STEP, 0.0, 0.0])
            _subgradient(cost, weight, trial, cap, uu, uu.copy(), state, float(upper),
                         PROBE_ITERATIONS)
            probes += 1
            if state[0] > upper - 1.0 + 1e-6:
                base[i, j] = False
        if probes and time.monotonic() < deadline:
            sub = AllocationProblem(problem.cost, problem.weight, problem.capacity, base)
            kb2 = knapsack_bound(sub, u, upper, deadline)
            if kb2 is not None:
                value = max(value, kb2.value)
                base = fixing_mask(sub, kb2, upper)
                u = kb2.prices
    if value > upper - 1.0 + 1e-6 or (~base.any(axis=0)).any():
        return Reduction(upper, base, math.inf, u, probes)
    return Reduction(upper, base, value, u, probes)


@dataclass
class TreeOutcome:
    """What the branch and bound found: a cheaper assignment (or None), the best cost known
    (the `upper` given if nothing cheaper), whether the tree was searched to the end (then
    that cost is optimal) and the nodes it took."""

    assignment: IntArray | None
    upper: float
    complete: bool
    nodes: int


def branch_and_bound(problem: AllocationProblem, mask: BoolArray, prices: FloatArray,
                     upper: float, deadline: float,
                     max_nodes: int | None = None,
                     patience: float | None = None,
                     stop_on_gain: bool = False) -> TreeOutcome:
    """Depth-first branch and bound for an assignment cheaper than `upper` over the pairs in
    `mask` (which must hold every such assignment: a `Reduction`'s mask for an upper value at
    least `upper`). At each node: `NODE_ITERATIONS` subgradient steps from the parent's prices
    on the node's pairs give its knapsack bound (pruned above upper − 1), and the forced
    bounds drop pairs (again until nothing changes); a node with one pair per job is an
    assignment. Branching: the job whose two best forced bounds differ most, on its best
    agent (that child first) or not. The bound is re-optimised at every node, so it rises
    after each branching (which the LP-based tree of HiGHS, with the same root bound, does
    not see: on chu1997 c10200 it took HiGHS 5–9 s and thousands of nodes, this 1–3 s).
    Stops at `deadline`, after `max_nodes` nodes, after `patience` seconds without a
    cheaper assignment or, with `stop_on_gain`, at the first cheaper assignment (then
    incomplete: the caller reduces the pairs at the new cost and starts again on fewer);
    deterministic up to there."""
    m, n = problem.agents, problem.jobs
    cost = np.ascontiguousarray(problem.cost, dtype=np.int64)
    weight = np.ascontiguousarray(problem.weight, dtype=np.int64)
    cap = _capacities(problem)
    best: IntArray | None = None
    stack: list[tuple[BoolArray, FloatArray]] = [
        (np.ascontiguousarray(mask & problem.allowed), np.asarray(prices, dtype=np.float64))]
    nodes = 0
    forced_in = np.empty((m, n))
    forced_out = np.empty((m, n))
    ks = np.empty(m)
    last_gain = time.monotonic()
    while stack:
        now = time.monotonic()
        if now >= deadline or (max_nodes is not None and nodes >= max_nodes) \
                or (patience is not None and now - last_gain > patience):
            return TreeOutcome(best, upper, False, nodes)
        node, u = stack.pop()
        nodes += 1
        limit = upper - 1.0 + 1e-6
        pruned = False
        while True:
            best_u = u.copy()
            state = np.array([-np.inf, PROBE_STEP, 0.0, 0.0])
            _subgradient(cost, weight, node, cap, u.copy(), best_u, state, float(upper),
                         NODE_ITERATIONS)
            u = best_u
            if state[0] > limit:
                pruned = True
                break
            _forced(cost, weight, node, cap, u, forced_in, forced_out, ks)
            new = node & (forced_in <= limit)
            must = node & (forced_out > limit)
            jobs = must.any(axis=0)
            if jobs.any():
                new[:, jobs] &= must[:, jobs]
            if not new.any(axis=0).all():
                pruned = True
                break
            if int(new.sum()) == int(node.sum()):
                break
            node = new
        if pruned:
            continue
        counts = node.sum(axis=0)
        if (counts == 1).all():
            a = np.argmax(node, axis=0).astype(np.int64)
            if problem.is_feasible(a) and problem.objective(a) < upper:
                best, upper = a, float(problem.objective(a))
                last_gain = time.monotonic()
                if stop_on_gain:
                    return TreeOutcome(best, upper, False, nodes)
            continue
        fin = np.where(node, forced_in, np.inf)
        two = np.sort(fin, axis=0)[:2]
        spread = np.where(counts > 1, two[1] - two[0], -np.inf)
        j = int(np.argmax(spread))
        i = int(np.argmin(fin[:, j]))
        out = node.copy()
        out[i, j] = False
        into = node.copy()
        into[:, j] = False
        into[i, j] = True
        stack.append((out, u))
        stack.append((into, u))
    return TreeOutcome(best, upper, True, nodes)


def warm_up() -> None:
    """Compile (or load from Numba's cache) the kernels on a tiny instance."""
    tiny = AllocationProblem(np.array([[1, 2, 3], [3, 2, 1]]), np.ones((2, 3), dtype=np.int64),
                             np.array([2, 2]))
    red = reduce(tiny, np.zeros(3), 10.0, math.inf, max_probes=2)
    if red is not None:
        branch_and_bound(tiny, red.mask, red.prices, 10.0, math.inf, max_nodes=3)
