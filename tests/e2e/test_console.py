"""The console in-process: sign-in cookie flags, CSRF rejection, tenant isolation, pages."""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from silkroute.api.app import create_app
from silkroute.services import delivery, payments
from silkroute.services.accounts import Principal, authenticate
from silkroute.services.queries import get_order
from silkroute.store.uow import UnitOfWork


@pytest.fixture
def app_client(engine: Engine) -> Iterator[TestClient]:
    with TestClient(create_app(engine)) as c:
        yield c


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, html
    return found.group(1)


def new_browser(app_client: TestClient) -> TestClient:
    return TestClient(app_client.app)


def sign_in(c: TestClient, token: str) -> None:
    csrf = csrf_of(c.get("/signin").text)
    r = c.post("/signin", data={"token": token, "csrf_token": csrf}, follow_redirects=False)
    assert r.status_code == 303, r.text


def market(c: TestClient) -> tuple[str, str]:
    """A shop with one tea in stock, and a buyer in Seoul with a card: their tokens."""
    shop = c.post("/api/v1/sellers", json={"name": "Tea House", "currency": "KRW"}).json()
    seller = {"Authorization": f"Bearer {shop['token']['token']}"}
    assert c.post("/api/v1/seller/locations", json={"name": "WH", "city": "Seoul"},
                  headers=seller).status_code == 201
    imported = c.post("/api/v1/seller/catalog/imports",
                      headers={**seller, "Content-Type": "text/csv"},
                      content=b"title,sku,price,currency,weight_g,location,quantity\n"
                              b"Green tea,TEA-1,12000,KRW,300,WH,9\n")
    assert imported.status_code == 201, imported.text
    reg = c.post("/api/v1/buyers", json={"name": "Min-jun", "address": {"city": "Seoul"}})
    buyer = reg.json()["token"]["token"]
    card = c.post("/api/v1/buyer/payment-methods", json={"card": "4242424242424242"},
                  headers={"Authorization": f"Bearer {buyer}"})
    assert card.status_code == 201, card.text
    return shop["token"]["token"], buyer


def test_session_and_csrf_cookies_are_httponly_and_samesite(app_client: TestClient) -> None:
    _, buyer = market(app_client)
    c = new_browser(app_client)
    page = c.get("/signin")
    assert "HttpOnly" in page.headers["set-cookie"]
    assert "SameSite=strict" in page.headers["set-cookie"]
    r = c.post("/signin", data={"token": buyer, "csrf_token": csrf_of(page.text)},
               follow_redirects=False)
    cookies = r.headers.get_list("set-cookie")
    session = next(h for h in cookies if h.startswith("sr_session="))
    assert "HttpOnly" in session and "SameSite=lax" in session and "Path=/" in session
    assert (r.status_code, r.headers["location"]) == (303, "/")
    assert "Min-jun" in c.get("/").text
    out = c.post("/signout", data={"csrf_token": csrf_of(c.get("/").text)},
                 follow_redirects=False)
    assert out.status_code == 303
    assert c.get("/orders", follow_redirects=False).status_code == 303  # signed out


def test_forms_that_change_something_refuse_a_missing_or_wrong_csrf_token(
        app_client: TestClient) -> None:
    seller, buyer = market(app_client)
    c = new_browser(app_client)
    sign_in(c, buyer)
    for data in ({}, {"csrf_token": "forged"}):
        bought = c.post("/buy-now", data={"sku": "TEA-1", "idempotency_key": "k-12345678",
                                          **data})
        assert bought.status_code == 403 and "Form rejected" in bought.text
        assert c.post("/cart/add", data={"sku": "TEA-1", **data}).status_code == 403
        assert c.post("/signout", data=data).status_code == 403
    orders = c.get("/api/v1/buyer/orders", headers={"Authorization": f"Bearer {buyer}"})
    assert orders.json()["total"] == 0
    s = new_browser(app_client)
    sign_in(s, seller)
    r = s.post("/seller/products/import", data={"csv_text": "title,sku\n"})
    assert r.status_code == 403


def test_buy_now_twice_with_one_key_buys_once_and_another_buyer_gets_404(
        app_client: TestClient) -> None:
    _, buyer = market(app_client)
    c = new_browser(app_client)
    sign_in(c, buyer)
    product = c.get("/products/TEA-1").text
    key = re.search(r'name="idempotency_key" value="([^"]+)"', product).group(1)  # type: ignore[union-attr]
    form = {"sku": "TEA-1", "idempotency_key": key, "csrf_token": csrf_of(product)}
    first = c.post("/buy-now", data=form, follow_redirects=False)
    second = c.post("/buy-now", data=form, follow_redirects=False)
    assert first.status_code == 303 and first.headers["location"] == second.headers["location"]
    order_page = c.get(first.headers["location"])
    assert order_page.status_code == 200 and "Tracking timeline" in order_page.text
    other = app_client.post("/api/v1/buyers", json={"name": "Other", "address":
                                                    {"city": "Busan"}}).json()
    o = new_browser(app_client)
    sign_in(o, other["token"]["token"])
    theirs = o.get(first.headers["location"].split("?")[0])
    assert theirs.status_code == 404 and "Not found" in theirs.text
    assert o.get("/orders/999999").status_code == 404


def test_role_pages_send_other_roles_to_sign_in(app_client: TestClient) -> None:
    seller, _ = market(app_client)
    c = new_browser(app_client)
    r = c.get("/ops", follow_redirects=False)
    assert (r.status_code, r.headers["location"]) == (303, "/signin?role=operator&next=%2Fops")
    sign_in(c, seller)
    assert c.get("/seller").status_code == 200
    assert c.get("/seller/products").status_code == 200
    assert c.get("/ops", follow_redirects=False).status_code == 303
    store = c.get("/?q=tea&sort=price_asc")
    assert store.status_code == 200 and "Green tea" in store.text
    assert "default-src 'self'" in store.headers["content-security-policy"]


# ------------------------------------------------------- refunds, statement and payouts
def ids_of(engine: Engine, token: str) -> Principal:
    return authenticate(UnitOfWork(engine), token)


def released_order(c: TestClient, engine: Engine, seller: str, buyer: str) -> tuple[int, Any]:
    """A bought tea, handed over, delivered and confirmed: the sale is on the seller's
    payable. Set up through the services (the console's own forms are what is tested)."""
    bought = c.post("/api/v1/buyer/buy-now", json={"sku": "TEA-1", "quantity": 1},
                    headers={"Authorization": f"Bearer {buyer}",
                             "Idempotency-Key": f"k-{secrets.token_hex(8)}"})
    assert bought.status_code == 201, bought.text
    oid = int(bought.json()["order_id"])
    uow = lambda: UnitOfWork(engine)  # noqa: E731
    seller_id = ids_of(engine, seller).seller_id
    assert seller_id is not None
    if delivery.list_carriers(uow()).total == 0:
        delivery.register_carrier(uow(), "Fast Parcel", carrier_id=1)
    delivery.hand_over(uow(), seller_id, oid)
    payments.ship(uow(), oid)
    payments.deliver(uow(), oid)
    return oid, payments.confirm_receipt(uow(), oid)


def test_seller_approves_a_refund_request_with_the_form_and_the_statement_shows_it(
        app_client: TestClient, engine: Engine) -> None:
    seller, buyer = market(app_client)
    oid, released = released_order(app_client, engine, seller, buyer)
    buyer_id = ids_of(engine, buyer).buyer_id
    assert buyer_id is not None
    asked = delivery.request_refund(lambda: UnitOfWork(engine), buyer_id, oid, None,
                                    "Arrived broken")
    assert asked["state"] == "pending"  # after hand-over the seller decides
    rid = asked["id"]
    s = new_browser(app_client)
    sign_in(s, seller)
    overview = s.get("/seller").text
    assert overview.count('<h2 id="money-h">') == 1 and overview.count("<h1>") == 1
    assert ('<a href="/seller/refunds"><strong>1</strong> refund request to decide</a>'
            in overview)
    listing = s.get("/seller/refunds")
    assert listing.status_code == 200
    row = re.search(rf'<tr id="request-{rid}">(.*?)</tr>', listing.text, re.S)
    assert row is not None, listing.text
    hold = released.hold
    assert f"#{oid}" in row.group(1) and "Arrived broken" in row.group(1)
    assert "All that is left" in row.group(1) and f"total ₩{hold:,}" in row.group(1)
    assert f'action="/seller/refunds/{rid}/approve"' in row.group(1)

    # without the CSRF token, or with a forged one: 403 and nothing changes
    for bad in ({}, {"csrf_token": "forged"}):
        r = s.post(f"/seller/refunds/{rid}/approve", data=bad, follow_redirects=False)
        assert r.status_code == 403 and "Form rejected" in r.text
    # another shop's seller, with a good token of their own: 404
    other = app_client.post("/api/v1/sellers", json={"name": "Other", "currency": "KRW"})
    o = new_browser(app_client)
    sign_in(o, other.json()["token"]["token"])
    theirs = o.post(f"/seller/refunds/{rid}/approve",
                    data={"csrf_token": csrf_of(o.get("/seller/refunds").text)})
    assert theirs.status_code == 404 and "Not found" in theirs.text
    assert f"request-{rid}" not in o.get("/seller/refunds?state=all").text
    uow = lambda: UnitOfWork(engine)  # noqa: E731
    seller_id = ids_of(engine, seller).seller_id
    assert seller_id is not None
    still = delivery.refund_requests(uow(), seller_id, "pending")
    assert [r["id"] for r in still.items] == [rid]
    assert get_order(uow(), oid).state == "completed"

    # with the page's token: approved, the buyer is refunded, the claw-back is posted
    r = s.post(f"/seller/refunds/{rid}/approve", data={"csrf_token": csrf_of(listing.text)},
               follow_redirects=False)
    assert r.status_code == 303, r.text
    assert r.headers["location"] == f"/seller/refunds?decided={rid}&outcome=approved&order={oid}"
    done = s.get(r.headers["location"])
    assert (f"Refund request #{rid} on order #{oid}\napproved: the buyer is refunded."
            in done.text)
    assert "No refund requests to decide." in done.text
    assert get_order(uow(), oid).state == "refunded"
    assert delivery.refund_requests(uow(), seller_id, "approved").items[0]["refund_id"]
    again = s.post(f"/seller/refunds/{rid}/reject", data={"csrf_token": csrf_of(done.text)})
    assert again.status_code == 409
    assert f"Could not reject refund request #{rid}: refund request {rid} is approved" in (
        again.text) and 'data-code="already_decided"' in again.text
    statement = s.get("/seller/statement").text
    lines = re.findall(r"<td>(Sale released from escrow|Refund clawed back)</td>\s*"
                       r"<td><code>([^<]+)</code></td><td class=\"num\">([^<]+)</td>", statement)
    assert lines == [("Refund clawed back", f"order:{oid}", f"-₩{hold:,}"),
                     ("Sale released from escrow", f"order:{oid}", f"₩{released.seller:,}")]
    balance = released.seller - hold
    assert f'<dd class="balance" data-currency="KRW"><strong>-₩{-balance:,}</strong>' in (
        statement)


def test_statement_and_payouts_pages_show_exact_amounts(app_client: TestClient,
                                                        engine: Engine) -> None:
    seller, buyer = market(app_client)
    s = new_browser(app_client)
    sign_in(s, seller)
    assert "No postings yet" in s.get("/seller/statement").text
    assert "No payouts yet" in s.get("/seller/payouts").text
    _, first = released_order(app_client, engine, seller, buyer)
    _, second = released_order(app_client, engine, seller, buyer)
    run = payments.run_payouts(UnitOfWork(engine), "batch-console-1")
    sold = first.seller + second.seller
    statement = s.get("/seller/statement").text
    amounts = re.findall(r'<td class="num">([^<]+)</td>', statement)
    assert amounts == [f"-₩{sold:,}", f"₩{second.seller:,}", f"₩{first.seller:,}"]
    assert "Payout to your bank" in statement and f"payout_batch:{run.batch_id}" in statement
    assert '<dd class="balance" data-currency="KRW"><strong>₩0</strong>' in statement
    payouts = s.get("/seller/payouts").text
    row = re.search(r"<tr><td>#\d+</td><td>batch (\d+)</td><td>[^<]*</td>\s*"
                    r'<td class="num">([^<]+)</td><td><span class="state sent">sent</span>',
                    payouts)
    assert row is not None, payouts
    assert (int(row.group(1)), row.group(2)) == (run.batch_id, f"₩{sold:,}")
    overview = s.get("/seller").text
    assert overview.count('<h2 id="money-h">') == 1 and overview.count("<h1>") == 1
    assert f"<strong>1</strong> payout, latest ₩{sold:,} (sent)" in overview
    assert "Balance\n    <strong>₩0</strong>" in overview
