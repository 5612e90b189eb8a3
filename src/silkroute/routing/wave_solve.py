"""Wave solver: prices from the smoothed Lagrangian dual over region blocks, column
generation over the option catalog, the full problem's Lagrangian bound, regret repair and
local improvement."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from silkroute.routing.wave import WaveProblem

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass
class RegionBlock:
    """The orders of one region: rows of the problem's dense option arrays."""

    region: int
    rows: IntArray
    cost: FloatArray
    car: npt.NDArray[np.int32]
    loc: npt.NDArray[np.int32]
    n_car: int
    n_loc: int


def region_blocks(problem: WaveProblem) -> list[RegionBlock]:
    """Split the problem by region (fixed order: region 0, 1, ...)."""
    out = []
    for r in range(problem.regions):
        rows = np.flatnonzero(problem.region == r).astype(np.int64)
        out.append(RegionBlock(r, rows, problem.cost[rows], problem.car[rows],
                               problem.loc[rows],
                               len(problem.car_cap), len(problem.loc_cap)))
    return out


@dataclass
class SmoothResult:
    """A region's smoothed subproblem at given prices: its value and expected loads."""

    value: float
    car_load: FloatArray
    loc_load: FloatArray


def region_smooth(block: RegionBlock, lam: FloatArray, mu: FloatArray, tau: float,
                  overflow: float) -> SmoothResult:
    """The entropy-smoothed subproblem: each order spreads over its options with weights
    exp(-priced cost / tau) (normalised), and is worth the soft minimum
    -tau log sum exp(-priced / tau), which lies within tau log(width) under the hard one.
    Its value is a smooth concave function of the prices whose gradient is the expected
    load, so a quasi-Newton method can climb it (the hard Lagrangian is piecewise linear,
    and subgradient steps on it stall). Each order may also overflow (no capacity used) at
    its cheapest cost plus `overflow`, which caps the prices where the table cannot fit the
    capacities (a sample's scaled capacities, say). Rows without any option are skipped."""
    from silkroute.routing.wave_kernels import smooth_rows

    value, car_load, loc_load = smooth_rows(block.cost, block.car, block.loc, lam, mu, tau,
                                            overflow, block.n_car, block.n_loc)
    return SmoothResult(value, car_load, loc_load)


class Runner(Protocol):
    """Evaluates the region subproblems: in this process or on a cluster."""

    def smooth(self, lam: FloatArray, mu: FloatArray, tau: float, overflow: float
               ) -> list[SmoothResult]: ...

    def reset(self, blocks: Sequence[RegionBlock]) -> None: ...


class LocalRunner:
    """Region subproblems one after the other in this process."""

    def __init__(self, blocks: Sequence[RegionBlock]):
        self.blocks = list(blocks)

    def smooth(self, lam: FloatArray, mu: FloatArray, tau: float, overflow: float
               ) -> list[SmoothResult]:
        return [region_smooth(b, lam, mu, tau, overflow) for b in self.blocks]

    def reset(self, blocks: Sequence[RegionBlock]) -> None:
        """New blocks (the table gained columns)."""
        self.blocks = list(blocks)


class DaskRunner:
    """Region subproblems as Dask tasks: the blocks are scattered once, each iteration sends
    the prices and gathers the results in region order (so the sums match `LocalRunner`)."""

    def __init__(self, client: Any, blocks: Sequence[RegionBlock], token: str = "wave"):
        self.client = client
        self.token = token
        self.calls = 0
        self.futures: list[Any] = []
        self.reset(blocks)

    def reset(self, blocks: Sequence[RegionBlock]) -> None:
        """Scatter new blocks (the table gained columns), dropping the old ones."""
        client = self.client
        if self.futures:
            client.cancel(self.futures)
        workers = sorted(client.ncores())
        if workers:  # round robin, so every worker holds regions
            self.futures = [client.scatter(b, workers=[workers[r % len(workers)]], hash=False)
                            for r, b in enumerate(blocks)]
        else:
            self.futures = client.scatter(list(blocks), hash=False)

    def _map(self, fn: Callable[..., Any], *args: Any) -> list[Any]:
        self.calls += 1
        futs = [self.client.submit(fn, f, *args, pure=False,
                                   key=f"{self.token}-{fn.__name__}-{self.calls}-{r}")
                for r, f in enumerate(self.futures)]
        return list(self.client.gather(futs))

    def smooth(self, lam: FloatArray, mu: FloatArray, tau: float, overflow: float
               ) -> list[SmoothResult]:
        return self._map(region_smooth, lam, mu, tau, overflow)



@dataclass
class WavePlan:
    """A wave plan: the option each order takes (a column of `table`), its cost, a lower
    bound for the full problem and the gap."""

    choice: IntArray
    cost: float
    lower_bound: float
    gap_percent: float
    feasible: bool
    iterations: int
    seconds: float
    car_price: FloatArray
    loc_price: FloatArray
    history: list[dict[str, float]] = field(default_factory=list)
    #: the problem `choice` indexes: the input's table plus the generated columns
    table: WaveProblem | None = None

    def summary(self) -> dict[str, Any]:
        return {"cost": round(self.cost, 2), "lower_bound": round(self.lower_bound, 2),
                "gap_percent": round(self.gap_percent, 4), "feasible": self.feasible,
                "iterations": self.iterations, "seconds": round(self.seconds, 2)}


def gap_percent(cost: float, bound: float) -> float:
    if not math.isfinite(cost) or not math.isfinite(bound):
        return math.inf
    return max(0.0, 100.0 * (cost - bound) / max(1.0, abs(cost)))


def _cumcount(groups: IntArray) -> IntArray:
    """For each entry, how many earlier entries share its group."""
    if len(groups) == 0:
        return groups.copy()
    order = np.argsort(groups, kind="stable")
    g = groups[order]
    start = np.r_[0, np.flatnonzero(np.diff(g)) + 1]
    lengths = np.diff(np.r_[start, len(g)])
    out = np.empty(len(g), dtype=np.int64)
    out[order] = np.arange(len(g)) - np.repeat(start, lengths)
    return out


def _best_two(p: FloatArray) -> tuple[IntArray, FloatArray, FloatArray]:
    """Per row: the cheapest column, its value and the regret to the second cheapest."""
    k = np.argmin(p, axis=1)
    rows = np.arange(p.shape[0])
    best = p[rows, k]
    q = p.copy()
    q[rows, k] = np.inf
    second = q.min(axis=1)
    regret = np.full(len(best), 1e18)
    both = np.isfinite(second)
    regret[both] = second[both] - best[both]
    return k.astype(np.int64), best, regret


def repair(problem: WaveProblem, choice: IntArray, priced: FloatArray,
           max_rounds: int = 200, eject_limit: int = 5_000) -> tuple[IntArray, bool]:
    """Make `choice` feasible. Each overloaded carrier or location keeps the orders that would
    lose most by moving (regret to their next priced option), up to its capacity; the others
    are re-placed in rounds, largest regret first, each onto its best priced option with room
    (never beyond a capacity). An order left with no option with room ejects the cheapest
    movable order from a full resource of one of its options (`_eject`)."""
    n = problem.n
    rows = np.arange(n)
    x = choice.copy()
    finite = np.isfinite(problem.cost)
    cur_car = problem.car[rows, x].astype(np.int64)
    cur_loc = problem.loc[rows, x].astype(np.int64)
    _, _, regret0 = _best_two(np.where(finite, priced, np.inf))
    order = np.argsort(-regret0, kind="stable")
    rank_c = np.empty(n, dtype=np.int64)
    rank_l = np.empty(n, dtype=np.int64)
    rank_c[order] = _cumcount(cur_car[order])
    rank_l[order] = _cumcount(cur_loc[order])
    placed = (rank_c < problem.car_cap[cur_car]) & (rank_l < problem.loc_cap[cur_loc])
    placed &= finite[rows, x]
    car_slack = problem.car_cap - np.bincount(cur_car[placed], minlength=len(problem.car_cap))
    loc_slack = problem.loc_cap - np.bincount(cur_loc[placed], minlength=len(problem.loc_cap))
    for _ in range(max_rounds):
        todo = np.flatnonzero(~placed)
        if len(todo) == 0:
            break
        car_t, loc_t = problem.car[todo], problem.loc[todo]
        room = finite[todo] & (car_slack[car_t] > 0) & (loc_slack[loc_t] > 0)
        k, best, regret = _best_two(np.where(room, priced[todo], np.inf))
        ok = np.isfinite(best)
        if not ok.any():
            break
        todo, k, regret = todo[ok], k[ok], regret[ok]
        o = np.argsort(-regret, kind="stable")
        todo, k = todo[o], k[o]
        c1 = problem.car[todo, k].astype(np.int64)
        l1 = problem.loc[todo, k].astype(np.int64)
        go = (_cumcount(c1) < car_slack[c1]) & (_cumcount(l1) < loc_slack[l1])
        todo, k, c1, l1 = todo[go], k[go], c1[go], l1[go]
        x[todo] = k
        placed[todo] = True
        np.subtract.at(car_slack, c1, 1)
        np.subtract.at(loc_slack, l1, 1)
    stuck = np.flatnonzero(~placed)
    if len(stuck) > eject_limit:
        return x, False
    if len(stuck):
        cur_car = problem.car[rows, x].astype(np.int64)
        cur_loc = problem.loc[rows, x].astype(np.int64)
        for i in stuck.tolist():
            if not _eject(problem, x, placed, cur_car, cur_loc, car_slack, loc_slack, priced, i):
                return x, False
    return x, problem.is_feasible(x)


def _eject(problem: WaveProblem, x: IntArray, placed: npt.NDArray[np.bool_],
           cur_car: IntArray, cur_loc: IntArray, car_slack: IntArray, loc_slack: IntArray,
           priced: FloatArray, i: int) -> bool:
    """Place order i by moving one placed order off a full resource of one of i's options
    onto an option with room; the cheapest such pair of moves (priced). Updates in place."""
    best: tuple[float, int, int, int] | None = None
    for k in np.argsort(priced[i], kind="stable").tolist():
        if not math.isfinite(problem.cost[i, k]):
            break
        c1, l1 = int(problem.car[i, k]), int(problem.loc[i, k])
        c_full, l_full = car_slack[c1] <= 0, loc_slack[l1] <= 0
        if c_full and l_full:
            continue
        if not c_full and not l_full:
            best = (0.0, -1, -1, k)
            break
        on = np.flatnonzero(placed & ((cur_car == c1) if c_full else (cur_loc == l1)))
        if len(on) == 0:
            continue
        car_o, loc_o = problem.car[on], problem.loc[on]
        ok = (np.isfinite(problem.cost[on])
              & ((car_o == cur_car[on, None]) | (car_slack[car_o] > 0))
              & ((loc_o == cur_loc[on, None]) | (loc_slack[loc_o] > 0)))
        # the move must free the full resource and leave i's other resource its room
        ok &= (car_o != c1) & (loc_o != l1)
        if not ok.any():
            continue
        pr = np.where(ok, priced[on], np.inf)
        kk = np.argmin(pr, axis=1)
        delta = pr[np.arange(len(on)), kk] - priced[on, x[on]]
        j = int(np.argmin(delta))
        total = float(delta[j]) + float(priced[i, k])
        if best is None or total < best[0]:
            best = (total, int(on[j]), int(kk[j]), k)
    if best is None:
        return False
    _, j, kj, k = best

    def put(o: int, col: int) -> None:
        if placed[o]:
            car_slack[cur_car[o]] += 1
            loc_slack[cur_loc[o]] += 1
        c, loc = int(problem.car[o, col]), int(problem.loc[o, col])
        car_slack[c] -= 1
        loc_slack[loc] -= 1
        x[o], cur_car[o], cur_loc[o], placed[o] = col, c, loc, True

    if j >= 0:
        put(j, kj)
    put(i, k)
    return True


def improve(problem: WaveProblem, x: IntArray, rounds: int = 6) -> IntArray:
    """Local improvement at real cost: orders move to a cheaper option with room on its
    carrier and location, biggest saving first, never beyond a capacity."""
    x = x.copy()
    n = problem.n
    rows_all = np.arange(n)
    finite = np.isfinite(problem.cost)
    for _ in range(rounds):
        car_load, loc_load = problem.loads(x)
        slack_c = problem.car_cap - car_load
        slack_l = problem.loc_cap - loc_load
        cur_car = problem.car[rows_all, x][:, None]
        cur_loc = problem.loc[rows_all, x][:, None]
        cur_cost = problem.cost[rows_all, x]
        fits = (finite & ((problem.car == cur_car) | (slack_c[problem.car] > 0))
                & ((problem.loc == cur_loc) | (slack_l[problem.loc] > 0)))
        c = np.where(fits, problem.cost, np.inf)
        best = np.argmin(c, axis=1)
        gain = cur_cost - c[rows_all, best]
        movers = np.flatnonzero(gain > 1e-9)
        if len(movers) == 0:
            break
        movers = movers[np.argsort(-gain[movers], kind="stable")]
        alt = best[movers]
        c0, l0 = cur_car[movers, 0], cur_loc[movers, 0]
        c1, l1 = problem.car[movers, alt], problem.loc[movers, alt]
        new_c, new_l = c1 != c0, l1 != l0
        cc = np.where(new_c, _cumcount(np.where(new_c, c1, -1).astype(np.int64)), 0)
        cl = np.where(new_l, _cumcount(np.where(new_l, l1, -1).astype(np.int64)), 0)
        go = (~new_c | (cc < slack_c[c1])) & (~new_l | (cl < slack_l[l1]))
        if not go.any():
            break
        x[movers[go]] = alt[go]
    return x


def _primal(problem: WaveProblem, lam: FloatArray, mu: FloatArray) -> tuple[IntArray, bool]:
    """A plan from prices: every order on its cheapest priced option, repaired to fit the
    capacities (`repair`), then improved at real cost (`improve`)."""
    priced = problem.cost + lam[problem.car] + mu[problem.loc]
    choice = np.argmin(priced, axis=1).astype(np.int64)
    x, ok = repair(problem, choice, priced)
    if ok:
        x = improve(problem, x)
    return x, ok and problem.is_feasible(x)


Columns = list[tuple[IntArray, FloatArray, npt.NDArray[np.int32], npt.NDArray[np.int32]]]


def lagrangian_bound(problem: WaveProblem, lam: FloatArray, mu: FloatArray, tol: float
                     ) -> tuple[float, Columns]:
    """The Lagrangian value at prices λ ≥ 0, μ ≥ 0 — a lower bound on the cost of every
    plan of the full problem — and the catalog's options cheaper than the table's best by
    more than `tol` (`OptionCatalog.price_out`; none without a catalog).

    Each order counts the cheaper of its table's best priced option and a lower bound on the
    priced cost of every option of the full problem (from the same pass over the catalog;
    or the unpriced `rest_lb` when there is no catalog: prices are ≥ 0, so it stays
    below)."""
    best = (problem.cost + lam[problem.car] + mu[problem.loc]).min(axis=1)
    columns: Columns = []
    if problem.catalog is not None:
        rest, columns = problem.catalog.price_out(lam, mu, best, tol)
    else:
        rest = problem.rest_lb
    value = float(np.minimum(best, rest).sum())
    return value - float(lam @ problem.car_cap) - float(mu @ problem.loc_cap), columns


#: an order's overflow option in the smoothed dual costs its cheapest option plus this many
#: times the median cheapest cost (prices never need to be that high where the table fits)
OVERFLOW = 4.0


class _Budget:
    """Evaluations of the smoothed dual and seconds left to a solve."""

    def __init__(self, time_limit: float, max_evaluations: int) -> None:
        self.started = time.monotonic()
        self.time_limit = time_limit
        self.max_evaluations = max_evaluations
        self.evals = 0

    def seconds(self) -> float:
        return time.monotonic() - self.started

    def spent(self) -> bool:
        return self.seconds() > self.time_limit or self.evals >= self.max_evaluations


def _climb(table: WaveProblem, runner: Runner, x: FloatArray, taus: Sequence[float],
           overflow: float, stage_iterations: int, budget: _Budget) -> FloatArray:
    """Prices: L-BFGS-B on the entropy-smoothed dual of `table` (orders may overflow at
    their cheapest cost + `overflow`), one stage per smoothing width in `taus`, each
    warm-started from the last."""
    from scipy.optimize import minimize

    n_car = len(table.car_cap)
    caps = np.concatenate((table.car_cap, table.loc_cap)).astype(np.float64)

    def neg_dual(xv: FloatArray, tau: float) -> tuple[float, FloatArray]:
        budget.evals += 1
        value = 0.0
        load = np.zeros(len(caps))
        for r in runner.smooth(xv[:n_car], xv[n_car:], tau, overflow):
            value += r.value
            load[:n_car] += r.car_load
            load[n_car:] += r.loc_load
        return -(value - float(xv @ caps)), caps - load

    def stop_when_spent(intermediate_result: Any) -> None:
        if budget.seconds() > budget.time_limit:
            raise StopIteration  # SciPy ends the stage with the current point

    bounds = [(0.0, None)] * len(caps)
    for tau in taus:
        if budget.spent():
            break
        left = budget.max_evaluations - budget.evals
        res = minimize(neg_dual, x, args=(tau,), jac=True, method="L-BFGS-B", bounds=bounds,
                       options={"maxiter": max(1, min(stage_iterations, left)),
                                "maxfun": max(1, left), "maxcor": 20},
                       callback=stop_when_spent)
        x = np.maximum(res.x, 0.0)
    return x


def solve_wave(
    problem: WaveProblem, runner: Runner | None = None, *, time_limit: float = 240.0,
    target_gap: float = 0.5, max_iterations: int = 3000, rounds: int = 12,
    taus: Sequence[float] = (0.01, 0.003, 0.001, 0.0003), max_columns: int = 3,
    stage_iterations: int = 50, warm_start_orders: int = 10_000,
    progress: Callable[[dict[str, float]], None] | None = None,
) -> WavePlan:
    """Prices from the smoothed Lagrangian dual, column generation over the catalog, a
    repaired plan, and the Lagrangian bound of the full problem.

    1. Prices (`_climb`): L-BFGS-B (SciPy) on the entropy-smoothed dual of the table
       (`region_smooth` over the region blocks, summed in region order), the smoothing
       width decreasing over `taus` (fractions of the median cheapest cost).
    2. Bound: the hard Lagrangian at those prices over the full problem
       (`lagrangian_bound`), kept when it improves.
    3. Columns: each order for which the catalog holds options cheaper at those prices
       than its table's best gets up to `max_columns` of them as new columns
       (`OptionCatalog.price_out`); then back to 1 with the two smallest widths, for at
       most `rounds` rounds, until no order gains a column.
    4. Plan: each round's prices give a repaired, improved plan (`_primal`); the cheapest
       is kept.
    A wave of more than 2 × `warm_start_orders` orders first runs steps 1 and 3 on every
    k-th order alone (about `warm_start_orders` of them, capacities scaled by their
    share): prices and columns for the whole wave from a tenth of the work. That runs in
    this process whatever the runner.
    It stops at `target_gap` percent, after `max_iterations` evaluations of the smoothed
    dual in all, or at `time_limit` seconds. Within those limits the result depends only on
    the problem, not on the runner (regions are summed in a fixed order)."""
    budget = _Budget(time_limit, max_iterations)
    table = problem
    if runner is None:
        runner = LocalRunner(region_blocks(table))
    n_car, n_loc = len(problem.car_cap), len(problem.loc_cap)
    scale = max(1.0, float(np.median(problem.cost[:, 0])) if problem.n else 1.0)
    widths = [t * scale for t in taus]
    x = np.zeros(n_car + n_loc)
    history: list[dict[str, float]] = []

    def report(entry: dict[str, float]) -> None:
        history.append(entry)
        if progress is not None:
            progress(entry)

    first = widths
    step = problem.n // warm_start_orders if warm_start_orders > 0 else 0
    if problem.catalog is not None and step >= 2:
        sample = problem.subset(np.arange(0, problem.n, step))
        sample_runner = LocalRunner(region_blocks(sample))
        for rnd in range(rounds):
            x = _climb(sample, sample_runner, x, widths if rnd == 0 else widths[-2:],
                       OVERFLOW * scale, stage_iterations, budget)
            _, columns = lagrangian_bound(sample, x[:n_car], x[n_car:], 1e-6 * scale)
            added = sum(len(c[0]) for c in columns[:max_columns])
            report({"iteration": budget.evals, "round": rnd, "sample": len(sample.cost),
                    "columns_added": added, "seconds": budget.seconds()})
            if not added or budget.spent():
                break
            sample = sample.with_columns(columns[:max_columns])
            sample_runner.reset(region_blocks(sample))
        first = widths[-2:]
    best_lb, best_lam, best_mu = -math.inf, np.zeros(n_car), np.zeros(n_loc)
    best_x: IntArray | None = None
    best_cost = math.inf
    for rnd in range(max(1, rounds)):
        if rnd or step < 2 or table.catalog is None:
            x = _climb(table, runner, x, first if rnd == 0 else widths[-2:],
                       OVERFLOW * scale, stage_iterations, budget)
        lam, mu = x[:n_car], x[n_car:]
        lb, columns = lagrangian_bound(table, lam, mu, 1e-6 * scale)
        if lb > best_lb:
            best_lb, best_lam, best_mu = lb, lam.copy(), mu.copy()
        if rnd or step < 2 or table.catalog is None:
            plan, ok = _primal(table, lam, mu)
            if ok and table.objective(plan) < best_cost:
                best_cost, best_x = table.objective(plan), plan
        gap = gap_percent(best_cost, best_lb)
        added = 0
        if gap > target_gap and not budget.spent() and rnd + 1 < rounds:
            columns = columns[:max_columns]
            added = sum(len(c[0]) for c in columns)
            if added:
                table = table.with_columns(columns)
                runner.reset(region_blocks(table))
        report({"iteration": budget.evals, "round": rnd, "bound": best_lb, "cost": best_cost,
                "gap": gap, "columns_added": added, "seconds": budget.seconds()})
        if not added:
            break
    # Cut short before any plan (time or evaluations): one from the best prices, else from
    # none (the build sized the capacities so that the cheapest options can be repaired).
    for lam, mu in ((best_lam, best_mu), (np.zeros(n_car), np.zeros(n_loc))):
        if best_x is not None:
            break
        plan, ok = _primal(table, lam, mu)
        if ok:
            best_cost, best_x = table.objective(plan), plan
    feasible = best_x is not None
    choice = best_x if best_x is not None else np.zeros(table.n, dtype=np.int64)
    return WavePlan(choice, best_cost, best_lb, gap_percent(best_cost, best_lb), feasible,
                    budget.evals, budget.seconds(), best_lam, best_mu, history, table)
