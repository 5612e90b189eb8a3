"""The order state machine: every legal move succeeds, every other move is refused."""

from __future__ import annotations

import itertools

import pytest

from silkroute.domain.errors import DomainError, IllegalTransition, ValidationError
from silkroute.domain.orders import (
    HOLDS_RESERVATION,
    TERMINAL,
    TRANSITIONS,
    OrderState,
    can_transition,
    parse_state,
    transition,
)

S = OrderState

# The table as the design states it, written out by hand so that a change to TRANSITIONS
# is a deliberate act that also changes this test.
EXPECTED_LEGAL = {
    ("created", "reserved"), ("created", "cancelled"),
    ("reserved", "paid"), ("reserved", "cancelled"),
    ("paid", "ready_to_ship"), ("paid", "refunded"),
    ("ready_to_ship", "shipped"), ("ready_to_ship", "refunded"),
    ("shipped", "delivered"), ("shipped", "returned"), ("shipped", "refunded"),
    ("delivered", "completed"), ("delivered", "returned"), ("delivered", "refunded"),
    ("completed", "returned"), ("completed", "refunded"),
    ("returned", "refunded"),
}
LEGAL = sorted((cur.value, nxt.value) for cur, targets in TRANSITIONS.items() for nxt in targets)
ILLEGAL = sorted(
    (a.value, b.value) for a, b in itertools.product(OrderState, OrderState)
    if b not in TRANSITIONS[a]
)


def test_the_table_covers_every_state_and_is_the_designed_one() -> None:
    assert set(TRANSITIONS) == set(OrderState)
    assert [s.value for s in OrderState] == [
        "created", "reserved", "paid", "ready_to_ship", "shipped", "delivered", "completed",
        "cancelled", "refunded", "returned",
    ]
    assert set(LEGAL) == EXPECTED_LEGAL
    assert len(LEGAL) == 17
    assert len(ILLEGAL) == 100 - 17


def test_terminal_and_reservation_holding_states() -> None:
    assert frozenset({S.CANCELLED, S.REFUNDED}) == TERMINAL
    assert frozenset({S.RESERVED, S.PAID, S.READY_TO_SHIP}) == HOLDS_RESERVATION


@pytest.mark.parametrize(("current", "target"), LEGAL)
def test_every_legal_transition_succeeds(current: str, target: str) -> None:
    # given an order in `current` / when it moves to `target`
    new_state = transition(42, current, target)
    # then it is in `target`
    assert new_state is OrderState(target)
    assert can_transition(current, target) is True
    assert transition(42, OrderState(current), OrderState(target)) is OrderState(target)


@pytest.mark.parametrize(("current", "target"), ILLEGAL)
def test_every_illegal_transition_raises_naming_order_current_and_attempted(
    current: str, target: str
) -> None:
    # given an order in `current`
    assert can_transition(current, target) is False
    # when it is asked to move to `target` / then
    with pytest.raises(IllegalTransition) as caught:
        transition(42, current, target)
    exc = caught.value
    assert str(exc) == f"order 42: cannot go from {current} to {target}"
    assert exc.message == f"order 42: cannot go from {current} to {target}"
    assert (exc.order_id, exc.current, exc.attempted) == (42, current, target)
    assert exc.field == "state"
    assert exc.code == "illegal_transition"
    assert isinstance(exc, DomainError)
    assert not isinstance(exc, ValidationError)  # a refused operation, CLI exit 1


def test_illegal_transition_message_uses_state_values_and_any_order_id() -> None:
    with pytest.raises(IllegalTransition) as caught:
        transition("ord-7", S.CANCELLED, S.RESERVED)
    assert caught.value.message == "order ord-7: cannot go from cancelled to reserved"


def test_a_full_happy_path_and_a_return() -> None:
    # given a new order / when it walks the whole life / then each step is allowed
    state = S.CREATED
    for nxt in ("reserved", "paid", "ready_to_ship", "shipped", "delivered", "completed",
                "returned", "refunded"):
        state = transition(1, state, nxt)
    assert state is S.REFUNDED


def test_parse_state_accepts_known_values() -> None:
    assert parse_state("ready_to_ship") is S.READY_TO_SHIP


@pytest.mark.parametrize("value", ["shipping", "", "CREATED"])
def test_parse_state_refuses_unknown_values_naming_the_field(value: str) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_state(value)
    assert caught.value.message == f"state: unknown order state {value!r}"
    assert caught.value.field == "state"
