"""Buyer-side use cases: register a buyer and their delivery addresses."""

from __future__ import annotations

from dataclasses import dataclass

from silkroute.domain.errors import NotFound, ValidationError
from silkroute.services.catalog import ensure_zone, resolve_place
from silkroute.store.uow import UnitOfWork


@dataclass(frozen=True)
class BuyerRegistered:
    buyer_id: int
    address_id: int | None
    zone: str | None


def register_buyer(uow: UnitOfWork, name: str, *, city: str | None = None,
                   latitude: float | None = None, longitude: float | None = None,
                   line1: str = "", country: str = "KR") -> BuyerRegistered:
    """Register a buyer; with a city or coordinates, also their default address."""
    if not name or not name.strip():
        raise ValidationError("name must not be empty", field="name")
    place = None
    if city or latitude is not None or longitude is not None:
        place = resolve_place(city, latitude, longitude, country)
    with uow:
        buyer_id = uow.repos.buyers.add(name.strip())
        address_id = None
        if place is not None:
            city_v, lat, lon = place
            zone_id = ensure_zone(uow, city_v)
            address_id = uow.repos.buyers.add_address(
                buyer_id=buyer_id, line1=line1, city=city_v.name, zone_id=zone_id,
                latitude=lat, longitude=lon, is_default=True)
    return BuyerRegistered(buyer_id, address_id, place[0].name if place else None)


def add_address(uow: UnitOfWork, buyer_id: int, *, city: str | None = None,
                latitude: float | None = None, longitude: float | None = None,
                line1: str = "", default: bool = False, country: str = "KR") -> int:
    city_v, lat, lon = resolve_place(city, latitude, longitude, country)
    with uow:
        if uow.repos.buyers.get(buyer_id) is None:
            raise NotFound(f"buyer_id: no buyer {buyer_id}", field="buyer_id")
        zone_id = ensure_zone(uow, city_v)
        return uow.repos.buyers.add_address(
            buyer_id=buyer_id, line1=line1, city=city_v.name, zone_id=zone_id,
            latitude=lat, longitude=lon, is_default=default)
