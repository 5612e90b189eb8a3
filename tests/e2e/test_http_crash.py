"""SIGKILL `silkroute serve` amid buy-now load, restart it: no acknowledged order is lost."""

from __future__ import annotations

import json
import random
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Engine, func, select

from silkroute.bench.http import Server, seed_market, serve_command
from silkroute.store import tables as t
from silkroute.store.engine import make_engine

CLIENTS = 8
KILL_AFTER_PAID = 24  # acknowledged orders before the crash


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*serve_command()[:-1], *args], capture_output=True, text=True,
                          timeout=120)


class Load:
    """Clients buying one unit at a time until the server goes away; every answer kept."""

    def __init__(self, base: str, buyers: list[tuple[int, str]], skus: list[str]):
        self.base, self.buyers, self.skus = base, buyers, skus
        self.answers: list[tuple[int, str, dict[str, Any], int, Any]] = []
        self.uncertain: list[tuple[int, str, dict[str, Any]]] = []  # no answer: crash
        self.lock = threading.Lock()
        self.paid = threading.Semaphore(0)
        self.threads = [threading.Thread(target=self._client, args=(i,), daemon=True)
                        for i in range(CLIENTS)]

    def _client(self, i: int) -> None:
        n = 0
        with httpx.Client(base_url=self.base, timeout=30) as http:
            while True:
                n += 1
                buyer = (i + CLIENTS * n) % len(self.buyers)
                key = f"crash-{i}-{n}"
                body = {"sku": self.skus[n % len(self.skus)], "quantity": 1}
                try:
                    r = http.post("/api/v1/buyer/buy-now", json=body, headers={
                        "Authorization": f"Bearer {self.buyers[buyer][1]}",
                        "Idempotency-Key": key})
                except httpx.TransportError:
                    with self.lock:
                        self.uncertain.append((buyer, key, body))
                    return
                with self.lock:
                    self.answers.append((buyer, key, body, r.status_code, r.json()))
                if r.status_code in (200, 201):
                    self.paid.release()


def test_sigkill_mid_load_loses_no_acknowledged_order_and_strands_nothing(
        engine: Engine, tmp_path: Path) -> None:
    url = engine.url.render_as_string(hide_password=False)
    engine.dispose()
    log = tmp_path / "serve.log"
    server = Server(url, log, workers=1).start()
    try:
        market = seed_market(server.port, buyers=8, skus=4, units=1000)
        load = Load(server.base, market.buyers, market.skus)
        for th in load.threads:
            th.start()
        # when the server is killed (no shutdown code runs) while orders are in flight
        deadline = time.monotonic() + 90
        for _ in range(KILL_AFTER_PAID):
            assert load.paid.acquire(timeout=max(0.1, deadline - time.monotonic())), \
                server.log()
        time.sleep(random.uniform(0, 0.2))  # land anywhere inside a request
    finally:
        server.kill()
    for th in load.threads:
        th.join(timeout=30)
    acknowledged = [a for a in load.answers if a[3] in (200, 201)]
    assert len(acknowledged) >= KILL_AFTER_PAID
    assert [a for a in load.answers if a[3] >= 500] == []

    # then, started again on the same database, every acknowledged order is there and paid
    server = Server(url, log, workers=1).start()
    try:
        with httpx.Client(base_url=server.base, timeout=60) as http:
            for buyer, _key, body, _status, answer in acknowledged:
                token = market.buyers[buyer][1]
                order = http.get(f"/api/v1/buyer/orders/{answer['order_id']}",
                                 headers={"Authorization": f"Bearer {token}"})
                assert order.status_code == 200, order.text
                shown = order.json()
                assert shown["state"] == "paid"
                assert shown["checkout_id"] == answer["checkout_id"]
                assert (shown["items_amount"], shown["shipping_amount"]) == (
                    answer["items_amount"], answer["shipping_amount"])
                assert [(ln["sku"], ln["quantity"]) for ln in shown["lines"]] == [
                    (body["sku"], 1)]
            # and a client retrying an unanswered request with the same key gets a clean
            # answer: the order finished and paid exactly once, or made now (the other
            # half are abandoned, for the reservation-expiry job)
            retried = _retry(server.base, market.buyers, load.uncertain[::2])
        assert [r for r in retried if r[3] >= 500] == [], retried
    finally:
        server.stop()

    # and after the reservation-expiry job no unpaid reservation is left
    jobs = cli("jobs", "run", "--only", "reservations", "--reservation-minutes", "0",
               "--db", url, "--json")
    assert jobs.returncode == 0, jobs.stdout + jobs.stderr
    expired = json.loads(jobs.stdout)["reservations_expired"]
    print(f"crash: {len(acknowledged)} acknowledged, {len(load.uncertain)} in flight, "
          f"retried: {sorted((r[3], r[4].get('replayed', r[4].get('code'))) for r in retried)}, "
          f"expired by the job: {expired}")
    told = {a[4]["order_id"] for a in acknowledged} | {
        r[4]["order_id"] for r in retried if r[3] in (200, 201)}
    abandoned = len(load.uncertain) - len(retried)
    _assert_consistent(url, told, abandoned)
    check = cli("ledger", "check", "--db", url)
    assert check.returncode == 0, check.stdout + check.stderr


def _retry(base: str, buyers: list[tuple[int, str]],
           uncertain: list[tuple[int, str, dict[str, Any]]]
           ) -> list[tuple[int, str, dict[str, Any], int, Any]]:
    out: list[tuple[int, str, dict[str, Any], int, Any]] = []

    def again(buyer: int, key: str, body: dict[str, Any]) -> None:
        with httpx.Client(base_url=base, timeout=60) as http:
            r = http.post("/api/v1/buyer/buy-now", json=body, headers={
                "Authorization": f"Bearer {buyers[buyer][1]}", "Idempotency-Key": key})
        out.append((buyer, key, body, r.status_code, r.json()))

    threads = [threading.Thread(target=again, args=u) for u in uncertain]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=60)
    assert len(out) == len(uncertain)
    return out


def _assert_consistent(url: str, told: set[int], abandoned: int) -> None:
    eng = make_engine(url)
    try:
        with eng.connect() as conn:
            by_state = select(t.orders.c.state, func.count()).group_by(t.orders.c.state)
            states: dict[str, int] = dict(conn.execute(by_state).all())
            paid = set(conn.execute(select(t.orders.c.id)
                                    .where(t.orders.c.state == "paid")).scalars())
            a = t.allocations
            held = dict(conn.execute(
                select(a.c.sku_id, func.sum(a.c.quantity))
                .select_from(a.join(t.orders, t.orders.c.id == a.c.order_id))
                .where(a.c.status == "reserved", t.orders.c.state == "paid")
                .group_by(a.c.sku_id)).all())
            stranded = conn.execute(
                select(func.count()).select_from(a.join(t.orders, t.orders.c.id == a.c.order_id))
                .where(a.c.status == "reserved", t.orders.c.state != "paid")).scalar_one()
            stock = {r.sku_id: (r.on_hand, r.reserved) for r in conn.execute(select(t.stock))}
    finally:
        eng.dispose()
    assert states.get("reserved", 0) == 0, states
    assert stranded == 0
    # every order a client was told about is paid; the only others are abandoned requests
    # that were paid just before the crash (at most one order each)
    assert told <= paid
    assert len(paid - told) <= abandoned
    # every reserved unit is held by a paid order, and the stock's count agrees
    assert {sku: r for sku, (_on, r) in stock.items() if r} == {
        sku: int(q) for sku, q in held.items()}
    assert all(on == 1000 for on, _r in stock.values())
