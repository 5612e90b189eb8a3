"""Per-tenant reads and checks: a buyer's or seller's own orders, addresses, stock, products."""

from __future__ import annotations

from typing import Any

from silkroute.domain.catalog import Dimensions, Product, Sku
from silkroute.domain.errors import NotFound
from silkroute.domain.money import Money
from silkroute.domain.orders import parse_state
from silkroute.services.catalog import ProductListed, StockSet, list_product, set_stock
from silkroute.services.checkout import Cancelled, cancel
from silkroute.services.queries import OrderView, get_order
from silkroute.services.storefront import Page, check_page, sku_item
from silkroute.store import read_queries as rq
from silkroute.store.auth_repositories import AccountRepo
from silkroute.store.uow import UnitOfWork


def order_summary(row: Any) -> dict[str, Any]:
    return {"id": row.id, "checkout_id": row.checkout_id, "buyer_id": row.buyer_id,
            "seller_id": row.seller_id, "state": row.state, "currency": row.currency,
            "items_amount": int(row.items_amount), "shipping_amount": int(row.shipping_amount),
            "service": row.service,
            "created_at": row.created_at.isoformat() if row.created_at else None}


def list_orders(uow: UnitOfWork, *, buyer_id: int | None = None, seller_id: int | None = None,
                state: str | None = None, limit: int = 20, offset: int = 0) -> Page:
    """A page of orders, newest first, narrowed to a buyer, a seller and/or a state."""
    check_page(limit, offset)
    if state is not None:
        parse_state(state)
    with uow:
        rows, total = rq.orders_page(uow.conn, buyer_id=buyer_id, seller_id=seller_id,
                                     state=state, limit=limit, offset=offset)
    return Page([order_summary(r) for r in rows], total, limit, offset)


def _not_found(order_id: int) -> NotFound:
    return NotFound(f"order_id: no order {order_id}", field="order_id")


def order_of_buyer(uow: UnitOfWork, buyer_id: int, order_id: int) -> OrderView:
    """The order if this buyer placed it; another buyer's order does not exist for them."""
    view = get_order(uow, order_id)
    if view.buyer_id != buyer_id:
        raise _not_found(order_id)
    return view


def order_of_seller(uow: UnitOfWork, seller_id: int, order_id: int) -> OrderView:
    view = get_order(uow, order_id)
    if view.seller_id != seller_id:
        raise _not_found(order_id)
    return view


def cancel_order_of_buyer(uow_factory: Any, buyer_id: int, order_id: int) -> Cancelled:
    """Cancel one of the buyer's own unpaid orders."""
    order_of_buyer(uow_factory(), buyer_id, order_id)
    return cancel(uow_factory(), order_id)


def addresses(uow: UnitOfWork, buyer_id: int) -> list[dict[str, Any]]:
    with uow:
        rows = rq.addresses_of(uow.conn, buyer_id)
    return [{"id": a.id, "line1": a.line1, "city": a.city, "zone_id": a.zone_id,
             "latitude": a.latitude, "longitude": a.longitude, "is_default": bool(a.is_default)}
            for a in rows]


def shop(uow: UnitOfWork, seller_id: int) -> dict[str, Any]:
    with uow:
        row = uow.repos.sellers.shop_of(seller_id)
    if row is None:
        raise NotFound(f"seller_id: seller {seller_id} has no shop", field="seller_id")
    return {"id": row.id, "seller_id": row.seller_id, "name": row.name,
            "currency": row.currency}


def location_item(row: Any) -> dict[str, Any]:
    return {"id": row.id, "name": row.name, "kind": row.kind, "zone_id": row.zone_id,
            "latitude": row.latitude, "longitude": row.longitude,
            "daily_capacity": row.daily_capacity, "handling_cost": row.handling_cost}


def locations(uow: UnitOfWork, seller_id: int) -> list[dict[str, Any]]:
    with uow:
        rows = uow.repos.locations.of_seller(seller_id)
    return [location_item(r) for r in rows]


def list_seller_product(uow_factory: Any, seller_id: int, title: str, category: str,
                        skus: list[dict[str, Any]]) -> ProductListed:
    """Put a product on sale in the seller's shop; prices default to the shop's currency."""
    currency = shop(uow_factory(), seller_id)["currency"]
    built = tuple(
        Sku(s["code"], Money(s["price"], s.get("currency") or currency), s["weight_g"],
            Dimensions(s.get("length_mm", 0), s.get("width_mm", 0), s.get("height_mm", 0)),
            dict(s.get("attributes") or {}))
        for s in skus)
    return list_product(uow_factory(), Product(seller_id, title, built, category))


def products(uow: UnitOfWork, seller_id: int, *, limit: int = 20, offset: int = 0) -> Page:
    check_page(limit, offset)
    with uow:
        rows, total = rq.products_of_seller(uow.conn, seller_id, limit, offset)
        sku_rows = rq.skus_of_products(uow.conn, [r.id for r in rows])
    by_product: dict[int, list[dict[str, Any]]] = {}
    for s in sku_rows:
        by_product.setdefault(s.product_id, []).append(sku_item(s))
    items = [{"id": r.id, "title": r.title, "category": r.category,
              "skus": by_product.get(r.id, [])} for r in rows]
    return Page(items, total, limit, offset)


def set_stock_of_seller(uow_factory: Any, seller_id: int, sku_code: str, location_id: int,
                        on_hand: int) -> StockSet:
    """Set stock of one of the seller's SKUs at one of the seller's locations."""
    with uow_factory() as uow:
        sku = uow.repos.catalog.sku_by_code(sku_code)
        loc = uow.repos.locations.get(location_id)
    if sku is None or sku.seller_id != seller_id:
        raise NotFound(f"sku: no SKU {sku_code!r} in your shop", field="sku")
    if loc is None or loc.seller_id != seller_id:
        raise NotFound(f"location_id: no location {location_id} of yours", field="location_id")
    return set_stock(uow_factory(), sku_code, location_id, on_hand)


def stock(uow: UnitOfWork, seller_id: int, location_id: int | None = None
          ) -> list[dict[str, Any]]:
    with uow:
        if location_id is not None:
            loc = uow.repos.locations.get(location_id)
            if loc is None or loc.seller_id != seller_id:
                raise NotFound(f"location_id: no location {location_id} of yours",
                               field="location_id")
        rows = rq.stock_of_seller(uow.conn, seller_id, location_id)
    return [{"sku": r.sku, "location_id": r.location_id, "on_hand": r.on_hand,
             "reserved": r.reserved, "available": r.on_hand - r.reserved} for r in rows]


def market_summary(uow: UnitOfWork) -> dict[str, Any]:
    """Operator's overview: how many of everything, orders by state, accounts by role."""
    with uow:
        counts = rq.market_counts(uow.conn)
        by_state = uow.repos.orders.count_by_state()
        roles = AccountRepo(uow.conn).count_by_role()
    return {"counts": counts, "orders_by_state": dict(sorted(by_state.items())),
            "accounts_by_role": dict(sorted(roles.items()))}
