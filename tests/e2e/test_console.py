"""The console in-process: sign-in cookie flags, CSRF rejection, tenant isolation, pages."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from silkroute.api.app import create_app
from silkroute.payments.test_provider import TestPaymentProvider
from silkroute.services import payments


@pytest.fixture(autouse=True)
def fresh_provider() -> Iterator[None]:
    old = payments.set_provider(TestPaymentProvider())
    yield
    payments.set_provider(old)


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
