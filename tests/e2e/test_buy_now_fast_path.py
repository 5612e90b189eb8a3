"""Buy-now's fast path (api/fast_paths.py) answers exactly as the route does: the same
status, headers and bytes for a purchase, a replay and every error, and the route keeps
every request the fast path does not take."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from silkroute.api import fast_paths
from silkroute.api.app import create_app
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

PATH = "/api/v1/buyer/buy-now"
ROUTE_JSON = "application/json; charset=utf-8"  # JSON to the route; not fast-path's


@pytest.fixture
def client(engine: Engine) -> Iterator[TestClient]:
    with TestClient(create_app(engine)) as c:
        yield c


@pytest.fixture
def taken(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The Idempotency-Keys of the purchases the fast path took."""
    seen: list[str] = []
    run = fast_paths.counted_buy_now

    async def spy(*args: Any) -> Any:
        seen.append(args[-1])
        return await run(*args)

    monkeypatch.setattr(fast_paths, "counted_buy_now", spy)
    return seen


def market(client: TestClient) -> dict[str, str]:
    """A shop with TEA-1 (3 units) and MUG-1 (none on sale), a buyer with an approving
    card, one with a declining card, one without a card, and the seller."""
    _, seller = open_shop(client, "Tea House")
    add_location(client, seller, "Seoul WH", "Seoul")
    assert import_csv(client, seller, CSV_HEADER +
                      "Green tea,TEA-1,12000,KRW,300,tea,Seoul WH,3\n"
                      "Mug,MUG-1,9000,KRW,400,home,Seoul WH,0\n").status_code == 201
    tokens = {"seller": seller}
    for name, card in (("approve", APPROVE), ("decline", DECLINE), ("no_card", None)):
        _, token = register_buyer(client, name)
        if card is not None:
            ok(client.post("/api/v1/buyer/payment-methods",
                           json={"card": card, "currency": "KRW"}, headers=auth(token)),
               201)
        tokens[name] = token
    return tokens


def answer(client: TestClient, token: str | None, body: Any, key: str | None, *,
           content_type: str = "application/json", raw: bytes | None = None
           ) -> tuple[int, dict[str, str], bytes]:
    headers = {"Content-Type": content_type}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    if key is not None:
        headers["Idempotency-Key"] = key
    import json

    got = client.post(PATH, content=raw if raw is not None else json.dumps(body).encode(),
                      headers=headers)
    kept = {k: v for k, v in got.headers.items() if k in ("content-type", "content-length",
                                                           "www-authenticate")}
    return got.status_code, kept, got.content


@pytest.mark.parametrize("backend", [pytest.param("postgres", marks=pytest.mark.postgres)])
def test_the_fast_path_answers_byte_for_byte_as_the_route(client: TestClient, taken,
                                                          backend) -> None:
    t = market(client)
    # a purchase through the route, then its replay by the fast path and by the route
    first = answer(client, t["approve"], {"sku": "TEA-1"}, "k1", content_type=ROUTE_JSON)
    assert first[0] == 201 and taken == []
    fast = answer(client, t["approve"], {"sku": "TEA-1"}, "k1")
    route = answer(client, t["approve"], {"sku": "TEA-1"}, "k1", content_type=ROUTE_JSON)
    assert taken == ["k1"]
    assert fast == route
    assert fast[0] == 201 and fast[2] == first[2].replace(b'"replayed":false',
                                                          b'"replayed":true')
    # a new purchase through the fast path reads like the route's first answer
    new = answer(client, t["approve"], {"sku": "TEA-1", "quantity": 1}, "k2")
    assert taken == ["k1", "k2"] and new[0] == 201
    assert new[1] == first[1]
    assert ok_body(new) == {**ok_body(first), "order_id": 2, "checkout_id": 2,
                            "payment_id": 2}
    # errors the use case raises: the app's handlers answer them the same way
    cases = [
        (t["approve"], {"sku": "NOPE-1"}, "e1"),                 # 404 no such SKU
        (t["approve"], {"sku": "MUG-1"}, "e2"),                  # 409 out of stock
        (t["approve"], {"sku": "TEA-1", "quantity": 2}, "k1"),   # 409 key reused
        (t["decline"], {"sku": "TEA-1"}, "e3"),                  # 402 declined
        (t["no_card"], {"sku": "TEA-1"}, "e4"),                  # 422 no payment method
    ]
    for token, body, key in cases:
        via_fast = answer(client, token, body, key)
        via_route = answer(client, token, body, key, content_type=ROUTE_JSON)
        assert via_fast == via_route, (body, key)
    assert [c[0] for c in (answer(client, *case) for case in cases)] == [
        404, 409, 409, 402, 422]
    assert taken == ["k1", "k2"] + ["e1", "e2", "k1", "e3", "e4"] * 2
    metrics = client.get("/metrics").text
    assert 'silkroute_payments_total{outcome="captured"} 2.0' in metrics
    assert "silkroute_orders_created_total 2.0" in metrics


def ok_body(answered: tuple[int, dict[str, str], bytes]) -> Any:
    import json

    return json.loads(answered[2])


@pytest.mark.parametrize("backend", [pytest.param("postgres", marks=pytest.mark.postgres)])
def test_what_the_fast_path_does_not_take_the_route_answers(client: TestClient, taken,
                                                            backend) -> None:
    t = market(client)
    refused = [
        (None, {"sku": "TEA-1"}, "r1", {}),                              # no token: 401
        ("sr_" + "x" * 43, {"sku": "TEA-1"}, "r2", {}),                  # unknown: 401
        (t["seller"], {"sku": "TEA-1"}, "r3", {}),                       # a seller: 403
        (t["approve"], {"sku": "TEA-1"}, None, {}),                      # no key: 422
        (t["approve"], {"sku": "TEA-1"}, "bad key", {}),                 # bad key: 422
        (t["approve"], {"sku": "TEA-1"}, "x" * 201, {}),                 # too long: 422
        (t["approve"], {"sku": "TEA-1", "quantity": 0}, "r4", {}),       # 422
        (t["approve"], {"sku": "TEA-1", "extra": 1}, "r5", {}),          # 422 (strict)
        (t["approve"], {"quantity": 1}, "r6", {}),                       # 422 no sku
        (t["approve"], None, "r7", {"raw": b"{not json"}),               # 422 bad JSON
        (t["approve"], None, "r8", {"raw": b""}),                        # 422 no body
    ]
    answers = [answer(client, token, body, key, **kw) for token, body, key, kw in refused]
    assert taken == []  # none of them reached a purchase through the fast path
    assert [a[0] for a in answers] == [401, 401, 403, 422, 422, 422, 422, 422, 422, 422,
                                       422]
    assert answers[0][1]["www-authenticate"] == "Bearer"
    assert ok_body(answers[2])["code"] == "forbidden"
    # and the same requests sent to the route directly get the same answers
    again = [answer(client, token, body, key, content_type=ROUTE_JSON, **kw)
             for token, body, key, kw in refused]
    assert [(a[0], a[2]) for a in again] == [(a[0], a[2]) for a in answers]


@pytest.mark.parametrize("backend", ["sqlite"])
def test_on_sqlite_the_route_answers_every_buy_now(client: TestClient, taken,
                                                   backend) -> None:
    t = market(client)
    got = answer(client, t["approve"], {"sku": "TEA-1"}, "s1")
    assert (got[0], taken) == (201, [])
