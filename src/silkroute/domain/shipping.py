"""Shipping templates: the fee a seller charges a buyer (flat or by weight, free rules)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from silkroute.domain.errors import ValidationError
from silkroute.domain.money import CurrencyMismatch, Money, check_currency


class FeeReason(StrEnum):
    FLAT = "flat"
    WEIGHT_BAND = "weight_band"
    FREE_THRESHOLD = "free_threshold"
    FREE_MEMBER = "free_member"


@dataclass(frozen=True, slots=True)
class WeightBand:
    """Parcels weighing up to `up_to_grams` (inclusive; None = no upper limit) pay `fee`."""

    up_to_grams: int | None
    fee: Money


@dataclass(frozen=True, slots=True)
class ShippingQuote:
    fee: Money
    reason: FeeReason
    band: WeightBand | None = None


@dataclass(frozen=True, slots=True)
class ShippingTemplate:
    """A seller's shipping rule: exactly one of `flat_fee` or `weight_bands`, plus free rules.

    `free_threshold`: goods value at or above which shipping is free (None: never).
    `free_for_members`: members of the fast-free-shipping club pay nothing.
    """

    currency: str
    flat_fee: Money | None = None
    weight_bands: tuple[WeightBand, ...] = ()
    free_threshold: Money | None = None
    free_for_members: bool = True

    def __post_init__(self) -> None:
        cur = check_currency(self.currency)
        object.__setattr__(self, "currency", cur)
        object.__setattr__(self, "weight_bands", tuple(self.weight_bands))
        if (self.flat_fee is None) == (not self.weight_bands):
            raise ValidationError(
                "shipping template: give either a flat fee or weight bands, not both or neither",
                field="flat_fee" if self.flat_fee is not None else "weight_bands",
            )
        if self.flat_fee is not None:
            self._check_amount(self.flat_fee, "flat_fee")
        previous = 0
        for i, band in enumerate(self.weight_bands):
            name = f"weight_bands[{i}]"
            self._check_amount(band.fee, f"{name}.fee")
            last = i == len(self.weight_bands) - 1
            if band.up_to_grams is None:
                if not last:
                    raise ValidationError(
                        f"{name}: only the last band may be open-ended", field="weight_bands"
                    )
                continue
            if (
                isinstance(band.up_to_grams, bool)
                or not isinstance(band.up_to_grams, int)
                or band.up_to_grams <= previous
            ):
                raise ValidationError(
                    f"{name}: up_to_grams must be an integer above {previous}, "
                    f"got {band.up_to_grams!r}",
                    field="weight_bands",
                )
            previous = band.up_to_grams
        if self.free_threshold is not None:
            self._check_amount(self.free_threshold, "free_threshold")

    def _check_amount(self, amount: Money, name: str) -> None:
        if not isinstance(amount, Money):
            raise ValidationError(f"{name} must be Money, got {amount!r}", field=name)
        if amount.currency != self.currency:
            raise CurrencyMismatch(
                f"{name}: currency mismatch: {amount.currency}, template is in {self.currency}",
                field=name,
            )
        if amount.amount < 0:
            raise ValidationError(f"{name} must not be negative, got {amount.format()}",
                                  field=name)

    # construction -------------------------------------------------------------------
    @classmethod
    def flat(
        cls, fee: Money, *, free_threshold: Money | None = None, free_for_members: bool = True
    ) -> ShippingTemplate:
        return cls(fee.currency, flat_fee=fee, free_threshold=free_threshold,
                   free_for_members=free_for_members)

    @classmethod
    def by_weight(
        cls,
        bands: Sequence[tuple[int | None, Money]],
        *,
        free_threshold: Money | None = None,
        free_for_members: bool = True,
    ) -> ShippingTemplate:
        if not bands:
            raise ValidationError("weight_bands: give at least one band", field="weight_bands")
        return cls(
            bands[0][1].currency,
            weight_bands=tuple(WeightBand(up_to, fee) for up_to, fee in bands),
            free_threshold=free_threshold,
            free_for_members=free_for_members,
        )

    # rules ----------------------------------------------------------------------------
    def quote(self, *, goods_value: Money, weight_grams: int, is_member: bool) -> ShippingQuote:
        """The fee for one order of `goods_value` weighing `weight_grams`, and why."""
        if goods_value.currency != self.currency:
            raise CurrencyMismatch(
                f"goods_value: currency mismatch: {goods_value.currency}, "
                f"template is in {self.currency}",
                field="goods_value",
            )
        if isinstance(weight_grams, bool) or not isinstance(weight_grams, int) or weight_grams < 0:
            raise ValidationError(
                f"weight_grams must be a non-negative integer, got {weight_grams!r}",
                field="weight_grams",
            )
        zero = Money.zero(self.currency)
        if is_member and self.free_for_members:
            return ShippingQuote(zero, FeeReason.FREE_MEMBER)
        if self.free_threshold is not None and goods_value >= self.free_threshold:
            return ShippingQuote(zero, FeeReason.FREE_THRESHOLD)
        if self.flat_fee is not None:
            return ShippingQuote(self.flat_fee, FeeReason.FLAT)
        for band in self.weight_bands:
            if band.up_to_grams is None or weight_grams <= band.up_to_grams:
                return ShippingQuote(band.fee, FeeReason.WEIGHT_BAND, band)
        heaviest = self.weight_bands[-1].up_to_grams
        raise ValidationError(
            f"weight_grams: {weight_grams} g is above the heaviest band of this template "
            f"({heaviest} g)",
            field="weight_grams",
        )

    def fee_for(self, *, goods_value: Money, weight_grams: int, is_member: bool) -> Money:
        """The shipping fee charged to the buyer."""
        return self.quote(
            goods_value=goods_value, weight_grams=weight_grams, is_member=is_member
        ).fee

    # persistence (a JSON column) ------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "currency": self.currency,
            "flat_fee": None if self.flat_fee is None else self.flat_fee.amount,
            "weight_bands": [[b.up_to_grams, b.fee.amount] for b in self.weight_bands],
            "free_threshold": None if self.free_threshold is None else self.free_threshold.amount,
            "free_for_members": self.free_for_members,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ShippingTemplate:
        try:
            cur = check_currency(data["currency"])
            flat = data.get("flat_fee")
            threshold = data.get("free_threshold")
            return cls(
                cur,
                flat_fee=None if flat is None else Money(flat, cur),
                weight_bands=tuple(
                    WeightBand(up_to, Money(fee, cur)) for up_to, fee in data.get("weight_bands")
                    or ()
                ),
                free_threshold=None if threshold is None else Money(threshold, cur),
                free_for_members=bool(data.get("free_for_members", True)),
            )
        except (KeyError, TypeError) as exc:
            raise ValidationError(
                f"shipping template: malformed data ({exc})", field="shipping_template"
            ) from exc
