"""Generate a reproducible network (zones, locations, carriers, stock) from real cities."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from silkroute.domain.carriers import (
    N_BANDS,
    TRANSIT_DAYS,
    Carrier,
    CarrierTier,
    NetworkSnapshot,
    RateCard,
    Sku,
    StockPosition,
    TransitTime,
)
from silkroute.domain.errors import ValidationError
from silkroute.domain.network import Location, LocationKind, OwnerKind
from silkroute.sim.cities import cities_of

# How much one KRW of the reference price list is worth in minor units of each currency.
PRICE_SCALE: dict[str, float] = {
    "KRW": 1.0, "CNY": 0.53, "JPY": 0.11, "USD": 0.073, "EUR": 0.068, "GBP": 0.058,
    "HKD": 0.57, "SGD": 0.098, "TWD": 2.35,
}
COUNTRY_CURRENCY: dict[str, str] = {
    "KR": "KRW", "CN": "CNY", "JP": "JPY", "US": "USD", "GB": "GBP", "HK": "HKD",
    "SG": "SGD", "TW": "TWD", "DE": "EUR", "FR": "EUR", "IT": "EUR", "ES": "EUR", "NL": "EUR",
}


@dataclass(frozen=True, slots=True)
class NetworkSpec:
    """What to generate. `design_orders` sizes stock and capacity for a day of that volume."""

    country: str = "KR"
    carriers: int = 3000
    locations: int = 1000
    seed: int = 1
    design_orders: int = 100_000
    sellers: int | None = None
    skus_per_seller: int = 80


def currency_of(country: str) -> str:
    return COUNTRY_CURRENCY.get(country.upper(), "USD")


def _km_matrix(lat1: np.ndarray, lon1: np.ndarray, lat2: np.ndarray, lon2: np.ndarray
               ) -> np.ndarray:
    """Great-circle distances (km) between every point of set 1 and every point of set 2."""
    p1, p2 = np.radians(lat1)[:, None], np.radians(lat2)[None, :]
    dl = np.radians(lon2)[None, :] - np.radians(lon1)[:, None]
    a = np.sin((p2 - p1) / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    return 2 * 6371.0088 * np.arcsin(np.minimum(1.0, np.sqrt(a)))


def _transit(rng: np.random.Generator, quality: float, tier: CarrierTier) -> TransitTime:
    """A transit table: better `quality` moves probability mass to fewer days."""
    rows: list[tuple[float, ...]] = []
    for band in range(N_BANDS):
        if tier is CarrierTier.SAME_DAY:
            p0 = quality if band == 0 else 0.0
            mean = [0.2, 1.2, 2.2, 3.2][band]
        else:
            p0 = 0.0
            mean = [1.0, 1.1, 1.6, 2.4][band] + (1.0 - quality) * [0.9, 1.0, 1.1, 1.2][band]
        row = []
        for d in range(TRANSIT_DAYS):
            # A logistic curve around the mean number of days; steeper for better carriers.
            steep = 2.0 + 4.0 * quality
            p = 1.0 / (1.0 + math.exp(-steep * (d + 0.5 - mean)))
            if d == 0:
                p = max(p0, min(p, 0.02)) if tier is not CarrierTier.SAME_DAY else p0
            row.append(p)
        # Make the curve non-decreasing and end close to 1.
        out, prev = [], 0.0
        for p in row:
            prev = max(prev, min(1.0, p))
            out.append(round(prev, 4))
        rows.append(tuple(out))
    _ = rng
    return TransitTime(tuple(rows))


def generate_network(spec: NetworkSpec) -> NetworkSnapshot:
    """A seed-deterministic network for `spec.country` from GeoNames cities."""
    if spec.carriers < 1 or spec.locations < 1:
        raise ValidationError("carriers and locations must be at least 1", field="carriers")
    rng = np.random.default_rng(spec.seed)
    country = spec.country.upper()
    currency = currency_of(country)
    scale = PRICE_SCALE.get(currency, 0.073)
    cities = cities_of(country)
    zones = [c.as_zone() for c in cities]
    nz = len(zones)
    zlat = np.array([z.latitude for z in zones])
    zlon = np.array([z.longitude for z in zones])
    zpop = np.array([max(z.population, 1) for z in zones], dtype=float)
    zdist = _km_matrix(zlat, zlon, zlat, zlon)
    # Size of the country: the spread of its cities (km), used to size regional carriers.
    extent = float(np.percentile(zdist[np.argmax(zpop)], 90)) or 300.0

    def money(krw: float) -> int:
        return max(0, int(round(krw * scale)))

    # ---- sellers, locations -----------------------------------------------------------
    n_loc = spec.locations
    n_sellers = spec.sellers or max(5, n_loc // 4)
    seller_weight = rng.pareto(1.2, n_sellers) + 1.0
    seller_weight /= seller_weight.sum()
    pop_w = zpop / zpop.sum()
    pop_sqrt = np.sqrt(zpop) / np.sqrt(zpop).sum()
    kinds: list[tuple[LocationKind, OwnerKind]] = []
    n_fc = max(1, round(n_loc * 0.03))
    n_3pl = max(1, round(n_loc * 0.07)) if n_loc >= 10 else 0
    n_locker = round(n_loc * 0.05) if n_loc >= 20 else 0
    n_rest = max(0, n_loc - n_fc - n_3pl - n_locker)
    n_wh = max(min(n_sellers, n_rest), round(n_rest * 0.47))
    n_wh = min(n_wh, n_rest)
    n_store = n_rest - n_wh
    kinds += [(LocationKind.FULFILMENT_CENTRE, OwnerKind.PLATFORM)] * n_fc
    kinds += [(LocationKind.WAREHOUSE, OwnerKind.THIRD_PARTY)] * n_3pl
    kinds += [(LocationKind.PICKUP_POINT, OwnerKind.THIRD_PARTY)] * n_locker
    kinds += [(LocationKind.WAREHOUSE, OwnerKind.SELLER)] * n_wh
    kinds += [(LocationKind.STORE, OwnerKind.SELLER)] * n_store
    kinds = kinds[:n_loc]
    # Seller of each seller-owned location: every seller gets one warehouse first.
    owners: list[int | None] = []
    wh_seen = 0
    for kind, owner in kinds:
        if owner is not OwnerKind.SELLER:
            owners.append(None)
        elif kind is LocationKind.WAREHOUSE and wh_seen < n_sellers:
            owners.append(wh_seen + 1)
            wh_seen += 1
        else:
            owners.append(int(rng.choice(n_sellers, p=seller_weight)) + 1)
    seller_home = rng.choice(nz, size=n_sellers, p=pop_w)
    seller_volume = seller_weight * spec.design_orders
    seller_wh_count = np.zeros(n_sellers + 1, dtype=int)
    for (kind, _o), s in zip(kinds, owners, strict=True):
        if s is not None and kind is LocationKind.WAREHOUSE:
            seller_wh_count[s] += 1
    locations: list[Location] = []
    for i, ((kind, owner), seller) in enumerate(zip(kinds, owners, strict=True)):
        if kind is LocationKind.FULFILMENT_CENTRE:
            z = int(rng.choice(nz, p=pop_sqrt))
            cap = int(rng.integers(4_000, 12_000) * spec.design_orders / 100_000) + 200
            handling, opens, closes = money(rng.uniform(250, 400)), 0, 24
            name = f"Platform FC {zones[z].name} {i + 1}"
        elif owner is OwnerKind.THIRD_PARTY and kind is LocationKind.WAREHOUSE:
            z = int(rng.choice(nz, p=pop_sqrt))
            cap = int(rng.integers(1_500, 4_000) * spec.design_orders / 100_000) + 100
            handling, opens, closes = money(rng.uniform(400, 650)), 6, 22
            name = f"3PL warehouse {zones[z].name} {i + 1}"
        elif kind is LocationKind.PICKUP_POINT:
            z = int(rng.choice(nz, p=pop_w))
            cap, handling, opens, closes = 300, money(rng.uniform(300, 500)), 7, 23
            name = f"Locker {zones[z].name} {i + 1}"
        elif kind is LocationKind.WAREHOUSE:
            assert seller is not None
            home = int(seller_home[seller - 1])
            z = home if rng.random() < 0.6 else int(rng.choice(nz, p=pop_w))
            share = seller_volume[seller - 1] / max(1, seller_wh_count[seller])
            cap = int(share * rng.uniform(0.6, 1.3)) + 150
            handling, opens, closes = money(rng.uniform(500, 900)), 8, 18
            name = f"Seller {seller} warehouse {zones[z].name} {i + 1}"
        else:
            z = int(rng.choice(nz, p=pop_w))
            cap = int(rng.integers(40, 160))
            handling, opens, closes = money(rng.uniform(1_200, 2_000)), 10, 22
            name = f"Seller {seller} store {zones[z].name} {i + 1}"
        # Jitter around the city centre: up to ~8 km.
        lat = zones[z].latitude + float(rng.normal(0, 0.04))
        lon = zones[z].longitude + float(rng.normal(0, 0.05))
        locations.append(Location(
            id=i + 1, name=name, kind=kind, owner_kind=owner, owner_id=seller,
            zone_id=zones[z].id, latitude=round(lat, 5), longitude=round(lon, 5),
            daily_capacity=cap, handling_cost=handling, opens_hour=opens, closes_hour=closes,
            priority=int(rng.integers(1, 100)),
        ))

    # ---- carriers ---------------------------------------------------------------------
    n_c = spec.carriers
    n_nat = max(1, min(n_c, round(n_c * 0.002)))
    n_reg = min(n_c - n_nat, round(n_c * 0.1))
    n_same = min(n_c - n_nat - n_reg, round(n_c * 0.2))
    n_local = n_c - n_nat - n_reg - n_same
    volume = spec.design_orders
    carriers: list[Carrier] = []
    all_zones = frozenset(z.id for z in zones)

    def within(center: int, radius: float) -> frozenset[int]:
        return frozenset(zones[j].id for j in np.flatnonzero(zdist[center] <= radius))

    cid = 0
    for tier, count in ((CarrierTier.NATIONAL, n_nat), (CarrierTier.REGIONAL, n_reg),
                        (CarrierTier.LOCAL, n_local), (CarrierTier.SAME_DAY, n_same)):
        for _ in range(count):
            cid += 1
            if tier is CarrierTier.NATIONAL:
                served = all_zones
                quality = float(rng.uniform(0.8, 0.97))
                rate = RateCard(money(rng.uniform(2_600, 3_300)), money(rng.uniform(250, 450)),
                                (0, money(150), money(350), money(700)))
                cutoff = float(rng.integers(18, 23))
                cap = int(volume * rng.uniform(0.12, 0.3)) + 50
                maxw = 30_000
                label = "Express"
            elif tier is CarrierTier.REGIONAL:
                hub = int(rng.choice(nz, p=pop_sqrt))
                served = within(hub, min(600.0, float(rng.uniform(0.15, 0.5)) * extent + 40))
                quality = float(rng.uniform(0.55, 0.97))
                rate = RateCard(money(rng.uniform(2_000, 3_000)), money(rng.uniform(200, 500)),
                                (0, money(200), money(600), money(1_200)))
                cutoff = float(rng.integers(14, 20))
                cap = int(rng.uniform(200, 2_500) * volume / 100_000) + 20
                maxw = 30_000
                label = f"Regional {zones[hub].name}"
            elif tier is CarrierTier.LOCAL:
                hub = int(rng.choice(nz, p=pop_w))
                served = within(hub, float(rng.uniform(20, 40)))
                quality = float(rng.uniform(0.5, 0.98))
                rate = RateCard(money(rng.uniform(1_500, 2_600)), money(rng.uniform(300, 700)),
                                (0, money(500), None, None))
                cutoff = float(rng.integers(12, 19))
                cap = int(rng.uniform(30, 300) * volume / 100_000) + 5
                maxw = 20_000
                label = f"Local {zones[hub].name}"
            else:
                hub = int(rng.choice(nz, p=pop_w))
                served = within(hub, 15.0)
                quality = float(rng.uniform(0.8, 0.97))
                rate = RateCard(money(rng.uniform(3_500, 6_000)), money(rng.uniform(500, 1_000)),
                                (0, None, None, None))
                cutoff = float(rng.integers(11, 16))
                cap = int(rng.uniform(20, 150) * volume / 100_000) + 5
                maxw = 10_000
                label = f"Same-day {zones[hub].name}"
            transit = _transit(rng, quality, tier)
            transit = TransitTime(tuple(
                row if rate.band_fees[b] is not None else (0.0,) * TRANSIT_DAYS
                for b, row in enumerate(transit.cdf)))
            carriers.append(Carrier(
                id=cid, name=f"{label} {tier.value} carrier {cid}", tier=tier, zones=served,
                rate_card=rate, transit=transit, cutoff_hour=cutoff, daily_capacity=cap,
                on_time_rate=round(quality, 4), max_weight_g=maxw,
            ))

    # ---- SKUs and stock ---------------------------------------------------------------
    skus, stock = _assortment(rng, spec, locations, n_sellers)
    return NetworkSnapshot(country=country, currency=currency, zones=zones,
                           locations=locations, carriers=carriers, skus=skus, stock=stock,
                           seed=spec.seed)


def sku_popularity(n_skus: int, exponent: float = 1.0) -> np.ndarray:
    """Zipf weights by SKU id order (SKU 1 most popular), summing to 1."""
    w = 1.0 / np.arange(1, n_skus + 1) ** exponent
    return w / w.sum()


def _assortment(rng: np.random.Generator, spec: NetworkSpec, locations: list[Location],
                n_sellers: int) -> tuple[list[Sku], list[StockPosition]]:
    """SKUs per seller with Zipf popularity, and stock spread over the seller's locations."""
    n_skus = n_sellers * spec.skus_per_seller
    seller_of = rng.integers(1, n_sellers + 1, size=n_skus)
    # Make sure every seller has at least one SKU.
    seller_of[:n_sellers] = rng.permutation(np.arange(1, n_sellers + 1))
    rng.shuffle(seller_of)
    popularity = sku_popularity(n_skus)
    weight = np.clip(rng.lognormal(math.log(900), 0.8, n_skus), 50, 25_000).astype(int)
    by_seller: dict[int, list[Location]] = {}
    for loc in locations:
        if loc.owner_id is not None:
            by_seller.setdefault(loc.owner_id, []).append(loc)
    fcs = [loc for loc in locations if loc.kind is LocationKind.FULFILMENT_CENTRE]
    tpls = [loc for loc in locations
            if loc.kind is LocationKind.WAREHOUSE and loc.owner_kind is OwnerKind.THIRD_PARTY]
    seller_3pl = {s: tpls[int(rng.integers(len(tpls)))]
                  for s in range(1, n_sellers + 1) if tpls and rng.random() < 0.3}
    lines_per_order, units_per_line = 2.2, 1.4
    skus: list[Sku] = []
    stock: list[StockPosition] = []
    for k in range(n_skus):
        sku_id = k + 1
        seller = int(seller_of[k])
        skus.append(Sku(sku_id, seller, int(weight[k]), f"SKU-{sku_id:06d}"))
        demand = spec.design_orders * lines_per_order * units_per_line * popularity[k]
        total = int(demand * rng.uniform(0.9, 2.2)) + int(rng.integers(1, 6))
        own = by_seller.get(seller, [])
        holders: list[tuple[Location, float]] = []
        for loc in own:
            if loc.kind is LocationKind.WAREHOUSE and rng.random() < 0.8:
                holders.append((loc, 3.0))
            elif loc.kind is LocationKind.STORE and (k < n_skus * 0.2 or rng.random() < 0.3):
                holders.append((loc, 0.5))
        if fcs and (k < n_skus * 0.15 or rng.random() < 0.1):
            for j in rng.choice(len(fcs), size=min(len(fcs), int(rng.integers(1, 4))),
                                replace=False):
                holders.append((fcs[int(j)], 4.0))
        if seller in seller_3pl:
            holders.append((seller_3pl[seller], 2.0))
        if not holders:
            wh = [loc for loc in own if loc.kind is LocationKind.WAREHOUSE] or own
            if wh:
                holders.append((wh[0], 3.0))
            elif fcs:
                holders.append((fcs[0], 1.0))
            else:
                continue
        shares = np.array([w for _, w in holders]) * rng.uniform(0.5, 1.5, len(holders))
        shares /= shares.sum()
        for (loc, _w), share in zip(holders, shares, strict=True):
            qty = int(round(total * share))
            if loc.kind is LocationKind.STORE:
                qty = min(qty, int(rng.integers(2, 30)))
            if qty > 0:
                stock.append(StockPosition(sku_id, loc.id, qty))
    return skus, stock
