"""The real `silkroute` CLI on a SQLite file: setup, catalogue import, orders, error paths."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import typer
from click.testing import Result
from typer.testing import CliRunner

from silkroute.cli import app
from silkroute.store.migrate import head_revision

SCHEMA_NOT_CURRENT = (
    "error: db: the database schema is not current; run `silkroute db upgrade` first\n"
)

GOOD_CSV = """\
product,title,sku,price,currency,weight_g,location,quantity
tee,T-shirt,TEE-S,12000,KRW,200,1,5
tee,T-shirt,TEE-M,12000,KRW,210,Busan WH,3
mug,Mug,MUG-1,8500,KRW,350,,
"""

# Line numbers count the header as line 1.
BAD_ROWS_CSV = """\
product,title,sku,price,currency,weight_g,location,quantity
hat,Hat,HAT-1,9000,KRW,100,1,2
hat,Hat,HAT-2,-5,KRW,100,1,2
hat,Hat,HAT-3,9000,XYZ,100,1,2
cap,Cap,HAT-1,9000,KRW,100,1,2
cap,Cap,CAP-1,9000,KRW,100,1,many
cap,Cap,CAP-2,9000
"""

MISSING_COLUMN_CSV = """\
title,sku,price,weight_g
Hat,HAT-9,9000,100
"""


class Cli:
    """Runs `silkroute ...` in-process against one SQLite file."""

    def __init__(self, db_path: Path) -> None:
        self.url = f"sqlite:///{db_path}"
        self.path = db_path
        self.runner = CliRunner()

    def __call__(self, *args: str, db: bool = True) -> Result:
        argv = [*args, "--db", self.url] if db else list(args)
        result = self.runner.invoke(app, argv, prog_name="silkroute")
        # No path a user can reach may end in a traceback.
        assert "Traceback" not in result.output, result.output
        assert not isinstance(result.exception, Exception), repr(result.exception)
        return result

    def ok(self, *args: str) -> str:
        result = self(*args)
        assert result.exit_code == 0, result.output
        assert result.stderr == ""
        return result.stdout

    def json(self, *args: str) -> dict:
        return json.loads(self.ok(*args, "--json"))

    def count(self, table: str) -> int:
        with sqlite3.connect(self.path) as conn:
            return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


def refused(result: Result, code: int, message: str) -> None:
    """The command exited with `code` and printed exactly one line, `error: message`."""
    assert result.exit_code == code, result.output
    assert result.stdout == ""
    assert result.stderr == f"error: {message}\n"


def _freeze(cli: Cli, template: Path) -> Path:
    """Fold the WAL into the main file and keep a copy to start tests from."""
    with sqlite3.connect(cli.path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    shutil.copy(cli.path, template)
    return template


@pytest.fixture(scope="module")
def empty_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty database upgraded through the CLI, once per module."""
    folder = tmp_path_factory.mktemp("empty")
    cli = Cli(folder / "x.db")
    assert cli.ok("db", "upgrade") == f"database at revision {head_revision()}\n"
    return _freeze(cli, folder / "template.db")


@pytest.fixture(scope="module")
def market_template(tmp_path_factory: pytest.TempPathFactory, empty_template: Path) -> Path:
    """Seller 1 (KRW) with a Seoul (1) and a Busan (2) warehouse, 3 SKUs, a buyer in Busan."""
    folder = tmp_path_factory.mktemp("market")
    shutil.copy(empty_template, folder / "x.db")
    cli = Cli(folder / "x.db")
    cli.ok("shop", "open", "--name", "Alice", "--currency", "KRW")
    cli.ok("location", "add", "--name", "Seoul WH", "--seller", "1", "--city", "Seoul")
    cli.ok("location", "add", "--name", "Busan WH", "--seller", "1",
           "--lat", "35.1", "--lon", "129.04")
    (folder / "good.csv").write_text(GOOD_CSV, encoding="utf-8")
    assert cli.ok("catalog", "import", str(folder / "good.csv"), "--seller", "1") == (
        "imported 2 products, 3 SKUs, 8 units in 2 stock rows\n")
    cli.ok("stock", "set", "--sku", "MUG-1", "--location", "2", "--on-hand", "4")
    cli.ok("buyer", "add", "--name", "Bob", "--city", "Busan")
    return _freeze(cli, folder / "template.db")


@pytest.fixture(autouse=True)
def _own_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test works in its own folder and ignores any database URL in the environment."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SILKROUTE_DATABASE_URL", raising=False)


@pytest.fixture
def cli(tmp_path: Path, empty_template: Path) -> Cli:
    """A CLI on an empty, upgraded database of the test's own."""
    shutil.copy(empty_template, tmp_path / "x.db")
    return Cli(tmp_path / "x.db")


@pytest.fixture
def market(tmp_path: Path, market_template: Path) -> Cli:
    """A CLI on a copy of the market database (see market_template)."""
    shutil.copy(market_template, tmp_path / "x.db")
    return Cli(tmp_path / "x.db")


def stock_of(cli: Cli, sku: str, location: int, on_hand: int) -> dict:
    """Set on hand to the value it already has and read the row back."""
    return cli.json("stock", "set", "--sku", sku, "--location", str(location),
                    "--on-hand", str(on_hand))


# --help ----------------------------------------------------------------------------------
def _command_paths() -> list[tuple[str, ...]]:
    root = typer.main.get_command(app)
    paths: list[tuple[str, ...]] = []

    def walk(cmd: Any, path: tuple[str, ...]) -> None:
        paths.append(path)
        if hasattr(cmd, "commands"):  # a group (Typer ships its own copy of click)
            for name, sub in sorted(cmd.commands.items()):
                walk(sub, (*path, name))

    walk(root, ())
    return paths


CORE_COMMANDS = {
    ("db", "upgrade"), ("shop", "open"), ("location", "add"), ("catalog", "import"),
    ("stock", "set"), ("buyer", "add"), ("order", "place"), ("order", "show"),
    ("order", "cancel"), ("demo",),
}


def test_every_core_command_exists() -> None:
    assert set(_command_paths()) >= CORE_COMMANDS


@pytest.mark.parametrize("path", _command_paths(), ids=lambda p: " ".join(p) or "silkroute")
def test_help_for_every_command_exits_0(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(app, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.stdout
    assert result.stderr == ""


@pytest.mark.parametrize("module", ["silkroute", "silkroute.cli"])
def test_python_dash_m_runs_the_same_cli(module: str) -> None:
    # `python -m silkroute.cli` used to fail: the commands' modules import `silkroute.cli`,
    # which, run as `__main__`, was still half initialised
    done = subprocess.run([sys.executable, "-m", module, "solve", "--help"],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert f"Usage: python -m {module} solve [OPTIONS] {{file}}" in done.stdout
    assert "--time-limit" in done.stdout
    assert "Traceback" not in done.stderr


# db upgrade ------------------------------------------------------------------------------
def test_db_upgrade_creates_the_schema_and_is_idempotent(tmp_path: Path) -> None:
    # given no database file
    cli = Cli(tmp_path / "new.db")
    # when upgraded twice / then it reports the head revision both times
    assert cli.ok("db", "upgrade") == f"database at revision {head_revision()}\n"
    assert cli.ok("db", "upgrade") == f"database at revision {head_revision()}\n"
    assert cli.count("sellers") == 0


def test_db_upgrade_of_a_database_from_a_newer_version_is_one_line(tmp_path: Path) -> None:
    # given a database whose schema revision this version does not know
    cli = Cli(tmp_path / "future.db")
    cli.ok("db", "upgrade")
    with sqlite3.connect(cli.path) as conn:
        conn.execute("UPDATE alembic_version SET version_num = '9999_future'")
    # when upgraded / then one line names the problem, and the database is left as it was
    refused(cli("db", "upgrade"), 2,
            "db: cannot migrate to 'head': Can't locate revision identified by "
            "'9999_future' (was this database made by a newer silkroute?)")
    with sqlite3.connect(cli.path) as conn:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchall() == [
            ("9999_future",)]


def test_commands_refuse_a_database_that_was_never_upgraded(tmp_path: Path) -> None:
    # given a database file nobody upgraded
    fresh = Cli(tmp_path / "fresh.db")
    # when / then every command that reads or writes refuses with exit 2
    refused(fresh("shop", "open", "--name", "Alice"), 2, SCHEMA_NOT_CURRENT[7:-1])
    refused(fresh("order", "show", "1"), 2, SCHEMA_NOT_CURRENT[7:-1])
    refused(fresh("buyer", "add", "--name", "Bob"), 2, SCHEMA_NOT_CURRENT[7:-1])


def test_commands_refuse_a_database_at_another_revision(cli: Cli) -> None:
    # given a database whose recorded revision is not the code's head
    with sqlite3.connect(cli.path) as conn:
        conn.execute("UPDATE alembic_version SET version_num = '0000_older'")
    # when
    result = cli("shop", "open", "--name", "Alice")
    # then
    assert result.exit_code == 2
    assert result.stderr == SCHEMA_NOT_CURRENT
    assert cli.count("sellers") == 0


# shop, locations -------------------------------------------------------------------------
def test_shop_open(cli: Cli) -> None:
    assert cli.ok("shop", "open", "--name", "Alice", "--currency", "KRW") == (
        "seller 1 opened shop 1 (Alice, KRW)\n"
    )
    assert cli.json("shop", "open", "--name", "Bo", "--currency", "usd",
                    "--shop-name", "Bo's") == {
        "seller_id": 2, "shop_id": 2, "name": "Bo's", "currency": "USD"}


def test_shop_open_with_an_unknown_currency_is_a_usage_error(cli: Cli) -> None:
    refused(cli("shop", "open", "--name", "Alice", "--currency", "XYZ"), 2,
            "currency: unknown currency 'XYZ' (known: CNY, EUR, GBP, HKD, JPY, KRW, KWD, "
            "SGD, TWD, USD)")
    assert cli.count("sellers") == 0


def test_location_add_by_city_and_by_coordinates(cli: Cli) -> None:
    # given a seller
    cli.ok("shop", "open", "--name", "Alice")
    # when a location is added by city name / then its zone is that city
    assert cli.ok("location", "add", "--name", "Seoul WH", "--seller", "1",
                  "--city", "Seoul") == "location 1: Seoul WH (warehouse) in Seoul\n"
    # when one is added by coordinates / then its zone is the nearest city
    assert cli.json("location", "add", "--name", "Busan WH", "--seller", "1",
                    "--lat", "35.1", "--lon", "129.04") == {
        "location_id": 2, "name": "Busan WH", "kind": "warehouse", "zone": "Busan"}
    assert cli.count("locations") == 2


def test_location_add_in_an_unknown_city_is_a_usage_error(cli: Cli) -> None:
    cli.ok("shop", "open", "--name", "Alice")
    refused(cli("location", "add", "--name", "X", "--seller", "1", "--city", "Atlantis"), 2,
            "city: unknown city 'Atlantis' in KR")
    assert cli.count("locations") == 0


def test_location_add_for_an_unknown_seller_is_a_usage_error(cli: Cli) -> None:
    refused(cli("location", "add", "--name", "X", "--seller", "77", "--city", "Seoul"), 2,
            "seller_id: no seller 77")
    assert cli.count("locations") == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--lat", "95", "--lon", "10"), "latitude must be between -90 and 90, got 95.0"),
        (("--lat", "35"), "longitude is required with the other coordinate"),
        ((), "city or latitude/longitude is required"),
    ],
)
def test_location_add_with_bad_coordinates_is_a_usage_error(
    cli: Cli, args: tuple[str, ...], message: str
) -> None:
    cli.ok("shop", "open", "--name", "Alice")
    refused(cli("location", "add", "--name", "X", "--seller", "1", *args), 2, message)


# catalogue import ------------------------------------------------------------------------
def test_catalog_import_of_a_good_file_reports_counts(cli: Cli) -> None:
    # given a seller with two locations
    cli.ok("shop", "open", "--name", "Alice")
    cli.ok("location", "add", "--name", "Seoul WH", "--seller", "1", "--city", "Seoul")
    cli.ok("location", "add", "--name", "Busan WH", "--seller", "1", "--city", "Busan")
    Path("good.csv").write_text(GOOD_CSV, encoding="utf-8")
    # when
    out = cli.ok("catalog", "import", "good.csv", "--seller", "1")
    # then
    assert out == "imported 2 products, 3 SKUs, 8 units in 2 stock rows\n"
    assert (cli.count("products"), cli.count("skus"), cli.count("stock")) == (2, 3, 2)


def test_catalog_import_with_bad_rows_lists_each_and_imports_nothing(market: Cli) -> None:
    # given a file whose rows 3-7 are each wrong in one way
    Path("bad.csv").write_text(BAD_ROWS_CSV, encoding="utf-8")
    # when
    result = market("catalog", "import", "bad.csv", "--seller", "1")
    # then every bad row is listed by line and field, and the exit code is 2
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.splitlines()[1:] == [
        "  line 3: price: must be positive, got -5",
        "  line 4: currency: unknown currency 'XYZ'",
        "  line 5: sku: duplicate SKU HAT-1 (first on line 2)",
        "  line 6: quantity: 'many' is not a whole number",
        "  line 7: currency: is empty",
        "  line 7: weight_g: is empty",
    ]
    # and nothing was written, not even the good row on line 2
    assert market.count("products") == 2
    assert market.count("skus") == 3
    refused(market("order", "place", "--buyer", "1", "--line", "HAT-1:1"), 2,
            "lines[0].sku: no SKU 'HAT-1'")


def test_catalog_import_with_bad_rows_as_json(market: Cli) -> None:
    Path("bad.csv").write_text(BAD_ROWS_CSV, encoding="utf-8")
    result = market("catalog", "import", "bad.csv", "--seller", "1", "--json")
    assert result.exit_code == 2
    assert json.loads(result.stdout) == {"imported": False, "errors": [
        {"line": 3, "field": "price", "message": "must be positive, got -5"},
        {"line": 4, "field": "currency", "message": "unknown currency 'XYZ'"},
        {"line": 5, "field": "sku", "message": "duplicate SKU HAT-1 (first on line 2)"},
        {"line": 6, "field": "quantity", "message": "'many' is not a whole number"},
        {"line": 7, "field": "currency", "message": "is empty"},
        {"line": 7, "field": "weight_g", "message": "is empty"},
    ]}
    assert market.count("skus") == 3


def test_catalog_import_with_a_missing_column_imports_nothing(market: Cli) -> None:
    # given a header without the required currency column
    Path("nocol.csv").write_text(MISSING_COLUMN_CSV, encoding="utf-8")
    # when
    result = market("catalog", "import", "nocol.csv", "--seller", "1")
    # then
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        "error: 1 bad row(s) in nocol.csv, nothing imported",
        "  line 1: currency: missing column",
    ]
    assert market.count("skus") == 3


def test_catalog_import_refuses_skus_that_already_exist_and_unknown_locations(
    market: Cli,
) -> None:
    # given a file that is well formed but clashes with the database
    Path("clash.csv").write_text(
        "title,sku,price,currency,weight_g,location,quantity\n"
        "Tee,TEE-S,12000,KRW,200,1,1\n"
        "Cap,CAP-1,9000,KRW,100,Nowhere,2\n",
        encoding="utf-8")
    # when
    result = market("catalog", "import", "clash.csv", "--seller", "1")
    # then
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        "error: 2 bad row(s) in clash.csv, nothing imported",
        "  line 2: sku: TEE-S already exists",
        "  line 3: location: no location 'Nowhere' of seller 1",
    ]
    assert market.count("skus") == 3


def test_catalog_import_header_counts_bad_rows(market: Cli) -> None:
    Path("bad.csv").write_text(BAD_ROWS_CSV, encoding="utf-8")
    result = market("catalog", "import", "bad.csv", "--seller", "1")
    assert result.stderr.splitlines()[0] == "error: 5 bad row(s) in bad.csv, nothing imported"


def test_catalog_import_lists_database_errors_alongside_row_errors(market: Cli) -> None:
    Path("mix.csv").write_text(
        "title,sku,price,currency,weight_g,location,quantity\n"
        "Hat,HAT-1,-5,KRW,100,1,2\n"
        "Cap,CAP-1,9000,KRW,100,Nowhere,2\n",
        encoding="utf-8")
    result = market("catalog", "import", "mix.csv", "--seller", "1")
    assert result.exit_code == 2
    assert result.stderr.splitlines()[1:] == [
        "  line 2: price: must be positive, got -5",
        "  line 3: location: no location 'Nowhere' of seller 1",
    ]


def test_catalog_import_error_header_stays_on_one_line_for_a_long_path(market: Cli) -> None:
    folder = Path("a" * 70)
    folder.mkdir()
    (folder / "bad.csv").write_text(BAD_ROWS_CSV, encoding="utf-8")
    result = market("catalog", "import", str(folder / "bad.csv"), "--seller", "1")
    assert result.stderr.splitlines()[0] == (
        f"error: 5 bad row(s) in {folder / 'bad.csv'}, nothing imported")


def test_catalog_import_for_an_unknown_seller_is_a_usage_error(cli: Cli) -> None:
    Path("good.csv").write_text(GOOD_CSV, encoding="utf-8")
    refused(cli("catalog", "import", "good.csv", "--seller", "77"), 2,
            "seller_id: no seller 77 with a shop")


def test_catalog_import_of_a_missing_file_is_a_usage_error(market: Cli) -> None:
    refused(market("catalog", "import", "nope.csv", "--seller", "1"), 2,
            "file: nope.csv does not exist")


# stock, buyers ---------------------------------------------------------------------------
def test_stock_set(market: Cli) -> None:
    assert market.ok("stock", "set", "--sku", "TEE-M", "--location", "2",
                     "--on-hand", "7") == (
        "TEE-M at location 2: 7 on hand, 0 reserved, 7 available\n")
    assert stock_of(market, "TEE-M", 2, 7) == {
        "sku": "TEE-M", "location_id": 2, "on_hand": 7, "reserved": 0, "available": 7}


@pytest.mark.parametrize(
    ("sku", "location", "on_hand", "message"),
    [
        ("NOPE", "1", "3", "sku: no SKU 'NOPE'"),
        ("TEE-S", "99", "3", "location_id: no location 99"),
        ("TEE-S", "1", "-1", "on_hand must be ≥ 0, got -1"),
    ],
)
def test_stock_set_usage_errors(
    market: Cli, sku: str, location: str, on_hand: str, message: str
) -> None:
    refused(market("stock", "set", "--sku", sku, "--location", location,
                   "--on-hand", on_hand), 2, message)
    assert stock_of(market, "TEE-S", 1, 5)["on_hand"] == 5


def test_buyer_add(cli: Cli) -> None:
    assert cli.ok("buyer", "add", "--name", "Bob", "--city", "Busan") == (
        "buyer 1, address 1 in Busan\n")
    assert cli.json("buyer", "add", "--name", "Cho", "--lat", "37.45",
                    "--lon", "126.70") == {"buyer_id": 2, "address_id": 2, "zone": "Incheon"}


def test_buyer_add_in_an_unknown_city_is_a_usage_error(cli: Cli) -> None:
    refused(cli("buyer", "add", "--name", "Bob", "--city", "Atlantis"), 2,
            "city: unknown city 'Atlantis' in KR")
    assert cli.count("buyers") == 0


# orders ----------------------------------------------------------------------------------
def test_order_place_show_cancel(market: Cli) -> None:
    # given TEE-S only in Seoul (5), MUG-1 only in Busan (4), a buyer in Busan
    # when the buyer orders 2 tees and a mug
    placed = market.ok("order", "place", "--buyer", "1", "--line", "TEE-S:2",
                       "--line", "MUG-1:1")
    # then one order, split nearest-first: Busan ships the mug, Seoul the tees
    assert placed == "order 1 (reserved) for seller 1: ₩32,500 from location 2, location 1\n"
    assert stock_of(market, "TEE-S", 1, 5)["reserved"] == 2
    assert stock_of(market, "MUG-1", 2, 4)["reserved"] == 1

    # when shown as JSON / then every field is as recorded
    shown = market.json("order", "show", "1")
    stamps = [event.pop("at") for event in shown["events"]]
    for stamp in stamps:
        datetime.fromisoformat(stamp)
    assert shown == {
        "id": 1, "checkout_id": 1, "buyer_id": 1, "seller_id": 1, "state": "reserved",
        "currency": "KRW", "items_amount": 32500, "shipping_amount": 0,
        "service": "standard", "policy": "nearest-with-stock",
        "lines": [{"sku": "TEE-S", "quantity": 2, "unit_price": 12000},
                  {"sku": "MUG-1", "quantity": 1, "unit_price": 8500}],
        "allocations": [
            {"sku_id": 1, "location_id": 1, "quantity": 2, "carrier_id": None,
             "status": "reserved"},
            {"sku_id": 3, "location_id": 2, "quantity": 1, "carrier_id": None,
             "status": "reserved"},
        ],
        "events": [{"from": None, "to": "created", "note": ""},
                   {"from": "created", "to": "reserved", "note": ""}],
        "plan": None,
        "total": {"amount": 32500, "currency": "KRW", "formatted": "₩32,500"},
    }

    # when cancelled / then the units are available again
    assert market.ok("order", "cancel", "1") == "order 1 cancelled, 3 units released\n"
    assert stock_of(market, "TEE-S", 1, 5) == {
        "sku": "TEE-S", "location_id": 1, "on_hand": 5, "reserved": 0, "available": 5}
    assert stock_of(market, "MUG-1", 2, 4)["available"] == 4
    assert market.json("order", "show", "1")["state"] == "cancelled"
    assert market.ok("order", "place", "--buyer", "1", "--line", "TEE-S:5") == (
        "order 2 (reserved) for seller 1: ₩60,000 from location 1\n")


def test_order_place_as_json(market: Cli) -> None:
    assert market.json("order", "place", "--buyer", "1", "--line", "TEE-M:3") == {
        "checkout_id": 1,
        "orders": [{"order_id": 1, "seller_id": 1, "state": "reserved", "currency": "KRW",
                    "items_amount": 36000, "shipments": [[2, [[2, 3]]]],
                    "shipping_amount": 0}],
    }


def test_order_show_human(market: Cli) -> None:
    market.ok("order", "place", "--buyer", "1", "--line", "TEE-M:1")
    out = market.ok("order", "show", "1")
    assert out.splitlines()[0] == "order 1 — reserved — seller 1, buyer 1, total ₩12,000"
    assert "TEE-M" in out


def test_cancelling_a_cancelled_order_is_refused(market: Cli) -> None:
    # given a cancelled order
    market.ok("order", "place", "--buyer", "1", "--line", "TEE-S:1")
    market.ok("order", "cancel", "1")
    # when cancelled again / then refused with exit 1 and nothing released twice
    refused(market("order", "cancel", "1"), 1, "order 1: cannot go from cancelled to cancelled")
    assert stock_of(market, "TEE-S", 1, 5)["reserved"] == 0


def test_out_of_stock_names_the_sku_and_what_is_available(market: Cli) -> None:
    refused(market("order", "place", "--buyer", "1", "--line", "TEE-S:6"), 1,
            "out of stock: SKU TEE-S has 5 available, 6 requested")
    assert market.count("orders") == 0


def test_out_of_stock_on_one_line_reserves_none_of_the_others(market: Cli) -> None:
    # given 5 tees and 4 mugs / when a cart wants 1 tee and 5 mugs
    refused(market("order", "place", "--buyer", "1", "--line", "TEE-S:1",
                   "--line", "MUG-1:5"), 1,
            "out of stock: SKU MUG-1 has 4 available, 5 requested")
    # then the tee is not held either
    assert stock_of(market, "TEE-S", 1, 5)["reserved"] == 0
    assert (market.count("orders"), market.count("allocations")) == (0, 0)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("TEE-S:0", "lines[0].quantity must be positive, got 0"),
        ("TEE-S:-1", "lines[0].quantity must be positive, got -1"),
        ("TEE-S:1001", "lines[0].quantity must be at most 1000, got 1001"),
        ("TEE-S:x", "line: quantity 'x' of TEE-S is not a whole number"),
        ("TEE-S", "line: 'TEE-S' is not SKU:QUANTITY"),
        ("NOPE:1", "lines[0].sku: no SKU 'NOPE'"),
    ],
)
def test_order_place_with_a_bad_line_is_a_usage_error(
    market: Cli, line: str, message: str
) -> None:
    refused(market("order", "place", "--buyer", "1", "--line", line), 2, message)
    assert market.count("orders") == 0
    assert stock_of(market, "TEE-S", 1, 5)["reserved"] == 0


def test_order_place_for_an_unknown_buyer_is_a_usage_error(market: Cli) -> None:
    refused(market("order", "place", "--buyer", "9", "--line", "TEE-S:1"), 2,
            "buyer_id: no buyer 9")


@pytest.mark.parametrize("command", ["show", "cancel"])
def test_unknown_order_is_a_usage_error(market: Cli, command: str) -> None:
    refused(market("order", command, "99"), 2, "order_id: no order 99")


def test_a_non_numeric_order_id_is_a_usage_error(market: Cli) -> None:
    refused(market("order", "show", "abc"), 2,
            "silkroute order show: Invalid value for 'order_id': Input should be a valid "
            "integer, unable to parse string as an integer")


@pytest.mark.parametrize(("argv", "message"), [
    (("order", "buy-now", "--buyer", "x", "--sku", "TEE-S"),
     "silkroute order buy-now: Invalid value for '--buyer': Input should be a valid integer, "
     "unable to parse string as an integer"),
    (("order", "show", "1", "--nope"), "silkroute order show: No such option: --nope"),
    (("shipping",), "silkroute: No such command 'shipping'."),
    (("order", "place", "--buyer", "1"),
     "silkroute order place: Missing option '--line'."),
])
def test_click_usage_errors_are_one_line_too(market: Cli, argv: tuple[str, ...],
                                              message: str) -> None:
    refused(market(*argv, db=False), 2, message)
