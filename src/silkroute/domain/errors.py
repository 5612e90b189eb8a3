"""Domain errors: every refusal a user can reach, each naming its field and problem."""

from __future__ import annotations


class DomainError(Exception):
    """A rule of the domain was broken; `code` is stable, `field` names the input at fault."""

    code = "domain_error"

    def __init__(self, message: str, *, field: str | None = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field
        if code is not None:
            self.code = code


class ValidationError(DomainError):
    """Input is malformed: a usage error (CLI exit 2, HTTP 422)."""

    code = "validation_error"


class NotFound(DomainError):
    """An object that the caller named does not exist (or is not theirs)."""

    code = "not_found"


class OutOfStock(DomainError):
    """Not enough available units of a SKU to reserve."""

    code = "out_of_stock"

    def __init__(self, sku: str, requested: int, available: int, *, location: str | None = None):
        where = f" at {location}" if location else ""
        super().__init__(
            f"out of stock: SKU {sku} has {available} available{where}, {requested} requested",
            field="sku",
        )
        self.sku = sku
        self.requested = requested
        self.available = available


class IllegalTransition(DomainError):
    """An order was asked to move to a state its current state cannot reach."""

    code = "illegal_transition"

    def __init__(self, order_id: object, current: str, attempted: str):
        super().__init__(
            f"order {order_id}: cannot go from {current} to {attempted}", field="state"
        )
        self.order_id = order_id
        self.current = current
        self.attempted = attempted


class Conflict(DomainError):
    """The request conflicts with the current state (e.g. idempotency key reuse)."""

    code = "conflict"


class Unroutable(DomainError):
    """No fulfilment plan exists for an order: `code` says why (no_carrier when no carrier
    serves the destination from where the stock is, capacity_exhausted when every carrier
    or location that could ship it is full today)."""

    code = "unroutable"
