"""Small builders for integration tests: a seller with locations and SKUs, a buyer."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from silkroute.domain.catalog import Product, Sku
from silkroute.domain.money import Money
from silkroute.services.buyers import register_buyer
from silkroute.services.catalog import add_location, list_product, open_shop, set_stock
from silkroute.store.uow import UnitOfWork

UowFactory = Callable[[], UnitOfWork]


@dataclass
class Market:
    seller_id: int
    seoul: int
    busan: int
    buyer_seoul: int
    buyer_busan: int


def small_market(uow: UowFactory, skus: dict[str, int] | None = None,
                 stock: dict[tuple[str, str], int] | None = None) -> Market:
    """One KRW seller with a Seoul and a Busan warehouse, two buyers, some SKUs."""
    skus = skus or {"TEA-1": 12000, "MUG-1": 8000}
    seller = open_shop(uow(), "Tea House", "KRW").seller_id
    seoul = add_location(uow(), seller, "Seoul WH", city="Seoul").location_id
    busan = add_location(uow(), seller, "Busan WH", city="Busan").location_id
    list_product(uow(), Product(seller, "Tea things", tuple(
        Sku(code, Money(price, "KRW"), 300) for code, price in skus.items())))
    for (code, where), qty in (stock or {}).items():
        set_stock(uow(), code, seoul if where == "seoul" else busan, qty)
    b1 = register_buyer(uow(), "Min-jun", city="Seoul").buyer_id
    b2 = register_buyer(uow(), "Seo-yeon", city="Busan").buyer_id
    return Market(seller, seoul, busan, b1, b2)


def stock_of(uow: UowFactory, sku: str, location: int) -> tuple[int, int]:
    with uow() as u:
        row = u.repos.catalog.sku_by_code(sku)
        s = u.repos.stock.get(row.id, location)
        return (s.on_hand, s.reserved)
