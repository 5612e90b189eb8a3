"""The plain assignment MIP solved by SciPy's HiGHS, in this process or in a child process.

`plain_milp` is the model a user would reach for: one binary per (agent, job), each job
exactly once, each agent within capacity, `scipy.optimize.milp` with a time limit. It is the
baseline of `silkroute bench gap`, and the batch allocator runs it as a member of its
portfolio: `PlainMipProcess` starts it in a child Python process (on the machine's second
core) while the allocator's own phases run, and hands back the child's assignment and bound.
A process, not a thread: it can be killed the moment the allocator has proven its answer,
and SciPy's HiGHS offers no way to interrupt a solve from outside.

The child reads the instance from an `.npz` file and writes its answer as an `.npz` on
stdout (`python -m silkroute.routing.plain_mip`).
"""

from __future__ import annotations

import io
import math
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

IntArray = npt.NDArray[np.int64]


@dataclass
class PlainOutcome:
    """What the plain MIP found: an assignment and its cost (if any), HiGHS's dual bound
    (−inf if none), whether HiGHS called it optimal (within its default relative gap of
    1e-4, so not a proof: the bound is), and its seconds."""

    objective: int | None
    assignment: IntArray | None
    bound: float
    optimal: bool
    seconds: float


def plain_milp(cost: IntArray, weight: IntArray, capacity: IntArray,
               allowed: npt.NDArray[np.bool_], time_limit: float) -> PlainOutcome:
    """The plain model with `scipy.optimize.milp` (HiGHS) within `time_limit` seconds."""
    from scipy.optimize import Bounds, LinearConstraint, milp
    from scipy.sparse import coo_matrix

    m, n = cost.shape
    cols = np.arange(m * n)
    agent = np.repeat(np.arange(m), n)
    job = np.tile(np.arange(n), m)
    assign = coo_matrix((np.ones(m * n), (job, cols)), shape=(n, m * n)).tocsr()
    cap = coo_matrix((weight.reshape(-1).astype(float), (agent, cols)),
                     shape=(m, m * n)).tocsr()
    upper = allowed.reshape(-1).astype(float)
    started = time.monotonic()
    res = milp(
        cost.reshape(-1).astype(float),
        constraints=[LinearConstraint(assign, 1, 1),
                     LinearConstraint(cap, -np.inf, capacity.astype(float))],
        integrality=np.ones(m * n),
        bounds=Bounds(0, upper),
        options={"time_limit": max(0.01, time_limit)},
    )
    seconds = time.monotonic() - started
    bound = getattr(res, "mip_dual_bound", None)
    bound = float(bound) if bound is not None and math.isfinite(bound) else -math.inf
    if res.x is None:
        return PlainOutcome(None, None, bound, False, seconds)
    x = np.asarray(res.x).reshape(m, n)
    assignment = np.argmax(x, axis=0).astype(np.int64)
    objective = int(cost[assignment, np.arange(n)].sum())
    return PlainOutcome(objective, assignment, bound, bool(res.status == 0), seconds)


class PlainMipProcess:
    """`plain_milp` in a child process, started at once; `outcome` waits for it (until a
    moment), `stop` kills it. The child's own time limit is set so it ends by `until`."""

    def __init__(self, cost: IntArray, weight: IntArray, capacity: IntArray,
                 allowed: npt.NDArray[np.bool_], until: float):
        # the instance goes through a file: a pipe would block this process until the child
        # has started and read it
        fd, self._path = tempfile.mkstemp(prefix="silkroute-mip-", suffix=".npz")
        try:
            with os.fdopen(fd, "wb") as fh:
                np.savez(fh, cost=cost, weight=weight, capacity=capacity, allowed=allowed,
                         until=np.float64(until))
            self._proc: subprocess.Popen[bytes] | None = subprocess.Popen(
                [sys.executable, "-m", "silkroute.routing.plain_mip", self._path],
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            )
        except OSError:
            os.unlink(self._path)
            raise

    def outcome(self, until: float) -> PlainOutcome | None:
        """The child's answer, waiting for it at most until `until` (monotonic clock); None if
        it gave none by then (it is killed), or failed."""
        proc = self._proc
        if proc is None:
            return None
        try:
            out, _ = proc.communicate(timeout=max(0.0, until - time.monotonic()))
        except subprocess.TimeoutExpired:
            self.stop()
            return None
        self.stop()
        if proc.returncode != 0 or not out:
            return None
        with np.load(io.BytesIO(out)) as z:
            found = bool(z["found"])
            return PlainOutcome(
                int(z["objective"]) if found else None,
                z["assignment"].astype(np.int64) if found else None,
                float(z["bound"]), bool(z["optimal"]), float(z["seconds"]),
            )

    def stop(self) -> None:
        """Kill the child (if still running) and reap it."""
        proc, self._proc = self._proc, None
        if proc is not None:
            if proc.poll() is None:
                proc.kill()
            proc.communicate()
        if os.path.exists(self._path):
            os.unlink(self._path)


def _child(path: str) -> None:
    # SciPy's optimize package takes about 0.4 s to import: before the clock is read
    import scipy.optimize  # noqa: F401

    with np.load(path) as z:
        cost, weight = z["cost"], z["weight"]
        capacity, allowed = z["capacity"], z["allowed"]
        until = float(z["until"])
    # CLOCK_MONOTONIC is one clock for every process of the machine; HiGHS overruns its time
    # limit by a few hundredths of a second, and the answer is written back
    out = plain_milp(cost, weight, capacity, allowed, until - time.monotonic() - 0.05)
    buf = io.BytesIO()
    np.savez(buf, found=np.bool_(out.objective is not None),
             objective=np.int64(0 if out.objective is None else out.objective),
             assignment=np.zeros(0, np.int64) if out.assignment is None else out.assignment,
             bound=np.float64(out.bound), optimal=np.bool_(out.optimal),
             seconds=np.float64(out.seconds))
    sys.stdout.buffer.write(buf.getvalue())
    sys.stdout.buffer.flush()


if __name__ == "__main__":
    _child(sys.argv[1])
