"""import_catalog: a CSV of products, SKUs and stock, all rows checked before any is written."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from silkroute.domain.catalog import Dimensions, Product, Sku, check_sku_code
from silkroute.domain.errors import DomainError, NotFound, ValidationError
from silkroute.domain.money import Money, check_currency
from silkroute.services.catalog import _insert_product, check_shop_currency
from silkroute.store.uow import UnitOfWork

REQUIRED = ("title", "sku", "price", "currency", "weight_g")
OPTIONAL = ("product", "category", "attributes", "length_mm", "width_mm", "height_mm",
            "location", "quantity", "stock")


@dataclass(frozen=True)
class RowError:
    line: int
    field: str
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.field}: {self.message}"


class CatalogImportError(ValidationError):
    """The file has bad rows; nothing was imported."""

    code = "invalid_catalog"

    def __init__(self, errors: list[RowError]):
        self.errors = errors
        self.bad_rows = len({e.line for e in errors})
        head = f"{self.bad_rows} bad row(s), nothing imported"
        super().__init__(head + "\n" + "\n".join(str(e) for e in errors),
                         field=errors[0].field if errors else None)


@dataclass
class ImportSummary:
    products: int = 0
    skus: int = 0
    stock_rows: int = 0
    units: int = 0
    product_ids: list[int] = field(default_factory=list)


@dataclass
class _Row:
    line: int
    key: str
    title: str
    category: str
    sku: Sku
    stock: list[tuple[str, int]]


def _int(raw: str, name: str, line: int, errors: list[RowError], *, minimum: int = 0
         ) -> int | None:
    text = (raw or "").strip()
    try:
        value = int(text)
    except ValueError:
        errors.append(RowError(line, name, f"{text!r} is not a whole number"))
        return None
    if value < minimum:
        errors.append(RowError(line, name, f"must be ≥ {minimum}, got {value}"))
        return None
    return value


def _attributes(raw: str, line: int, errors: list[RowError]) -> dict[str, str]:
    attrs: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in (raw or "").split(";"))):
        key, sep, value = part.partition("=")
        if not sep or not key.strip():
            errors.append(RowError(line, "attributes", f"{part!r} is not key=value"))
            continue
        attrs[key.strip()] = value.strip()
    return attrs


def parse_catalog(text: str) -> tuple[list[_Row], list[RowError]]:
    """Check every row; return the parsed rows and every error found (line numbers 1-based)."""
    errors: list[RowError] = []
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip() for h in (reader.fieldnames or [])]
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        return [], [RowError(1, c, "missing column") for c in missing]
    unknown = [c for c in header if c not in REQUIRED + OPTIONAL]
    if unknown:
        return [], [RowError(1, c, "unknown column") for c in unknown]
    reader.fieldnames = header
    rows: list[_Row] = []
    seen: dict[str, int] = {}
    for raw in reader:
        line = reader.line_num
        if None in raw:
            errors.append(RowError(line, "row", "more fields than the header has"))
            continue
        cells = {k: (v or "").strip() for k, v in raw.items()}
        before = len(errors)
        for col in REQUIRED:
            if not cells.get(col):
                errors.append(RowError(line, col, "is empty"))
        if len(errors) > before:
            continue
        code = cells["sku"]
        try:
            check_sku_code(code)
        except ValidationError as exc:
            errors.append(RowError(line, "sku", exc.message.removeprefix("sku: ")))
        if code in seen:
            errors.append(RowError(line, "sku", f"duplicate SKU {code} (first on line "
                                                f"{seen[code]})"))
        else:
            seen[code] = line
        try:
            currency = check_currency(cells["currency"])
        except ValidationError:
            errors.append(RowError(line, "currency", f"unknown currency {cells['currency']!r}"))
            currency = None
        price: Money | None = None
        if currency:
            try:
                price = Money.parse(cells["price"], currency)
            except ValidationError as exc:
                errors.append(RowError(line, "price", exc.message.removeprefix("price: ")))
            else:
                if price.amount <= 0:
                    errors.append(RowError(line, "price", f"must be positive, got "
                                                          f"{cells['price']}"))
                    price = None
        weight = _int(cells["weight_g"], "weight_g", line, errors)
        dims = [(_int(cells[d], d, line, errors) if cells.get(d) else 0)
                for d in ("length_mm", "width_mm", "height_mm")]
        attrs = _attributes(cells.get("attributes", ""), line, errors)
        stock: list[tuple[str, int]] = []
        if cells.get("quantity"):
            quantity = _int(cells["quantity"], "quantity", line, errors)
            if not cells.get("location"):
                errors.append(RowError(line, "location", "is empty but quantity is given"))
            elif quantity is not None:
                stock.append((cells["location"], quantity))
        elif cells.get("location"):
            errors.append(RowError(line, "quantity", "is empty but location is given"))
        for part in filter(None, (p.strip() for p in cells.get("stock", "").split(";"))):
            loc, sep, qty_text = part.rpartition("=")
            if not sep or not loc.strip():
                errors.append(RowError(line, "stock", f"{part!r} is not LOCATION=QUANTITY"))
                continue
            qty = _int(qty_text, "stock", line, errors)
            if qty is not None:
                stock.append((loc.strip(), qty))
        if len(errors) > before or price is None or weight is None or None in dims:
            continue
        sku = Sku(code, price, weight, Dimensions(*[int(d or 0) for d in dims]), attrs)
        rows.append(_Row(line, cells.get("product") or cells["title"], cells["title"],
                         cells.get("category") or "general", sku, stock))
    if not rows and not errors:
        errors.append(RowError(1, "file", "no rows"))
    return rows, errors


def _group(rows: Iterable[_Row]) -> dict[str, list[_Row]]:
    groups: dict[str, list[_Row]] = {}
    for row in rows:
        groups.setdefault(row.key, []).append(row)
    return groups


def import_catalog(uow: UnitOfWork, seller_id: int, source: str | Path) -> ImportSummary:
    """Import products, SKUs and stock from CSV text or a file; all or nothing."""
    text = Path(source).read_text(encoding="utf-8-sig") if isinstance(source, Path) else source
    rows, errors = parse_catalog(text)
    if errors and not rows:
        raise CatalogImportError(errors)
    # Rows that parsed are still checked against the database, so one report lists all.
    summary = ImportSummary()
    with uow:
        shop = uow.repos.sellers.shop_of(seller_id)
        if shop is None:
            raise NotFound(f"seller_id: no seller {seller_id} with a shop", field="seller_id")
        taken = uow.repos.catalog.existing_codes(r.sku.code for r in rows)
        locations = {str(loc.id): loc for loc in uow.repos.locations.of_seller(seller_id)}
        by_name = {loc.name: loc for loc in locations.values()}
        products: list[tuple[Product, list[_Row]]] = []
        for group in _group(rows).values():
            for row in group:
                if row.sku.code in taken:
                    errors.append(RowError(row.line, "sku", f"{row.sku.code} already exists"))
                if row.sku.price.currency != shop.currency:
                    errors.append(RowError(row.line, "currency",
                                           f"shop sells in {shop.currency}, not "
                                           f"{row.sku.price.currency}"))
                for loc_ref, _qty in row.stock:
                    if loc_ref not in locations and loc_ref not in by_name:
                        errors.append(RowError(row.line, "location",
                                               f"no location {loc_ref!r} of seller {seller_id}"))
            try:
                products.append((Product(seller_id, group[0].title,
                                         tuple(r.sku for r in group), group[0].category), group))
            except DomainError as exc:
                errors.append(RowError(group[0].line, exc.field or "product", exc.message))
        if errors:
            errors.sort(key=lambda e: e.line)
            raise CatalogImportError(errors)
        check_shop_currency(uow, seller_id, shop.currency)
        for product, group in products:
            listed = _insert_product(uow, product)
            summary.products += 1
            summary.skus += len(group)
            summary.product_ids.append(listed.product_id)
            for row in group:
                for loc_ref, qty in row.stock:
                    loc = locations.get(loc_ref) or by_name[loc_ref]
                    uow.repos.stock.set_on_hand(listed.sku_ids[row.sku.code], loc.id, qty)
                    summary.stock_rows += 1
                    summary.units += qty
    return summary
