"""Carriers, the delivery lifecycle, pickup and jobs over the HTTP API on both backends."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from silkroute.api.app import create_app
from silkroute.services.accounts import create_account
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


@pytest.fixture
def client(engine: Engine) -> Iterator[TestClient]:
    with TestClient(create_app(engine)) as c:
        yield c


def signed(secret: str, body: dict[str, Any], ts: int | None = None) -> tuple[bytes, dict]:
    raw = json.dumps(body).encode()
    stamp = str(int(time.time()) if ts is None else ts)
    mac = hmac.new(secret.encode(), stamp.encode() + b"." + raw, hashlib.sha256).hexdigest()
    return raw, {"X-Silkroute-Timestamp": stamp, "X-Silkroute-Signature": f"sha256={mac}",
                 "Content-Type": "application/json"}


@dataclass
class World:
    client: TestClient
    operator: str
    seller: str
    seller_id: int
    warehouse: int
    store: int
    buyer: str
    buyer_id: int
    carrier: str
    secret: str
    _n: int = 0

    def event(self, tracking: str, kind: str, event_id: str | None = None,
              occurred_at: str | None = None, expect: int = 200) -> Any:
        self._n += 1
        body: dict[str, Any] = {"event_id": event_id or f"ev-{self._n}",
                                "tracking_number": tracking, "event": kind}
        if occurred_at:
            body["occurred_at"] = occurred_at
        raw, headers = signed(self.secret, body)
        r = self.client.post("/api/v1/carrier/events", content=raw,
                             headers={**auth(self.carrier), **headers})
        return ok(r, expect)

    def buy(self, sku: str = "TEA-1", quantity: int = 2) -> int:
        r = ok(self.client.post("/api/v1/buyer/buy-now", json={"sku": sku, "quantity": quantity},
                                headers={**auth(self.buyer), "Idempotency-Key": f"k-{sku}-"
                                         f"{self._next()}"}), 201)
        return int(r["order_id"])

    def _next(self) -> int:
        self._n += 1
        return self._n

    def hand_over(self, order_id: int) -> str:
        body = ok(self.client.post(f"/api/v1/seller/orders/{order_id}/hand-over",
                                   headers=auth(self.seller)))
        return str(body["parcels"][0]["tracking_number"])

    def order(self, order_id: int) -> Any:
        return ok(self.client.get(f"/api/v1/buyer/orders/{order_id}", headers=auth(self.buyer)))

    def stock(self, location: int) -> dict[str, tuple[int, int]]:
        rows = ok(self.client.get(f"/api/v1/seller/stock?location_id={location}",
                                  headers=auth(self.seller)))
        return {r["sku"]: (r["on_hand"], r["reserved"]) for r in rows}

    def jobs(self, *only: str) -> Any:
        return ok(self.client.post("/api/v1/operator/jobs/run", json={"only": list(only)},
                                   headers=auth(self.operator)))


def build_world(client: TestClient, engine: Engine) -> World:
    operator = create_account(UnitOfWork(engine), "operator", "Ops", with_token=True)
    assert operator.token is not None
    op = auth(operator.token.token)
    assert ok(client.post("/api/v1/operator/carriers", json={"name": "Fast Parcel", "id": 1},
                          headers=op), 201) == {"id": 1}
    acc = ok(client.post("/api/v1/operator/carriers/1/accounts", headers=op), 201)
    assert acc["webhook_secret"].startswith("whsec_")
    seller_id, seller = open_shop(client, "Tea House")
    wh = add_location(client, seller, "Seoul WH", "Seoul")
    store = ok(client.post("/api/v1/seller/locations", headers=auth(seller), json={
        "name": "Gangnam Store", "kind": "store", "city": "Seoul"}), 201)["id"]
    ok(import_csv(client, seller, CSV_HEADER + "Green tea,TEA-1,12000,KRW,300,tea,Seoul WH,10\n"),
       201)
    buyer_id, buyer = register_buyer(client, "Min-jun")
    ok(client.post("/api/v1/buyer/payment-methods", json={"card": APPROVE}, headers=auth(buyer)),
       201)
    return World(client, operator.token.token, seller, seller_id, wh, store, buyer, buyer_id,
                 acc["token"], acc["webhook_secret"])


@pytest.fixture
def world(client: TestClient, engine: Engine) -> World:
    return build_world(client, engine)


# --------------------------------------------------------------------------- the journey
def test_buyer_seller_carrier_operator_journey(world: World) -> None:
    c, w = world.client, world
    oid = w.buy("TEA-1", 2)
    # the seller hands the paid order over: one parcel, the carrier's daily manifest has it
    handed = ok(c.post(f"/api/v1/seller/orders/{oid}/hand-over", headers=auth(w.seller)))
    tracking = f"SR{oid:08d}L{w.warehouse}"
    assert (handed["state"], [(p["tracking_number"], p["carrier_id"], p["state"], p["weight_g"])
                              for p in handed["parcels"]]) == (
        "ready_to_ship", [(tracking, 1, "handed_over", 600)])
    assert w.stock(w.warehouse) == {"TEA-1": (10, 2)}
    mine = ok(c.get("/api/v1/carrier/parcels", headers=auth(w.carrier)))
    assert [(p["tracking_number"], p["state"]) for p in mine["items"]] == [
        (tracking, "handed_over")]
    manifest = ok(c.get("/api/v1/carrier/manifest", headers=auth(w.carrier)))
    assert (manifest["parcels"], manifest["weight_g"], manifest["stops"][0]["name"],
            [p["order_id"] for p in manifest["stops"][0]["parcels"]]) == (
        1, 600, "Seoul WH", [oid])
    assert ok(c.get("/api/v1/carrier/manifest?date=2001-01-01",
                    headers=auth(w.carrier)))["parcels"] == 0

    # the carrier reports the parcel's way to the door
    first = w.event(tracking, "picked_up")
    assert (first["duplicate"], first["applied"], first["parcel_state"], first["order_state"]
            ) == (False, True, "picked_up", "shipped")
    assert w.stock(w.warehouse) == {"TEA-1": (8, 0)}  # the units left the warehouse
    for kind in ("in_transit", "out_for_delivery"):
        assert w.event(tracking, kind)["order_state"] == "shipped"
    done = w.event(tracking, "delivered")
    assert (done["parcel_state"], done["order_state"]) == ("delivered", "delivered")

    # the buyer follows it and confirms receipt: escrow is released
    track = ok(c.get(f"/api/v1/buyer/orders/{oid}/tracking", headers=auth(w.buyer)))
    assert [(e["event"], e["applied"]) for e in track["parcels"][0]["events"]] == [
        ("picked_up", True), ("in_transit", True), ("out_for_delivery", True),
        ("delivered", True)]
    assert [h["to"] for h in track["history"]] == [
        "created", "reserved", "paid", "ready_to_ship", "shipped", "delivered"]
    released = ok(c.post(f"/api/v1/buyer/orders/{oid}/confirm", headers=auth(w.buyer)))
    assert (released["hold"], released["currency"], released["state"]) == (24000, "KRW",
                                                                            "completed")
    assert released["seller"] + released["carrier"] + released["platform"] == 24000
    statement = ok(c.get("/api/v1/seller/statement", headers=auth(w.seller)))
    assert statement["balances"] == {"KRW": released["seller"]}
    assert [(i["kind"], i["amount"]) for i in statement["items"]] == [
        ("release", released["seller"])]

    # the operator's jobs pay the seller out; the ledger holds
    jobs = w.jobs("payouts")
    assert (jobs["payouts"], jobs["paid_out"]) == (1, {"KRW": released["seller"]})
    payouts = ok(c.get("/api/v1/seller/payouts", headers=auth(w.seller)))
    assert [(p["amount"], p["status"]) for p in payouts["items"]] == [
        (released["seller"], "sent")]
    assert ok(c.get("/api/v1/seller/statement", headers=auth(w.seller)))["balances"] == {
        "KRW": 0}
    check = ok(c.get("/api/v1/operator/ledger/check", headers=auth(w.operator)))
    assert (check["ok"], check["violations"]) == (True, [])
    carriers = ok(c.get("/api/v1/operator/carriers", headers=auth(w.operator)))
    assert [(x["id"], x["accounts"], x["has_webhook_secret"]) for x in carriers["items"]] == [
        (1, 1, True)]


# ------------------------------------------------------------------------------ webhooks
def test_webhook_signature_timestamp_and_replays(world: World) -> None:
    c, w = world.client, world
    oid = w.buy()
    tracking = w.hand_over(oid)
    body = {"event_id": "e1", "tracking_number": tracking, "event": "picked_up"}
    raw, headers = signed("not-the-secret", body)
    bad = c.post("/api/v1/carrier/events", content=raw, headers={**auth(w.carrier), **headers})
    assert (bad.status_code, bad.json()["code"], bad.json()["field"]) == (
        401, "bad_signature", "X-Silkroute-Signature")
    raw, headers = signed(w.secret, body, ts=int(time.time()) - 301)
    stale = c.post("/api/v1/carrier/events", content=raw, headers={**auth(w.carrier), **headers})
    assert (stale.status_code, stale.json()["code"]) == (401, "stale_timestamp")
    raw, headers = signed(w.secret, body)
    tampered = c.post("/api/v1/carrier/events", content=raw.replace(b"picked_up", b"lost"),
                      headers={**auth(w.carrier), **headers})
    assert (tampered.status_code, tampered.json()["code"]) == (401, "bad_signature")
    unsigned = c.post("/api/v1/carrier/events", content=raw, headers=auth(w.carrier))
    assert (unsigned.status_code, unsigned.json()["code"]) == (401, "stale_timestamp")
    assert w.order(oid)["state"] == "ready_to_ship"  # nothing of that changed anything

    first = w.event(tracking, "picked_up", event_id="e1")
    again = w.event(tracking, "picked_up", event_id="e1")
    assert (first["duplicate"], again["duplicate"], again["applied"]) == (False, True, False)
    assert again["order_state"] == "shipped"
    # the same event id with another body is still the same event: ignored
    assert w.event(tracking, "lost", event_id="e1")["duplicate"] is True
    track = ok(c.get(f"/api/v1/buyer/orders/{oid}/tracking", headers=auth(w.buyer)))
    assert [e["event_id"] for e in track["parcels"][0]["events"]] == ["e1"]
    garbage = signed(w.secret, {"event_id": "e9", "tracking_number": tracking, "event": "x"})
    r = c.post("/api/v1/carrier/events", content=garbage[0],
               headers={**auth(w.carrier), **garbage[1]})
    assert (r.status_code, r.json()["field"]) == (422, "event")
    metrics = c.get("/metrics").text
    assert 'silkroute_webhook_rejections_total{reason="bad_signature"} 2.0' in metrics
    assert 'silkroute_webhook_rejections_total{reason="stale_timestamp"} 2.0' in metrics


def test_duplicate_and_out_of_order_events_keep_states_legal(world: World) -> None:
    c, w = world.client, world
    oid = w.buy()
    tracking = w.hand_over(oid)
    # delivered arrives before anything else: the parcel was obviously picked up too
    d = w.event(tracking, "delivered", occurred_at="2030-01-01T12:00:00Z")
    assert (d["parcel_state"], d["order_state"], d["applied"]) == ("delivered", "delivered",
                                                                   True)
    assert w.stock(w.warehouse) == {"TEA-1": (8, 0)}
    late = [w.event(tracking, k, occurred_at=f"2030-01-01T0{i}:00:00Z")
            for i, k in enumerate(("picked_up", "in_transit", "out_for_delivery",
                                   "failed_attempt", "returned_to_sender", "lost"), start=1)]
    assert {(e["applied"], e["parcel_state"], e["order_state"]) for e in late} == {
        (False, "delivered", "delivered")}
    track = ok(c.get(f"/api/v1/buyer/orders/{oid}/tracking", headers=auth(w.buyer)))
    assert [(e["event"], e["applied"]) for e in track["parcels"][0]["events"]] == [
        ("picked_up", False), ("in_transit", False), ("out_for_delivery", False),
        ("failed_attempt", False), ("returned_to_sender", False), ("lost", False),
        ("delivered", True)]  # by when they happened
    assert [h["to"] for h in track["history"]] == [
        "created", "reserved", "paid", "ready_to_ship", "shipped", "delivered"]

    # a failed attempt and the next round: the newer event wins, an older one is ignored
    oid2 = w.buy("TEA-1", 1)
    t2 = w.hand_over(oid2)
    w.event(t2, "out_for_delivery", occurred_at="2030-01-02T08:00:00Z")
    assert w.event(t2, "failed_attempt", occurred_at="2030-01-02T10:00:00Z")[
        "parcel_state"] == "failed_attempt"
    stale = w.event(t2, "out_for_delivery", occurred_at="2030-01-02T09:00:00Z")
    assert (stale["applied"], stale["parcel_state"]) == (False, "failed_attempt")
    retry = w.event(t2, "out_for_delivery", occurred_at="2030-01-03T08:00:00Z")
    assert (retry["applied"], retry["parcel_state"], retry["order_state"]) == (
        True, "out_for_delivery", "shipped")


def test_a_lost_parcel_refunds_the_buyer_in_full(world: World) -> None:
    c, w = world.client, world
    oid = w.buy("TEA-1", 3)
    tracking = w.hand_over(oid)
    w.event(tracking, "picked_up")
    lost = w.event(tracking, "lost")
    assert (lost["parcel_state"], lost["order_state"]) == ("lost", "refunded")
    assert w.stock(w.warehouse) == {"TEA-1": (7, 0)}  # lost goods do not come back
    assert [h["to"] for h in w.order(oid)["events"]][-2:] == ["shipped", "refunded"]
    assert w.jobs("settle")["refunds_settled"] == []  # settled once, not twice
    check = ok(c.get("/api/v1/operator/ledger/check", headers=auth(w.operator)))
    assert check["ok"] is True


def test_a_return_puts_stock_back_when_the_seller_receives_it(world: World) -> None:
    c, w = world.client, world
    oid = w.buy("TEA-1", 2)
    tracking = w.hand_over(oid)
    w.event(tracking, "picked_up")
    w.event(tracking, "failed_attempt")
    back = w.event(tracking, "returned_to_sender")
    assert (back["parcel_state"], back["order_state"]) == ("returned_to_sender", "returned")
    assert w.stock(w.warehouse) == {"TEA-1": (8, 0)}  # not on the shelf until received
    got = ok(c.post(f"/api/v1/seller/returns/{oid}/receive", headers=auth(w.seller)))
    assert got == {"order_id": oid, "state": "refunded", "units_restocked": 2,
                   "refunded": 24000}
    assert w.stock(w.warehouse) == {"TEA-1": (10, 0)}
    again = c.post(f"/api/v1/seller/returns/{oid}/receive", headers=auth(w.seller))
    assert (again.status_code, again.json()["code"]) == (409, "no_return")


# -------------------------------------------------------------------------------- pickup
def pickup_order(w: World, quantity: int = 1) -> int:
    placed = ok(w.client.post("/api/v1/buyer/checkouts", headers=auth(w.buyer), json={
        "lines": [{"sku": "TEA-1", "quantity": quantity}], "service": "pickup",
        "pickup_location_id": w.store}), 201)
    ok(w.client.post(f"/api/v1/buyer/checkouts/{placed['checkout_id']}/payment",
                     headers=auth(w.buyer)), 201)
    return int(placed["orders"][0]["order_id"])


def test_order_online_collect_in_store_with_the_code(world: World, client: TestClient) -> None:
    c, w = world.client, world
    oid = pickup_order(w)
    tracking = w.hand_over(oid)
    early = c.get(f"/api/v1/buyer/orders/{oid}/pickup-code", headers=auth(w.buyer))
    assert (early.status_code, early.json()["code"]) == (409, "not_ready")
    w.event(tracking, "picked_up")
    at_store = w.event(tracking, "delivered")
    assert (at_store["parcel_state"], at_store["order_state"]) == ("ready_for_collection",
                                                                   "shipped")
    code = ok(c.get(f"/api/v1/buyer/orders/{oid}/pickup-code", headers=auth(w.buyer)))
    assert (len(code["code"]), code["code"].isdigit(), code["location"], code["attempts_left"]
            ) == (6, True, "Gangnam Store", 5)
    # another shop cannot hand it over; a wrong code counts
    _, other = open_shop(c, "Other shop")
    theirs = c.post(f"/api/v1/seller/pickups/{oid}/collect", json={"code": code["code"]},
                    headers=auth(other))
    assert (theirs.status_code, theirs.json()["field"]) == (404, "order_id")
    wrong = "000000" if code["code"] != "000000" else "111111"
    bad = c.post(f"/api/v1/seller/pickups/{oid}/collect", json={"code": wrong},
                 headers=auth(w.seller))
    assert (bad.status_code, bad.json()) == (422, {
        "code": "wrong_pickup_code", "field": "code",
        "message": "code: wrong pickup code (1 wrong of 5; 4 tries left)"})
    done = ok(c.post(f"/api/v1/seller/pickups/{oid}/collect", json={"code": code["code"]},
                     headers=auth(w.seller)))
    assert done == {"order_id": oid, "state": "delivered", "parcels": 1}
    track = ok(c.get(f"/api/v1/buyer/orders/{oid}/tracking", headers=auth(w.buyer)))
    assert (track["parcels"][0]["state"], track["state"]) == ("collected", "delivered")
    again = c.get(f"/api/v1/buyer/orders/{oid}/pickup-code", headers=auth(w.buyer))
    assert (again.status_code, again.json()["code"]) == (409, "already_collected")
    assert ok(c.post(f"/api/v1/buyer/orders/{oid}/confirm", headers=auth(w.buyer)))[
        "hold"] == 12000


def test_five_wrong_codes_lock_and_an_uncollected_pickup_returns_and_refunds(
        world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    c, w = world.client, world
    oid = pickup_order(w, 2)
    tracking = w.hand_over(oid)
    w.event(tracking, "delivered")
    right = ok(c.get(f"/api/v1/buyer/orders/{oid}/pickup-code", headers=auth(w.buyer)))["code"]
    wrong = "000000" if right != "000000" else "111111"
    statuses = [c.post(f"/api/v1/seller/pickups/{oid}/collect", json={"code": wrong},
                       headers=auth(w.seller)) for _ in range(5)]
    assert [r.status_code for r in statuses] == [422] * 5
    assert statuses[-1].json()["message"].endswith("0 tries left; pickup is now locked)")
    locked = c.post(f"/api/v1/seller/pickups/{oid}/collect", json={"code": right},
                    headers=auth(w.seller))
    assert (locked.status_code, locked.json()["code"]) == (409, "pickup_locked")
    # not collected in time: the jobs put the units on the store's shelf and refund
    monkeypatch.setenv("SILKROUTE_PICKUP_DAYS", "0")
    jobs = w.jobs("pickups")
    assert (jobs["pickups_expired"], jobs["refunds_settled"]) == ([oid], [])
    assert w.order(oid)["state"] == "refunded"
    assert w.stock(w.store) == {"TEA-1": (2, 0)}
    assert w.stock(w.warehouse) == {"TEA-1": (8, 0)}
    assert w.jobs("pickups")["pickups_expired"] == []
    assert ok(c.get("/api/v1/operator/ledger/check", headers=auth(w.operator)))["ok"] is True


# ---------------------------------------------------------------------- jobs and refunds
def test_unpaid_reservations_expire(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    c, w = world.client, world
    placed = ok(c.post("/api/v1/buyer/checkouts", headers=auth(w.buyer),
                       json={"lines": [{"sku": "TEA-1", "quantity": 4}]}), 201)
    oid = placed["orders"][0]["order_id"]
    paid = w.buy("TEA-1", 1)
    assert w.stock(w.warehouse) == {"TEA-1": (10, 5)}
    assert w.jobs("reservations")["reservations_expired"] == []  # younger than 30 minutes
    monkeypatch.setenv("SILKROUTE_RESERVATION_MINUTES", "0")
    assert w.jobs("reservations")["reservations_expired"] == [oid]
    assert (w.order(oid)["state"], w.order(paid)["state"]) == ("cancelled", "paid")
    assert w.stock(w.warehouse) == {"TEA-1": (10, 1)}


def test_refund_requests_before_and_after_hand_over(world: World) -> None:
    c, w = world.client, world
    early = w.buy("TEA-1", 1)
    res = ok(c.post(f"/api/v1/buyer/orders/{early}/refund", headers=auth(w.buyer)), 201)
    assert (res["state"], res["amount"]) == ("approved", None)
    assert w.order(early)["state"] == "refunded"
    late = w.buy("TEA-1", 2)
    w.hand_over(late)
    asked = ok(c.post(f"/api/v1/buyer/orders/{late}/refund", json={"amount": 5000,
                                                                    "reason": "dented"},
                      headers=auth(w.buyer)), 201)
    assert (asked["state"], asked["amount"], asked["refund_id"]) == ("pending", 5000, None)
    twice = c.post(f"/api/v1/buyer/orders/{late}/refund", headers=auth(w.buyer))
    assert (twice.status_code, twice.json()["code"]) == (409, "refund_pending")
    pending = ok(c.get("/api/v1/seller/refunds?state=pending", headers=auth(w.seller)))
    assert [r["id"] for r in pending["items"]] == [asked["id"]]
    _, other = open_shop(c, "Other shop")
    theirs = c.post(f"/api/v1/seller/refunds/{asked['id']}/approve", headers=auth(other))
    assert theirs.status_code == 404
    approved = ok(c.post(f"/api/v1/seller/refunds/{asked['id']}/approve",
                         headers=auth(w.seller)))
    assert (approved["state"], approved["refund_id"] is not None) == ("approved", True)
    again = c.post(f"/api/v1/seller/refunds/{asked['id']}/reject", headers=auth(w.seller))
    assert (again.status_code, again.json()["code"]) == (409, "already_decided")
    assert w.order(late)["state"] == "ready_to_ship"  # a part refund keeps the order going


# ---------------------------------------------------------------------- authorisation
def test_authorisation_of_delivery_routes(world: World, engine: Engine) -> None:
    """Each new route × role: the right role gets in, others 403, another tenant's 404."""
    c, w = world.client, world
    oid = w.buy()
    tracking = w.hand_over(oid)
    w.event(tracking, "picked_up")
    parcel_id = ok(c.get("/api/v1/carrier/parcels", headers=auth(w.carrier)))["items"][0]["id"]
    # another seller, buyer and carrier of the same platform
    _, seller_b = open_shop(c, "Seller B")
    _, buyer_b = register_buyer(c, "Buyer B")
    ok(c.post("/api/v1/operator/carriers", json={"name": "Slow", "id": 2},
              headers=auth(w.operator)), 201)
    carrier_b = ok(c.post("/api/v1/operator/carriers/2/accounts", headers=auth(w.operator)),
                   201)
    tokens = {"buyer": w.buyer, "seller": w.seller, "carrier": w.carrier,
              "operator": w.operator}
    others = {"buyer": buyer_b, "seller": seller_b, "carrier": carrier_b["token"]}
    # (method, path, role, success status, whether another tenant gets a 404)
    routes = [
        ("GET", f"/api/v1/buyer/orders/{oid}/tracking", "buyer", 200, True),
        ("GET", f"/api/v1/buyer/orders/{oid}/pickup-code", "buyer", 409, True),
        ("GET", f"/api/v1/seller/orders/{oid}/tracking", "seller", 200, True),
        ("POST", f"/api/v1/seller/orders/{oid}/hand-over", "seller", 200, True),
        ("POST", f"/api/v1/seller/returns/{oid}/receive", "seller", 409, True),
        ("GET", f"/api/v1/carrier/parcels/{parcel_id}", "carrier", 200, True),
        ("GET", "/api/v1/carrier/parcels", "carrier", 200, False),
        ("GET", "/api/v1/carrier/manifest", "carrier", 200, False),
        ("GET", "/api/v1/seller/statement", "seller", 200, False),
        ("GET", "/api/v1/seller/payouts", "seller", 200, False),
        ("GET", "/api/v1/seller/refunds", "seller", 200, False),
        ("GET", "/api/v1/operator/carriers", "operator", 200, False),
        ("GET", "/api/v1/operator/ledger/check", "operator", 200, False),
    ]
    wrong: dict[tuple[str, str, str], tuple[int, int]] = {}
    for method, path, role, success, tenant_sensitive in routes:
        for caller, token in tokens.items():
            expected = success if caller == role else 403
            got = c.request(method, path, headers=auth(token)).status_code
            if got != expected:
                wrong[(path, caller, "own")] = (got, expected)
        if role in others and tenant_sensitive:
            got = c.request(method, path, headers=auth(others[role])).status_code
            if got != 404:
                wrong[(path, role, "other")] = (got, 404)
        unauthenticated = c.request(method, path).status_code
        if unauthenticated != 401:
            wrong[(path, "none", "own")] = (unauthenticated, 401)
    assert wrong == {}, "(actual, expected)"
    # another carrier's list of parcels does not show mine
    assert ok(c.get("/api/v1/carrier/parcels", headers=auth(carrier_b["token"])))["total"] == 0
    # a carrier's webhook about another carrier's parcel is a 404, not an effect
    raw, headers = signed(carrier_b["webhook_secret"], {
        "event_id": "x1", "tracking_number": tracking, "event": "lost"})
    r = c.post("/api/v1/carrier/events", content=raw,
               headers={**auth(carrier_b["token"]), **headers})
    assert (r.status_code, r.json()["field"]) == (404, "tracking_number")
    r = c.post("/api/v1/carrier/events", content=raw, headers={**auth(w.buyer), **headers})
    assert r.status_code == 403
    assert w.order(oid)["state"] == "shipped"
