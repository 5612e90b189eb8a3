"""Carriers (rate cards, transit times, cut-offs, capacity) and the network snapshot they form."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from silkroute.domain.errors import ValidationError
from silkroute.domain.network import Location, Zone

# Distance bands shared by every rate card and transit table: upper bounds in km.
BAND_LIMITS_KM: tuple[float, ...] = (30.0, 150.0, 400.0, float("inf"))
BAND_NAMES: tuple[str, ...] = ("local", "regional", "long", "very_long")
N_BANDS = len(BAND_LIMITS_KM)
# Transit tables give P(delivered within d days of pick-up) for d = 0 .. TRANSIT_DAYS-1.
TRANSIT_DAYS = 5


def band_of(distance_km: float) -> int:
    """Index of the distance band that a distance falls in."""
    for i, limit in enumerate(BAND_LIMITS_KM):
        if distance_km <= limit:
            return i
    return N_BANDS - 1


class CarrierTier(StrEnum):
    NATIONAL = "national"
    REGIONAL = "regional"
    LOCAL = "local"
    SAME_DAY = "same_day"


@dataclass(frozen=True, slots=True)
class RateCard:
    """Fee of one parcel: base + per kg (pro rata) + a surcharge for the distance band.

    `band_fees[b]` is None where the carrier does not offer band `b` at all. Amounts are
    minor units of the network currency.
    """

    base_fee: int
    per_kg: int
    band_fees: tuple[int | None, ...]

    def __post_init__(self) -> None:
        if len(self.band_fees) != N_BANDS:
            raise ValidationError(f"band_fees: need {N_BANDS} bands, got {len(self.band_fees)}",
                                  field="band_fees")
        if self.base_fee < 0 or self.per_kg < 0:
            raise ValidationError("rate card amounts must not be negative", field="base_fee")

    def fee(self, weight_g: int, band: int) -> float | None:
        """Fee in minor units for a parcel, or None when the band is not offered."""
        surcharge = self.band_fees[band]
        if surcharge is None:
            return None
        return self.base_fee + surcharge + self.per_kg * weight_g / 1000


@dataclass(frozen=True, slots=True)
class TransitTime:
    """Per distance band, the cumulative probability of delivery within d days of pick-up."""

    cdf: tuple[tuple[float, ...], ...]

    def __post_init__(self) -> None:
        if len(self.cdf) != N_BANDS:
            raise ValidationError(f"transit: need {N_BANDS} bands", field="transit")
        for b, row in enumerate(self.cdf):
            if len(row) != TRANSIT_DAYS:
                raise ValidationError(f"transit band {b}: need {TRANSIT_DAYS} days",
                                      field="transit")
            prev = 0.0
            for p in row:
                if not prev <= p <= 1.0:
                    raise ValidationError(
                        f"transit band {b}: probabilities must rise from 0 to at most 1, "
                        f"got {list(row)}", field="transit")
                prev = p

    def within(self, band: int, days: int) -> float:
        """P(delivered within `days` days of pick-up) in `band`; 0 for negative days."""
        if days < 0:
            return 0.0
        return self.cdf[band][min(days, TRANSIT_DAYS - 1)]


@dataclass(frozen=True, slots=True)
class Carrier:
    """A partner logistics company: coverage, prices, speed, cut-off and daily capacity."""

    id: int
    name: str
    tier: CarrierTier
    zones: frozenset[int]
    rate_card: RateCard
    transit: TransitTime
    cutoff_hour: float
    daily_capacity: int
    on_time_rate: float
    max_weight_g: int = 30_000

    def serves(self, zone_id: int) -> bool:
        return zone_id in self.zones


@dataclass(frozen=True, slots=True)
class Sku:
    """A stock-keeping unit as the router sees it: its seller and shipping weight."""

    id: int
    seller_id: int
    weight_g: int
    code: str = ""


@dataclass(frozen=True, slots=True)
class StockPosition:
    """Units of a SKU on hand at a location."""

    sku_id: int
    location_id: int
    quantity: int


@dataclass(slots=True)
class NetworkSnapshot:
    """Everything the router needs, as plain objects: what a DB load or a generator yields."""

    country: str
    currency: str
    zones: list[Zone]
    locations: list[Location]
    carriers: list[Carrier]
    skus: list[Sku] = field(default_factory=list)
    stock: list[StockPosition] = field(default_factory=list)
    seed: int | None = None
