"""Parcels and carrier events: the forward-only parcel state machine and webhook signing."""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime
from enum import StrEnum

from silkroute.domain.errors import DomainError


class ParcelState(StrEnum):
    HANDED_OVER = "handed_over"  # at the seller's location, waiting for the carrier
    PICKED_UP = "picked_up"
    IN_TRANSIT = "in_transit"
    OUT_FOR_DELIVERY = "out_for_delivery"
    FAILED_ATTEMPT = "failed_attempt"
    DELIVERED = "delivered"  # at the buyer's door
    READY_FOR_COLLECTION = "ready_for_collection"  # at the pickup point
    RETURNED_TO_SENDER = "returned_to_sender"
    LOST = "lost"
    COLLECTED = "collected"  # the buyer showed the pickup code at the store
    RETURN_RECEIVED = "return_received"  # the seller has the returned goods back
    EXPIRED = "expired"  # not collected in time: back on the store's shelf


class CarrierEvent(StrEnum):
    PICKED_UP = "picked_up"
    IN_TRANSIT = "in_transit"
    OUT_FOR_DELIVERY = "out_for_delivery"
    DELIVERED = "delivered"
    FAILED_ATTEMPT = "failed_attempt"
    RETURNED_TO_SENDER = "returned_to_sender"
    LOST = "lost"


P = ParcelState
#: How far along its journey a parcel is. Carrier events only ever move a parcel to a
#: higher rank (or, within rank 3, to a newer delivery attempt); rank 4 ends the carrier's
#: part; rank 5 is what the platform records afterwards.
RANK: dict[ParcelState, int] = {
    P.HANDED_OVER: 0, P.PICKED_UP: 1, P.IN_TRANSIT: 2, P.OUT_FOR_DELIVERY: 3,
    P.FAILED_ATTEMPT: 3, P.DELIVERED: 4, P.READY_FOR_COLLECTION: 4,
    P.RETURNED_TO_SENDER: 4, P.LOST: 4, P.COLLECTED: 5, P.RETURN_RECEIVED: 5, P.EXPIRED: 5,
}
#: States in which the parcel has left the seller's location (its units are consumed).
LEFT_SELLER = frozenset(s for s, r in RANK.items() if r >= 1)
SIGNATURE_WINDOW_SECONDS = 300


def target_of(event: CarrierEvent, *, to_pickup_point: bool) -> ParcelState:
    """The parcel state a carrier event stands for."""
    if event == CarrierEvent.DELIVERED:
        return P.READY_FOR_COLLECTION if to_pickup_point else P.DELIVERED
    return ParcelState(event.value)


def next_state(current: ParcelState, event: CarrierEvent, *, to_pickup_point: bool,
               newer: bool = True) -> ParcelState | None:
    """The state after `event`, or None when the event changes nothing (a late or repeated
    event: it is kept in the timeline only). `newer` says whether the event happened after
    the last one applied; it decides between a failed attempt and a new delivery round."""
    target = target_of(event, to_pickup_point=to_pickup_point)
    if RANK[current] >= 4:
        return None
    if RANK[target] > RANK[current]:
        return target
    if RANK[target] == RANK[current] == 3 and target != current and newer:
        return target
    return None


class BadSignature(DomainError):
    """The webhook's signature does not match its body (HTTP 401)."""

    code = "bad_signature"


class StaleTimestamp(DomainError):
    """The webhook's timestamp is outside the accepted window (HTTP 401)."""

    code = "stale_timestamp"


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The `X-Silkroute-Signature` value: sha256=<hex HMAC-SHA256(secret, "ts.body")>."""
    mac = hmac.new(secret.encode("utf-8"), timestamp.encode("ascii") + b"." + body,
                   hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify(secret: str, timestamp: str | None, signature: str | None, body: bytes,
           now: datetime) -> None:
    """Raise StaleTimestamp or BadSignature unless the webhook is fresh and authentic."""
    if not timestamp or not timestamp.isascii() or not timestamp.isdigit() \
            or len(timestamp) > 12:
        raise StaleTimestamp("X-Silkroute-Timestamp must be unix seconds",
                             field="X-Silkroute-Timestamp")
    if abs(int(now.timestamp()) - int(timestamp)) > SIGNATURE_WINDOW_SECONDS:
        raise StaleTimestamp(f"X-Silkroute-Timestamp {timestamp} is more than "
                             f"{SIGNATURE_WINDOW_SECONDS} seconds from the server's clock",
                             field="X-Silkroute-Timestamp")
    if not signature or not signature.isascii():
        raise BadSignature("X-Silkroute-Signature is missing", field="X-Silkroute-Signature")
    if not hmac.compare_digest(sign(secret, timestamp, body), signature.strip()):
        raise BadSignature("X-Silkroute-Signature does not match the body",
                           field="X-Silkroute-Signature")


def pickup_code(secret: str, order_id: int, salt: str) -> str:
    """The 6-digit code of a pickup order, derived (never stored) from a server secret."""
    mac = hmac.new(secret.encode("utf-8"), f"pickup:{order_id}:{salt}".encode(),
                   hashlib.sha256).digest()
    return f"{int.from_bytes(mac[:8], 'big') % 1_000_000:06d}"


def pickup_hash(salt: str, code: str) -> str:
    return hashlib.sha256(f"{salt}:{code}".encode()).hexdigest()
