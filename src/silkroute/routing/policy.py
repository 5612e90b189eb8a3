"""The FulfilmentPolicy interface that checkout calls, and the nearest-with-stock policy."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from silkroute.domain.errors import OutOfStock
from silkroute.domain.network import haversine_km


@dataclass(frozen=True, slots=True)
class OrderLineRequest:
    """One line of an order to fulfil: a SKU and a quantity."""

    sku_id: int
    sku_code: str
    quantity: int
    weight_g: int = 0


@dataclass(frozen=True, slots=True)
class OrderRequest:
    """Everything a policy may know about one seller's order at checkout."""

    seller_id: int
    lines: tuple[OrderLineRequest, ...]
    latitude: float
    longitude: float
    zone_id: int | None = None
    service: str = "standard"  # standard | member_next_day | pickup
    pickup_location_id: int | None = None
    order_ref: str = ""
    placed_hour: float | None = None  # local hour the order arrived (cut-offs); None: 10:00
    order_date: dt.date | None = None  # day the order arrived; None: today


@dataclass(frozen=True, slots=True)
class CandidateLocation:
    """A location of the seller and its available units per SKU of the order."""

    location_id: int
    latitude: float
    longitude: float
    available: Mapping[int, int]  # sku_id -> available units
    name: str = ""


@dataclass(frozen=True, slots=True)
class Shipment:
    """One parcel of a plan: which location ships which (sku_id, quantity) lines."""

    location_id: int
    lines: tuple[tuple[int, int], ...]
    carrier_id: int | None = None
    cost: int = 0
    service: str = "standard"
    promised_date: dt.date | None = None
    on_time_probability: float | None = None


@dataclass(frozen=True, slots=True)
class FulfilmentDecision:
    """A policy's answer: the shipments, and optional explanation for humans."""

    shipments: tuple[Shipment, ...]
    explanation: dict[str, object] = field(default_factory=dict)


class FulfilmentPolicy(Protocol):
    """Decides which location(s) ship an order; raises OutOfStock when none can."""

    name: str

    def decide(
        self, request: OrderRequest, candidates: Sequence[CandidateLocation]
    ) -> FulfilmentDecision: ...


class NearestWithStockPolicy:
    """Nearest location of the seller that holds every line; else fill nearest-first."""

    name = "nearest-with-stock"

    def decide(
        self, request: OrderRequest, candidates: Sequence[CandidateLocation]
    ) -> FulfilmentDecision:
        ranked = sorted(
            candidates,
            key=lambda c: (
                haversine_km(request.latitude, request.longitude, c.latitude, c.longitude),
                c.location_id,
            ),
        )
        for cand in ranked:
            if all(cand.available.get(ln.sku_id, 0) >= ln.quantity for ln in request.lines):
                lines = tuple((ln.sku_id, ln.quantity) for ln in request.lines)
                return FulfilmentDecision((Shipment(cand.location_id, lines),))
        # No single location: fill each line greedily from the nearest locations.
        parts: dict[int, list[tuple[int, int]]] = {}
        for ln in request.lines:
            need = ln.quantity
            total = sum(c.available.get(ln.sku_id, 0) for c in ranked)
            if total < need:
                raise OutOfStock(ln.sku_code, ln.quantity, total)
            for cand in ranked:
                take = min(need, cand.available.get(ln.sku_id, 0))
                if take > 0:
                    parts.setdefault(cand.location_id, []).append((ln.sku_id, take))
                    need -= take
                if need == 0:
                    break
        order = [c.location_id for c in ranked if c.location_id in parts]
        return FulfilmentDecision(tuple(Shipment(loc, tuple(parts[loc])) for loc in order))
