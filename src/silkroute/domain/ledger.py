"""Ledger rules: accounts, balanced transactions of postings, money-flow recipes, invariants."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from enum import StrEnum
from typing import Protocol

from silkroute.domain.errors import DomainError, ValidationError
from silkroute.domain.money import CurrencyMismatch, Money, check_currency

# Sign convention: a posting's amount is the change of its account's balance. Money moves
# from the accounts posted negative to the accounts posted positive, and every transaction
# sums to zero per currency. A positive payable is owed to its owner; buyer_funding goes
# negative by what a buyer has paid in; refunds and provider_clearing grow by what left the
# platform to buyers and payees.

PLATFORM_OWNER = 0
DEFAULT_COMMISSION_RATE = Decimal("0.05")


class AccountKind(StrEnum):
    BUYER_FUNDING = "buyer_funding"  # owner: buyer id
    PLATFORM_ESCROW = "platform_escrow"  # owner: order id (one hold per order)
    SELLER_PAYABLE = "seller_payable"  # owner: seller id
    CARRIER_PAYABLE = "carrier_payable"  # owner: carrier id
    PLATFORM_REVENUE = "platform_revenue"  # owner: 0
    PROVIDER_CLEARING = "provider_clearing"  # owner: 0
    REFUNDS = "refunds"  # owner: buyer id
    MEMBERSHIP_REVENUE = "membership_revenue"  # owner: 0


PAYABLE_KINDS = frozenset({AccountKind.SELLER_PAYABLE, AccountKind.CARRIER_PAYABLE})


class TransactionKind(StrEnum):
    CAPTURE = "capture"
    RELEASE = "release"
    REFUND = "refund"
    PAYOUT = "payout"
    MEMBERSHIP_FEE = "membership_fee"


class UnbalancedTransaction(DomainError):
    """The postings of a transaction do not sum to zero in some currency."""

    code = "unbalanced_transaction"


class RefundExceedsPaid(DomainError):
    """A refund asks for more than is still refundable."""

    code = "refund_exceeds_paid"


@dataclass(frozen=True, slots=True)
class AccountRef:
    """One ledger account: its kind, its owner's id (0 for the platform) and its currency."""

    kind: AccountKind
    owner_id: int
    currency: str

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "kind", AccountKind(self.kind))
        except ValueError as exc:
            known = ", ".join(k.value for k in AccountKind)
            raise ValidationError(
                f"account kind: unknown kind {self.kind!r} (known: {known})", field="account"
            ) from exc
        if isinstance(self.owner_id, bool) or not isinstance(self.owner_id, int):
            raise ValidationError(
                f"account owner_id must be an integer, got {self.owner_id!r}", field="account"
            )
        if self.owner_id < 0:
            raise ValidationError(
                f"account owner_id must be >= 0, got {self.owner_id}", field="account"
            )
        object.__setattr__(self, "currency", check_currency(self.currency))

    @property
    def code(self) -> str:
        """Stable string key, e.g. ``seller_payable:42:KRW``."""
        return f"{self.kind.value}:{self.owner_id}:{self.currency}"

    def __str__(self) -> str:
        return self.code

    @classmethod
    def parse(cls, code: str) -> AccountRef:
        """Inverse of :attr:`code`."""
        parts = code.split(":") if isinstance(code, str) else []
        if len(parts) != 3 or not parts[1].isdigit():
            raise ValidationError(
                f"account: {code!r} is not of the form kind:owner_id:CURRENCY", field="account"
            )
        if parts[0] not in _KIND_VALUES:
            known = ", ".join(k.value for k in AccountKind)
            raise ValidationError(
                f"account: unknown kind {parts[0]!r} in {code!r} (known: {known})", field="account"
            )
        return cls(AccountKind(parts[0]), int(parts[1]), parts[2])

    # one constructor per kind -------------------------------------------------------
    @classmethod
    def buyer_funding(cls, buyer_id: int, currency: str) -> AccountRef:
        return cls(AccountKind.BUYER_FUNDING, buyer_id, currency)

    @classmethod
    def escrow(cls, order_id: int, currency: str) -> AccountRef:
        return cls(AccountKind.PLATFORM_ESCROW, order_id, currency)

    @classmethod
    def seller_payable(cls, seller_id: int, currency: str) -> AccountRef:
        return cls(AccountKind.SELLER_PAYABLE, seller_id, currency)

    @classmethod
    def carrier_payable(cls, carrier_id: int, currency: str) -> AccountRef:
        return cls(AccountKind.CARRIER_PAYABLE, carrier_id, currency)

    @classmethod
    def platform_revenue(cls, currency: str) -> AccountRef:
        return cls(AccountKind.PLATFORM_REVENUE, PLATFORM_OWNER, currency)

    @classmethod
    def provider_clearing(cls, currency: str) -> AccountRef:
        return cls(AccountKind.PROVIDER_CLEARING, PLATFORM_OWNER, currency)

    @classmethod
    def refunds(cls, buyer_id: int, currency: str) -> AccountRef:
        return cls(AccountKind.REFUNDS, buyer_id, currency)

    @classmethod
    def membership_revenue(cls, currency: str) -> AccountRef:
        return cls(AccountKind.MEMBERSHIP_REVENUE, PLATFORM_OWNER, currency)


_KIND_VALUES = frozenset(k.value for k in AccountKind)


@dataclass(frozen=True, slots=True)
class Posting:
    """One leg of a transaction: `amount` added to `account`'s balance (may be negative)."""

    account: AccountRef
    amount: Money

    def __post_init__(self) -> None:
        if not isinstance(self.amount, Money):
            raise ValidationError(f"posting amount must be Money, got {self.amount!r}",
                                  field="amount")
        if self.amount.currency != self.account.currency:
            raise CurrencyMismatch(
                f"posting to {self.account.code}: amount is in {self.amount.currency}",
                field="currency",
            )


@dataclass(frozen=True, slots=True)
class LedgerTransaction:
    """An append-only movement of money: >= 2 postings summing to zero per currency.

    `key` is the transaction's idempotency/external key, unique in the ledger: the same
    business event always derives the same key, so a retried event posts nothing twice.
    """

    kind: TransactionKind
    reference: str
    postings: tuple[Posting, ...]
    key: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", TransactionKind(self.kind))
        object.__setattr__(self, "postings", tuple(self.postings))
        if not self.key or not isinstance(self.key, str):
            raise ValidationError("transaction key must be a non-empty string", field="key")
        if len(self.postings) < 2:
            raise UnbalancedTransaction(
                f"transaction {self.key!r} has {len(self.postings)} posting(s); "
                "a transaction needs at least 2",
                field="postings",
            )
        problems = [
            f"{cur} postings sum to {Money(total, cur).format()} ({total} minor units), not 0"
            for cur, total in sorted(sums_by_currency(self.postings).items())
            if total != 0
        ]
        if problems:
            raise UnbalancedTransaction(
                f"transaction {self.key!r} is unbalanced: " + "; ".join(problems),
                field="postings",
            )

    @property
    def currencies(self) -> tuple[str, ...]:
        return tuple(sorted({p.amount.currency for p in self.postings}))

    def amount_for(self, account: AccountRef) -> Money:
        """Net amount this transaction posts to `account` (zero when it does not touch it)."""
        total = sum(p.amount.amount for p in self.postings if p.account == account)
        return Money(total, account.currency)


def sums_by_currency(postings: Iterable[Posting]) -> dict[str, int]:
    sums: dict[str, int] = defaultdict(int)
    for p in postings:
        sums[p.amount.currency] += p.amount.amount
    return dict(sums)


def balances(postings: Iterable[Posting]) -> dict[AccountRef, Money]:
    """Balance of every account touched by `postings` (balances are derived, never stored)."""
    out: dict[AccountRef, int] = defaultdict(int)
    for p in postings:
        out[p.account] += p.amount.amount
    return {acc: Money(total, acc.currency) for acc, total in out.items()}


def _transaction(
    kind: TransactionKind, reference: str, key: str, legs: Iterable[tuple[AccountRef, Money]]
) -> LedgerTransaction:
    """Build a transaction from legs, merging legs on one account and dropping zero legs."""
    merged: dict[AccountRef, int] = {}
    for account, amount in legs:
        merged[account] = merged.get(account, 0) + amount.amount
    postings = tuple(
        Posting(account, Money(total, account.currency))
        for account, total in merged.items()
        if total != 0
    )
    return LedgerTransaction(kind=kind, reference=reference, postings=postings, key=key)


def _positive(amount: Money, field_name: str) -> Money:
    if not isinstance(amount, Money):
        raise ValidationError(f"{field_name} must be Money, got {amount!r}", field=field_name)
    if amount.amount <= 0:
        raise ValidationError(
            f"{field_name} must be positive, got {amount.format()}", field=field_name
        )
    return amount


def _non_negative(amount: Money, field_name: str) -> Money:
    if not isinstance(amount, Money):
        raise ValidationError(f"{field_name} must be Money, got {amount!r}", field=field_name)
    if amount.amount < 0:
        raise ValidationError(
            f"{field_name} must not be negative, got {amount.format()}", field=field_name
        )
    return amount


def _same_currency(currency: str, amount: Money, field_name: str) -> None:
    if amount.currency != currency:
        raise CurrencyMismatch(
            f"{field_name}: currency mismatch: {amount.currency}, expected {currency}",
            field=field_name,
        )


# commission -------------------------------------------------------------------------------


def check_rate(rate: Decimal | str | int, field_name: str = "commission_rate") -> Decimal:
    """A commission rate as a Decimal in [0, 1]; refuse floats' binary noise by going via str."""
    try:
        value = Decimal(str(rate))
    except (InvalidOperation, ValueError) as exc:
        raise ValidationError(f"{field_name}: {rate!r} is not a number", field=field_name) from exc
    if not value.is_finite() or value < 0 or value > 1:
        raise ValidationError(
            f"{field_name}: {rate} must be between 0 and 1", field=field_name
        )
    return value


@dataclass(frozen=True, slots=True)
class CommissionRates:
    """Platform commission rate per product category, with a default (5%)."""

    by_category: Mapping[str, Decimal] = field(default_factory=dict)
    default: Decimal = DEFAULT_COMMISSION_RATE

    def __post_init__(self) -> None:
        object.__setattr__(self, "default", check_rate(self.default, "default"))
        object.__setattr__(
            self,
            "by_category",
            {str(k): check_rate(v, f"commission_rate[{k}]") for k, v in self.by_category.items()},
        )

    def rate_for(self, category: str | None) -> Decimal:
        if category is None:
            return self.default
        return self.by_category.get(category, self.default)


@dataclass(frozen=True, slots=True)
class SaleLine:
    """Goods value of an order charged at one commission rate (one line or one category)."""

    amount: Money
    commission_rate: Decimal = DEFAULT_COMMISSION_RATE

    def __post_init__(self) -> None:
        _non_negative(self.amount, "line amount")
        object.__setattr__(self, "commission_rate", check_rate(self.commission_rate))


def commission_for(lines: Sequence[SaleLine]) -> Money:
    """Commission on goods: per distinct rate, round-half-even(rate x goods at that rate)."""
    if not lines:
        raise ValidationError("an order needs at least one sale line", field="lines")
    currency = lines[0].amount.currency
    by_rate: dict[Decimal, int] = defaultdict(int)
    for line in lines:
        _same_currency(currency, line.amount, "lines")
        by_rate[line.commission_rate] += line.amount.amount
    total = 0
    for rate, goods in by_rate.items():
        total += int((Decimal(goods) * rate).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))
    return Money(total, currency)


@dataclass(frozen=True, slots=True)
class ReleaseSplit:
    """How a hold is divided on release; seller + carrier + platform == hold, exactly."""

    hold: Money
    goods: Money
    shipping_charged: Money
    commission: Money
    seller: Money
    carrier: Money
    platform: Money

    @property
    def shipping_margin(self) -> Money:
        return self.shipping_charged - self.carrier


def split_release(
    hold: Money,
    lines: Sequence[SaleLine],
    shipping_charged: Money,
    carrier_fee: Money,
    shipping_borne_by_seller: Money | None = None,
) -> ReleaseSplit:
    """Divide `hold` = goods + shipping charged into seller, carrier and platform shares.

    seller = goods - commission - shipping_borne_by_seller; carrier = carrier_fee;
    platform = commission + (shipping_charged - carrier_fee) + shipping_borne_by_seller.
    The platform's part can be negative when it subsidises shipping (e.g. member free
    shipping); the seller's can only be negative if the seller bears more than it earns.
    """
    _positive(hold, "hold")
    currency = hold.currency
    _non_negative(shipping_charged, "shipping_charged")
    _non_negative(carrier_fee, "carrier_fee")
    _same_currency(currency, shipping_charged, "shipping_charged")
    _same_currency(currency, carrier_fee, "carrier_fee")
    borne = shipping_borne_by_seller if shipping_borne_by_seller is not None else Money.zero(
        currency
    )
    _non_negative(borne, "shipping_borne_by_seller")
    _same_currency(currency, borne, "shipping_borne_by_seller")
    commission = commission_for(lines)
    _same_currency(currency, commission, "lines")
    goods = Money(sum(line.amount.amount for line in lines), currency)
    if goods + shipping_charged != hold:
        raise ValidationError(
            f"hold {hold.format()} does not equal goods {goods.format()} + shipping "
            f"{shipping_charged.format()}; pass the lines net of refunds",
            field="hold",
        )
    seller = goods - commission - borne
    platform = commission + shipping_charged - carrier_fee + borne
    return ReleaseSplit(
        hold=hold,
        goods=goods,
        shipping_charged=shipping_charged,
        commission=commission,
        seller=seller,
        carrier=carrier_fee,
        platform=platform,
    )


def reduce_lines(
    lines: Sequence[SaleLine], shipping_charged: Money, refunded: Money
) -> tuple[tuple[SaleLine, ...], Money]:
    """Take a pre-release refund off the goods (last line first), then off shipping.

    Returns the lines and shipping net of the refund, ready for :func:`split_release`.
    """
    _non_negative(refunded, "refunded")
    remaining = refunded.amount
    out: list[SaleLine] = []
    for line in reversed(lines):
        _same_currency(shipping_charged.currency, line.amount, "lines")
        take = min(remaining, line.amount.amount)
        remaining -= take
        out.append(SaleLine(line.amount - Money(take, line.amount.currency),
                            line.commission_rate))
    take = min(remaining, shipping_charged.amount)
    remaining -= take
    if remaining:
        total = sum(line.amount.amount for line in lines) + shipping_charged.amount
        raise RefundExceedsPaid(
            f"refunded {refunded.format()} exceeds goods and shipping "
            f"{Money(total, refunded.currency).format()}",
            field="amount",
        )
    return tuple(reversed(out)), shipping_charged - Money(take, shipping_charged.currency)


# keys -------------------------------------------------------------------------------------


def capture_key(payment_id: int | str) -> str:
    return f"capture:{payment_id}"


def release_key(order_id: int) -> str:
    return f"release:order:{order_id}"


def refund_key(refund_id: int | str) -> str:
    return f"refund:{refund_id}"


def payout_key(batch_id: int | str, payee: AccountRef) -> str:
    return f"payout:{batch_id}:{payee.code}"


def membership_key(buyer_id: int, period: str) -> str:
    return f"membership:{buyer_id}:{period}"


# flows ------------------------------------------------------------------------------------


def capture(
    payment_id: int | str, buyer_id: int, holds: Mapping[int, Money]
) -> LedgerTransaction:
    """One payment captured into escrow: buyer_funding -total, one escrow hold per order."""
    if not holds:
        raise ValidationError("a capture needs at least one order hold", field="holds")
    currency = next(iter(holds.values())).currency
    legs: list[tuple[AccountRef, Money]] = []
    total = Money.zero(currency)
    for order_id, hold in sorted(holds.items()):
        _positive(hold, f"hold of order {order_id}")
        _same_currency(currency, hold, f"hold of order {order_id}")
        legs.append((AccountRef.escrow(order_id, currency), hold))
        total = total + hold
    legs.insert(0, (AccountRef.buyer_funding(buyer_id, currency), -total))
    return _transaction(
        TransactionKind.CAPTURE, f"payment:{payment_id}", capture_key(payment_id), legs
    )


def release(
    order_id: int,
    seller_id: int,
    carrier_id: int,
    hold: Money,
    lines: Sequence[SaleLine],
    shipping_charged: Money,
    carrier_fee: Money,
    shipping_borne_by_seller: Money | None = None,
) -> LedgerTransaction:
    """Escrow released on confirmed receipt: to seller, carrier and platform revenue."""
    split = split_release(hold, lines, shipping_charged, carrier_fee, shipping_borne_by_seller)
    cur = hold.currency
    return _transaction(
        TransactionKind.RELEASE,
        f"order:{order_id}",
        release_key(order_id),
        [
            (AccountRef.escrow(order_id, cur), -hold),
            (AccountRef.seller_payable(seller_id, cur), split.seller),
            (AccountRef.carrier_payable(carrier_id, cur), split.carrier),
            (AccountRef.platform_revenue(cur), split.platform),
        ],
    )


def check_refund(amount: Money, refundable: Money) -> None:
    """Refuse a non-positive refund, one in another currency, or one above what is left."""
    _positive(amount, "amount")
    _same_currency(refundable.currency, amount, "amount")
    if amount > refundable:
        raise RefundExceedsPaid(
            f"refund of {amount.format()} exceeds the {refundable.format()} still refundable",
            field="amount",
        )


def refund_from_escrow(
    refund_id: int | str, order_id: int, buyer_id: int, amount: Money, open_hold: Money
) -> LedgerTransaction:
    """Refund before release: out of the order's escrow hold back to the buyer."""
    check_refund(amount, open_hold)
    cur = amount.currency
    return _transaction(
        TransactionKind.REFUND,
        f"order:{order_id}",
        refund_key(refund_id),
        [(AccountRef.escrow(order_id, cur), -amount), (AccountRef.refunds(buyer_id, cur), amount)],
    )


def refund_after_release(
    refund_id: int | str,
    order_id: int,
    buyer_id: int,
    seller_id: int,
    amount: Money,
    refundable: Money,
) -> LedgerTransaction:
    """Refund after release: clawed back from the seller's payable (which may go negative)."""
    check_refund(amount, refundable)
    cur = amount.currency
    return _transaction(
        TransactionKind.REFUND,
        f"order:{order_id}",
        refund_key(refund_id),
        [
            (AccountRef.seller_payable(seller_id, cur), -amount),
            (AccountRef.refunds(buyer_id, cur), amount),
        ],
    )


def payout(batch_id: int | str, payee: AccountRef, amount: Money) -> LedgerTransaction:
    """Pay a positive seller/carrier payable out through the provider (payable -> clearing)."""
    if payee.kind not in PAYABLE_KINDS:
        raise ValidationError(
            f"payee: {payee.code} is not a seller or carrier payable", field="payee"
        )
    _positive(amount, "amount")
    _same_currency(payee.currency, amount, "amount")
    return _transaction(
        TransactionKind.PAYOUT,
        f"payout_batch:{batch_id}",
        payout_key(batch_id, payee),
        [(payee, -amount), (AccountRef.provider_clearing(payee.currency), amount)],
    )


def payouts_due(account_balances: Mapping[AccountRef, Money]) -> list[tuple[AccountRef, Money]]:
    """The payables a batch pays: every seller/carrier payable with a positive balance."""
    due = [
        (acc, bal)
        for acc, bal in account_balances.items()
        if acc.kind in PAYABLE_KINDS and bal.amount > 0
    ]
    return sorted(due, key=lambda item: item[0].code)


def membership_fee(buyer_id: int, period: str, fee: Money) -> LedgerTransaction:
    """A membership period's fee: buyer_funding -> membership_revenue, one per period."""
    _positive(fee, "fee")
    cur = fee.currency
    return _transaction(
        TransactionKind.MEMBERSHIP_FEE,
        f"membership:{buyer_id}",
        membership_key(buyer_id, period),
        [
            (AccountRef.buyer_funding(buyer_id, cur), -fee),
            (AccountRef.membership_revenue(cur), fee),
        ],
    )


# global invariants over plain rows ---------------------------------------------------------


class PostingRowLike(Protocol):
    @property
    def transaction_id(self) -> int: ...
    @property
    def account(self) -> str: ...
    @property
    def amount(self) -> int: ...
    @property
    def currency(self) -> str: ...


class TransactionRowLike(Protocol):
    @property
    def id(self) -> int: ...
    @property
    def kind(self) -> str: ...
    @property
    def reference(self) -> str: ...
    @property
    def key(self) -> str: ...


@dataclass(frozen=True, slots=True)
class PostingRow:
    """A stored posting: `account` is an AccountRef code, `amount` in minor units."""

    transaction_id: int
    account: str
    amount: int
    currency: str


@dataclass(frozen=True, slots=True)
class TransactionRow:
    id: int
    kind: str
    reference: str
    key: str


def rows_for(transaction_id: int, txn: LedgerTransaction) -> list[PostingRow]:
    """The plain posting rows of a transaction, as a store would keep them."""
    return [
        PostingRow(transaction_id, p.account.code, p.amount.amount, p.amount.currency)
        for p in txn.postings
    ]


def _fmt(amount: int, currency: str) -> str:
    try:
        return Money(amount, currency).format()
    except ValidationError:
        return f"{amount} {currency}"


def check_transactions_balanced(postings: Iterable[PostingRowLike]) -> list[str]:
    """Every transaction has >= 2 postings and sums to zero per currency."""
    sums: dict[tuple[int, str], int] = defaultdict(int)
    counts: dict[int, int] = defaultdict(int)
    violations: list[str] = []
    for p in postings:
        sums[(p.transaction_id, p.currency)] += p.amount
        counts[p.transaction_id] += 1
        if not p.account.endswith(f":{p.currency}"):
            violations.append(
                f"transaction {p.transaction_id}: posting to {p.account} is in {p.currency}"
            )
    for txn_id, n in sorted(counts.items()):
        if n < 2:
            violations.append(f"transaction {txn_id}: has {n} posting(s), needs at least 2")
    for (txn_id, cur), total in sorted(sums.items()):
        if total != 0:
            violations.append(
                f"transaction {txn_id}: {cur} postings sum to {_fmt(total, cur)}, not 0"
            )
    return violations


def check_global_zero(postings: Iterable[PostingRowLike]) -> list[str]:
    """All accounts together sum to zero per currency."""
    sums: dict[str, int] = defaultdict(int)
    for p in postings:
        sums[p.currency] += p.amount
    return [
        f"ledger: all {cur} accounts sum to {_fmt(total, cur)}, not 0"
        for cur, total in sorted(sums.items())
        if total != 0
    ]


def account_balances(postings: Iterable[PostingRowLike]) -> dict[str, int]:
    """Balance per account code, in minor units."""
    out: dict[str, int] = defaultdict(int)
    for p in postings:
        out[p.account] += p.amount
    return dict(out)


def check_escrow_matches_holds(
    postings: Iterable[PostingRowLike], open_holds: Mapping[int, Money]
) -> list[str]:
    """Each order's escrow equals its open hold (zero once released or refunded), and so
    do the totals per currency.

    `open_holds` maps order id -> remaining hold of every order paid and neither released
    nor fully refunded (original hold less refunds before release).
    """
    escrow: dict[tuple[int, str], int] = defaultdict(int)
    for p in postings:
        if p.account.startswith(AccountKind.PLATFORM_ESCROW.value + ":"):
            ref = AccountRef.parse(p.account)
            escrow[(ref.owner_id, ref.currency)] += p.amount
    expected: dict[tuple[int, str], int] = {
        (order_id, hold.currency): hold.amount for order_id, hold in open_holds.items()
    }
    violations: list[str] = []
    for key in sorted(set(escrow) | set(expected)):
        have, want = escrow.get(key, 0), expected.get(key, 0)
        if have != want:
            order_id, cur = key
            violations.append(
                f"escrow: order {order_id} holds {_fmt(have, cur)} in escrow, "
                f"its open hold is {_fmt(want, cur)}"
            )
    totals_have: dict[str, int] = defaultdict(int)
    totals_want: dict[str, int] = defaultdict(int)
    for (_, cur), v in escrow.items():
        totals_have[cur] += v
    for (_, cur), v in expected.items():
        totals_want[cur] += v
    for cur in sorted(set(totals_have) | set(totals_want)):
        if totals_have[cur] != totals_want[cur]:
            violations.append(
                f"escrow: {cur} escrow balance {_fmt(totals_have[cur], cur)} differs from "
                f"open holds {_fmt(totals_want[cur], cur)}"
            )
    return violations


def check_no_double_payout(
    transactions: Iterable[TransactionRowLike], postings: Iterable[PostingRowLike]
) -> list[str]:
    """Nobody paid out twice: one payout per key, per payee per batch, and no payout ever
    takes a payable below zero (replaying postings in transaction id order)."""
    txns = sorted(transactions, key=lambda t: t.id)
    by_txn: dict[int, list[PostingRowLike]] = defaultdict(list)
    for p in postings:
        by_txn[p.transaction_id].append(p)
    violations: list[str] = []
    seen_keys: dict[str, int] = {}
    seen_payee: dict[tuple[str, str], int] = {}
    balance: dict[str, int] = defaultdict(int)
    for t in txns:
        is_payout = str(t.kind) == TransactionKind.PAYOUT.value
        if is_payout:
            if t.key in seen_keys:
                violations.append(
                    f"payout: key {t.key} used by transactions {seen_keys[t.key]} and {t.id}"
                )
            seen_keys.setdefault(t.key, t.id)
        for p in by_txn.get(t.id, []):
            balance[p.account] += p.amount
            kind = p.account.split(":", 1)[0]
            if not is_payout or kind not in {k.value for k in PAYABLE_KINDS}:
                continue
            pair = (t.reference, p.account)
            if pair in seen_payee:
                violations.append(
                    f"payout: {p.account} paid twice in {t.reference} "
                    f"(transactions {seen_payee[pair]} and {t.id})"
                )
            seen_payee.setdefault(pair, t.id)
            if balance[p.account] < 0:
                violations.append(
                    f"payout: transaction {t.id} took {p.account} to "
                    f"{_fmt(balance[p.account], p.currency)} (paid more than owed)"
                )
    return violations


@dataclass(frozen=True, slots=True)
class LedgerCheck:
    """Outcome of checking every global invariant."""

    violations: tuple[str, ...]
    transactions: int
    postings: int
    accounts: int

    @property
    def ok(self) -> bool:
        return not self.violations


def check_ledger(
    transactions: Iterable[TransactionRowLike],
    postings: Iterable[PostingRowLike],
    open_holds: Mapping[int, Money],
) -> LedgerCheck:
    """Run every invariant; `ok` is True when there is no violation."""
    txns = list(transactions)
    rows = list(postings)
    known = {t.id for t in txns}
    orphans = sorted({p.transaction_id for p in rows} - known)
    violations = [f"posting of unknown transaction {tid}" for tid in orphans]
    posted = {p.transaction_id for p in rows}
    violations += [f"transaction {t.id}: has no postings" for t in txns if t.id not in posted]
    violations += check_transactions_balanced(rows)
    violations += check_global_zero(rows)
    violations += check_escrow_matches_holds(rows, open_holds)
    violations += check_no_double_payout(txns, rows)
    return LedgerCheck(
        violations=tuple(violations),
        transactions=len(txns),
        postings=len(rows),
        accounts=len({p.account for p in rows}),
    )
