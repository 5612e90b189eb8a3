"""Lower bounds for the batch allocator: HiGHS LP relaxation, or a Lagrangian bound."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from silkroute.routing.batch_mip import solve_lp
from silkroute.routing.gap import AllocationProblem

FloatArray = npt.NDArray[np.float64]

#: above this many allowed (agent, job) pairs the LP is not attempted; the Lagrangian is used
LP_MAX_VARIABLES = 2_000_000


@dataclass
class Bound:
    """A valid lower bound, with the prices that produced it."""

    method: str  # "lp" or "lagrangian" or "none"
    value: float  # -inf when nothing is known; +inf when proven infeasible
    reduced_cost: FloatArray  # per (agent, job): how much more than the bound using it costs
    capacity_price: FloatArray  # per agent, >= 0: the price of one unit of its capacity
    fractional: FloatArray  # LP solution (zeros for the Lagrangian)
    job_price: FloatArray | None = None  # the LP's duals of the assignment rows (LP only)


def lagrangian_bound(
    problem: AllocationProblem,
    deadline: float,
    upper: float | None = None,
    iterations: int = 300,
) -> Bound:
    """Relax the capacity constraints with prices λ ≥ 0 and maximise
    L(λ) = Σ_j min_i (c_ij + λ_i w_ij) − Σ_i λ_i b_i by subgradient steps."""
    m, n = problem.agents, problem.jobs
    big = np.where(problem.allowed, 0.0, np.inf)
    cost = problem.cost.astype(np.float64) + big
    weight = problem.weight.astype(np.float64)
    cap = problem.capacity.astype(np.float64)
    lam = np.zeros(m)
    best = -math.inf
    best_lam = lam.copy()
    theta = 2.0
    stall = 0
    cols = np.arange(n)
    target = upper
    for _ in range(iterations):
        if time.monotonic() >= deadline:
            break
        adjusted = cost + lam[:, None] * weight
        choice = np.argmin(adjusted, axis=0)
        value = float(adjusted[choice, cols].sum() - lam @ cap)
        if value > best + 1e-9:
            best, best_lam, stall = value, lam.copy(), 0
        else:
            stall += 1
            if stall >= 20:
                theta, stall = theta / 2, 0
        used = np.bincount(choice, weights=weight[choice, cols], minlength=m)
        g = used - cap
        g[(lam <= 0) & (g < 0)] = 0.0
        norm = float(g @ g)
        if norm == 0.0 or theta < 1e-6:
            break
        goal = target if target is not None else best + abs(best) * 0.01 + 1.0
        step = theta * max(goal - value, 1e-6) / norm
        lam = np.maximum(0.0, lam + step * g)
    adjusted = cost + best_lam[:, None] * weight
    reduced = adjusted - adjusted.min(axis=0)[None, :]
    if not np.isfinite(best):
        best = -math.inf
    return Bound("lagrangian", best, reduced, best_lam, np.zeros((m, n)))


def lower_bound(problem: AllocationProblem, deadline: float) -> Bound:
    """The LP relaxation (HiGHS) if it fits, else the Lagrangian bound."""
    m, n = problem.agents, problem.jobs
    if int(problem.allowed.sum()) <= LP_MAX_VARIABLES:
        remaining = deadline - time.monotonic()
        lp = solve_lp(problem, remaining)
        if lp.status == "optimal":
            return Bound("lp", lp.value, np.maximum(lp.reduced_cost, 0.0),
                         np.maximum(-lp.capacity_dual, 0.0), lp.x, lp.job_dual)
        if lp.status == "infeasible":
            return Bound("lp", math.inf, lp.reduced_cost, np.zeros(m), lp.x)
    if time.monotonic() < deadline:
        return lagrangian_bound(problem, deadline)
    return Bound("none", -math.inf, np.zeros((m, n)), np.zeros(m), np.zeros((m, n)))
