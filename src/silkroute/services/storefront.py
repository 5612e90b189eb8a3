"""Catalogue browse and search for buyers: text, category, price range, seller, sort, pages."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from silkroute.domain.errors import NotFound, ValidationError
from silkroute.domain.money import check_currency
from silkroute.store import read_queries as rq
from silkroute.store.uow import UnitOfWork

MAX_PAGE = 100


@dataclass(frozen=True)
class Page:
    items: list[dict[str, Any]]
    total: int
    limit: int
    offset: int

    @property
    def next_offset(self) -> int | None:
        nxt = self.offset + len(self.items)
        return nxt if nxt < self.total else None


def check_page(limit: int, offset: int) -> None:
    if not 1 <= limit <= MAX_PAGE:
        raise ValidationError(f"limit must be between 1 and {MAX_PAGE}, got {limit}",
                              field="limit")
    if offset < 0:
        raise ValidationError(f"offset must be ≥ 0, got {offset}", field="offset")


def sku_item(row: Any) -> dict[str, Any]:
    return {"sku": row.code, "product_id": row.product_id, "title": row.title,
            "category": row.category, "seller_id": row.seller_id,
            "price": {"amount": int(row.price_amount), "currency": row.currency},
            "weight_g": row.weight_g, "attributes": dict(row.attributes or {}),
            "on_sale": bool(row.on_sale), "available": int(row.available)}


def search_catalogue(uow: UnitOfWork, filters: rq.SkuFilter, *, limit: int = 20,
                     offset: int = 0) -> Page:
    """One page of SKUs on sale that match every given filter."""
    check_page(limit, offset)
    if filters.sort not in rq.SORTS:
        raise ValidationError(f"sort: {filters.sort!r} is not one of {', '.join(rq.SORTS)}",
                              field="sort")
    if (filters.min_price is not None and filters.max_price is not None
            and filters.min_price > filters.max_price):
        raise ValidationError("min_price must not exceed max_price", field="min_price")
    if filters.currency:
        check_currency(filters.currency)
    with uow:
        rows, total = rq.search_skus(uow.conn, filters, limit, offset)
    return Page([sku_item(r) for r in rows], total, limit, offset)


def get_sku(uow: UnitOfWork, code: str) -> dict[str, Any]:
    with uow:
        row = rq.sku_by_code(uow.conn, code)
    if row is None or not row.on_sale:
        raise NotFound(f"sku: no SKU {code!r} on sale", field="sku")
    return sku_item(row)
