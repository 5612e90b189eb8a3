"""Network CSV files: a faithful round trip, and line-numbered errors that import nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
from routing_tinynet import network

from silkroute.sim.network import NetworkSpec, generate_network
from silkroute.sim.network_csv import NetworkFileError, read_network, write_network


def test_round_trip_generated_network(tmp_path: Path) -> None:
    net = generate_network(NetworkSpec("KR", carriers=150, locations=40, seed=7))
    write_network(net, tmp_path)
    back = read_network(tmp_path)
    assert back.zones == net.zones and back.locations == net.locations
    assert sorted(back.carriers, key=lambda c: c.id) == net.carriers
    assert back.stock == net.stock and back.skus == net.skus
    assert (back.country, back.currency) == ("KR", "KRW")


def _write(tmp_path: Path) -> Path:
    write_network(network(), tmp_path)
    return tmp_path


def _replace(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


def test_bad_values_are_reported_with_line_numbers(tmp_path: Path) -> None:
    d = _write(tmp_path)
    _replace(d / "zones.csv", "2,Beta,KR,37.5,127.2", "2,Beta,KR,97.5,127.2")
    _replace(d / "locations.csv", "2,Beta warehouse,warehouse", "2,Beta warehouse,castle")
    _replace(d / "carrier_zones.csv", "2,3", "2,9")
    with pytest.raises(NetworkFileError) as err:
        read_network(d)
    assert err.value.problems == [
        "zones.csv: line 3: latitude: '97.5' must be a latitude between -90 and 90",
        "locations.csv: line 3: kind: 'castle' is not one of warehouse, store, pickup_point, "
        "fulfilment_centre",
        "carrier_zones.csv: line 6: zone_id: unknown zone 9",
    ]
    assert err.value.field == "file"


def test_missing_column_file_and_field_count(tmp_path: Path) -> None:
    d = _write(tmp_path)
    (d / "carrier_bands.csv").unlink()
    lines = (d / "carriers.csv").read_text().splitlines()
    lines[2] = lines[2] + ",extra"
    (d / "carriers.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(NetworkFileError) as err:
        read_network(d)
    assert err.value.problems == [f"carrier_bands.csv: missing file in {d}"]
    write_network(network(), d)
    (d / "carriers.csv").write_text("\n".join(lines) + "\n")
    _replace(d / "stock.csv", "quantity", "qty")
    with pytest.raises(NetworkFileError) as err:
        read_network(d)
    assert err.value.problems == [
        "carriers.csv: line 3: expected 9 fields, got 10",
        "stock.csv: line 1: missing column(s) quantity",
    ]


def test_decreasing_transit_probabilities_are_refused(tmp_path: Path) -> None:
    d = _write(tmp_path)
    _replace(d / "carrier_bands.csv", "1,0,0,0.0,0.9,1.0,1.0,1.0", "1,0,0,0.0,0.9,0.5,1.0,1.0")
    with pytest.raises(NetworkFileError) as err:
        read_network(d)
    assert err.value.problems == [
        "carrier_bands.csv: line 2: p_day0..p_day4 must not decrease"]


def _cli():  # type: ignore[no-untyped-def]
    import typer

    from silkroute.commands.network import register

    app, bench = typer.Typer(), typer.Typer()
    register(app, bench)
    app.add_typer(bench, name="bench")
    return app


def test_cli_generate_import_and_bench(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    from typer.testing import CliRunner

    import silkroute.commands.network as cmd

    monkeypatch.setattr(cmd, "_save", lambda net, db: {"saved": False})
    runner = CliRunner()
    out = tmp_path / "net"
    res = runner.invoke(_cli(), ["network", "generate", "--carriers", "50", "--locations",
                                 "20", "--seed", "3", "--out", str(out), "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["carriers"] == 50
    res = runner.invoke(_cli(), ["network", "import", str(out), "--json"])
    assert res.exit_code == 0 and json.loads(res.output)["locations"] == 20
    (out / "zones.csv").write_text("id,name\n")
    res = runner.invoke(_cli(), ["network", "import", str(out)])
    assert res.exit_code == 2 and "zones.csv: line 1: missing column(s)" in res.output
    keys = {"cost_per_order", "cost_per_order_with_unfulfilled", "on_time_rate",
            "split_rate", "unfulfilled_rate", "p50_us", "p99_us", "decisions_per_s",
            "top10_carrier_share"}
    baselines = {"silkroute", "magento-priority", "magento-distance", "saleor-sorted",
                 "saleor-high-stock", "nearest-cheapest"}
    res = runner.invoke(_cli(), ["bench", "route", "--carriers", "60", "--locations", "20",
                                 "--orders", "50", "--no-priced", "--no-hindsight", "--json"])
    assert res.exit_code == 0, res.output
    result = json.loads(res.output)
    assert set(result) == {"orders", "carriers", "locations", "index", "policies",
                           "unfulfilled_penalty"}
    assert set(result["policies"]) == baselines
    assert set(result["policies"]["silkroute"]) == keys
    res = runner.invoke(_cli(), ["bench", "route", "--carriers", "60", "--locations", "20",
                                 "--orders", "50", "--json"])
    assert res.exit_code == 0, res.output
    result = json.loads(res.output)
    assert set(result) == {"orders", "carriers", "locations", "index", "policies",
                           "unfulfilled_penalty", "pricing", "hindsight", "gap_captured"}
    assert set(result["policies"]) == baselines | {"silkroute-priced", "hindsight"}
    assert set(result["policies"]["hindsight"]) == keys
