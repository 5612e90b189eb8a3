"""NearestWithStockPolicy on hand-built candidates: nearest full location, splits, refusals."""

from __future__ import annotations

import pytest

from silkroute.domain.errors import OutOfStock
from silkroute.routing.policy import (
    CandidateLocation,
    FulfilmentDecision,
    NearestWithStockPolicy,
    OrderLineRequest,
    OrderRequest,
    Shipment,
)

# The buyer is in central Seoul; candidates sit at increasing distance from there.
BUYER = (37.5665, 126.9780)
SEOUL = (37.5700, 126.9800)     # < 1 km
INCHEON = (37.4563, 126.7052)   # ~ 27 km
DAEJEON = (36.3504, 127.3845)   # ~ 140 km
BUSAN = (35.1796, 129.0756)     # ~ 325 km

TEE, MUG = 11, 22


def request(*lines: tuple[int, str, int]) -> OrderRequest:
    return OrderRequest(
        seller_id=1,
        lines=tuple(OrderLineRequest(sku_id, code, qty) for sku_id, code, qty in lines),
        latitude=BUYER[0],
        longitude=BUYER[1],
    )


def at(location_id: int, where: tuple[float, float], **available: int) -> CandidateLocation:
    ids = {"tee": TEE, "mug": MUG}
    return CandidateLocation(location_id, where[0], where[1],
                             {ids[name]: qty for name, qty in available.items()})


POLICY = NearestWithStockPolicy()


def test_policy_name() -> None:
    assert POLICY.name == "nearest-with-stock"


def test_nearest_location_holding_every_line_ships_the_whole_order() -> None:
    # given three locations that each hold everything, listed far to near
    candidates = [at(3, BUSAN, tee=9, mug=9), at(2, INCHEON, tee=9, mug=9),
                  at(1, DAEJEON, tee=9, mug=9)]
    # when
    decision = POLICY.decide(request((TEE, "TEE-S", 2), (MUG, "MUG-1", 1)), candidates)
    # then Incheon, the nearest, ships both lines in one parcel
    assert decision == FulfilmentDecision((Shipment(2, ((TEE, 2), (MUG, 1))),))


def test_a_nearer_location_missing_a_line_is_passed_over_for_a_complete_one() -> None:
    # given the nearest holds tees only, the next holds too few mugs, Busan holds all
    candidates = [at(1, SEOUL, tee=5), at(2, INCHEON, tee=5, mug=1),
                  at(3, BUSAN, tee=5, mug=5)]
    # when
    decision = POLICY.decide(request((TEE, "TEE-S", 2), (MUG, "MUG-1", 2)), candidates)
    # then the nearest location with every line wins over a split
    assert decision.shipments == (Shipment(3, ((TEE, 2), (MUG, 2))),)


def test_exact_stock_is_enough() -> None:
    decision = POLICY.decide(request((TEE, "TEE-S", 5)), [at(4, DAEJEON, tee=5)])
    assert decision.shipments == (Shipment(4, ((TEE, 5),)),)


def test_split_when_no_single_location_has_everything() -> None:
    # given tees only in Seoul (3) and Daejeon (10), mugs only in Incheon
    candidates = [at(7, DAEJEON, tee=10), at(5, SEOUL, tee=3), at(6, INCHEON, mug=4)]
    # when 5 tees and 2 mugs are ordered
    decision = POLICY.decide(request((TEE, "TEE-S", 5), (MUG, "MUG-1", 2)), candidates)
    # then each line is filled nearest-first; parcels are listed nearest-first
    assert decision.shipments == (
        Shipment(5, ((TEE, 3),)),
        Shipment(6, ((MUG, 2),)),
        Shipment(7, ((TEE, 2),)),
    )


def test_split_puts_several_lines_from_one_location_into_one_parcel() -> None:
    # given Seoul holds a little of both, Busan the rest
    candidates = [at(2, BUSAN, tee=10, mug=10), at(1, SEOUL, tee=1, mug=1)]
    # when 3 tees and 11 mugs are ordered (more mugs than Busan alone holds)
    decision = POLICY.decide(request((TEE, "TEE-S", 3), (MUG, "MUG-1", 11)), candidates)
    # then Seoul ships what it has of both lines; Busan ships the rest
    assert decision.shipments == (
        Shipment(1, ((TEE, 1), (MUG, 1))),
        Shipment(2, ((TEE, 2), (MUG, 10))),
    )


def test_out_of_stock_when_the_total_over_all_locations_is_short() -> None:
    # given 2 + 3 mugs in all
    candidates = [at(1, SEOUL, tee=9, mug=2), at(2, BUSAN, tee=9, mug=3)]
    # when 6 mugs are ordered / then
    with pytest.raises(OutOfStock) as caught:
        POLICY.decide(request((TEE, "TEE-S", 1), (MUG, "MUG-1", 6)), candidates)
    exc = caught.value
    assert exc.message == "out of stock: SKU MUG-1 has 5 available, 6 requested"
    assert (exc.sku, exc.requested, exc.available) == ("MUG-1", 6, 5)
    assert exc.field == "sku"
    assert exc.code == "out_of_stock"


def test_out_of_stock_when_no_location_holds_the_sku() -> None:
    with pytest.raises(OutOfStock) as caught:
        POLICY.decide(request((MUG, "MUG-1", 1)), [at(1, SEOUL, tee=9)])
    assert caught.value.message == "out of stock: SKU MUG-1 has 0 available, 1 requested"


def test_out_of_stock_when_the_seller_has_no_locations() -> None:
    with pytest.raises(OutOfStock) as caught:
        POLICY.decide(request((TEE, "TEE-S", 1)), [])
    assert caught.value.message == "out of stock: SKU TEE-S has 0 available, 1 requested"


def test_ties_in_distance_go_to_the_lowest_location_id() -> None:
    # given three locations at the very same spot, listed in descending id order
    candidates = [at(9, INCHEON, tee=5), at(4, INCHEON, tee=5), at(6, INCHEON, tee=5)]
    # when
    decision = POLICY.decide(request((TEE, "TEE-S", 1)), candidates)
    # then
    assert decision.shipments == (Shipment(4, ((TEE, 1),)),)


def test_ties_order_a_split_by_location_id() -> None:
    # given two locations at the same spot, neither holding enough alone
    candidates = [at(9, DAEJEON, tee=2), at(4, DAEJEON, tee=2)]
    # when
    decision = POLICY.decide(request((TEE, "TEE-S", 3)), candidates)
    # then the lower id is drained first
    assert decision.shipments == (Shipment(4, ((TEE, 2),)), Shipment(9, ((TEE, 1),)))


def test_decision_ships_exactly_what_was_ordered() -> None:
    candidates = [at(1, SEOUL, tee=1), at(2, INCHEON, tee=1, mug=1), at(3, DAEJEON, tee=7),
                  at(4, BUSAN, mug=9)]
    decision = POLICY.decide(request((TEE, "TEE-S", 8), (MUG, "MUG-1", 4)), candidates)
    shipped: dict[int, int] = {}
    for shipment in decision.shipments:
        for sku_id, qty in shipment.lines:
            shipped[sku_id] = shipped.get(sku_id, 0) + qty
    assert shipped == {TEE: 8, MUG: 4}
    assert decision.shipments == (
        Shipment(1, ((TEE, 1),)),
        Shipment(2, ((TEE, 1), (MUG, 1))),
        Shipment(3, ((TEE, 6),)),
        Shipment(4, ((MUG, 3),)),
    )
