"""Read and write a network as CSV files (zones, locations, carriers, coverage, bands, stock)."""

from __future__ import annotations

import contextlib
import csv
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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
from silkroute.domain.money import check_currency
from silkroute.domain.network import Location, LocationKind, OwnerKind, Zone

FILES = ("zones.csv", "locations.csv", "carriers.csv", "carrier_zones.csv",
         "carrier_bands.csv")
OPTIONAL = ("skus.csv", "stock.csv", "network.csv")
COLUMNS: dict[str, tuple[str, ...]] = {
    "network.csv": ("country", "currency"),
    "zones.csv": ("id", "name", "country", "latitude", "longitude", "population"),
    "locations.csv": ("id", "name", "kind", "owner_kind", "owner_id", "zone_id", "latitude",
                      "longitude", "daily_capacity", "handling_cost", "opens_hour",
                      "closes_hour", "priority"),
    "carriers.csv": ("id", "name", "tier", "base_fee", "per_kg", "cutoff_hour",
                     "daily_capacity", "on_time_rate", "max_weight_g"),
    "carrier_zones.csv": ("carrier_id", "zone_id"),
    "carrier_bands.csv": ("carrier_id", "band", "fee", *(f"p_day{d}" for d in
                                                          range(TRANSIT_DAYS))),
    "skus.csv": ("id", "seller_id", "weight_g", "code"),
    "stock.csv": ("sku_id", "location_id", "quantity"),
}


class NetworkFileError(ValidationError):
    """One or more lines of the network files are wrong; `problems` lists them all."""

    code = "network_file_error"

    def __init__(self, problems: list[str]):
        shown = problems[:50]
        more = f"\n... and {len(problems) - 50} more" if len(problems) > 50 else ""
        super().__init__("\n".join(shown) + more, field="file")
        self.problems = problems


@dataclass
class _Reader:
    problems: list[str]
    # ids of rows already reported as bad, per file: references to them are not re-reported
    bad: dict[str, set[int]] = field(default_factory=dict)

    def reject(self, name: str, row: dict[str, str] | list[str]) -> None:
        raw = row.get("id", "") if isinstance(row, dict) else (row[0] if row else "")
        with contextlib.suppress(ValueError):
            self.bad.setdefault(name, set()).add(int(str(raw).strip()))

    def known_bad(self, name: str, ident: int) -> bool:
        return ident in self.bad.get(name, set())

    def rows(self, path: Path) -> Iterator[tuple[int, dict[str, str]]]:
        """(line number, row) pairs; the header is line 1."""
        name = path.name
        want = COLUMNS[name]
        with path.open(newline="", encoding="utf-8") as fh:
            reader = csv.reader(fh)
            header = next(reader, None)
            if header is None:
                self.problems.append(f"{name}: line 1: empty file, expected header "
                                     f"{','.join(want)}")
                return
            header = [h.strip() for h in header]
            missing = [c for c in want if c not in header]
            if missing:
                self.problems.append(f"{name}: line 1: missing column(s) {', '.join(missing)}")
                return
            for row in reader:
                line = reader.line_num
                if not row or all(not c.strip() for c in row):
                    continue
                if len(row) != len(header):
                    self.problems.append(f"{name}: line {line}: expected {len(header)} "
                                         f"fields, got {len(row)}")
                    self.reject(name, row)
                    continue
                yield line, {h: v.strip() for h, v in zip(header, row, strict=True)}

    def value(self, name: str, line: int, row: dict[str, str], col: str,
              conv: Callable[[str], Any], check: Callable[[Any], bool] | None = None,
              what: str = "", optional: bool = False) -> Any:
        raw = row.get(col, "")
        if raw == "" and optional:
            return None
        try:
            value = conv(raw)
        except (ValueError, TypeError):
            self.problems.append(f"{name}: line {line}: {col}: {raw!r} is not {what or 'valid'}")
            return None
        if check is not None and not check(value):
            self.problems.append(f"{name}: line {line}: {col}: {raw!r} must be {what}")
            return None
        return value


def _int(s: str) -> int:
    return int(s)


def read_network(directory: Path, country: str | None = None,
                 currency: str | None = None) -> NetworkSnapshot:
    """Parse every file; raise NetworkFileError listing all problems (nothing is returned
    half read)."""
    d = Path(directory)
    problems: list[str] = []
    for name in FILES:
        if not (d / name).is_file():
            problems.append(f"{name}: missing file in {d}")
    if problems:
        raise NetworkFileError(problems)
    r = _Reader(problems)
    nonneg = (lambda v: v >= 0, "a non-negative integer")
    pos = (lambda v: v > 0, "a positive integer")

    meta_country, meta_currency = country, currency
    if (d / "network.csv").is_file():
        for _line, row in r.rows(d / "network.csv"):
            meta_country = meta_country or row["country"].upper()
            meta_currency = meta_currency or row["currency"].upper()

    zones: list[Zone] = []
    zone_ids: set[int] = set()
    for line, row in r.rows(d / "zones.csv"):
        n = "zones.csv"
        zid = r.value(n, line, row, "id", _int, pos[0], pos[1])
        lat = r.value(n, line, row, "latitude", float, lambda v: -90 <= v <= 90,
                      "a latitude between -90 and 90")
        lon = r.value(n, line, row, "longitude", float, lambda v: -180 <= v <= 180,
                      "a longitude between -180 and 180")
        popn = r.value(n, line, row, "population", _int, *nonneg)
        if not row["name"]:
            problems.append(f"{n}: line {line}: name: must not be empty")
        if zid is not None and zid in zone_ids:
            problems.append(f"{n}: line {line}: id: duplicate zone {zid}")
        if None in (zid, lat, lon, popn) or not row["name"]:
            r.reject(n, row)
        else:
            zone_ids.add(zid)
            zones.append(Zone(zid, row["name"], row["country"].upper(), lat, lon, popn))

    locations: list[Location] = []
    loc_ids: set[int] = set()
    for line, row in r.rows(d / "locations.csv"):
        n = "locations.csv"
        lid = r.value(n, line, row, "id", _int, *pos)
        kind = r.value(n, line, row, "kind", LocationKind, None,
                       "one of " + ", ".join(k.value for k in LocationKind))
        owner = r.value(n, line, row, "owner_kind", OwnerKind, None,
                        "one of " + ", ".join(k.value for k in OwnerKind))
        owner_id = r.value(n, line, row, "owner_id", _int, *pos, optional=True)
        zid = r.value(n, line, row, "zone_id", _int, *pos)
        if zid is not None and zid not in zone_ids and not r.known_bad("zones.csv", zid):
            problems.append(f"{n}: line {line}: zone_id: unknown zone {zid}")
        lat = r.value(n, line, row, "latitude", float, lambda v: -90 <= v <= 90,
                      "a latitude between -90 and 90")
        lon = r.value(n, line, row, "longitude", float, lambda v: -180 <= v <= 180,
                      "a longitude between -180 and 180")
        cap = r.value(n, line, row, "daily_capacity", _int, *nonneg)
        handling = r.value(n, line, row, "handling_cost", _int, *nonneg)
        hour = (lambda v: 0 <= v <= 24, "an hour from 0 to 24")
        opens = r.value(n, line, row, "opens_hour", _int, *hour)
        closes = r.value(n, line, row, "closes_hour", _int, *hour)
        prio = r.value(n, line, row, "priority", _int, optional=True, what="an integer")
        if lid is not None and lid in loc_ids:
            problems.append(f"{n}: line {line}: id: duplicate location {lid}")
        if None in (lid, kind, owner, zid, lat, lon, cap, handling, opens, closes):
            r.reject(n, row)
        else:
            loc_ids.add(lid)
            locations.append(Location(lid, row["name"], kind, owner, owner_id, zid, lat, lon,
                                      cap, handling, opens, closes, prio or 0))

    cars: dict[int, dict[str, Any]] = {}
    for line, row in r.rows(d / "carriers.csv"):
        n = "carriers.csv"
        cid = r.value(n, line, row, "id", _int, *pos)
        tier = r.value(n, line, row, "tier", CarrierTier, None,
                       "one of " + ", ".join(t.value for t in CarrierTier))
        base = r.value(n, line, row, "base_fee", _int, *nonneg)
        perkg = r.value(n, line, row, "per_kg", _int, *nonneg)
        cutoff = r.value(n, line, row, "cutoff_hour", float, lambda v: 0 <= v <= 24,
                         "an hour from 0 to 24")
        cap = r.value(n, line, row, "daily_capacity", _int, *nonneg)
        ontime = r.value(n, line, row, "on_time_rate", float, lambda v: 0 <= v <= 1,
                         "a rate from 0 to 1")
        maxw = r.value(n, line, row, "max_weight_g", _int, *pos)
        if cid is not None and cid in cars:
            problems.append(f"{n}: line {line}: id: duplicate carrier {cid}")
        elif None in (cid, tier, base, perkg, cutoff, cap, ontime, maxw):
            r.reject(n, row)
        else:
            cars[cid] = {"name": row["name"], "tier": tier, "base": base, "perkg": perkg,
                         "cutoff": cutoff, "cap": cap, "ontime": ontime, "maxw": maxw,
                         "zones": set(), "bands": {}, "line": line}

    for line, row in r.rows(d / "carrier_zones.csv"):
        n = "carrier_zones.csv"
        cid = r.value(n, line, row, "carrier_id", _int, *pos)
        zid = r.value(n, line, row, "zone_id", _int, *pos)
        if cid is not None and cid not in cars:
            if not r.known_bad("carriers.csv", cid):
                problems.append(f"{n}: line {line}: carrier_id: unknown carrier {cid}")
        elif zid is not None and zid not in zone_ids:
            if not r.known_bad("zones.csv", zid):
                problems.append(f"{n}: line {line}: zone_id: unknown zone {zid}")
        elif cid is not None and zid is not None:
            cars[cid]["zones"].add(zid)

    for line, row in r.rows(d / "carrier_bands.csv"):
        n = "carrier_bands.csv"
        cid = r.value(n, line, row, "carrier_id", _int, *pos)
        band = r.value(n, line, row, "band", _int, lambda v: 0 <= v < N_BANDS,
                       f"a band from 0 to {N_BANDS - 1}")
        fee = r.value(n, line, row, "fee", _int, *nonneg)
        ps = [r.value(n, line, row, f"p_day{k}", float, lambda v: 0 <= v <= 1,
                      "a probability from 0 to 1") for k in range(TRANSIT_DAYS)]
        if None in ps:
            continue
        if any(b < a for a, b in zip(ps, ps[1:], strict=False)):
            problems.append(f"{n}: line {line}: p_day0..p_day{TRANSIT_DAYS - 1} must not "
                            "decrease")
            continue
        if cid is not None and cid not in cars:
            if not r.known_bad("carriers.csv", cid):
                problems.append(f"{n}: line {line}: carrier_id: unknown carrier {cid}")
        elif cid is not None and band is not None and band in cars[cid]["bands"]:
            problems.append(f"{n}: line {line}: band: duplicate band {band} for carrier {cid}")
        elif None not in (cid, band, fee):
            cars[cid]["bands"][band] = (fee, tuple(ps))

    carriers: list[Carrier] = []
    for cid, c in cars.items():
        if not c["bands"]:
            problems.append(f"carriers.csv: line {c['line']}: carrier {cid} has no rows in "
                            "carrier_bands.csv")
            continue
        fees = tuple(c["bands"][b][0] if b in c["bands"] else None for b in range(N_BANDS))
        cdf = tuple(c["bands"][b][1] if b in c["bands"] else (0.0,) * TRANSIT_DAYS
                    for b in range(N_BANDS))
        carriers.append(Carrier(cid, c["name"], c["tier"], frozenset(c["zones"]),
                                RateCard(c["base"], c["perkg"], fees), TransitTime(cdf),
                                c["cutoff"], c["cap"], c["ontime"], c["maxw"]))

    skus: list[Sku] = []
    sku_ids: set[int] = set()
    if (d / "skus.csv").is_file():
        for line, row in r.rows(d / "skus.csv"):
            n = "skus.csv"
            sid = r.value(n, line, row, "id", _int, *pos)
            seller = r.value(n, line, row, "seller_id", _int, *pos)
            w = r.value(n, line, row, "weight_g", _int, *nonneg)
            if sid is not None and sid in sku_ids:
                problems.append(f"{n}: line {line}: id: duplicate SKU {sid}")
            elif None not in (sid, seller, w):
                sku_ids.add(sid)
                skus.append(Sku(sid, seller, w, row["code"]))
    stock: list[StockPosition] = []
    if (d / "stock.csv").is_file():
        for line, row in r.rows(d / "stock.csv"):
            n = "stock.csv"
            sid = r.value(n, line, row, "sku_id", _int, *pos)
            lid = r.value(n, line, row, "location_id", _int, *pos)
            q = r.value(n, line, row, "quantity", _int, *nonneg)
            if sid is not None and sid not in sku_ids:
                problems.append(f"{n}: line {line}: sku_id: unknown SKU {sid}")
            elif lid is not None and lid not in loc_ids:
                if r.known_bad("locations.csv", lid):
                    continue
                problems.append(f"{n}: line {line}: location_id: unknown location {lid}")
            elif None not in (sid, lid, q):
                stock.append(StockPosition(sid, lid, q))

    if not zones and not problems:
        problems.append("zones.csv: no zones")
    cty = (meta_country or (zones[0].country if zones else "KR")).upper()
    cur = meta_currency or ("KRW" if cty == "KR" else "CNY" if cty == "CN" else "USD")
    try:
        cur = check_currency(cur)
    except ValidationError as exc:
        problems.append(f"network.csv: currency: {exc.message}")
    if problems:
        raise NetworkFileError(problems)
    return NetworkSnapshot(cty, cur, zones, locations, carriers, skus, stock)


def write_network(net: NetworkSnapshot, directory: Path, with_stock: bool = True) -> list[Path]:
    """Write the documented CSV files; returns the paths written."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    out: list[Path] = []

    def dump(name: str, rows: list[tuple[Any, ...]]) -> None:
        path = d / name
        with path.open("w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(COLUMNS[name])
            w.writerows(rows)
        out.append(path)

    dump("network.csv", [(net.country, net.currency)])
    dump("zones.csv", [(z.id, z.name, z.country, z.latitude, z.longitude, z.population)
                       for z in net.zones])
    dump("locations.csv", [
        (loc.id, loc.name, loc.kind.value, loc.owner_kind.value,
         "" if loc.owner_id is None else loc.owner_id, loc.zone_id, loc.latitude,
         loc.longitude, loc.daily_capacity, loc.handling_cost, loc.opens_hour,
         loc.closes_hour, loc.priority) for loc in net.locations])
    dump("carriers.csv", [
        (c.id, c.name, c.tier.value, c.rate_card.base_fee, c.rate_card.per_kg, c.cutoff_hour,
         c.daily_capacity, c.on_time_rate, c.max_weight_g) for c in net.carriers])
    dump("carrier_zones.csv", [(c.id, z) for c in net.carriers for z in sorted(c.zones)])
    dump("carrier_bands.csv", [
        (c.id, b, fee, *c.transit.cdf[b]) for c in net.carriers
        for b, fee in enumerate(c.rate_card.band_fees) if fee is not None])
    if with_stock and net.skus:
        dump("skus.csv", [(s.id, s.seller_id, s.weight_g, s.code) for s in net.skus])
        dump("stock.csv", [(p.sku_id, p.location_id, p.quantity) for p in net.stock])
    return out
