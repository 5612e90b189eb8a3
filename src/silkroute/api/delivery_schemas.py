"""Request and response models of the delivery routes: parcels, events, pickup, refunds, jobs."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field, StringConstraints

from silkroute.api.schemas import MAX_AMOUNT, NO_NUL, Name, Strict


class ParcelOut(BaseModel):
    id: int
    order_id: int
    tracking_number: str
    carrier_id: int
    state: str
    location_id: int
    pickup_location_id: int | None
    weight_g: int
    created_at: str | None
    picked_up_at: str | None
    delivered_at: str | None
    closed_at: str | None


class ParcelEventOut(BaseModel):
    event_id: str
    event: str
    occurred_at: str | None
    received_at: str | None
    applied: bool = Field(description="False for a late or repeated event: kept in the "
                                      "timeline, changes nothing.")
    outcome: str


class ParcelWithEvents(ParcelOut):
    events: list[ParcelEventOut]


class HistoryOut(BaseModel):
    from_state: str | None = Field(alias="from")
    to: str
    note: str
    at: str | None


class TrackingOut(BaseModel):
    order_id: int
    state: str
    service: str
    pickup_location_id: int | None
    parcels: list[ParcelWithEvents]
    history: list[HistoryOut]


class HandedOverOut(BaseModel):
    order_id: int
    state: str
    parcels: list[ParcelOut]


class EventOutcomeOut(BaseModel):
    duplicate: bool = Field(description="True when this event id was received before: "
                                        "nothing changed.")
    event_id: str
    applied: bool
    outcome: str
    parcel_id: int
    tracking_number: str
    parcel_state: str
    order_id: int
    order_state: str


class ManifestParcel(BaseModel):
    id: int
    tracking_number: str
    order_id: int
    state: str
    weight_g: int
    service: str
    to_zone_id: int
    to_latitude: float
    to_longitude: float
    pickup_location_id: int | None


class ManifestStop(BaseModel):
    location_id: int
    name: str
    zone_id: int
    parcels: list[ManifestParcel]


class ManifestOut(BaseModel):
    carrier_id: int
    date: str
    parcels: int
    weight_g: int
    stops: list[ManifestStop]


class ReleasedOut(BaseModel):
    order_id: int
    state: Literal["completed"] = "completed"
    hold: int
    seller: int
    carrier: int
    platform: int
    currency: str


class RefundIn(Strict):
    amount: Annotated[int, Field(gt=0, le=MAX_AMOUNT)] | None = Field(
        None, description="Minor units; default: everything not refunded yet.")
    reason: Annotated[str, StringConstraints(max_length=1000, pattern=NO_NUL)] = ""


class RefundRequestOut(BaseModel):
    id: int
    order_id: int
    buyer_id: int
    amount: int | None
    reason: str
    state: str
    refund_id: int | None
    created_at: str | None
    decided_at: str | None


class PickupCodeOut(BaseModel):
    order_id: int
    code: str = Field(description="Six digits to show at the store.")
    location_id: int
    location: str
    ready_since: str | None
    attempts_left: int


class CollectIn(Strict):
    code: Annotated[str, StringConstraints(min_length=1, max_length=20, pattern=NO_NUL)]


class CollectedOut(BaseModel):
    order_id: int
    state: str
    parcels: int


class ReturnReceivedOut(BaseModel):
    order_id: int
    state: str
    units_restocked: int
    refunded: int


class StatementLine(BaseModel):
    posting_id: int
    amount: int
    currency: str
    kind: str
    reference: str
    at: str | None


class StatementOut(BaseModel):
    seller_id: int
    balances: dict[str, int] = Field(description="Payable balance per currency.")
    items: list[StatementLine]
    total: int
    limit: int
    offset: int
    next_offset: int | None


class PayoutOut(BaseModel):
    id: int
    batch_id: int
    amount: int
    currency: str
    status: str
    provider_ref: str | None
    at: str | None


class CarrierIn(Strict):
    name: Name
    id: Annotated[int, Field(ge=1, le=2**31 - 1)] | None = Field(
        None, description="The carrier's id; default: the next free one.")
    daily_capacity: Annotated[int, Field(ge=0, le=10**9)] = 10_000
    base_fee: Annotated[int, Field(ge=0, le=10**9)] = 3000
    per_kg: Annotated[int, Field(ge=0, le=10**9)] = 500
    tier: Literal["national", "regional", "local", "same_day"] = "national"


class CarrierOut(BaseModel):
    id: int
    name: str
    tier: str
    daily_capacity: int
    on_time_rate: float
    base_fee: int
    per_kg: int
    accounts: int
    has_webhook_secret: bool


class CarrierAccountIn(Strict):
    name: Name | None = None


class CarrierAccountOut(BaseModel):
    account_id: int
    carrier_id: int
    token: str = Field(description="Shown once.")
    token_id: int
    webhook_secret: str | None = Field(description="Shown once, when this call set it; null "
                                                   "when the carrier already had one.")


class SecretOut(BaseModel):
    carrier_id: int
    webhook_secret: str = Field(description="Shown once; the previous secret stops working.")


class JobsIn(Strict):
    only: list[Literal["reservations", "pickups", "settle", "auto_confirm", "payouts"]] | None \
        = None


class JobsOut(BaseModel):
    reservations_expired: list[int]
    pickups_expired: list[int]
    refunds_settled: list[int]
    auto_confirmed: list[int]
    payout_batch_id: int | None
    payouts: int
    paid_out: dict[str, int]


class LedgerCheckOut(BaseModel):
    ok: bool
    violations: list[str]
    transactions: int
    postings: int
    accounts: int
