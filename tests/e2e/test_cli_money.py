"""The real `silkroute` CLI on a SQLite file: cards, buy-now, ship, confirm, payouts, ledger."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from silkroute.cli import app

runner = CliRunner()


def run(db: str, *args: str) -> tuple[int, str]:
    res = runner.invoke(app, [*args, "--db", db])
    return res.exit_code, res.output


def test_buy_now_to_payout_and_ledger_check(tmp_path: Path):
    db = f"sqlite:///{tmp_path / 'cli.db'}"
    assert run(db, "db", "upgrade")[0] == 0
    assert run(db, "shop", "open", "--name", "Tea House")[0] == 0
    assert run(db, "location", "add", "--name", "WH", "--seller", "1", "--city", "Seoul")[0] == 0
    csv = tmp_path / "c.csv"
    csv.write_text("product,title,sku,price,currency,weight_g,location,quantity\n"
                   "tea,Tea,TEA-1,12000,KRW,300,1,5\n")
    assert run(db, "catalog", "import", str(csv), "--seller", "1")[0] == 0
    assert run(db, "buyer", "add", "--name", "Min", "--city", "Seoul")[0] == 0
    code, text = run(db, "order", "buy-now", "--buyer", "1", "--sku", "TEA-1",
                     "--quantity", "2", "--idempotency-key", "k1")
    assert code == 2 and "has no saved payment method" in text
    code, text = run(db, "buyer", "card", "add", "--buyer", "1", "--number",
                     "4242 4242 4242 4242", "--json")
    assert code == 0 and json.loads(text)["last4"] == "4242"
    code, text = run(db, "order", "buy-now", "--buyer", "1", "--sku", "TEA-1",
                     "--quantity", "2", "--idempotency-key", "k1", "--json")
    first = json.loads(text)
    assert code == 0 and (first["state"], first["total"]) == ("paid", 24000)
    code, text = run(db, "order", "buy-now", "--buyer", "1", "--sku", "TEA-1",
                     "--quantity", "2", "--idempotency-key", "k1", "--json")
    assert json.loads(text)["order_id"] == first["order_id"] and json.loads(text)["replayed"]
    code, text = run(db, "order", "buy-now", "--buyer", "1", "--sku", "TEA-1",
                     "--quantity", "1", "--idempotency-key", "k1")
    assert code == 1 and "was already used for a different request" in text
    for verb in ("ship", "deliver", "confirm"):
        assert run(db, "pay", verb, str(first["order_id"]))[0] == 0
    code, text = run(db, "payout", "run", "--batch", "b1", "--json")
    assert code == 0 and json.loads(text)["payouts"] == [
        {"account": "seller_payable:1:KRW", "amount": 22800, "currency": "KRW"}]
    code, text = run(db, "ledger", "check", "--json")
    report = json.loads(text)
    assert code == 0 and report["ok"] and report["transactions"] == 3
    assert (report["postings"], report["accounts"]) == (7, 5)
    code, text = run(db, "member", "subscribe", "--buyer", "1")
    assert code == 0 and "membership active" in text
    code, text = run(db, "pay", "refund", "1", "--amount", "999999")
    assert code == 1 and "exceeds" in text


def test_bench_checkout_refuses_bad_sizes_with_one_line():
    res = runner.invoke(app, ["bench", "checkout", "--clients", "0"])
    assert res.exit_code == 2
    assert res.stderr.strip() == "error: clients must be between 1 and 64"
    res = runner.invoke(app, ["bench", "checkout", "--orders", "0"])
    assert res.exit_code == 2
    assert res.stderr.strip() == "error: orders must be at least 1"


def test_bench_checkout_counts_every_statement_of_a_paid_order(tmp_path: Path,
                                                               pg_database: str) -> None:
    """SQLite: 17 statements per paid one-click order; PostgreSQL: its three (context read,
    checkout, payment, all sent on the driver directly) plus a sequence block now and
    then. (`pg_database` for its skip, or failure under CI, without PostgreSQL.)"""
    from silkroute.bench.http import temporary_postgres

    with temporary_postgres() as url:
        res = runner.invoke(app, ["bench", "checkout", "--db", url, "--orders", "40",
                                  "--clients", "2", "--json"])
    assert res.exit_code == 0, res.output
    pg = json.loads(res.stdout)["postgresql"]
    assert (pg["orders"], pg["clients"]) == (40, 2)
    assert 3.0 <= pg["sql_statements_per_order"] < 3.5
    lite = f"sqlite:///{tmp_path / 'bench.db'}"
    res = runner.invoke(app, ["bench", "checkout", "--db", lite, "--orders", "40", "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["sqlite"]["sql_statements_per_order"] == 17.0
