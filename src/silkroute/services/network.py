"""The saved network for operators: a summary (what was saved, counts, the router's index)
and pages of its zones and locations."""

from __future__ import annotations

from typing import Any

from silkroute.domain.errors import ValidationError
from silkroute.domain.network import LocationKind
from silkroute.services.routing_policy import index_status
from silkroute.services.storefront import Page, check_page
from silkroute.store.network_repo import (
    locations_page,
    network_counts,
    network_meta,
    network_signature,
    zones_page,
)
from silkroute.store.uow import UnitOfWork


def network_summary(uow: UnitOfWork) -> dict[str, Any]:
    """What the last network save recorded, what the database holds, and whether checkout
    routes with the router (`router_active`: a network with carriers was saved), this
    process has compiled its index yet (`router_indexed`; the first checkout builds it) and
    that index knows every location held now (`router_index_current`)."""
    with uow:
        meta = network_meta(uow.conn)
        counts = network_counts(uow.conn)
        active = network_signature(uow.conn) is not None
        indexed, current = index_status(uow)
    return {**meta, **counts, "router_active": active, "router_indexed": indexed,
            "router_index_current": current}


def list_zones(uow: UnitOfWork, *, country: str | None = None, limit: int = 20,
               offset: int = 0) -> Page:
    check_page(limit, offset)
    with uow:
        items, total = zones_page(uow.conn, limit, offset,
                                  country=country.upper() if country else None)
    return Page(items, total, limit, offset)


def list_locations(uow: UnitOfWork, *, kind: str | None = None, zone_id: int | None = None,
                   limit: int = 20, offset: int = 0) -> Page:
    check_page(limit, offset)
    if kind is not None and kind not in {k.value for k in LocationKind}:
        raise ValidationError(
            f"kind: {kind!r} is not one of {', '.join(k.value for k in LocationKind)}",
            field="kind")
    with uow:
        items, total = locations_page(uow.conn, limit, offset, kind=kind, zone_id=zone_id)
    return Page(items, total, limit, offset)
