"""A real `silkroute serve` process on a free loopback port, called over HTTP with httpx."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from silkroute.bench.http import Server


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    with Server(f"sqlite:///{tmp_path / 'serve.db'}", tmp_path / "serve.log",
                ready_timeout=30) as srv:
        yield srv.base


def test_serve_answers_a_seller_and_a_buyer_over_real_http(server: str) -> None:
    with httpx.Client(base_url=server, timeout=10) as http:
        # given a shop with a warehouse and a tea in stock
        shop = http.post("/api/v1/sellers", json={"name": "Tea House", "currency": "KRW"})
        assert shop.status_code == 201, shop.text
        seller = {"Authorization": f"Bearer {shop.json()['token']['token']}"}
        wh = http.post("/api/v1/seller/locations", json={"name": "WH", "city": "Seoul"},
                       headers=seller)
        assert wh.status_code == 201, wh.text
        imported = http.post(
            "/api/v1/seller/catalog/imports", headers={**seller, "Content-Type": "text/csv"},
            content=b"title,sku,price,currency,weight_g,location,quantity\n"
                    b"Green tea,TEA-1,12000,KRW,300,WH,2\n")
        assert imported.status_code == 201, imported.text

        # when a buyer registers and checks out
        reg = http.post("/api/v1/buyers", json={"name": "Min-jun", "address": {"city": "Seoul"}})
        assert reg.status_code == 201, reg.text
        buyer = {"Authorization": f"Bearer {reg.json()['token']['token']}"}
        placed = http.post("/api/v1/buyer/checkouts", headers=buyer,
                           json={"lines": [{"sku": "TEA-1", "quantity": 2}]})
        assert placed.status_code == 201, placed.text
        order_id = placed.json()["orders"][0]["order_id"]

        # then the order is theirs, stock is gone, and errors are JSON with a code
        shown = http.get(f"/api/v1/buyer/orders/{order_id}", headers=buyer)
        assert (shown.status_code, shown.json()["state"]) == (200, "reserved")
        more = http.post("/api/v1/buyer/checkouts", headers=buyer,
                         json={"lines": [{"sku": "TEA-1", "quantity": 1}]})
        assert (more.status_code, more.json()["code"]) == (409, "out_of_stock")
        # and a restock then one click, once per Idempotency-Key, pays at once
        restock = http.put("/api/v1/seller/locations/1/stock/TEA-1", json={"on_hand": 5},
                           headers=seller)
        assert restock.status_code == 200, restock.text
        card = http.post("/api/v1/buyer/payment-methods", json={"card": "4242424242424242"},
                         headers=buyer)
        assert card.status_code == 201, card.text
        once = {**buyer, "Idempotency-Key": "first-click"}
        bought = http.post("/api/v1/buyer/buy-now", json={"sku": "TEA-1"}, headers=once)
        assert (bought.status_code, bought.json()["state"]) == (201, "paid"), bought.text
        double = http.post("/api/v1/buyer/buy-now", json={"sku": "TEA-1"}, headers=once)
        assert double.json()["order_id"] == bought.json()["order_id"]
        assert double.json()["replayed"] is True
        anonymous = http.get("/api/v1/buyer/orders")
        assert (anonymous.status_code, anonymous.json()["code"]) == (401, "unauthenticated")
        assert http.get("/api/v1/openapi.json").json()["info"]["title"] == "silkroute"
        assert "silkroute_orders_created_total 2.0" in http.get("/metrics").text


def test_serve_demo_fills_the_market_and_prints_working_tokens(tmp_path: Path) -> None:
    log_path = tmp_path / "demo.log"
    with Server(f"sqlite:///{tmp_path / 'demo.db'}", log_path,
                extra_args=("--demo", "--demo-orders", "40")) as srv:
        base = f"{srv.base}/api/v1"
        tokens = {line.split()[1]: line.split()[-1]
                  for line in srv.log().splitlines()
                  if line.startswith("demo ") and " token: " in line}
        assert set(tokens) == {"operator", "seller", "buyer"}, srv.log()
        ops = {"Authorization": f"Bearer {tokens['operator']}"}
        summary = httpx.get(f"{base}/operator/summary", headers=ops).json()
        assert summary["counts"]["orders"] >= 40
        buyer = {"Authorization": f"Bearer {tokens['buyer']}"}
        assert httpx.get(f"{base}/buyer/orders", headers=buyer).json()["total"] >= 1
        seller = {"Authorization": f"Bearer {tokens['seller']}"}
        assert httpx.get(f"{base}/seller/shop", headers=seller).json()["seller_id"] == 1
