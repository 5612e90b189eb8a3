"""Save a network (zones, locations, carriers) to the database and load a snapshot back."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Engine, delete, func, insert, select, update

from silkroute.domain.carriers import (
    Carrier,
    CarrierTier,
    NetworkSnapshot,
    RateCard,
    Sku,
    StockPosition,
    TransitTime,
)
from silkroute.domain.errors import ValidationError
from silkroute.domain.network import Location, LocationKind, OwnerKind, Zone
from silkroute.store import network_tables as nt
from silkroute.store import tables as t
from silkroute.store.repositories import MetaRepo

VERSION_KEY = "network.version"
COUNTRY_KEY = "network.country"
CURRENCY_KEY = "network.currency"
REF_KEY = "network.ref"
STAMP_KEY = "network.stamp"  # unique per save: tells networks apart across resets
_CHUNK = 500


@dataclass
class SavedNetwork:
    """What a save did, and how the network's own ids map to database ids."""

    network_ref: str
    version: int
    location_ids: dict[int, int] = field(default_factory=dict)  # network id -> locations.id
    seller_ids: dict[int, int] = field(default_factory=dict)  # network seller -> sellers.id
    zones_created: int = 0
    locations_created: int = 0
    locations_updated: int = 0
    sellers_created: int = 0
    carriers: int = 0
    carrier_zones: int = 0

    def summary(self) -> dict[str, Any]:
        return {"network_ref": self.network_ref, "network_version": self.version,
                "zones_created": self.zones_created,
                "locations_created": self.locations_created,
                "locations_updated": self.locations_updated,
                "sellers_created": self.sellers_created, "carriers_saved": self.carriers,
                "carrier_zones": self.carrier_zones}


def network_ref_of(net: NetworkSnapshot) -> str:
    """Where a network came from: re-saving the same one updates its locations in place."""
    if net.seed is not None:
        return f"generated:{net.country}:seed={net.seed}"
    return f"import:{net.country}"


def network_version(conn: Connection) -> int:
    """A counter bumped by every save: caches of the network compare against it."""
    raw = MetaRepo(conn).get(VERSION_KEY)
    return int(raw) if raw else 0


def _chunks(items: Sequence[Any], size: int = _CHUNK) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def store_network(conn: Connection, net: NetworkSnapshot,
                  network_ref: str | None = None) -> SavedNetwork:
    """Write zones, sellers of seller-owned locations, locations and carriers on `conn`.

    Runs inside the caller's transaction (all or nothing). Seller-owned locations belong to
    real seller rows: the network's seller numbers become sellers with a shop in the
    network's currency (reused when the same network is saved again). The saved carriers
    replace the stored carrier set: the platform has one set of contracted carriers.
    SKUs and stock positions of a generated network are simulation material and not saved.
    """
    ref = network_ref or network_ref_of(net)
    meta = MetaRepo(conn)
    saved = SavedNetwork(ref, network_version(conn) + 1)

    # zones: keyed by GeoNames id; existing rows are kept as they are
    zone_ids = [z.id for z in net.zones]
    have: set[int] = set()
    for chunk in _chunks(zone_ids):
        have.update(conn.execute(select(t.zones.c.id).where(t.zones.c.id.in_(chunk))).scalars())
    new_zones = [{"id": z.id, "name": z.name, "country": z.country, "latitude": z.latitude,
                  "longitude": z.longitude, "population": z.population}
                 for z in net.zones if z.id not in have]
    for chunk in _chunks(new_zones):
        conn.execute(insert(t.zones), list(chunk))
    saved.zones_created = len(new_zones)

    # what this network already wrote, if it was saved before
    known = conn.execute(
        select(nt.network_locations.c.external_id, nt.network_locations.c.location_id,
               nt.network_locations.c.external_owner_id, t.locations.c.seller_id)
        .join(t.locations, t.locations.c.id == nt.network_locations.c.location_id)
        .where(nt.network_locations.c.network_ref == ref)).all()
    loc_map = {int(r.external_id): int(r.location_id) for r in known}
    seller_map = {int(r.external_owner_id): int(r.seller_id) for r in known
                  if r.seller_id is not None and r.external_owner_id is not None}

    for loc in net.locations:
        if loc.owner_kind is OwnerKind.SELLER and loc.owner_id is not None \
                and loc.owner_id not in seller_map:
            name = f"{net.country} network seller {loc.owner_id}"
            key = conn.execute(insert(t.sellers).values(name=name)).inserted_primary_key
            assert key is not None
            seller_map[loc.owner_id] = int(key[0])
            conn.execute(insert(t.shops).values(seller_id=int(key[0]), name=name,
                                                currency=net.currency))
            saved.sellers_created += 1

    for loc in net.locations:
        seller = (seller_map.get(loc.owner_id) if loc.owner_kind is OwnerKind.SELLER
                  and loc.owner_id is not None else None)
        values = {"name": loc.name, "kind": loc.kind.value, "owner_kind": loc.owner_kind.value,
                  "seller_id": seller, "zone_id": loc.zone_id, "latitude": loc.latitude,
                  "longitude": loc.longitude, "daily_capacity": loc.daily_capacity,
                  "handling_cost": loc.handling_cost, "opens_hour": loc.opens_hour,
                  "closes_hour": loc.closes_hour}
        extra = {"external_owner_id": loc.owner_id, "priority": loc.priority}
        db_id = loc_map.get(loc.id)
        if db_id is None:
            key = conn.execute(insert(t.locations).values(**values)).inserted_primary_key
            assert key is not None
            db_id = int(key[0])
            conn.execute(insert(nt.network_locations).values(
                location_id=db_id, network_ref=ref, external_id=loc.id, **extra))
            saved.locations_created += 1
        else:
            conn.execute(update(t.locations).where(t.locations.c.id == db_id).values(**values))
            conn.execute(update(nt.network_locations)
                         .where(nt.network_locations.c.location_id == db_id).values(**extra))
            saved.locations_updated += 1
        saved.location_ids[loc.id] = db_id
    saved.seller_ids = {k: v for k, v in seller_map.items()
                        if any(loc.owner_id == k for loc in net.locations)}

    # carriers: the saved set replaces the stored one
    conn.execute(delete(nt.carrier_zones))
    conn.execute(delete(nt.carriers))
    rows = [{"id": c.id, "name": c.name, "tier": c.tier.value,
             "base_fee": c.rate_card.base_fee, "per_kg": c.rate_card.per_kg,
             "band_fees": list(c.rate_card.band_fees),
             "transit_cdf": [list(row) for row in c.transit.cdf],
             "cutoff_hour": float(c.cutoff_hour), "daily_capacity": c.daily_capacity,
             "on_time_rate": float(c.on_time_rate), "max_weight_g": c.max_weight_g}
            for c in net.carriers]
    for chunk in _chunks(rows):
        conn.execute(insert(nt.carriers), list(chunk))
    cover = [{"carrier_id": c.id, "zone_id": z} for c in net.carriers for z in sorted(c.zones)]
    for chunk in _chunks(cover, 5000):
        conn.execute(insert(nt.carrier_zones), list(chunk))
    saved.carriers, saved.carrier_zones = len(rows), len(cover)

    meta.set(VERSION_KEY, str(saved.version))
    meta.set(COUNTRY_KEY, net.country)
    meta.set(CURRENCY_KEY, net.currency)
    meta.set(REF_KEY, ref)
    meta.set(STAMP_KEY, uuid.uuid4().hex)
    return saved


def save_network(net: NetworkSnapshot, db: str | None = None, *, engine: Engine | None = None,
                 network_ref: str | None = None) -> dict[str, Any]:
    """Save in one transaction to the database at `db` (or `engine`); returns a summary."""
    from silkroute.store.engine import make_engine
    from silkroute.store.migrate import current_revision, head_revision
    from silkroute.store.uow import UnitOfWork

    own = engine is None
    eng = engine if engine is not None else make_engine(db)
    try:
        if current_revision(eng) != head_revision():
            raise ValidationError("db: the database schema is not current; run "
                                  "`silkroute db upgrade` first", field="db")
        with UnitOfWork(eng) as uow:
            saved = store_network(uow.conn, net, network_ref)
        return saved.summary()
    finally:
        if own:
            eng.dispose()


def network_stamp(conn: Connection) -> str | None:
    """Changes with every save (None before the first): what caches of the network key on."""
    return MetaRepo(conn).get(STAMP_KEY)


# Four scalar subqueries; one-click adds them to its context read (store/money_repo.py).
SIGNATURE_COLUMNS = (
    select(t.demo_marker.c.value).where(t.demo_marker.c.key == STAMP_KEY)
    .scalar_subquery().label("sig_stamp"),
    select(nt.carriers.c.id).limit(1).scalar_subquery().label("sig_carrier"),
    select(func.count()).select_from(t.locations).scalar_subquery().label("sig_locations"),
    select(func.max(t.locations.c.id)).scalar_subquery().label("sig_top_location"))
_SIGNATURE = select(*SIGNATURE_COLUMNS)


# "The caller did not read the network signature": read it where it is needed.
UNREAD_SIGNATURE: Any = object()


def network_signature(conn: Connection) -> tuple[str, int, int] | None:
    """What a cached router index depends on, in one statement (checkout asks on every
    order): the network's stamp, the number of locations and the highest location id; None
    when no network with carriers was saved."""
    return signature_of(conn.execute(_SIGNATURE).one())


def signature_of(row: Any) -> tuple[str, int, int] | None:
    """`network_signature` from a row holding `SIGNATURE_COLUMNS`."""
    if row.sig_stamp is None or row.sig_carrier is None:
        return None
    return (row.sig_stamp, int(row.sig_locations), int(row.sig_top_location or 0))


def network_meta(conn: Connection) -> dict[str, Any]:
    """What the last save recorded about the network (None each before the first save)."""
    meta = MetaRepo(conn)
    version = meta.get(VERSION_KEY)
    return {"stamp": meta.get(STAMP_KEY), "ref": meta.get(REF_KEY),
            "version": int(version) if version else None, "country": meta.get(COUNTRY_KEY),
            "currency": meta.get(CURRENCY_KEY)}


def network_counts(conn: Connection) -> dict[str, Any]:
    """Zones, locations by kind, carriers and carrier-zone links, counted in the database."""
    by_kind = {str(kind): int(n) for kind, n in conn.execute(
        select(t.locations.c.kind, func.count()).group_by(t.locations.c.kind)
        .order_by(t.locations.c.kind))}
    zones, carriers, links = conn.execute(select(
        select(func.count()).select_from(t.zones).scalar_subquery(),
        select(func.count()).select_from(nt.carriers).scalar_subquery(),
        select(func.count()).select_from(nt.carrier_zones).scalar_subquery())).one()
    return {"zones": int(zones), "locations": sum(by_kind.values()),
            "locations_by_kind": by_kind, "carriers": int(carriers),
            "carrier_zones": int(links)}


def zones_page(conn: Connection, limit: int, offset: int, *, country: str | None = None
               ) -> tuple[list[dict[str, Any]], int]:
    """One page of zones by id, with how many locations and carriers each has."""
    z = t.zones
    where = [z.c.country == country] if country is not None else []
    total = conn.execute(select(func.count()).select_from(z).where(*where)).scalar_one()
    n_locations = (select(func.count()).select_from(t.locations)
                   .where(t.locations.c.zone_id == z.c.id).scalar_subquery())
    n_carriers = (select(func.count()).select_from(nt.carrier_zones)
                  .where(nt.carrier_zones.c.zone_id == z.c.id).scalar_subquery())
    rows = conn.execute(select(z, n_locations.label("locations"),
                               n_carriers.label("carriers"))
                        .where(*where).order_by(z.c.id).limit(limit).offset(offset))
    return [{"id": int(r.id), "name": r.name, "country": r.country,
             "latitude": float(r.latitude), "longitude": float(r.longitude),
             "population": int(r.population), "locations": int(r.locations),
             "carriers": int(r.carriers)} for r in rows], int(total)


def locations_page(conn: Connection, limit: int, offset: int, *, kind: str | None = None,
                   zone_id: int | None = None) -> tuple[list[dict[str, Any]], int]:
    """One page of locations by id, of one kind and/or in one zone."""
    loc, nl = t.locations, nt.network_locations
    where = ([loc.c.kind == kind] if kind is not None else []) + (
        [loc.c.zone_id == zone_id] if zone_id is not None else [])
    total = conn.execute(select(func.count()).select_from(loc).where(*where)).scalar_one()
    rows = conn.execute(
        select(loc, nl.c.network_ref, nl.c.external_id)
        .outerjoin(nl, nl.c.location_id == loc.c.id)
        .where(*where).order_by(loc.c.id).limit(limit).offset(offset))
    return [{"id": int(r.id), "name": r.name, "kind": r.kind, "owner_kind": r.owner_kind,
             "seller_id": int(r.seller_id) if r.seller_id is not None else None,
             "zone_id": int(r.zone_id), "latitude": float(r.latitude),
             "longitude": float(r.longitude), "daily_capacity": int(r.daily_capacity),
             "handling_cost": int(r.handling_cost), "opens_hour": int(r.opens_hour),
             "closes_hour": int(r.closes_hour), "network_ref": r.network_ref,
             "external_id": int(r.external_id) if r.external_id is not None else None}
            for r in rows], int(total)


def load_snapshot(conn: Connection, *, with_stock: bool = True) -> NetworkSnapshot:
    """Everything the router needs, read from the database (ids are database ids).

    With `with_stock`, SKUs and their available units (on hand minus reserved) come too.
    """
    meta = MetaRepo(conn)
    zones = [Zone(int(r.id), r.name, r.country, float(r.latitude), float(r.longitude),
                  int(r.population))
             for r in conn.execute(select(t.zones).order_by(t.zones.c.id))]
    country = meta.get(COUNTRY_KEY)
    if country is None:
        country = conn.execute(select(t.zones.c.country).group_by(t.zones.c.country)
                               .order_by(func.count().desc(), t.zones.c.country)
                               .limit(1)).scalar_one_or_none() or ""
    currency = meta.get(CURRENCY_KEY) or conn.execute(
        select(t.shops.c.currency).order_by(t.shops.c.id).limit(1)).scalar_one_or_none() \
        or "USD"
    loc_rows = conn.execute(
        select(t.locations, nt.network_locations.c.priority)
        .outerjoin(nt.network_locations,
                   nt.network_locations.c.location_id == t.locations.c.id)
        .order_by(t.locations.c.id)).all()
    locations = [Location(
        id=int(r.id), name=r.name, kind=LocationKind(r.kind), owner_kind=OwnerKind(r.owner_kind),
        owner_id=int(r.seller_id) if r.seller_id is not None else None, zone_id=int(r.zone_id),
        latitude=float(r.latitude), longitude=float(r.longitude),
        daily_capacity=int(r.daily_capacity), handling_cost=int(r.handling_cost),
        opens_hour=int(r.opens_hour), closes_hour=int(r.closes_hour),
        priority=int(r.priority) if r.priority is not None else 0) for r in loc_rows]
    served: dict[int, set[int]] = defaultdict(set)
    for cid, zid in conn.execute(select(nt.carrier_zones.c.carrier_id,
                                        nt.carrier_zones.c.zone_id)):
        served[int(cid)].add(int(zid))
    carriers = [Carrier(
        id=int(r.id), name=r.name, tier=CarrierTier(r.tier), zones=frozenset(served[int(r.id)]),
        rate_card=RateCard(int(r.base_fee), int(r.per_kg),
                           tuple(None if f is None else int(f) for f in r.band_fees)),
        transit=TransitTime(tuple(tuple(float(p) for p in row) for row in r.transit_cdf)),
        cutoff_hour=float(r.cutoff_hour), daily_capacity=int(r.daily_capacity),
        on_time_rate=float(r.on_time_rate), max_weight_g=int(r.max_weight_g))
        for r in conn.execute(select(nt.carriers).order_by(nt.carriers.c.id))]
    skus: list[Sku] = []
    stock: list[StockPosition] = []
    if with_stock:
        skus = [Sku(int(r.id), int(r.seller_id), int(r.weight_g), r.code)
                for r in conn.execute(select(t.skus.c.id, t.skus.c.seller_id, t.skus.c.weight_g,
                                             t.skus.c.code).order_by(t.skus.c.id))]
        stock = [StockPosition(int(r.sku_id), int(r.location_id), int(r.available))
                 for r in conn.execute(
                     select(t.stock.c.sku_id, t.stock.c.location_id,
                            (t.stock.c.on_hand - t.stock.c.reserved).label("available"))
                     .order_by(t.stock.c.sku_id, t.stock.c.location_id))]
    return NetworkSnapshot(country=country, currency=currency, zones=zones,
                           locations=locations, carriers=carriers, skus=skus, stock=stock)


__all__ = ["SavedNetwork", "load_snapshot", "locations_page", "network_counts",
           "network_meta", "network_ref_of", "network_signature", "network_stamp",
           "network_version", "save_network", "store_network", "zones_page"]
