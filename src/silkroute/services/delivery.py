"""Delivery: carriers onboard, hand-over to parcels, signed tracking events, pickup, returns."""

from __future__ import annotations

import json
import logging
import os
import secrets
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError

from silkroute.domain.errors import Conflict, DomainError, NotFound, ValidationError
from silkroute.domain.orders import OrderState, can_transition
from silkroute.domain.parcels import (
    LEFT_SELLER,
    RANK,
    CarrierEvent,
    ParcelState,
    next_state,
    pickup_code,
    pickup_hash,
    verify,
)
from silkroute.services import payments
from silkroute.services.accounts import IssuedToken, _check_name, _issue
from silkroute.services.checkout import move_order
from silkroute.services.storefront import Page, check_page
from silkroute.store.auth_repositories import AccountRepo
from silkroute.store.delivery_repo import DeliveryRepo
from silkroute.store.uow import UnitOfWork

log = logging.getLogger("silkroute.delivery")
UowFactory = Callable[[], UnitOfWork]
SECRET_ENV = "SILKROUTE_SECRET_KEY"
SECRET_META_KEY = "pickup.secret"
MAX_PICKUP_ATTEMPTS = 5
P = ParcelState


def _now(now: datetime | None = None) -> datetime:
    return now if now is not None else datetime.now(UTC)


def _aware(value: datetime | None) -> datetime | None:
    """SQLite hands timestamps back without a zone; they are UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def _iso(value: datetime | None) -> str | None:
    aware = _aware(value)
    return aware.isoformat() if aware is not None else None


def _no_order(order_id: int) -> NotFound:
    return NotFound(f"order_id: no order {order_id}", field="order_id")


# carriers ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class CarrierAccount:
    account_id: int
    carrier_id: int
    token: IssuedToken
    webhook_secret: str | None  # only when this call set it; never shown again


def register_carrier(uow: UnitOfWork, name: str, *, carrier_id: int | None = None,
                     daily_capacity: int = 10_000, base_fee: int = 3000, per_kg: int = 500,
                     tier: str = "national") -> int:
    """Contract a carrier (outside a generated network); returns its id."""
    name = _check_name(name)
    with uow:
        repo = DeliveryRepo(uow.conn)
        if carrier_id is None:
            carrier_id = repo.max_carrier_id() + 1
        elif repo.carrier(carrier_id) is not None:
            raise Conflict(f"carrier_id: carrier {carrier_id} exists", field="carrier_id",
                           code="carrier_exists")
        repo.add_carrier(id=carrier_id, name=name, tier=tier, base_fee=base_fee, per_kg=per_kg,
                         band_fees=[0, 0, 0, 0],
                         transit_cdf=[[0.0, 0.9, 1.0, 1.0, 1.0]] * 4, cutoff_hour=18.0,
                         daily_capacity=daily_capacity, on_time_rate=0.95)
    return carrier_id


def create_carrier_account(uow: UnitOfWork, carrier_id: int, name: str | None = None
                           ) -> CarrierAccount:
    """An API account acting for a carrier, its first token, and the carrier's webhook
    secret if it has none yet (both shown once)."""
    with uow:
        repo = DeliveryRepo(uow.conn)
        carrier = repo.carrier(carrier_id)
        if carrier is None:
            raise NotFound(f"carrier_id: no carrier {carrier_id}", field="carrier_id")
        account_id = AccountRepo(uow.conn).add("carrier", _check_name(name or carrier.name),
                                               carrier_id=carrier_id)
        token = _issue(uow, account_id, "carrier")
        secret = None
        if repo.secret(carrier_id) is None:
            secret = "whsec_" + secrets.token_urlsafe(32)
            repo.set_secret(carrier_id, secret)
    return CarrierAccount(account_id, carrier_id, token, secret)


def rotate_webhook_secret(uow: UnitOfWork, carrier_id: int) -> str:
    """A new webhook secret for a carrier; the old one stops working at once."""
    with uow:
        repo = DeliveryRepo(uow.conn)
        if repo.carrier(carrier_id) is None:
            raise NotFound(f"carrier_id: no carrier {carrier_id}", field="carrier_id")
        secret = "whsec_" + secrets.token_urlsafe(32)
        repo.set_secret(carrier_id, secret)
    return secret


def list_carriers(uow: UnitOfWork, limit: int = 20, offset: int = 0) -> Page:
    check_page(limit, offset)
    with uow:
        rows, total = DeliveryRepo(uow.conn).carriers_page(limit, offset)
    return Page([{"id": r.id, "name": r.name, "tier": r.tier,
                  "daily_capacity": r.daily_capacity, "on_time_rate": r.on_time_rate,
                  "base_fee": int(r.base_fee), "per_kg": int(r.per_kg),
                  "accounts": int(r.accounts), "has_webhook_secret": bool(r.has_secret)}
                 for r in rows], total, limit, offset)


# hand-over --------------------------------------------------------------------------------
def parcel_item(row: Any) -> dict[str, Any]:
    return {"id": row.id, "order_id": row.order_id, "tracking_number": row.tracking_number,
            "carrier_id": row.carrier_id, "state": row.state, "location_id": row.location_id,
            "pickup_location_id": row.pickup_location_id, "weight_g": int(row.weight_g),
            "created_at": _iso(row.created_at), "picked_up_at": _iso(row.picked_up_at),
            "delivered_at": _iso(row.delivered_at), "closed_at": _iso(row.closed_at)}


@dataclass(frozen=True)
class HandedOver:
    order_id: int
    state: str
    parcels: list[dict[str, Any]]


def hand_over(uow: UnitOfWork, seller_id: int, order_id: int, *,
              default_carrier_id: int = payments.DEFAULT_CARRIER_ID,
              today: date | None = None) -> HandedOver:
    """A paid order goes to ready_to_ship: one parcel per shipping location, each with the
    routed carrier (else the seller's, else the default), counted against the carrier's
    daily capacity. Handing over again answers the same parcels."""
    day = today or _now().date()
    with uow:
        repos, repo = uow.repos, DeliveryRepo(uow.conn)
        order = repos.orders.get(order_id)
        if order is None or order.seller_id != seller_id:
            raise _no_order(order_id)
        existing = repo.parcels_of(order_id)
        if existing:
            return HandedOver(order_id, order.state, [parcel_item(p) for p in existing])
        move_order(uow, order_id, OrderState.READY_TO_SHIP, "handed over to the carrier")
        om = repos.money.order_money(order_id)
        fallback = int(om.carrier_id) if om is not None else default_carrier_id
        groups: dict[int, list[Any]] = defaultdict(list)
        for alloc in repos.orders.allocations(order_id, status="reserved"):
            groups[alloc.location_id].append(alloc)
        weights = repo.weights(order_id)
        per_carrier: dict[int, int] = defaultdict(int)
        plan = []
        for location_id, allocs in sorted(groups.items()):
            carrier_id = next((a.carrier_id for a in allocs if a.carrier_id is not None),
                              fallback)
            per_carrier[carrier_id] += 1
            plan.append((location_id, carrier_id))
        for carrier_id, n in sorted(per_carrier.items()):
            carrier = repo.carrier(carrier_id)
            if carrier is None:
                raise Conflict(f"carrier {carrier_id} is not contracted; the operator must "
                               "register it first", field="carrier_id", code="no_carrier")
            if not repo.take_capacity(carrier_id, day, n, int(carrier.daily_capacity)):
                raise Conflict(f"carrier {carrier_id} has no capacity left on {day}",
                               field="carrier_id", code="capacity_exhausted")
        pickup = order.pickup_location_id if order.service == "pickup" else None
        for location_id, carrier_id in plan:
            repo.add_parcel(order_id=order_id, location_id=location_id, carrier_id=carrier_id,
                            tracking_number=f"SR{order_id:08d}L{location_id}",
                            state=P.HANDED_OVER.value, pickup_location_id=pickup,
                            weight_g=weights.get(location_id, 0))
        rows = repo.parcels_of(order_id)
        return HandedOver(order_id, OrderState.READY_TO_SHIP.value,
                          [parcel_item(p) for p in rows])


# carrier events ---------------------------------------------------------------------------
@dataclass(frozen=True)
class EventIn:
    event_id: str
    tracking_number: str
    event: CarrierEvent
    occurred_at: datetime
    note: str
    payload: dict[str, Any]


def parse_event(raw: bytes, now: datetime) -> EventIn:
    """Validate a webhook body: {"event_id", "tracking_number", "event", "occurred_at"?,
    "note"?}."""
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise ValidationError("body: the body is not valid JSON", field="body") from None
    if not isinstance(data, dict):
        raise ValidationError("body: must be a JSON object", field="body")

    def text(name: str, limit: int, required: bool = True) -> str:
        value = data.get(name)
        if value is None and not required:
            return ""
        if not isinstance(value, str) or not value.strip() or len(value) > limit \
                or "\x00" in value:
            raise ValidationError(f"{name}: must be a non-empty string of at most {limit} "
                                  "characters", field=name)
        return value.strip()

    event_id = text("event_id", 100)
    tracking = text("tracking_number", 40)
    kind = text("event", 24)
    try:
        event = CarrierEvent(kind)
    except ValueError:
        raise ValidationError(f"event: {kind!r} is not one of "
                              f"{', '.join(e.value for e in CarrierEvent)}",
                              field="event") from None
    note = text("note", 200, required=False)
    occurred = now
    if data.get("occurred_at") is not None:
        raw_at = text("occurred_at", 40)
        try:
            occurred = datetime.fromisoformat(raw_at.replace("Z", "+00:00"))
        except ValueError:
            raise ValidationError("occurred_at: not an ISO 8601 date and time",
                                  field="occurred_at") from None
        occurred = _aware(occurred) or now
    return EventIn(event_id, tracking, event, occurred.astimezone(UTC), note, data)


@dataclass(frozen=True)
class EventOutcome:
    duplicate: bool
    event_id: str
    applied: bool
    outcome: str
    parcel_id: int
    tracking_number: str
    parcel_state: str
    order_id: int
    order_state: str
    refund_due: bool = False


def receive_event(uows: UowFactory, carrier_id: int, raw: bytes, timestamp: str | None,
                  signature: str | None, *, now: datetime | None = None) -> EventOutcome:
    """A carrier's signed webhook: verify, dedupe by event id, move the parcel forward only,
    and the order with it; a lost parcel is refunded in full after the event is recorded."""
    at = _now(now)
    with uows() as uow:
        secret = DeliveryRepo(uow.conn).secret(carrier_id)
    if secret is None:
        raise NotFound(f"carrier {carrier_id} has no webhook secret; ask the operator",
                       field="X-Silkroute-Signature", code="no_webhook_secret")
    verify(secret, timestamp, signature, raw, at)
    event = parse_event(raw, at)
    try:
        with uows() as uow:
            outcome = _apply(uow, carrier_id, event, at)
    except IntegrityError:
        outcome = None  # the same event id arrived concurrently and won
    if outcome is None or outcome.duplicate:
        return _duplicate(uows, carrier_id, event.event_id)
    if outcome.refund_due:
        settle(uows, [outcome.order_id])
        with uows() as uow:
            order = uow.repos.orders.get(outcome.order_id)
        outcome = EventOutcome(**{**outcome.__dict__, "order_state": order.state})
    return outcome


def _duplicate(uows: UowFactory, carrier_id: int, event_id: str) -> EventOutcome:
    with uows() as uow:
        repo = DeliveryRepo(uow.conn)
        row = repo.event_of(carrier_id, event_id)
        assert row is not None
        parcel = repo.parcel(row.parcel_id)
        order = uow.repos.orders.get(parcel.order_id)
    return EventOutcome(True, event_id, False, "duplicate event id: ignored", parcel.id,
                        parcel.tracking_number, parcel.state, order.id, order.state)


def _apply(uow: UnitOfWork, carrier_id: int, event: EventIn, at: datetime
           ) -> EventOutcome | None:
    repos, repo = uow.repos, DeliveryRepo(uow.conn)
    if repo.event_of(carrier_id, event.event_id) is not None:
        return None
    found = repo.parcel_by_tracking(event.tracking_number)
    if found is None or found.carrier_id != carrier_id:
        raise NotFound(f"tracking_number: no parcel {event.tracking_number!r} of yours",
                       field="tracking_number")
    # Record the event id first: a concurrent delivery of the same event waits on this
    # unique key and then fails as a duplicate; then lock the parcel to read its state.
    row_id = repo.add_event(carrier_id=carrier_id, event_id=event.event_id,
                            parcel_id=found.id, kind=event.event.value,
                            occurred_at=event.occurred_at, received_at=at, applied=False,
                            outcome="", payload=event.payload)
    parcel = repo.parcel(found.id, lock=True)
    current = ParcelState(parcel.state)
    last = _aware(parcel.last_event_at)
    target = next_state(current, event.event,
                        to_pickup_point=parcel.pickup_location_id is not None,
                        newer=last is None or event.occurred_at >= last)
    notes: list[str] = []
    refund_due = False
    if target is None:
        notes.append(f"recorded only: parcel is {current.value}")
    else:
        values: dict[str, Any] = {"last_event_at": event.occurred_at}
        if current == P.HANDED_OVER:
            values["picked_up_at"] = event.occurred_at
        if target in (P.DELIVERED, P.READY_FOR_COLLECTION):
            values["delivered_at"] = at
        if RANK[target] >= 4 and target not in (P.DELIVERED, P.READY_FOR_COLLECTION):
            values["closed_at"] = at
        if not repo.move_parcel(parcel.id, current.value, target.value, **values):
            raise Conflict(f"parcel {parcel.id} changed concurrently; send the event again",
                           field="tracking_number", code="concurrent_change")
        notes.append(f"parcel {current.value} -> {target.value}")
        if current not in LEFT_SELLER:
            notes += _leave_seller(uow, parcel, carrier_id)
        notes += _order_effects(uow, parcel, target, at)
        refund_due = target == P.LOST
    outcome = "; ".join(notes)
    repo.set_event(row_id, applied=target is not None, outcome=outcome[:200])
    order = repos.orders.get(parcel.order_id)
    return EventOutcome(False, event.event_id, target is not None, outcome, parcel.id,
                        parcel.tracking_number, (target or current).value, order.id,
                        order.state, refund_due)


def _move_if_legal(uow: UnitOfWork, order_id: int, target: OrderState, note: str
                   ) -> list[str]:
    order = uow.repos.orders.get(order_id)
    if order.state == target.value or not can_transition(order.state, target):
        return []
    move_order(uow, order_id, target, note)
    return [f"order {order.state} -> {target.value}"]


def _leave_seller(uow: UnitOfWork, parcel: Any, carrier_id: int) -> list[str]:
    """The carrier has the parcel: its reserved units leave the location for good."""
    repo = DeliveryRepo(uow.conn)
    moved = repo.set_allocation_status_at(parcel.order_id, parcel.location_id, "reserved",
                                          "shipped")
    for alloc in moved:
        if not uow.repos.stock.consume(alloc.sku_id, alloc.location_id, alloc.quantity):
            raise RuntimeError(f"order {parcel.order_id}: reservation of SKU {alloc.sku_id} "
                               f"at location {alloc.location_id} is missing")
    return _move_if_legal(uow, parcel.order_id, OrderState.SHIPPED,
                          f"picked up by carrier {carrier_id} ({parcel.tracking_number})")


def _order_effects(uow: UnitOfWork, parcel: Any, target: ParcelState, at: datetime
                   ) -> list[str]:
    repo = DeliveryRepo(uow.conn)
    siblings = repo.parcels_of(parcel.order_id)
    states = {s.state for s in siblings}
    if target == P.DELIVERED and states <= {P.DELIVERED.value, P.COLLECTED.value}:
        notes = _move_if_legal(uow, parcel.order_id, OrderState.DELIVERED,
                               f"delivered ({parcel.tracking_number})")
        if notes:
            uow.repos.money.update_order_money(parcel.order_id, delivered_at=at)
        return notes
    if target == P.READY_FOR_COLLECTION and states == {P.READY_FOR_COLLECTION.value}:
        salt = secrets.token_hex(8)
        code = pickup_code(_secret_key(uow), parcel.order_id, salt)
        repo.update_parcels_of(parcel.order_id, pickup_salt=salt,
                               pickup_code_hash=pickup_hash(salt, code), pickup_attempts=0)
        order = uow.repos.orders.get(parcel.order_id)
        uow.repos.outbox.add("buyer.pickup_ready", {
            "order_id": parcel.order_id, "buyer_id": order.buyer_id,
            "location_id": parcel.pickup_location_id})
        return ["ready for collection: pickup code issued"]
    if target == P.RETURNED_TO_SENDER:
        return _move_if_legal(uow, parcel.order_id, OrderState.RETURNED,
                              f"returned to sender ({parcel.tracking_number})")
    return []


def _secret_key(uow: UnitOfWork) -> str:
    """$SILKROUTE_SECRET_KEY, else a random key kept in the database (set the variable in
    production so that a copy of the database alone does not reveal pickup codes)."""
    env = os.environ.get(SECRET_ENV)
    if env:
        return env
    meta = uow.repos.meta
    key = meta.get(SECRET_META_KEY)
    if key is None:
        key = secrets.token_urlsafe(32)
        meta.set(SECRET_META_KEY, key)
    return key


# settling: refunds after lost parcels, received returns, expired pickups ------------------
def settle(uows: UowFactory, order_ids: list[int] | None = None) -> list[int]:
    """Refund in full every order (of `order_ids`, else all) whose parcel is lost, or whose
    goods are back (a received return, an expired pickup). Safe to run again."""
    with uows() as uow:
        rows = DeliveryRepo(uow.conn).settle_candidates(order_ids)
    by_order: dict[int, set[str]] = defaultdict(set)
    order_state: dict[int, str] = {}
    for r in rows:
        by_order[r.order_id].add(r.state)
        order_state[r.order_id] = r.order_state
    due = []
    for oid, states in sorted(by_order.items()):
        back = states <= {P.RETURN_RECEIVED.value, P.EXPIRED.value}
        if P.LOST.value in states or (back and order_state[oid] == "returned"):
            due.append(oid)
    done = []
    for oid in due:
        try:
            payments.refund(uows(), oid, reason="parcel lost" if oid in by_order and
                            P.LOST.value in by_order[oid] else "goods returned")
        except DomainError as exc:
            log.warning("order %s not refunded: %s", oid, exc.message)
            continue
        done.append(oid)
    return done


@dataclass(frozen=True)
class ReturnReceived:
    order_id: int
    state: str
    units_restocked: int
    refunded: int


def receive_return(uows: UowFactory, seller_id: int, order_id: int) -> ReturnReceived:
    """The seller has the returned parcels back: their units go back on the shelf of the
    location they left from, and the buyer is refunded in full."""
    units = 0
    with uows() as uow:
        repo = DeliveryRepo(uow.conn)
        order = uow.repos.orders.get(order_id)
        if order is None or order.seller_id != seller_id:
            raise _no_order(order_id)
        returned = [p for p in repo.parcels_of(order_id)
                    if p.state == P.RETURNED_TO_SENDER.value]
        if not returned:
            raise Conflict(f"order {order_id} has no parcel returned to sender",
                           field="order_id", code="no_return")
        for parcel in returned:
            if not repo.move_parcel(parcel.id, parcel.state, P.RETURN_RECEIVED.value,
                                    closed_at=_now()):
                raise Conflict(f"parcel {parcel.id} changed concurrently",
                               field="order_id", code="concurrent_change")
            for alloc in repo.set_allocation_status_at(order_id, parcel.location_id,
                                                       "shipped", "returned"):
                repo.add_stock(alloc.sku_id, alloc.location_id, alloc.quantity)
                units += alloc.quantity
    refunded = settle(uows, [order_id])
    with uows() as uow:
        state = uow.repos.orders.get(order_id).state
        om = uow.repos.money.order_money(order_id)
    amount = int(om.refunded_from_escrow) + int(om.refunded_after_release) if om else 0
    return ReturnReceived(order_id, state, units, amount if refunded else 0)


# reads: tracking, carriers' lists and manifest ----------------------------------------------
def _timeline(uow: UnitOfWork, order: Any) -> dict[str, Any]:
    repo = DeliveryRepo(uow.conn)
    parcels = repo.parcels_of(order.id)
    events = repo.events_of([p.id for p in parcels]) if parcels else []
    by_parcel: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for e in events:
        by_parcel[e.parcel_id].append({"event_id": e.event_id, "event": e.kind,
                                       "occurred_at": _iso(e.occurred_at),
                                       "received_at": _iso(e.received_at),
                                       "applied": bool(e.applied), "outcome": e.outcome})
    history = [{"from": e.from_state, "to": e.to_state, "note": e.note,
                "at": _iso(e.created_at)} for e in uow.repos.orders.events(order.id)]
    return {"order_id": order.id, "state": order.state, "service": order.service,
            "pickup_location_id": order.pickup_location_id,
            "parcels": [{**parcel_item(p), "events": by_parcel.get(p.id, [])}
                        for p in parcels],
            "history": history}


def tracking(uow: UnitOfWork, order_id: int, *, buyer_id: int | None = None,
             seller_id: int | None = None) -> dict[str, Any]:
    """An order's parcels with every carrier event, and the order's own history."""
    with uow:
        order = uow.repos.orders.get(order_id)
        if order is None or (buyer_id is not None and order.buyer_id != buyer_id) or (
                seller_id is not None and order.seller_id != seller_id):
            raise _no_order(order_id)
        return _timeline(uow, order)


def carrier_parcels(uow: UnitOfWork, carrier_id: int, state: str | None = None,
                    limit: int = 20, offset: int = 0) -> Page:
    check_page(limit, offset)
    if state is not None and state not in {s.value for s in ParcelState}:
        raise ValidationError(f"state: {state!r} is not a parcel state", field="state")
    with uow:
        rows, total = DeliveryRepo(uow.conn).carrier_parcels(carrier_id, state, limit, offset)
    return Page([parcel_item(r) for r in rows], total, limit, offset)


def carrier_parcel(uow: UnitOfWork, carrier_id: int, parcel_id: int) -> dict[str, Any]:
    with uow:
        repo = DeliveryRepo(uow.conn)
        parcel = repo.parcel(parcel_id)
        if parcel is None or parcel.carrier_id != carrier_id:
            raise NotFound(f"parcel_id: no parcel {parcel_id}", field="parcel_id")
        events = repo.events_of([parcel_id])
    return {**parcel_item(parcel), "events": [
        {"event_id": e.event_id, "event": e.kind, "occurred_at": _iso(e.occurred_at),
         "received_at": _iso(e.received_at), "applied": bool(e.applied),
         "outcome": e.outcome} for e in events]}


def manifest(uow: UnitOfWork, carrier_id: int, day: date | None = None) -> dict[str, Any]:
    """The parcels handed to a carrier on a day (UTC), by the location to collect from."""
    d = day or _now().date()
    start = datetime.combine(d, time(0), tzinfo=UTC)
    with uow:
        rows = DeliveryRepo(uow.conn).manifest(carrier_id, start, start + timedelta(days=1))
    stops: dict[int, dict[str, Any]] = {}
    for r in rows:
        stop = stops.setdefault(r.from_id, {"location_id": r.from_id, "name": r.from_name,
                                            "zone_id": r.from_zone, "parcels": []})
        stop["parcels"].append({"id": r.id, "tracking_number": r.tracking_number,
                                "order_id": r.order_id, "state": r.state,
                                "weight_g": int(r.weight_g), "service": r.service,
                                "to_zone_id": r.to_zone, "to_latitude": r.to_lat,
                                "to_longitude": r.to_lon,
                                "pickup_location_id": r.pickup_location_id})
    return {"carrier_id": carrier_id, "date": d.isoformat(), "parcels": len(rows),
            "weight_g": sum(int(r.weight_g) for r in rows), "stops": list(stops.values())}


# pickup -----------------------------------------------------------------------------------
def _pickup_parcels(uow: UnitOfWork, order: Any) -> list[Any]:
    if order.service != "pickup":
        raise Conflict(f"order {order.id} is not a pickup order", field="order_id",
                       code="not_a_pickup_order")
    parcels = list(DeliveryRepo(uow.conn).parcels_of(order.id))
    if parcels and all(p.state == P.COLLECTED.value for p in parcels):
        raise Conflict(f"order {order.id} has been collected", field="order_id",
                       code="already_collected")
    if not parcels or any(p.state != P.READY_FOR_COLLECTION.value for p in parcels):
        raise Conflict(f"order {order.id} is not ready for collection yet", field="order_id",
                       code="not_ready")
    return parcels


def pickup_code_of(uow: UnitOfWork, buyer_id: int, order_id: int) -> dict[str, Any]:
    """The buyer's 6-digit code to show at the store, once the order is there."""
    with uow:
        order = uow.repos.orders.get(order_id)
        if order is None or order.buyer_id != buyer_id:
            raise _no_order(order_id)
        parcels = _pickup_parcels(uow, order)
        first = parcels[0]
        code = pickup_code(_secret_key(uow), order_id, first.pickup_salt)
        loc = uow.repos.locations.get(first.pickup_location_id)
    return {"order_id": order_id, "code": code, "location_id": loc.id, "location": loc.name,
            "ready_since": _iso(first.delivered_at),
            "attempts_left": max(0, MAX_PICKUP_ATTEMPTS - int(first.pickup_attempts))}


class WrongPickupCode(ValidationError):
    """The code shown at the store is not the order's (HTTP 422)."""

    code = "wrong_pickup_code"


@dataclass(frozen=True)
class Collected:
    order_id: int
    state: str
    parcels: int


def collect(uows: UowFactory, seller_id: int, order_id: int, code: str, *,
            now: datetime | None = None) -> Collected:
    """The store checks the buyer's code and hands the goods over: the order is delivered.
    A wrong code counts; after five the order is locked."""
    at = _now(now)
    wrong: DomainError | None = None
    with uows() as uow:
        order = uow.repos.orders.get(order_id)
        point = uow.repos.locations.get(order.pickup_location_id) if (
            order is not None and order.pickup_location_id is not None) else None
        if order is None or point is None or point.seller_id != seller_id:
            raise _no_order(order_id)
        parcels = _pickup_parcels(uow, order)
        first = parcels[0]
        if int(first.pickup_attempts) >= MAX_PICKUP_ATTEMPTS:
            raise Conflict(f"order {order_id}: {MAX_PICKUP_ATTEMPTS} wrong codes; pickup "
                           "is locked", field="code", code="pickup_locked")
        if not isinstance(code, str) or pickup_hash(first.pickup_salt, code.strip()) \
                != first.pickup_code_hash:
            tries = DeliveryRepo(uow.conn).count_attempt(order_id)
            left = max(0, MAX_PICKUP_ATTEMPTS - tries)
            wrong = WrongPickupCode(
                f"code: wrong pickup code ({tries} wrong of {MAX_PICKUP_ATTEMPTS}; "
                f"{left} tries left" + ("; pickup is now locked)" if left == 0 else ")"),
                field="code")
        else:
            repo = DeliveryRepo(uow.conn)
            for parcel in parcels:
                if not repo.move_parcel(parcel.id, P.READY_FOR_COLLECTION.value,
                                        P.COLLECTED.value, closed_at=at):
                    raise Conflict(f"order {order_id} changed concurrently",
                                   field="order_id", code="concurrent_change")
            move_order(uow, order_id, OrderState.DELIVERED, f"collected at {point.name}")
            uow.repos.money.update_order_money(order_id, delivered_at=at)
    if wrong is not None:
        raise wrong  # after the attempt was counted and committed
    return Collected(order_id, OrderState.DELIVERED.value, len(parcels))


def expire_pickups(uows: UowFactory, days: int, *, now: datetime | None = None) -> list[int]:
    """Orders waiting at a pickup point for `days` days: their units go onto the store's
    shelf, the order is returned and the buyer refunded in full."""
    cutoff = _now(now) - timedelta(days=days)
    with uows() as uow:
        due = DeliveryRepo(uow.conn).ready_before(cutoff)
    done = []
    for order_id in due:
        try:
            with uows() as uow:
                repo = DeliveryRepo(uow.conn)
                for parcel in repo.parcels_of(order_id):
                    if not repo.move_parcel(parcel.id, P.READY_FOR_COLLECTION.value,
                                            P.EXPIRED.value, closed_at=_now(now)):
                        raise Conflict("collected meanwhile", code="concurrent_change")
                    for alloc in repo.set_allocation_status_at(order_id, parcel.location_id,
                                                               "shipped", "returned"):
                        repo.add_stock(alloc.sku_id, parcel.pickup_location_id,
                                       alloc.quantity)
                move_order(uow, order_id, OrderState.RETURNED,
                           f"not collected within {days} days")
        except DomainError as exc:
            log.info("pickup of order %s not expired: %s", order_id, exc.message)
            continue
        done.append(order_id)
    settle(uows, done)
    return done


# buyer refunds and the seller's decisions --------------------------------------------------
def request_item(row: Any) -> dict[str, Any]:
    return {"id": row.id, "order_id": row.order_id, "buyer_id": row.buyer_id,
            "amount": int(row.amount) if row.amount is not None else None,
            "reason": row.reason, "state": row.state, "refund_id": row.refund_id,
            "created_at": _iso(row.created_at), "decided_at": _iso(row.decided_at)}


def request_refund(uows: UowFactory, buyer_id: int, order_id: int, amount: int | None,
                   reason: str = "") -> dict[str, Any]:
    """The buyer asks for money back (all that is left when `amount` is None). Before the
    seller has handed the order over it is refunded at once; after, the seller decides."""
    with uows() as uow:
        repo = DeliveryRepo(uow.conn)
        order = uow.repos.orders.get(order_id)
        if order is None or order.buyer_id != buyer_id:
            raise _no_order(order_id)
        if uow.repos.money.order_money(order_id) is None:
            raise payments.OrderNotPaid(f"order {order_id} is not paid (state {order.state})",
                                        field="order_id")
        if repo.pending_request_of(order_id) is not None:
            raise Conflict(f"order {order_id} already has a refund request pending",
                           field="order_id", code="refund_pending")
        immediate = order.state == OrderState.PAID.value
        request_id = repo.add_refund_request(
            order_id=order_id, buyer_id=buyer_id, seller_id=order.seller_id, amount=amount,
            reason=reason[:1000], state="pending")
    if immediate:
        return decide_refund(uows, order.seller_id, request_id, approve=True)
    with uows() as uow:
        return request_item(DeliveryRepo(uow.conn).refund_request(request_id))


def refund_requests(uow: UnitOfWork, seller_id: int, state: str | None = None,
                    limit: int = 20, offset: int = 0) -> Page:
    check_page(limit, offset)
    if state is not None and state not in ("pending", "approved", "rejected"):
        raise ValidationError(f"state: {state!r} is not pending, approved or rejected",
                              field="state")
    with uow:
        rows, total = DeliveryRepo(uow.conn).refund_requests_of_seller(seller_id, state,
                                                                      limit, offset)
    return Page([request_item(r) for r in rows], total, limit, offset)


def decide_refund(uows: UowFactory, seller_id: int, request_id: int, *, approve: bool
                  ) -> dict[str, Any]:
    """Approve (refund through the payment provider) or reject a pending request."""
    state = "approved" if approve else "rejected"
    with uows() as uow:
        repo = DeliveryRepo(uow.conn)
        row = repo.refund_request(request_id)
        if row is None or row.seller_id != seller_id:
            raise NotFound(f"request_id: no refund request {request_id}", field="request_id")
        if not repo.decide_refund_request(request_id, state, None, _now()):
            raise Conflict(f"refund request {request_id} is {row.state}, not pending",
                           field="request_id", code="already_decided")
    if approve:
        try:
            done = payments.refund(uows(), row.order_id, row.amount, reason=row.reason)
        except BaseException:
            with uows() as uow:  # give the decision back: nothing was refunded
                DeliveryRepo(uow.conn).set_refund_request(request_id, state="pending",
                                                          decided_at=None)
            raise
        with uows() as uow:
            DeliveryRepo(uow.conn).set_refund_request(request_id, refund_id=done.refund_id)
    with uows() as uow:
        return request_item(DeliveryRepo(uow.conn).refund_request(request_id))


# money views of a seller --------------------------------------------------------------------
def statement(uow: UnitOfWork, seller_id: int, limit: int = 20, offset: int = 0
              ) -> dict[str, Any]:
    """The seller's payable account: balance per currency and its postings, newest first."""
    check_page(limit, offset)
    with uow:
        rows, total, balances = DeliveryRepo(uow.conn).statement(
            f"seller_payable:{seller_id}:", limit, offset)
    page = Page([{"posting_id": r.id, "amount": int(r.amount), "currency": r.currency,
                  "kind": r.kind, "reference": r.reference, "at": _iso(r.created_at)}
                 for r in rows], total, limit, offset)
    return {"seller_id": seller_id, "balances": dict(sorted(balances.items())),
            "items": page.items, "total": page.total, "limit": limit, "offset": offset,
            "next_offset": page.next_offset}


def payouts_of_seller(uow: UnitOfWork, seller_id: int, limit: int = 20, offset: int = 0
                      ) -> Page:
    check_page(limit, offset)
    with uow:
        rows, total = DeliveryRepo(uow.conn).payouts_to(f"seller_payable:{seller_id}:",
                                                        limit, offset)
    return Page([{"id": r.id, "batch_id": r.batch_id, "amount": int(r.amount),
                  "currency": r.currency, "status": r.status,
                  "provider_ref": r.provider_ref, "at": _iso(r.created_at)} for r in rows],
                total, limit, offset)
