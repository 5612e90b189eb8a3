"""Every marketplace-core service on SQLite and on PostgreSQL (the same tests)."""

from __future__ import annotations

import pytest

from silkroute.domain.catalog import Product, Sku
from silkroute.domain.errors import IllegalTransition, NotFound, OutOfStock, ValidationError
from silkroute.domain.money import Money
from silkroute.services.buyers import add_address, register_buyer
from silkroute.services.catalog import add_location, list_product, open_shop, set_stock
from silkroute.services.catalog_import import CatalogImportError, import_catalog
from silkroute.services.checkout import CartLine, cancel, checkout
from silkroute.services.queries import get_order
from tests.integration.helpers import small_market, stock_of


def test_open_shop_and_add_location_resolve_real_cities(uow):
    shop = open_shop(uow(), "Jeju Citrus", "krw")
    assert (shop.seller_id, shop.shop_id, shop.currency) == (1, 1, "KRW")
    loc = add_location(uow(), shop.seller_id, "Jeju store", "store", city="jeju city")
    assert (loc.location_id, loc.kind, loc.zone) == (1, "store", "Jeju City")
    with uow() as u:
        row = u.repos.locations.get(1)
        assert (row.zone_id, row.owner_kind, row.seller_id) == (1846266, "seller", 1)


def test_add_location_by_coordinates_takes_the_nearest_city(uow):
    seller = open_shop(uow(), "S", "KRW").seller_id
    loc = add_location(uow(), seller, "Near Daegu", latitude=35.87, longitude=128.60)
    assert loc.zone == "Daegu"


def test_add_location_refuses_unknown_city_and_seller(uow):
    seller = open_shop(uow(), "S", "KRW").seller_id
    with pytest.raises(ValidationError, match="city: unknown city 'Atlantis' in KR"):
        add_location(uow(), seller, "X", city="Atlantis")
    with pytest.raises(NotFound, match="seller_id: no seller 99"):
        add_location(uow(), 99, "X", city="Seoul")
    with uow() as u:
        assert u.repos.locations.of_seller(seller) == []


def test_list_product_refuses_taken_sku_and_foreign_currency(uow):
    m = small_market(uow)
    with pytest.raises(ValidationError, match="sku: TEA-1 already exists"):
        list_product(uow(), Product(m.seller_id, "Again", (Sku("TEA-1", Money(1, "KRW"), 1),)))
    with pytest.raises(ValidationError, match="sells in KRW, not USD"):
        list_product(uow(), Product(m.seller_id, "Dollar", (Sku("D-1", Money(100, "USD"), 1),)))


def test_set_stock_cannot_drop_below_reserved(uow):
    m = small_market(uow, stock={("TEA-1", "seoul"): 5})
    checkout(uow(), m.buyer_seoul, [CartLine("TEA-1", 3)])
    with pytest.raises(ValidationError,
                       match="on_hand: 2 is below the 3 units reserved for orders"):
        set_stock(uow(), "TEA-1", m.seoul, 2)
    res = set_stock(uow(), "TEA-1", m.seoul, 4)
    assert (res.on_hand, res.reserved, res.available) == (4, 3, 1)


def test_checkout_splits_the_cart_per_seller_and_reserves_nearest(uow):
    m = small_market(uow, stock={("TEA-1", "seoul"): 5, ("TEA-1", "busan"): 5,
                                 ("MUG-1", "busan"): 2})
    other = open_shop(uow(), "Mug World", "KRW").seller_id
    wh = add_location(uow(), other, "Incheon WH", city="Incheon").location_id
    list_product(uow(), Product(other, "Mug", (Sku("BIGMUG", Money(15000, "KRW"), 500),)))
    set_stock(uow(), "BIGMUG", wh, 10)
    res = checkout(uow(), m.buyer_busan, [CartLine("TEA-1", 2), CartLine("MUG-1", 1),
                                          CartLine("BIGMUG", 1), CartLine("TEA-1", 1)])
    assert [(o.seller_id, o.items_amount, o.state) for o in res.orders] == [
        (m.seller_id, 3 * 12000 + 8000, "reserved"), (other, 15000, "reserved")]
    assert res.orders[0].shipments == ((m.busan, ((1, 3), (2, 1))),)
    assert stock_of(uow, "TEA-1", m.busan) == (5, 3)
    assert stock_of(uow, "TEA-1", m.seoul) == (5, 0)
    assert stock_of(uow, "BIGMUG", wh) == (10, 1)
    view = get_order(uow(), res.orders[0].order_id)
    assert [e["to"] for e in view.events] == ["created", "reserved"]
    assert view.lines == [{"sku": "TEA-1", "quantity": 3, "unit_price": 12000},
                          {"sku": "MUG-1", "quantity": 1, "unit_price": 8000}]


def test_checkout_splits_across_locations_when_no_single_one_has_enough(uow):
    m = small_market(uow, stock={("TEA-1", "seoul"): 2, ("TEA-1", "busan"): 3})
    res = checkout(uow(), m.buyer_seoul, [CartLine("TEA-1", 4)])
    assert res.orders[0].shipments == ((m.seoul, ((1, 2),)), (m.busan, ((1, 2),)))


def test_out_of_stock_names_the_sku_and_leaves_other_lines_unreserved(uow):
    m = small_market(uow, stock={("TEA-1", "seoul"): 5, ("MUG-1", "seoul"): 1})
    with pytest.raises(OutOfStock) as err:
        checkout(uow(), m.buyer_seoul, [CartLine("TEA-1", 2), CartLine("MUG-1", 2)])
    assert err.value.message == "out of stock: SKU MUG-1 has 1 available, 2 requested"
    assert stock_of(uow, "TEA-1", m.seoul) == (5, 0)
    with uow() as u:
        assert u.repos.orders.count_by_state() == {}


@pytest.mark.parametrize(("lines", "error", "message"), [
    ([], ValidationError, "lines: the cart is empty"),
    ([CartLine("TEA-1", 0)], ValidationError, r"lines\[0\].quantity must be positive, got 0"),
    ([CartLine("TEA-1", -2)], ValidationError, r"lines\[0\].quantity must be positive"),
    ([CartLine("NOPE", 1)], NotFound, r"lines\[0\].sku: no SKU 'NOPE'"),
])
def test_checkout_refuses_bad_carts(uow, lines, error, message):
    m = small_market(uow, stock={("TEA-1", "seoul"): 5})
    with pytest.raises(error, match=message):
        checkout(uow(), m.buyer_seoul, lines)
    assert stock_of(uow, "TEA-1", m.seoul) == (5, 0)


def test_checkout_refuses_unknown_buyer_and_foreign_address(uow):
    m = small_market(uow, stock={("TEA-1", "seoul"): 5})
    with pytest.raises(NotFound, match="buyer_id: no buyer 42"):
        checkout(uow(), 42, [CartLine("TEA-1", 1)])
    other_addr = add_address(uow(), m.buyer_busan, city="Ulsan")
    with pytest.raises(NotFound, match=f"address_id: no address {other_addr} of buyer"):
        checkout(uow(), m.buyer_seoul, [CartLine("TEA-1", 1)], address_id=other_addr)
    nobody = register_buyer(uow(), "No address").buyer_id
    with pytest.raises(ValidationError, match=f"buyer {nobody} has no address"):
        checkout(uow(), nobody, [CartLine("TEA-1", 1)])


def test_cancel_releases_reservation_and_is_refused_twice(uow):
    m = small_market(uow, stock={("TEA-1", "seoul"): 5})
    order = checkout(uow(), m.buyer_seoul, [CartLine("TEA-1", 4)]).orders[0].order_id
    assert stock_of(uow, "TEA-1", m.seoul) == (5, 4)
    res = cancel(uow(), order)
    assert (res.order_id, res.released_units) == (order, 4)
    assert stock_of(uow, "TEA-1", m.seoul) == (5, 0)
    with pytest.raises(IllegalTransition,
                       match=f"order {order}: cannot go from cancelled to cancelled"):
        cancel(uow(), order)
    with pytest.raises(NotFound, match="order_id: no order 999"):
        cancel(uow(), 999)
    assert [e["to"] for e in get_order(uow(), order).events] == [
        "created", "reserved", "cancelled"]


CSV_OK = """product,title,category,sku,attributes,price,currency,weight_g,location,quantity
P1,Green tea,food,GT-50,size=50g,9900,KRW,60,Seoul WH,40
P1,Green tea,food,GT-100,size=100g,17900,KRW,110,Busan WH,10
P2,Kettle,home,KT-1,,45000,KRW,1200,,
"""


def test_import_catalog_groups_products_and_sets_stock(uow):
    m = small_market(uow)
    res = import_catalog(uow(), m.seller_id, CSV_OK)
    assert (res.products, res.skus, res.stock_rows, res.units) == (2, 3, 2, 50)
    assert stock_of(uow, "GT-50", m.seoul) == (40, 0)
    assert stock_of(uow, "GT-100", m.busan) == (10, 0)


def test_import_catalog_with_bad_rows_imports_nothing(uow):
    m = small_market(uow)
    bad = CSV_OK + "P3,Cup,home,GT-50,,-5,KRW,100,,\nP4,Pot,home,PT-1,,100,XYZ,100,,\n"
    with pytest.raises(CatalogImportError) as err:
        import_catalog(uow(), m.seller_id, bad)
    assert [str(e) for e in err.value.errors] == [
        "line 5: sku: duplicate SKU GT-50 (first on line 2)",
        "line 5: price: must be positive, got -5",
        "line 6: currency: unknown currency 'XYZ'",
    ]
    with uow() as u:
        assert u.repos.catalog.sku_by_code("GT-100") is None
        assert u.repos.catalog.count_products() == 1
