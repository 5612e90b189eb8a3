"""Generalised assignment problem model and its readers (OR-Library GAP files, silkroute JSON)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

_INT_RE = re.compile(r"^[+-]?\d+$")


class ProblemFormatError(ValueError):
    """A problem file is malformed; the message names the position and what was expected."""

    def __init__(self, message: str, *, position: str | None = None):
        super().__init__(message)
        self.message = message
        self.position = position


@dataclass(frozen=True)
class AllocationProblem:
    """Assign each of n jobs to one of m agents within the agents' capacities at least cost.

    `cost[i][j]` and `weight[i][j]` are the cost and the use of agent i's capacity when job j
    goes to agent i; `allowed[i][j]` is False when job j may not go to agent i (its cost and
    weight are then 0 and meaningless).
    """

    cost: IntArray
    weight: IntArray
    capacity: IntArray
    allowed: BoolArray = field(default=None)  # type: ignore[arg-type,assignment]
    agent_names: tuple[str, ...] = ()
    job_names: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        cost = np.asarray(self.cost, dtype=np.int64)
        weight = np.asarray(self.weight, dtype=np.int64)
        capacity = np.asarray(self.capacity, dtype=np.int64).reshape(-1)
        if cost.ndim != 2 or weight.shape != cost.shape:
            raise ValueError(f"cost {cost.shape} and weight {weight.shape} must be m × n arrays")
        if capacity.shape != (cost.shape[0],):
            raise ValueError(f"capacity {capacity.shape} must have one entry per agent")
        if self.allowed is None:
            allowed = np.ones(cost.shape, dtype=np.bool_)
        else:
            allowed = np.asarray(self.allowed, dtype=np.bool_)
            if allowed.shape != cost.shape:
                raise ValueError(f"allowed {allowed.shape} must match cost {cost.shape}")
        object.__setattr__(self, "cost", cost)
        object.__setattr__(self, "weight", weight)
        object.__setattr__(self, "capacity", capacity)
        object.__setattr__(self, "allowed", allowed)

    @property
    def agents(self) -> int:
        return int(self.cost.shape[0])

    @property
    def jobs(self) -> int:
        return int(self.cost.shape[1])

    def objective(self, assignment: list[int] | IntArray) -> int:
        """Total cost of an assignment (assignment[j] = agent of job j)."""
        a = np.asarray(assignment, dtype=np.int64)
        return int(self.cost[a, np.arange(self.jobs)].sum())

    def load(self, assignment: list[int] | IntArray) -> IntArray:
        """Capacity used per agent by an assignment."""
        a = np.asarray(assignment, dtype=np.int64)
        return np.bincount(a, weights=self.weight[a, np.arange(self.jobs)], minlength=self.agents)\
            .astype(np.int64)

    def is_feasible(self, assignment: list[int] | IntArray) -> bool:
        """True when every job has an allowed agent and no capacity is exceeded."""
        a = np.asarray(assignment, dtype=np.int64)
        if a.shape != (self.jobs,) or (a < 0).any() or (a >= self.agents).any():
            return False
        if not self.allowed[a, np.arange(self.jobs)].all():
            return False
        return bool((self.load(a) <= self.capacity).all())


# --------------------------------------------------------------------------- OR-Library


def read_orlib(path: str | Path) -> AllocationProblem:
    """Read an OR-Library GAP file: `m n`, m×n costs, m×n weights, m capacities."""
    text = Path(path).read_text(encoding="utf-8", errors="replace")
    return parse_orlib(text)


def parse_orlib(text: str) -> AllocationProblem:
    """Parse the text of an OR-Library GAP file (see `read_orlib`)."""
    tokens: list[tuple[str, int, int]] = []  # (token, line, token number within the line)
    for line_no, line in enumerate(text.splitlines(), start=1):
        for tok_no, tok in enumerate(line.split(), start=1):
            tokens.append((tok, line_no, tok_no))
    last_line = max(1, len(text.splitlines()))
    pos = 0

    def take(what: str, minimum: int | None = None) -> int:
        nonlocal pos
        if pos >= len(tokens):
            raise ProblemFormatError(
                f"line {last_line}: unexpected end of file, expected {what}",
                position=f"line {last_line}",
            )
        tok, line_no, tok_no = tokens[pos]
        where = f"line {line_no}, token {tok_no}"
        if not _INT_RE.match(tok):
            raise ProblemFormatError(
                f"{where}: expected {what} (an integer), got {tok!r}", position=where
            )
        value = int(tok)
        if minimum is not None and value < minimum:
            raise ProblemFormatError(
                f"{where}: expected {what} to be at least {minimum}, got {value}", position=where
            )
        pos += 1
        return value

    m = take("the number of agents m", 1)
    n = take("the number of jobs n", 1)
    cost = np.empty((m, n), dtype=np.int64)
    weight = np.empty((m, n), dtype=np.int64)
    capacity = np.empty(m, dtype=np.int64)
    # fast path: if the remaining tokens are all integers, bulk convert; fall back for errors
    needed = 2 * m * n + m
    rest = tokens[pos : pos + needed]
    if len(rest) == needed and all(_INT_RE.match(t[0]) for t in rest):
        values = np.array([int(t[0]) for t in rest], dtype=np.int64)
        cost[:] = values[: m * n].reshape(m, n)
        weight[:] = values[m * n : 2 * m * n].reshape(m, n)
        capacity[:] = values[2 * m * n :]
        bad_w = np.argwhere(weight < 0)
        bad_c = np.flatnonzero(capacity < 0)
        if bad_w.size:
            i, j = (int(x) for x in bad_w[0])
            take_at = pos + m * n + i * n + j
            _, line_no, tok_no = tokens[take_at]
            where = f"line {line_no}, token {tok_no}"
            raise ProblemFormatError(
                f"{where}: expected weight[{i}][{j}] to be at least 0, got {weight[i, j]}",
                position=where,
            )
        if bad_c.size:
            i = int(bad_c[0])
            _, line_no, tok_no = tokens[pos + 2 * m * n + i]
            where = f"line {line_no}, token {tok_no}"
            raise ProblemFormatError(
                f"{where}: expected capacity[{i}] to be at least 0, got {capacity[i]}",
                position=where,
            )
        pos += needed
    else:
        for i in range(m):
            for j in range(n):
                cost[i, j] = take(f"cost[{i}][{j}]")
        for i in range(m):
            for j in range(n):
                weight[i, j] = take(f"weight[{i}][{j}]", 0)
        for i in range(m):
            capacity[i] = take(f"capacity[{i}]", 0)
    if pos < len(tokens):
        tok, line_no, tok_no = tokens[pos]
        where = f"line {line_no}, token {tok_no}"
        raise ProblemFormatError(
            f"{where}: expected end of file after {m} capacities, got {tok!r}", position=where
        )
    return AllocationProblem(cost=cost, weight=weight, capacity=capacity)


# --------------------------------------------------------------------------- silkroute JSON


def read_allocation_json(path: str | Path) -> AllocationProblem:
    """Read a silkroute allocation JSON file (docs/allocation-format.md)."""
    text = Path(path).read_text(encoding="utf-8", errors="replace")
    return parse_allocation_json(text)


def _fail(path: str, expected: str, got: Any = ...) -> ProblemFormatError:
    msg = f"{path}: expected {expected}"
    if got is not ...:
        msg += f", got {json.dumps(got)[:60]}"
    return ProblemFormatError(msg, position=path)


def _int(value: Any, path: str, what: str, minimum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _fail(path, what, value)
    if minimum is not None and value < minimum:
        raise _fail(path, f"{what} ≥ {minimum}", value)
    return value


def parse_allocation_json(text: str) -> AllocationProblem:
    """Parse a silkroute allocation JSON document (see docs/allocation-format.md)."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno}, column {exc.colno}"
        raise ProblemFormatError(f"{where}: invalid JSON: {exc.msg}", position=where) from None
    if not isinstance(doc, dict):
        raise _fail("$", "an object with 'agents' and 'jobs'", doc)
    fmt = doc.get("format", "silkroute-allocation")
    if fmt != "silkroute-allocation":
        raise _fail("format", '"silkroute-allocation"', fmt)
    version = doc.get("version", 1)
    if version != 1:
        raise _fail("version", "1", version)
    agents = doc.get("agents")
    if not isinstance(agents, list) or not agents:
        raise _fail("agents", "a non-empty list of agents", ... if agents is None else agents)
    names: list[str] = []
    index: dict[str, int] = {}
    capacity: list[int] = []
    for i, agent in enumerate(agents):
        p = f"agents[{i}]"
        if not isinstance(agent, dict):
            raise _fail(p, "an object with 'id' and 'capacity'", agent)
        aid = agent.get("id", str(i))
        if not isinstance(aid, str) or not aid:
            raise _fail(f"{p}.id", "a non-empty string", aid)
        if aid in index:
            raise _fail(f"{p}.id", f"a unique agent id ({aid!r} is agents[{index[aid]}])")
        if "capacity" not in agent:
            raise _fail(f"{p}.capacity", "an integer capacity ≥ 0 (missing)")
        capacity.append(_int(agent["capacity"], f"{p}.capacity", "an integer capacity", 0))
        index[aid] = i
        names.append(aid)
    jobs = doc.get("jobs")
    if not isinstance(jobs, list) or not jobs:
        raise _fail("jobs", "a non-empty list of jobs", ... if jobs is None else jobs)
    m, n = len(agents), len(jobs)
    cost = np.zeros((m, n), dtype=np.int64)
    weight = np.zeros((m, n), dtype=np.int64)
    allowed = np.zeros((m, n), dtype=np.bool_)
    job_names: list[str] = []
    seen_jobs: dict[str, int] = {}
    for j, job in enumerate(jobs):
        p = f"jobs[{j}]"
        if not isinstance(job, dict):
            raise _fail(p, "an object with 'options'", job)
        jid = job.get("id", str(j))
        if not isinstance(jid, str) or not jid:
            raise _fail(f"{p}.id", "a non-empty string", jid)
        if jid in seen_jobs:
            raise _fail(f"{p}.id", f"a unique job id ({jid!r} is jobs[{seen_jobs[jid]}])")
        seen_jobs[jid] = j
        job_names.append(jid)
        options = job.get("options")
        if not isinstance(options, list) or not options:
            raise _fail(
                f"{p}.options", "a non-empty list of options", ... if options is None else options
            )
        for k, opt in enumerate(options):
            q = f"{p}.options[{k}]"
            if not isinstance(opt, dict):
                raise _fail(q, "an object with 'agent', 'cost' and 'use'", opt)
            if "agent" not in opt:
                raise _fail(f"{q}.agent", "an agent id or 0-based agent index (missing)")
            ref = opt["agent"]
            if isinstance(ref, str):
                if ref not in index:
                    raise _fail(f"{q}.agent", "the id of an agent in 'agents'", ref)
                i = index[ref]
            elif isinstance(ref, int) and not isinstance(ref, bool):
                if not 0 <= ref < m:
                    raise _fail(f"{q}.agent", f"an agent index from 0 to {m - 1}", ref)
                i = ref
            else:
                raise _fail(f"{q}.agent", "an agent id or 0-based agent index", ref)
            if allowed[i, j]:
                raise _fail(
                    f"{q}.agent", f"an agent not already listed for this job ({names[i]!r})"
                )
            if "cost" not in opt:
                raise _fail(f"{q}.cost", "an integer cost (missing)")
            cost[i, j] = _int(opt["cost"], f"{q}.cost", "an integer cost")
            if "use" not in opt:
                raise _fail(f"{q}.use", "an integer use of capacity ≥ 0 (missing)")
            weight[i, j] = _int(opt["use"], f"{q}.use", "an integer use of capacity", 0)
            allowed[i, j] = True
    return AllocationProblem(
        cost=cost,
        weight=weight,
        capacity=np.asarray(capacity, dtype=np.int64),
        allowed=allowed,
        agent_names=tuple(names),
        job_names=tuple(job_names),
    )


def read_problem(path: str | Path, fmt: str | None = None) -> AllocationProblem:
    """Read a problem file as `orlib` or `json`; without a format, guess from the content."""
    p = Path(path)
    if fmt is None:
        head = p.read_text(encoding="utf-8", errors="replace").lstrip()[:1]
        fmt = "json" if head in ("{", "[") or p.suffix.lower() == ".json" else "orlib"
    if fmt == "orlib":
        return read_orlib(p)
    if fmt == "json":
        return read_allocation_json(p)
    raise ValueError(f"unknown format {fmt!r}: expected 'orlib' or 'json'")
