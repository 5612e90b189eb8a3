"""CLI verbs for money: ledger check, buy-now, pay, ship/deliver/confirm, refunds, payouts,
membership, saved cards, and the checkout benchmark."""

from __future__ import annotations

import itertools
import os
import statistics
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

import typer

from silkroute.cli import DbOpt, JsonOpt, out, print_json, print_per_backend, uow_for, user_errors
from silkroute.domain.errors import ValidationError
from silkroute.domain.money import Money


def _group(app: typer.Typer, name: str, help_text: str) -> typer.Typer:
    """The sub-app `name` of `app`, created when it does not exist yet."""
    for info in app.registered_groups:
        if info.name == name and info.typer_instance is not None:
            return info.typer_instance
    sub = typer.Typer(help=help_text, no_args_is_help=True)
    app.add_typer(sub, name=name)
    return sub


def _money(amount: int, currency: str) -> str:
    return Money(amount, currency).format()


def register(app: typer.Typer, bench: typer.Typer) -> None:
    ledger_app = _group(app, "ledger", "The money ledger.")
    order_app = _group(app, "order", "Orders: place, show, cancel.")
    buyer_app = _group(app, "buyer", "Buyers and their addresses.")
    card_app = _group(buyer_app, "card", "Saved payment methods.")
    pay_app = _group(app, "pay", "Pay, refund, and the stand-in shipping steps.")
    payout_app = _group(app, "payout", "Payouts to sellers and carriers.")
    member_app = _group(app, "member", "The fast-free-shipping club.")

    @ledger_app.command("check")
    @user_errors
    def ledger_check(db: DbOpt = None, as_json: JsonOpt = False) -> None:
        """Verify the ledger's global invariants; exit 1 naming each violation."""
        from silkroute.services.ledger_check import check

        res = check(uow_for(db))
        if as_json:
            print_json({"ok": res.ok, "violations": list(res.violations),
                        "transactions": res.transactions, "postings": res.postings,
                        "accounts": res.accounts})
        else:
            for v in res.violations:
                out.print(f"violation: {v}", markup=False)
            out.print(f"ledger check {'passed' if res.ok else 'FAILED'}: {res.transactions} "
                      f"transactions, {res.postings} postings, {res.accounts} accounts, "
                      f"{len(res.violations)} violation(s)")
        if not res.ok:
            raise typer.Exit(1)

    @order_app.command("buy-now")
    @user_errors
    def buy_now(
        buyer: Annotated[int, typer.Option(help="Buyer id.")],
        sku: Annotated[str, typer.Option(help="SKU code.")],
        idempotency_key: Annotated[str, typer.Option(help="Same key + same request "
                                                     "returns the first result.")],
        quantity: Annotated[int, typer.Option(help="Units.")] = 1,
        db: DbOpt = None,
        as_json: JsonOpt = False,
    ) -> None:
        """One-click: default address and card, checkout and pay, once per key."""
        from silkroute.services.one_click import one_click

        res = one_click(uow_for(db), buyer, sku, quantity, idempotency_key=idempotency_key)
        if as_json:
            print_json(res.as_dict())
        else:
            again = " (replayed: nothing new created)" if res.replayed else ""
            out.print(f"order {res.order_id} {res.state}: {_money(res.total, res.currency)} "
                      f"(shipping {_money(res.shipping_amount, res.currency)}), payment "
                      f"{res.payment_id}{again}")

    @card_app.command("add")
    @user_errors
    def card_add(
        buyer: Annotated[int, typer.Option(help="Buyer id.")],
        number: Annotated[str, typer.Option(help="Card number (test cards: docs/payments.md).")],
        currency: Annotated[str, typer.Option(help="Currency the card pays in.")] = "KRW",
        default: Annotated[bool, typer.Option(help="Make it the default card.")] = True,
        db: DbOpt = None,
        as_json: JsonOpt = False,
    ) -> None:
        """Save a card as a payment method of a buyer."""
        from silkroute.services.payments import add_card

        res = add_card(uow_for(db), buyer, number, currency=currency, default=default)
        if as_json:
            print_json(asdict(res))
        else:
            out.print(f"payment method {res.payment_method_id}: card ending {res.last4} "
                      f"({res.currency}){' default' if res.default else ''}")

    @pay_app.command("checkout")
    @user_errors
    def pay_checkout(
        checkout_id: Annotated[int, typer.Argument(help="Checkout id.")],
        method: Annotated[int | None, typer.Option(help="Payment method id (default: the "
                                                  "buyer's default card).")] = None,
        db: DbOpt = None,
        as_json: JsonOpt = False,
    ) -> None:
        """Capture a checkout's orders into escrow (a decline cancels them)."""
        from silkroute.services.payments import pay

        res = pay(uow_for(db), checkout_id, method)
        if as_json:
            print_json({**asdict(res), "order_ids": list(res.order_ids)})
        else:
            out.print(f"payment {res.payment_id}: {_money(res.amount, res.currency)} captured "
                      f"into escrow for orders {', '.join(map(str, res.order_ids))}")

    def _moved(name: str, fn_name: str, help_text: str) -> None:
        @pay_app.command(name, help=help_text)
        @user_errors
        def cmd(order_id: Annotated[int, typer.Argument(help="Order id.")],
                db: DbOpt = None, as_json: JsonOpt = False) -> None:
            from silkroute.services import payments

            res = getattr(payments, fn_name)(uow_for(db), order_id)
            if as_json:
                print_json(asdict(res))
            else:
                out.print(f"order {order_id}: {res}", markup=False)

    _moved("ship", "ship", "Stand-in carrier: hand the order over (consumes its stock).")
    _moved("deliver", "deliver", "Stand-in carrier: mark the order delivered.")
    _moved("confirm", "confirm_receipt", "Buyer confirms receipt: escrow is released.")

    @pay_app.command("auto-confirm")
    @user_errors
    def pay_auto_confirm(
        days: Annotated[int, typer.Option(help="Days after delivery.")] = 10,
        db: DbOpt = None,
        as_json: JsonOpt = False,
    ) -> None:
        """Confirm every order delivered at least DAYS days ago."""
        from silkroute.services.payments import auto_confirm

        done = auto_confirm(uow_for(db), days=days)
        if as_json:
            print_json({"confirmed": done})
        else:
            out.print(f"{len(done)} order(s) confirmed automatically")

    @pay_app.command("refund")
    @user_errors
    def pay_refund(
        order_id: Annotated[int, typer.Argument(help="Order id.")],
        amount: Annotated[int | None, typer.Option(help="Minor units (default: all that "
                                                  "is left).")] = None,
        db: DbOpt = None,
        as_json: JsonOpt = False,
    ) -> None:
        """Refund an order fully or partly (after release: clawed back from the seller)."""
        from silkroute.services.payments import refund

        res = refund(uow_for(db), order_id, amount)
        if as_json:
            print_json(asdict(res))
        else:
            out.print(f"refund {res.refund_id}: {_money(res.amount, res.currency)} "
                      f"({res.stage}); order {order_id} is {res.order_state}")

    @payout_app.command("run")
    @user_errors
    def payout_run(
        batch: Annotated[str | None, typer.Option(help="Batch key (running the same key "
                                                 "again pays nothing twice).")] = None,
        db: DbOpt = None,
        as_json: JsonOpt = False,
    ) -> None:
        """Pay every positive seller and carrier payable."""
        from silkroute.services.payments import run_payouts

        res = run_payouts(uow_for(db), batch)
        if as_json:
            print_json({"batch_id": res.batch_id, "key": res.key, "created": res.created,
                        "sent": res.sent, "payouts": [
                            {"account": a, "amount": n, "currency": c}
                            for a, n, c in res.payouts]})
        else:
            totals = ", ".join(_money(n, c) for c, n in sorted(res.total_by_currency.items()))
            out.print(f"payout batch {res.batch_id} ({res.key}): {len(res.payouts)} payee(s)"
                      f"{', ' + totals if totals else ''}; {res.sent} sent now")

    def _member(name: str, help_text: str) -> None:
        @member_app.command(name, help=help_text)
        @user_errors
        def cmd(buyer: Annotated[int, typer.Option(help="Buyer id.")],
                db: DbOpt = None, as_json: JsonOpt = False) -> None:
            from silkroute.services import payments

            res = getattr(payments, name)(uow_for(db), buyer)
            if as_json:
                print_json(asdict(res))
            else:
                charged = (f", charged {_money(res.fee, res.currency)} for {res.period}"
                           if res.charged else "")
                declined = f", card declined ({res.declined})" if res.declined else ""
                out.print(f"buyer {res.buyer_id}: membership {res.status}, paid through "
                          f"{res.paid_through}{charged}{declined}")

    _member("subscribe", "Join the club: pays this month's fee.")
    _member("renew", "Pay this month's fee (once per month).")
    _member("lapse", "Stop renewing; benefits last to the end of the paid month.")

    @bench.command("checkout")
    @user_errors
    def bench_checkout(
        db: DbOpt = None,
        orders: Annotated[int, typer.Option(help="Paid orders per backend.")] = 1000,
        clients: Annotated[int, typer.Option(help="Concurrent buyers (threads) in the "
                                             "one process.")] = 4,
        as_json: JsonOpt = False,
    ) -> None:
        """One-click orders through the services: paid orders/s, latency, SQL per order."""
        if orders < 1:
            raise ValidationError("orders must be at least 1", field="orders")
        if not 1 <= clients <= 64:
            raise ValidationError("clients must be between 1 and 64", field="clients")
        print_per_backend(run_bench(db, orders, clients), as_json, lambda r: (
            f"{r['orders']} paid orders by {r['clients']} clients, {r['orders_per_s']} "
            f"orders/s, p50 {r['p50_ms']} ms, p99 {r['p99_ms']} ms, "
            f"{r['sql_statements_per_order']} SQL statements per paid order"))


# the benchmark ------------------------------------------------------------------------------
def _bench_one(url: str, orders: int, clients: int = 1) -> dict[str, Any]:
    from sqlalchemy import event

    from silkroute.domain.catalog import Product, Sku
    from silkroute.domain.shipping import ShippingTemplate
    from silkroute.services import payments
    from silkroute.services.buyers import register_buyer
    from silkroute.services.catalog import add_location, list_product, open_shop, set_stock
    from silkroute.services.one_click import one_click
    from silkroute.store.engine import make_engine
    from silkroute.store.migrate import upgrade
    from silkroute.store.sql import driver_statements
    from silkroute.store.uow import UnitOfWork

    engine = make_engine(url)
    upgrade(engine)

    def uow() -> UnitOfWork:
        return UnitOfWork(engine)

    tag = uuid.uuid4().hex[:6]
    seller = open_shop(uow(), f"Bench {tag}", "KRW").seller_id
    wh = add_location(uow(), seller, "Bench WH", city="Seoul").location_id
    # Enough SKUs that concurrent buyers rarely queue on one stock row.
    codes = [f"B{tag}-{i}" for i in range(64)]
    list_product(uow(), Product(seller, "Bench goods", tuple(
        Sku(c, Money(9900 + 100 * i, "KRW"), 400) for i, c in enumerate(codes))))
    for c in codes:
        set_stock(uow(), c, wh, orders * 2)
    payments.set_shipping_template(uow(), seller, ShippingTemplate.flat(
        Money(3000, "KRW"), free_threshold=Money(30000, "KRW")))
    buyers = []
    for i in range(max(20, clients * 4)):
        b = register_buyer(uow(), f"bench buyer {i}", city="Seoul").buyer_id
        payments.add_card(uow(), b, "4242 4242 4242 4242")
        buyers.append(b)
    provider = payments.TestPaymentProvider()
    # warm-up (connection pool, statement caches)
    for i in range(min(20, orders)):
        one_click(uow(), buyers[i % len(buyers)], codes[i % len(codes)], 1,
                  idempotency_key=f"warm-{tag}-{i}", provider=provider)
    statements = itertools.count()

    def counter(*_args: Any) -> None:
        next(statements)  # atomic under the GIL

    def client(worker: int) -> list[float]:
        mine = []
        for i in range(worker, orders, clients):
            t0 = time.perf_counter()
            res = one_click(uow(), buyers[i % len(buyers)], codes[(i * 7) % len(codes)],
                            1 + i % 2, idempotency_key=f"bench-{tag}-{i}", provider=provider)
            mine.append((time.perf_counter() - t0) * 1000)
            assert res.state == "paid"
        return mine

    event.listen(engine, "before_cursor_execute", counter)
    started = time.perf_counter()
    # ... and the statements sent on the driver directly (PostgreSQL's hot path)
    with driver_statements(counter), ThreadPoolExecutor(clients) as pool:
        latencies = [x for part in pool.map(client, range(clients)) for x in part]
    elapsed = time.perf_counter() - started
    count = next(statements)
    event.remove(engine, "before_cursor_execute", counter)
    engine.dispose()
    latencies.sort()
    return {
        "orders": orders,
        "clients": clients,
        "orders_per_s": round(orders / elapsed, 1),
        "p50_ms": round(statistics.median(latencies), 2),
        "p99_ms": round(latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))], 2),
        "sql_statements_per_order": round(count / orders, 2),
    }


def run_bench(db: str | None, orders: int, clients: int = 1) -> dict[str, dict[str, Any]]:
    """Run on `db` only, or on a temporary SQLite file and (when reachable) a temporary
    PostgreSQL database."""
    from sqlalchemy import text

    from silkroute.store.engine import is_sqlite, make_engine

    if db:
        return {"sqlite" if is_sqlite(db) else "postgresql": _bench_one(db, orders, clients)}
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        results["sqlite"] = _bench_one(f"sqlite:///{Path(tmp) / 'bench.db'}", orders,
                                       clients)
    pg = os.environ.get("SILKROUTE_TEST_POSTGRES_URL",
                        "postgresql://postgres@127.0.0.1:5432/test")
    name = f"silkroute_bench_{os.getpid()}"
    try:
        admin = make_engine(pg, isolation_level="AUTOCOMMIT", pool_pre_ping=False,
                            connect_args={"connect_timeout": 3})
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # not reachable: report and go on
        results["postgresql"] = {"skipped": f"{type(exc).__name__}: "
                                            f"{str(exc).splitlines()[0]}"}
        return results
    try:
        results["postgresql"] = _bench_one(pg.rsplit("/", 1)[0] + "/" + name, orders,
                                               clients)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
    return results
