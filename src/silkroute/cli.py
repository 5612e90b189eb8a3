"""The `silkroute` command line: Typer commands over the services, Rich output, --json."""

from __future__ import annotations

import functools
import importlib
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

# Typer 0.29 vendors Click; its exception classes are only reachable here (pinned version).
from typer._click import exceptions as click_errors
from typer.core import TyperGroup

from silkroute.domain.errors import DomainError, NotFound, ValidationError


class _OneLineErrors(TyperGroup):
    """The root command: a bad option or argument prints one line, like our own errors
    (`error: silkroute order show: Invalid value for 'order_id': ...`) and exits 2,
    instead of Click's usage text and Rich's boxed panel."""

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None,
             complete_var: str | None = None, standalone_mode: bool = True,
             windows_expand_args: bool = True, **extra: Any) -> Any:
        run = functools.partial(super().main, args, prog_name, complete_var, False,
                                windows_expand_args, **extra)
        if not standalone_mode:
            return run()
        try:
            rv = run()
        except click_errors.NoArgsIsHelpError as exc:
            # A group called without a command: Typer's Rich formatter printed its help
            # while building the error; plain Click formats it into the message instead.
            if exc.format_message().strip():
                exc.show()
            sys.exit(exc.exit_code)
        except click_errors.ClickException as exc:
            ctx = getattr(exc, "ctx", None)  # usage errors know their command
            where = f"{ctx.command_path}: " if ctx is not None else ""
            message = " ".join(exc.format_message().split())
            err.print(f"error: {where}{message}", markup=False, soft_wrap=True)
            sys.exit(exc.exit_code)
        except typer.Abort:
            err.print("error: aborted", markup=False)
            sys.exit(1)
        sys.exit(rv if isinstance(rv, int) else 0)


app = typer.Typer(help="silkroute: an open marketplace with a smart logistics brain.",
                  no_args_is_help=True, pretty_exceptions_enable=False, cls=_OneLineErrors)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
shop_app = typer.Typer(help="Sellers and their shops.", no_args_is_help=True)
location_app = typer.Typer(help="Warehouses, stores and pickup points.", no_args_is_help=True)
catalog_app = typer.Typer(help="Products and SKUs.", no_args_is_help=True)
stock_app = typer.Typer(help="Stock per SKU and location.", no_args_is_help=True)
buyer_app = typer.Typer(help="Buyers and their addresses.", no_args_is_help=True)
order_app = typer.Typer(help="Orders: place, show, cancel.", no_args_is_help=True)
bench_app = typer.Typer(help="Benchmarks: they print figures, they never fail on timing.",
                        no_args_is_help=True)
for sub, name in ((db_app, "db"), (shop_app, "shop"), (location_app, "location"),
                  (catalog_app, "catalog"), (stock_app, "stock"), (buyer_app, "buyer"),
                  (order_app, "order"), (bench_app, "bench")):
    app.add_typer(sub, name=name)

out = Console()
err = Console(stderr=True, highlight=False, soft_wrap=True)
F = TypeVar("F", bound=Callable[..., Any])

DbOpt = Annotated[str | None, typer.Option("--db", help="Database URL (default: "
                                           "$SILKROUTE_DATABASE_URL or ./silkroute.db).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]


def fail(message: str, code: int) -> None:
    err.print(f"error: {message}", markup=False, soft_wrap=True)
    raise typer.Exit(code)


def user_errors(fn: F) -> F:
    """Turn domain errors into a one-line message and exit 2 (usage) or 1 (refused)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (ValidationError, NotFound) as exc:
            fail(exc.message, 2)
        except DomainError as exc:
            fail(exc.message, 1)
        except FileNotFoundError as exc:
            fail(f"file: {exc.filename} does not exist", 2)
        except OSError as exc:
            fail(f"database: {exc}", 1)

    return wrapper  # type: ignore[return-value]


def engine_for(db: str | None) -> Any:
    from sqlalchemy.exc import ArgumentError

    from silkroute.store.engine import make_engine
    try:
        return make_engine(db)
    except ArgumentError as exc:
        raise ValidationError(f"db: {exc}", field="db") from None


def uow_for(db: str | None) -> Any:
    """A unit of work on a database that is at the latest schema."""
    from silkroute.services.payments import use_database_provider
    from silkroute.store.migrate import current_revision, head_revision
    from silkroute.store.uow import UnitOfWork

    engine = engine_for(db)
    if current_revision(engine) != head_revision():
        raise ValidationError("db: the database schema is not current; run "
                              "`silkroute db upgrade` first", field="db")
    use_database_provider(engine)  # pay in one command, refund in the next
    return UnitOfWork(engine)


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, default=str, ensure_ascii=False) + "\n")


def print_per_backend(results: dict[str, dict[str, Any]], as_json: bool,
                      line: Callable[[dict[str, Any]], str]) -> None:
    """A benchmark's result per backend: one JSON object, or a line each (`line(row)`),
    saying which backend was skipped and why."""
    if as_json:
        print_json(results)
        return
    for name, row in results.items():
        text = f"skipped ({row['skipped']})" if "skipped" in row else line(row)
        out.print(f"{name}: {text}", markup=False, soft_wrap=True)


# ---------------------------------------------------------------------------------- db
@db_app.command("upgrade")
@user_errors
def db_upgrade(db: DbOpt = None) -> None:
    """Create or migrate the schema to the latest revision."""
    from silkroute.store.migrate import upgrade

    rev = upgrade(engine_for(db))
    out.print(f"database at revision {rev}")


# -------------------------------------------------------------------------------- shop
@shop_app.command("open")
@user_errors
def shop_open(
    name: Annotated[str, typer.Option(help="Seller's name.")],
    currency: Annotated[str, typer.Option(help="ISO 4217 currency of the shop.")] = "KRW",
    shop_name: Annotated[str | None, typer.Option(help="Shop name (default: seller name).")]
    = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Register a seller and open its shop."""
    from silkroute.services.catalog import open_shop

    res = open_shop(uow_for(db), name, currency, shop_name)
    if as_json:
        print_json(res.__dict__)
    else:
        out.print(f"seller {res.seller_id} opened shop {res.shop_id} ({res.name}, "
                  f"{res.currency})")


# ---------------------------------------------------------------------------- location
@location_app.command("add")
@user_errors
def location_add(
    name: Annotated[str, typer.Option(help="Location name.")],
    seller: Annotated[int | None, typer.Option(help="Owning seller id (none: platform).")]
    = None,
    kind: Annotated[str, typer.Option(help="warehouse, store, pickup_point or "
                                      "fulfilment_centre.")] = "warehouse",
    city: Annotated[str | None, typer.Option(help="City name (GeoNames).")] = None,
    lat: Annotated[float | None, typer.Option(help="Latitude.")] = None,
    lon: Annotated[float | None, typer.Option(help="Longitude.")] = None,
    capacity: Annotated[int, typer.Option(help="Parcels handled per day.")] = 1000,
    handling_cost: Annotated[int, typer.Option(help="Cost per parcel, minor units.")] = 0,
    country: Annotated[str, typer.Option(help="Country of the city.")] = "KR",
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Register a warehouse, store or pickup point."""
    from silkroute.services.catalog import add_location

    res = add_location(uow_for(db), seller, name, kind, city=city, latitude=lat,
                       longitude=lon, daily_capacity=capacity, handling_cost=handling_cost,
                       country=country)
    if as_json:
        print_json(res.__dict__)
    else:
        out.print(f"location {res.location_id}: {res.name} ({res.kind}) in {res.zone}")


# ----------------------------------------------------------------------------- catalog
@catalog_app.command("import")
@user_errors
def catalog_import(
    file: Annotated[Path, typer.Argument(help="CSV file (see docs/concepts.md).")],
    seller: Annotated[int, typer.Option(help="Seller id that owns the products.")],
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Import products, SKUs and stock from a CSV file: all rows or none."""
    from silkroute.services.catalog_import import CatalogImportError, import_catalog

    try:
        res = import_catalog(uow_for(db), seller, file)
    except CatalogImportError as exc:
        if as_json:
            print_json({"imported": False, "errors": [e.__dict__ for e in exc.errors]})
            raise typer.Exit(2) from None
        err.print(f"error: {exc.bad_rows} bad row(s) in {file}, nothing imported",
                  markup=False)
        for e in exc.errors:
            err.print(f"  {e}", markup=False)
        raise typer.Exit(2) from None
    if as_json:
        print_json({"imported": True, **res.__dict__})
    else:
        out.print(f"imported {res.products} products, {res.skus} SKUs, {res.units} units "
                  f"in {res.stock_rows} stock rows")


# ------------------------------------------------------------------------------- stock
@stock_app.command("set")
@user_errors
def stock_set(
    sku: Annotated[str, typer.Option(help="SKU code.")],
    location: Annotated[int, typer.Option(help="Location id.")],
    on_hand: Annotated[int, typer.Option(help="Units on hand.")],
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Set the units on hand of a SKU at a location."""
    from silkroute.services.catalog import set_stock

    res = set_stock(uow_for(db), sku, location, on_hand)
    if as_json:
        print_json({**res.__dict__, "available": res.available})
    else:
        out.print(f"{res.sku} at location {res.location_id}: {res.on_hand} on hand, "
                  f"{res.reserved} reserved, {res.available} available")


# ------------------------------------------------------------------------------- buyer
@buyer_app.command("add")
@user_errors
def buyer_add(
    name: Annotated[str, typer.Option(help="Buyer's name.")],
    city: Annotated[str | None, typer.Option(help="City of the default address.")] = None,
    lat: Annotated[float | None, typer.Option(help="Latitude of the address.")] = None,
    lon: Annotated[float | None, typer.Option(help="Longitude of the address.")] = None,
    country: Annotated[str, typer.Option(help="Country of the city.")] = "KR",
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Register a buyer with a default delivery address."""
    from silkroute.services.buyers import register_buyer

    res = register_buyer(uow_for(db), name, city=city, latitude=lat, longitude=lon,
                         country=country)
    if as_json:
        print_json(res.__dict__)
    else:
        out.print(f"buyer {res.buyer_id}" + (f", address {res.address_id} in {res.zone}"
                                              if res.address_id else ""))


# ------------------------------------------------------------------------------- order
def parse_line(text: str) -> Any:
    from silkroute.services.checkout import CartLine

    sku, sep, qty = text.rpartition(":")
    if not sep or not sku:
        raise ValidationError(f"line: {text!r} is not SKU:QUANTITY", field="line")
    try:
        return CartLine(sku, int(qty))
    except ValueError:
        raise ValidationError(f"line: quantity {qty!r} of {sku} is not a whole number",
                              field="quantity") from None


@order_app.command("place")
@user_errors
def order_place(
    buyer: Annotated[int, typer.Option(help="Buyer id.")],
    line: Annotated[list[str], typer.Option(help="SKU:QUANTITY, repeatable.")],
    address: Annotated[int | None, typer.Option(help="Address id (default: the buyer's "
                                                "default address).")] = None,
    pickup: Annotated[int | None, typer.Option(help="Pickup point location id.")] = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Check out a cart: one reserved order per seller."""
    from silkroute.services.checkout import checkout

    lines = [parse_line(x) for x in line]
    res = checkout(uow_for(db), buyer, lines, address_id=address,
                   service="pickup" if pickup else "standard", pickup_location_id=pickup)
    if as_json:
        print_json({"checkout_id": res.checkout_id,
                    "orders": [o.__dict__ for o in res.orders]})
        return
    for o in res.orders:
        from silkroute.domain.money import Money

        where = ", ".join(f"location {loc}" for loc, _ in o.shipments)
        out.print(f"order {o.order_id} ({o.state}) for seller {o.seller_id}: "
                  f"{Money(o.items_amount, o.currency)} from {where}")


@order_app.command("show")
@user_errors
def order_show(
    order_id: Annotated[int, typer.Argument(help="Order id.")],
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show an order: lines, where they ship from, and its history."""
    from silkroute.services.queries import get_order

    view = get_order(uow_for(db), order_id)
    if as_json:
        print_json(view.as_dict())
        return
    out.print(f"[bold]order {view.id}[/] — {view.state} — seller {view.seller_id}, buyer "
              f"{view.buyer_id}, total {view.total}")
    table = Table("SKU", "qty", "unit price")
    from silkroute.domain.money import Money

    for ln in view.lines:
        table.add_row(ln["sku"], str(ln["quantity"]), str(Money(ln["unit_price"],
                                                              view.currency)))
    out.print(table)
    alloc = Table("location", "SKU id", "qty", "status")
    for a in view.allocations:
        alloc.add_row(str(a["location_id"]), str(a["sku_id"]), str(a["quantity"]),
                      a["status"])
    out.print(alloc)
    for e in view.events:
        out.print(f"  {e['at']}  {e['from'] or '—'} → {e['to']} {e['note']}")


@order_app.command("cancel")
@user_errors
def order_cancel(
    order_id: Annotated[int, typer.Argument(help="Order id.")],
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Cancel an unpaid order and release its reserved stock."""
    from silkroute.services.checkout import cancel

    res = cancel(uow_for(db), order_id)
    if as_json:
        print_json(res.__dict__)
    else:
        out.print(f"order {res.order_id} cancelled, {res.released_units} units released")


# -------------------------------------------------------------------------------- demo
@app.command("demo")
@user_errors
def demo(
    db: DbOpt = None,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 7,
    orders: Annotated[int, typer.Option(help="Orders to place.")] = 2000,
    as_json: JsonOpt = False,
) -> None:
    """Build a fresh demo market in real South Korean cities and run a day of orders."""
    from silkroute.sim.demo import print_summary, run_demo

    summary = run_demo(db, seed=seed, orders=orders, console=None if as_json else out)
    if as_json:
        print_json(summary)
    else:
        print_summary(summary, out)


def _register_extensions() -> None:
    """Commands that live beside their part of the system register themselves here."""
    for module in ("silkroute.commands.allocation", "silkroute.commands.network",
                   "silkroute.commands.money", "silkroute.commands.api",
                   "silkroute.commands.planning", "silkroute.commands.jobs",
                   "silkroute.commands.bench_http"):
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if not exc.name or not module.startswith(exc.name):
                raise
            continue
        mod.register(app, bench_app)


if __name__ != "__main__":
    # (run as `python -m silkroute.cli`, this file is `__main__` and the commands' modules
    # import `silkroute.cli` anew: that module registers them, and `__main__` runs it)
    _register_extensions()


def main() -> None:
    app()


if __name__ == "__main__":
    from silkroute.cli import main as _main

    _main()
