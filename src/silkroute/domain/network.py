"""Network entities: zones (real cities) and locations (warehouses, stores, pickup points)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

from silkroute.domain.errors import ValidationError


class LocationKind(StrEnum):
    WAREHOUSE = "warehouse"
    STORE = "store"
    PICKUP_POINT = "pickup_point"
    FULFILMENT_CENTRE = "fulfilment_centre"


class OwnerKind(StrEnum):
    SELLER = "seller"
    PLATFORM = "platform"
    THIRD_PARTY = "third_party"


@dataclass(frozen=True, slots=True)
class Zone:
    """A delivery zone: a real city with coordinates and population."""

    id: int
    name: str
    country: str
    latitude: float
    longitude: float
    population: int


@dataclass(frozen=True, slots=True)
class Location:
    """A place that holds stock or hands parcels over."""

    id: int
    name: str
    kind: LocationKind
    owner_kind: OwnerKind
    owner_id: int | None
    zone_id: int
    latitude: float
    longitude: float
    daily_capacity: int
    handling_cost: int  # minor units of the network currency, per parcel
    opens_hour: int = 8
    closes_hour: int = 20
    priority: int = 0  # source priority (lower first), used by priority-based policies

    @property
    def is_pickup_point(self) -> bool:
        return self.kind in (LocationKind.STORE, LocationKind.PICKUP_POINT)


def check_coordinates(latitude: float, longitude: float) -> None:
    """Raise naming the field when a coordinate is out of range or not a number."""
    if not isinstance(latitude, (int, float)) or not -90.0 <= latitude <= 90.0:
        raise ValidationError(f"latitude must be between -90 and 90, got {latitude}",
                              field="latitude")
    if not isinstance(longitude, (int, float)) or not -180.0 <= longitude <= 180.0:
        raise ValidationError(f"longitude must be between -180 and 180, got {longitude}",
                              field="longitude")


EARTH_RADIUS_KM = 6371.0088


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in kilometres."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp = p2 - p1
    dl = math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(a)))
