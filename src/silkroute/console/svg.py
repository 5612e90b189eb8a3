"""Inline SVG drawn on the server: bar charts, stacked hourly bars and coordinate maps."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import Any

from markupsafe import Markup

PALETTE = ("#2f6db5", "#e08a1e", "#3a9a5b", "#b23b3b", "#7a4fb0", "#5f6b7a")


def _open(width: int, height: int, title: str) -> str:
    t = escape(title)
    return (f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
            f'aria-label="{t}" preserveAspectRatio="xMidYMid meet" '
            f'xmlns="http://www.w3.org/2000/svg"><title>{t}</title>')


def bars(points: Sequence[tuple[str, float]], title: str, *, unit: str = "",
         highlight: int | None = None, width: int = 560, height: int = 220) -> Markup:
    """A vertical bar chart of labelled values."""
    if not points:
        return Markup(f'<p class="muted">{escape(title)}: no data yet.</p>')
    top = max(v for _, v in points) or 1.0
    left, bottom, pad = 8, 36, 6
    slot = (width - left * 2) / len(points)
    w = max(2.0, slot - pad)
    parts = [_open(width, height, title)]
    for i, (label, value) in enumerate(points):
        h = (height - bottom - 18) * (value / top)
        x = left + i * slot + pad / 2
        y = height - bottom - h
        colour = PALETTE[1] if highlight == i else PALETTE[0]
        parts.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{h:.1f}" '
                     f'fill="{colour}"><title>{escape(label)}: {value:,.0f}{unit}</title></rect>')
        parts.append(f'<text x="{x + w / 2:.1f}" y="{height - bottom + 14}" '
                     f'text-anchor="middle" class="tick">{escape(label)}</text>')
        if len(points) <= 16:
            parts.append(f'<text x="{x + w / 2:.1f}" y="{y - 3:.1f}" text-anchor="middle" '
                         f'class="val">{value:,.0f}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def stacked(labels: Sequence[str], series: dict[str, list[int]], title: str,
            width: int = 640, height: int = 240) -> Markup:
    """Stacked bars per label (e.g. orders per hour by service level), with a legend."""
    if not series:
        return Markup(f'<p class="muted">{escape(title)}: no orders yet.</p>')
    totals = [sum(s[i] for s in series.values()) for i in range(len(labels))]
    top = max(totals) or 1
    left, bottom, legend = 8, 40, 18
    slot = (width - 2 * left) / len(labels)
    w = max(2.0, slot - 3)
    parts = [_open(width, height, title)]
    base = [0.0] * len(labels)
    scale = (height - bottom - legend - 8) / top
    for k, (name, values) in enumerate(series.items()):
        colour = PALETTE[k % len(PALETTE)]
        for i, v in enumerate(values):
            if not v:
                continue
            h = v * scale
            y = height - bottom - base[i] - h
            parts.append(f'<rect x="{left + i * slot:.1f}" y="{y:.1f}" width="{w:.1f}" '
                         f'height="{h:.1f}" fill="{colour}"><title>{labels[i]}:00 '
                         f'{escape(name)}: {v}</title></rect>')
            base[i] += h
        parts.append(f'<rect x="{left + k * 150}" y="2" width="12" height="12" '
                     f'fill="{colour}"/><text x="{left + k * 150 + 16}" y="12" '
                     f'class="tick">{escape(name)}</text>')
    for i, label in enumerate(labels):
        if i % 3 == 0:
            parts.append(f'<text x="{left + i * slot + w / 2:.1f}" y="{height - bottom + 14}" '
                         f'text-anchor="middle" class="tick">{label}h</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


class Projection:
    """Equirectangular projection of a latitude/longitude box onto an SVG canvas."""

    def __init__(self, points: Sequence[tuple[float, float]], width: int, height: int,
                 margin: float = 0.15):
        lats = [p[0] for p in points] or [0.0]
        lons = [p[1] for p in points] or [0.0]
        span_lat = max(max(lats) - min(lats), 0.2)
        span_lon = max(max(lons) - min(lons), 0.2)
        self.lat0 = min(lats) - span_lat * margin
        self.lat1 = max(lats) + span_lat * margin
        self.lon0 = min(lons) - span_lon * margin
        self.lon1 = max(lons) + span_lon * margin
        self.width, self.height = width, height

    def xy(self, lat: float, lon: float) -> tuple[float, float]:
        x = (lon - self.lon0) / (self.lon1 - self.lon0) * self.width
        y = (self.lat1 - lat) / (self.lat1 - self.lat0) * self.height
        return x, y


def _graticule(p: Projection) -> list[str]:
    out = []
    step = 1.0 if (p.lat1 - p.lat0) < 12 else 5.0
    lat = float(int(p.lat0))
    while lat <= p.lat1:
        _, y = p.xy(lat, p.lon0)
        out.append(f'<line x1="0" x2="{p.width}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>'
                   f'<text x="2" y="{y - 2:.1f}" class="tick">{lat:.0f}°N</text>')
        lat += step
    lon = float(int(p.lon0))
    while lon <= p.lon1:
        x, _ = p.xy(p.lat0, lon)
        out.append(f'<line y1="0" y2="{p.height}" x1="{x:.1f}" x2="{x:.1f}" class="grid"/>'
                   f'<text x="{x + 2:.1f}" y="{p.height - 3}" class="tick">{lon:.0f}°E</text>')
        lon += step
    return out


def network_map(zones: Sequence[Any], locations: Sequence[Any], title: str,
                covered: set[int] | None = None, width: int = 640, height: int = 520
                ) -> Markup:
    """Zones (circles by population; covered ones filled) and locations (squares by kind)."""
    pts = [(z.latitude, z.longitude) for z in zones] + [
        (loc.latitude, loc.longitude) for loc in locations]
    if not pts:
        return Markup('<p class="muted">No zones or locations yet.</p>')
    p = Projection(pts, width, height)
    parts = [_open(width, height, title), '<rect width="100%" height="100%" class="sea"/>']
    parts += _graticule(p)
    top = max((z.population for z in zones), default=1) or 1
    for z in zones:
        x, y = p.xy(z.latitude, z.longitude)
        r = 2 + 9 * (z.population / top) ** 0.5
        cls = "zone covered" if covered is not None and z.id in covered else "zone"
        parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{r:.1f}" class="{cls}">'
                     f'<title>{escape(z.name)} (pop. {z.population:,})</title></circle>')
    kinds = {"warehouse": "wh", "store": "st", "pickup_point": "pp"}
    for loc in locations:
        x, y = p.xy(loc.latitude, loc.longitude)
        kind = getattr(loc.kind, "value", loc.kind)
        parts.append(f'<rect x="{x - 2.5:.1f}" y="{y - 2.5:.1f}" width="5" height="5" '
                     f'class="loc {kinds.get(kind, "wh")}"><title>{escape(loc.name)} '
                     f'({escape(str(kind))})</title></rect>')
    parts.append("</svg>")
    return Markup("".join(parts))


def way_map(sources: Sequence[dict[str, Any]], dest: dict[str, Any], title: str,
            width: int = 560, height: int = 360) -> Markup:
    """The parcel's way: each shipping location to the destination, as straight legs."""
    pts = [(s["lat"], s["lon"]) for s in sources] + [(dest["lat"], dest["lon"])]
    p = Projection(pts, width, height, margin=0.35)
    parts = [_open(width, height, title), '<rect width="100%" height="100%" class="sea"/>']
    parts += _graticule(p)
    dx, dy = p.xy(dest["lat"], dest["lon"])
    for s in sources:
        x, y = p.xy(s["lat"], s["lon"])
        parts.append(f'<line x1="{x:.1f}" y1="{y:.1f}" x2="{dx:.1f}" y2="{dy:.1f}" '
                     f'class="leg"/><rect x="{x - 6:.1f}" y="{y - 6:.1f}" width="12" '
                     f'height="12" class="loc wh"/><text x="{x + 9:.1f}" y="{y + 4:.1f}" '
                     f'class="label">{escape(s["name"])}</text>')
    parts.append(f'<circle cx="{dx:.1f}" cy="{dy:.1f}" r="7" class="dest"/>'
                 f'<text x="{dx + 10:.1f}" y="{dy + 4:.1f}" class="label">'
                 f'{escape(dest["name"])}</text></svg>')
    return Markup("".join(parts))
