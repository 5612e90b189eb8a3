"""Test helpers for the GAP allocator's tests: exact answers on tiny instances."""

from __future__ import annotations

import itertools
import math

import numpy as np

from silkroute.routing.gap import AllocationProblem


def brute_force(problem: AllocationProblem) -> int:
    """The optimum of a tiny instance by enumerating every assignment."""
    best = math.inf
    for assignment in itertools.product(range(problem.agents), repeat=problem.jobs):
        a = np.array(assignment)
        if problem.is_feasible(a):
            best = min(best, problem.objective(a))
    return int(best)
