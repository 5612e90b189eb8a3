"""Group commit over real HTTP: a `silkroute serve` process on PostgreSQL runs concurrent
buy-nows together (api/group_commit.py), answers each exactly as alone, counts the groups
in `silkroute_buy_now_group_size`, and sells scarce stock exactly once."""

from __future__ import annotations

import json
import subprocess
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from silkroute.bench.http import (
    APPROVE_CARD,
    Http,
    Market,
    Server,
    seed_market,
    serve_command,
    temporary_postgres,
)
from silkroute.domain.money import Money
from silkroute.domain.shipping import ShippingTemplate
from silkroute.services import payments
from silkroute.store.engine import make_engine
from silkroute.store.uow import UnitOfWork
from tests.e2e.test_http_race import ledger_check

pytestmark = pytest.mark.postgres

PATH = "/api/v1/buyer/buy-now"
BUYERS = 16
SKUS = 4
PRICE = 10000  # seed_market's price of every SKU (KRW)
FLAT_FEE = 3000  # the shipping template set below: 3000 KRW, free from 30000 KRW of goods
FREE_FROM = 30000
DECLINE = "4000000000000002"  # the test provider declines it (docs/payments.md)
OUT = {"order_id", "checkout_id", "payment_id", "state", "currency", "items_amount",
       "shipping_amount", "total", "replayed"}


@dataclass
class Served:
    server: Server
    url: str


def _serve(tmp: Path, name: str, extra_args: tuple[str, ...] = ()) -> Iterator[Served]:
    with temporary_postgres() as url, Server(url, tmp / f"{name}.log", workers=1,
                                             extra_args=extra_args) as server:
        yield Served(server, url)


@pytest.fixture(scope="module")
def grouped(pg_database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """A server with the default group size (64), on a database of its own. (`pg_database`
    only for its skip, or fail under CI, when PostgreSQL is not reachable.)"""
    yield from _serve(tmp_path_factory.mktemp("grouped"), "grouped")


@pytest.fixture(scope="module")
def alone(pg_database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """A server that runs each buy-now alone (`--buy-now-group 0`)."""
    yield from _serve(tmp_path_factory.mktemp("alone"), "alone", ("--buy-now-group", "0"))


# helpers ----------------------------------------------------------------------------------
def a_market(served: Served, *, buyers: int, skus: int, units: int,
             shipping: bool) -> Market:
    """seed_market over HTTP; with `shipping`, its seller charges the flat fee (set in the
    database: there is no API for shipping templates)."""
    market = seed_market(served.server.port, buyers=buyers, skus=skus, units=units)
    if shipping:
        shop = httpx.get(f"{served.server.base}/api/v1/seller/shop", timeout=10,
                         headers={"Authorization": f"Bearer {market.seller_token}"})
        assert shop.status_code == 200, shop.text
        engine = make_engine(served.url)
        try:
            payments.set_shipping_template(UnitOfWork(engine), shop.json()["seller_id"],
                                           ShippingTemplate.flat(
                                               Money(FLAT_FEE, "KRW"),
                                               free_threshold=Money(FREE_FROM, "KRW")))
        finally:
            engine.dispose()
    return market


def quantity_of(i: int) -> int:
    return 1 + i % 3


def expected_amounts(quantity: int) -> dict[str, Any]:
    items = PRICE * quantity
    shipping = 0 if items >= FREE_FROM else FLAT_FEE
    return {"state": "paid", "currency": "KRW", "items_amount": items,
            "shipping_amount": shipping, "total": items + shipping}


def fire(base: str, calls: list[tuple[str, dict[str, Any], str]]) -> list[httpx.Response]:
    """Each (token, body, Idempotency-Key) from a thread of its own, all let go at once
    (each client connected first), answered in the order given."""
    results: list[httpx.Response | None] = [None] * len(calls)
    problems: list[BaseException] = []
    gate = threading.Barrier(len(calls))

    def call(i: int) -> None:
        token, body, key = calls[i]
        try:
            with httpx.Client(base_url=base, timeout=60) as http:
                http.get("/api/v1/health")  # connect before the gate opens
                gate.wait(timeout=30)
                results[i] = http.post(PATH, json=body, headers={
                    "Authorization": f"Bearer {token}", "Idempotency-Key": key})
        except BaseException as exc:  # reported below, with the others
            problems.append(exc)

    threads = [threading.Thread(target=call, args=(i,)) for i in range(len(calls))]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=120)
    assert problems == []
    assert all(r is not None for r in results)
    return [r for r in results if r is not None]


def purchases(market: Market, run: str) -> list[tuple[str, dict[str, Any], str]]:
    """Buyer i buys quantity_of(i) of SKU i mod n, under a fresh key of this run."""
    return [(token, {"sku": market.skus[i % len(market.skus)], "quantity": quantity_of(i)},
             f"{run}-{i}") for i, (_, token) in enumerate(market.buyers)]


def metrics(base: str) -> dict[str, float]:
    """Every sample of GET /metrics by its name and labels, e.g.
    'silkroute_buy_now_group_size_bucket{le="2.0"}'."""
    text = httpx.get(f"{base}/metrics", timeout=10).text
    found: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
            found[sample.name + (f"{{{labels}}}" if labels else "")] = sample.value
    return found


GROUP = "silkroute_buy_now_group_size"
LES = ("1.0", "2.0", "4.0", "8.0", "16.0", "32.0", "64.0", "128.0", "+Inf")


def group_histogram(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """What the group-size histogram gained between two reads: count, sum, per bucket."""
    names = [f"{GROUP}_count", f"{GROUP}_sum",
             *(f'{GROUP}_bucket{{le="{le}"}}' for le in LES)]
    return {n.removeprefix(GROUP + "_"): after[n] - before.get(n, 0.0) for n in names}


def delta(before: dict[str, float], after: dict[str, float], name: str) -> float:
    return after.get(name, 0.0) - before.get(name, 0.0)


CAPTURED = 'silkroute_payments_total{outcome="captured"}'
FAILED = 'silkroute_payments_total{outcome="failed"}'
ORDERS = "silkroute_orders_created_total"


def buy_sixteen(served: Served) -> tuple[list[dict[str, Any]], dict[str, float]]:
    """The 16 concurrent purchases (and, concurrently, their replays) on a fresh market of
    this server: the first answers, and what the metrics gained by the purchases."""
    base = served.server.base
    market = a_market(served, buyers=BUYERS, skus=SKUS, units=100, shipping=True)
    calls = purchases(market, uuid.uuid4().hex[:8])
    before = metrics(base)
    first = fire(base, calls)
    after = metrics(base)
    log = served.server.log()
    assert [r.status_code for r in first] == [201] * BUYERS, [r.text for r in first] + [log]
    bodies = [r.json() for r in first]
    assert all(set(b) == OUT for b in bodies), bodies
    for i, body in enumerate(bodies):
        assert {k: body[k] for k in OUT - {"order_id", "checkout_id", "payment_id",
                                           "replayed"}} == expected_amounts(quantity_of(i))
        assert body["replayed"] is False
    assert all(r.headers["content-type"] == "application/json" for r in first)  # fast path
    assert len({b["order_id"] for b in bodies}) == BUYERS
    assert len({b["payment_id"] for b in bodies}) == BUYERS
    assert delta(before, after, ORDERS) == BUYERS
    assert delta(before, after, CAPTURED) == BUYERS
    assert delta(before, after, FAILED) == 0

    # each request again with its own key: the same order, replayed, nothing new charged
    again = fire(base, calls)
    replayed = metrics(base)
    assert [r.status_code for r in again] == [201] * BUYERS, [r.text for r in again]
    assert [r.json() for r in again] == [{**b, "replayed": True} for b in bodies]
    assert delta(after, replayed, ORDERS) == 0
    assert delta(after, replayed, CAPTURED) == 0

    # and the seller sees exactly the 16 paid orders
    seller = {"Authorization": f"Bearer {market.seller_token}"}
    orders = httpx.get(f"{base}/api/v1/seller/orders", headers=seller, timeout=10,
                       params={"state": "paid", "limit": 100}).json()
    assert orders["total"] == BUYERS
    return bodies, group_histogram(before, after) | {
        "replays_sum": delta(after, replayed, f"{GROUP}_sum")}


# the tests --------------------------------------------------------------------------------
def test_sixteen_concurrent_buy_nows_are_paid_in_groups(grouped: Served) -> None:
    _, gained = buy_sixteen(grouped)
    groups = gained["count"]
    # every request was in exactly one group, and at least one group held several
    assert gained["sum"] == BUYERS, gained
    assert 1 <= groups < BUYERS, gained
    assert gained['bucket{le="+Inf"}'] == groups, gained
    assert gained['bucket{le="16.0"}'] == groups, gained  # no group above 16 requests
    assert gained['bucket{le="1.0"}'] < groups, gained  # some group had size > 1
    # buckets are cumulative: never fewer groups at a larger bound
    counts = [gained[f'bucket{{le="{le}"}}'] for le in LES]
    assert counts == sorted(counts), gained
    # a replay goes through a group too (and answers from the first call's records)
    assert gained["replays_sum"] == BUYERS, gained
    check = ledger_check(grouped.url)
    assert check.returncode == 0, check.stdout + check.stderr


def test_without_groups_the_same_purchases_answer_the_same(grouped: Served,
                                                           alone: Served) -> None:
    with_groups, _ = buy_sixteen(grouped)
    without, gained = buy_sixteen(alone)

    def shape(body: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in body.items() if not k.endswith("_id")}

    assert [shape(b) for b in without] == [shape(b) for b in with_groups]
    assert all(set(b) == OUT for b in without)
    assert gained["count"] == 0 and gained["sum"] == 0, gained
    assert gained["replays_sum"] == 0, gained
    assert metrics(alone.server.base)[f"{GROUP}_count"] == 0
    check = ledger_check(alone.url)
    assert check.returncode == 0, check.stdout + check.stderr


def test_scarce_stock_with_groups_sells_exactly_the_units(grouped: Served) -> None:
    units, buyers = 10, 32
    base = grouped.server.base
    market = a_market(grouped, buyers=buyers, skus=1, units=units, shipping=False)
    sku = market.skus[0]
    run = uuid.uuid4().hex[:8]
    calls = [(token, {"sku": sku, "quantity": 1}, f"{run}-{i}")
             for i, (_, token) in enumerate(market.buyers)]
    before = metrics(base)
    answers = fire(base, calls)
    after = metrics(base)

    paid = [r for r in answers if r.status_code == 201]
    refused = [r for r in answers if r.status_code == 409]
    odd = [(r.status_code, r.text) for r in answers if r not in paid + refused]
    assert odd == [], grouped.server.log()
    assert (len(paid), len(refused)) == (units, buyers - units)
    assert all(r.json() == {**r.json(), "state": "paid", "currency": "KRW",
                            "items_amount": PRICE, "shipping_amount": 0, "total": PRICE,
                            "replayed": False} for r in paid), [r.text for r in paid]
    assert all(set(r.json()) == OUT for r in paid)
    assert len({r.json()["order_id"] for r in paid}) == units
    assert [r.json() for r in refused] == [
        {"code": "out_of_stock", "field": "sku",
         "message": f"out of stock: SKU {sku} has 0 available, 1 requested"}] * len(refused)
    assert all("Traceback" not in r.text for r in answers)

    # the metrics: every request in one group; 10 captured, 22 failed
    gained = group_histogram(before, after)
    assert gained["sum"] == buyers, gained
    assert 1 <= gained["count"] <= buyers, gained
    assert delta(before, after, CAPTURED) == units
    assert delta(before, after, FAILED) == buyers - units
    assert delta(before, after, ORDERS) == units

    # the seller's stock is all reserved, and the ledger balances
    seller = {"Authorization": f"Bearer {market.seller_token}"}
    stock = httpx.get(f"{base}/api/v1/seller/stock", headers=seller, timeout=10).json()
    assert [(s["sku"], s["on_hand"], s["reserved"], s["available"]) for s in stock] == [
        (sku, units, units, 0)]
    orders = httpx.get(f"{base}/api/v1/seller/orders", headers=seller, timeout=10,
                       params={"limit": 100}).json()
    assert orders["total"] == units
    assert {o["state"] for o in orders["items"]} == {"paid"}
    check = ledger_check(grouped.url)
    assert check.returncode == 0, check.stdout + check.stderr


def every_kind_of_answer(served: Served) -> tuple[list[tuple[int, dict[str, Any]]],
                                                   dict[str, float]]:
    """Ten concurrent buy-nows, each answered differently, on a fresh market of this
    server: (status, body without its ids) each, and what the group histogram gained."""
    base = served.server.base
    market = a_market(served, buyers=5, skus=3, units=10, shipping=True)
    api = Http(served.server.port)
    try:
        other: dict[str, str] = {}
        ids: dict[str, int] = {}
        for name, card in (("declined", DECLINE), ("no card", None)):
            reg = api.ok("POST", "/api/v1/buyers", {"name": name,
                                                    "address": {"city": "Seoul"}})
            other[name] = reg["token"]["token"]
            ids[name] = int(reg["buyer_id"])
            if card is not None:
                api.ok("POST", "/api/v1/buyer/payment-methods",
                       {"card": card, "currency": "KRW", "default": True}, other[name])
        # a buyer's token revoked (by a second token of the same account)
        reg = api.ok("POST", "/api/v1/buyers", {"name": "revoked",
                                                "address": {"city": "Seoul"}})
        api.ok("POST", "/api/v1/buyer/payment-methods",
               {"card": APPROVE_CARD, "currency": "KRW", "default": True},
               reg["token"]["token"])
        second = api.ok("POST", "/api/v1/me/tokens", {"label": "second"},
                        reg["token"]["token"])
        api.ok("DELETE", f"/api/v1/me/tokens/{reg['token']['token_id']}",
               token=second["token"])
        other["revoked"] = reg["token"]["token"]
    finally:
        api.close()
    b = [token for _, token in market.buyers]
    one, two, three = market.skus
    prior = httpx.post(f"{base}{PATH}", json={"sku": two, "quantity": 1}, timeout=10,
                       headers={"Authorization": f"Bearer {b[4]}",
                                "Idempotency-Key": "prior"})
    assert prior.status_code == 201, prior.text
    calls = [
        (b[0], {"sku": one, "quantity": 1}, "plain"),
        (b[1], {"sku": one, "quantity": 3}, "free-shipping"),
        (b[2], {"sku": "NOPE-1", "quantity": 1}, "no-such-sku"),
        (b[3], {"sku": two, "quantity": 2}, "twice"),        # the same request twice at once
        (b[3], {"sku": two, "quantity": 2}, "twice"),
        (b[4], {"sku": two, "quantity": 2}, "prior"),        # the key, for another request
        (b[4], {"sku": two, "quantity": 1}, "prior"),        # the earlier request again
        (b[0], {"sku": three, "quantity": 11}, "too-many"),  # more than there is
        (other["declined"], {"sku": two, "quantity": 1}, "declined"),
        (other["no card"], {"sku": two, "quantity": 1}, "no-card"),
        # tokens that are not a live buyer's: the route's authentication answers them
        (other["revoked"], {"sku": two, "quantity": 1}, "revoked"),
        ("sr_" + "x" * 40, {"sku": two, "quantity": 1}, "unknown-token"),
        (market.seller_token, {"sku": two, "quantity": 1}, "a-seller"),
    ]
    before = metrics(base)
    got = fire(base, calls)
    after = metrics(base)
    bodies = [r.json() for r in got]
    assert bodies[6] == {**prior.json(), "replayed": True}
    assert bodies[3]["order_id"] == bodies[4]["order_id"]  # one order for the key
    assert sorted([bodies[3]["replayed"], bodies[4]["replayed"]]) == [False, True]
    check = ledger_check(served.url)
    assert check.returncode == 0, check.stdout + check.stderr
    names = {one: "<one>", two: "<two>", three: "<three>",
             f"buyer {ids['no card']} ": "buyer <no card> "}

    def general(value: Any) -> Any:  # the market's own names made the same on each
        if isinstance(value, str):
            for name, same in names.items():
                value = value.replace(name, same)
        return value

    answers = [(r.status_code, {k: general(v) for k, v in body.items()
                                if not k.endswith("_id")})
               for r, body in zip(got, bodies, strict=True)]
    for i in (3, 4):  # which of the two was first is up to the race
        answers[i] = (answers[i][0], {**answers[i][1], "replayed": None})
    return answers, group_histogram(before, after)


def test_every_kind_of_answer_is_the_same_in_a_group_as_alone(grouped: Served,
                                                              alone: Served) -> None:
    in_groups, gained = every_kind_of_answer(grouped)
    # every request entered a group, the three handed back to the route too
    assert (gained["sum"], gained['bucket{le="1.0"}'] < gained["count"]) == (13, True)
    by_itself, none = every_kind_of_answer(alone)
    assert (none["count"], none["sum"]) == (0, 0)
    paid = {"state": "paid", "currency": "KRW"}
    assert in_groups == by_itself == [
        (201, {**paid, "items_amount": 10000, "shipping_amount": FLAT_FEE, "total": 13000,
               "replayed": False}),
        (201, {**paid, "items_amount": 30000, "shipping_amount": 0, "total": 30000,
               "replayed": False}),
        (404, {"code": "not_found", "message": "sku: no SKU 'NOPE-1'", "field": "sku"}),
        (201, {**paid, "items_amount": 20000, "shipping_amount": FLAT_FEE, "total": 23000,
               "replayed": None}),
        (201, {**paid, "items_amount": 20000, "shipping_amount": FLAT_FEE, "total": 23000,
               "replayed": None}),
        (409, {"code": "idempotency_key_reused", "field": "idempotency_key",
               "message": "idempotency_key: 'prior' was already used for a different "
                          "request"}),
        (201, {**paid, "items_amount": 10000, "shipping_amount": FLAT_FEE, "total": 13000,
               "replayed": True}),
        (409, {"code": "out_of_stock", "field": "sku",
               "message": "out of stock: SKU <three> has 10 available, 11 requested"}),
        (402, {"code": "payment_declined", "message": "payment declined: card_declined",
               "field": "payment_method"}),
        (422, {"code": "no_payment_method", "field": "payment_method",
               "message": "payment_method: buyer <no card> has no saved payment method "
                          "(add one with `silkroute buyer card add`)"}),
        (401, {"code": "unauthenticated", "message": "the token is unknown or revoked",
               "field": "authorization"}),
        (401, {"code": "unauthenticated", "message": "the token is unknown or revoked",
               "field": "authorization"}),
        (403, {"code": "forbidden", "field": "authorization",
               "message": "this route is for buyer accounts; yours is a seller account"}),
    ]


# `silkroute bench http` -----------------------------------------------------------------
def test_bench_http_reports_its_figures_and_the_servers_group_size(pg_database: str) -> None:
    with temporary_postgres() as url:
        done = subprocess.run(
            [*serve_command()[:-1], "bench", "http", "--db", url, "--clients", "4",
             "--seconds", "1", "--workers", "1", "--buy-now-group", "4", "--json"],
            capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert list(report) == ["postgresql"]
    pg = report["postgresql"]
    assert (pg["clients"], pg["seconds"], pg["workers"], pg["skus"], pg["buy_now_group"],
            pg["errors"]) == (4, 1.0, 1, 4, 4, {})
    assert pg["paid_orders"] > 0
    assert pg["paid_per_s"] == round(pg["paid_orders"] / 1.0, 1)
    assert 0 < pg["p50_ms"] <= pg["p99_ms"]
    # CPU per paid order of each part (PostgreSQL runs on this machine, as in CI)
    cpu = pg["cpu_ms_per_order"]
    assert sorted(cpu) == ["client", "postgres", "server"]
    assert all(ms > 0 for ms in cpu.values()), cpu


def test_bench_http_refuses_a_negative_group_size_naming_the_option() -> None:
    done = subprocess.run([*serve_command()[:-1], "bench", "http", "--buy-now-group", "-1"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert (done.stdout + done.stderr).strip() == (
        "error: silkroute bench http: Invalid value for '--buy-now-group': Input should be "
        "greater than or equal to 0")
