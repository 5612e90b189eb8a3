"""Catalogue rules: SKU codes, prices, weights, dimensions, products, quantities, stock."""

from __future__ import annotations

import pytest

from silkroute.domain.catalog import (
    MAX_LINE_QUANTITY,
    Dimensions,
    Product,
    Sku,
    StockLevel,
    check_quantity,
    check_sku_code,
)
from silkroute.domain.errors import ValidationError
from silkroute.domain.money import Money

KRW_9000 = Money(9000, "KRW")
SKU_RULE = "is not a valid SKU code (letters, digits, '.', '_', '-', ≤64)"


def sku(code: str = "TEE-S", price: Money = KRW_9000, weight_g: int = 200) -> Sku:
    return Sku(code, price, weight_g)


# SKU codes -------------------------------------------------------------------------------
@pytest.mark.parametrize("code", ["A", "TEE-S", "mug_1.v2", "9", "A" * 64, "a-b_c.d"])
def test_valid_sku_codes_are_accepted(code: str) -> None:
    assert check_sku_code(code) == code
    assert sku(code).code == code


@pytest.mark.parametrize("code", ["", "-A", ".A", "_A", "A B", "A/B", "A" * 65, "티셔츠", "A:1"])
def test_invalid_sku_codes_are_refused_naming_the_field(code: str) -> None:
    # given / when / then
    with pytest.raises(ValidationError) as caught:
        sku(code)
    assert caught.value.message == f"sku: {code!r} {SKU_RULE}"
    assert caught.value.field == "sku"


def test_sku_code_with_a_trailing_newline_is_refused() -> None:
    with pytest.raises(ValidationError):
        check_sku_code("A\n")


# SKU price and weight --------------------------------------------------------------------
@pytest.mark.parametrize(
    ("price", "message"),
    [
        (Money(0, "KRW"), "price must be positive, got ₩0"),
        (Money(-5, "USD"), "price must be positive, got -$0.05"),
    ],
)
def test_sku_price_must_be_positive(price: Money, message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        sku(price=price)
    assert caught.value.message == message
    assert caught.value.field == "price"


@pytest.mark.parametrize("weight", [-1, 1.5, True, "200"])
def test_sku_weight_must_be_a_whole_number_of_grams(weight: object) -> None:
    with pytest.raises(ValidationError) as caught:
        sku(weight_g=weight)  # type: ignore[arg-type]
    assert caught.value.message == f"weight_g must be a whole number ≥ 0, got {weight!r}"
    assert caught.value.field == "weight_g"


def test_sku_defaults_to_no_size_and_no_attributes() -> None:
    # given / when
    made = Sku("MUG-1", KRW_9000, 0)
    # then
    assert made.dimensions == Dimensions(0, 0, 0)
    assert dict(made.attributes) == {}
    assert made.id is None


# dimensions ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("dims", "field", "value"),
    [
        ((-1, 10, 10), "length_mm", -1),
        ((10, -2, 10), "width_mm", -2),
        ((10, 10, -3), "height_mm", -3),
        ((10.5, 10, 10), "length_mm", 10.5),
        ((10, "10", 10), "width_mm", "10"),
    ],
)
def test_dimensions_must_be_whole_millimetres(dims: tuple, field: str, value: object) -> None:
    with pytest.raises(ValidationError) as caught:
        Dimensions(*dims)
    assert caught.value.message == f"{field} must be a whole number ≥ 0, got {value!r}"
    assert caught.value.field == field


def test_dimensions_report_the_first_bad_side() -> None:
    with pytest.raises(ValidationError) as caught:
        Dimensions(-1, -1, -1)
    assert caught.value.field == "length_mm"


def test_dimensions_refuse_bool() -> None:
    with pytest.raises(ValidationError):
        Dimensions(10, True, 10)


# products --------------------------------------------------------------------------------
def test_product_with_several_skus_in_one_currency() -> None:
    # given
    product = Product(1, "T-shirt", (sku("TEE-S"), sku("TEE-M")), "apparel")
    # then
    assert [s.code for s in product.skus] == ["TEE-S", "TEE-M"]
    assert (product.seller_id, product.category, product.id) == (1, "apparel", None)


def test_product_category_defaults_to_general() -> None:
    assert Product(1, "Mug", (sku("MUG-1"),)).category == "general"


@pytest.mark.parametrize("title", ["", "   "])
def test_product_title_must_not_be_empty(title: str) -> None:
    with pytest.raises(ValidationError) as caught:
        Product(1, title, (sku(),))
    assert caught.value.message == "title must not be empty"
    assert caught.value.field == "title"


def test_product_needs_a_sku() -> None:
    with pytest.raises(ValidationError) as caught:
        Product(1, "Mug", ())
    assert caught.value.message == "product 'Mug' needs at least one SKU"
    assert caught.value.field == "skus"


def test_duplicate_sku_in_a_product_is_refused() -> None:
    # given two SKUs sharing a code (twice over) and one other
    skus = (sku("B"), sku("A"), sku("C"), sku("A"), sku("B"))
    # when / then the first duplicate in code order is named
    with pytest.raises(ValidationError) as caught:
        Product(1, "T-shirt", skus)
    assert caught.value.message == "duplicate SKU A in product 'T-shirt'"
    assert caught.value.field == "sku"


def test_product_mixing_currencies_is_refused() -> None:
    # given one SKU priced in KRW and two in USD
    skus = (sku("A"), sku("B", Money(900, "USD")), sku("C", Money(100, "USD")))
    # when / then
    with pytest.raises(ValidationError) as caught:
        Product(1, "T-shirt", skus)
    assert caught.value.message == "product 'T-shirt' mixes currencies ['KRW', 'USD']"
    assert caught.value.field == "currency"


# quantities ------------------------------------------------------------------------------
@pytest.mark.parametrize("quantity", [1, 2, MAX_LINE_QUANTITY])
def test_line_quantity_within_bounds_is_returned(quantity: int) -> None:
    assert check_quantity(quantity) == quantity


@pytest.mark.parametrize(
    ("quantity", "message"),
    [
        (0, "quantity must be positive, got 0"),
        (-1, "quantity must be positive, got -1"),
        (1001, "quantity must be at most 1000, got 1001"),
        (True, "quantity must be a whole number, got True"),
        (2.0, "quantity must be a whole number, got 2.0"),
        ("3", "quantity must be a whole number, got '3'"),
    ],
)
def test_line_quantity_out_of_bounds_is_refused(quantity: object, message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        check_quantity(quantity)  # type: ignore[arg-type]
    assert caught.value.message == message
    assert caught.value.field == "quantity"


def test_quantity_error_names_the_field_it_is_given() -> None:
    with pytest.raises(ValidationError) as caught:
        check_quantity(0, "lines[2].quantity")
    assert caught.value.message == "lines[2].quantity must be positive, got 0"
    assert caught.value.field == "lines[2].quantity"


def test_stock_quantity_allows_zero_and_has_no_upper_bound() -> None:
    assert check_quantity(0, "on_hand", allow_zero=True) == 0
    assert check_quantity(1_000_000, "on_hand", allow_zero=True) == 1_000_000


def test_stock_quantity_below_zero_is_refused() -> None:
    with pytest.raises(ValidationError) as caught:
        check_quantity(-1, "on_hand", allow_zero=True)
    assert caught.value.message == "on_hand must be ≥ 0, got -1"
    assert caught.value.field == "on_hand"


# stock levels ----------------------------------------------------------------------------
def test_available_is_on_hand_minus_reserved() -> None:
    assert StockLevel(10, 3).available == 7
    assert StockLevel(4).available == 4


def test_reserve_and_release_move_units_between_available_and_reserved() -> None:
    # given
    level = StockLevel(5, 2)
    # when
    reserved = level.reserve(3)
    released = reserved.release(4)
    # then
    assert reserved == StockLevel(5, 5)
    assert reserved.available == 0
    assert released == StockLevel(5, 1)
    assert level == StockLevel(5, 2)  # immutable


@pytest.mark.parametrize(
    ("on_hand", "reserved", "field", "message"),
    [
        (5, 6, "on_hand", "on hand (5) cannot be below reserved (6)"),
        (-1, 0, "on_hand", "on hand (-1) cannot be below reserved (0)"),
        (5, -1, "reserved", "reserved must be ≥ 0, got -1"),
    ],
)
def test_stock_level_never_has_negative_available(
    on_hand: int, reserved: int, field: str, message: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        StockLevel(on_hand, reserved)
    assert caught.value.message == message
    assert caught.value.field == field


def test_reserving_more_than_available_is_refused() -> None:
    with pytest.raises(ValidationError) as caught:
        StockLevel(5, 2).reserve(4)
    assert caught.value.message == "cannot reserve 4: only 3 available"
    assert caught.value.field == "quantity"


def test_releasing_more_than_reserved_is_refused() -> None:
    with pytest.raises(ValidationError) as caught:
        StockLevel(5, 2).release(3)
    assert caught.value.message == "cannot release 3: only 2 reserved"
    assert caught.value.field == "quantity"


@pytest.mark.parametrize("move", ["reserve", "release"])
@pytest.mark.parametrize("quantity", [0, -1])
def test_reserve_and_release_need_a_positive_quantity(move: str, quantity: int) -> None:
    with pytest.raises(ValidationError) as caught:
        getattr(StockLevel(5, 2), move)(quantity)
    assert caught.value.message == f"quantity must be positive, got {quantity}"
    assert caught.value.field == "quantity"


@pytest.mark.parametrize("on_hand", [2.5, True])
def test_stock_level_refuses_non_integer_units(on_hand: object) -> None:
    with pytest.raises(ValidationError):
        StockLevel(on_hand)  # type: ignore[arg-type]
