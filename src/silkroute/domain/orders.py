"""Orders: one per seller per checkout, with lines, and the order state machine."""

from __future__ import annotations

from enum import StrEnum

from silkroute.domain.errors import IllegalTransition


class OrderState(StrEnum):
    CREATED = "created"
    RESERVED = "reserved"
    PAID = "paid"
    READY_TO_SHIP = "ready_to_ship"
    SHIPPED = "shipped"
    DELIVERED = "delivered"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    REFUNDED = "refunded"
    RETURNED = "returned"


S = OrderState

#: Every legal move of an order. Anything else raises IllegalTransition.
TRANSITIONS: dict[OrderState, frozenset[OrderState]] = {
    S.CREATED: frozenset({S.RESERVED, S.CANCELLED}),
    S.RESERVED: frozenset({S.PAID, S.CANCELLED}),
    S.PAID: frozenset({S.READY_TO_SHIP, S.REFUNDED}),
    S.READY_TO_SHIP: frozenset({S.SHIPPED, S.REFUNDED}),
    S.SHIPPED: frozenset({S.DELIVERED, S.RETURNED, S.REFUNDED}),
    S.DELIVERED: frozenset({S.COMPLETED, S.RETURNED, S.REFUNDED}),
    S.COMPLETED: frozenset({S.RETURNED, S.REFUNDED}),
    S.RETURNED: frozenset({S.REFUNDED}),
    S.CANCELLED: frozenset(),
    S.REFUNDED: frozenset(),
}

#: States in which the order's units are still reserved at their locations.
HOLDS_RESERVATION = frozenset({S.RESERVED, S.PAID, S.READY_TO_SHIP})
TERMINAL = frozenset(s for s, nxt in TRANSITIONS.items() if not nxt)


def parse_state(value: str) -> OrderState:
    try:
        return OrderState(value)
    except ValueError:
        from silkroute.domain.errors import ValidationError

        raise ValidationError(
            f"state: unknown order state {value!r}", field="state"
        ) from None


def can_transition(current: OrderState | str, target: OrderState | str) -> bool:
    return OrderState(target) in TRANSITIONS[OrderState(current)]


def transition(order_id: object, current: OrderState | str, target: OrderState | str) -> OrderState:
    """Return the new state, or raise IllegalTransition naming order, current and attempted."""
    cur, tgt = OrderState(current), OrderState(target)
    if tgt not in TRANSITIONS[cur]:
        raise IllegalTransition(order_id, cur.value, tgt.value)
    return tgt
