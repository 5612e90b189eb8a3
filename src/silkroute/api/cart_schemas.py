"""Request and response models of the buyer's cart and membership routes."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field

from silkroute.api.schemas import CurrencyCode, Id, Strict


class CartLinePut(Strict):
    quantity: Annotated[int, Field(ge=0, le=1000, description="Units wanted; 0 removes the "
                                                               "line.")]


class CartLineOut(BaseModel):
    sku: str
    title: str
    seller_id: int
    quantity: int
    unit_price: int = Field(description="The SKU's price now, in minor units.")
    currency: str
    line_total: int
    available: int = Field(description="Units available now over every location; checkout "
                                       "answers 409 `out_of_stock` if fewer than `quantity`.")
    on_sale: bool


class CartSellerOut(BaseModel):
    seller_id: int
    currency: str
    items_amount: int
    units: int


class CartTotalOut(BaseModel):
    currency: str
    amount: int


class CartOut(BaseModel):
    buyer_id: int
    lines: list[CartLineOut] = Field(description="In the order they were first added.")
    sellers: list[CartSellerOut] = Field(description="One order per seller at checkout.")
    totals: list[CartTotalOut] = Field(description="Items per currency, before shipping.")


class CartCheckoutIn(Strict):
    address_id: Id | None = Field(None, description="Default: the buyer's default address.")
    service: Literal["standard", "member_next_day", "pickup"] = "standard"
    pickup_location_id: Id | None = None


class MembershipIn(Strict):
    currency: CurrencyCode | None = Field(None, description="The fee's currency; default: the "
                                                            "default card's.")


class MembershipOut(BaseModel):
    buyer_id: int
    status: Literal["none", "active", "lapsed"] = Field(description="This month.")
    member: bool = Field(description="Has the member benefits this month.")
    period: str = Field(description="This month, e.g. `2026-11`.")
    paid_through: str | None = Field(description="The latest paid month.")
    auto_renew: bool
    monthly_fee: int | None = Field(description="Minor units; null before a subscription.")
    currency: str | None
    charged: int = Field(description="What this call charged (minor units).")
