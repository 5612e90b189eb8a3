"""A tiny hand-built network for router, baseline and CSV tests (exact numbers by hand)."""

from __future__ import annotations

import datetime as dt

from silkroute.domain.carriers import (
    Carrier,
    CarrierTier,
    NetworkSnapshot,
    RateCard,
    Sku,
    StockPosition,
    TransitTime,
)
from silkroute.domain.network import Location, LocationKind, OwnerKind, Zone
from silkroute.routing.policy import OrderLineRequest, OrderRequest

DAY = dt.date(2026, 3, 2)
# Zones: 1 and 2 are 17.6 km apart (band 0, local); 3 is ~300 km away; 4 nobody serves.
ZONES = [
    Zone(1, "Alpha", "KR", 37.5, 127.0, 1_000_000),
    Zone(2, "Beta", "KR", 37.5, 127.2, 500_000),
    Zone(3, "Gamma", "KR", 35.1, 129.0, 300_000),
    Zone(4, "Island", "KR", 33.5, 126.5, 100_000),
]
FAST = (0.0, 0.98, 1.0, 1.0, 1.0)
OK = (0.0, 0.9, 1.0, 1.0, 1.0)
ZERO = (0.0,) * 5


def carriers(c1_cap: int = 10, c2_cap: int = 10) -> list[Carrier]:
    c1 = Carrier(1, "Cheap local", CarrierTier.LOCAL, frozenset({1, 2}),
                 RateCard(2000, 0, (0, 500, None, None)), TransitTime((OK, OK, ZERO, ZERO)),
                 cutoff_hour=12, daily_capacity=c1_cap, on_time_rate=0.9)
    c2 = Carrier(2, "National", CarrierTier.NATIONAL, frozenset({1, 2, 3}),
                 RateCard(3000, 100, (0, 0, 0, 0)), TransitTime((FAST, FAST, FAST, FAST)),
                 cutoff_hour=20, daily_capacity=c2_cap, on_time_rate=0.98)
    return [c1, c2]


def locations() -> list[Location]:
    return [
        Location(1, "Alpha warehouse", LocationKind.WAREHOUSE, OwnerKind.SELLER, 1, 1,
                 37.5, 127.0, 100, 500, 8, 20, priority=2),
        Location(2, "Beta warehouse", LocationKind.WAREHOUSE, OwnerKind.SELLER, 1, 2,
                 37.5, 127.2, 100, 800, 8, 20, priority=1),
        Location(3, "Alpha store", LocationKind.STORE, OwnerKind.SELLER, 1, 1,
                 37.5, 127.0, 100, 1500, 10, 22, priority=3),
    ]


def network(stock: dict[tuple[int, int], int] | None = None, c1_cap: int = 10,
            c2_cap: int = 10) -> NetworkSnapshot:
    """SKU 1 and 2 weigh 1 kg. Default stock: SKU 1 at warehouses 1 and 2, SKU 2 at 2."""
    stock = stock if stock is not None else {(1, 1): 5, (1, 2): 5, (2, 2): 5}
    return NetworkSnapshot(
        "KR", "KRW", list(ZONES), locations(), carriers(c1_cap, c2_cap),
        [Sku(1, 1, 1000, "SKU-1"), Sku(2, 1, 1000, "SKU-2"), Sku(3, 1, 1000, "SKU-3")],
        [StockPosition(s, loc, q) for (s, loc), q in stock.items()])


def order(lines: list[tuple[int, int]], zone: int = 2, service: str = "standard",
          hour: float = 10.0, pickup: int | None = None) -> OrderRequest:
    z = ZONES[zone - 1]
    return OrderRequest(
        seller_id=1,
        lines=tuple(OrderLineRequest(s, f"SKU-{s}", q, 1000) for s, q in lines),
        latitude=z.latitude, longitude=z.longitude, zone_id=zone, service=service,
        pickup_location_id=pickup, order_ref="T1", placed_hour=hour, order_date=DAY)
