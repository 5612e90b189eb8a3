"""The test provider's sandbox outlives a `silkroute serve` process and is shared by its
workers and by CLI commands, on SQLite and PostgreSQL: what one process captured another
refunds."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine, select

from silkroute.bench.http import Server, serve_command
from silkroute.store import money_tables as mt

CARD = "4242424242424242"


def _url(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=False)


def _market(http: httpx.Client, units: int) -> dict[str, str]:
    """A shop with `units` teas in stock, and a buyer with a card: the buyer's headers."""
    shop = http.post("/api/v1/sellers", json={"name": "Tea House", "currency": "KRW"})
    assert shop.status_code == 201, shop.text
    seller = {"Authorization": f"Bearer {shop.json()['token']['token']}"}
    assert http.post("/api/v1/seller/locations", json={"name": "WH", "city": "Seoul"},
                     headers=seller).status_code == 201
    imported = http.post(
        "/api/v1/seller/catalog/imports", headers={**seller, "Content-Type": "text/csv"},
        content=b"title,sku,price,currency,weight_g,location,quantity\n"
                b"Green tea,TEA-1,12000,KRW,300,WH," + str(units).encode() + b"\n")
    assert imported.status_code == 201, imported.text
    reg = http.post("/api/v1/buyers", json={"name": "Min-jun", "address": {"city": "Seoul"}})
    assert reg.status_code == 201, reg.text
    buyer = {"Authorization": f"Bearer {reg.json()['token']['token']}"}
    card = http.post("/api/v1/buyer/payment-methods", json={"card": CARD}, headers=buyer)
    assert card.status_code == 201, card.text
    return buyer


def _buy(http: httpx.Client, buyer: dict[str, str], key: str) -> int:
    bought = http.post("/api/v1/buyer/buy-now", json={"sku": "TEA-1"},
                       headers={**buyer, "Idempotency-Key": key})
    assert (bought.status_code, bought.json()["state"]) == (201, "paid"), bought.text
    return int(bought.json()["order_id"])


def _refund(http: httpx.Client, buyer: dict[str, str], order_id: int) -> None:
    asked = http.post(f"/api/v1/buyer/orders/{order_id}/refund", headers=buyer,
                      json={"reason": "changed my mind"})
    assert asked.status_code == 201, asked.text
    assert (asked.json()["state"], asked.json()["refund_id"] is not None) == ("approved", True)
    shown = http.get(f"/api/v1/buyer/orders/{order_id}", headers=buyer)
    assert shown.json()["state"] == "refunded", shown.text


def test_an_order_paid_before_a_restart_is_refunded_after_it(engine: Engine,
                                                             tmp_path: Path) -> None:
    log = tmp_path / "serve.log"
    with Server(_url(engine), log, ready_timeout=60) as first, \
            httpx.Client(base_url=first.base, timeout=30) as http:
        buyer = _market(http, units=5)
        order_id = _buy(http, buyer, "before-restart")
    # the first server is gone (stopped); a new one serves the same database
    with Server(_url(engine), log, ready_timeout=60) as second, \
            httpx.Client(base_url=second.base, timeout=30) as http:
        _refund(http, buyer, order_id)
        # and a crash (SIGKILL) forgets nothing either
        again = _buy(http, buyer, "before-crash")
        second.kill()
    with Server(_url(engine), log, ready_timeout=60) as third, \
            httpx.Client(base_url=third.base, timeout=30) as http:
        _refund(http, buyer, again)
    with engine.connect() as conn:
        refs = conn.execute(select(mt.payments.c.capture_ref)).scalars().all()
        assert len(refs) == 2 and len(set(refs)) == 2
        assert conn.execute(select(mt.refunds.c.provider_ref).where(
            mt.refunds.c.provider_ref.is_(None))).first() is None


def test_two_workers_share_one_sandbox(engine: Engine, tmp_path: Path) -> None:
    """Buys and refunds land on either worker; every refund finds its capture, and no two
    payments share a provider reference."""
    orders = 12
    with Server(_url(engine), tmp_path / "serve.log", workers=2, ready_timeout=60) as srv:
        buyer: dict[str, str] = {}
        with httpx.Client(base_url=srv.base, timeout=30) as http:
            buyer = _market(http, units=orders)
        paid = []
        for i in range(orders):  # a new connection each: the kernel spreads them out
            with httpx.Client(base_url=srv.base, timeout=30) as http:
                paid.append(_buy(http, buyer, f"k{i}"))
        for order_id in paid:
            with httpx.Client(base_url=srv.base, timeout=30) as http:
                _refund(http, buyer, order_id)
    with engine.connect() as conn:
        refs = conn.execute(select(mt.payments.c.authorization_ref,
                                   mt.payments.c.capture_ref)).all()
    assert len({r.capture_ref for r in refs}) == len({r.authorization_ref for r in refs}) \
        == orders


def _cli(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    command = [*serve_command()[:-1], *args, "--db", url]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.parametrize("refund_first", [True, False])
def test_a_cli_command_refunds_what_another_paid(engine: Engine, tmp_path: Path,
                                                 refund_first: bool) -> None:
    url = _url(engine)
    csv = tmp_path / "c.csv"
    csv.write_text("product,title,sku,price,currency,weight_g,location,quantity\n"
                   "tea,Tea,TEA-1,12000,KRW,300,1,5\n")
    for args in (("shop", "open", "--name", "Tea House"),
                 ("location", "add", "--name", "WH", "--seller", "1", "--city", "Seoul"),
                 ("catalog", "import", str(csv), "--seller", "1"),
                 ("buyer", "add", "--name", "Min", "--city", "Seoul"),
                 ("buyer", "card", "add", "--buyer", "1", "--number", CARD)):
        done = _cli(url, *args)
        assert done.returncode == 0, done.stderr + done.stdout
    bought = _cli(url, "order", "buy-now", "--buyer", "1", "--sku", "TEA-1",
                  "--idempotency-key", "k1", "--json")
    assert bought.returncode == 0, bought.stderr + bought.stdout
    order_id = json.loads(bought.stdout)["order_id"]
    if refund_first:  # a refund in its own process
        part = _cli(url, "pay", "refund", str(order_id), "--amount", "5000")
        assert part.returncode == 0, part.stderr + part.stdout
        too_much = _cli(url, "pay", "refund", str(order_id), "--amount", "999999")
        assert too_much.returncode == 1 and "exceeds" in too_much.stdout + too_much.stderr
    else:  # or through the delivery flow, then a payout in its own process
        for verb in ("ship", "deliver", "confirm"):
            assert _cli(url, "pay", verb, str(order_id)).returncode == 0
        payout = _cli(url, "payout", "run", "--batch", "b1", "--json")
        assert payout.returncode == 0, payout.stderr + payout.stdout
    rest = _cli(url, "pay", "refund", str(order_id))
    assert rest.returncode == 0, rest.stderr + rest.stdout
    check = _cli(url, "ledger", "check", "--json")
    assert check.returncode == 0 and json.loads(check.stdout)["ok"], check.stdout
