"""A buyer's persistent cart: set and remove lines, see it priced, check it out.

Concurrency (every call is one unit of work; see DESIGN.md §6):

- `set_line` is one INSERT ... ON CONFLICT DO UPDATE on the unique (buyer, SKU) pair, so
  concurrent `PUT`s of one line never fail: one line remains, holding the quantity of the
  request that committed last.
- `checkout_cart` reads the cart, checks those lines out through the same path as
  `POST /buyer/checkouts` (`purchases.checkout`), and, inside the checkout's transaction,
  removes each line it read only if the line still holds the quantity it read (a
  compare-and-delete). If any line was changed or removed meanwhile the whole checkout
  rolls back (409 `cart_changed`): nothing is reserved and the cart keeps what the buyer
  last put in it. So the orders hold exactly the lines the checkout removed from the cart,
  with the quantities the cart had when it committed; a line added while the checkout ran
  stays in the cart for the next one; two checkouts of one cart cannot both succeed (the
  second finds the lines gone). A checkout that fails (out of stock, bad address, ...)
  leaves the cart as it was.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from silkroute.domain.catalog import check_quantity, check_sku_code
from silkroute.domain.errors import Conflict, NotFound, ValidationError
from silkroute.services import purchases
from silkroute.services.checkout import MAX_CART_LINES, CartLine, CheckoutResult
from silkroute.store.cart_repo import CartRepo
from silkroute.store.uow import UnitOfWork

UowFactory = Callable[[], UnitOfWork]


@dataclass(frozen=True)
class LineView:
    sku: str
    title: str
    seller_id: int
    quantity: int
    unit_price: int
    currency: str
    line_total: int
    available: int  # units on sale now, over every location (may be fewer than `quantity`)
    on_sale: bool


@dataclass(frozen=True)
class SellerTotal:
    seller_id: int
    currency: str
    items_amount: int
    units: int


@dataclass(frozen=True)
class CurrencyTotal:
    currency: str
    amount: int


@dataclass(frozen=True)
class CartView:
    buyer_id: int
    lines: tuple[LineView, ...]
    sellers: tuple[SellerTotal, ...]  # one order per seller at checkout, by seller id
    totals: tuple[CurrencyTotal, ...]  # items only (shipping is charged at checkout)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _view(uow: UnitOfWork, buyer_id: int) -> CartView:
    lines = tuple(
        LineView(r.code, r.title, int(r.seller_id), int(r.quantity), int(r.price_amount),
                 r.currency, int(r.price_amount) * int(r.quantity), max(int(r.available), 0),
                 bool(r.on_sale))
        for r in CartRepo(uow.conn).lines(buyer_id))
    sellers: dict[int, SellerTotal] = {}
    totals: dict[str, int] = {}
    for ln in lines:
        s = sellers.get(ln.seller_id, SellerTotal(ln.seller_id, ln.currency, 0, 0))
        sellers[ln.seller_id] = SellerTotal(s.seller_id, s.currency,
                                            s.items_amount + ln.line_total,
                                            s.units + ln.quantity)
        totals[ln.currency] = totals.get(ln.currency, 0) + ln.line_total
    return CartView(buyer_id, lines, tuple(sellers[k] for k in sorted(sellers)),
                    tuple(CurrencyTotal(c, a) for c, a in sorted(totals.items())))


def view(uow: UnitOfWork, buyer_id: int) -> CartView:
    """The cart priced now: each line at the SKU's current price with its availability."""
    with uow:
        return _view(uow, buyer_id)


def _sku(uow: UnitOfWork, code: str) -> Any:
    sku = uow.repos.catalog.sku_by_code(check_sku_code(code))
    if sku is None:
        raise NotFound(f"sku: no SKU {code!r}", field="sku")
    return sku


def set_line(uow: UnitOfWork, buyer_id: int, sku: str, quantity: int) -> CartView:
    """Put `quantity` units of a SKU in the cart (replacing what was there); 0 removes it.

    The SKU must exist and be on sale; the quantity is bounded like a checkout line's.
    Stock is not checked (the view shows it; checkout reserves it)."""
    check_quantity(quantity, "quantity", allow_zero=True)
    if quantity:
        check_quantity(quantity, "quantity")
    with uow:
        row = _sku(uow, sku)
        repo = CartRepo(uow.conn)
        if quantity == 0:
            repo.remove(buyer_id, row.id)
            return _view(uow, buyer_id)
        if not row.on_sale:
            raise ValidationError(f"sku: {row.code} is not on sale", field="sku",
                                  code="not_on_sale")
        if repo.quantity(buyer_id, row.id) is None and repo.count(buyer_id) >= MAX_CART_LINES:
            raise ValidationError(f"sku: the cart holds at most {MAX_CART_LINES} lines",
                                  field="sku", code="cart_full")
        repo.put(buyer_id, row.id, quantity)
        return _view(uow, buyer_id)


def remove_line(uow: UnitOfWork, buyer_id: int, sku: str) -> CartView:
    """Take a SKU out of the cart; a SKU that is not in it is not an error (retries)."""
    with uow:
        row = _sku(uow, sku)
        CartRepo(uow.conn).remove(buyer_id, row.id)
        return _view(uow, buyer_id)


def checkout_cart(uows: UowFactory, buyer_id: int, *, address_id: int | None = None,
                  service: str = "standard", pickup_location_id: int | None = None
                  ) -> CheckoutResult:
    """Check out every line of the cart (one reserved order per seller) and empty it in
    the checkout's transaction; if the checkout fails the cart stays as it was."""
    with uows() as uow:
        taken = [(int(r.sku_id), r.code, int(r.quantity))
                 for r in CartRepo(uow.conn).lines(buyer_id)]
    if not taken:
        raise ValidationError("cart: the cart is empty", field="cart", code="cart_empty")

    def empty_cart(uow: UnitOfWork, result: CheckoutResult) -> None:
        repo = CartRepo(uow.conn)
        changed = [code for sku_id, code, qty in taken if not repo.take(buyer_id, sku_id, qty)]
        if changed:
            raise Conflict(f"cart: {', '.join(changed)} changed while checking out; nothing "
                           "was reserved, look at the cart and check out again",
                           field="cart", code="cart_changed")

    return purchases.checkout(uows(), buyer_id, [CartLine(code, qty) for _, code, qty in taken],
                              address_id=address_id, service=service,
                              pickup_location_id=pickup_location_id, on_placed=empty_cart)
