"""Checkout through the services with the router on a tiny hand-built network in the DB."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from silkroute.domain.carriers import Carrier, CarrierTier, NetworkSnapshot, RateCard, TransitTime
from silkroute.domain.catalog import Product, Sku
from silkroute.domain.errors import Unroutable
from silkroute.domain.money import Money
from silkroute.routing.policy import NearestWithStockPolicy
from silkroute.services import routing_policy as rp
from silkroute.services.buyers import register_buyer
from silkroute.services.catalog import add_location, list_product, open_shop, set_stock
from silkroute.services.checkout import CartLine, CheckoutResult, checkout
from silkroute.store import tables as t
from silkroute.store.network_repo import load_snapshot, store_network
from silkroute.store.repositories import StockRepo
from silkroute.store.uow import UnitOfWork

SEOUL, BUSAN, JEJU = 1835848, 1838524, 1846266
CDF = TransitTime(((0.0, 0.95, 0.99, 1.0, 1.0),) * 4)


def _carrier(cid: int, name: str, zones: set[int], base: int, capacity: int) -> Carrier:
    return Carrier(cid, name, CarrierTier.REGIONAL, frozenset(zones),
                   RateCard(base, 100, (0, 500, 1_000, 2_000)), CDF, 18.0, capacity, 0.95)


@dataclass
class Net:
    engine: Engine
    seoul_wh: int
    busan_wh: int
    buyer_seoul: int
    buyer_busan: int
    buyer_jeju: int


@pytest.fixture
def net(engine: Engine) -> Iterator[Net]:
    """One seller with a Seoul and a Busan warehouse holding TEA-1; carriers: a cheap Seoul
    courier (capacity 1), a Seoul-Busan line; nobody serves Jeju."""
    rp.forget_router_states()

    def uow() -> UnitOfWork:
        return UnitOfWork(engine)

    seller = open_shop(uow(), "Tea House", "KRW").seller_id
    seoul = add_location(uow(), seller, "Seoul WH", city="Seoul").location_id
    busan = add_location(uow(), seller, "Busan WH", city="Busan").location_id
    list_product(uow(), Product(seller, "Tea", (Sku("TEA-1", Money(12000, "KRW"), 500),)))
    set_stock(uow(), "TEA-1", seoul, 10)
    set_stock(uow(), "TEA-1", busan, 10)
    b_seoul = register_buyer(uow(), "Min-jun", city="Seoul").buyer_id
    b_busan = register_buyer(uow(), "Seo-yeon", city="Busan").buyer_id
    b_jeju = register_buyer(uow(), "Ji-ho", city="Jeju City").buyer_id
    with UnitOfWork(engine) as u:
        zones = load_snapshot(u.conn, with_stock=False).zones
        store_network(u.conn, NetworkSnapshot(
            "KR", "KRW", zones, [],
            [_carrier(7, "Seoul courier", {SEOUL}, 2_000, 1),
             _carrier(9, "Seoul-Busan line", {SEOUL, BUSAN}, 3_000, 100)]), "test:tiny")
    yield Net(engine, seoul, busan, b_seoul, b_busan, b_jeju)
    rp.forget_router_states()


def _buy(n: Net, buyer: int, qty: int = 1, **kw: Any) -> CheckoutResult:
    return checkout(UnitOfWork(n.engine), buyer, [CartLine("TEA-1", qty)], **kw)


def _allocations(n: Net) -> list[tuple[int, int | None, int]]:
    with n.engine.connect() as conn:
        rows = conn.execute(select(t.allocations.c.location_id, t.allocations.c.carrier_id,
                                   t.allocations.c.quantity).order_by(t.allocations.c.id))
        return [(int(r[0]), None if r[1] is None else int(r[1]), int(r[2])) for r in rows]


def _reserved(n: Net) -> int:
    with n.engine.connect() as conn:
        return int(conn.execute(select(func.coalesce(func.sum(t.stock.c.reserved), 0)))
                   .scalar_one())


def _car_left(n: Net, carrier_id: int) -> int:
    with UnitOfWork(n.engine) as u:
        state = rp.router_state(u)
    assert state is not None
    return int(state.capacity.car_left[state.index.car_pos[carrier_id]])


def test_router_picks_exact_location_and_carrier(net: Net) -> None:
    first = _buy(net, net.buyer_seoul)
    assert first.orders[0].shipments == ((net.seoul_wh, ((_sku_id(net), 1),)),)
    assert _allocations(net) == [(net.seoul_wh, 7, 1)]
    with net.engine.connect() as conn:
        order = conn.execute(select(t.orders.c.policy, t.orders.c.plan)).one()
    assert order.policy == "silkroute" and order.plan["parcels"][0]["carrier_id"] == 7
    # The Seoul courier is now full (capacity 1): the next Seoul order takes the line.
    _buy(net, net.buyer_seoul)
    # Busan ships from Busan (local band) with the only carrier serving Busan.
    _buy(net, net.buyer_busan)
    assert _allocations(net) == [(net.seoul_wh, 7, 1), (net.seoul_wh, 9, 1),
                                 (net.busan_wh, 9, 1)]
    assert _car_left(net, 7) == 0 and _car_left(net, 9) == 98


def _sku_id(n: Net) -> int:
    with n.engine.connect() as conn:
        return int(conn.execute(select(t.skus.c.id)).scalar_one())


def test_zone_without_carrier_is_refused_and_nothing_reserved(net: Net) -> None:
    before = (_car_left(net, 7), _car_left(net, 9))
    with pytest.raises(Unroutable) as err:
        _buy(net, net.buyer_jeju)
    assert err.value.code == "no_carrier" and err.value.field == "address_id"
    assert f"zone {JEJU}" in err.value.message and "nothing was reserved" in err.value.message
    assert _reserved(net) == 0 and _allocations(net) == []
    with net.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(t.orders)).scalar_one() == 0
    assert (_car_left(net, 7), _car_left(net, 9)) == before


def test_capacity_exhausted_is_a_clear_refusal(net: Net) -> None:
    _buy(net, net.buyer_busan)  # fine: the line has room
    with UnitOfWork(net.engine) as u:
        state = rp.router_state(u)
    assert state is not None
    state.capacity.car_left[state.index.car_pos[9]] = 0
    with pytest.raises(Unroutable) as err:
        _buy(net, net.buyer_busan)
    assert err.value.code == "capacity_exhausted" and "full today" in err.value.message
    assert _reserved(net) == 1


def test_failed_checkout_and_retries_consume_capacity_once(
        net: Net, monkeypatch: pytest.MonkeyPatch) -> None:
    class Boom:
        def shipping_fee(self, *_a: Any) -> int:
            return 0

        def placed(self, *_a: Any) -> None:
            raise RuntimeError("payment declined")

    with pytest.raises(RuntimeError):
        _buy(net, net.buyer_seoul, hooks=Boom())
    assert _car_left(net, 7) == 1 and _reserved(net) == 0

    # Lose the reservation race twice: routed three times, one parcel counted.
    real = StockRepo.reserve
    losses = iter([True, True])

    def flaky(self: StockRepo, sku_id: int, location_id: int, quantity: int) -> bool:
        if next(losses, False):
            return False
        return real(self, sku_id, location_id, quantity)

    monkeypatch.setattr(StockRepo, "reserve", flaky)
    _buy(net, net.buyer_seoul)
    assert _allocations(net) == [(net.seoul_wh, 7, 1)]
    assert _car_left(net, 7) == 0 and _car_left(net, 9) == 100


def test_network_change_rebuilds_and_no_carriers_means_nearest(net: Net) -> None:
    with UnitOfWork(net.engine) as u:
        first = rp.router_state(u)
        assert isinstance(rp.policy_for_checkout(u), rp.RouterCheckoutPolicy)
        store_network(u.conn, NetworkSnapshot("KR", "KRW", [], [], []), "test:empty")
    with UnitOfWork(net.engine) as u:
        assert rp.router_state(u) is None
        assert isinstance(rp.policy_for_checkout(u), NearestWithStockPolicy)
    assert first is not None
    res = _buy(net, net.buyer_busan)
    assert res.orders[0].shipments[0][0] == net.busan_wh
    assert _allocations(net) == [(net.busan_wh, None, 1)]


def test_a_new_location_is_compiled_in_the_background_and_keeps_todays_parcels(
        net: Net) -> None:
    # given the Seoul courier's one parcel of the day is taken
    _buy(net, net.buyer_seoul)
    assert _car_left(net, 7) == 0
    with UnitOfWork(net.engine) as u:
        first = rp.router_state(u)
        seller = u.conn.execute(select(t.locations.c.seller_id).where(
            t.locations.c.id == net.seoul_wh)).scalar_one()
    assert first is not None
    # when the seller opens a third warehouse (same network, one location more)
    incheon = add_location(UnitOfWork(net.engine), seller, "Incheon WH",
                           city="Incheon").location_id
    with UnitOfWork(net.engine) as u:
        served = rp.router_state(u)
    # then checkout keeps routing on the index it has while a new one is compiled
    assert served is first
    assert incheon not in first.index.loc_pos
    assert rp.wait_for_rebuilds(60)
    with UnitOfWork(net.engine) as u:
        rebuilt = rp.router_state(u)
    assert rebuilt is not None and rebuilt is not first
    assert incheon in rebuilt.index.loc_pos
    assert rebuilt.signature[1:] == (3, incheon)  # three locations, the newest id
    # and the day's parcels stay counted on the new index
    assert _car_left(net, 7) == 0 and _car_left(net, 9) == 100
