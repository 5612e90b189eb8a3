"""The HTTP API in-process over both backends: journeys, authorisation matrix, errors."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from silkroute.api.app import create_app
from silkroute.services.accounts import create_account, issue_token, revoke_token
from silkroute.store.auth_tables import api_tokens
from silkroute.store.uow import UnitOfWork

CSV_HEADER = "title,sku,price,currency,weight_g,category,location,quantity\n"
APPROVE = "4242424242424242"  # the test provider's cards (docs/payments.md)
DECLINE = "4000000000000002"


@pytest.fixture
def client(engine: Engine) -> Iterator[TestClient]:
    with TestClient(create_app(engine)) as c:
        yield c


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def open_shop(client: TestClient, name: str) -> tuple[int, str]:
    body = ok(client.post("/api/v1/sellers", json={"name": name, "currency": "KRW"}), 201)
    return body["seller_id"], body["token"]["token"]


def add_location(client: TestClient, token: str, name: str, city: str) -> int:
    return ok(client.post("/api/v1/seller/locations", json={"name": name, "city": city},
                          headers=auth(token)), 201)["id"]


def import_csv(client: TestClient, token: str, text: str) -> Any:
    return client.post("/api/v1/seller/catalog/imports", content=text.encode(),
                       headers={**auth(token), "Content-Type": "text/csv"})


def register_buyer(client: TestClient, name: str, city: str = "Seoul") -> tuple[int, str]:
    body = ok(client.post("/api/v1/buyers", json={"name": name, "address": {"city": city}}),
              201)
    return body["buyer_id"], body["token"]["token"]


def checkout_of(client: TestClient, token: str, sku: str, quantity: int = 1) -> int:
    body = ok(client.post("/api/v1/buyer/checkouts",
                          json={"lines": [{"sku": sku, "quantity": quantity}]},
                          headers=auth(token)), 201)
    return int(body["checkout_id"])


def place(client: TestClient, token: str, sku: str, quantity: int = 1) -> int:
    body = ok(client.post("/api/v1/buyer/checkouts",
                          json={"lines": [{"sku": sku, "quantity": quantity}]},
                          headers=auth(token)), 201)
    return int(body["orders"][0]["order_id"])


# -------------------------------------------------------------------------------- journey
def test_seller_and_buyer_journey(client: TestClient) -> None:
    # given a seller who opens a shop, adds a warehouse and imports a catalogue
    seller_id, seller = open_shop(client, "Tea House")
    assert ok(client.get("/api/v1/seller/shop", headers=auth(seller))) == {
        "id": 1, "seller_id": seller_id, "name": "Tea House", "currency": "KRW"}
    wh = add_location(client, seller, "Seoul WH", "Seoul")
    imported = ok(import_csv(client, seller, CSV_HEADER
                             + "Green tea,TEA-1,12000,KRW,300,tea,Seoul WH,5\n"
                             + f"Mug,MUG-1,8000,KRW,400,kitchen,{wh},2\n"), 201)
    assert imported == {"products": 2, "skus": 2, "stock_rows": 2, "units": 7,
                        "product_ids": [1, 2]}
    assert ok(client.put(f"/api/v1/seller/locations/{wh}/stock/TEA-1", json={"on_hand": 10},
                         headers=auth(seller))) == {
        "sku": "TEA-1", "location_id": wh, "on_hand": 10, "reserved": 0, "available": 10}

    # and a buyer who registers and finds the tea
    buyer_id, buyer = register_buyer(client, "Min-jun")
    found = ok(client.get("/api/v1/catalog/skus", params={"q": "tea"}))
    assert [(i["sku"], i["available"], i["price"]) for i in found["items"]] == [
        ("TEA-1", 10, {"amount": 12000, "currency": "KRW"})]

    # when the buyer checks out three teas and a mug
    placed = ok(client.post("/api/v1/buyer/checkouts", headers=auth(buyer), json={
        "lines": [{"sku": "TEA-1", "quantity": 3}, {"sku": "MUG-1", "quantity": 1}]}), 201)

    # then one reserved order for the seller, shipped from the warehouse
    assert len(placed["orders"]) == 1
    order = placed["orders"][0]
    assert (order["seller_id"], order["state"], order["items_amount"]) == (
        seller_id, "reserved", 3 * 12000 + 8000)
    oid = order["order_id"]
    mine = ok(client.get("/api/v1/buyer/orders", headers=auth(buyer)))
    assert [(o["id"], o["state"], o["buyer_id"]) for o in mine["items"]] == [
        (oid, "reserved", buyer_id)]
    shown = ok(client.get(f"/api/v1/buyer/orders/{oid}", headers=auth(buyer)))
    assert shown["lines"] == [{"sku": "TEA-1", "quantity": 3, "unit_price": 12000},
                              {"sku": "MUG-1", "quantity": 1, "unit_price": 8000}]
    assert shown["total"] == {"amount": 44000, "currency": "KRW", "formatted": "₩44,000"}
    assert [e["to"] for e in shown["events"]] == ["created", "reserved"]
    to_ship = ok(client.get("/api/v1/seller/orders", params={"state": "reserved"},
                            headers=auth(seller)))
    assert [o["id"] for o in to_ship["items"]] == [oid]
    stock = ok(client.get("/api/v1/seller/stock", headers=auth(seller)))
    assert {(s["sku"], s["on_hand"], s["reserved"]) for s in stock} == {
        ("TEA-1", 10, 3), ("MUG-1", 2, 1)}

    # when the buyer cancels, the stock comes back and the order says so everywhere
    assert ok(client.post(f"/api/v1/buyer/orders/{oid}/cancel", headers=auth(buyer))) == {
        "order_id": oid, "state": "cancelled", "released_units": 4}
    stock = ok(client.get(f"/api/v1/seller/stock?location_id={wh}", headers=auth(seller)))
    assert {(s["sku"], s["available"]) for s in stock} == {("TEA-1", 10), ("MUG-1", 2)}
    assert ok(client.get(f"/api/v1/seller/orders/{oid}", headers=auth(seller)))["state"] \
        == "cancelled"
    again = client.post(f"/api/v1/buyer/orders/{oid}/cancel", headers=auth(buyer))
    assert (again.status_code, again.json()["code"]) == (409, "illegal_transition")


def test_seller_lists_a_product_by_json_and_sees_it(client: TestClient) -> None:
    _, seller = open_shop(client, "Tea House")
    created = ok(client.post("/api/v1/seller/products", headers=auth(seller), json={
        "title": "Oolong", "category": "tea", "skus": [
            {"code": "OOL-50", "price": 9000, "weight_g": 50, "attributes": {"size": "50g"}},
            {"code": "OOL-100", "price": 16000, "weight_g": 100}]}), 201)
    assert created == {"product_id": 1, "sku_ids": {"OOL-50": 1, "OOL-100": 2}}
    listed = ok(client.get("/api/v1/seller/products", headers=auth(seller)))
    assert listed["total"] == 1
    assert [(s["sku"], s["price"]["amount"], s["attributes"])
            for s in listed["items"][0]["skus"]] == [("OOL-50", 9000, {"size": "50g"}),
                                                     ("OOL-100", 16000, {})]
    dup = client.post("/api/v1/seller/products", headers=auth(seller), json={
        "title": "Oolong again", "skus": [{"code": "OOL-50", "price": 1, "weight_g": 1}]})
    assert (dup.status_code, dup.json()["code"], dup.json()["field"]) == (
        422, "validation_error", "sku")


def test_buyer_adds_an_address_and_checks_out_to_it(client: TestClient) -> None:
    _, seller = open_shop(client, "Tea House")
    add_location(client, seller, "Busan WH", "Busan")
    ok(import_csv(client, seller, CSV_HEADER + "Tea,TEA-1,1000,KRW,100,tea,Busan WH,4\n"), 201)
    _, buyer = register_buyer(client, "Seo-yeon", "Seoul")
    address = ok(client.post("/api/v1/buyer/addresses", headers=auth(buyer),
                             json={"city": "Busan", "line1": "1 Haeundae-ro"}), 201)["id"]
    addresses = ok(client.get("/api/v1/buyer/addresses", headers=auth(buyer)))
    assert [(a["city"], a["is_default"]) for a in addresses] == [("Seoul", True),
                                                                 ("Busan", False)]
    placed = ok(client.post("/api/v1/buyer/checkouts", headers=auth(buyer), json={
        "lines": [{"sku": "TEA-1", "quantity": 1}], "address_id": address}), 201)
    assert placed["orders"][0]["state"] == "reserved"


# ------------------------------------------------------------------- authorisation matrix
@dataclass
class Tenants:
    """Two sellers, two buyers, an operator; each with an order, a location, spare tokens."""

    tokens: dict[str, str]
    own: dict[str, dict[str, Any]]
    other: dict[str, dict[str, Any]]
    spare: dict[str, int] = field(default_factory=dict)


def build_tenants(client: TestClient, engine: Engine) -> Tenants:
    seller_a_id, seller_a = open_shop(client, "Seller A")
    seller_b_id, seller_b = open_shop(client, "Seller B")
    loc_a = add_location(client, seller_a, "A WH", "Seoul")
    loc_b = add_location(client, seller_b, "B WH", "Busan")
    ok(import_csv(client, seller_a, CSV_HEADER + "Tea A,TEA-A,1000,KRW,100,tea,A WH,50\n"), 201)
    ok(import_csv(client, seller_b, CSV_HEADER + "Tea B,TEA-B,2000,KRW,100,tea,B WH,50\n"), 201)
    buyer_a_id, buyer_a = register_buyer(client, "Buyer A")
    _, buyer_b = register_buyer(client, "Buyer B", "Busan")
    order_a = place(client, buyer_a, "TEA-A")
    order_b = place(client, buyer_b, "TEA-B")
    for token in (buyer_a, buyer_b):
        ok(client.post("/api/v1/buyer/payment-methods", json={"card": APPROVE},
                       headers=auth(token)), 201)
    checkout_a = checkout_of(client, buyer_a, "TEA-A")
    checkout_b = checkout_of(client, buyer_b, "TEA-B")
    operator = create_account(UnitOfWork(engine), "operator", "Ops", with_token=True)
    assert operator.token is not None
    revoked = create_account(UnitOfWork(engine), "buyer", "Gone", with_token=True)
    assert revoked.token is not None
    revoke_token(UnitOfWork(engine), revoked.token.token_id)
    tokens = {"buyer": buyer_a, "seller": seller_a, "operator": operator.token.token,
              "revoked": revoked.token.token, "unknown": "sr_" + "x" * 43}
    me = {role: ok(client.get("/api/v1/me", headers=auth(tokens[role])))["account_id"]
          for role in ("buyer", "seller", "operator")}
    buyer_b_account = ok(client.get("/api/v1/me", headers=auth(buyer_b)))["account_id"]
    spare = {role: issue_token(UnitOfWork(engine), me[role], "spare").token_id
             for role in ("buyer", "seller", "operator")}
    foreign_token = issue_token(UnitOfWork(engine), buyer_b_account, "spare").token_id
    own = {role: {"order": order_a, "location": loc_a, "sku": "TEA-A", "checkout": checkout_a,
                  "token": spare.get(role, foreign_token)}
           for role in ("buyer", "seller", "operator", "revoked", "unknown", "none")}
    other = {role: {"order": order_b, "location": loc_b, "sku": "TEA-B", "checkout": checkout_b,
                    "token": foreign_token}
             for role in own}
    assert (seller_a_id, seller_b_id, buyer_a_id) == (1, 2, 1)
    return Tenants(tokens, own, other, spare)


_n = iter(range(10**6))


def _product() -> dict[str, Any]:
    return {"title": "Matrix tea", "skus": [{"code": f"MX-{next(_n)}", "price": 500,
                                              "weight_g": 10}]}


def _csv() -> str:
    return CSV_HEADER + f"Matrix tea,CSV-{next(_n)},500,KRW,10,tea,,\n"


# (method, path, scope, tenancy-sensitive, body, kind-of-body, success status)
ROUTES: list[tuple[str, str, str, bool, Any, int]] = [
    ("GET", "/api/v1/health", "public", False, None, 200),
    ("GET", "/api/v1/catalog/skus", "public", False, None, 200),
    ("GET", "/api/v1/catalog/skus/{sku}", "public", False, None, 200),
    ("POST", "/api/v1/buyers", "public", False, {"name": "New buyer"}, 201),
    ("POST", "/api/v1/sellers", "public", False, {"name": "New seller"}, 201),
    ("GET", "/api/v1/me", "any", False, None, 200),
    ("POST", "/api/v1/me/tokens", "any", False, {"label": "ci"}, 201),
    ("DELETE", "/api/v1/me/tokens/{token}", "any", True, None, 200),
    ("GET", "/api/v1/buyer/addresses", "buyer", False, None, 200),
    ("POST", "/api/v1/buyer/addresses", "buyer", False, {"city": "Incheon"}, 201),
    ("POST", "/api/v1/buyer/checkouts", "buyer", False,
     {"lines": [{"sku": "TEA-A", "quantity": 1}]}, 201),
    ("GET", "/api/v1/buyer/orders", "buyer", False, None, 200),
    ("GET", "/api/v1/buyer/orders/{order}", "buyer", True, None, 200),
    ("POST", "/api/v1/buyer/orders/{order}/cancel", "buyer", True, None, 200),
    ("GET", "/api/v1/buyer/payment-methods", "buyer", False, None, 200),
    ("POST", "/api/v1/buyer/payment-methods", "buyer", False, {"card": APPROVE}, 201),
    ("POST", "/api/v1/buyer/checkouts/{checkout}/payment", "buyer", True, None, 201),
    ("POST", "/api/v1/buyer/buy-now", "buyer", False, {"sku": "TEA-A"}, 201),
    ("PUT", "/api/v1/buyer/cart/lines/{sku}", "buyer", False, {"quantity": 2}, 200),
    ("GET", "/api/v1/buyer/cart", "buyer", False, None, 200),
    ("POST", "/api/v1/buyer/cart/checkout", "buyer", False, None, 201),  # the line PUT above
    ("DELETE", "/api/v1/buyer/cart/lines/{sku}", "buyer", False, None, 200),
    ("GET", "/api/v1/buyer/membership", "buyer", False, None, 200),
    ("POST", "/api/v1/buyer/membership", "buyer", False, None, 200),
    ("DELETE", "/api/v1/buyer/membership", "buyer", False, None, 200),
    ("GET", "/api/v1/seller/shop", "seller", False, None, 200),
    ("GET", "/api/v1/seller/locations", "seller", False, None, 200),
    ("POST", "/api/v1/seller/locations", "seller", False, {"name": "Extra", "city": "Daegu"},
     201),
    ("GET", "/api/v1/seller/products", "seller", False, None, 200),
    ("POST", "/api/v1/seller/products", "seller", False, _product, 201),
    ("POST", "/api/v1/seller/catalog/imports", "seller", False, _csv, 201),
    ("GET", "/api/v1/seller/stock", "seller", False, None, 200),
    ("GET", "/api/v1/seller/stock?location_id={location}", "seller", True, None, 200),
    ("PUT", "/api/v1/seller/locations/{location}/stock/{sku}", "seller", True,
     {"on_hand": 60}, 200),
    ("GET", "/api/v1/seller/orders", "seller", False, None, 200),
    ("GET", "/api/v1/seller/orders/{order}", "seller", True, None, 200),
    ("GET", "/api/v1/operator/orders", "operator", False, None, 200),
    ("GET", "/api/v1/operator/orders/{order}", "operator", False, None, 200),
    ("GET", "/api/v1/operator/summary", "operator", False, None, 200),
    ("GET", "/api/v1/operator/network", "operator", False, None, 200),
    ("GET", "/api/v1/operator/network/zones", "operator", False, None, 200),
    ("GET", "/api/v1/operator/network/locations?kind=warehouse", "operator", False, None,
     200),
    ("GET", "/api/v1/operator/fees", "operator", False, None, 200),
    ("GET", "/api/v1/operator/commission-rates", "operator", False, None, 200),
    ("PUT", "/api/v1/operator/commission-rates/tea", "operator", False, {"rate": "0.07"},
     200),
]
CALLERS = ("none", "unknown", "revoked", "buyer", "seller", "operator")


def expected_status(scope: str, tenancy: bool, caller: str, whose: str, success: int) -> int:
    if scope == "public":
        return success
    if caller in ("none", "unknown", "revoked"):
        return 401
    if scope not in ("any", caller):
        return 403
    if tenancy and whose == "other":
        return 404
    return success


def test_authorisation_matrix(client: TestClient, engine: Engine) -> None:
    """Every route × every caller × own or another tenant's object: the exact status."""
    tenants = build_tenants(client, engine)
    expected: dict[tuple[str, str, str, str], int] = {}
    actual: dict[tuple[str, str, str, str], int] = {}
    for method, template, scope, tenancy, body, success in ROUTES:
        for caller in CALLERS:
            for whose in (("own", "other") if tenancy else ("own",)):
                objects = (tenants.own if whose == "own" else tenants.other)[caller]
                path = template.format(**objects)
                headers = auth(tenants.tokens[caller]) if caller != "none" else {}
                if template.endswith("buy-now"):
                    headers["Idempotency-Key"] = f"matrix-{next(_n)}"
                payload = body() if callable(body) else body
                if isinstance(payload, str):
                    response = client.request(method, path, content=payload.encode(),
                                              headers={**headers, "Content-Type": "text/csv"})
                else:
                    response = client.request(method, path, json=payload, headers=headers)
                key = (method, template, caller, whose)
                actual[key] = response.status_code
                expected[key] = expected_status(scope, tenancy, caller, whose, success)
                if response.status_code >= 400:
                    assert set(response.json()) >= {"code", "message", "field"}, response.text
    wrong = {k: (actual[k], v) for k, v in expected.items() if actual[k] != v}
    assert wrong == {}, "(actual, expected) per (method, route, caller, whose)"
    assert len(actual) == 6 * (len(ROUTES) + sum(1 for r in ROUTES if r[3]))


def test_another_tenants_order_looks_exactly_like_a_missing_one(client: TestClient,
                                                                engine: Engine) -> None:
    tenants = build_tenants(client, engine)
    other = tenants.other["buyer"]["order"]
    theirs = client.get(f"/api/v1/buyer/orders/{other}", headers=auth(tenants.tokens["buyer"]))
    missing = client.get("/api/v1/buyer/orders/999999", headers=auth(tenants.tokens["buyer"]))
    assert (theirs.status_code, missing.status_code) == (404, 404)
    assert theirs.json() == {"code": "not_found", "message": f"order_id: no order {other}",
                             "field": "order_id"}
    assert missing.json() == {"code": "not_found", "message": "order_id: no order 999999",
                              "field": "order_id"}
    # a seller cannot stock another seller's SKU at their own location, nor the reverse
    seller = auth(tenants.tokens["seller"])
    own_loc = tenants.own["seller"]["location"]
    other_loc = tenants.other["seller"]["location"]
    r1 = client.put(f"/api/v1/seller/locations/{own_loc}/stock/TEA-B", json={"on_hand": 1},
                    headers=seller)
    r2 = client.put(f"/api/v1/seller/locations/{other_loc}/stock/TEA-A", json={"on_hand": 1},
                    headers=seller)
    assert (r1.status_code, r1.json()["field"]) == (404, "sku")
    assert (r2.status_code, r2.json()["field"]) == (404, "location_id")


def test_unauthenticated_answers_name_the_problem(client: TestClient) -> None:
    none = client.get("/api/v1/buyer/orders")
    assert none.status_code == 401
    assert none.headers["www-authenticate"] == "Bearer"
    assert none.json() == {"code": "unauthenticated", "message": "a bearer token is required",
                           "field": "authorization"}
    basic = client.get("/api/v1/buyer/orders", headers={"Authorization": "Basic dXNlcjpwdw=="})
    assert (basic.status_code, basic.json()["code"]) == (401, "unauthenticated")
    junk = client.get("/api/v1/buyer/orders", headers=auth("not-a-token"))
    assert (junk.status_code, junk.json()["message"]) == (401, "the token is not valid")


def test_a_revoked_token_stops_working_at_once(client: TestClient) -> None:
    _, token = register_buyer(client, "Min-jun")
    second = ok(client.post("/api/v1/me/tokens", json={"label": "laptop"},
                            headers=auth(token)), 201)
    assert ok(client.get("/api/v1/me", headers=auth(second["token"])))["role"] == "buyer"
    assert ok(client.delete(f"/api/v1/me/tokens/{second['token_id']}",
                            headers=auth(token))) == {"token_id": second["token_id"],
                                                      "revoked": True}
    gone = client.get("/api/v1/me", headers=auth(second["token"]))
    assert (gone.status_code, gone.json()["message"]) == (401,
                                                          "the token is unknown or revoked")
    assert ok(client.get("/api/v1/me", headers=auth(token)))["role"] == "buyer"


def test_tokens_are_random_256_bit_and_stored_only_as_hashes(client: TestClient,
                                                             engine: Engine) -> None:
    body = ok(client.post("/api/v1/buyers", json={"name": "Min-jun"}), 201)
    token = body["token"]["token"]
    assert token.startswith("sr_") and len(token) >= 3 + 43  # 32 bytes in base64url
    assert body["token"]["prefix"] == token[:11]
    with engine.connect() as conn:
        rows = conn.execute(select(api_tokens)).all()
    assert [r.token_hash for r in rows] == [hashlib.sha256(token.encode()).hexdigest()]
    assert all(token not in (str(v) for v in r) for r in rows)
    other = ok(client.post("/api/v1/buyers", json={"name": "Min-jun"}), 201)
    assert other["token"]["token"] != token


# ------------------------------------------------------------------------------ validation
@pytest.fixture
def shopper(client: TestClient) -> dict[str, str]:
    _, seller = open_shop(client, "Tea House")
    add_location(client, seller, "Seoul WH", "Seoul")
    ok(import_csv(client, seller, CSV_HEADER + "Tea,TEA-1,1000,KRW,100,tea,Seoul WH,3\n"), 201)
    _, buyer = register_buyer(client, "Min-jun")
    return {"buyer": buyer, "seller": seller}


# (method, path, caller, JSON body, status, field named in the answer)
BAD_INPUT: list[tuple[str, str, str | None, Any, int, str]] = [
    ("POST", "/api/v1/buyer/checkouts", "buyer",
     {"lines": [{"sku": "TEA-1", "quantity": 0}]}, 422, "lines[0].quantity"),
    ("POST", "/api/v1/buyer/checkouts", "buyer",
     {"lines": [{"sku": "TEA-1", "quantity": 1001}]}, 422, "lines[0].quantity"),
    ("POST", "/api/v1/buyer/checkouts", "buyer", {"lines": []}, 422, "lines"),
    ("POST", "/api/v1/buyer/checkouts", "buyer",
     {"lines": [{"sku": "TEA 1", "quantity": 1}]}, 422, "lines[0].sku"),
    ("POST", "/api/v1/buyer/checkouts", "buyer",
     {"lines": [{"sku": "TEA-1", "quantity": 1}], "colour": "red"}, 422, "colour"),
    ("POST", "/api/v1/buyer/checkouts", "buyer",
     {"lines": [{"sku": "TEA-1", "quantity": 1}], "service": "teleport"}, 422, "service"),
    ("POST", "/api/v1/buyer/checkouts", "buyer",
     {"lines": [{"sku": "NOPE-1", "quantity": 1}]}, 404, "lines[0].sku"),
    ("POST", "/api/v1/buyer/checkouts", "buyer",
     {"lines": [{"sku": "TEA-1", "quantity": 1}], "address_id": 99}, 404, "address_id"),
    ("POST", "/api/v1/buyer/checkouts", "buyer",
     {"lines": [{"sku": "TEA-1", "quantity": 1}], "service": "pickup"}, 422,
     "pickup_location_id"),
    ("POST", "/api/v1/buyer/checkouts", "buyer",
     {"lines": [{"sku": "TEA-1", "quantity": 1}], "address_id": 2**40}, 422, "address_id"),
    ("POST", "/api/v1/buyer/addresses", "buyer", {"city": "Atlantis"}, 422, "city"),
    ("POST", "/api/v1/buyer/addresses", "buyer", {"latitude": 91, "longitude": 0}, 422,
     "latitude"),
    ("POST", "/api/v1/buyer/addresses", "buyer", {"latitude": 37.5}, 422, "longitude"),
    ("POST", "/api/v1/buyers", None, {"name": ""}, 422, "name"),
    ("POST", "/api/v1/buyers", None, {"name": "A", "address": {"latitude": 100,
                                                              "longitude": 0}},
     422, "address.latitude"),
    ("POST", "/api/v1/buyers", None, {"name": "A\x00B"}, 422, "name"),
    ("POST", "/api/v1/sellers", None, {"name": "Shop", "currency": "XXX"}, 422, "currency"),
    ("POST", "/api/v1/sellers", None, {"name": "Shop", "currency": "KRWW"}, 422, "currency"),
    ("POST", "/api/v1/seller/locations", "seller", {"name": "X", "kind": "castle",
                                                    "city": "Seoul"}, 422, "kind"),
    ("POST", "/api/v1/seller/locations", "seller", {"name": "X"}, 422, "city"),
    ("POST", "/api/v1/seller/products", "seller",
     {"title": "T", "skus": [{"code": "T-1", "price": 0, "weight_g": 1}]}, 422,
     "skus[0].price"),
    ("POST", "/api/v1/seller/products", "seller",
     {"title": "T", "skus": [{"code": "T-1", "price": 5, "weight_g": 1, "currency": "USD"}]},
     422, "currency"),
    ("PUT", "/api/v1/seller/locations/1/stock/TEA-1", "seller", {"on_hand": -1}, 422,
     "on_hand"),
    ("PUT", "/api/v1/seller/locations/1/stock/TEA-1", "seller", {}, 422, "on_hand"),
    ("PUT", "/api/v1/seller/locations/0/stock/TEA-1", "seller", {"on_hand": 1}, 422,
     "location_id"),
    ("GET", "/api/v1/catalog/skus?limit=0", None, None, 422, "limit"),
    ("GET", "/api/v1/catalog/skus?limit=101", None, None, 422, "limit"),
    ("GET", "/api/v1/catalog/skus?offset=-1", None, None, 422, "offset"),
    ("GET", "/api/v1/catalog/skus?min_price=-1", None, None, 422, "min_price"),
    ("GET", "/api/v1/catalog/skus?min_price=10&max_price=5", None, None, 422, "min_price"),
    ("GET", "/api/v1/catalog/skus?sort=cheapest", None, None, 422, "sort"),
    ("GET", "/api/v1/catalog/skus?currency=ZZZ", None, None, 422, "currency"),
    ("GET", "/api/v1/catalog/skus?q=%00", None, None, 422, "q"),
    ("GET", "/api/v1/catalog/skus/NOPE-1", None, None, 404, "sku"),
    ("GET", "/api/v1/buyer/orders/0", "buyer", None, 422, "order_id"),
    ("GET", "/api/v1/buyer/orders/abc", "buyer", None, 422, "order_id"),
    ("GET", "/api/v1/buyer/orders/99999999999", "buyer", None, 422, "order_id"),
    ("GET", "/api/v1/buyer/orders?state=lost", "buyer", None, 422, "state"),
    ("GET", "/api/v1/seller/orders?limit=x", "seller", None, 422, "limit"),
]


def test_bad_input_is_a_422_or_404_naming_the_field(client: TestClient,
                                                    shopper: dict[str, str]) -> None:
    """Each bad request gets its exact status, stable code and the field at fault."""
    expected: dict[int, tuple[int, str, str]] = {}
    actual: dict[int, tuple[int, str, str]] = {}
    for i, (method, path, who, body, status, field_name) in enumerate(BAD_INPUT):
        headers = auth(shopper[who]) if who else {}
        response = client.request(method, path, json=body, headers=headers)
        answer = response.json()
        assert answer["message"], response.text
        actual[i] = (response.status_code, answer.get("code"), answer.get("field"))
        expected[i] = (status, "validation_error" if status == 422 else "not_found",
                       field_name)
    wrong = {BAD_INPUT[i][:2] + (BAD_INPUT[i][3],): (actual[i], v)
             for i, v in expected.items() if actual[i] != v}
    assert wrong == {}, "(actual, expected) per request"


def test_a_body_that_is_not_json_is_a_422_on_body(client: TestClient,
                                                  shopper: dict[str, str]) -> None:
    response = client.post("/api/v1/buyer/checkouts", content=b"{lines: nope",
                           headers={**auth(shopper["buyer"]), "Content-Type": "application/json"})
    assert response.status_code == 422
    assert response.json()["field"] == "body"
    assert response.json()["message"] == "body: the body is not valid JSON"


def test_out_of_stock_is_a_409_with_its_code(client: TestClient,
                                             shopper: dict[str, str]) -> None:
    response = client.post("/api/v1/buyer/checkouts", headers=auth(shopper["buyer"]),
                           json={"lines": [{"sku": "TEA-1", "quantity": 4}]})
    assert response.status_code == 409
    assert response.json() == {"code": "out_of_stock", "field": "sku",
                               "message": "out of stock: SKU TEA-1 has 3 available, "
                                          "4 requested"}
    # nothing is left behind: all three units can still be bought
    place(client, shopper["buyer"], "TEA-1", 3)


def test_csv_import_errors_are_a_422_listing_every_bad_line(client: TestClient,
                                                            shopper: dict[str, str]) -> None:
    text = (CSV_HEADER + "Good,GOOD-1,100,KRW,10,tea,,\n"
            + "Bad price,BAD-1,free,KRW,10,tea,,\n"
            + "Bad weight,BAD-2,100,KRW,-5,tea,,\n"
            + "Taken,TEA-1,100,KRW,10,tea,,\n")
    response = import_csv(client, shopper["seller"], text)
    assert response.status_code == 422
    body = response.json()
    assert (body["code"], body["field"], body["message"]) == (
        "invalid_catalog", "price", "3 bad row(s), nothing imported")
    assert [(r["line"], r["field"]) for r in body["rows"]] == [(3, "price"), (4, "weight_g"),
                                                               (5, "sku")]
    # a file whose rows parse but clash with the market: still every line, nothing written
    clash = import_csv(client, shopper["seller"], CSV_HEADER + "Taken,TEA-1,100,KRW,10,,,\n"
                       + "Nowhere,NEW-1,100,KRW,10,,Mars WH,1\n")
    assert clash.status_code == 422
    assert [(r["line"], r["field"]) for r in clash.json()["rows"]] == [(2, "sku"),
                                                                       (3, "location")]
    skus = ok(client.get("/api/v1/catalog/skus"))
    assert [i["sku"] for i in skus["items"]] == ["TEA-1"]
    bad_bytes = client.post("/api/v1/seller/catalog/imports", content=b"\xff\xfe\x00",
                            headers={**auth(shopper["seller"]), "Content-Type": "text/csv"})
    assert (bad_bytes.status_code, bad_bytes.json()["field"]) == (422, "body")


def test_unknown_routes_and_methods_answer_json(client: TestClient) -> None:
    missing = client.get("/api/v1/nowhere")
    assert (missing.status_code, missing.json()["code"]) == (404, "not_found")
    wrong = client.delete("/api/v1/catalog/skus")
    assert (wrong.status_code, wrong.json()["code"]) == (405, "method_not_allowed")


def test_a_body_larger_than_the_api_accepts_is_a_413(client: TestClient,
                                                    shopper: dict[str, str]) -> None:
    response = client.post("/api/v1/seller/catalog/imports", content=b"x" * (8 * 2**20 + 1),
                           headers={**auth(shopper["seller"]), "Content-Type": "text/csv"})
    assert (response.status_code, response.json()["code"]) == (413, "too_large")


def test_a_genuine_bug_is_a_500_without_details(engine: Engine) -> None:
    app = create_app(engine)

    @app.get("/api/v1/boom")
    def boom() -> None:
        raise RuntimeError("secret internals")

    with TestClient(app, raise_server_exceptions=False) as c:
        response = c.get("/api/v1/boom")
    assert response.status_code == 500
    assert response.json() == {"code": "internal_error", "message": "internal error",
                               "field": None}
    assert "secret" not in response.text


# -------------------------------------------------------------------------------- payments
def test_buyer_saves_a_card_and_pays_a_checkout_into_escrow(client: TestClient,
                                                            shopper: dict[str, str]) -> None:
    buyer = auth(shopper["buyer"])
    card = ok(client.post("/api/v1/buyer/payment-methods", json={"card": APPROVE},
                          headers=buyer), 201)
    assert card == {"id": 1, "last4": "4242", "currency": "KRW", "is_default": True}
    assert ok(client.get("/api/v1/buyer/payment-methods", headers=buyer)) == [card]
    checkout_id = checkout_of(client, shopper["buyer"], "TEA-1", 2)
    paid = ok(client.post(f"/api/v1/buyer/checkouts/{checkout_id}/payment", headers=buyer,
                          json={"payment_method_id": card["id"]}), 201)
    assert (paid["checkout_id"], paid["amount"], paid["currency"], paid["status"]) == (
        checkout_id, 2000, "KRW", "captured")
    order = ok(client.get(f"/api/v1/buyer/orders/{paid['order_ids'][0]}", headers=buyer))
    assert order["state"] == "paid"
    # paying again answers the first payment and charges nothing more
    again = ok(client.post(f"/api/v1/buyer/checkouts/{checkout_id}/payment", headers=buyer),
               201)
    assert again == paid


def test_a_declined_card_is_a_402_and_releases_the_stock(client: TestClient,
                                                         shopper: dict[str, str]) -> None:
    buyer = auth(shopper["buyer"])
    ok(client.post("/api/v1/buyer/payment-methods", json={"card": DECLINE}, headers=buyer), 201)
    checkout_id = checkout_of(client, shopper["buyer"], "TEA-1", 3)
    declined = client.post(f"/api/v1/buyer/checkouts/{checkout_id}/payment", headers=buyer)
    assert (declined.status_code, declined.json()["code"], declined.json()["field"]) == (
        402, "payment_declined", "payment_method")
    orders = ok(client.get("/api/v1/buyer/orders", headers=buyer))
    assert [o["state"] for o in orders["items"]] == ["cancelled"]
    stock = ok(client.get("/api/v1/seller/stock", headers=auth(shopper["seller"])))
    assert [(s["sku"], s["reserved"], s["available"]) for s in stock] == [("TEA-1", 0, 3)]


def test_paying_needs_a_card_and_ones_own_checkout_and_card(client: TestClient,
                                                            shopper: dict[str, str]) -> None:
    buyer = auth(shopper["buyer"])
    checkout_id = checkout_of(client, shopper["buyer"], "TEA-1")
    no_card = client.post(f"/api/v1/buyer/checkouts/{checkout_id}/payment", headers=buyer)
    assert (no_card.status_code, no_card.json()["code"]) == (422, "no_payment_method")
    _, stranger = register_buyer(client, "Stranger")
    theirs = ok(client.post("/api/v1/buyer/payment-methods", json={"card": APPROVE},
                            headers=auth(stranger)), 201)["id"]
    foreign_card = client.post(f"/api/v1/buyer/checkouts/{checkout_id}/payment",
                               headers=buyer, json={"payment_method_id": theirs})
    assert (foreign_card.status_code, foreign_card.json()) == (404, {
        "code": "not_found", "field": "payment_method_id",
        "message": f"payment_method_id: no payment method {theirs}"})
    foreign_checkout = client.post(f"/api/v1/buyer/checkouts/{checkout_id}/payment",
                                   headers=auth(stranger))
    assert (foreign_checkout.status_code, foreign_checkout.json()["field"]) == (404,
                                                                                "checkout_id")
    bad_card = client.post("/api/v1/buyer/payment-methods", json={"card": "4242424242424241"},
                           headers=buyer)
    assert (bad_card.status_code, bad_card.json()["field"]) == (422, "card")


def test_buy_now_happens_once_per_idempotency_key(client: TestClient,
                                                  shopper: dict[str, str]) -> None:
    buyer = auth(shopper["buyer"])
    no_card = client.post("/api/v1/buyer/buy-now", json={"sku": "TEA-1"},
                          headers={**buyer, "Idempotency-Key": "k0"})
    assert (no_card.status_code, no_card.json()["code"]) == (422, "no_payment_method")
    ok(client.post("/api/v1/buyer/payment-methods", json={"card": APPROVE}, headers=buyer), 201)
    first = ok(client.post("/api/v1/buyer/buy-now", json={"sku": "TEA-1", "quantity": 2},
                           headers={**buyer, "Idempotency-Key": "k1"}), 201)
    assert (first["state"], first["total"], first["replayed"]) == ("paid", 2000, False)
    again = ok(client.post("/api/v1/buyer/buy-now", json={"sku": "TEA-1", "quantity": 2},
                           headers={**buyer, "Idempotency-Key": "k1"}), 201)
    assert {**again, "replayed": False} == first and again["replayed"] is True
    other_body = client.post("/api/v1/buyer/buy-now", json={"sku": "TEA-1", "quantity": 1},
                             headers={**buyer, "Idempotency-Key": "k1"})
    assert (other_body.status_code, other_body.json()["code"]) == (409,
                                                                   "idempotency_key_reused")
    missing = client.post("/api/v1/buyer/buy-now", json={"sku": "TEA-1"}, headers=buyer)
    assert (missing.status_code, missing.json()["field"]) == (422, "Idempotency-Key")
    sold_out = client.post("/api/v1/buyer/buy-now", json={"sku": "TEA-1", "quantity": 2},
                           headers={**buyer, "Idempotency-Key": "k2"})
    assert (sold_out.status_code, sold_out.json()["code"]) == (409, "out_of_stock")
    orders = ok(client.get("/api/v1/buyer/orders", headers=buyer))
    assert [o["state"] for o in orders["items"]] == ["paid"]


# --------------------------------------------------------------------- catalogue, metrics
def test_catalogue_search_filters_sorts_and_pages(client: TestClient) -> None:
    seller_a, token_a = open_shop(client, "Tea House")
    seller_b, token_b = open_shop(client, "Kitchen Co")
    add_location(client, token_a, "A", "Seoul")
    ok(import_csv(client, token_a, CSV_HEADER + "Green tea,T-GREEN,3000,KRW,10,tea,A,1\n"
                  + "Black tea,T-BLACK,2000,KRW,10,tea,A,2\n"
                  + "Tea_cup 100%,CUP-1,5000,KRW,10,kitchen,,\n"), 201)
    ok(import_csv(client, token_b, CSV_HEADER + "Teapot,POT-1,9000,KRW,10,kitchen,,\n"), 201)

    def skus(**params: Any) -> list[str]:
        return [i["sku"] for i in ok(client.get("/api/v1/catalog/skus", params=params))["items"]]

    assert skus(sort="price_asc") == ["T-BLACK", "T-GREEN", "CUP-1", "POT-1"]
    assert skus(sort="price_desc", limit=2) == ["POT-1", "CUP-1"]
    assert skus(sort="title") == ["T-BLACK", "T-GREEN", "CUP-1", "POT-1"]
    assert skus() == ["POT-1", "CUP-1", "T-BLACK", "T-GREEN"]  # newest first
    assert skus(category="tea", sort="price_asc") == ["T-BLACK", "T-GREEN"]
    assert skus(min_price=2500, max_price=5000, sort="price_asc") == ["T-GREEN", "CUP-1"]
    assert skus(seller_id=seller_b) == ["POT-1"]
    assert skus(q="TEAPOT") == ["POT-1"]
    assert skus(q="100%") == ["CUP-1"]  # LIKE wildcards are literal
    assert skus(q="_") == ["CUP-1"]
    assert skus(currency="usd") == []
    first = ok(client.get("/api/v1/catalog/skus", params={"sort": "price_asc", "limit": 3}))
    assert (first["total"], first["next_offset"]) == (4, 3)
    last = ok(client.get("/api/v1/catalog/skus", params={"sort": "price_asc", "limit": 3,
                                                          "offset": first["next_offset"]}))
    assert ([i["sku"] for i in last["items"]], last["next_offset"]) == (["POT-1"], None)
    one = ok(client.get("/api/v1/catalog/skus/T-BLACK"))
    assert (one["available"], one["seller_id"], one["category"]) == (2, seller_a, "tea")


def test_operator_sees_every_order_and_the_summary(client: TestClient, engine: Engine) -> None:
    tenants = build_tenants(client, engine)
    ops = auth(tenants.tokens["operator"])
    orders = ok(client.get("/api/v1/operator/orders", headers=ops))
    assert (orders["total"], [o["id"] for o in orders["items"]]) == (4, [4, 3, 2, 1])
    by_seller = ok(client.get("/api/v1/operator/orders?seller_id=2", headers=ops))
    assert [o["id"] for o in by_seller["items"]] == [4, 2]
    summary = ok(client.get("/api/v1/operator/summary", headers=ops))
    assert summary["counts"] == {"buyers": 3, "sellers": 2, "products": 2, "skus": 2,
                                 "locations": 2, "orders": 4}
    assert summary["orders_by_state"] == {"reserved": 4}
    assert summary["accounts_by_role"] == {"buyer": 3, "operator": 1, "seller": 2}


def test_metrics_count_orders_checkout_latency_and_errors(client: TestClient,
                                                          shopper: dict[str, str]) -> None:
    place(client, shopper["buyer"], "TEA-1", 1)
    client.post("/api/v1/buyer/checkouts", headers=auth(shopper["buyer"]),
                json={"lines": [{"sku": "TEA-1", "quantity": 9}]})
    client.get("/api/v1/buyer/orders")
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    lines = set(response.text.splitlines())
    assert "silkroute_orders_created_total 1.0" in lines
    assert "silkroute_checkout_seconds_count 2.0" in lines
    assert 'silkroute_api_errors_total{code="out_of_stock",status="409"} 1.0' in lines
    assert 'silkroute_api_errors_total{code="unauthenticated",status="401"} 1.0' in lines


def test_openapi_document_and_docs_are_served(client: TestClient) -> None:
    spec = ok(client.get("/api/v1/openapi.json"))
    assert spec["info"]["title"] == "silkroute"
    assert "/api/v1/buyer/checkouts" in spec["paths"]
    assert spec["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    docs = client.get("/api/v1/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()


# ------------------------------------------------------------------------- no 5xx, ever
GARBAGE_BODIES: list[bytes | None] = [
    None, b"", b"null", b"[]", b'"x"', b"{}", b"{bad", b"\xff\xfe", b'{"name": null}',
    b'{"lines": [{"sku": "TEA-1", "quantity": 1e400}]}',
    b'{"lines": [{"sku": "TEA-1", "quantity": 99999999999999999999999}]}',
    b'{"name": "' + b"x" * 5000 + b'", "city": "\\u0000", "latitude": NaN}',
    b'{"title": "t", "skus": [{"code": "A", "price": -1, "weight_g": 1e9}]}',
]
GARBAGE_IDS = ["0", "abc", "99999999999999999999", "%00", "TEA-1", "1"]


def test_nothing_a_client_sends_produces_a_5xx(client: TestClient,
                                               shopper: dict[str, str],
                                               engine: Engine) -> None:
    """Every route of the OpenAPI document × garbage ids and bodies × each role: < 500.

    A cheap stand-in until schemathesis runs over the same document.
    """
    operator = create_account(UnitOfWork(engine), "operator", "Ops", with_token=True)
    assert operator.token is not None
    callers = [auth(shopper["buyer"]), auth(shopper["seller"]), auth(operator.token.token)]
    spec = ok(client.get("/api/v1/openapi.json"))
    seen: dict[int, int] = {}
    for template, methods in spec["paths"].items():
        for method in methods:
            for i, garbage in enumerate(GARBAGE_IDS):
                path = template
                for name in ("order_id", "checkout_id", "location_id", "token_id", "sku"):
                    path = path.replace("{" + name + "}", garbage)
                body = GARBAGE_BODIES[i % len(GARBAGE_BODIES)] if method != "get" else None
                for headers in callers:
                    extra = {"Content-Type": "application/json", "Idempotency-Key": "\x7f"}
                    response = client.request(method.upper(), path + "?limit=-5&q=%00",
                                              content=body, headers={**headers, **extra})
                    seen[response.status_code] = seen.get(response.status_code, 0) + 1
                    assert response.status_code < 500, (method, path, body, response.text)
                    if response.status_code >= 400:
                        assert "code" in response.json(), response.text
    assert set(seen) <= {200, 201, 401, 402, 403, 404, 405, 409, 422}
