"""Pieces every router shares: paging parameters and view-to-model helpers."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query

from silkroute.api.schemas import MAX_INT, CheckoutOut, OrderOut, PageOut, Registered, TokenOut
from silkroute.services.accounts import AccountCreated
from silkroute.services.checkout import CheckoutResult
from silkroute.services.queries import OrderView
from silkroute.services.storefront import MAX_PAGE, Page

Limit = Annotated[int, Query(ge=1, le=MAX_PAGE, description="Items per page.")]
Offset = Annotated[int, Query(ge=0, le=10**7, description="Items to skip.")]
StateFilter = Annotated[
    str | None, Query(pattern=r"^[a-z_]{1,20}$", description="Only orders in this state.")]


def page_out(page: Page) -> dict[str, object]:
    return {"items": page.items, "total": page.total, "limit": page.limit,
            "offset": page.offset, "next_offset": page.next_offset}


def order_out(view: OrderView) -> OrderOut:
    return OrderOut.model_validate(view.as_dict())


def checkout_out(res: CheckoutResult) -> CheckoutOut:
    """The answer to a checkout (of lines or of the cart): its reserved orders."""
    return CheckoutOut.model_validate({
        "checkout_id": res.checkout_id,
        "orders": [{"order_id": o.order_id, "seller_id": o.seller_id, "state": o.state,
                    "currency": o.currency, "items_amount": o.items_amount,
                    "shipping_amount": o.shipping_amount,
                    "shipments": [{"location_id": loc, "lines": [
                        {"sku_id": sku_id, "quantity": qty} for sku_id, qty in lines]}
                        for loc, lines in o.shipments]}
                   for o in res.orders]})


OrderIdPath = Annotated[int, Path(ge=1, le=MAX_INT, description="Order id.")]


def registered(res: AccountCreated) -> Registered:
    """The answer to a sign-up: the account, its tenant ids and its first token, once."""
    assert res.token is not None
    return Registered(account_id=res.account_id, role=res.role, buyer_id=res.buyer_id,
                      seller_id=res.seller_id, shop_id=res.shop_id, address_id=res.address_id,
                      token=TokenOut(token_id=res.token.token_id, token=res.token.token,
                                     prefix=res.token.prefix))


__all__ = ["Limit", "Offset", "OrderIdPath", "PageOut", "StateFilter", "checkout_out",
           "order_out", "page_out", "registered"]
