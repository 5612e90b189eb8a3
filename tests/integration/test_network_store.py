"""Networks in the database: save/load roundtrip, re-save in place, all-or-nothing import."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import typer
from sqlalchemy import Engine, func, select
from typer.testing import CliRunner

from silkroute.commands.network import register
from silkroute.domain.carriers import NetworkSnapshot
from silkroute.routing.index import NetworkIndex, build_index
from silkroute.sim.network import NetworkSpec, generate_network
from silkroute.sim.network_csv import write_network
from silkroute.store import network_tables as nt
from silkroute.store import tables as t
from silkroute.store.network_repo import load_snapshot, network_version, store_network
from silkroute.store.uow import UnitOfWork

SPEC = NetworkSpec("KR", carriers=120, locations=40, seed=7, design_orders=2_000)


def _expected(net: NetworkSnapshot, loc_ids: dict[int, int],
              seller_ids: dict[int, int]) -> NetworkSnapshot:
    """The network as the database should give it back: database ids, sorted by id."""
    locs = sorted((dataclasses.replace(
        loc, id=loc_ids[loc.id],
        owner_id=seller_ids[loc.owner_id] if loc.owner_id is not None else None)
        for loc in net.locations), key=lambda loc: loc.id)
    return NetworkSnapshot(net.country, net.currency, sorted(net.zones, key=lambda z: z.id),
                           locs, net.carriers)


def _assert_same(a: NetworkIndex, b: NetworkIndex) -> None:
    for name, value in vars(a).items():
        if name.startswith("_") or name == "build_seconds":
            continue
        other = getattr(b, name)
        if isinstance(value, np.ndarray):
            assert value.dtype == other.dtype and np.array_equal(value, other), name
        else:
            assert value == other, name


def _counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {tab.name: int(conn.execute(select(func.count()).select_from(tab)).scalar_one())
                for tab in (t.zones, t.locations, t.sellers, nt.carriers, nt.carrier_zones,
                            nt.network_locations)}


def test_save_load_roundtrip_gives_identical_index(engine: Engine) -> None:
    net = generate_network(SPEC)
    with UnitOfWork(engine) as uow:
        saved = store_network(uow.conn, net)
    with engine.connect() as conn:
        loaded = load_snapshot(conn, with_stock=False)
        assert network_version(conn) == 1
    assert len(loaded.carriers) == 120 and len(loaded.locations) == 40
    _assert_same(build_index(_expected(net, saved.location_ids, saved.seller_ids)),
                 build_index(loaded))
    # seller-owned locations belong to real sellers with a shop; others to nobody
    with engine.connect() as conn:
        rows = conn.execute(select(t.locations.c.owner_kind, t.locations.c.seller_id)).all()
        shops = int(conn.execute(select(func.count()).select_from(t.shops)).scalar_one())
    assert all((r.seller_id is not None) == (r.owner_kind == "seller") for r in rows)
    assert shops == len(saved.seller_ids) > 0

    # Saving the same network again updates in place: no duplicates, version bumped.
    before = _counts(engine)
    with UnitOfWork(engine) as uow:
        again = store_network(uow.conn, net)
    assert again.location_ids == saved.location_ids and again.locations_created == 0
    assert _counts(engine) == before
    with engine.connect() as conn:
        assert network_version(conn) == 2
        _assert_same(build_index(load_snapshot(conn, with_stock=False)), build_index(loaded))


def _cli() -> typer.Typer:
    app, bench = typer.Typer(), typer.Typer()
    register(app, bench)
    return app


def test_cli_import_writes_all_or_nothing(engine: Engine, tmp_path: Path) -> None:
    url = engine.url.render_as_string(hide_password=False)
    net = generate_network(NetworkSpec("KR", carriers=30, locations=12, seed=3,
                                       design_orders=500))
    good = tmp_path / "good"
    write_network(net, good)
    bad = tmp_path / "bad"
    write_network(net, bad)
    lines = (bad / "carriers.csv").read_text().splitlines()
    cols = lines[3].split(",")
    cols[7] = "1.7"  # on_time_rate out of range, on line 4
    lines[3] = ",".join(cols)
    (bad / "carriers.csv").write_text("\n".join(lines) + "\n")
    empty = _counts(engine)

    runner = CliRunner()
    res = runner.invoke(_cli(), ["network", "import", str(bad), "--db", url])
    assert res.exit_code == 2
    assert "carriers.csv: line 4" in res.output
    assert _counts(engine) == empty

    res = runner.invoke(_cli(), ["network", "import", str(good), "--db", url, "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["saved"] is True and out["carriers_saved"] == 30
    assert out["locations_created"] == 12
    counts = _counts(engine)
    assert counts["carriers"] == 30 and counts["locations"] == 12


def test_save_failure_rolls_everything_back(engine: Engine) -> None:
    net = generate_network(NetworkSpec("KR", carriers=20, locations=8, seed=5,
                                       design_orders=300))
    broken = dataclasses.replace(net.carriers[-1], zones=frozenset({999_999_999}))
    net.carriers[-1] = broken  # a carrier serving a zone that does not exist: FK refuses
    empty = _counts(engine)
    with pytest.raises(Exception), UnitOfWork(engine) as uow:  # noqa: B017,PT011
        store_network(uow.conn, net)
    assert _counts(engine) == empty
