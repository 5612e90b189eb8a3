"""The plain MIP (SciPy's HiGHS) in a child process, and the allocator's portfolio with it."""

from __future__ import annotations

import math
import os
import time
from pathlib import Path

import numpy as np

import silkroute.routing.batch as batch
from silkroute.routing.gap import AllocationProblem, read_orlib
from silkroute.routing.plain_mip import PlainMipProcess, plain_milp

DATA = Path(__file__).parents[3] / "shared" / "data" / "gap"


def _member(problem: AllocationProblem, until: float) -> PlainMipProcess:
    return PlainMipProcess(problem.cost, problem.weight, problem.capacity, problem.allowed,
                           until)


def test_plain_milp_proves_the_optimum_of_a_small_instance() -> None:
    # given gap1-0 (optimum 261), when solved by the plain model, then 261 is proven
    problem = read_orlib(DATA / "cattrysse1994" / "gap1-0")
    out = plain_milp(problem.cost, problem.weight, problem.capacity, problem.allowed, 10)
    assert out.objective == 261 and out.optimal
    assert out.assignment is not None and problem.is_feasible(out.assignment)
    assert problem.objective(out.assignment) == 261
    assert out.bound == 261.0


def test_child_process_gives_the_in_process_answer_and_leaves_nothing_behind() -> None:
    # given a small instance, when the plain MIP runs in a child process, then it answers
    # as in this process, the child is reaped and its instance file removed
    problem = read_orlib(DATA / "cattrysse1994" / "gap2-1")
    member = _member(problem, time.monotonic() + 20)
    path = member._path
    assert os.path.exists(path)
    out = member.outcome(time.monotonic() + 20)
    assert out is not None and out.objective == 269 and out.optimal
    assert out.assignment is not None and problem.objective(out.assignment) == 269
    assert not os.path.exists(path)
    assert member.outcome(time.monotonic() + 1) is None  # asked twice: nothing more


def test_stop_kills_a_running_child_at_once() -> None:
    # given the plain MIP started on a hard instance for 60 s, when stopped after 0.5 s, then
    # the child is gone within a second and its file removed
    problem = read_orlib(DATA / "chu1997" / "d10200")
    member = _member(problem, time.monotonic() + 60)
    proc, path = member._proc, member._path
    time.sleep(0.5)
    started = time.monotonic()
    member.stop()
    assert time.monotonic() - started < 1.0
    assert proc is not None and proc.returncode is not None and proc.returncode < 0
    assert not os.path.exists(path)


def test_the_child_answers_by_its_moment_with_most_of_the_time_used() -> None:
    # given a hard instance and 4 s, when the child runs, then its answer is there within
    # the grace the allocator gives it (HiGHS's limit allows for the child's start-up and
    # SciPy's import) and HiGHS had most of the time
    problem = read_orlib(DATA / "chu1997" / "d10200")
    until = time.monotonic() + 4
    out = _member(problem, until).outcome(until + batch.MEMBER_GRACE)
    assert out is not None and out.objective is not None and out.assignment is not None
    assert problem.is_feasible(out.assignment) and out.objective >= 12430
    assert 2.5 <= out.seconds <= 4.0


def test_a_child_that_misses_the_moment_is_killed_and_gives_nothing() -> None:
    # given the plain MIP on a hard instance with 30 s, when its answer is wanted within
    # 0.3 s, then there is none and the child is killed
    problem = read_orlib(DATA / "chu1997" / "d10200")
    member = _member(problem, time.monotonic() + 30)
    proc = member._proc
    started = time.monotonic()
    assert member.outcome(time.monotonic() + 0.3) is None
    assert time.monotonic() - started < 1.3
    assert proc is not None and proc.returncode is not None and proc.returncode < 0


def test_an_infeasible_instance_gives_no_assignment() -> None:
    # given capacities that cannot hold the jobs, when solved in a child, then no assignment
    problem = read_orlib(DATA / "cattrysse1994" / "gap1-0")
    problem.capacity[:] = 1
    out = _member(problem, time.monotonic() + 10).outcome(time.monotonic() + 10)
    assert out is not None and out.objective is None and out.assignment is None
    assert not out.optimal


def test_the_member_replaces_a_worse_incumbent_and_proves_the_optimum() -> None:
    # given a search holding a feasible but poor assignment of gap1-0, when the member's
    # answer is taken, then the incumbent is the optimum 261 and the bound is 261
    problem = read_orlib(DATA / "cattrysse1994" / "gap1-0")
    search = batch._Search(problem, time.monotonic() + 10)
    # the most expensive assignment that fits: the plain model with the costs negated
    worst = plain_milp(-problem.cost, problem.weight, problem.capacity, problem.allowed,
                       10).assignment
    assert worst is not None and problem.is_feasible(worst)
    search.offer(worst)
    assert search.best_cost == 336  # the negated model's optimum is −336
    batch._take_member(search, _member(problem, time.monotonic() + 10),
                       time.monotonic() + 10)
    assert search.best_cost == 261 and search.bound == 261.0
    assert search.closed()


def test_solve_kills_the_member_when_it_closes_the_instance_itself() -> None:
    # given a small instance the allocator proves in a fraction of a second, when solved with
    # the portfolio and 10 s, then it answers at once (it does not wait for the member)
    problem = read_orlib(DATA / "cattrysse1994" / "gap1-0")
    started = time.monotonic()
    result = batch.solve(problem, time_limit=10, seed=0, portfolio=True)
    assert time.monotonic() - started < 3.0
    assert (result.objective, result.status) == (261, "optimal")


def test_solve_with_the_portfolio_honours_the_limit_and_keeps_a_valid_bound() -> None:
    # given a hard type D instance, when solved with the portfolio for 3 s, then it answers
    # within 4 s with a feasible assignment no cheaper than the optimum 12430 and a bound
    # between the LP bound and the optimum
    problem = read_orlib(DATA / "chu1997" / "d10200")
    started = time.monotonic()
    result = batch.solve(problem, time_limit=3, seed=0, portfolio=True)
    assert time.monotonic() - started <= 4.0
    assert result.feasible and problem.is_feasible(np.array(result.assignment))
    assert result.objective is not None and result.objective >= 12430
    assert 12418 <= result.lower_bound <= 12430
    assert math.isfinite(result.gap)


def test_a_child_that_cannot_start_leaves_the_allocator_alone(monkeypatch, tmp_path) -> None:
    # given no interpreter where the child would be started, when solved with the portfolio,
    # then the allocator answers alone (no portfolio) and no instance file is left behind
    import tempfile

    monkeypatch.setattr("sys.executable", str(tmp_path / "no-python"))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    problem = read_orlib(DATA / "cattrysse1994" / "gap2-1")
    result = batch.solve(problem, time_limit=5, seed=0, portfolio=True)
    assert (result.objective, result.status, result.portfolio) == (269, "optimal", False)
    assert list(tmp_path.iterdir()) == []


def test_portfolio_default_needs_two_cores_and_a_time_limit(monkeypatch) -> None:
    problem = read_orlib(DATA / "cattrysse1994" / "gap1-0")
    monkeypatch.setattr(batch, "_cpus", lambda: 2)
    assert batch._portfolio_wanted(problem, 2.0, None) is True
    assert batch._portfolio_wanted(problem, 1.9, None) is False
    assert batch._portfolio_wanted(problem, 10.0, False) is False
    monkeypatch.setattr(batch, "_cpus", lambda: 1)
    assert batch._portfolio_wanted(problem, 10.0, None) is False
    assert batch._portfolio_wanted(problem, 1.0, True) is True
