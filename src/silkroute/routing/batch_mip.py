"""HiGHS models of (pieces of) a generalised assignment problem: LP relaxation and MIP.

highspy is imported lazily: its HiGHS symbols clash with the copy inside OR-Tools, so a
process that has loaded OR-Tools cannot load highspy (and the reverse).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from silkroute.routing.gap import AllocationProblem

if TYPE_CHECKING:
    import highspy

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass
class MipOutcome:
    """What a HiGHS run on a (sub)model returned."""

    status: str  # "optimal", "infeasible", "time_limit", "other"
    objective: float | None
    bound: float
    assignment: IntArray | None  # agent per job of the (sub)model, -1 where unset


@dataclass
class LpOutcome:
    """LP relaxation value, reduced costs and solution (m × n; +inf reduced cost if forbidden)."""

    status: str
    value: float
    reduced_cost: FloatArray
    x: FloatArray
    capacity_dual: FloatArray
    job_dual: FloatArray


def _highs(threads: int = 1) -> highspy.Highs:
    import highspy

    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("threads", threads)
    h.setOptionValue("random_seed", 0)
    return h


def build_model(
    cost: IntArray,
    weight: IntArray,
    capacity: IntArray,
    mask: npt.NDArray[np.bool_],
    integral: bool,
) -> tuple[highspy.Highs, IntArray, IntArray]:
    """The assignment model over the variables where `mask` is True: each job exactly once,
    each agent within capacity. Returns the solver and the (agent, job) of each column."""
    import highspy

    m, n = cost.shape
    # column order: by agent, then job (the order of the plain model; HiGHS's search path
    # depends on it, and on the public instances this order does better than by job)
    ii, jj = np.nonzero(mask)
    ii = ii.astype(np.int64)
    jj = jj.astype(np.int64)
    k = len(ii)
    lp = highspy.HighsLp()
    lp.num_col_ = k
    lp.num_row_ = n + m
    lp.col_cost_ = cost[ii, jj].astype(np.float64)
    lp.col_lower_ = np.zeros(k)
    lp.col_upper_ = np.ones(k)
    lp.row_lower_ = np.concatenate([np.ones(n), np.full(m, -highspy.kHighsInf)])
    lp.row_upper_ = np.concatenate([np.ones(n), capacity.astype(np.float64)])
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = np.arange(0, 2 * k + 1, 2, dtype=np.int32)
    index = np.empty(2 * k, dtype=np.int32)
    index[0::2] = jj
    index[1::2] = n + ii
    value = np.empty(2 * k, dtype=np.float64)
    value[0::2] = 1.0
    value[1::2] = weight[ii, jj]
    lp.a_matrix_.index_ = index
    lp.a_matrix_.value_ = value
    if integral:
        lp.integrality_ = [highspy.HighsVarType.kInteger] * k
    h = _highs()
    h.passModel(lp)
    return h, ii, jj


def solve_lp(problem: AllocationProblem, time_limit: float) -> LpOutcome:
    """LP relaxation of the whole problem with HiGHS (dual simplex)."""
    import highspy

    m, n = problem.agents, problem.jobs
    h, ii, jj = build_model(
        problem.cost, problem.weight, problem.capacity, problem.allowed, integral=False
    )
    h.setOptionValue("time_limit", max(0.05, time_limit))
    h.run()
    status = h.getModelStatus()
    rc = np.full((m, n), np.inf)
    x = np.zeros((m, n))
    duals = np.zeros(m)
    job_duals = np.zeros(n)
    if status == highspy.HighsModelStatus.kOptimal:
        sol = h.getSolution()
        rc[ii, jj] = np.asarray(sol.col_dual)
        x[ii, jj] = np.asarray(sol.col_value)
        duals = np.asarray(sol.row_dual)[n:].copy()
        job_duals = np.asarray(sol.row_dual)[:n].copy()
        return LpOutcome("optimal", float(h.getInfo().objective_function_value), rc, x, duals,
                         job_duals)
    if status == highspy.HighsModelStatus.kInfeasible:
        return LpOutcome("infeasible", float("inf"), rc, x, duals, job_duals)
    return LpOutcome("other", float("-inf"), rc, x, duals, job_duals)


def solve_mip(
    cost: IntArray,
    weight: IntArray,
    capacity: IntArray,
    mask: npt.NDArray[np.bool_],
    time_limit: float,
    start: IntArray | None = None,
    cutoff: float | None = None,
    seed: int = 0,
) -> MipOutcome:
    """Solve the assignment MIP over `mask` with HiGHS, optionally from a start and below a
    cutoff (objective must be at most `cutoff`)."""
    import highspy

    n = cost.shape[1]
    h, ii, jj = build_model(cost, weight, capacity, mask, integral=True)
    h.setOptionValue("time_limit", max(0.01, time_limit))
    h.setOptionValue("random_seed", int(seed) % 2_147_483_647)
    h.setOptionValue("mip_rel_gap", 0.0)
    h.setOptionValue("mip_abs_gap", 0.999)
    if cutoff is not None:
        h.setOptionValue("objective_bound", float(cutoff))
    if start is not None:
        v = (start[jj] == ii).astype(np.float64)
        h.setSolution(len(v), np.arange(len(v), dtype=np.int32), v)
    h.run()
    status = h.getModelStatus()
    info = h.getInfo()
    assignment: IntArray | None = None
    objective: float | None = None
    if info.primal_solution_status == 2:
        value = np.asarray(h.getSolution().col_value)
        chosen = value > 0.5
        a = np.full(n, -1, dtype=np.int64)
        a[jj[chosen]] = ii[chosen]
        if (a >= 0).all():
            assignment = a
            objective = float(cost[a, np.arange(n)].sum())
    if status == highspy.HighsModelStatus.kOptimal:
        name = "optimal"
    elif status in (highspy.HighsModelStatus.kInfeasible, highspy.HighsModelStatus.kObjectiveBound):
        name = "infeasible"
    elif status == highspy.HighsModelStatus.kTimeLimit:
        name = "time_limit"
    else:
        name = "other"
    bound = float(info.mip_dual_bound) if np.isfinite(info.mip_dual_bound) else float("-inf")
    return MipOutcome(name, objective, bound, assignment)

