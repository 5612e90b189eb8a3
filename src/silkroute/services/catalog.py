"""Seller-side use cases: open a shop, add locations, list products, set stock."""

from __future__ import annotations

from dataclasses import dataclass

from silkroute.domain.catalog import Product, check_quantity
from silkroute.domain.errors import NotFound, ValidationError
from silkroute.domain.money import check_currency
from silkroute.domain.network import LocationKind, OwnerKind, check_coordinates
from silkroute.sim.cities import City, find_city, nearest_city
from silkroute.store.uow import UnitOfWork


@dataclass(frozen=True)
class ShopOpened:
    seller_id: int
    shop_id: int
    name: str
    currency: str


def open_shop(uow: UnitOfWork, name: str, currency: str, shop_name: str | None = None
              ) -> ShopOpened:
    """Register a seller and open its shop, which sells in one currency."""
    if not name or not name.strip():
        raise ValidationError("name must not be empty", field="name")
    cur = check_currency(currency)
    with uow:
        seller_id = uow.repos.sellers.add(name.strip())
        shop_id = uow.repos.sellers.add_shop(seller_id, (shop_name or name).strip(), cur)
    return ShopOpened(seller_id, shop_id, (shop_name or name).strip(), cur)


def resolve_place(city: str | None, latitude: float | None, longitude: float | None,
                  country: str = "KR") -> tuple[City, float, float]:
    """A city by name or by coordinates; returns the city and the point to use."""
    if latitude is not None or longitude is not None:
        if latitude is None or longitude is None:
            missing = "longitude" if longitude is None else "latitude"
            raise ValidationError(f"{missing} is required with the other coordinate",
                                  field=missing)
        check_coordinates(latitude, longitude)
        found = find_city(city, country) if city else nearest_city(latitude, longitude, country)
        return found, latitude, longitude
    if not city:
        raise ValidationError("city or latitude/longitude is required", field="city")
    found = find_city(city, country)
    return found, found.latitude, found.longitude


def ensure_zone(uow: UnitOfWork, city: City) -> int:
    return uow.repos.zones.ensure(city.geonameid, city.name, city.country, city.latitude,
                                  city.longitude, city.population)


@dataclass(frozen=True)
class LocationAdded:
    location_id: int
    name: str
    kind: str
    zone: str


def add_location(
    uow: UnitOfWork,
    seller_id: int | None,
    name: str,
    kind: str = "warehouse",
    *,
    city: str | None = None,
    latitude: float | None = None,
    longitude: float | None = None,
    daily_capacity: int = 1000,
    handling_cost: int = 0,
    owner_kind: str | None = None,
    country: str = "KR",
) -> LocationAdded:
    """Register a warehouse, store or pickup point of a seller (or the platform)."""
    if not name or not name.strip():
        raise ValidationError("name must not be empty", field="name")
    try:
        kind_v = LocationKind(kind)
    except ValueError:
        raise ValidationError(
            f"kind: {kind!r} is not one of {', '.join(k.value for k in LocationKind)}",
            field="kind") from None
    owner = OwnerKind(owner_kind) if owner_kind else (
        OwnerKind.SELLER if seller_id is not None else OwnerKind.PLATFORM)
    check_quantity(daily_capacity, "daily_capacity", allow_zero=True)
    check_quantity(handling_cost, "handling_cost", allow_zero=True)
    place, lat, lon = resolve_place(city, latitude, longitude, country)
    with uow:
        if seller_id is not None and uow.repos.sellers.get(seller_id) is None:
            raise NotFound(f"seller_id: no seller {seller_id}", field="seller_id")
        zone_id = ensure_zone(uow, place)
        loc_id = uow.repos.locations.add(
            name=name.strip(), kind=kind_v.value, owner_kind=owner.value, seller_id=seller_id,
            zone_id=zone_id, latitude=lat, longitude=lon, daily_capacity=daily_capacity,
            handling_cost=handling_cost)
    return LocationAdded(loc_id, name.strip(), kind_v.value, place.name)


@dataclass(frozen=True)
class ProductListed:
    product_id: int
    sku_ids: dict[str, int]


def _insert_product(uow: UnitOfWork, product: Product) -> ProductListed:
    product_id = uow.repos.catalog.add_product(product.seller_id, product.title.strip(),
                                               product.category)
    ids: dict[str, int] = {}
    for sku in product.skus:
        ids[sku.code] = uow.repos.catalog.add_sku(
            product_id=product_id, seller_id=product.seller_id, code=sku.code,
            attributes=dict(sku.attributes), price_amount=sku.price.amount,
            currency=sku.price.currency, weight_g=sku.weight_g,
            length_mm=sku.dimensions.length_mm, width_mm=sku.dimensions.width_mm,
            height_mm=sku.dimensions.height_mm)
    return ProductListed(product_id, ids)


def check_shop_currency(uow: UnitOfWork, seller_id: int, currency: str) -> None:
    shop = uow.repos.sellers.shop_of(seller_id)
    if shop is None:
        raise NotFound(f"seller_id: no seller {seller_id} with a shop", field="seller_id")
    if shop.currency != currency:
        raise ValidationError(
            f"currency: shop of seller {seller_id} sells in {shop.currency}, not {currency}",
            field="currency")


def list_product(uow: UnitOfWork, product: Product) -> ProductListed:
    """Put a product and its SKUs on sale; SKU codes are unique across the market."""
    with uow:
        check_shop_currency(uow, product.seller_id, product.skus[0].price.currency)
        taken = uow.repos.catalog.existing_codes(s.code for s in product.skus)
        if taken:
            raise ValidationError(f"sku: {sorted(taken)[0]} already exists", field="sku")
        return _insert_product(uow, product)


@dataclass(frozen=True)
class StockSet:
    sku: str
    location_id: int
    on_hand: int
    reserved: int

    @property
    def available(self) -> int:
        return self.on_hand - self.reserved


def set_stock(uow: UnitOfWork, sku_code: str, location_id: int, on_hand: int) -> StockSet:
    """Set the units on hand of a SKU at one of its seller's locations."""
    check_quantity(on_hand, "on_hand", allow_zero=True)
    with uow:
        sku = uow.repos.catalog.sku_by_code(sku_code)
        if sku is None:
            raise NotFound(f"sku: no SKU {sku_code!r}", field="sku")
        loc = uow.repos.locations.get(location_id)
        if loc is None:
            raise NotFound(f"location_id: no location {location_id}", field="location_id")
        if loc.seller_id is not None and loc.seller_id != sku.seller_id:
            raise ValidationError(
                f"location_id: location {location_id} belongs to another seller",
                field="location_id")
        if not uow.repos.stock.set_on_hand(sku.id, location_id, on_hand):
            row = uow.repos.stock.get(sku.id, location_id)
            raise ValidationError(
                f"on_hand: {on_hand} is below the {row.reserved} units reserved for orders",
                field="on_hand")
        row = uow.repos.stock.get(sku.id, location_id)
        return StockSet(sku_code, location_id, row.on_hand, row.reserved)
