"""`silkroute solve` and `silkroute bench gap` through a Typer app that registers them."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import typer
from typer.testing import CliRunner

from silkroute.commands.allocation import register

DATA = Path(__file__).parents[3] / "shared" / "data" / "gap"


def _app() -> typer.Typer:
    app = typer.Typer()
    bench = typer.Typer()
    register(app, bench)
    app.add_typer(bench, name="bench")
    return app


runner = CliRunner()


def test_solve_json_prints_one_object() -> None:
    res = runner.invoke(_app(), ["solve", str(DATA / "cattrysse1994" / "gap1-0"),
                                 "--format", "orlib", "--time-limit", "5", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert (out["objective"], out["lower_bound"], out["gap"], out["feasible"]) == (
        261, 261.0, 0.0, True)
    assert len(out["assignment"]) == 15
    assert all(0 <= a < 5 for a in out["assignment"])
    assert out["seconds"] < 5


def test_solve_table(tmp_path: Path) -> None:
    res = runner.invoke(_app(), ["solve", str(DATA / "cattrysse1994" / "gap2-0"),
                                 "--time-limit", "5"])
    assert res.exit_code == 0
    assert "objective" in res.stdout and "lower bound" in res.stdout
    assert "optimal" in res.stdout


def test_solve_json_format(tmp_path: Path) -> None:
    f = tmp_path / "wave.json"
    f.write_text(json.dumps({
        "agents": [{"id": "north", "capacity": 10}, {"id": "south", "capacity": 6}],
        "jobs": [
            {"id": "o1", "options": [{"agent": "north", "cost": 80, "use": 5},
                                     {"agent": "south", "cost": 90, "use": 5}]},
            {"id": "o2", "options": [{"agent": "north", "cost": 70, "use": 6}]},
        ],
    }))
    res = runner.invoke(_app(), ["solve", str(f), "--format", "json", "--json"])
    assert res.exit_code == 0
    out = json.loads(res.stdout)
    assert (out["objective"], out["assignment"], out["feasible"]) == (160, [1, 0], True)


def test_malformed_json_is_one_line_exit_2(tmp_path: Path) -> None:
    f = tmp_path / "bad.json"
    f.write_text('{"agents":[{"id":"a","capacity":5}],"jobs":[{"options":[{"agent":"a",'
                 '"cost":"x","use":1}]}]}')
    res = runner.invoke(_app(), ["solve", str(f), "--format", "json", "--json"])
    assert res.exit_code == 2
    assert res.stdout == ""
    assert res.stderr == (f"error: {f}: jobs[0].options[0].cost: expected an integer cost, "
                          'got "x"\n')


def test_malformed_orlib_is_one_line_exit_2(tmp_path: Path) -> None:
    f = tmp_path / "bad.txt"
    f.write_text("2 3\n1 2 3\n4 5 6\n1 1 1\n1 x 1\n5 5\n")
    res = runner.invoke(_app(), ["solve", str(f), "--format", "orlib"])
    assert res.exit_code == 2
    assert res.stderr == (f"error: {f}: line 5, token 2: expected weight[1][1] (an integer), "
                          "got 'x'\n")


def test_infeasible_is_reported_not_crashed(tmp_path: Path) -> None:
    f = tmp_path / "tight.txt"
    f.write_text("2 3\n1 1 1\n1 1 1\n2 2 2\n2 2 2\n3 3\n")
    res = runner.invoke(_app(), ["solve", str(f), "--json"])
    assert res.exit_code == 0
    out = json.loads(res.stdout)
    assert (out["feasible"], out["objective"], out["assignment"], out["status"]) == (
        False, None, [], "infeasible")


def test_bench_gap_json(tmp_path: Path) -> None:
    root = tmp_path / "gap"
    (root / "cattrysse1994").mkdir(parents=True)
    shutil.copy(DATA / "cattrysse1994" / "gap1-0", root / "cattrysse1994" / "gap1-0")
    (root / "data.csv").write_text(
        "Path,Format,Dataset,Item number,Agent number,Best known bound,Optimum,"
        "Best known solution value\ncattrysse1994/gap1-0,orlibrary,cattrysse1994,15,5,261,261,261\n"
    )
    res = runner.invoke(_app(), ["bench", "gap", str(root), "--time-limit", "5", "--json",
                                 "--set", "cattrysse1994", "--portfolio"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    row = out["instances"][0]
    assert (row["path"], row["reference"], row["silkroute"]["objective"],
            row["highs"]["objective"]) == ("cattrysse1994/gap1-0", 261, 261, 261)
    # the allocator proves gap1-0 itself at once: the plain MIP beside it is killed unused
    assert (row["silkroute"]["portfolio"], row["silkroute"]["found_by"]) == (True, "allocator")
    assert (row["highs"]["portfolio"], row["highs"]["found_by"]) == (None, None)
    assert out["sets"]["cattrysse1994"]["silkroute"]["worst_gap_percent"] == 0.0
    table = runner.invoke(_app(), ["bench", "gap", str(root), "--time-limit", "5"])
    assert table.exit_code == 0
    assert "cattrysse1994/gap1-0" in table.stdout


def test_solve_without_the_portfolio(tmp_path: Path) -> None:
    res = runner.invoke(_app(), ["solve", str(DATA / "cattrysse1994" / "gap2-1"),
                                 "--time-limit", "5", "--json", "--no-portfolio"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert (out["objective"], out["status"]) == (269, "optimal")


def test_bench_gap_without_data_csv_is_exit_2(tmp_path: Path) -> None:
    res = runner.invoke(_app(), ["bench", "gap", str(tmp_path)])
    assert res.exit_code == 2
    assert res.stderr == f"error: {tmp_path}: no data.csv with reference values\n"
