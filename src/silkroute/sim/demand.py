"""Generate a day of orders: population-weighted destinations, Zipf SKUs, a daily arrival curve."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

from silkroute.domain.carriers import NetworkSnapshot
from silkroute.domain.errors import ValidationError
from silkroute.routing.policy import OrderLineRequest, OrderRequest
from silkroute.sim.network import sku_popularity

# Relative order intensity per hour of the day (00..23) outside the configurable peak:
# quiet nights, a morning ramp, a lunch bump and a long evening.
BASE_CURVE = np.array([2.0, 1.2, 0.7, 0.4, 0.3, 0.4, 0.8, 1.6, 2.6, 3.4, 4.0, 4.4,
                       4.8, 4.4, 4.0, 3.9, 3.9, 4.0, 4.2, 4.6, 5.0, 5.2, 4.6, 3.4])
LINE_COUNTS = np.array([1, 2, 3, 4, 5])
LINE_PROBS = np.array([0.45, 0.25, 0.15, 0.10, 0.05])
QTY_PROBS = np.array([0.75, 0.17, 0.08])


@dataclass(frozen=True, slots=True)
class DemandSpec:
    """One day of demand. `peak_share` of the orders arrive around `peak_hour` (±1.5 h)."""

    orders: int = 100_000
    seed: int = 1
    peak_hour: float = 21.0
    peak_share: float = 0.2
    member_share: float = 0.3
    pickup_share: float = 0.1
    day: dt.date = dt.date(2026, 3, 2)
    zipf_exponent: float = 1.0


def arrival_hours(rng: np.random.Generator, n: int, peak_hour: float, peak_share: float
                  ) -> np.ndarray:
    """Sorted arrival hours in [0, 24) from the base curve plus a Gaussian peak."""
    if not 0.0 <= peak_share <= 1.0:
        raise ValidationError("peak_share must be between 0 and 1", field="peak_share")
    probs = BASE_CURVE / BASE_CURVE.sum()
    base = rng.choice(24, size=n, p=probs) + rng.random(n)
    peak = np.mod(rng.normal(peak_hour, 1.5, n), 24.0)
    hours = np.where(rng.random(n) < peak_share, peak, base)
    return np.sort(np.minimum(hours, np.nextafter(24.0, 0)))


def generate_day(net: NetworkSnapshot, spec: DemandSpec) -> list[OrderRequest]:
    """Orders of one day, in arrival order; deterministic for (network, spec)."""
    if spec.orders < 0:
        raise ValidationError("orders must not be negative", field="orders")
    rng = np.random.default_rng([spec.seed, 7])
    n = spec.orders
    zones = net.zones
    pop = np.array([max(z.population, 1) for z in zones], dtype=float)
    zone_idx = rng.choice(len(zones), size=n, p=pop / pop.sum())
    # Seller catalogue with popularity, by SKU id order (SKU 1 is the most popular).
    skus = net.skus
    if not skus:
        raise ValidationError("network has no SKUs to order", field="skus")
    popw = sku_popularity(len(skus), spec.zipf_exponent)
    by_seller: dict[int, list[int]] = {}
    for k, s in enumerate(skus):
        by_seller.setdefault(s.seller_id, []).append(k)
    seller_skus = {s: np.array(v) for s, v in by_seller.items()}
    seller_p = {s: popw[v] / popw[v].sum() for s, v in seller_skus.items()}
    first = rng.choice(len(skus), size=n, p=popw)
    n_lines = rng.choice(LINE_COUNTS, size=n, p=LINE_PROBS)
    hours = arrival_hours(rng, n, spec.peak_hour, spec.peak_share)
    service_u = rng.random(n)
    pickups = [loc for loc in net.locations if loc.is_pickup_point]
    pick_lat = np.array([p.latitude for p in pickups])
    pick_lon = np.array([p.longitude for p in pickups])
    orders: list[OrderRequest] = []
    for i in range(n):
        k0 = int(first[i])
        seller = skus[k0].seller_id
        chosen = [k0]
        pool = seller_skus[seller]
        want = min(int(n_lines[i]), len(pool))
        if want > 1:
            extra = rng.choice(pool, size=min(len(pool), want + 2), p=seller_p[seller])
            for k in extra.tolist():
                if k not in chosen:
                    chosen.append(k)
                if len(chosen) == want:
                    break
        qtys = rng.choice(3, size=len(chosen), p=QTY_PROBS) + 1
        lines = tuple(OrderLineRequest(skus[k].id, skus[k].code or str(skus[k].id), int(q),
                                       skus[k].weight_g)
                      for k, q in zip(chosen, qtys.tolist(), strict=True))
        z = zones[int(zone_idx[i])]
        lat = z.latitude + float(rng.normal(0, 0.03))
        lon = z.longitude + float(rng.normal(0, 0.04))
        u = service_u[i]
        service, pickup_id, zone_id = "standard", None, z.id
        if u < spec.member_share:
            service = "member_next_day"
        elif u < spec.member_share + spec.pickup_share and pickups:
            service = "pickup"
            j = int(np.argmin((pick_lat - lat) ** 2 + (pick_lon - lon) ** 2))
            pickup_id = pickups[j].id
            zone_id = pickups[j].zone_id
        orders.append(OrderRequest(
            seller_id=seller, lines=lines, latitude=round(lat, 5), longitude=round(lon, 5),
            zone_id=zone_id, service=service, pickup_location_id=pickup_id,
            order_ref=f"D{spec.seed}-{i + 1:07d}", placed_hour=round(float(hours[i]), 4),
            order_date=spec.day))
    return orders
