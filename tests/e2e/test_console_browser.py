"""The console in Debian's headless Chromium via Playwright, against a real `silkroute serve`."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from silkroute.bench.http import free_port, serve_command

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "test-output" / "screenshots"
SILKROUTE = str(Path(sys.executable).parent / "silkroute")

pytestmark = pytest.mark.slow


def ensure_chromium() -> str:
    """Debian's Chromium, installed with apt when missing (we run as root in CI)."""
    if os.path.exists(CHROMIUM):
        return CHROMIUM
    if os.geteuid() != 0 and not IN_CI:
        pytest.skip(f"{CHROMIUM} is missing and installing it needs root "
                    "(apt-get install chromium)")
    apt = shutil.which("apt-get")
    result = subprocess.run(
        "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium",
        shell=True, capture_output=True, text=True, timeout=900) if apt else None
    if not os.path.exists(CHROMIUM):
        detail = (result.stdout[-2000:] + result.stderr[-2000:]) if result else "no apt-get"
        pytest.fail(f"could not install chromium: {detail}")
    return CHROMIUM


@dataclass
class Market:
    base: str
    tokens: dict[str, str]
    db_url: str

    def api(self, role: str) -> httpx.Client:
        return httpx.Client(base_url=self.base + "/api/v1", timeout=20,
                            headers={"Authorization": f"Bearer {self.tokens[role]}"})


def _wait_up(proc: subprocess.Popen[bytes], base: str, log: Path, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while True:
        if proc.poll() is not None:
            pytest.fail(f"serve exited with {proc.returncode}: {log.read_text()}")
        try:
            if httpx.get(f"{base}/api/v1/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"serve did not answer in {seconds} s: {log.read_text()}")
        time.sleep(0.2)


@pytest.fixture(scope="module")
def market(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Market]:
    """`silkroute serve --demo` on a temp SQLite file (the demo contracts carriers, so the
    router decides), and a small saved `bench route` run for the control tower."""
    tmp = tmp_path_factory.mktemp("console")
    db_url = f"sqlite:///{tmp / 'console.db'}"
    bench_json = tmp / "bench-route.json"
    with bench_json.open("w") as out:
        bench = subprocess.Popen([SILKROUTE, "bench", "route", "--json", "--carriers", "100",
                                  "--locations", "40", "--orders", "300"], stdout=out,
                                 stderr=subprocess.DEVNULL)
    port = free_port()
    log_path = tmp / "serve.log"
    log = log_path.open("w")
    env = {**os.environ, "SILKROUTE_BENCH_ROUTE_JSON": str(bench_json)}
    started = time.monotonic()
    proc = subprocess.Popen(
        [*serve_command(), "--demo", "--demo-orders", "60", "--host", "127.0.0.1",
         "--port", str(port), "--db", db_url, "--log-level", "warning"],
        stdout=log, stderr=subprocess.STDOUT, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_up(proc, base, log_path, 120)
        up = time.monotonic() - started
        tokens = {line.split()[1]: line.split()[-1] for line in log_path.read_text().splitlines()
                  if line.startswith("demo ") and " token: " in line}
        assert set(tokens) == {"operator", "seller", "buyer"}, log_path.read_text()
        m = Market(base, tokens, db_url)
        with m.api("buyer") as api:  # demo cards may decline by design: one that approves
            card = api.post("/buyer/payment-methods", json={"card": "4242424242424242"})
            assert card.status_code == 201, card.text
        bench.wait(timeout=120)
        print(f"console market: serve --demo up in {up:.1f} s, bench by "
              f"{time.monotonic() - started:.1f} s")
        yield m
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@pytest.fixture(scope="module")
def browser(market: Market) -> Iterator[Any]:
    if IN_CI:
        from playwright.sync_api import sync_playwright
    else:
        sync_api = pytest.importorskip("playwright.sync_api")
        sync_playwright = sync_api.sync_playwright
    path = ensure_chromium()
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=path, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


@dataclass
class Watched:
    page: Any
    problems: list[str] = field(default_factory=list)

    def shot(self, name: str, full: bool = False) -> None:
        SHOTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=full)
        # A small JPEG beside it, the size docs/console.md embeds (docs/img/).
        self.page.screenshot(path=str(SHOTS / f"{name}.jpg"), full_page=full, type="jpeg",
                             quality=55)


@pytest.fixture
def watched(browser: Any, market: Market, request: pytest.FixtureRequest) -> Iterator[Watched]:
    """A fresh page that records console errors, page errors and failed requests."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, base_url=market.base)
    page = context.new_page()
    page.set_default_timeout(15_000)
    w = Watched(page)
    page.on("console", lambda m: m.type == "error" and w.problems.append(f"console: {m.text}"))
    page.on("pageerror", lambda e: w.problems.append(f"page error: {e}"))
    page.on("requestfailed", lambda r: w.problems.append(f"failed: {r.method} {r.url} "
                                                         f"{r.failure}"))
    page.on("response", lambda r: r.status >= 400 and w.problems.append(
        f"HTTP {r.status}: {r.request.method} {r.url}"))
    yield w
    try:
        if getattr(request.node, "rep_failed", False):
            w.shot(f"failed-{request.node.name}")
    finally:
        context.close()
    assert not w.problems, "\n".join(w.problems)


def sign_in(w: Watched, token: str) -> None:
    w.page.goto("/signin")
    w.page.get_by_label("API token").fill(token)
    w.page.get_by_role("button", name="Sign in").click()
    w.page.wait_for_load_state()


def in_stock_sku(market: Market, seller: int = 1) -> dict[str, Any]:
    items = httpx.get(f"{market.base}/api/v1/catalog/skus",
                      params={"seller_id": seller, "limit": 100}).json()["items"]
    return next(i for i in items if i["available"] >= 3)


def test_buyer_finds_a_product_buys_in_one_click_and_sees_it_tracked(
        watched: Watched, market: Market) -> None:
    page = watched.page
    sku = in_stock_sku(market)
    with market.api("buyer") as api:
        before = api.get("/buyer/orders").json()["total"]
    sign_in(watched, market.tokens["buyer"])
    page.goto("/")
    page.get_by_role("searchbox", name="Search").fill(sku["sku"])
    page.get_by_role("button", name="Search").click()
    page.get_by_role("link", name=sku["title"]).first.click()
    page.wait_for_url(f"**/products/{sku['sku']}")
    assert "Arrives by" in page.locator("#promise").inner_text()
    assert "router" in page.locator("#promise").inner_text()
    watched.shot("storefront-product")
    page.locator("#buy-now").dblclick()  # a double click still buys once
    page.wait_for_url(re.compile(r".*/orders/\d+\?bought=1"))
    assert page.locator("#order-state").inner_text() == "paid"
    assert page.get_by_role("list", name="Tracking timeline").is_visible()
    assert page.locator("svg[aria-label^='Map: order']").count() == 1
    watched.shot("storefront-order-tracking", full=True)
    with market.api("buyer") as api:
        assert api.get("/buyer/orders").json()["total"] == before + 1
    page.goto("/?q=" + sku["title"].split()[0])
    watched.shot("storefront-search")


def test_buyer_chooses_a_pickup_point(watched: Watched, market: Market) -> None:
    page = watched.page
    sku = in_stock_sku(market, seller=2)
    sign_in(watched, market.tokens["buyer"])
    page.goto(f"/products/{sku['sku']}")
    page.get_by_role("button", name="Add to cart").click()
    page.wait_for_url("**/cart**")
    page.get_by_label("Pick up at a store or pickup point").check()
    page.get_by_label("Pickup point", exact=True).select_option(index=1)
    watched.shot("storefront-cart-pickup", full=True)
    page.get_by_role("button", name="Place order and pay").click()
    page.wait_for_url("**/orders?placed=*")
    placed = page.locator(".notice").inner_text()
    order_id = re.search(r"(\d+)", placed.split(":")[-1]).group(1)  # type: ignore[union-attr]
    page.goto(f"/orders/{order_id}")
    assert "pickup" in page.locator("main").inner_text().lower()
    assert "pickup:" in page.locator("svg[aria-label^='Map: order']").inner_html()


def test_seller_imports_a_csv_with_a_bad_row_and_sees_the_error(
        watched: Watched, market: Market) -> None:
    page = watched.page
    sign_in(watched, market.tokens["seller"])
    page.wait_for_url("**/seller")
    watched.shot("seller-overview", full=True)
    page.get_by_role("link", name="Products").click()
    page.get_by_label("or paste CSV").fill(
        "title,sku,price,currency,weight_g\n"
        "Green tea,CON-TEA-1,12000,KRW,300\n"
        "Broken mug,CON-MUG-1,free,KRW,400\n")
    page.get_by_role("button", name="Import").click()
    errors = page.locator("#import-errors")
    errors.wait_for()
    text = errors.inner_text()
    assert "nothing was imported" in text
    assert re.search(r"3\s+price\s+'free' is not a number", text), text
    watched.shot("seller-import-errors", full=True)


def test_operator_opens_the_control_tower_and_why_this_route(
        watched: Watched, market: Market) -> None:
    page = watched.page
    sku = in_stock_sku(market, seller=3)
    with market.api("buyer") as api:  # an order the router places
        bought = api.post("/buyer/buy-now", json={"sku": sku["sku"]},
                          headers={"Idempotency-Key": f"ops-{time.time()}"})
        assert bought.status_code == 201, bought.text
        order_id = bought.json()["order_id"]
    sign_in(watched, market.tokens["operator"])
    page.wait_for_url("**/ops")
    assert page.locator("svg[aria-label^='Map of zones']").count() == 1
    assert page.locator("#top-carriers tbody tr").count() >= 1
    assert page.locator("#bench tr.ours").count() == 1
    watched.shot("ops-tower", full=True)
    page.get_by_role("link", name="Carriers", exact=True).click()
    page.get_by_label("Name or id").fill("1")
    page.get_by_role("button", name="Search").click()
    assert page.locator("#carriers tbody tr").count() >= 1
    page.get_by_role("link", name="Orders · why this route").click()
    page.get_by_label("Order number").fill(str(order_id))
    page.get_by_role("button", name="Why this route?").click()
    page.wait_for_url(f"**/ops/orders/{order_id}")
    assert "total" in page.locator("#chosen").inner_text()
    assert page.locator("#alternatives svg").count() == 1
    watched.shot("ops-why-this-route", full=True)


def test_phone_sized_storefront(browser: Any, market: Market) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 844}, base_url=market.base)
    try:
        page = context.new_page()
        page.goto("/")
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, f"the page scrolls sideways on a phone: {width}px"
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / "storefront-phone.png"))
        page.screenshot(path=str(SHOTS / "storefront-phone.jpg"), type="jpeg", quality=55)
    finally:
        context.close()
