"""Request and response models of the operators' network, fees and commission-rate routes."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from pydantic import BaseModel, Field

from silkroute.api.schemas import Strict

RATE_TEXT = r"^(0(\.[0-9]{1,4})?|1)$"
RateText = Annotated[str, Field(pattern=RATE_TEXT, examples=["0.05"])]


class NetworkOut(BaseModel):
    stamp: str | None = Field(description="Changes with every save; null before the first.")
    ref: str | None = Field(description="Where the saved network came from, e.g. "
                                        "`generated:KR:seed=7` or `import:KR`.")
    version: int | None = Field(description="How many times a network was saved here.")
    country: str | None
    currency: str | None
    zones: int
    locations: int
    locations_by_kind: dict[str, int]
    carriers: int
    carrier_zones: int = Field(description="(carrier, zone served) pairs.")
    router_active: bool = Field(description="Checkout routes with the silkroute router: a "
                                            "network with carriers is saved.")
    router_indexed: bool = Field(description="This worker has compiled the saved network "
                                             "into the router's index (the first checkout "
                                             "after a save does).")
    router_index_current: bool = Field(description="That index also knows every location "
                                                   "held now; false until a background "
                                                   "rebuild (started by a checkout after a "
                                                   "location was added) caught up.")


class ZoneOut(BaseModel):
    id: int = Field(description="The city's GeoNames id.")
    name: str
    country: str
    latitude: float
    longitude: float
    population: int
    locations: int
    carriers: int = Field(description="Carriers serving the zone.")


class NetworkLocationOut(BaseModel):
    id: int
    name: str
    kind: str
    owner_kind: str
    seller_id: int | None
    zone_id: int
    latitude: float
    longitude: float
    daily_capacity: int
    handling_cost: int
    opens_hour: int
    closes_hour: int
    network_ref: str | None = Field(description="The network save that brought it; null for "
                                                "a location registered by a seller.")
    external_id: int | None = Field(description="Its id in that network.")


class CommissionRateIn(Strict):
    rate: Annotated[Decimal, Field(ge=0, le=1, max_digits=5, decimal_places=4,
                                   allow_inf_nan=False, examples=["0.05"])] = Field(
        description="A decimal in [0, 1] with at most 4 places (a string, e.g. \"0.05\", or "
                    "a number).")


class CommissionRateOut(BaseModel):
    category: str
    rate: RateText


class CommissionRatesOut(BaseModel):
    default: RateText = Field(description="Paid by every category without a rate of its own.")
    by_category: dict[str, RateText]


class FeesOut(BaseModel):
    default_commission_rate: RateText
    membership_monthly_fees: dict[str, int] = Field(
        description="The membership club's monthly fee per currency, in minor units.")
    auto_confirm_days: int = Field(description="Delivered orders are confirmed (escrow "
                                               "released) after this many days.")
    reservation_minutes: int = Field(description="Unpaid reserved orders are cancelled "
                                                 "after this many minutes.")
    pickup_days: int = Field(description="Pickups not collected in this many days are "
                                         "returned and refunded.")
