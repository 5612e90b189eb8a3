"""The router as checkout's policy: a cached NetworkIndex from the database, capacity per day."""

from __future__ import annotations

import datetime as dt
import functools
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from silkroute.domain.errors import OutOfStock, Unroutable
from silkroute.routing.baselines import SilkroutePolicy
from silkroute.routing.capacity import CapacityState
from silkroute.routing.index import NetworkIndex, build_index
from silkroute.routing.policy import (
    CandidateLocation,
    FulfilmentDecision,
    FulfilmentPolicy,
    NearestWithStockPolicy,
    OrderRequest,
    Shipment,
)
from silkroute.store.network_repo import UNREAD_SIGNATURE, load_snapshot, network_signature
from silkroute.store.uow import UnitOfWork

if TYPE_CHECKING:
    from sqlalchemy import URL, Engine

log = logging.getLogger("silkroute.routing")


@dataclass
class RouterState:
    """One database's compiled network and the carrier/location capacity used today.

    Capacity lives in this process: every process routes against its own count of the
    day's parcels (the database's conditional stock updates stay the source of truth).
    """

    signature: tuple[object, ...]
    index: NetworkIndex
    policy: SilkroutePolicy
    day: dt.date
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def capacity(self) -> CapacityState:
        return self.policy.capacity

    def roll_day(self, today: dt.date) -> None:
        if today != self.day:
            self.policy.capacity = CapacityState.fresh(self.index)
            self.day = today


_states: dict[str, RouterState] = {}
_states_lock = threading.Lock()


def _key(uow: UnitOfWork) -> str:
    return _url_key(uow.engine.url)


@functools.lru_cache(maxsize=64)
def _url_key(url: URL) -> str:  # rendering a URL on every checkout costs more than a lookup
    return url.render_as_string(hide_password=True)


def _signature(uow: UnitOfWork) -> tuple[object, ...] | None:
    """What the cached index depends on: the saved network and the set of locations."""
    return network_signature(uow.conn)


def router_state(uow: UnitOfWork, today: dt.date | None = None, *,
                 signature: Any = UNREAD_SIGNATURE) -> RouterState | None:
    """The router's state for this database; None when no network with carriers was saved.
    Call inside the unit of work.

    The first call, and the first after another network was saved, compile the index while
    the caller waits (an index of another network would route with ids that mean nothing
    now). When only the set of locations changed (a seller opened a warehouse), checkouts
    keep routing on the index they have — locations it does not know are skipped, or the
    order falls back to nearest-with-stock — while a background thread compiles the new
    one and swaps it in.

    `signature` is `network_signature` when the caller already read it in this
    transaction (one-click reads it with its context).
    """
    sig = _signature(uow) if signature is UNREAD_SIGNATURE else signature
    if sig is None:
        return None
    key = _key(uow)
    today = today or dt.date.today()
    with _states_lock:
        state = _states.get(key)
        if state is not None and state.signature != sig and state.signature[0] == sig[0]:
            _rebuild_in_background(key, uow.engine)
        elif state is None or state.signature != sig:
            index = build_index(load_snapshot(uow.conn, with_stock=False))
            state = RouterState(sig, index, SilkroutePolicy(index), today)
            _states[key] = state
        state.roll_day(today)
        return state


_building: set[str] = set()  # keys with a background rebuild under way (under _states_lock)


def _rebuild_in_background(key: str, engine: Engine) -> None:
    """Compile the current network in a daemon thread and swap it in; one at a time per
    database. Call with `_states_lock` held."""
    if key in _building:
        return
    _building.add(key)

    def work() -> None:
        try:
            with UnitOfWork(engine, read_only=True) as u:
                sig = _signature(u)
                snapshot = load_snapshot(u.conn, with_stock=False) if sig else None
            if sig is None or snapshot is None:
                return
            index = build_index(snapshot)
            fresh = RouterState(sig, index, SilkroutePolicy(index), dt.date.today())
            with _states_lock:
                old = _states.get(key)
                # Swap in only over the state this rebuild replaces: not after
                # forget_router_states(), and not over another network saved meanwhile.
                if old is not None and old.signature[0] == sig[0]:
                    with old.lock:
                        fresh.day = old.day
                        _carry_capacity(old, fresh)
                        _states[key] = fresh
        except Exception:  # keep routing on the old index; the next change tries again
            log.exception("background rebuild of the network index failed")
        finally:
            with _states_lock:
                _building.discard(key)

    threading.Thread(target=work, name="silkroute-index-rebuild", daemon=True).start()


def _carry_capacity(old: RouterState, new: RouterState) -> None:
    """Today's parcels stay counted: what each location and carrier already took from the
    old index's capacity is taken from the new one's (matched by id)."""
    oi, ni = old.index, new.index
    pairs = ((oi.loc_ids, oi.loc_capacity, old.capacity.loc_left, ni.loc_pos,
              new.capacity.loc_left),
             (oi.car_ids, oi.car_capacity, old.capacity.car_left, ni.car_pos,
              new.capacity.car_left))
    for ids, cap, left_old, pos_new, left_new in pairs:
        for pos, ident in enumerate(ids.tolist()):
            used = int(cap[pos]) - int(left_old[pos])
            if used and ident in pos_new:
                left_new[pos_new[ident]] -= used


def wait_for_rebuilds(timeout: float = 60.0) -> bool:
    """Wait until no background rebuild is under way (tests, shutdown); True if none is."""
    deadline = time.monotonic() + timeout
    while True:
        with _states_lock:
            if not _building:
                return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)


def index_status(uow: UnitOfWork) -> tuple[bool, bool]:
    """(compiled, current): whether this process has compiled the saved network into the
    router's index, and whether that index also knows every location the database holds
    now (False until a background rebuild caught up). Builds nothing, unlike
    `router_state`. Call inside the unit of work."""
    sig = _signature(uow)
    if sig is None:
        return False, False
    with _states_lock:
        state = _states.get(_key(uow))
    if state is None or state.signature[0] != sig[0]:
        return False, False
    return True, state.signature == sig


def forget_router_states() -> None:
    """Drop every cached index (tests; a process that wants a clean day)."""
    with _states_lock:
        _states.clear()


class RouterCheckoutPolicy:
    """The silkroute router behind checkout's interface, for one checkout call.

    Parcels taken by `decide` count against the shared capacity at once (so the next order
    sees them); checkout calls `on_released` when the attempt's reservation lost a race or
    the checkout failed, which gives them back, and `on_reserved` once it committed.
    """

    name = "silkroute"

    def __init__(self, state: RouterState):
        self.state = state
        self._taken: list[tuple[int, int | None]] = []
        self._fallback = NearestWithStockPolicy()

    def decide(self, request: OrderRequest, candidates: Sequence[CandidateLocation]
               ) -> FulfilmentDecision:
        state = self.state
        index = state.index
        if candidates and not any(c.location_id in index.loc_pos for c in candidates):
            decision = self._fallback.decide(request, candidates)
            return FulfilmentDecision(decision.shipments, {
                "policy": self.name, "note": "locations not in the network index; "
                "fell back to nearest-with-stock"})
        with state.lock:
            plan = state.policy.plan(request, candidates)
            if plan.ok:
                for parcel in plan.parcels:
                    state.capacity.take_parcel(parcel.location_pos, parcel.carrier_pos)
                    self._taken.append((parcel.location_pos, parcel.carrier_pos))
        if not plan.ok:
            if plan.reason == "no_stock":
                for ln in request.lines:
                    total = sum(int(c.available.get(ln.sku_id, 0)) for c in candidates)
                    if total < ln.quantity:
                        raise OutOfStock(ln.sku_code, ln.quantity, total)
            raise _refusal(request, plan.reason, plan.message)
        shipments = tuple(
            Shipment(p.location_id, p.lines, p.carrier_id, int(round(p.cost.total)), p.service,
                     p.promised_date, round(p.on_time_probability, 4))
            for p in plan.parcels)
        return FulfilmentDecision(shipments, {"policy": self.name, **plan.explain()})

    def on_released(self) -> None:
        """Give back every parcel this checkout took (its reservation did not happen)."""
        state = self.state
        with state.lock:
            for loc, car in self._taken:
                state.capacity.loc_left[loc] += 1
                if car is not None:
                    state.capacity.car_left[car] += 1
            self._taken.clear()

    def on_reserved(self) -> None:
        """The checkout committed: the parcels taken stay taken."""
        self._taken.clear()


def _refusal(request: OrderRequest, reason: str | None, detail: str) -> Unroutable:
    where = (f"pickup point {request.pickup_location_id}" if request.service == "pickup"
             else f"zone {request.zone_id}")
    if reason == "no_carrier":
        return Unroutable(
            f"no carrier delivers to {where} from the locations of seller "
            f"{request.seller_id} that hold the items; nothing was reserved",
            field="address_id", code="no_carrier")
    if reason == "capacity_exhausted":
        return Unroutable(
            f"every carrier and location that could ship seller {request.seller_id}'s items "
            f"to {where} is full today; nothing was reserved", field="address_id",
            code="capacity_exhausted")
    return Unroutable(f"no fulfilment plan: {detail}", field="address_id",
                      code=reason or "no_plan")


def policy_for_checkout(uow: UnitOfWork, signature: Any = UNREAD_SIGNATURE
                        ) -> FulfilmentPolicy:
    """The router when the database holds a network with carriers, else nearest-with-stock."""
    state = router_state(uow, signature=signature)
    if state is None:
        return NearestWithStockPolicy()
    return RouterCheckoutPolicy(state)


__all__ = ["RouterCheckoutPolicy", "RouterState", "forget_router_states",
           "policy_for_checkout", "router_state", "wait_for_rebuilds"]
