"""The batch allocator: a feasible assignment and a proven lower bound for a GAP instance."""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from silkroute.routing.batch_bound import Bound, lower_bound
from silkroute.routing.batch_lagrange import Reduction, branch_and_bound, fits, reduce
from silkroute.routing.batch_lagrange import warm_up as warm_up_lagrange
from silkroute.routing.batch_mip import solve_mip
from silkroute.routing.batch_search import (
    local_search,
    regret_construction,
)
from silkroute.routing.gap import AllocationProblem
from silkroute.routing.gap_exchange import exchange_arrays, exchange_polish
from silkroute.routing.gap_exchange import warm_up as warm_up_exchange
from silkroute.routing.gap_kernels import compiled_tabu_search, warm_up
from silkroute.routing.plain_mip import PlainMipProcess

# The tabu and exchange kernels are compiled (or loaded from Numba's cache) now, on import,
# not inside the first solve's time limit.
warm_up()
warm_up_exchange()
warm_up_lagrange()

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

#: the full MIP is attempted only on models with at most this many free variables
FULL_MIP_MAX_VARIABLES = 200_000
#: seconds kept back from the time limit for bookkeeping
SAFETY = 0.15
#: the portfolio's plain MIP (a child process, `plain_mip`) runs by default from this time
#: limit up, and is waited for at most this long after the time limit
PORTFOLIO_MIN_SECONDS = 2.0
MEMBER_GRACE = 0.3
#: share of the time after construction for the first, short exact attempt (capped)
QUICK_SHARE = 0.08
QUICK_MAX_SECONDS = 0.5
#: the compiled tabu search's (gap_kernels) share of the remaining time and its stall limit
#: in moves
COMPILED_TABU_SHARE = 0.5
#: the same where the knapsack Lagrangian reduction and tree do not run (see below)
COMPILED_TABU_SHARE_NO_TREE = 0.85
#: the knapsack Lagrangian reduction and tree run on instances of at most this many jobs
#: (measured up to 200; above, the allocator is as before) whose knapsack tables fit
#: (`batch_lagrange.MAX_CELLS`)
LAGRANGIAN_MAX_JOBS = 200
COMPILED_TABU_STALL = 10_000
#: restarts from the best assignment after a stalled run; it stops after this many stalled
#: runs in a row
COMPILED_TABU_FAILS = 3
#: share of the remaining time the tabu search may take to repair an over-capacity start
#: when the greedy construction finds no feasible assignment
REPAIR_SHARE = 0.3
#: share of the jobs moved at random before each restart after the first
COMPILED_TABU_KICK = 0.05
#: instances with fewer agents than this give the heuristics a smaller share, (m / this)²
HEURISTIC_FULL_AGENTS = 10
#: cost–use correlation at or below which the heuristics get their full share, and the
#: share they get otherwise (none: the whole MIP gets all the time)
ANTI_CORRELATED = -0.3
LOOSE_HEURISTIC_WEIGHT = 0.0
#: whether the final exact model gets the best assignment as its start on instances with
#: fewer than `HEURISTIC_FULL_AGENTS` agents after the heuristics ran; without it HiGHS
#: searches on its own (our incumbent is kept anyway) and ended lower at 10 s (d05100 6355
#: against 6360, d05200 12749 against 12755; plain HiGHS 6358 and 12752). With 10 or 20
#: agents the start helps as often as it hurts (e10200 23307 with it, 23315 without).
FEW_AGENTS_MIP_START = False
#: share of the tabu search's time given instead to the iterated exchange search after it:
#: a kick of `ILS_KICK` of the jobs (at least two), at most `ILS_REPAIR_MOVES` tabu moves
#: back into the capacities, then cyclic and path exchanges of up to `ILS_DEPTH` jobs
#: (`gap_exchange`); the result replaces the current assignment when at most `ILS_ACCEPT`
#: (a share of its cost) worse
ILS_SHARE = 0.5
ILS_KICK = 0.02
ILS_REPAIR_MOVES = 300
ILS_DEPTH = 8
ILS_ACCEPT = 3e-4
#: the iterated exchange search stops after this share of its time without a new best (the
#: rest goes to the neighbourhood search and the exact model: on e20200 the exchanges found
#: nothing and the final model found the optimum before)
ILS_PATIENCE = 0.5
#: the large neighbourhood search stops after this share of its time without a gain
LNS_PATIENCE = 0.4
#: share of the remaining time spent in the large neighbourhood search
LNS_SHARE = 0.1
#: the knapsack Lagrangian reduction (`batch_lagrange.reduce`): its share of the remaining
#: time, capped in seconds
LAG_SHARE = 0.1
LAG_MAX_SECONDS = 1.0
#: on independent-cost instances (types A, B, C) not closed by the short exact attempt: the
#: tabu search's share of the remaining time, then the share of the tabu and exchange searches
#: on the pairs the reduction leaves (the core), before the exact model
INDEPENDENT_TABU_SHARE = 0.08
CORE_SHARE = 0.1
#: the reduction with probing before the exact model, capped in seconds
PROBE_MAX_SECONDS = 0.5
#: share of the remaining time for the knapsack Lagrangian branch and bound
#: (`batch_lagrange.branch_and_bound`) on independent-cost and on anti-correlated instances;
#: HiGHS's MIP gets what it leaves
TREE_SHARE = 0.7
TIGHT_TREE_SHARE = 0.6
#: on anti-correlated instances the tree may give the rest of its time back after this share
#: of it without a cheaper assignment (None: never; 0.5 ended higher on e10100, 11584 against
#: 11579, and the same on d05200 and d10200)
TIGHT_TREE_PATIENCE: float | None = None


@dataclass
class AllocationResult:
    """The allocator's answer: an assignment (if found), its cost, and a lower bound."""

    status: str  # "optimal", "feasible", "infeasible", "unknown"
    objective: int | None
    lower_bound: float
    gap: float  # percent: 100 × (objective − lower_bound) / |objective|; inf if unknown
    seconds: float
    feasible: bool
    assignment: list[int] = field(default_factory=list)
    reason: str | None = None  # why infeasible / unknown
    bound_method: str = "none"
    #: whether the portfolio's plain MIP ran beside the allocator, and which of the two found
    #: the assignment returned ("allocator" or "plain MIP")
    portfolio: bool = False
    found_by: str = "allocator"

    def to_json(self) -> dict[str, object]:
        """The `silkroute solve --json` object."""
        return {
            "objective": self.objective,
            "lower_bound": _finite(self.lower_bound),
            "gap": _finite(self.gap),
            "seconds": round(self.seconds, 3),
            "feasible": self.feasible,
            "assignment": list(self.assignment),
            "status": self.status,
            "reason": self.reason,
        }


def _finite(x: float) -> float | None:
    return None if not math.isfinite(x) else round(x, 6)


def relative_gap(objective: float | None, bound: float) -> float:
    """Gap in percent between an objective and a lower bound."""
    if objective is None or not math.isfinite(bound):
        return math.inf
    if objective == bound:
        return 0.0
    return max(0.0, 100.0 * (objective - bound) / max(1.0, abs(objective)))


def _trivially_infeasible(problem: AllocationProblem) -> str | None:
    fits = problem.allowed & (problem.weight <= problem.capacity[:, None])
    stuck = np.flatnonzero(~fits.any(axis=0))
    if stuck.size:
        j = int(stuck[0])
        name = problem.job_names[j] if problem.job_names else str(j)
        return f"job {name} fits no agent (no allowed agent has enough capacity)"
    return None


class _Search:
    """Incumbent bookkeeping shared by the phases of `solve`."""

    def __init__(self, problem: AllocationProblem, deadline: float):
        self.problem = problem
        self.deadline = deadline
        self.best: IntArray | None = None
        self.best_cost = math.inf
        self.bound = -math.inf
        #: pairs that can be in an assignment cheaper than `reduction.upper`
        self.reduction: Reduction | None = None
        #: the incumbent came from the portfolio's plain MIP
        self.from_member = False

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def offer(self, assignment: IntArray | None) -> bool:
        if assignment is None or not self.problem.is_feasible(assignment):
            return False
        c = self.problem.objective(assignment)
        if c < self.best_cost:
            self.best, self.best_cost = assignment.copy(), c
            return True
        return False

    def closed(self) -> bool:
        return self.best is not None and math.isfinite(self.bound) \
            and math.ceil(self.bound - 1e-6) >= self.best_cost


def _fixing_mask(
    problem: AllocationProblem, bound: Bound, upper: float, incumbent: IntArray | None,
    reduction: Reduction | None = None,
) -> BoolArray:
    """Variables that can appear in a solution cheaper than `upper` (reduced-cost fixing, and
    the knapsack Lagrangian reduction when it was made for an upper value at least `upper`),
    plus those of the incumbent."""
    if bound.method != "lp" or not math.isfinite(bound.value) or not math.isfinite(upper):
        mask = problem.allowed.copy()
    else:
        slack = upper - 1 - bound.value + 1e-6
        mask = problem.allowed & (bound.reduced_cost <= slack)
        mask |= (bound.fractional > 1e-9) & problem.allowed
    if reduction is not None and upper <= reduction.upper:
        mask &= reduction.mask
    if incumbent is not None:
        mask[incumbent, np.arange(problem.jobs)] = True
    return mask


def _lag_until(left: float, cap: float = LAG_MAX_SECONDS) -> float:
    """The deadline of a reduction given `LAG_SHARE` of `left` seconds, at most `cap`."""
    return time.monotonic() + min(cap, LAG_SHARE * left)


def _reduce(search: _Search, bound: Bound, until: float, probe: bool = True) -> None:
    """The knapsack Lagrangian reduction (`batch_lagrange.reduce`) at the best assignment's
    cost, from the previous one when there is one; its bound tightens the search's (a bound
    on assignments cheaper than the best one: the lower bound is the smaller of the two)."""
    if bound.job_price is None or search.best is None or search.closed():
        return
    prev = search.reduction
    if prev is not None and prev.upper <= search.best_cost:
        return
    red = reduce(search.problem, bound.job_price if prev is None else prev.prices,
                 search.best_cost, until, mask=None if prev is None else prev.mask, probe=probe)
    if red is None:
        return
    search.reduction = red
    search.bound = max(search.bound, min(red.value, search.best_cost))


def _tree(search: _Search, bound: Bound, until: float, patience: float | None = None,
          restart: bool = True) -> None:
    """The knapsack Lagrangian branch and bound over the pairs the reduction leaves, below the
    best assignment's cost; when it searches its tree to the end, the best is optimal. At each
    cheaper assignment it stops (with `restart`), the pairs are reduced at the new cost and it
    starts again on fewer. A run gives up after `patience` (a share of the time left) without
    one."""
    while search.best is not None and not search.closed() and time.monotonic() < until:
        red = search.reduction
        if red is None or red.upper < search.best_cost:
            return
        wait = None if patience is None else patience * max(0.0, until - time.monotonic())
        out = branch_and_bound(search.problem, red.mask, red.prices, search.best_cost, until,
                               patience=wait, stop_on_gain=restart)
        search.offer(out.assignment)
        if out.complete:
            search.bound = max(search.bound, float(search.best_cost))
            return
        if out.assignment is None:
            return
        _reduce(search, bound, _lag_until(until - time.monotonic()), probe=False)


def _core_search(search: _Search, until: float, seed: int) -> None:
    """The tabu and exchange searches (half the time each) on the problem restricted to the
    pairs the reduction leaves: far fewer moves to look at, all towards a cheaper assignment."""
    red = search.reduction
    if red is None or search.best is None or search.closed():
        return
    problem = search.problem
    mask = red.mask.copy()
    mask[search.best, np.arange(problem.jobs)] = True
    core = _Search(AllocationProblem(problem.cost, problem.weight, problem.capacity, mask),
                   search.deadline)
    core.bound = search.bound
    core.offer(search.best)
    began = time.monotonic()
    _compiled_tabu(core, began + 0.5 * (until - began), seed, float(math.ceil(core.bound - 1e-6)))
    _iterated_exchange(core, until, seed)
    search.offer(core.best)


def _lns(
    search: _Search,
    bound: Bound,
    mask: BoolArray,
    rng: np.random.Generator,
    until: float,
) -> None:
    """Large neighbourhood search: free the jobs of a few agents (or a random set of jobs)
    and re-solve that piece exactly with HiGHS; keep it when no worse."""
    problem = search.problem
    assert search.best is not None
    m, n = problem.agents, problem.jobs
    a = search.best.copy()
    cur_cost = search.best_cost
    cols = np.arange(n)
    target = 40.0  # variables per piece, adapted as we go
    related = np.argsort(bound.reduced_cost, axis=0, kind="stable")
    rc_now = np.where(np.isfinite(bound.reduced_cost), bound.reduced_cost, 0.0)
    began = last_gain = time.monotonic()
    idle = 0  # pieces since the last gain
    while time.monotonic() < until and not search.closed():
        now = time.monotonic()
        left = until - now
        if left < 0.05:
            break
        if idle > 4 * m and now - last_gain > LNS_PATIENCE * (until - began):
            break  # no gain for a while: the exact model gets the time
        load = problem.load(a)
        kind = rng.random()
        if kind < 0.6 and m >= 2:
            # agents: a seed agent plus agents that are the next-best for its jobs
            if kind < 0.3:
                # a seed agent drawn by how much its jobs pay above their LP reduced cost 0
                slack = np.bincount(a, weights=rc_now[a, np.arange(n)], minlength=m) + 1.0
                first = int(rng.choice(m, p=slack / slack.sum()))
            else:
                first = int(rng.integers(m))
            jobs_first = np.flatnonzero(a == first)
            agents = {first}
            candidates: list[int] = []
            for j in jobs_first:
                candidates.extend(int(x) for x in related[:3, j] if int(x) != first)
            rng.shuffle(candidates)  # type: ignore[arg-type]
            avg_jobs = max(1.0, n / m)
            want = max(2, min(m, int(math.sqrt(target / avg_jobs))))
            for c in candidates:
                if len(agents) >= want:
                    break
                agents.add(c)
            while len(agents) < want:
                agents.add(int(rng.integers(m)))
            agent_set = np.array(sorted(agents), dtype=np.int64)
            in_set = np.zeros(m, dtype=np.bool_)
            in_set[agent_set] = True
            free = np.flatnonzero(in_set[a])
            sub_agents = agent_set
        else:
            k = max(4, min(n, 2 * int(target / max(1, m))))
            free = np.sort(rng.choice(n, size=k, replace=False))
            sub_agents = np.arange(m, dtype=np.int64)
        if free.size == 0:
            continue
        fixed_load = load.copy()
        np.subtract.at(fixed_load, a[free], problem.weight[a[free], free])
        sub_cap = (problem.capacity - fixed_load)[sub_agents]
        sub_cost = problem.cost[np.ix_(sub_agents, free)]
        sub_weight = problem.weight[np.ix_(sub_agents, free)]
        sub_mask = mask[np.ix_(sub_agents, free)].copy()
        pos = np.full(m, -1, dtype=np.int64)
        pos[sub_agents] = np.arange(sub_agents.size)
        start = pos[a[free]]
        sub_mask[start, np.arange(free.size)] = True
        sub_limit = min(left, 0.2)
        t0 = time.monotonic()
        out = solve_mip(
            sub_cost, sub_weight, sub_cap, sub_mask, sub_limit, start=start,
            seed=int(rng.integers(1 << 30)),
        )
        spent = time.monotonic() - t0
        if out.status == "optimal" and spent < 0.25 * sub_limit:
            target = min(target * 1.1, 4000.0)
        elif out.status != "optimal":
            target = max(target * 0.7, 40.0)
        idle += 1
        if out.assignment is None:
            continue
        candidate = a.copy()
        candidate[free] = sub_agents[out.assignment]
        cand_cost = problem.objective(candidate)
        if cand_cost <= cur_cost and problem.is_feasible(candidate):
            if cand_cost < cur_cost:
                last_gain, idle = time.monotonic(), -1
            a, cur_cost = candidate, cand_cost
            search.offer(a)
    del cols


def _kicked(problem: AllocationProblem, assignment: IntArray, share: float,
            rng: np.random.Generator) -> IntArray:
    """`assignment` with a random `share` of the jobs (at least one) moved to random allowed
    agents (capacity ignored: the tabu search repairs it)."""
    out = assignment.copy()
    k = max(1, int(round(share * problem.jobs)))
    for j in rng.choice(problem.jobs, size=min(k, problem.jobs), replace=False):
        options = np.flatnonzero(problem.allowed[:, j])
        out[j] = int(options[rng.integers(options.size)])
    return out


def _repair(search: _Search, bound: Bound, until: float, seed: int) -> None:
    """The greedy found no assignment that fits (tight capacities: yagiura2004 c801600 at
    1,600 jobs and 80 agents): start from each job's cheapest agent at the LP's capacity
    prices, over capacity as that is, and let the penalised tabu search, which pays for
    excess and so walks back into the capacities, find a feasible assignment (there: 16,330
    against the reference 16,285 in 8 s; before, the allocator had no start and ended with
    HiGHS's own 48,174)."""
    problem = search.problem
    priced = np.where(problem.allowed,
                      problem.cost + bound.capacity_price[:, None] * problem.weight, np.inf)
    start = np.argmin(priced, axis=0).astype(np.int64)
    search.offer(compiled_tabu_search(problem, start, until, seed=seed,
                                      stall_limit=COMPILED_TABU_STALL, target=-math.inf))


def _compiled_tabu(search: _Search, until: float, seed: int, target: float) -> None:
    """Runs of the compiled tabu search until the time is up or `COMPILED_TABU_FAILS` runs in
    a row end without a gain: the first from the best assignment so far, the next ones from
    it with `COMPILED_TABU_KICK` of the jobs moved at random (restarting from the best
    itself tends to fall back into the same local optimum)."""
    fails = 0
    run = 0
    rng = np.random.default_rng([seed, 7919])
    while search.best is not None and time.monotonic() < until and not search.closed():
        start = search.best if run == 0 or COMPILED_TABU_KICK <= 0 else \
            _kicked(search.problem, search.best, COMPILED_TABU_KICK, rng)
        gained = search.offer(compiled_tabu_search(
            search.problem, start, until, seed=seed * 1000 + run,
            stall_limit=COMPILED_TABU_STALL, target=target))
        run += 1
        fails = 0 if gained else fails + 1
        if fails >= COMPILED_TABU_FAILS:
            break


def _iterated_exchange(search: _Search, until: float, seed: int,
                       max_kicks: int | None = None) -> None:
    """Iterated local search over cyclic and path exchanges (`gap_exchange`) from the best
    assignment: kick a few jobs, let the tabu search walk back into the capacities for a few
    moves (its best feasible assignment met), polish that by exchanges, and go on from it
    when it is not much worse than the current one. Stops at `until`, when the bound closes
    the search, after `ILS_PATIENCE` of its time without a new best, or after `max_kicks`
    kicks (given `max_kicks`, the patience is off and, for a seed, the answer is always the
    same)."""
    problem = search.problem
    if search.best is None:
        return
    arrays = exchange_arrays(problem)
    rng = np.random.default_rng([seed, 104729])
    x = exchange_polish(problem, search.best, ILS_DEPTH, until, arrays)
    search.offer(x)
    cx = problem.objective(x)
    kick = max(2.0, ILS_KICK * problem.jobs) / problem.jobs
    run = 0
    began = last_gain = time.monotonic()
    while time.monotonic() < until and not search.closed():
        if max_kicks is not None and run >= max_kicks:
            break
        if max_kicks is None and time.monotonic() - last_gain > ILS_PATIENCE * (until - began):
            break
        y = _kicked(problem, x, kick, rng)
        y = compiled_tabu_search(problem, y, until, seed=seed * 1_000_003 + run,
                                 max_moves=ILS_REPAIR_MOVES)
        run += 1
        if not problem.is_feasible(y):
            continue
        y = exchange_polish(problem, y, ILS_DEPTH, until, arrays)
        cy = problem.objective(y)
        if cy <= cx + ILS_ACCEPT * abs(cx):
            x, cx = y, cy
            if search.offer(x):
                last_gain = time.monotonic()


def _heuristic_weight(problem: AllocationProblem) -> float:
    """How much of their share the tabu and neighbourhood searches get (0 to 1). They pay off
    when cheap options use much capacity (cost and use anti-correlated, as in types D and E),
    where the LP bound is far from good assignments and HiGHS finds them slowly; with costs
    independent of use (types A, B, C), HiGHS closes the gap itself and needs the time. With
    fewer agents the whole MIP also uses the time better (share × (m/10)²)."""
    allowed = problem.allowed
    cost = problem.cost[allowed].astype(np.float64)
    use = problem.weight[allowed].astype(np.float64)
    corr = 0.0
    if cost.size > 2 and cost.std() > 0 and use.std() > 0:
        corr = float(np.corrcoef(cost, use)[0, 1])
    tight = 1.0 if corr <= ANTI_CORRELATED else LOOSE_HEURISTIC_WEIGHT
    return tight * min(1.0, problem.agents / HEURISTIC_FULL_AGENTS) ** 2


def _portfolio_wanted(problem: AllocationProblem, time_limit: float,
                      portfolio: bool | None) -> bool:
    if portfolio is not None:
        return portfolio
    return time_limit >= PORTFOLIO_MIN_SECONDS and _cpus() >= 2 \
        and problem.agents * problem.jobs <= FULL_MIP_MAX_VARIABLES


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _take_member(search: _Search, member: PlainMipProcess, until: float) -> None:
    """The portfolio's plain MIP: its assignment if cheaper, its bound if higher."""
    out = member.outcome(until)
    if out is None:
        return
    if search.offer(out.assignment):
        search.from_member = True
    # HiGHS's dual bound, not its "optimal" status: that one allows a relative gap of 1e-4
    if search.best is not None:
        search.bound = max(search.bound, min(out.bound, search.best_cost))


def solve(problem: AllocationProblem, time_limit: float = 10.0, seed: int = 0,
          portfolio: bool | None = None) -> AllocationResult:
    """Allocate every job to one agent within capacities at least cost, within `time_limit`
    seconds; deterministic for a seed (up to where the clock stops a phase).

    `portfolio`: also run the plain MIP with SciPy's HiGHS in a child process for the whole
    time (on a second core) and keep the better answer; by default on when the machine gives
    this process at least two cores, the time limit is at least `PORTFOLIO_MIN_SECONDS` and
    the plain model has at most `FULL_MIP_MAX_VARIABLES` variables."""
    started = time.monotonic()
    deadline = started + max(0.2, time_limit - SAFETY)
    member = None
    infeasible = _trivially_infeasible(problem)
    if _portfolio_wanted(problem, time_limit, portfolio) and infeasible is None:
        # the child has the whole time limit (less its start-up), as HiGHS alone would; a
        # child that cannot start (no interpreter, no room for its file) is done without
        try:
            member = PlainMipProcess(problem.cost, problem.weight, problem.capacity,
                                     problem.allowed, started + time_limit)
        except OSError:
            member = None
    try:
        return _solve(problem, started, deadline, time_limit, seed, member, infeasible)
    finally:
        if member is not None:
            member.stop()


def _solve(problem: AllocationProblem, started: float, deadline: float, time_limit: float,
           seed: int, member: PlainMipProcess | None, reason: str | None) -> AllocationResult:
    """`solve`'s own steps; `reason`: why the instance is trivially infeasible, if it is."""
    rng = np.random.default_rng(seed)

    def result(search: _Search | None, status: str, reason: str | None, method: str) -> \
            AllocationResult:
        if member is not None and search is not None and not search.closed():
            _take_member(search, member, started + time_limit + MEMBER_GRACE)
        seconds = time.monotonic() - started
        if search is None or search.best is None:
            lb = search.bound if search is not None else -math.inf
            return AllocationResult(status, None, lb, math.inf, seconds, False, [], reason, method,
                                    member is not None)
        obj = int(search.best_cost)
        lb = min(float(obj), search.bound)
        if math.isfinite(lb) and math.ceil(lb - 1e-6) >= obj:
            status, lb = "optimal", float(obj)
        return AllocationResult(
            status, obj, lb, relative_gap(obj, lb), seconds, True,
            [int(x) for x in search.best], reason, method, member is not None,
            "plain MIP" if search.from_member else "allocator",
        )

    if reason is not None:
        return AllocationResult("infeasible", None, math.inf, math.inf,
                                time.monotonic() - started, False, [], reason, "none")
    search = _Search(problem, deadline)
    bound = lower_bound(problem, started + 0.3 * (deadline - started))
    if bound.value == math.inf:
        return AllocationResult("infeasible", None, math.inf, math.inf,
                                time.monotonic() - started, False, [],
                                "the LP relaxation is infeasible: the capacities cannot hold "
                                "every job", bound.method)
    search.bound = bound.value

    # construction + local search
    built = regret_construction(problem, bound.capacity_price, started + 0.4 * time_limit)
    if built is None:
        built = regret_construction(problem, np.zeros(problem.agents),
                                    started + 0.4 * time_limit)
    if built is not None:
        polish_until = min(deadline, time.monotonic() + 0.1 * time_limit)
        search.offer(local_search(problem, built, polish_until))
    else:
        _repair(search, bound, time.monotonic() + REPAIR_SHARE * search.remaining(), seed)

    # with costs independent of use: the knapsack Lagrangian reduction at the greedy's cost
    # (it closes the easy ones), then below a short search for a better incumbent on what it
    # leaves, and the exact model on the pairs left at that one's cost; otherwise a short
    # exact attempt first: small or easy models are closed there
    heuristic_weight = _heuristic_weight(problem)
    lagrangian = bound.job_price is not None and problem.jobs <= LAGRANGIAN_MAX_JOBS \
        and fits(problem)
    if heuristic_weight == 0 and lagrangian and search.best is not None:
        _reduce(search, bound, _lag_until(search.remaining()), probe=False)
    if heuristic_weight > 0 and search.best is not None and not search.closed() \
            and search.remaining() > 0.1:
        mask = _fixing_mask(problem, bound, search.best_cost, search.best, search.reduction)
        if int(mask.sum()) <= FULL_MIP_MAX_VARIABLES:
            quick = min(QUICK_MAX_SECONDS, QUICK_SHARE * search.remaining())
            out = solve_mip(problem.cost, problem.weight, problem.capacity, mask, quick,
                            start=search.best, seed=seed)
            search.offer(out.assignment)
            if out.status in ("optimal", "infeasible"):
                search.bound = max(search.bound, float(search.best_cost))
            else:
                search.bound = max(search.bound, min(out.bound, search.best_cost))

    # independent costs: a short tabu search for a better incumbent, the reduction at its cost,
    # the searches on the pairs left (the core), the reduction again; then the exact model
    if heuristic_weight == 0 and lagrangian and search.best is not None \
            and not search.closed():
        _compiled_tabu(search, time.monotonic() + INDEPENDENT_TABU_SHARE * search.remaining(),
                       seed, float(math.ceil(search.bound - 1e-6)))
        _reduce(search, bound, _lag_until(search.remaining()), probe=False)
        _core_search(search, time.monotonic() + CORE_SHARE * search.remaining(), seed)
        _reduce(search, bound, _lag_until(search.remaining(), PROBE_MAX_SECONDS))
        _tree(search, bound, time.monotonic() + TREE_SHARE * search.remaining(), restart=False)
    # penalised tabu search, iterated exchange search, then large neighbourhood search on
    # small pieces
    if heuristic_weight > 0 and search.best is not None and not search.closed():
        target = float(math.ceil(search.bound - 1e-6))
        share = COMPILED_TABU_SHARE if lagrangian else COMPILED_TABU_SHARE_NO_TREE
        tabu_seconds = share * heuristic_weight * search.remaining()
        tabu_until = time.monotonic() + (1.0 - ILS_SHARE) * tabu_seconds
        if ILS_SHARE < 1.0:
            _compiled_tabu(search, tabu_until, seed, target)
        if ILS_SHARE > 0 and not search.closed():
            _iterated_exchange(search, tabu_until + ILS_SHARE * tabu_seconds, seed)
    if heuristic_weight > 0 and lagrangian and search.best is not None \
            and not search.closed():
        _reduce(search, bound, _lag_until(search.remaining()))
        _tree(search, bound, time.monotonic() + TIGHT_TREE_SHARE * heuristic_weight
              * search.remaining(), TIGHT_TREE_PATIENCE)
    if heuristic_weight > 0 and search.best is not None and not search.closed():
        lns_until = time.monotonic() + LNS_SHARE * heuristic_weight * search.remaining()
        _lns(search, bound, _fixing_mask(problem, bound, search.best_cost, search.best,
                                         search.reduction), rng, lns_until)
    # the rest of the time: the exact model, reduced by the best incumbent, from that start
    # (not with few agents after the heuristics: `FEW_AGENTS_MIP_START`)
    if not search.closed() and search.remaining() > 0.05:
        mask = _fixing_mask(problem, bound, search.best_cost, search.best, search.reduction)
        if int(mask.sum()) <= FULL_MIP_MAX_VARIABLES:
            few_agents = heuristic_weight > 0 and problem.agents < HEURISTIC_FULL_AGENTS
            start = None if few_agents and not FEW_AGENTS_MIP_START else search.best
            out = solve_mip(problem.cost, problem.weight, problem.capacity, mask,
                            search.remaining(), start=start, seed=seed)
            had = search.best is not None
            search.offer(out.assignment)
            if out.status == "optimal":
                search.bound = max(search.bound, float(search.best_cost))
            elif out.status == "infeasible":
                if not had:
                    return result(search, "infeasible", "no assignment fits the capacities "
                                  "(proven by HiGHS)", bound.method)
                search.bound = max(search.bound, float(search.best_cost))
            else:
                search.bound = max(search.bound, min(out.bound, search.best_cost))
    if search.best is None:
        return result(search, "unknown", "no feasible assignment found within the time limit",
                      bound.method)
    return result(search, "feasible", None, bound.method)
