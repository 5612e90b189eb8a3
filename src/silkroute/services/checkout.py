"""checkout and cancel: a multi-seller cart becomes one reserved order per seller."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from time import perf_counter
from types import TracebackType
from typing import Any, Protocol

from silkroute.domain.catalog import check_quantity, check_sku_code
from silkroute.domain.errors import NotFound, OutOfStock, ValidationError
from silkroute.domain.orders import HOLDS_RESERVATION, OrderState, transition
from silkroute.routing.policy import (
    CandidateLocation,
    FulfilmentDecision,
    FulfilmentPolicy,
    OrderLineRequest,
    OrderRequest,
)
from silkroute.store.network_repo import UNREAD_SIGNATURE
from silkroute.store.uow import SharedUnitOfWork, UnitOfWork

MAX_ROUTE_ATTEMPTS = 4
MAX_CART_LINES = 100
SERVICES = ("standard", "member_next_day", "pickup")


@dataclass(frozen=True)
class CartLine:
    sku: str
    quantity: int


@dataclass(frozen=True)
class PlacedOrder:
    order_id: int
    seller_id: int
    state: str
    currency: str
    items_amount: int
    shipments: tuple[tuple[int, tuple[tuple[int, int], ...]], ...]  # (location, ((sku, qty),))
    shipping_amount: int = 0


@dataclass(frozen=True)
class CheckoutResult:
    checkout_id: int
    orders: tuple[PlacedOrder, ...]


class CheckoutHooks(Protocol):
    """Extension points of checkout, called inside its transaction (e.g. by payments)."""

    def shipping_fee(self, uow: UnitOfWork, request: OrderRequest, items_amount: int,
                     currency: str) -> int:
        """The shipping fee charged to the buyer for one seller's order, in minor units."""
        ...

    def placed(self, uow: UnitOfWork, result: CheckoutResult) -> None:
        """Called once the orders are recorded, before commit; raising rolls back."""
        ...


@dataclass(frozen=True)
class Known:
    """What a caller already read in the checkout's transaction (one-click reads it in one
    statement with its own context): the buyer's address and the cart's SKUs by code.
    `address` and each SKU row need the attributes `checkout` reads from the tables.

    Optionally also the first routing attempt's candidate locations per seller (what
    `_candidates` would read) and the network signature (`network_signature`), so that
    checkout does not read them again."""

    address: Any
    skus: dict[str, Any]
    candidates: dict[int, list[CandidateLocation]] | None = None
    signature: Any = UNREAD_SIGNATURE


# None: the silkroute router when the database holds a network with carriers
# (services/routing_policy.py), else nearest-with-stock.
_default_policy: FulfilmentPolicy | None = None


def default_policy() -> FulfilmentPolicy | None:
    """The policy set with `set_default_policy`; None means "chosen from the database"."""
    return _default_policy


def set_default_policy(policy: FulfilmentPolicy | None) -> None:
    global _default_policy
    _default_policy = policy


# Told the seconds of every routing decision made in this context (the API sets its
# histogram per request), so services stay free of any metrics library.
routing_observer: ContextVar[Callable[[float], None] | None] = ContextVar(
    "routing_observer", default=None)


def _decide(policy: FulfilmentPolicy, request: OrderRequest,
            candidates: Sequence[CandidateLocation]) -> FulfilmentDecision:
    observe = routing_observer.get()
    if observe is None:
        return policy.decide(request, candidates)
    started = perf_counter()
    try:
        return policy.decide(request, candidates)
    finally:  # a refusal (out of stock, no carrier) is a decision too
        observe(perf_counter() - started)


def _notify(policy: FulfilmentPolicy | None, hook: str) -> None:
    """Tell a policy that keeps its own capacity whether its decisions were kept."""
    callback = getattr(policy, hook, None)
    if callback is not None:
        callback()


class _PolicyOutcome:
    """Picks the policy inside the transaction; once the transaction ended, tells it whether
    its decisions were kept (`on_reserved`, after commit) or not (`on_released`). In a
    shared unit of work (group commit) a checkout that succeeded learns it when the group
    commits or rolls back."""

    def __init__(self, policy: FulfilmentPolicy | None, uow: UnitOfWork):
        self.policy = policy
        self.uow = uow

    def resolve(self, uow: UnitOfWork, signature: Any = UNREAD_SIGNATURE
                ) -> FulfilmentPolicy:
        if self.policy is None:
            from silkroute.services.routing_policy import policy_for_checkout

            self.policy = policy_for_checkout(uow, signature)
        return self.policy

    def __enter__(self) -> _PolicyOutcome:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc_type is None and isinstance(self.uow, SharedUnitOfWork):
            policy = self.policy
            self.uow.defer(lambda committed: _notify(
                policy, "on_reserved" if committed else "on_released"))
            return
        _notify(self.policy, "on_released" if exc_type is not None else "on_reserved")


def validate_cart(lines: Sequence[CartLine]) -> list[CartLine]:
    """Check quantities and codes; merge repeated SKUs into one line."""
    if not lines:
        raise ValidationError("lines: the cart is empty", field="lines")
    if len(lines) > MAX_CART_LINES:
        raise ValidationError(f"lines: at most {MAX_CART_LINES} lines", field="lines")
    merged: dict[str, int] = {}
    for i, line in enumerate(lines):
        check_sku_code(line.sku)
        check_quantity(line.quantity, f"lines[{i}].quantity")
        merged[line.sku] = merged.get(line.sku, 0) + line.quantity
    for code, qty in merged.items():
        check_quantity(qty, f"quantity of {code}")
    return [CartLine(code, qty) for code, qty in merged.items()]


def _candidates(uow: UnitOfWork, seller_id: int, sku_ids: list[int]) -> list[CandidateLocation]:
    per_loc: dict[int, dict[str, Any]] = {}
    for row in uow.repos.stock.candidates(seller_id, sku_ids):
        entry = per_loc.setdefault(row.location_id, {
            "lat": row.latitude, "lon": row.longitude, "name": row.name, "avail": {}})
        entry["avail"][row.sku_id] = int(row.available)
    return [CandidateLocation(loc, e["lat"], e["lon"], e["avail"], e["name"])
            for loc, e in per_loc.items()]


def _check_decision(request: OrderRequest, decision: FulfilmentDecision) -> None:
    """A policy must ship exactly the ordered quantities; anything else is a bug."""
    shipped: dict[int, int] = defaultdict(int)
    for shipment in decision.shipments:
        for sku_id, qty in shipment.lines:
            shipped[sku_id] += qty
    wanted = {ln.sku_id: ln.quantity for ln in request.lines}
    if dict(shipped) != wanted:
        raise RuntimeError(f"policy returned {dict(shipped)} for {wanted}")


def checkout(
    uow: UnitOfWork,
    buyer_id: int,
    lines: Sequence[CartLine],
    *,
    address_id: int | None = None,
    service: str = "standard",
    pickup_location_id: int | None = None,
    policy: FulfilmentPolicy | None = None,
    hooks: CheckoutHooks | None = None,
    known: Callable[[UnitOfWork], Known] | None = None,
) -> CheckoutResult:
    """Split the cart per seller, route each order and reserve its stock atomically.

    Reservations are conditional updates applied in one global (sku, location) order;
    if another buyer won a race, the whole cart is routed again on fresh stock, a bounded
    number of times. Any failure leaves nothing reserved.

    `known`, when given, is called first inside the transaction and replaces the reads of
    the buyer, the default address and the SKUs (it may raise to abort the checkout).

    On PostgreSQL a checkout that reserves one (SKU, location) keeps that conditional
    update for the statement that carries the order's rows at commit (store/sql.py); if it
    finds too little stock there, everything rolls back and the checkout runs once more,
    reserving at once as above.
    """
    cart = validate_cart(lines)
    if service not in SERVICES:
        raise ValidationError(f"service: {service!r} is not one of {', '.join(SERVICES)}",
                              field="service")
    if service == "pickup" and pickup_location_id is None:
        raise ValidationError("pickup_location_id is required for pickup",
                              field="pickup_location_id")
    try:  # on PostgreSQL a lone reservation travels with the order's rows at commit
        return _checkout_once(uow, buyer_id, cart, address_id, service, pickup_location_id,
                              policy, hooks, known, keep=True)
    except _LostRace:  # ... and lost its race there: all rolled back; again, reserving now
        return _checkout_once(uow, buyer_id, cart, address_id, service, pickup_location_id,
                              policy, hooks, known, keep=False)


class _LostRace(Exception):
    """A kept reservation found too little stock when the transaction was sent."""


def _checkout_once(uow: UnitOfWork, buyer_id: int, cart: list[CartLine],
                   address_id: int | None, service: str, pickup_location_id: int | None,
                   policy: FulfilmentPolicy | None, hooks: CheckoutHooks | None,
                   known: Callable[[UnitOfWork], Known] | None, *, keep: bool
                   ) -> CheckoutResult:
    outcome = _PolicyOutcome(policy or _default_policy, uow)
    with outcome, uow:
        repos = uow.repos
        pre = known(uow) if known is not None else None
        policy = outcome.resolve(uow, pre.signature if pre is not None else UNREAD_SIGNATURE)
        if pre is not None:
            address, skus = pre.address, pre.skus
        else:
            if repos.buyers.get(buyer_id) is None:
                raise NotFound(f"buyer_id: no buyer {buyer_id}", field="buyer_id")
            address = (repos.buyers.address(address_id) if address_id is not None
                       else repos.buyers.default_address(buyer_id))
            skus = repos.catalog.skus_by_code(c.sku for c in cart)
        if address is None or address.buyer_id != buyer_id:
            raise (NotFound(f"address_id: no address {address_id} of buyer {buyer_id}",
                            field="address_id") if address_id is not None else
                   ValidationError(f"address_id: buyer {buyer_id} has no address",
                                   field="address_id"))
        dest_lat, dest_lon, dest_zone = address.latitude, address.longitude, address.zone_id
        if pickup_location_id is not None:
            point = repos.locations.get(pickup_location_id)
            if point is None or point.kind not in ("store", "pickup_point"):
                raise NotFound(f"pickup_location_id: no pickup point {pickup_location_id}",
                               field="pickup_location_id")
            dest_lat, dest_lon, dest_zone = point.latitude, point.longitude, point.zone_id
        by_seller: dict[int, list[OrderLineRequest]] = defaultdict(list)
        prices: dict[int, int] = {}
        currency: dict[int, str] = {}
        for i, c in enumerate(cart):
            sku = skus.get(c.sku)
            if sku is None:
                raise NotFound(f"lines[{i}].sku: no SKU {c.sku!r}", field=f"lines[{i}].sku")
            if not sku.on_sale:
                raise ValidationError(f"lines[{i}].sku: {c.sku} is not on sale",
                                      field=f"lines[{i}].sku")
            by_seller[sku.seller_id].append(
                OrderLineRequest(sku.id, sku.code, c.quantity, sku.weight_g))
            prices[sku.id] = int(sku.price_amount)
            currency[sku.seller_id] = sku.currency
        requests = [
            OrderRequest(seller_id, tuple(reqs), dest_lat, dest_lon, dest_zone, service,
                         pickup_location_id)
            for seller_id, reqs in sorted(by_seller.items())
        ]
        decisions = _route_and_reserve(uow, requests, policy,
                                       pre.candidates if pre is not None else None, keep)
        checkout_id = repos.orders.add_checkout(buyer_id)
        placed = []
        for request, decision in zip(requests, decisions, strict=True):
            placed.append(_record_order(uow, checkout_id, buyer_id, address.id, request,
                                        decision, prices, currency[request.seller_id],
                                        policy.name, hooks))
        result = CheckoutResult(checkout_id, tuple(placed))
        if hooks is not None:
            hooks.placed(uow, result)
        return result


def _route_and_reserve(uow: UnitOfWork, requests: list[OrderRequest],
                       policy: FulfilmentPolicy,
                       first: dict[int, list[CandidateLocation]] | None = None,
                       keep: bool = False) -> list[FulfilmentDecision]:
    """`first`: candidates per seller already read for the first attempt (see `Known`).
    `keep`: a decision that reserves one (SKU, location) only may keep its reservation for
    the commit (write-behind, store/sql.py), where losing the race raises `_LostRace`;
    several reservations are applied at once, in their global order."""
    repos = uow.repos
    lost: OrderLineRequest | None = None  # the line whose reservation lost the last race
    for _attempt in range(MAX_ROUTE_ATTEMPTS):
        decisions = []
        for request in requests:
            cands = first.get(request.seller_id) if first is not None else None
            if cands is None:
                cands = _candidates(uow, request.seller_id,
                                    [ln.sku_id for ln in request.lines])
            decision = _decide(policy, request, cands)
            _check_decision(request, decision)
            decisions.append(decision)
        wanted: dict[tuple[int, int], int] = defaultdict(int)
        for decision in decisions:
            for shipment in decision.shipments:
                for sku_id, qty in shipment.lines:
                    wanted[(sku_id, shipment.location_id)] += qty
        # Reserve in one global order; on a lost race, give back what this attempt took
        # (rows we already hold locks on) and route again on fresh stock. Compensating
        # updates cost nothing on the happy path, unlike a savepoint's two statements.
        if keep and len(wanted) == 1:
            ((sku_id, location_id), qty), = wanted.items()
            if repos.stock.reserve_kept(sku_id, location_id, qty, _lost_race):
                return decisions
        done: list[tuple[int, int, int]] = []
        failed = None
        for (sku_id, location_id), qty in sorted(wanted.items()):
            if not repos.stock.reserve(sku_id, location_id, qty):
                failed = (sku_id, location_id)
                break
            done.append((sku_id, location_id, qty))
        if failed is None:
            return decisions
        first = None  # lost a race: route again on stock read now
        for sku_id, location_id, qty in done:
            repos.stock.release(sku_id, location_id, qty)
        _notify(policy, "on_released")  # routed again: give back this attempt's parcels
        lost = next(ln for r in requests for ln in r.lines if ln.sku_id == failed[0])
    assert lost is not None
    line = lost
    seller = next(r.seller_id for r in requests if line in r.lines)
    available = sum(c.available.get(line.sku_id, 0) for c in _candidates(uow, seller,
                                                                         [line.sku_id]))
    raise OutOfStock(line.sku_code, line.quantity, available)


def _lost_race(_changed: int) -> None:
    raise _LostRace


def _record_order(uow: UnitOfWork, checkout_id: int, buyer_id: int, address_id: int,
                  request: OrderRequest, decision: FulfilmentDecision, prices: dict[int, int],
                  currency: str, policy_name: str, hooks: CheckoutHooks | None = None
                  ) -> PlacedOrder:
    repos = uow.repos
    items = sum(prices[ln.sku_id] * ln.quantity for ln in request.lines)
    shipping = hooks.shipping_fee(uow, request, items, currency) if hooks is not None else 0
    order_id = repos.orders.add(
        checkout_id=checkout_id, buyer_id=buyer_id, seller_id=request.seller_id,
        state=OrderState.RESERVED.value, currency=currency, items_amount=items,
        shipping_amount=shipping,
        address_id=address_id, zone_id=request.zone_id, latitude=request.latitude,
        longitude=request.longitude, service=request.service,
        pickup_location_id=request.pickup_location_id, policy=policy_name,
        plan=decision.explanation or None)
    line_ids = {}
    for ln in request.lines:
        line_ids[ln.sku_id] = repos.orders.add_line(
            order_id=order_id, sku_id=ln.sku_id, quantity=ln.quantity,
            unit_price=prices[ln.sku_id])
    repos.orders.add_allocations([
        {"order_id": order_id, "line_id": line_ids[sku_id], "sku_id": sku_id,
         "location_id": s.location_id, "quantity": qty, "carrier_id": s.carrier_id,
         "status": "reserved"}
        for s in decision.shipments for sku_id, qty in s.lines
    ])
    repos.orders.add_events(order_id, [(None, OrderState.CREATED.value),
                                       (OrderState.CREATED.value, OrderState.RESERVED.value)])
    return PlacedOrder(order_id, request.seller_id, OrderState.RESERVED.value, currency, items,
                       tuple((s.location_id, s.lines) for s in decision.shipments), shipping)


def release_reservations(uow: UnitOfWork, order_id: int) -> int:
    """Give back every unit an order still holds; returns how many units."""
    released = 0
    for alloc in uow.repos.orders.allocations(order_id, status="reserved"):
        if not uow.repos.stock.release(alloc.sku_id, alloc.location_id, alloc.quantity):
            raise RuntimeError(f"order {order_id}: reservation of SKU {alloc.sku_id} at "
                               f"location {alloc.location_id} is missing")
        released += alloc.quantity
    uow.repos.orders.set_allocation_status(order_id, "reserved", "released")
    return released


def move_order(uow: UnitOfWork, order_id: int, target: OrderState, note: str = "") -> Any:
    """Move an order along its state machine with a compare-and-set; returns the old row."""
    order = uow.repos.orders.get(order_id)
    if order is None:
        raise NotFound(f"order_id: no order {order_id}", field="order_id")
    transition(order_id, order.state, target)
    if not uow.repos.orders.move(order_id, order.state, target.value):
        fresh = uow.repos.orders.get(order_id)
        transition(order_id, fresh.state, target)  # raises with the state that won
        raise RuntimeError(f"order {order_id} changed concurrently")
    uow.repos.orders.add_event(order_id, order.state, target.value, note)
    return order


@dataclass(frozen=True)
class Cancelled:
    order_id: int
    released_units: int


def cancel(uow: UnitOfWork, order_id: int) -> Cancelled:
    """Cancel an unpaid order and release what it reserved."""
    with uow:
        order = move_order(uow, order_id, OrderState.CANCELLED)
        released = 0
        if OrderState(order.state) in HOLDS_RESERVATION:
            released = release_reservations(uow, order_id)
        return Cancelled(order_id, released)
