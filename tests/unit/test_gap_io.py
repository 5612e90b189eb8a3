"""Readers of GAP problems: OR-Library files and silkroute allocation JSON, and their errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from silkroute.routing.gap import (
    ProblemFormatError,
    parse_allocation_json,
    parse_orlib,
    read_orlib,
    read_problem,
)

DATA = Path(__file__).parents[3] / "shared" / "data" / "gap"


def test_reads_orlib_gap1_0() -> None:
    # given the first Cattrysse instance, when read, then its shape and corners are exact
    p = read_orlib(DATA / "cattrysse1994" / "gap1-0")
    assert (p.agents, p.jobs) == (5, 15)
    assert p.cost[0, :3].tolist() == [17, 21, 22]
    assert p.cost[1, 0] == 23
    assert p.allowed.all()
    assert p.capacity.shape == (5,)


def test_orlib_round_trip_small() -> None:
    p = parse_orlib("2 3\n1 2 3\n4 5 6\n1 1 1\n2 2 2\n5 6\n")
    assert p.cost.tolist() == [[1, 2, 3], [4, 5, 6]]
    assert p.weight.tolist() == [[1, 1, 1], [2, 2, 2]]
    assert p.capacity.tolist() == [5, 6]
    assert p.objective([0, 1, 0]) == 1 + 5 + 3
    assert p.load([0, 1, 0]).tolist() == [2, 2]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("2 3\n1 2 3\n4 5 6\n1 1 1\n1 x 1\n5 5\n",
         "line 5, token 2: expected weight[1][1] (an integer), got 'x'"),
        ("2 3\n1 2 3\n4 5 6\n1 1 1\n1 1 1\n5\n",
         "line 6: unexpected end of file, expected capacity[1]"),
        ("2 3\n1 2 3\n4 5 6\n1 1 1\n1 1 1\n5 5 7\n",
         "line 6, token 3: expected end of file after 2 capacities, got '7'"),
        ("0 3\n", "line 1, token 1: expected the number of agents m to be at least 1, got 0"),
        ("2 3\n1 2 3\n4 5 6\n1 1 1\n1 -1 1\n5 5\n",
         "line 5, token 2: expected weight[1][1] to be at least 0, got -1"),
    ],
)
def test_orlib_errors_name_line_and_token(text: str, message: str) -> None:
    with pytest.raises(ProblemFormatError) as err:
        parse_orlib(text)
    assert str(err.value) == message
    assert isinstance(err.value, ValueError)


def test_reads_sparse_json() -> None:
    # given agents by id and by index, when parsed, then missing options are forbidden
    p = parse_allocation_json(
        '{"format": "silkroute-allocation", "version": 1,'
        ' "agents": [{"id": "north", "capacity": 10}, {"id": "south", "capacity": 6}],'
        ' "jobs": [{"id": "o1", "options": [{"agent": "north", "cost": 120, "use": 4},'
        ' {"agent": "south", "cost": 90, "use": 5}]},'
        ' {"id": "o2", "options": [{"agent": 0, "cost": 70, "use": 6}]}]}'
    )
    assert p.cost.tolist() == [[120, 70], [90, 0]]
    assert p.weight.tolist() == [[4, 6], [5, 0]]
    assert p.allowed.tolist() == [[True, True], [True, False]]
    assert p.capacity.tolist() == [10, 6]
    assert p.agent_names == ("north", "south")
    assert p.job_names == ("o1", "o2")
    assert not p.is_feasible([1, 1])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"agents":[{"id":"a","capacity":5}],"jobs":[{"id":"j0","options":[{"agent":"a",'
         '"cost":1,"use":2}]},{"options":[{"agent":"a","cost":1,"use":2},{"agent":"b",'
         '"cost":3,"use":1}]}]}',
         "jobs[1].options[1].agent: expected the id of an agent in 'agents', got \"b\""),
        ('{"agents":[{"id":"a","capacity":5}],"jobs":[{"options":[{"agent":"a","cost":1.5,'
         '"use":2}]}]}',
         "jobs[0].options[0].cost: expected an integer cost, got 1.5"),
        ('{"agents":[{"id":"a","capacity":-1}],"jobs":[]}',
         "agents[0].capacity: expected an integer capacity ≥ 0, got -1"),
        ('{"agents":[{"id":"a","capacity":5}],"jobs":[{"options":[{"agent":0,"cost":1}]}]}',
         "jobs[0].options[0].use: expected an integer use of capacity ≥ 0 (missing)"),
        ('{"agents":[{"id":"a","capacity":5}], "jobs": [',
         "line 1, column 47: invalid JSON: Expecting value"),
        ("[1]", "$: expected an object with 'agents' and 'jobs', got [1]"),
        ('{"agents":[{"id":"a","capacity":5},{"id":"a","capacity":5}],"jobs":[]}',
         "agents[1].id: expected a unique agent id ('a' is agents[0])"),
        ('{"agents":[{"id":"a","capacity":5}],"jobs":[{"options":[{"agent":3,"cost":1,'
         '"use":1}]}]}',
         "jobs[0].options[0].agent: expected an agent index from 0 to 0, got 3"),
        ('{"agents":[{"id":"a","capacity":5}],"jobs":[{"options":[{"agent":"a","cost":1,'
         '"use":1},{"agent":0,"cost":1,"use":1}]}]}',
         "jobs[0].options[1].agent: expected an agent not already listed for this job ('a')"),
        ('{"agents":[{"id":"a","capacity":5}],"jobs":[]}',
         "jobs: expected a non-empty list of jobs, got []"),
    ],
)
def test_json_errors_name_the_path(text: str, message: str) -> None:
    with pytest.raises(ProblemFormatError) as err:
        parse_allocation_json(text)
    assert str(err.value) == message


def test_read_problem_guesses_the_format(tmp_path: Path) -> None:
    f = tmp_path / "p.json"
    f.write_text('{"agents":[{"capacity":1}],"jobs":[{"options":[{"agent":0,"cost":4,"use":1}]}]}')
    p = read_problem(f)
    assert p.cost.tolist() == [[4]]
    g = tmp_path / "p.txt"
    g.write_text("1 1\n4\n1\n1\n")
    assert np.array_equal(read_problem(g).cost, p.cost)
