"""Wave solver: Lagrangian bound over region blocks, regret repair and local improvement."""

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
    rest_lb: FloatArray
    n_car: int
    n_loc: int


@dataclass
class StepResult:
    """A region's Lagrangian subproblem at given prices: its value and resource loads."""

    value: float
    car_load: IntArray
    loc_load: IntArray


def region_blocks(problem: WaveProblem) -> list[RegionBlock]:
    """Split the problem by region (fixed order: region 0, 1, ...)."""
    out = []
    for r in range(problem.regions):
        rows = np.flatnonzero(problem.region == r).astype(np.int64)
        out.append(RegionBlock(r, rows, problem.cost[rows], problem.car[rows],
                               problem.loc[rows], problem.rest_lb[rows],
                               len(problem.car_cap), len(problem.loc_cap)))
    return out


def _priced_choice(block: RegionBlock, lam: FloatArray, mu: FloatArray
                   ) -> tuple[IntArray, FloatArray]:
    priced = block.cost + lam[block.car] + mu[block.loc]
    choice = np.argmin(priced, axis=1)
    best = np.take_along_axis(priced, choice[:, None], axis=1)[:, 0]
    return choice.astype(np.int64), best


def region_step(block: RegionBlock, lam: FloatArray, mu: FloatArray) -> StepResult:
    """Each order takes its cheapest option at priced cost (cost + carrier and location
    prices); an order whose left-out options may be cheaper counts their lower bound and no
    load. Deterministic: the value is summed in row order."""
    priced = block.cost + lam[block.car] + mu[block.loc]
    choice = np.argmin(priced, axis=1)
    best = np.take_along_axis(priced, choice[:, None], axis=1)[:, 0]
    use = best <= block.rest_lb
    value = float(np.minimum(best, block.rest_lb).sum())
    rows = np.flatnonzero(use)
    car = block.car[rows, choice[rows]].astype(np.int64)
    loc = block.loc[rows, choice[rows]].astype(np.int64)
    res = StepResult(value, np.bincount(car, minlength=block.n_car).astype(np.int64),
                     np.bincount(loc, minlength=block.n_loc).astype(np.int64))
    return res


def region_choice(block: RegionBlock, lam: FloatArray, mu: FloatArray) -> IntArray:
    """Cheapest option of every order of the block at priced cost."""
    return _priced_choice(block, lam, mu)[0]


class Runner(Protocol):
    """Evaluates the region subproblems: in this process or on a cluster."""

    def step(self, lam: FloatArray, mu: FloatArray) -> list[StepResult]: ...

    def choice(self, lam: FloatArray, mu: FloatArray) -> list[IntArray]: ...


class LocalRunner:
    """Region subproblems one after the other in this process."""

    def __init__(self, blocks: Sequence[RegionBlock]):
        self.blocks = list(blocks)

    def step(self, lam: FloatArray, mu: FloatArray) -> list[StepResult]:
        return [region_step(b, lam, mu) for b in self.blocks]

    def choice(self, lam: FloatArray, mu: FloatArray) -> list[IntArray]:
        return [region_choice(b, lam, mu) for b in self.blocks]


class DaskRunner:
    """Region subproblems as Dask tasks: the blocks are scattered once, each iteration sends
    the prices and gathers the results in region order (so the sums match `LocalRunner`)."""

    def __init__(self, client: Any, blocks: Sequence[RegionBlock], token: str = "wave"):
        self.client = client
        self.token = token
        workers = sorted(client.ncores())
        if workers:  # round robin, so every worker holds regions
            self.futures = [client.scatter(b, workers=[workers[r % len(workers)]], hash=False)
                            for r, b in enumerate(blocks)]
        else:
            self.futures = client.scatter(list(blocks), hash=False)
        self.calls = 0

    def _map(self, fn: Callable[..., Any], lam: FloatArray, mu: FloatArray) -> list[Any]:
        self.calls += 1
        futs = [self.client.submit(fn, f, lam, mu, pure=False,
                                   key=f"{self.token}-{fn.__name__}-{self.calls}-{r}")
                for r, f in enumerate(self.futures)]
        return list(self.client.gather(futs))

    def step(self, lam: FloatArray, mu: FloatArray) -> list[StepResult]:
        return self._map(region_step, lam, mu)

    def choice(self, lam: FloatArray, mu: FloatArray) -> list[IntArray]:
        return self._map(region_choice, lam, mu)


@dataclass
class WavePlan:
    """A wave plan: the option each order takes, its cost, a lower bound and the gap."""

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


def _primal(problem: WaveProblem, runner: Runner, blocks_rows: list[IntArray],
            lam: FloatArray, mu: FloatArray) -> tuple[IntArray, bool]:
    choice = np.zeros(problem.n, dtype=np.int64)
    for rows, ch in zip(blocks_rows, runner.choice(lam, mu), strict=True):
        choice[rows] = ch
    priced = problem.cost + lam[problem.car] + mu[problem.loc]
    x, ok = repair(problem, choice, priced)
    if ok:
        x = improve(problem, x)
    return x, ok and problem.is_feasible(x)


def solve_wave(
    problem: WaveProblem, runner: Runner | None = None, *, time_limit: float = 240.0,
    target_gap: float = 0.5, max_iterations: int = 600, primal_every: int = 40,
    scaled: bool = False, patience: int = 15, method: str = "rprop", eta0: float = 0.05,
    progress: Callable[[dict[str, float]], None] | None = None,
) -> WavePlan:
    """Lagrangian relaxation of every carrier and location capacity, a repaired plan from the
    best prices every `primal_every` iterations, and a stop at `target_gap` percent,
    `max_iterations` or `time_limit` seconds (only the time limit depends on the machine:
    within it, the result is fixed by the problem, whatever the runner).

    Price updates: `method="rprop"` (default) moves each price by its own step in the
    direction of its resource's excess, the step growing × 1.2 while the sign holds and
    halving when it flips (`eta0` × the median cheapest cost to start); `"polyak"` takes
    subgradient steps of Polyak length towards the best plan's cost (θ halved after
    `patience` iterations without a better bound; directions deflected by the previous one,
    optionally `scaled` by 1 / capacity)."""
    started = time.monotonic()
    blocks_rows = [np.flatnonzero(problem.region == r) for r in range(problem.regions)]
    if runner is None:
        runner = LocalRunner(region_blocks(problem))
    n_car, n_loc = len(problem.car_cap), len(problem.loc_cap)
    lam = np.zeros(n_car)
    mu = np.zeros(n_loc)
    best_lb, best_lam, best_mu = -math.inf, lam.copy(), mu.copy()
    best_x: IntArray | None = None
    best_cost = math.inf
    theta = 1.0
    since_improve = 0
    d_car = np.zeros(n_car)
    d_loc = np.zeros(n_loc)
    history: list[dict[str, float]] = []
    it = 0
    # scaled subgradient: a resource moves by its excess relative to its capacity
    w_car = 1.0 / np.maximum(problem.car_cap, 1) if scaled else np.ones(n_car)
    w_loc = 1.0 / np.maximum(problem.loc_cap, 1) if scaled else np.ones(n_loc)
    scale = max(1.0, float(np.median(problem.cost[:, 0])) if problem.n else 1.0)
    eta_car = np.full(n_car, eta0 * scale)
    eta_loc = np.full(n_loc, eta0 * scale)
    prev_car = np.zeros(n_car)
    prev_loc = np.zeros(n_loc)
    while True:
        if it % primal_every == 0 or it == max_iterations:
            x, ok = _primal(problem, runner, blocks_rows, best_lam if it else lam,
                            best_mu if it else mu)
            if ok:
                c = problem.objective(x)
                if c < best_cost:
                    best_cost, best_x = c, x
        res = runner.step(lam, mu)
        value = 0.0
        car_load = np.zeros(n_car, dtype=np.int64)
        loc_load = np.zeros(n_loc, dtype=np.int64)
        for r in res:
            value += r.value
            car_load += r.car_load
            loc_load += r.loc_load
        lb = value - float(lam @ problem.car_cap) - float(mu @ problem.loc_cap)
        if lb > best_lb + 1e-9 * abs(lb):
            if lb > best_lb + 1e-6 * abs(lb):
                since_improve = 0
            best_lb, best_lam, best_mu = lb, lam.copy(), mu.copy()
        else:
            since_improve += 1
        gap = gap_percent(best_cost, best_lb)
        entry = {"iteration": it, "bound": best_lb, "cost": best_cost, "gap": gap,
                 "theta": theta, "seconds": time.monotonic() - started}
        history.append(entry)
        if progress is not None:
            progress(entry)
        if gap <= target_gap or it >= max_iterations or \
                time.monotonic() - started > time_limit:
            break
        if since_improve >= patience:
            theta = max(theta / 2.0, 1e-4)
            since_improve = 0
        g_car = (car_load - problem.car_cap).astype(np.float64)
        g_loc = (loc_load - problem.loc_cap).astype(np.float64)
        g_car = np.where((lam <= 0) & (g_car < 0), 0.0, g_car)
        g_loc = np.where((mu <= 0) & (g_loc < 0), 0.0, g_loc)
        if not g_car.any() and not g_loc.any():
            break  # the priced choice is feasible: the bound is tight for it
        if method == "rprop":
            # per-price step lengths: grow while the excess keeps its sign, shrink on a flip
            s_car = np.sign(g_car)
            s_loc = np.sign(g_loc)
            eta_car = np.clip(np.where(s_car * prev_car > 0, eta_car * 1.2,
                                       np.where(s_car * prev_car < 0, eta_car * 0.5, eta_car)),
                              1e-4 * scale, 0.2 * scale)
            eta_loc = np.clip(np.where(s_loc * prev_loc > 0, eta_loc * 1.2,
                                       np.where(s_loc * prev_loc < 0, eta_loc * 0.5, eta_loc)),
                              1e-4 * scale, 0.2 * scale)
            prev_car, prev_loc = s_car, s_loc
            lam = np.maximum(0.0, lam + eta_car * s_car)
            mu = np.maximum(0.0, mu + eta_loc * s_loc)
        else:
            d_car = g_car * w_car + 0.3 * d_car
            d_loc = g_loc * w_loc + 0.3 * d_loc
            norm = float(g_car @ d_car + g_loc @ d_loc)
            target = best_cost if math.isfinite(best_cost) else lb + 0.05 * scale * problem.n
            step = theta * max(target - lb, 1e-3 * scale) / norm
            lam = np.maximum(0.0, lam + step * d_car)
            mu = np.maximum(0.0, mu + step * d_loc)
        it += 1
    if best_x is None or it % primal_every:
        x, ok = _primal(problem, runner, blocks_rows, best_lam, best_mu)
        if ok and problem.objective(x) < best_cost:
            best_cost, best_x = problem.objective(x), x
    feasible = best_x is not None
    choice = best_x if best_x is not None else np.zeros(problem.n, dtype=np.int64)
    return WavePlan(choice, best_cost, best_lb, gap_percent(best_cost, best_lb), feasible, it,
                    time.monotonic() - started, best_lam, best_mu, history)
