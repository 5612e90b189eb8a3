"""Routes of any account: who am I, issue another token, revoke one of mine."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from silkroute.api.auth import AnyAccount, Uows
from silkroute.api.errors import ERROR_RESPONSES, NOT_FOUND
from silkroute.api.schemas import MAX_INT, AccountOut, RevokedOut, TokenOut, TokenRequest
from silkroute.services.accounts import issue_token, revoke_token

router = APIRouter(prefix="/api/v1/me", tags=["accounts"], responses=ERROR_RESPONSES)


@router.get("", response_model=AccountOut, summary="The account the token acts for")
def me(principal: AnyAccount) -> AccountOut:
    return AccountOut(account_id=principal.account_id, role=principal.role,
                      name=principal.name, buyer_id=principal.buyer_id,
                      seller_id=principal.seller_id, carrier_id=principal.carrier_id)


@router.post("/tokens", response_model=TokenOut, status_code=201,
             summary="Issue another token for this account (e.g. to rotate)")
def new_token(principal: AnyAccount, uows: Uows, body: TokenRequest | None = None
              ) -> TokenOut:
    issued = issue_token(uows(), principal.account_id, body.label if body else "")
    return TokenOut(token_id=issued.token_id, token=issued.token, prefix=issued.prefix)


@router.delete("/tokens/{token_id}", response_model=RevokedOut, responses=NOT_FOUND,
               summary="Revoke one of this account's tokens")
def delete_token(principal: AnyAccount, uows: Uows,
                 token_id: Annotated[int, Path(ge=1, le=MAX_INT)]) -> RevokedOut:
    revoked = revoke_token(uows(), token_id, account_id=principal.account_id)
    return RevokedOut(token_id=token_id, revoked=revoked)
