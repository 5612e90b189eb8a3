"""Shipping templates: flat and weight-band fees, free above a threshold, free for members."""

from __future__ import annotations

import pytest

from silkroute.domain.errors import ValidationError
from silkroute.domain.money import CurrencyMismatch, Money
from silkroute.domain.shipping import FeeReason, ShippingTemplate, WeightBand


def krw(amount: int) -> Money:
    return Money(amount, "KRW")


BANDS = ShippingTemplate.by_weight(
    [(1_000, krw(3_000)), (5_000, krw(4_500)), (None, krw(8_000))],
    free_threshold=krw(50_000),
)


def test_flat_fee_is_charged_below_threshold() -> None:
    template = ShippingTemplate.flat(krw(3_000), free_threshold=krw(50_000))
    assert template.fee_for(goods_value=krw(49_999), weight_grams=200, is_member=False) == krw(
        3_000
    )


def test_free_at_or_above_threshold() -> None:
    template = ShippingTemplate.flat(krw(3_000), free_threshold=krw(50_000))
    quote = template.quote(goods_value=krw(50_000), weight_grams=200, is_member=False)
    assert quote.fee == krw(0)
    assert quote.reason is FeeReason.FREE_THRESHOLD


def test_free_for_members_unless_the_template_says_otherwise() -> None:
    assert BANDS.quote(goods_value=krw(100), weight_grams=9_000, is_member=True).reason is (
        FeeReason.FREE_MEMBER
    )
    strict = ShippingTemplate.flat(krw(2_500), free_for_members=False)
    assert strict.fee_for(goods_value=krw(100), weight_grams=1, is_member=True) == krw(2_500)


@pytest.mark.parametrize(
    ("grams", "fee"),
    [(0, 3_000), (1_000, 3_000), (1_001, 4_500), (5_000, 4_500), (5_001, 8_000), (90_000, 8_000)],
)
def test_weight_bands_are_inclusive_upper_bounds(grams: int, fee: int) -> None:
    quote = BANDS.quote(goods_value=krw(10_000), weight_grams=grams, is_member=False)
    assert quote.fee == krw(fee)
    assert quote.reason is FeeReason.WEIGHT_BAND


def test_weight_above_closed_bands_is_refused() -> None:
    template = ShippingTemplate.by_weight([(1_000, krw(3_000)), (2_000, krw(4_000))])
    with pytest.raises(ValidationError) as err:
        template.fee_for(goods_value=krw(1), weight_grams=2_001, is_member=False)
    assert err.value.message == (
        "weight_grams: 2001 g is above the heaviest band of this template (2000 g)"
    )
    assert err.value.field == "weight_grams"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "shipping template: give either a flat fee or weight bands, not both or neither"),
        (
            {"flat_fee": krw(1), "weight_bands": (WeightBand(None, krw(1)),)},
            "shipping template: give either a flat fee or weight bands, not both or neither",
        ),
        ({"flat_fee": krw(-1)}, "flat_fee must not be negative, got -₩1"),
        (
            {"weight_bands": (WeightBand(2_000, krw(1)), WeightBand(1_000, krw(2)))},
            "weight_bands[1]: up_to_grams must be an integer above 2000, got 1000",
        ),
        (
            {"weight_bands": (WeightBand(None, krw(1)), WeightBand(1_000, krw(2)))},
            "weight_bands[0]: only the last band may be open-ended",
        ),
    ],
)
def test_bad_templates_are_refused(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError) as err:
        ShippingTemplate("KRW", **kwargs)  # type: ignore[arg-type]
    assert err.value.message == message


def test_currency_mismatch_is_refused() -> None:
    with pytest.raises(CurrencyMismatch, match="flat_fee: currency mismatch: USD, template is in"):
        ShippingTemplate("KRW", flat_fee=Money(100, "USD"))
    with pytest.raises(CurrencyMismatch, match="goods_value: currency mismatch: USD"):
        BANDS.fee_for(goods_value=Money(1, "USD"), weight_grams=1, is_member=False)


def test_negative_weight_is_refused() -> None:
    with pytest.raises(ValidationError, match="weight_grams must be a non-negative integer, got"):
        BANDS.fee_for(goods_value=krw(1), weight_grams=-1, is_member=False)


def test_template_round_trips_through_a_dict() -> None:
    assert ShippingTemplate.from_dict(BANDS.to_dict()) == BANDS
    assert BANDS.to_dict() == {
        "currency": "KRW",
        "flat_fee": None,
        "weight_bands": [[1_000, 3_000], [5_000, 4_500], [None, 8_000]],
        "free_threshold": 50_000,
        "free_for_members": True,
    }
    with pytest.raises(ValidationError, match="shipping template: malformed data"):
        ShippingTemplate.from_dict({"flat_fee": 1})
