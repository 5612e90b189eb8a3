"""Operators over the HTTP API on both backends: the saved network, fees and commission
rates (and their effect on the escrow release), routing and webhook metrics, authorisation."""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from silkroute.api.app import create_app
from silkroute.domain.carriers import Carrier, CarrierTier, NetworkSnapshot, RateCard, TransitTime
from silkroute.domain.network import Location, LocationKind, OwnerKind
from silkroute.services import routing_policy as rp
from silkroute.services.accounts import create_account
from silkroute.store.network_repo import load_snapshot, store_network
from silkroute.store.uow import UnitOfWork
from tests.e2e.test_api import (
    APPROVE,
    CSV_HEADER,
    add_location,
    auth,
    import_csv,
    ok,
    open_shop,
    register_buyer,
)
from tests.e2e.test_delivery_api import World, build_world, signed

SEOUL, BUSAN = 1835848, 1838524
CDF = TransitTime(((0.0, 0.95, 0.99, 1.0, 1.0),) * 4)
ROUTES = [("GET", "/api/v1/operator/network", None),
          ("GET", "/api/v1/operator/network/zones", None),
          ("GET", "/api/v1/operator/network/locations", None),
          ("GET", "/api/v1/operator/fees", None),
          ("GET", "/api/v1/operator/commission-rates", None),
          ("PUT", "/api/v1/operator/commission-rates/tea", {"rate": "0.07"})]


@pytest.fixture
def client(engine: Engine) -> Iterator[TestClient]:
    rp.forget_router_states()  # the router's cache is per database URL and process
    with TestClient(create_app(engine)) as c:
        yield c
    rp.forget_router_states()


def operator(engine: Engine) -> dict[str, str]:
    created = create_account(UnitOfWork(engine), "operator", "Ops", with_token=True)
    assert created.token is not None
    return auth(created.token.token)


def metric(text: str, name: str, **labels: str) -> float | None:
    """The value of one sample of the exposition, or None when it is absent."""
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        m = re.fullmatch(r"([a-z_]+)(?:\{(.*)\})? (\S+)", line)
        if m and m.group(1) == name and ",".join(sorted((m.group(2) or "").split(","))
                                                 ).strip(",") == want:
            return float(m.group(3))
    return None


def _carrier(cid: int, name: str, zones: set[int]) -> Carrier:
    return Carrier(cid, name, CarrierTier.REGIONAL, frozenset(zones),
                   RateCard(2_000, 100, (0, 500, 1_000, 2_000)), CDF, 18.0, 100, 0.95)


def save_tiny_network(engine: Engine) -> None:
    """Over the zones the sellers' locations created (Seoul, Busan): a platform pickup point
    in Seoul (network id 900) and two carriers, one of them serving both cities."""
    with UnitOfWork(engine) as u:
        zones = load_snapshot(u.conn, with_stock=False).zones
        seoul = next(z for z in zones if z.id == SEOUL)
        point = Location(900, "Seoul pickup point", LocationKind.PICKUP_POINT,
                         OwnerKind.PLATFORM, None, SEOUL, seoul.latitude, seoul.longitude,
                         500, 300, 9, 21)
        store_network(u.conn, NetworkSnapshot(
            "KR", "KRW", zones, [point],
            [_carrier(7, "Seoul courier", {SEOUL}),
             _carrier(9, "Seoul-Busan line", {SEOUL, BUSAN})]), "test:tiny")


# ------------------------------------------------------------------------------ network
EMPTY = {"stamp": None, "ref": None, "version": None, "country": None, "currency": None,
         "zones": 0, "locations": 0, "locations_by_kind": {}, "carriers": 0,
         "carrier_zones": 0, "router_active": False, "router_indexed": False,
         "router_index_current": False}


def test_network_summary_zones_and_locations(client: TestClient, engine: Engine) -> None:
    ops = operator(engine)
    assert ok(client.get("/api/v1/operator/network", headers=ops)) == EMPTY
    seller_id, seller = open_shop(client, "Tea House")
    seoul_wh = add_location(client, seller, "Seoul WH", "Seoul")
    busan_wh = add_location(client, seller, "Busan WH", "Busan")
    store = ok(client.post("/api/v1/seller/locations", headers=auth(seller), json={
        "name": "Gangnam Store", "kind": "store", "city": "Seoul"}), 201)["id"]
    ok(import_csv(client, seller, CSV_HEADER + "Green tea,TEA-1,12000,KRW,300,tea,Seoul WH,10\n"),
       201)
    # locations registered by sellers, but no network saved: the router is not in use
    assert ok(client.get("/api/v1/operator/network", headers=ops)) == {
        **EMPTY, "zones": 2, "locations": 3, "locations_by_kind": {"store": 1, "warehouse": 2}}

    save_tiny_network(engine)
    summary = ok(client.get("/api/v1/operator/network", headers=ops))
    assert re.fullmatch(r"[0-9a-f]{32}", summary.pop("stamp"))
    assert summary == {
        "ref": "test:tiny", "version": 1, "country": "KR", "currency": "KRW", "zones": 2,
        "locations": 4, "locations_by_kind": {"pickup_point": 1, "store": 1, "warehouse": 2},
        "carriers": 2, "carrier_zones": 3, "router_active": True, "router_indexed": False,
        "router_index_current": False}
    # the first checkout compiles the network into the router's index
    _, buyer = register_buyer(client, "Min-jun")
    ok(client.post("/api/v1/buyer/checkouts", json={"lines": [{"sku": "TEA-1", "quantity": 1}]},
                   headers=auth(buyer)), 201)
    def router() -> tuple[bool, bool, bool]:
        now = ok(client.get("/api/v1/operator/network", headers=ops))
        return now["router_active"], now["router_indexed"], now["router_index_current"]

    assert router() == (True, True, True)
    # a seller opens another warehouse: the index of this network no longer knows it all
    extra = add_location(client, seller, "Busan WH 2", "Busan")
    assert router() == (True, True, False)
    # the next checkout routes on the index it has and starts a rebuild in the background
    ok(client.post("/api/v1/buyer/checkouts", json={"lines": [{"sku": "TEA-1", "quantity": 1}]},
                   headers=auth(buyer)), 201)
    deadline = time.monotonic() + 10
    while router() != (True, True, True) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert router() == (True, True, True)

    zones = ok(client.get("/api/v1/operator/network/zones", headers=ops))
    assert [(z["id"], z["name"], z["country"], z["locations"], z["carriers"])
            for z in zones["items"]] == [(SEOUL, "Seoul", "KR", 3, 2),
                                         (BUSAN, "Busan", "KR", 2, 1)]
    assert (zones["total"], zones["next_offset"]) == (2, None)
    first = ok(client.get("/api/v1/operator/network/zones?limit=1", headers=ops))
    assert ([z["id"] for z in first["items"]], first["total"], first["next_offset"]) == (
        [SEOUL], 2, 1)
    second = ok(client.get("/api/v1/operator/network/zones?limit=1&offset=1", headers=ops))
    assert ([z["id"] for z in second["items"]], second["next_offset"]) == ([BUSAN], None)
    assert ok(client.get("/api/v1/operator/network/zones?country=jp", headers=ops)) == {
        "items": [], "total": 0, "limit": 20, "offset": 0, "next_offset": None}

    def locations(query: str = "") -> list[tuple[Any, ...]]:
        page = ok(client.get(f"/api/v1/operator/network/locations{query}", headers=ops))
        assert page["total"] == len(page["items"])
        return [(x["id"], x["name"], x["kind"], x["owner_kind"], x["seller_id"], x["zone_id"],
                 x["network_ref"], x["external_id"]) for x in page["items"]]

    point = (store + 1, "Seoul pickup point", "pickup_point", "platform", None, SEOUL,
             "test:tiny", 900)
    assert locations() == [
        (seoul_wh, "Seoul WH", "warehouse", "seller", seller_id, SEOUL, None, None),
        (busan_wh, "Busan WH", "warehouse", "seller", seller_id, BUSAN, None, None),
        (store, "Gangnam Store", "store", "seller", seller_id, SEOUL, None, None), point,
        (extra, "Busan WH 2", "warehouse", "seller", seller_id, BUSAN, None, None)]
    assert [x[0] for x in locations("?kind=warehouse")] == [seoul_wh, busan_wh, extra]
    assert [x[0] for x in locations(f"?zone_id={SEOUL}")] == [seoul_wh, store, store + 1]
    assert locations(f"?kind=pickup_point&zone_id={SEOUL}") == [point]
    assert locations(f"?kind=store&zone_id={BUSAN}") == []
    full = ok(client.get("/api/v1/operator/network/locations?kind=pickup_point",
                         headers=ops))["items"][0]
    assert (full["daily_capacity"], full["handling_cost"], full["opens_hour"],
            full["closes_hour"]) == (500, 300, 9, 21)

    for query, field in (("locations?kind=depot", "kind"), ("locations?zone_id=0", "zone_id"),
                         ("zones?limit=101", "limit"), ("zones?country=KOR", "country"),
                         ("locations?offset=-1", "offset")):
        r = client.get(f"/api/v1/operator/network/{query}", headers=ops)
        assert (r.status_code, r.json()["code"], r.json()["field"]) == (
            422, "validation_error", field), query


# ------------------------------------------------------------------- fees and commission
def test_commission_rates_read_set_and_validated(client: TestClient, engine: Engine) -> None:
    ops = operator(engine)
    url = "/api/v1/operator/commission-rates"
    assert ok(client.get(url, headers=ops)) == {"default": "0.05", "by_category": {}}
    assert ok(client.put(f"{url}/tea", json={"rate": "0.12"}, headers=ops)) == {
        "category": "tea", "rate": "0.12"}
    assert ok(client.put(f"{url}/books", json={"rate": 0}, headers=ops)) == {
        "category": "books", "rate": "0"}
    assert ok(client.put(f"{url}/tea", json={"rate": "0.1250"}, headers=ops)) == {
        "category": "tea", "rate": "0.125"}  # set again: replaced
    assert ok(client.put(f"{url}/luxury goods", json={"rate": 1}, headers=ops)) == {
        "category": "luxury goods", "rate": "1"}
    assert ok(client.get(url, headers=ops)) == {"default": "0.05", "by_category": {
        "books": "0", "luxury goods": "1", "tea": "0.125"}}

    for body, field in (({"rate": "1.5"}, "rate"), ({"rate": -0.01}, "rate"),
                        ({"rate": "abc"}, "rate"), ({"rate": "0.12345"}, "rate"),
                        ({"rate": "NaN"}, "rate"), ({"rate": None}, "rate"), ({}, "rate"),
                        ({"rate": "0.1", "extra": 1}, "extra")):
        r = client.put(f"{url}/tea", json=body, headers=ops)
        assert (r.status_code, r.json()["code"], r.json()["field"]) == (
            422, "validation_error", field), body
    r = client.put(f"{url}/tea", content=b"not json", headers={
        **ops, "Content-Type": "application/json"})
    assert (r.status_code, r.json()["field"]) == (422, "body")
    for category in ("%20tea", "tea%20", "x" * 101):
        r = client.put(f"{url}/{category}", json={"rate": "0.1"}, headers=ops)
        assert (r.status_code, r.json()["code"], r.json()["field"]) == (
            422, "validation_error", "category"), category
    assert ok(client.get(url, headers=ops))["by_category"]["tea"] == "0.125"  # unchanged


def _delivered(w: World, quantity: int) -> int:
    oid = w.buy("TEA-1", quantity)
    w.event(w.hand_over(oid), "delivered")
    return oid


def test_a_new_commission_rate_applies_to_the_next_release(client: TestClient,
                                                           engine: Engine) -> None:
    w = build_world(client, engine)  # TEA-1: 12,000 KRW, category "tea"; no shipping fee
    first, second = _delivered(w, 2), _delivered(w, 2)

    def confirm(oid: int) -> tuple[int, int, int, int]:
        r = ok(client.post(f"/api/v1/buyer/orders/{oid}/confirm", headers=auth(w.buyer)))
        return r["hold"], r["seller"], r["carrier"], r["platform"]

    assert confirm(first) == (24000, 22800, 0, 1200)  # the default 5%
    ok(client.put("/api/v1/operator/commission-rates/tea", json={"rate": "0.125"},
                  headers=auth(w.operator)))
    assert confirm(second) == (24000, 21000, 0, 3000)  # 12.5% of 24,000
    ok(client.put("/api/v1/operator/commission-rates/mugs", json={"rate": "0.5"},
                  headers=auth(w.operator)))  # another category: tea is not affected
    assert confirm(_delivered(w, 1)) == (12000, 10500, 0, 1500)
    statement = ok(client.get("/api/v1/seller/statement", headers=auth(w.seller)))
    assert statement["balances"] == {"KRW": 22800 + 21000 + 10500}
    check = ok(client.get("/api/v1/operator/ledger/check", headers=auth(w.operator)))
    assert (check["ok"], check["violations"]) == (True, [])


def test_fee_settings_are_read_from_the_code_and_environment(
        client: TestClient, engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    ops = operator(engine)
    for name in ("SILKROUTE_AUTO_CONFIRM_DAYS", "SILKROUTE_RESERVATION_MINUTES",
                 "SILKROUTE_PICKUP_DAYS"):
        monkeypatch.delenv(name, raising=False)
    expected = {"default_commission_rate": "0.05",
                "membership_monthly_fees": {"CNY": 1500, "EUR": 499, "GBP": 399, "JPY": 500,
                                            "KRW": 4900, "USD": 499},
                "auto_confirm_days": 10, "reservation_minutes": 30, "pickup_days": 7}
    assert ok(client.get("/api/v1/operator/fees", headers=ops)) == expected
    monkeypatch.setenv("SILKROUTE_AUTO_CONFIRM_DAYS", "3")
    monkeypatch.setenv("SILKROUTE_PICKUP_DAYS", "14")
    assert ok(client.get("/api/v1/operator/fees", headers=ops)) == {
        **expected, "auto_confirm_days": 3, "pickup_days": 14}
    # a commission rate set per category does not change the default
    ok(client.put("/api/v1/operator/commission-rates/tea", json={"rate": "0.2"}, headers=ops))
    assert ok(client.get("/api/v1/operator/fees", headers=ops))["default_commission_rate"] \
        == "0.05"
    r = client.put("/api/v1/operator/fees", json={}, headers=ops)
    assert (r.status_code, r.json()["code"]) == (405, "method_not_allowed")


# ------------------------------------------------------------------------------ metrics
def test_routing_decisions_are_timed_once_per_sellers_order(client: TestClient) -> None:
    def count() -> float | None:
        return metric(client.get("/metrics").text, "silkroute_routing_decision_seconds_count")

    assert count() == 0.0
    shops = [open_shop(client, name) for name in ("Tea House", "Mug Shop")]
    for (_, token), (code, city) in zip(shops, (("TEA-1", "Seoul"), ("MUG-1", "Busan")),
                                        strict=True):
        add_location(client, token, "WH", city)
        ok(import_csv(client, token, CSV_HEADER + f"Item,{code},1000,KRW,100,misc,WH,10\n"), 201)
    _, buyer = register_buyer(client, "Min-jun")
    ok(client.post("/api/v1/buyer/payment-methods", json={"card": APPROVE},
                   headers=auth(buyer)), 201)
    for _ in range(3):  # one seller: one decision each
        ok(client.post("/api/v1/buyer/checkouts", json={"lines": [{"sku": "TEA-1", "quantity": 1}]},
                       headers=auth(buyer)), 201)
    assert count() == 3.0
    # two sellers in one cart: one decision per seller's order
    ok(client.post("/api/v1/buyer/checkouts", json={"lines": [
        {"sku": "MUG-1", "quantity": 1}, {"sku": "TEA-1", "quantity": 1}]},
        headers=auth(buyer)), 201)
    assert count() == 5.0
    ok(client.post("/api/v1/buyer/buy-now", json={"sku": "MUG-1"},
                   headers={**auth(buyer), "Idempotency-Key": "k1"}), 201)
    assert count() == 6.0
    # a refusal is a decision too; a cart refused before routing (no such SKU) is not
    r = client.post("/api/v1/buyer/checkouts", json={"lines": [{"sku": "MUG-1", "quantity": 99}]},
                    headers=auth(buyer))
    assert (r.status_code, r.json()["code"]) == (409, "out_of_stock")
    r = client.post("/api/v1/buyer/checkouts", json={"lines": [{"sku": "NOPE-1", "quantity": 1}]},
                    headers=auth(buyer))
    assert r.status_code == 404
    text = client.get("/metrics").text
    assert count() == 7.0
    assert "# TYPE silkroute_routing_decision_seconds histogram" in text
    buckets = re.findall(r'silkroute_routing_decision_seconds_bucket\{le="([^"]+)"\} (\S+)',
                         text)
    assert [le for le, _ in buckets] == ["5e-05", "0.0001", "0.00025", "0.0005", "0.001",
                                         "0.0025", "0.005", "0.01", "0.025", "0.05", "+Inf"]
    assert float(buckets[-1][1]) == 7.0
    assert 0 < (metric(text, "silkroute_routing_decision_seconds_sum") or 0) < 7 * 0.05


def test_webhook_rejections_are_counted_by_reason(client: TestClient, engine: Engine) -> None:
    w = build_world(client, engine)
    tracking = w.hand_over(w.buy())

    def post(raw: bytes, headers: dict[str, str]) -> tuple[int, str]:
        r = client.post("/api/v1/carrier/events", content=raw,
                        headers={**auth(w.carrier), **headers})
        return r.status_code, r.json().get("code", "")

    good = {"event_id": "e1", "tracking_number": tracking, "event": "picked_up"}
    assert post(*signed("wrong-secret", good)) == (401, "bad_signature")
    assert post(*signed("wrong-secret", good)) == (401, "bad_signature")
    assert post(*signed("wrong-secret", {**good, "event": "lost"})) == (401, "bad_signature")
    assert post(*signed(w.secret, good, ts=int(time.time()) - 3600)) == (401,
                                                                         "stale_timestamp")
    assert post(*signed(w.secret, {**good, "tracking_number": "SR99999999L1"})) == (
        404, "not_found")
    raw, headers = signed(w.secret, good)
    stamp = headers["X-Silkroute-Timestamp"]
    garbage = b"{not json"
    mac = hmac.new(w.secret.encode(), stamp.encode() + b"." + garbage, hashlib.sha256)
    assert post(garbage, {**headers, "X-Silkroute-Signature": f"sha256={mac.hexdigest()}"}
                ) == (422, "validation_error")
    assert post(*signed(w.secret, {**good, "event": "teleported"})) == (422,
                                                                       "validation_error")
    # not the webhook refusing: no carrier token at all is the API's 401, not counted
    r = client.post("/api/v1/carrier/events", content=raw, headers=headers)
    assert r.status_code == 401
    assert w.event(tracking, "picked_up")["applied"] is True  # and a good one is not counted
    text = client.get("/metrics").text
    counts = {m.group(1): float(m.group(2)) for m in re.finditer(
        r'silkroute_webhook_rejections_total\{reason="([a-z_]+)"\} (\S+)', text)}
    assert counts == {"bad_signature": 3.0, "stale_timestamp": 1.0, "not_found": 1.0,
                      "validation_error": 2.0}


# ------------------------------------------------------------------------ authorisation
def test_only_operators_reach_the_operator_routes(client: TestClient, engine: Engine) -> None:
    """The answers the existing operator routes give: 401 without a live token, 403 for
    buyer, seller and carrier tokens (also in tests/e2e/test_api.py's matrix, but for the
    carrier)."""
    ops = operator(engine)
    _, seller = open_shop(client, "Tea House")
    _, buyer = register_buyer(client, "Min-jun")
    ok(client.post("/api/v1/operator/carriers", json={"name": "Fast", "id": 1}, headers=ops),
       201)
    carrier = ok(client.post("/api/v1/operator/carriers/1/accounts", headers=ops), 201)["token"]
    callers = {"none": {}, "unknown": auth("sr_" + "x" * 43), "buyer": auth(buyer),
               "seller": auth(seller), "carrier": auth(carrier), "operator": ops}
    expected = {"none": 401, "unknown": 401, "buyer": 403, "seller": 403, "carrier": 403,
                "operator": 200}
    for method, path, body in ROUTES + [("GET", "/api/v1/operator/summary", None)]:
        got = {who: client.request(method, path, json=body, headers=headers).status_code
               for who, headers in callers.items()}
        assert got == expected, (method, path)
    assert ok(client.get("/api/v1/operator/commission-rates", headers=ops))["by_category"] == {
        "tea": "0.07"}  # only the operator's PUT got through
