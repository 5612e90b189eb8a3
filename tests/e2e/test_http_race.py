"""64 concurrent buy-now requests over real HTTP for 10 units: exactly 10 paid, 54 clean 409s."""

from __future__ import annotations

import subprocess
import threading
from pathlib import Path

import httpx
from sqlalchemy import Engine, func, select

from silkroute.bench.http import Server, seed_market, serve_command
from silkroute.store import tables as t

BUYERS = 64
UNITS = 10


def db_url(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=False)


def ledger_check(url: str) -> subprocess.CompletedProcess[str]:
    cmd = [*serve_command()[:-1], "ledger", "check", "--db", url]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def test_64_concurrent_buy_now_over_http_sell_exactly_the_10_units(
        engine: Engine, tmp_path: Path) -> None:
    url = db_url(engine)
    engine.dispose()
    with Server(url, tmp_path / "serve.log", workers=2) as server:
        # given a SKU with 10 units and 64 buyers, each with a saved approving card
        market = seed_market(server.port, buyers=BUYERS, skus=1, units=UNITS)
        sku = market.skus[0]
        results: list[httpx.Response | None] = [None] * BUYERS
        gate = threading.Barrier(BUYERS)

        def buy(i: int) -> None:
            with httpx.Client(base_url=server.base, timeout=60) as http:
                http.get("/api/v1/health")  # connect before the gate opens
                gate.wait()
                results[i] = http.post(
                    "/api/v1/buyer/buy-now", json={"sku": sku, "quantity": 1},
                    headers={"Authorization": f"Bearer {market.buyers[i][1]}",
                             "Idempotency-Key": f"race-{i}"})

        # when all 64 click "buy now" at once
        threads = [threading.Thread(target=buy, args=(i,)) for i in range(BUYERS)]
        for th in threads:
            th.start()
        for th in threads:
            th.join(timeout=120)
        assert all(r is not None for r in results), server.log()
        responses = [r for r in results if r is not None]

        # then exactly 10 are paid and the other 54 are a clean out-of-stock answer
        paid = [r for r in responses if r.status_code in (200, 201)]
        refused = [r for r in responses if r.status_code == 409]
        odd = [(r.status_code, r.text) for r in responses if r not in paid + refused]
        assert odd == [], server.log()
        assert len(paid) == UNITS, [r.text for r in paid]
        assert all(r.json()["state"] == "paid" for r in paid)
        assert {r.json()["code"] for r in refused} == {"out_of_stock"}
        assert all(set(r.json()) >= {"code", "message"} for r in refused)
        assert all("Traceback" not in r.text for r in responses)
        buyers_paid = {r.request.headers["Idempotency-Key"] for r in paid}
        assert len(buyers_paid) == UNITS
        assert len({r.json()["order_id"] for r in paid}) == UNITS

        # and the seller sees 10 paid orders and nothing left
        seller = {"Authorization": f"Bearer {market.seller_token}"}
        with httpx.Client(base_url=server.base, timeout=30) as http:
            orders = http.get("/api/v1/seller/orders", params={"state": "paid", "limit": 100},
                              headers=seller).json()
            stock = http.get("/api/v1/seller/stock", headers=seller).json()
        assert orders["total"] == UNITS
        assert [(s["on_hand"], s["reserved"], s["available"]) for s in stock] == [
            (UNITS, UNITS, 0)]

    # and the database agrees: 10 orders in all (no cancelled leftovers), ledger balanced
    check_engine = _engine(url)
    try:
        with check_engine.connect() as conn:
            by_state = select(t.orders.c.state, func.count()).group_by(t.orders.c.state)
            states: dict[str, int] = dict(conn.execute(by_state).all())
    finally:
        check_engine.dispose()
    assert states == {"paid": UNITS}
    check = ledger_check(url)
    assert check.returncode == 0, check.stdout + check.stderr


def _engine(url: str) -> Engine:
    from silkroute.store.engine import make_engine

    return make_engine(url)
