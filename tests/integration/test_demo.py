"""The demo builds a fresh market, routes with the router, and refuses to wipe real data."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from silkroute.services.catalog import open_shop
from silkroute.sim.demo import DemoRefused, run_demo
from silkroute.store import tables as t
from silkroute.store.uow import UnitOfWork

SMALL = {"carriers": 300, "buyers": 40, "products_per_seller": 6}


def test_demo_runs_a_small_day_through_router_money_and_ledger(engine):
    # given an empty, migrated database
    url = engine.url.render_as_string(hide_password=False)
    engine.dispose()
    # when the demo runs a small day
    summary = run_demo(url, seed=3, orders=80, **SMALL)
    # then orders were placed and routed by the router, and the money adds up
    assert summary["orders_placed"] >= 80
    assert summary["sellers"] == 10
    assert summary["carriers"] == 300
    assert set(summary["routing"]) == {"silkroute", "nearest-cheapest"}
    assert summary["ledger_check"]["ok"] is True
    assert summary["ledger_check"]["violations"] == []
    with engine.connect() as conn:
        policies = set(conn.execute(select(t.orders.c.policy).distinct()).scalars())
        placed = conn.execute(select(func.count()).select_from(t.orders)).scalar_one()
    assert policies == {"silkroute"}
    assert placed == summary["orders_placed"]
    # and running it again replaces the earlier demo instead of refusing
    again = run_demo(url, seed=3, orders=80, **SMALL)
    assert again["orders_placed"] == summary["orders_placed"]


def test_demo_refuses_a_database_that_holds_other_data(engine):
    # given a database with a real shop in it
    open_shop(UnitOfWork(engine), "Real Shop", "KRW")
    url = engine.url.render_as_string(hide_password=False)
    # when the demo is asked to run there, then it refuses and leaves the shop alone
    with pytest.raises(DemoRefused, match="holds data that is not an earlier demo"):
        run_demo(url, seed=3, orders=10, **SMALL)
    with engine.connect() as conn:
        assert conn.execute(select(t.sellers.c.name)).scalars().all() == ["Real Shop"]
