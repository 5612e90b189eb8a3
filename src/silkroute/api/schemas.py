"""Request and response models of the API, with the field constraints that make 422s exact."""

from __future__ import annotations

from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

MAX_INT = 2**31 - 1
MAX_AMOUNT = 10**15
NO_NUL = r"^[^\x00]*$"

Id = Annotated[int, Field(ge=1, le=MAX_INT)]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200,
                                        pattern=NO_NUL)]
ShortText = Annotated[str, StringConstraints(max_length=300, pattern=NO_NUL)]
SkuCode = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._\-]{0,63}$")]
CurrencyCode = Annotated[str, StringConstraints(pattern=r"^[A-Za-z]{3}$")]
CountryCode = Annotated[str, StringConstraints(pattern=r"^[A-Za-z]{2}$")]
Latitude = Annotated[float, Field(ge=-90, le=90, allow_inf_nan=False)]
Longitude = Annotated[float, Field(ge=-180, le=180, allow_inf_nan=False)]
Count = Annotated[int, Field(ge=0, le=10**9)]
Amount = Annotated[int, Field(gt=0, le=MAX_AMOUNT)]

T = TypeVar("T")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# ------------------------------------------------------------------------------ accounts
class AddressIn(Strict):
    city: Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=NO_NUL)] | None \
        = Field(None, description="City name (GeoNames spelling, any case or accents).")
    latitude: Latitude | None = None
    longitude: Longitude | None = None
    line1: ShortText = ""
    country: CountryCode = "KR"
    default: bool = False


class BuyerRegistration(Strict):
    name: Name
    address: AddressIn | None = Field(None, description="The default delivery address.")


class ShopOpening(Strict):
    name: Name
    currency: CurrencyCode = "KRW"
    shop_name: Name | None = None


class TokenOut(BaseModel):
    token_id: int
    token: str = Field(description="Shown once; store it now, it cannot be shown again.")
    prefix: str


class Registered(BaseModel):
    account_id: int
    role: str
    buyer_id: int | None = None
    seller_id: int | None = None
    shop_id: int | None = None
    address_id: int | None = None
    token: TokenOut


class TokenRequest(Strict):
    label: Annotated[str, StringConstraints(max_length=100, pattern=NO_NUL)] = ""


class AccountOut(BaseModel):
    account_id: int
    role: str
    name: str
    buyer_id: int | None = None
    seller_id: int | None = None
    carrier_id: int | None = None


class RevokedOut(BaseModel):
    token_id: int
    revoked: bool


# ---------------------------------------------------------------------------- catalogue
class PriceOut(BaseModel):
    amount: int
    currency: str


class SkuItem(BaseModel):
    sku: str
    product_id: int
    title: str
    category: str
    seller_id: int
    price: PriceOut
    weight_g: int
    attributes: dict[str, Any]
    on_sale: bool
    available: int


class PageOut(BaseModel, Generic[T]):
    items: list[T]
    total: int
    limit: int
    offset: int
    next_offset: int | None = Field(description="Pass as `offset` for the next page; null "
                                                "on the last page.")


class AddressOut(BaseModel):
    id: int
    line1: str
    city: str
    zone_id: int
    latitude: float
    longitude: float
    is_default: bool


class Created(BaseModel):
    id: int


# ----------------------------------------------------------------------------- checkout
class CheckoutLineIn(Strict):
    sku: SkuCode
    quantity: Annotated[int, Field(ge=1, le=1000)]


class CheckoutIn(Strict):
    lines: Annotated[list[CheckoutLineIn], Field(min_length=1, max_length=100)]
    address_id: Id | None = Field(None, description="Default: the buyer's default address.")
    service: Literal["standard", "member_next_day", "pickup"] = "standard"
    pickup_location_id: Id | None = None


class ShipmentLineOut(BaseModel):
    sku_id: int
    quantity: int


class ShipmentOut(BaseModel):
    location_id: int
    lines: list[ShipmentLineOut]


class PlacedOrderOut(BaseModel):
    order_id: int
    seller_id: int
    state: str
    currency: str
    items_amount: int
    shipping_amount: int
    shipments: list[ShipmentOut]


class CheckoutOut(BaseModel):
    checkout_id: int
    orders: list[PlacedOrderOut]


class OrderSummary(BaseModel):
    id: int
    checkout_id: int
    buyer_id: int
    seller_id: int
    state: str
    currency: str
    items_amount: int
    shipping_amount: int
    service: str
    created_at: str | None


class OrderLineOut(BaseModel):
    sku: str
    quantity: int
    unit_price: int


class AllocationOut(BaseModel):
    sku_id: int
    location_id: int
    quantity: int
    carrier_id: int | None
    status: str


class OrderEventOut(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    from_state: str | None = Field(alias="from")
    to: str
    note: str
    at: str | None


class TotalOut(BaseModel):
    amount: int
    currency: str
    formatted: str


class OrderOut(BaseModel):
    id: int
    checkout_id: int
    buyer_id: int
    seller_id: int
    state: str
    currency: str
    items_amount: int
    shipping_amount: int
    total: TotalOut
    service: str
    policy: str
    lines: list[OrderLineOut]
    allocations: list[AllocationOut]
    events: list[OrderEventOut]
    plan: Any = None


class CancelledOut(BaseModel):
    order_id: int
    state: Literal["cancelled"] = "cancelled"
    released_units: int


# ------------------------------------------------------------------------------ sellers
class ShopOut(BaseModel):
    id: int
    seller_id: int
    name: str
    currency: str


class LocationIn(Strict):
    name: Name
    kind: Literal["warehouse", "store", "pickup_point", "fulfilment_centre"] = "warehouse"
    city: Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=NO_NUL)] | None \
        = None
    latitude: Latitude | None = None
    longitude: Longitude | None = None
    country: CountryCode = "KR"
    daily_capacity: Annotated[int, Field(ge=0, le=10**9)] = 1000
    handling_cost: Annotated[int, Field(ge=0, le=10**9)] = 0


class LocationOut(BaseModel):
    id: int
    name: str
    kind: str
    zone_id: int
    latitude: float
    longitude: float
    daily_capacity: int
    handling_cost: int


AttrKey = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=NO_NUL)]
AttrValue = Annotated[str, StringConstraints(max_length=200, pattern=NO_NUL)]


class SkuIn(Strict):
    code: SkuCode
    price: Amount = Field(description="Minor units of the currency (e.g. cents; won for KRW).")
    currency: CurrencyCode | None = Field(None, description="Default: the shop's currency.")
    weight_g: Count
    length_mm: Annotated[int, Field(ge=0, le=10**6)] = 0
    width_mm: Annotated[int, Field(ge=0, le=10**6)] = 0
    height_mm: Annotated[int, Field(ge=0, le=10**6)] = 0
    attributes: Annotated[dict[AttrKey, AttrValue], Field(max_length=50)] = {}


class ProductIn(Strict):
    title: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1,
                                            max_length=300, pattern=NO_NUL)]
    category: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1,
                                               max_length=100, pattern=NO_NUL)] = "general"
    skus: Annotated[list[SkuIn], Field(min_length=1, max_length=100)]


class ProductCreated(BaseModel):
    product_id: int
    sku_ids: dict[str, int]


class ProductOut(BaseModel):
    id: int
    title: str
    category: str
    skus: list[SkuItem]


class ImportOut(BaseModel):
    products: int
    skus: int
    stock_rows: int
    units: int
    product_ids: list[int]


class StockIn(Strict):
    on_hand: Count


class StockOut(BaseModel):
    sku: str
    location_id: int
    on_hand: int
    reserved: int
    available: int


# ---------------------------------------------------------------------------- operators
class MarketSummary(BaseModel):
    counts: dict[str, int]
    orders_by_state: dict[str, int]
    accounts_by_role: dict[str, int]


# ----------------------------------------------------------------------------- payments
class PaymentMethodIn(Strict):
    card: Annotated[str, StringConstraints(min_length=12, max_length=23,
                                           pattern=r"^[0-9 \-]+$")] = Field(
        description="Card number; only its last four digits are ever shown again.")
    currency: CurrencyCode = "KRW"
    default: bool = True


class PaymentMethodOut(BaseModel):
    id: int
    last4: str
    currency: str
    is_default: bool


class PaymentIn(Strict):
    payment_method_id: Id | None = Field(None, description="Default: my default card.")


class PaidOut(BaseModel):
    payment_id: int
    checkout_id: int
    amount: int
    currency: str
    order_ids: list[int]
    status: str


class BuyNowIn(Strict):
    sku: SkuCode
    quantity: Annotated[int, Field(ge=1, le=1000)] = 1


class BuyNowOut(BaseModel):
    order_id: int
    checkout_id: int
    payment_id: int
    state: str
    currency: str
    items_amount: int
    shipping_amount: int
    total: int
    replayed: bool = Field(description="True when this answers a repeated Idempotency-Key.")
