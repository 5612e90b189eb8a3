"""The demo market: sellers, stock and buyers in real South Korean cities, and a day of orders."""

from __future__ import annotations

import csv
import io
import random
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import Progress
from rich.table import Table
from sqlalchemy import Engine, inspect, select

from silkroute.domain.errors import DomainError, OutOfStock, Unroutable
from silkroute.sim.cities import City, cities_of
from silkroute.sim.demo_carriers import fulfil
from silkroute.sim.demo_routing import (
    BASELINE,
    compare_with_baseline,
    contract_carriers,
    requests_of,
    starting_index,
)
from silkroute.store import tables as t
from silkroute.store.all_tables import metadata
from silkroute.store.engine import is_sqlite, make_engine
from silkroute.store.migrate import downgrade, upgrade
from silkroute.store.uow import UnitOfWork

DEMO_KEY = "demo"
DEMO_CARRIERS = 1000
CATEGORIES = ("fashion", "beauty", "electronics", "home", "food", "sports", "books", "toys")
NOUNS = ("jacket", "serum", "earbuds", "kettle", "green tea", "yoga mat", "novel", "robot",
         "sneakers", "lamp", "backpack", "notebook", "kimchi set", "tumbler", "cushion")
ADJECTIVES = ("classic", "slim", "organic", "premium", "compact", "everyday", "wireless",
              "handmade", "eco", "travel")


class DemoRefused(DomainError):
    code = "demo_refused"


def _holds_data(engine: Engine, names: set[str]) -> bool:
    """Whether any silkroute table other than the meta table has a row."""
    with engine.connect() as conn:
        for table in metadata.sorted_tables:
            if table.name in names and table.name != t.demo_marker.name and \
                    conn.execute(select(table).limit(1)).first() is not None:
                return True
    return False


def fresh_demo_engine(url: str | None) -> Engine:
    """An engine on an empty, migrated database; refuses to wipe anything but a demo."""
    engine = make_engine(url)
    names = set(inspect(engine).get_table_names())
    if names and _holds_data(engine, names):
        marker = None
        if t.demo_marker.name in names:
            with engine.connect() as conn:
                marker = conn.execute(select(t.demo_marker.c.value).where(
                    t.demo_marker.c.key == DEMO_KEY)).scalar_one_or_none()
        if marker is None:
            raise DemoRefused(
                f"db: {engine.url.render_as_string(hide_password=True)} holds data that is "
                "not an earlier demo; refusing to overwrite it (use another "
                "SILKROUTE_DATABASE_URL or --db)", field="db")
        if is_sqlite(engine) and engine.url.database not in (None, "", ":memory:"):
            engine.dispose()
            path = Path(engine.url.database or "")
            for suffix in ("", "-wal", "-shm"):
                Path(str(path) + suffix).unlink(missing_ok=True)
            engine = make_engine(url)
        else:
            downgrade(engine, "base")  # the migrations own the schema: let them remove it
    upgrade(engine)
    with engine.begin() as conn:
        if conn.execute(select(t.demo_marker).where(
                t.demo_marker.c.key == DEMO_KEY)).first() is None:
            conn.execute(t.demo_marker.insert().values(key=DEMO_KEY, value="1"))
    return engine


def _weighted_city(rng: random.Random, cities: list[City]) -> City:
    return rng.choices(cities, weights=[c.population for c in cities])[0]


def _jitter(rng: random.Random, city: City, km: float = 4.0) -> tuple[float, float]:
    d = km / 111.0
    return city.latitude + rng.uniform(-d, d), city.longitude + rng.uniform(-d, d)


def build_market(engine: Engine, rng: random.Random, *, sellers: int = 10,
                 products_per_seller: int = 30, buyers: int = 400) -> dict[str, Any]:
    """Sellers with two locations each, a catalogue imported from CSV, buyers."""
    from silkroute.services.buyers import register_buyer
    from silkroute.services.catalog import add_location, open_shop
    from silkroute.services.catalog_import import import_catalog

    cities = list(cities_of("KR")[:40])
    seller_ids: list[int] = []
    sku_codes: list[str] = []
    sku_units: dict[str, int] = {}
    for s in range(sellers):
        home = _weighted_city(rng, cities)
        shop = open_shop(UnitOfWork(engine), f"{home.name} Trading {s + 1}", "KRW")
        seller_ids.append(shop.seller_id)
        lat, lon = _jitter(rng, home)
        wh = add_location(UnitOfWork(engine), shop.seller_id, f"{home.name} warehouse {s + 1}",
                          "warehouse", latitude=lat, longitude=lon,
                          daily_capacity=rng.choice((500, 1000, 2000)),
                          handling_cost=rng.choice((800, 1000, 1200)))
        other = _weighted_city(rng, cities)
        lat, lon = _jitter(rng, other)
        store = add_location(UnitOfWork(engine), shop.seller_id, f"{other.name} store {s + 1}",
                             "store", latitude=lat, longitude=lon, daily_capacity=300,
                             handling_cost=1500)
        buf = io.StringIO()
        writer = csv.writer(buf)
        writer.writerow(["product", "title", "category", "sku", "attributes", "price",
                         "currency", "weight_g", "stock"])
        for p in range(products_per_seller):
            title = f"{rng.choice(ADJECTIVES)} {rng.choice(NOUNS)}"
            category = rng.choice(CATEGORIES)
            base = rng.randrange(50, 2000) * 100
            for v in range(rng.choice((1, 1, 2, 3))):
                code = f"S{s + 1:02d}-P{p + 1:03d}-V{v + 1}"
                sku_codes.append(code)
                price = base + v * 1000
                weight = rng.randrange(100, 5000)
                attrs = f"variant={v + 1};colour={rng.choice(('red', 'blue', 'black'))}"
                units = int(rng.paretovariate(1.2) * 8)
                sku_units[code] = units
                stock = f"{wh.location_id}={units * 3 // 4};{store.location_id}={units // 4}"
                writer.writerow([f"P{p}", title, category, code, attrs, price, "KRW", weight,
                                 stock])
        import_catalog(UnitOfWork(engine), shop.seller_id, buf.getvalue())
    # Platform pickup points in the biggest cities.
    for city in cities[:3]:
        add_location(UnitOfWork(engine), None, f"{city.name} pickup point", "pickup_point",
                     city=city.name, daily_capacity=400, handling_cost=500)
    buyer_ids = []
    for b in range(buyers):
        city = _weighted_city(rng, cities)
        lat, lon = _jitter(rng, city, 8.0)
        buyer_ids.append(register_buyer(UnitOfWork(engine), f"buyer {b + 1}", city=city.name,
                                        latitude=lat, longitude=lon).buyer_id)
    return {"sellers": seller_ids, "skus": sku_codes, "units": sku_units, "buyers": buyer_ids}


def place_orders(engine: Engine, rng: random.Random, market: dict[str, Any], orders: int,
                 console: Console | None) -> dict[str, Any]:
    from silkroute.services.checkout import CartLine, cancel
    from silkroute.services.payments import checkout_with_shipping as checkout

    # Sellers stock what sells: demand follows stock, with noise, so some SKUs run out.
    skus = list(market["skus"])
    weights = [market["units"][code] * rng.lognormvariate(0.0, 1.2) for code in skus]
    placed = refused = unroutable = cancelled = checkouts = 0
    order_ids: list[int] = []
    checkout_ids: list[int] = []
    progress = Progress(console=console, transient=True, disable=console is None)
    with progress:
        task = progress.add_task("placing orders", total=orders)
        while placed < orders and refused < orders:
            lines = {code: rng.choice((1, 1, 1, 2)) for code in
                     rng.choices(skus, weights=weights, k=rng.choice((1, 1, 2, 3)))}
            buyer = rng.choice(market["buyers"])
            try:
                res = checkout(UnitOfWork(engine), buyer,
                               [CartLine(c, q) for c, q in lines.items()])
            except OutOfStock:
                refused += 1
                continue
            except Unroutable:
                unroutable += 1
                refused += 1
                continue
            checkouts += 1
            for o in res.orders:
                placed += 1
                order_ids.append(o.order_id)
                progress.advance(task)
            if rng.random() < 0.03:
                for o in res.orders:
                    cancel(UnitOfWork(engine), o.order_id)
                    cancelled += 1
            else:
                checkout_ids.append(res.checkout_id)
    return {"checkouts": checkouts, "orders_placed": placed,
            "out_of_stock_refusals": refused - unroutable, "unroutable_refusals": unroutable,
            "cancelled": cancelled, "order_ids": order_ids, "checkout_ids": checkout_ids}


def setup_money(engine: Engine, rng: random.Random, market: dict[str, Any]) -> None:
    """Shipping templates for every seller; a saved card for every buyer (some decline)."""
    from silkroute.domain.money import Money
    from silkroute.domain.shipping import ShippingTemplate
    from silkroute.payments.test_provider import APPROVE, DECLINE, DECLINE_INSUFFICIENT_FUNDS
    from silkroute.services.payments import add_card, set_shipping_template

    for seller in market["sellers"]:
        template = (ShippingTemplate.flat(Money(3000, "KRW"), free_threshold=Money(50000, "KRW"))
                    if rng.random() < 0.5 else ShippingTemplate.by_weight(
                        [(1000, Money(2500, "KRW")), (5000, Money(4000, "KRW")),
                         (None, Money(6000, "KRW"))], free_threshold=Money(80000, "KRW")))
        set_shipping_template(UnitOfWork(engine), seller, template)
    for buyer in market["buyers"]:
        roll = rng.random()
        card = DECLINE if roll < 0.04 else DECLINE_INSUFFICIENT_FUNDS if roll < 0.06 else APPROVE
        add_card(UnitOfWork(engine), buyer, card)


def pay_and_fulfil(engine: Engine, rng: random.Random, checkout_ids: list[int],
                   console: Console | None) -> dict[str, Any]:
    """Pay every checkout (declines cancel); carriers ship and deliver most through their
    signed webhook; buyers confirm most deliveries; one payout batch pays everybody."""
    from silkroute.payments.port import PaymentError
    from silkroute.services import ledger_check
    from silkroute.services.payments import confirm_receipt, pay, run_payouts

    paid: list[tuple[int, int]] = []
    declined = captured = 0
    with engine.connect() as conn:
        seller_of = dict(conn.execute(select(t.orders.c.id, t.orders.c.seller_id)).all())
    progress = Progress(console=console, transient=True, disable=console is None)
    with progress:
        task = progress.add_task("paying, shipping, confirming", total=len(checkout_ids))
        for checkout_id in checkout_ids:
            try:
                res = pay(UnitOfWork(engine), checkout_id)
            except PaymentError:
                declined += 1
            else:
                paid.extend((seller_of[oid], oid) for oid in res.order_ids)
                captured += res.amount
            progress.advance(task)
    carriers = fulfil(engine, rng, paid)
    confirmed = 0
    with engine.connect() as conn:
        delivered_ids = list(conn.execute(select(t.orders.c.id).where(
            t.orders.c.state == "delivered").order_by(t.orders.c.id)).scalars())
    for order_id in delivered_ids:
        if rng.random() < 0.8:
            confirm_receipt(UnitOfWork(engine), order_id)
            confirmed += 1
    batch = run_payouts(UnitOfWork(engine), "demo-payouts-1")
    check = ledger_check.check(UnitOfWork(engine))
    return {"payments_captured": len(checkout_ids) - declined, "payments_declined": declined,
            "captured_krw": captured, "orders_handed_over": carriers["handed_over"],
            "orders_delivered": len(delivered_ids), "orders_confirmed": confirmed,
            **{k: v for k, v in carriers.items() if k != "handed_over"},
            "payout_payees": len(batch.payouts),
            "paid_out_krw": batch.total_by_currency.get("KRW", 0),
            "ledger_check": {"ok": check.ok, "violations": list(check.violations),
                             "transactions": check.transactions, "postings": check.postings,
                             "accounts": check.accounts}}


def units_per_location(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(t.locations.c.id, t.locations.c.name, t.locations.c.kind,
                   t.stock.c.on_hand, t.stock.c.reserved)
            .join(t.stock, t.stock.c.location_id == t.locations.c.id)).all()
    per: dict[int, dict[str, Any]] = {}
    for r in rows:
        e = per.setdefault(r.id, {"location_id": r.id, "name": r.name, "kind": r.kind,
                                  "on_hand": 0, "reserved": 0})
        e["on_hand"] += r.on_hand
        e["reserved"] += r.reserved
    return [per[k] for k in sorted(per)]


def run_demo(url: str | None = None, *, seed: int = 7, orders: int = 2000,
             console: Console | None = None, carriers: int = DEMO_CARRIERS,
             buyers: int = 400, products_per_seller: int = 30) -> dict[str, Any]:
    """Build the demo market and run its day; smaller sizes serve the tests."""
    from silkroute.services.payments import use_database_provider

    started = time.perf_counter()
    phases: dict[str, float] = {}
    mark = started

    def phase(name: str) -> None:
        nonlocal mark
        now = time.perf_counter()
        phases[name] = round(now - mark, 2)
        mark = now

    rng = random.Random(seed)
    engine = fresh_demo_engine(url)
    use_database_provider(engine)  # the served demo can refund what the demo paid
    if console:
        console.print(f"demo market in {engine.url.render_as_string(hide_password=True)}")
    market = build_market(engine, rng, buyers=buyers, products_per_seller=products_per_seller)
    setup_money(engine, rng, market)
    phase("market")
    carriers = contract_carriers(engine, carriers=carriers, orders=orders, seed=seed)
    index = starting_index(engine)
    phase("carriers")
    result = place_orders(engine, rng, market, orders, console)
    phase("orders")
    routing = compare_with_baseline(index, requests_of(engine, result["order_ids"]), seed)
    phase("routing_comparison")
    money = pay_and_fulfil(engine, rng, result["checkout_ids"], console)
    phase("pay_deliver_confirm_payout")
    summary: dict[str, Any] = {
        "database": engine.url.render_as_string(hide_password=True),
        "sellers": len(market["sellers"]),
        "skus": len(market["skus"]),
        "buyers": len(market["buyers"]),
        **{k: v for k, v in result.items() if k not in ("order_ids", "checkout_ids")},
        **money,
        "carriers": carriers,
        "routing": routing,
        "units_reserved_per_location": units_per_location(engine),
    }
    summary["phase_seconds"] = phases
    summary["seconds"] = round(time.perf_counter() - started, 2)
    engine.dispose()
    return summary


def print_summary(summary: dict[str, Any], console: Console) -> None:
    console.print(
        f"[bold]demo market[/]: {summary['sellers']} sellers, {summary['skus']} SKUs, "
        f"{summary['buyers']} buyers in real South Korean cities (GeoNames)")
    console.print(
        f"orders placed: {summary['orders_placed']} in {summary['checkouts']} checkouts; "
        f"out-of-stock refusals: {summary['out_of_stock_refusals']}; "
        f"no carrier: {summary.get('unroutable_refusals', 0)}; "
        f"cancelled: {summary['cancelled']}")
    table = Table("location", "kind", "on hand", "reserved", title="units reserved per location")
    for row in summary["units_reserved_per_location"]:
        table.add_row(f"{row['location_id']} {row['name']}", row["kind"], str(row["on_hand"]),
                      str(row["reserved"]))
    console.print(table)
    if "routing" in summary:
        routing = Table("policy", "cost per order", "on time", "split", "unfulfilled",
                        title=f"routing the same orders over {summary['carriers']} carriers "
                              "from the same starting stock")
        for name, r in summary["routing"].items():
            routing.add_row(name + (" (baseline)" if name == BASELINE else " (default)"),
                            f"₩{r['cost_per_order']:,.0f}", f"{r['on_time_rate']:.1%}",
                            f"{r['split_rate']:.1%}", f"{r['unfulfilled_rate']:.1%}")
        console.print(routing)
    if "ledger_check" in summary:
        check = summary["ledger_check"]
        console.print(
            f"payments: {summary['payments_captured']} captured "
            f"(₩{summary['captured_krw']:,} into escrow), {summary['payments_declined']} "
            f"declined and cancelled; handed over {summary['orders_handed_over']}, delivered "
            f"{summary['orders_delivered']}, confirmed {summary['orders_confirmed']}; payout "
            f"batch paid {summary['payout_payees']} payees ₩{summary['paid_out_krw']:,}")
        console.print(
            f"carriers: {summary['carrier_accounts']} carriers posted "
            f"{summary['webhook_events']} signed webhook events "
            f"(HTTP statuses {summary['webhook_statuses']}; "
            f"{summary['webhook_duplicates']} duplicates ignored)")
        console.print(
            f"ledger check: {'passed' if check['ok'] else 'FAILED'} "
            f"({check['transactions']} transactions, {check['postings']} postings, "
            f"{check['accounts']} accounts, {len(check['violations'])} violations)")
    console.print(f"finished in {summary['seconds']} s")
