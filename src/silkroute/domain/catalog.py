"""Catalogue: sellers, shops, products and their SKUs, buyers and addresses, stock."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from silkroute.domain.errors import ValidationError
from silkroute.domain.money import Money

SKU_CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-]{0,63}$")
MAX_LINE_QUANTITY = 1000


@dataclass(frozen=True, slots=True)
class Seller:
    id: int
    name: str


@dataclass(frozen=True, slots=True)
class Shop:
    """A seller's storefront; it sells in one currency."""

    id: int
    seller_id: int
    name: str
    currency: str


@dataclass(frozen=True, slots=True)
class Dimensions:
    length_mm: int
    width_mm: int
    height_mm: int

    def __post_init__(self) -> None:
        for name in ("length_mm", "width_mm", "height_mm"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValidationError(f"{name} must be a whole number ≥ 0, got {value!r}",
                                      field=name)


@dataclass(frozen=True, slots=True)
class Sku:
    """A sellable variant of a product: its own code, price, weight and size."""

    code: str
    price: Money
    weight_g: int
    dimensions: Dimensions = Dimensions(0, 0, 0)
    attributes: Mapping[str, str] = field(default_factory=dict)
    id: int | None = None

    def __post_init__(self) -> None:
        check_sku_code(self.code)
        if self.price.amount <= 0:
            raise ValidationError(f"price must be positive, got {self.price}", field="price")
        if isinstance(self.weight_g, bool) or not isinstance(self.weight_g, int) \
                or self.weight_g < 0:
            raise ValidationError(f"weight_g must be a whole number ≥ 0, got {self.weight_g!r}",
                                  field="weight_g")


@dataclass(frozen=True, slots=True)
class Product:
    """A product of exactly one seller, sold as one or more SKUs in one currency."""

    seller_id: int
    title: str
    skus: tuple[Sku, ...]
    category: str = "general"
    id: int | None = None

    def __post_init__(self) -> None:
        if not self.title.strip():
            raise ValidationError("title must not be empty", field="title")
        if not self.skus:
            raise ValidationError(f"product {self.title!r} needs at least one SKU", field="skus")
        codes = [s.code for s in self.skus]
        dupes = sorted({c for c in codes if codes.count(c) > 1})
        if dupes:
            raise ValidationError(f"duplicate SKU {dupes[0]} in product {self.title!r}",
                                  field="sku")
        currencies = {s.price.currency for s in self.skus}
        if len(currencies) > 1:
            raise ValidationError(
                f"product {self.title!r} mixes currencies {sorted(currencies)}", field="currency"
            )


def check_sku_code(code: str) -> str:
    if not isinstance(code, str) or not SKU_CODE.fullmatch(code):
        raise ValidationError(
            f"sku: {code!r} is not a valid SKU code (letters, digits, '.', '_', '-', ≤64)",
            field="sku",
        )
    return code


def check_quantity(quantity: int, field: str = "quantity", *, allow_zero: bool = False) -> int:
    """A line quantity: a whole number, positive (or ≥ 0 for stock) and bounded."""
    if isinstance(quantity, bool) or not isinstance(quantity, int):
        raise ValidationError(f"{field} must be a whole number, got {quantity!r}", field=field)
    low = 0 if allow_zero else 1
    if quantity < low:
        need = "≥ 0" if allow_zero else "positive"
        raise ValidationError(f"{field} must be {need}, got {quantity}", field=field)
    if not allow_zero and quantity > MAX_LINE_QUANTITY:
        raise ValidationError(
            f"{field} must be at most {MAX_LINE_QUANTITY}, got {quantity}", field=field
        )
    return quantity


@dataclass(frozen=True, slots=True)
class StockLevel:
    """Units of one SKU at one location: on hand and reserved for orders."""

    on_hand: int
    reserved: int = 0

    def __post_init__(self) -> None:
        for name in ("on_hand", "reserved"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValidationError(f"{name} must be a whole number, got {value!r}",
                                      field=name)
        if self.reserved < 0:
            raise ValidationError(f"reserved must be ≥ 0, got {self.reserved}", field="reserved")
        if self.on_hand < self.reserved:
            raise ValidationError(
                f"on hand ({self.on_hand}) cannot be below reserved ({self.reserved})",
                field="on_hand",
            )

    @property
    def available(self) -> int:
        return self.on_hand - self.reserved

    def reserve(self, quantity: int) -> StockLevel:
        check_quantity(quantity)
        if quantity > self.available:
            raise ValidationError(
                f"cannot reserve {quantity}: only {self.available} available", field="quantity"
            )
        return StockLevel(self.on_hand, self.reserved + quantity)

    def release(self, quantity: int) -> StockLevel:
        check_quantity(quantity)
        if quantity > self.reserved:
            raise ValidationError(
                f"cannot release {quantity}: only {self.reserved} reserved", field="quantity"
            )
        return StockLevel(self.on_hand, self.reserved - quantity)


@dataclass(frozen=True, slots=True)
class Buyer:
    id: int
    name: str


@dataclass(frozen=True, slots=True)
class Address:
    """A buyer's delivery address, resolved to a zone (city) and coordinates."""

    buyer_id: int
    city: str
    zone_id: int
    latitude: float
    longitude: float
    line1: str = ""
    id: int | None = None
