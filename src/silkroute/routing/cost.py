"""The cost model that every policy is judged by: fees, handling, lateness, splits, scarcity."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from silkroute.routing.index import NetworkIndex

SERVICES: tuple[str, ...] = ("standard", "member_next_day", "pickup")
# Reference amounts in KRW; other currencies are scaled (see `CostModel.for_currency`).
_PRICE_SCALE: dict[str, float] = {
    "KRW": 1.0, "CNY": 0.53, "JPY": 0.11, "USD": 0.073, "EUR": 0.068, "GBP": 0.058,
    "HKD": 0.57, "SGD": 0.098, "TWD": 2.35,
}


@dataclass(frozen=True, slots=True)
class CostBreakdown:
    """Cost of a parcel or a plan, in minor units of the network currency."""

    shipping: float = 0.0
    handling: float = 0.0
    lateness: float = 0.0
    split: float = 0.0
    opportunity: float = 0.0

    @property
    def total(self) -> float:
        return self.shipping + self.handling + self.lateness + self.split + self.opportunity

    @property
    def real(self) -> float:
        """What the plan costs the platform: everything except the opportunity term."""
        return self.shipping + self.handling + self.lateness + self.split

    def __add__(self, other: CostBreakdown) -> CostBreakdown:
        return CostBreakdown(self.shipping + other.shipping, self.handling + other.handling,
                             self.lateness + other.lateness, self.split + other.split,
                             self.opportunity + other.opportunity)

    def as_dict(self) -> dict[str, float]:
        return {"shipping": round(self.shipping, 2), "handling": round(self.handling, 2),
                "lateness": round(self.lateness, 2), "split": round(self.split, 2),
                "opportunity": round(self.opportunity, 2), "total": round(self.total, 2)}


@dataclass(frozen=True, slots=True)
class CostModel:
    """Penalties and promises. Lateness penalty = what a missed promise costs the platform
    (compensation voucher, support contact, churn), charged times P(late)."""

    currency: str = "KRW"
    split_penalty: float = 1_500.0
    late_standard: float = 2_500.0
    late_member: float = 5_000.0
    late_pickup: float = 2_500.0
    standard_days: int = 2
    member_days: int = 1
    pickup_days: int = 2
    # Built-in scarcity price (opportunity term, not a real cost): a parcel on a carrier or
    # at a location that has used a fraction u of its daily capacity is charged
    # scarcity_price x u^4, steering volume away from what is about to run out.
    scarcity_price: float = 1_000.0

    @classmethod
    def for_currency(cls, currency: str) -> CostModel:
        s = _PRICE_SCALE.get(currency.upper(), 0.073)
        return cls(currency.upper(), 1_500.0 * s, 2_500.0 * s, 5_000.0 * s, 2_500.0 * s,
                   scarcity_price=1_000.0 * s)

    def penalty(self, service: str) -> float:
        if service == "member_next_day":
            return self.late_member
        if service == "pickup":
            return self.late_pickup
        return self.late_standard

    def promise_days(self, service: str, next_day_possible: bool) -> int:
        """Members get next day where a carrier can keep it, else the standard promise."""
        if service == "member_next_day":
            return self.member_days if next_day_possible else self.standard_days
        if service == "pickup":
            return self.pickup_days
        return self.standard_days


@dataclass
class OpportunityCosts:
    """Shadow prices of scarce capacity: per carrier parcel and per unit of stock position
    (aligned with the index's stock CSR). Zero by default; a batch plan's duals fill them."""

    carrier: np.ndarray
    stock: np.ndarray
    active: bool = field(default=False)
    # What the router builds with these carrier prices folded in (per scenario, the routes'
    # priced views and the carriers' priced records: see `NetworkIndex.priced_view`): built
    # on first use or by `PricedRouter.set_prices`, dropped by `refresh` — the carrier
    # prices must not change without it.
    cache: dict[Any, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def zeros(cls, index: NetworkIndex) -> OpportunityCosts:
        return cls(np.zeros(index.n_carriers), np.zeros(len(index.stock0)), False)

    def refresh(self) -> None:
        """Call after writing prices so the router starts charging them (and stops using
        views built with the previous carrier prices)."""
        self.active = bool(self.carrier.any() or self.stock.any())
        self.cache.clear()


def on_time_probability(index: NetworkIndex, loc: int, car: int | None, zone: int,
                        promise_days: int, hour: float) -> float:
    """P(arrival within the promise): ships today only before the carrier's cut-off and the
    location's closing hour; a parcel collected at its own location is ready on that day."""
    closes = index.loc_closes[loc]
    if car is None:
        return 1.0 if (hour < closes or promise_days >= 1) else 0.0
    offset = 0 if hour < min(index.car_cutoff[car], closes) else 1
    days = promise_days - offset
    if days < 0:
        return 0.0
    return float(index.car_cdf[car, index.loc_band[loc, zone], min(days, index.car_cdf.shape[2]
                                                                     - 1)])


def parcel_cost(index: NetworkIndex, model: CostModel, loc: int, car: int | None, zone: int,
                weight_g: float, service: str, promise_days: int, hour: float,
                opportunity: float = 0.0) -> tuple[CostBreakdown, float]:
    """Cost breakdown and on-time probability of one parcel (the judge of every policy)."""
    p = on_time_probability(index, loc, car, zone, promise_days, hour)
    if car is None:
        fee = 0.0
    else:
        fee = float(index.car_fee[car, index.loc_band[loc, zone]]
                    + index.car_perkg[car] * weight_g / 1000.0)
    return CostBreakdown(fee, float(index.loc_handling[loc]),
                         model.penalty(service) * (1.0 - p), 0.0, opportunity), p
