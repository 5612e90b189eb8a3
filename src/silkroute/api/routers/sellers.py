"""Seller routes: open a shop, locations, products and SKUs, CSV import, stock, own orders."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from starlette.concurrency import run_in_threadpool

from silkroute.api.auth import ReadUows, Seller, Uows, seller_id_of
from silkroute.api.errors import ERROR_RESPONSES, NOT_FOUND, ImportErrorBody
from silkroute.api.routers.common import (
    Limit,
    Offset,
    OrderIdPath,
    StateFilter,
    order_out,
    page_out,
    registered,
)
from silkroute.api.schemas import (
    MAX_INT,
    Created,
    ImportOut,
    LocationIn,
    LocationOut,
    OrderOut,
    OrderSummary,
    PageOut,
    ProductCreated,
    ProductIn,
    ProductOut,
    Registered,
    ShopOpening,
    ShopOut,
    SkuCode,
    StockIn,
    StockOut,
)
from silkroute.domain.errors import ValidationError
from silkroute.services import listings
from silkroute.services.accounts import open_shop_account
from silkroute.services.catalog import add_location
from silkroute.services.catalog_import import import_catalog

router = APIRouter(tags=["sellers"], responses=ERROR_RESPONSES)
LocationIdPath = Annotated[int, Path(ge=1, le=MAX_INT, description="Location id.")]
MAX_CSV_BYTES = 5 * 1024 * 1024


@router.post("/api/v1/sellers", response_model=Registered, status_code=201,
             summary="Open a shop: a seller account, its shop and its first API token")
def open_shop(body: ShopOpening, uows: Uows) -> Registered:
    return registered(open_shop_account(uows(), body.name, body.currency.upper(),
                                        body.shop_name))


@router.get("/api/v1/seller/shop", response_model=ShopOut, summary="My shop")
def my_shop(principal: Seller, uows: ReadUows) -> dict[str, object]:
    return listings.shop(uows(), seller_id_of(principal))


# ---------------------------------------------------------------------------- locations
@router.get("/api/v1/seller/locations", response_model=list[LocationOut],
            summary="My warehouses, stores and pickup points")
def my_locations(principal: Seller, uows: ReadUows) -> list[dict[str, object]]:
    return listings.locations(uows(), seller_id_of(principal))


@router.post("/api/v1/seller/locations", response_model=Created, status_code=201,
             summary="Register a warehouse, store or pickup point")
def new_location(principal: Seller, uows: Uows, body: LocationIn) -> Created:
    res = add_location(uows(), seller_id_of(principal), body.name, body.kind, city=body.city,
                       latitude=body.latitude, longitude=body.longitude,
                       daily_capacity=body.daily_capacity, handling_cost=body.handling_cost,
                       country=body.country.upper())
    return Created(id=res.location_id)


# ----------------------------------------------------------------------------- products
@router.get("/api/v1/seller/products", response_model=PageOut[ProductOut],
            summary="My products with their SKUs")
def my_products(principal: Seller, uows: ReadUows, limit: Limit = 20, offset: Offset = 0
                ) -> dict[str, object]:
    return page_out(listings.products(uows(), seller_id_of(principal), limit=limit,
                                      offset=offset))


@router.post("/api/v1/seller/products", response_model=ProductCreated, status_code=201,
             summary="List a product and its SKUs")
def new_product(principal: Seller, uows: Uows, body: ProductIn) -> ProductCreated:
    res = listings.list_seller_product(uows, seller_id_of(principal), body.title,
                                       body.category, [s.model_dump() for s in body.skus])
    return ProductCreated(product_id=res.product_id, sku_ids=res.sku_ids)


@router.post(
    "/api/v1/seller/catalog/imports", response_model=ImportOut, status_code=201,
    responses={422: {"model": ImportErrorBody,
                     "description": "Bad rows (`invalid_catalog`), each with its line; "
                                    "nothing was imported."}},
    openapi_extra={"requestBody": {"required": True, "content": {
        "text/csv": {"schema": {"type": "string"}}}}},
    summary="Import products, SKUs and stock from CSV: all rows or none")
async def import_csv(principal: Seller, uows: Uows, request: Request) -> ImportOut:
    raw = await request.body()
    if len(raw) > MAX_CSV_BYTES:
        raise ValidationError(f"body: the CSV is larger than {MAX_CSV_BYTES} bytes",
                              field="body")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ValidationError("body: the CSV is not UTF-8 text", field="body") from None
    if "\x00" in text:
        raise ValidationError("body: the CSV contains a NUL character", field="body")
    res = await run_in_threadpool(import_catalog, uows(), seller_id_of(principal), text)
    return ImportOut(products=res.products, skus=res.skus, stock_rows=res.stock_rows,
                     units=res.units, product_ids=res.product_ids)


# -------------------------------------------------------------------------------- stock
@router.get("/api/v1/seller/stock", response_model=list[StockOut], responses=NOT_FOUND,
            summary="Stock of my SKUs at my locations")
def my_stock(principal: Seller, uows: ReadUows,
             location_id: Annotated[int | None, Query(ge=1, le=MAX_INT)] = None
             ) -> list[dict[str, object]]:
    return listings.stock(uows(), seller_id_of(principal), location_id)


@router.put("/api/v1/seller/locations/{location_id}/stock/{sku}", response_model=StockOut,
            responses=NOT_FOUND, summary="Set the units on hand of a SKU at a location")
def put_stock(principal: Seller, uows: Uows, location_id: LocationIdPath,
              sku: Annotated[SkuCode, Path()], body: StockIn) -> StockOut:
    res = listings.set_stock_of_seller(uows, seller_id_of(principal), sku, location_id,
                                       body.on_hand)
    return StockOut(sku=res.sku, location_id=res.location_id, on_hand=res.on_hand,
                    reserved=res.reserved, available=res.available)


# ------------------------------------------------------------------------------- orders
@router.get("/api/v1/seller/orders", response_model=PageOut[OrderSummary],
            summary="Orders of my shop, newest first (filter state=reserved/paid to ship)")
def shop_orders(principal: Seller, uows: ReadUows, state: StateFilter = None, limit: Limit = 20,
                offset: Offset = 0) -> dict[str, object]:
    return page_out(listings.list_orders(uows(), seller_id=seller_id_of(principal),
                                         state=state, limit=limit, offset=offset))


@router.get("/api/v1/seller/orders/{order_id}", response_model=OrderOut, responses=NOT_FOUND,
            summary="One order of my shop")
def shop_order(principal: Seller, uows: ReadUows, order_id: OrderIdPath) -> OrderOut:
    return order_out(listings.order_of_seller(uows(), seller_id_of(principal), order_id))
