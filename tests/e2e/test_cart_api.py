"""The buyer's cart and membership over the HTTP API, in-process, on both backends."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, update

from silkroute.api.app import create_app
from silkroute.domain.ledger import AccountRef
from silkroute.domain.membership import period_key
from silkroute.services import ledger_check
from silkroute.services.accounts import create_account, revoke_token
from silkroute.store import tables as t
from silkroute.store.uow import UnitOfWork
from tests.e2e.test_api import (
    APPROVE,
    CSV_HEADER,
    DECLINE,
    add_location,
    auth,
    import_csv,
    ok,
    open_shop,
    register_buyer,
)

CART = "/api/v1/buyer/cart"
MEMBERSHIP = "/api/v1/buyer/membership"


@pytest.fixture
def client(engine: Engine) -> Iterator[TestClient]:
    with TestClient(create_app(engine)) as c:
        yield c


@dataclass
class Market:
    seller_a: int  # KRW: TEA-1 ₩12,000 × 5, MUG-1 ₩8,000 × 2 in Seoul
    seller_b: int  # USD: CUP-1 $3.50 × 10 in Busan
    seller: str
    buyer_id: int
    buyer: str


@pytest.fixture
def market(client: TestClient) -> Market:
    seller_a, seller = open_shop(client, "Tea House")
    add_location(client, seller, "Seoul WH", "Seoul")
    ok(import_csv(client, seller, CSV_HEADER + "Green tea,TEA-1,12000,KRW,300,tea,Seoul WH,5\n"
                  + "Mug,MUG-1,8000,KRW,400,kitchen,Seoul WH,2\n"), 201)
    b = ok(client.post("/api/v1/sellers", json={"name": "Cup Co", "currency": "USD"}), 201)
    add_location(client, b["token"]["token"], "Busan WH", "Busan")
    ok(import_csv(client, b["token"]["token"], CSV_HEADER
                  + "Paper cup,CUP-1,3.50,USD,20,kitchen,Busan WH,10\n"), 201)
    buyer_id, buyer = register_buyer(client, "Min-jun")
    return Market(seller_a, b["seller_id"], seller, buyer_id, buyer)


def put(client: TestClient, token: str, sku: str, quantity: Any) -> Any:
    return client.put(f"{CART}/lines/{sku}", json={"quantity": quantity}, headers=auth(token))


def line(sku: str, title: str, seller_id: int, quantity: int, price: int, currency: str,
         available: int) -> dict[str, Any]:
    return {"sku": sku, "title": title, "seller_id": seller_id, "quantity": quantity,
            "unit_price": price, "currency": currency, "line_total": price * quantity,
            "available": available, "on_sale": True}


def error(response: Any) -> tuple[int, str, str | None]:
    body = response.json()
    return response.status_code, body["code"], body["field"]


# ----------------------------------------------------------------------------- lines
def test_lines_are_added_updated_removed_and_the_view_totals_them(client: TestClient,
                                                                   market: Market) -> None:
    m = market
    assert ok(client.get(CART, headers=auth(m.buyer))) == {
        "buyer_id": m.buyer_id, "lines": [], "sellers": [], "totals": []}

    ok(put(client, m.buyer, "TEA-1", 2))
    ok(put(client, m.buyer, "MUG-1", 1))
    ok(put(client, m.buyer, "CUP-1", 3))
    view = ok(put(client, m.buyer, "TEA-1", 3))  # an update keeps the line's place

    tea = line("TEA-1", "Green tea", m.seller_a, 3, 12000, "KRW", 5)
    mug = line("MUG-1", "Mug", m.seller_a, 1, 8000, "KRW", 2)
    cup = line("CUP-1", "Paper cup", m.seller_b, 3, 350, "USD", 10)
    assert view == {
        "buyer_id": m.buyer_id, "lines": [tea, mug, cup],
        "sellers": [{"seller_id": m.seller_a, "currency": "KRW", "items_amount": 44000,
                     "units": 4},
                    {"seller_id": m.seller_b, "currency": "USD", "items_amount": 1050,
                     "units": 3}],
        "totals": [{"currency": "KRW", "amount": 44000}, {"currency": "USD", "amount": 1050}]}
    assert ok(client.get(CART, headers=auth(m.buyer))) == view

    # more than is in stock is allowed in the cart: the view shows what is available
    assert ok(put(client, m.buyer, "MUG-1", 7))["lines"][1] == line(
        "MUG-1", "Mug", m.seller_a, 7, 8000, "KRW", 2)

    # DELETE removes a line; PUT 0 removes one too; removing again changes nothing
    after_delete = ok(client.delete(f"{CART}/lines/MUG-1", headers=auth(m.buyer)))
    assert after_delete["lines"] == [tea, cup]
    assert after_delete["totals"] == [{"currency": "KRW", "amount": 36000},
                                      {"currency": "USD", "amount": 1050}]
    assert ok(put(client, m.buyer, "CUP-1", 0))["lines"] == [tea]
    assert ok(client.delete(f"{CART}/lines/MUG-1", headers=auth(m.buyer)))["lines"] == [tea]
    assert ok(put(client, m.buyer, "CUP-1", 0))["sellers"] == [
        {"seller_id": m.seller_a, "currency": "KRW", "items_amount": 36000, "units": 3}]


def test_availability_in_the_view_is_the_stock_available_now(client: TestClient,
                                                            market: Market) -> None:
    m = market
    ok(put(client, m.buyer, "TEA-1", 1))
    _, other = register_buyer(client, "Ji-woo")
    ok(client.post("/api/v1/buyer/checkouts", json={"lines": [{"sku": "TEA-1", "quantity": 4}]},
                   headers=auth(other)), 201)
    assert ok(client.get(CART, headers=auth(m.buyer)))["lines"][0]["available"] == 1


# -------------------------------------------------------------------------- checkout
def test_checkout_places_exactly_the_carts_lines_and_empties_it(client: TestClient,
                                                                market: Market) -> None:
    m = market
    ok(put(client, m.buyer, "TEA-1", 2))
    ok(put(client, m.buyer, "CUP-1", 3))
    ok(put(client, m.buyer, "MUG-1", 1))

    placed = ok(client.post(f"{CART}/checkout", headers=auth(m.buyer)), 201)

    assert set(placed) == {"checkout_id", "orders"}
    assert [(o["seller_id"], o["state"], o["currency"], o["items_amount"])
            for o in placed["orders"]] == [(m.seller_a, "reserved", "KRW", 32000),
                                           (m.seller_b, "reserved", "USD", 1050)]
    lines = {o["seller_id"]: ok(client.get(f"/api/v1/buyer/orders/{o['order_id']}",
                                           headers=auth(m.buyer)))["lines"]
             for o in placed["orders"]}
    assert lines == {
        m.seller_a: [{"sku": "TEA-1", "quantity": 2, "unit_price": 12000},
                     {"sku": "MUG-1", "quantity": 1, "unit_price": 8000}],
        m.seller_b: [{"sku": "CUP-1", "quantity": 3, "unit_price": 350}]}
    mine = ok(client.get("/api/v1/buyer/orders", headers=auth(m.buyer)))
    assert mine["total"] == 2
    assert {o["checkout_id"] for o in mine["items"]} == {placed["checkout_id"]}
    stock = ok(client.get("/api/v1/seller/stock", headers=auth(m.seller)))
    assert {(s["sku"], s["reserved"]) for s in stock} == {("TEA-1", 2), ("MUG-1", 1)}
    assert ok(client.get(CART, headers=auth(m.buyer))) == {
        "buyer_id": m.buyer_id, "lines": [], "sellers": [], "totals": []}

    # and the orders are paid like any checkout's
    ok(client.post("/api/v1/buyer/payment-methods", json={"card": APPROVE},
                   headers=auth(m.buyer)), 201)
    ok(put(client, m.buyer, "TEA-1", 1))
    again = ok(client.post(f"{CART}/checkout", headers=auth(m.buyer),
                           json={"service": "standard"}), 201)
    paid = ok(client.post(f"/api/v1/buyer/checkouts/{again['checkout_id']}/payment",
                          headers=auth(m.buyer)), 201)
    assert (paid["amount"], paid["currency"], paid["status"]) == (12000, "KRW", "captured")


def test_an_empty_cart_cannot_be_checked_out(client: TestClient, market: Market) -> None:
    r = client.post(f"{CART}/checkout", headers=auth(market.buyer))
    assert (r.status_code, r.json()) == (422, {"code": "cart_empty", "field": "cart",
                                               "message": "cart: the cart is empty"})


def test_a_failed_checkout_keeps_the_cart_and_reserves_nothing(client: TestClient,
                                                               market: Market) -> None:
    m = market
    ok(put(client, m.buyer, "MUG-1", 1))
    before = ok(put(client, m.buyer, "TEA-1", 6))  # 5 in stock

    short = client.post(f"{CART}/checkout", headers=auth(m.buyer))
    assert error(short) == (409, "out_of_stock", "sku")
    no_address = client.post(f"{CART}/checkout", headers=auth(m.buyer), json={"address_id": 99})
    assert error(no_address) == (404, "not_found", "address_id")
    no_point = client.post(f"{CART}/checkout", headers=auth(m.buyer), json={"service": "pickup"})
    assert error(no_point) == (422, "validation_error", "pickup_location_id")

    assert ok(client.get(CART, headers=auth(m.buyer))) == before
    assert ok(client.get("/api/v1/buyer/orders", headers=auth(m.buyer)))["total"] == 0
    stock = ok(client.get("/api/v1/seller/stock", headers=auth(m.seller)))
    assert {(s["sku"], s["reserved"]) for s in stock} == {("TEA-1", 0), ("MUG-1", 0)}

    # with the quantity fixed the same cart checks out
    ok(put(client, m.buyer, "TEA-1", 5))
    placed = ok(client.post(f"{CART}/checkout", headers=auth(m.buyer)), 201)
    assert [o["items_amount"] for o in placed["orders"]] == [5 * 12000 + 8000]


def test_a_sku_taken_off_sale_fails_the_checkout_and_stays_in_the_cart(
        client: TestClient, market: Market, engine: Engine) -> None:
    m = market
    ok(put(client, m.buyer, "TEA-1", 1))
    with engine.begin() as conn:
        conn.execute(update(t.skus).where(t.skus.c.code == "TEA-1").values(on_sale=False))
    view = ok(client.get(CART, headers=auth(m.buyer)))
    assert [(ln["sku"], ln["on_sale"]) for ln in view["lines"]] == [("TEA-1", False)]
    r = client.post(f"{CART}/checkout", headers=auth(m.buyer))
    assert (r.status_code, r.json()["field"]) == (422, "lines[0].sku")
    refused = put(client, m.buyer, "TEA-1", 2)
    assert refused.json() == {"code": "not_on_sale", "field": "sku",
                              "message": "sku: TEA-1 is not on sale"}
    assert refused.status_code == 422
    assert ok(client.get(CART, headers=auth(m.buyer))) == view  # unchanged
    assert ok(put(client, m.buyer, "TEA-1", 0))["lines"] == []  # removing it is allowed


# ------------------------------------------------------------------------ bad input
@pytest.mark.parametrize(("method", "path", "body", "status", "code", "field"), [
    ("PUT", "/lines/NOPE-1", {"quantity": 1}, 404, "not_found", "sku"),
    ("DELETE", "/lines/NOPE-1", None, 404, "not_found", "sku"),
    ("PUT", "/lines/TEA-1", {"quantity": -1}, 422, "validation_error", "quantity"),
    ("PUT", "/lines/TEA-1", {"quantity": 1001}, 422, "validation_error", "quantity"),
    ("PUT", "/lines/TEA-1", {"quantity": 1.5}, 422, "validation_error", "quantity"),
    ("PUT", "/lines/TEA-1", {"quantity": "two"}, 422, "validation_error", "quantity"),
    ("PUT", "/lines/TEA-1", {}, 422, "validation_error", "quantity"),
    ("PUT", "/lines/TEA-1", {"quantity": 1, "colour": "red"}, 422, "validation_error",
     "colour"),
    ("PUT", "/lines/-TEA", {"quantity": 1}, 422, "validation_error", "sku"),
    ("POST", "/checkout", {"service": "teleport"}, 422, "validation_error", "service"),
    ("POST", "/checkout", {"address_id": 0}, 422, "validation_error", "address_id"),
])
def test_bad_input_answers_its_code_and_field(client: TestClient, market: Market, method: str,
                                             path: str, body: Any, status: int, code: str,
                                             field: str) -> None:
    r = client.request(method, CART + path, json=body, headers=auth(market.buyer))
    assert error(r) == (status, code, field), r.text


def test_unknown_sku_answers_exactly(client: TestClient, market: Market) -> None:
    r = put(client, market.buyer, "NOPE-1", 1)
    assert (r.status_code, r.json()) == (404, {"code": "not_found", "field": "sku",
                                               "message": "sku: no SKU 'NOPE-1'"})


# ---------------------------------------------------------------------------- tenancy
def test_each_buyer_has_a_cart_of_their_own(client: TestClient, market: Market) -> None:
    m = market
    other_id, other = register_buyer(client, "Ji-woo", "Busan")
    ok(put(client, m.buyer, "TEA-1", 2))
    assert ok(client.get(CART, headers=auth(other))) == {
        "buyer_id": other_id, "lines": [], "sellers": [], "totals": []}
    ok(put(client, other, "TEA-1", 4))
    ok(put(client, other, "MUG-1", 1))
    assert ok(client.delete(f"{CART}/lines/TEA-1", headers=auth(other)))["lines"] == [
        line("MUG-1", "Mug", m.seller_a, 1, 8000, "KRW", 2)]
    mine = ok(client.get(CART, headers=auth(m.buyer)))
    assert mine["lines"] == [line("TEA-1", "Green tea", m.seller_a, 2, 12000, "KRW", 5)]

    # the other buyer's checkout takes only their own lines
    theirs = ok(client.post(f"{CART}/checkout", headers=auth(other)), 201)
    assert [o["items_amount"] for o in theirs["orders"]] == [8000]
    assert ok(client.get(CART, headers=auth(m.buyer))) == mine
    assert ok(client.get("/api/v1/buyer/orders", headers=auth(m.buyer)))["total"] == 0


# ------------------------------------------------------------------------------ roles
ROUTES = [("GET", CART, None), ("PUT", f"{CART}/lines/TEA-1", {"quantity": 1}),
          ("DELETE", f"{CART}/lines/TEA-1", None), ("POST", f"{CART}/checkout", None),
          ("GET", MEMBERSHIP, None), ("POST", MEMBERSHIP, None), ("DELETE", MEMBERSHIP, None)]


def test_only_buyers_reach_the_cart_and_membership(client: TestClient, market: Market,
                                                   engine: Engine) -> None:
    operator = create_account(UnitOfWork(engine), "operator", "Ops", with_token=True)
    assert operator.token is not None
    ok(client.post("/api/v1/operator/carriers", json={"name": "Fast Parcel", "id": 1},
                   headers=auth(operator.token.token)), 201)
    carrier = ok(client.post("/api/v1/operator/carriers/1/accounts",
                             headers=auth(operator.token.token)), 201)["token"]
    revoked = create_account(UnitOfWork(engine), "buyer", "Gone", with_token=True)
    assert revoked.token is not None
    revoke_token(UnitOfWork(engine), revoked.token.token_id)
    callers = {"none": {}, "unknown": auth("sr_" + "x" * 43),
               "revoked": auth(revoked.token.token), "seller": auth(market.seller),
               "carrier": auth(carrier), "operator": auth(operator.token.token)}
    expected = {"none": (401, "unauthenticated"), "unknown": (401, "unauthenticated"),
                "revoked": (401, "unauthenticated"), "seller": (403, "forbidden"),
                "carrier": (403, "forbidden"), "operator": (403, "forbidden")}
    actual = {}
    for method, path, body in ROUTES:
        for caller, headers in callers.items():
            r = client.request(method, path, json=body, headers=headers)
            actual[(method, path, caller)] = (r.status_code, r.json()["code"])
    assert actual == {(method, path, caller): expected[caller]
                      for method, path, _ in ROUTES for caller in callers}
    assert ok(client.get(CART, headers=auth(market.buyer)))["lines"] == []  # nothing changed


# ------------------------------------------------------------------------ concurrency
def _at_once(n: int, call: Any) -> list[Any]:
    gate = threading.Barrier(n)
    results: list[Any] = [None] * n

    def run(i: int) -> None:
        gate.wait()
        results[i] = call(i)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=120)
    return results


def test_eight_concurrent_puts_of_one_line_leave_one_line(client: TestClient,
                                                          market: Market) -> None:
    responses = _at_once(8, lambda i: put(client, market.buyer, "TEA-1", i + 1))
    assert [r.status_code for r in responses] == [200] * 8, [r.text for r in responses]
    view = ok(client.get(CART, headers=auth(market.buyer)))
    assert [ln["sku"] for ln in view["lines"]] == ["TEA-1"]
    assert view["lines"][0]["quantity"] in range(1, 9)
    # each answer shows one TEA-1 line too
    assert all([ln["sku"] for ln in r.json()["lines"]] == ["TEA-1"] for r in responses)


def test_two_concurrent_checkouts_of_one_cart_place_it_once(client: TestClient,
                                                            market: Market) -> None:
    m = market
    ok(put(client, m.buyer, "TEA-1", 2))
    ok(put(client, m.buyer, "MUG-1", 1))
    responses = _at_once(2, lambda i: client.post(f"{CART}/checkout", headers=auth(m.buyer)))
    statuses = sorted(r.status_code for r in responses)
    assert statuses in ([201, 409], [201, 422]), [r.text for r in responses]
    loser = next(r for r in responses if r.status_code != 201)
    assert loser.json()["code"] in ("cart_changed", "cart_empty")
    mine = ok(client.get("/api/v1/buyer/orders", headers=auth(m.buyer)))
    assert [o["items_amount"] for o in mine["items"]] == [32000]
    stock = ok(client.get("/api/v1/seller/stock", headers=auth(m.seller)))
    assert {(s["sku"], s["reserved"]) for s in stock} == {("TEA-1", 2), ("MUG-1", 1)}
    assert ok(client.get(CART, headers=auth(m.buyer)))["lines"] == []


# ------------------------------------------------------------------------- membership
def _balances(engine: Engine, buyer_id: int, currency: str) -> tuple[int, int]:
    with UnitOfWork(engine) as uow:
        return (uow.repos.ledger.balance(AccountRef.membership_revenue(currency).code),
                uow.repos.ledger.balance(AccountRef.buyer_funding(buyer_id, currency).code))


def test_membership_subscribe_status_and_lapse(client: TestClient, market: Market,
                                               engine: Engine) -> None:
    m = market
    month = period_key(datetime.now(UTC).date())
    assert ok(client.get(MEMBERSHIP, headers=auth(m.buyer))) == {
        "buyer_id": m.buyer_id, "status": "none", "member": False, "period": month,
        "paid_through": None, "auto_renew": False, "monthly_fee": None, "currency": None,
        "charged": 0}

    # without a card: refused like the CLI refuses it, nothing recorded
    no_card = client.post(MEMBERSHIP, headers=auth(m.buyer))
    assert error(no_card) == (422, "no_payment_method", "payment_method")
    assert ok(client.get(MEMBERSHIP, headers=auth(m.buyer)))["status"] == "none"

    ok(client.post("/api/v1/buyer/payment-methods", json={"card": APPROVE},
                   headers=auth(m.buyer)), 201)
    joined = ok(client.post(MEMBERSHIP, headers=auth(m.buyer)))
    active = {"buyer_id": m.buyer_id, "status": "active", "member": True, "period": month,
              "paid_through": month, "auto_renew": True, "monthly_fee": 4900,
              "currency": "KRW", "charged": 4900}
    assert joined == active
    assert ok(client.get(MEMBERSHIP, headers=auth(m.buyer))) == {**active, "charged": 0}
    assert _balances(engine, m.buyer_id, "KRW") == (4900, -4900)
    assert ledger_check.check(UnitOfWork(engine)).ok

    again = client.post(MEMBERSHIP, headers=auth(m.buyer))
    assert error(again) == (409, "already_member", "buyer_id")
    assert again.json()["message"] == (f"buyer {m.buyer_id} is already a member "
                                       f"(paid through {month})")

    # lapsing keeps the paid month's benefits and charges nothing; lapsing again is the same
    lapsed = {**active, "auto_renew": False, "charged": 0}
    assert ok(client.delete(MEMBERSHIP, headers=auth(m.buyer))) == lapsed
    assert ok(client.delete(MEMBERSHIP, headers=auth(m.buyer))) == lapsed
    assert ok(client.get(MEMBERSHIP, headers=auth(m.buyer))) == lapsed

    # rejoining within the paid month renews without paying the month twice
    assert ok(client.post(MEMBERSHIP, headers=auth(m.buyer))) == {**active, "charged": 0}
    assert _balances(engine, m.buyer_id, "KRW") == (4900, -4900)
    assert ledger_check.check(UnitOfWork(engine)).ok


def test_membership_pays_in_the_default_cards_currency_and_refuses_a_declined_card(
        client: TestClient, market: Market, engine: Engine) -> None:
    dollar_id, dollar = register_buyer(client, "Sam")
    ok(client.post("/api/v1/buyer/payment-methods", json={"card": APPROVE, "currency": "USD"},
                   headers=auth(dollar)), 201)
    joined = ok(client.post(MEMBERSHIP, headers=auth(dollar)))
    assert (joined["status"], joined["monthly_fee"], joined["currency"], joined["charged"]) == (
        "active", 499, "USD", 499)
    assert _balances(engine, dollar_id, "USD") == (499, -499)

    mismatch = client.post(MEMBERSHIP, headers=auth(market.buyer), json={"currency": "XYZ"})
    assert error(mismatch) == (422, "validation_error", "currency")

    ok(client.post("/api/v1/buyer/payment-methods", json={"card": DECLINE},
                   headers=auth(market.buyer)), 201)
    declined = client.post(MEMBERSHIP, headers=auth(market.buyer))
    assert error(declined) == (402, "payment_declined", "payment_method")
    assert ok(client.get(MEMBERSHIP, headers=auth(market.buyer)))["status"] == "none"
    assert _balances(engine, market.buyer_id, "KRW") == (0, 0)

    never = client.delete(MEMBERSHIP, headers=auth(market.buyer))
    assert error(never) == (404, "not_a_member", "buyer_id")
    assert never.json()["message"] == f"buyer_id: buyer {market.buyer_id} is not a member"
    assert ledger_check.check(UnitOfWork(engine)).ok


# ------------------------------------------------------------------ error messages
def test_a_full_cart_refuses_a_new_line_but_not_a_changed_one(
        client: TestClient, market: Market, monkeypatch: pytest.MonkeyPatch) -> None:
    from silkroute.services import cart

    monkeypatch.setattr(cart, "MAX_CART_LINES", 2)
    ok(put(client, market.buyer, "TEA-1", 1))
    ok(put(client, market.buyer, "MUG-1", 1))
    full = put(client, market.buyer, "CUP-1", 1)
    assert (full.status_code, full.json()) == (422, {
        "code": "cart_full", "field": "sku", "message": "sku: the cart holds at most 2 lines"})
    changed = ok(put(client, market.buyer, "TEA-1", 3))
    assert [(ln["sku"], ln["quantity"]) for ln in changed["lines"]] == [("TEA-1", 3),
                                                                       ("MUG-1", 1)]


def test_a_cart_changed_during_checkout_is_refused_and_reserves_nothing(
        client: TestClient, market: Market, monkeypatch: pytest.MonkeyPatch) -> None:
    from silkroute.store.cart_repo import CartRepo

    before = ok(put(client, market.buyer, "TEA-1", 2))
    # the line is edited between the checkout's read and its emptying of the cart
    monkeypatch.setattr(CartRepo, "take", lambda self, buyer_id, sku_id, quantity: False)
    r = client.post(f"{CART}/checkout", headers=auth(market.buyer))
    assert (r.status_code, r.json()) == (409, {
        "code": "cart_changed", "field": "cart",
        "message": "cart: TEA-1 changed while checking out; nothing was reserved, look at "
                   "the cart and check out again"})
    assert ok(client.get(CART, headers=auth(market.buyer))) == before
    stock = ok(client.get("/api/v1/seller/stock", headers=auth(market.seller)))
    assert {(s["sku"], s["reserved"]) for s in stock} == {("TEA-1", 0), ("MUG-1", 0)}
