"""Accounts and API tokens: create, issue, revoke, and authenticate a bearer token."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from silkroute.domain.errors import DomainError, NotFound, ValidationError
from silkroute.domain.money import check_currency
from silkroute.services.catalog import ensure_zone, resolve_place
from silkroute.store.auth_repositories import AccountRepo, TokenRepo
from silkroute.store.auth_tables import ROLES
from silkroute.store.read_queries import busiest_buyer
from silkroute.store.uow import UnitOfWork

TOKEN_PREFIX = "sr_"
TOKEN_BYTES = 32  # 256 bits from the operating system's CSPRNG
PREFIX_CHARS = 11  # "sr_" and the first 8 characters: enough to tell tokens apart
CREATABLE_ROLES = ("buyer", "seller", "operator")


class Unauthenticated(DomainError):
    """No token, an unknown token or a revoked one (HTTP 401)."""

    code = "unauthenticated"


class Forbidden(DomainError):
    """The caller's role may not use this route at all (HTTP 403)."""

    code = "forbidden"


@dataclass(frozen=True)
class Principal:
    """Who is calling: the account, its role and the tenant it acts for."""

    account_id: int
    role: str
    name: str
    buyer_id: int | None = None
    seller_id: int | None = None
    carrier_id: int | None = None
    token_id: int | None = None


@dataclass(frozen=True)
class IssuedToken:
    token_id: int
    account_id: int
    token: str  # shown once; only its hash is stored
    prefix: str


@dataclass(frozen=True)
class AccountCreated:
    account_id: int
    role: str
    name: str
    buyer_id: int | None = None
    seller_id: int | None = None
    shop_id: int | None = None
    address_id: int | None = None
    token: IssuedToken | None = None


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _check_name(name: str) -> str:
    if not isinstance(name, str) or not name.strip():
        raise ValidationError("name must not be empty", field="name")
    if len(name.strip()) > 200:
        raise ValidationError("name must be at most 200 characters", field="name")
    return name.strip()


def _issue(uow: UnitOfWork, account_id: int, label: str) -> IssuedToken:
    token = TOKEN_PREFIX + secrets.token_urlsafe(TOKEN_BYTES)
    prefix = token[:PREFIX_CHARS]
    token_id = TokenRepo(uow.conn).add(account_id, hash_token(token), prefix, label[:100])
    return IssuedToken(token_id, account_id, token, prefix)


def create_account(uow: UnitOfWork, role: str, name: str, *, buyer_id: int | None = None,
                   seller_id: int | None = None, currency: str = "KRW",
                   with_token: bool = False) -> AccountCreated:
    """Create an account; a buyer or seller without an id gets a new buyer or shop."""
    if role not in CREATABLE_ROLES:
        raise ValidationError(f"role: {role!r} is not one of {', '.join(CREATABLE_ROLES)}",
                              field="role")
    name = _check_name(name)
    if role != "buyer" and buyer_id is not None:
        raise ValidationError("buyer_id is only for buyer accounts", field="buyer_id")
    if role != "seller" and seller_id is not None:
        raise ValidationError("seller_id is only for seller accounts", field="seller_id")
    cur = check_currency(currency)
    with uow:
        repos = uow.repos
        shop_id = None
        if role == "buyer":
            if buyer_id is None:
                buyer_id = repos.buyers.add(name)
            elif repos.buyers.get(buyer_id) is None:
                raise NotFound(f"buyer_id: no buyer {buyer_id}", field="buyer_id")
        if role == "seller":
            if seller_id is None:
                seller_id = repos.sellers.add(name)
                shop_id = repos.sellers.add_shop(seller_id, name, cur)
            elif repos.sellers.get(seller_id) is None:
                raise NotFound(f"seller_id: no seller {seller_id}", field="seller_id")
        account_id = AccountRepo(uow.conn).add(role, name, buyer_id=buyer_id,
                                                seller_id=seller_id)
        token = _issue(uow, account_id, "first token") if with_token else None
    return AccountCreated(account_id, role, name, buyer_id, seller_id, shop_id, None, token)


def register_buyer_account(uow: UnitOfWork, name: str, *, city: str | None = None,
                           latitude: float | None = None, longitude: float | None = None,
                           line1: str = "", country: str = "KR") -> AccountCreated:
    """Self-service sign-up: a buyer, its account, optional default address, a first token."""
    name = _check_name(name)
    place = None
    if city or latitude is not None or longitude is not None:
        place = resolve_place(city, latitude, longitude, country)
    with uow:
        repos = uow.repos
        buyer_id = repos.buyers.add(name)
        address_id = None
        if place is not None:
            city_v, lat, lon = place
            address_id = repos.buyers.add_address(
                buyer_id=buyer_id, line1=line1, city=city_v.name,
                zone_id=ensure_zone(uow, city_v), latitude=lat, longitude=lon, is_default=True)
        account_id = AccountRepo(uow.conn).add("buyer", name, buyer_id=buyer_id)
        token = _issue(uow, account_id, "sign-up")
    return AccountCreated(account_id, "buyer", name, buyer_id=buyer_id, address_id=address_id,
                          token=token)


def open_shop_account(uow: UnitOfWork, name: str, currency: str,
                      shop_name: str | None = None) -> AccountCreated:
    """Self-service shop opening: a seller, its shop, its account and a first token."""
    name = _check_name(name)
    shop = _check_name(shop_name) if shop_name is not None else name
    cur = check_currency(currency)
    with uow:
        seller_id = uow.repos.sellers.add(name)
        shop_id = uow.repos.sellers.add_shop(seller_id, shop, cur)
        account_id = AccountRepo(uow.conn).add("seller", name, seller_id=seller_id)
        token = _issue(uow, account_id, "sign-up")
    return AccountCreated(account_id, "seller", name, seller_id=seller_id, shop_id=shop_id,
                          token=token)


def issue_token(uow: UnitOfWork, account_id: int, label: str = "") -> IssuedToken:
    """A new random token for an account; the caller must show it now, it is not kept."""
    with uow:
        if AccountRepo(uow.conn).get(account_id) is None:
            raise NotFound(f"account_id: no account {account_id}", field="account_id")
        return _issue(uow, account_id, label)


def revoke_token(uow: UnitOfWork, token_id: int, *, account_id: int | None = None) -> bool:
    """Revoke a token (of this account, when given); False if it was already revoked."""
    with uow:
        row = TokenRepo(uow.conn).get(token_id)
        if row is None or (account_id is not None and row.account_id != account_id):
            raise NotFound(f"token_id: no token {token_id}", field="token_id")
        return TokenRepo(uow.conn).revoke(token_id, datetime.now(UTC))


def authenticate(uow: UnitOfWork, token: str | None) -> Principal:
    """The principal a bearer token stands for, or Unauthenticated."""
    token_hash = hash_of_bearer(token)
    with uow:
        row = TokenRepo(uow.conn).live_account(token_hash)
    return _principal_of(row)


async def authenticate_async(live_account: Callable[[str], Awaitable[Any]],
                             token: str | None) -> Principal:
    """`authenticate` with an awaitable lookup of the token's hash (`LiveAccounts`: the
    same read, on the event loop)."""
    return _principal_of(await live_account(hash_of_bearer(token)))


def hash_of_bearer(token: str | None) -> str:
    if not token:
        raise Unauthenticated("a bearer token is required", field="authorization")
    if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        raise Unauthenticated("the token is not valid", field="authorization")
    return hash_token(token)


def _principal_of(row: Any) -> Principal:
    if row is None:
        raise Unauthenticated("the token is unknown or revoked", field="authorization")
    if row.role not in ROLES:
        raise Unauthenticated("the account has an unknown role", field="authorization")
    return Principal(row.id, row.role, row.name, row.buyer_id, row.seller_id, row.carrier_id,
                     row.token_id)


def create_demo_accounts(uow_factory: Callable[[], UnitOfWork]) -> list[AccountCreated]:
    """Accounts with tokens for the demo market: operator, first seller, busiest buyer."""
    made = [create_account(uow_factory(), "operator", "Demo operator", with_token=True)]
    with uow_factory() as uow:
        seller = uow.repos.sellers.get(1)
        buyer = uow.repos.buyers.get(busiest_buyer(uow.conn) or 1)
    if seller is not None:
        made.append(create_account(uow_factory(), "seller", seller.name, seller_id=seller.id,
                                   with_token=True))
    if buyer is not None:
        made.append(create_account(uow_factory(), "buyer", buyer.name, buyer_id=buyer.id,
                                   with_token=True))
    return made
