"""Money persistence: cards, payments, order money, refunds, keys, membership, payouts."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    ARRAY,
    Connection,
    Integer,
    Text,
    and_,
    bindparam,
    func,
    insert,
    select,
    true,
    update,
)

from silkroute.store import money_tables as m
from silkroute.store import tables as t
from silkroute.store.sql import LOCK_FREE_READ, DriverSelect, insert_id, insert_rows


class MoneyRepo:
    def __init__(self, conn: Connection):
        self.conn = conn


    # payment methods --------------------------------------------------------------------
    def add_payment_method(self, buyer_id: int, token: str, last4: str, currency: str,
                           is_default: bool) -> int:
        pm = m.payment_methods
        if is_default:
            self.conn.execute(update(pm).where(pm.c.buyer_id == buyer_id, pm.c.is_default)
                              .values(is_default=False))
        return insert_id(self.conn, pm, dict(buyer_id=buyer_id, token=token, last4=last4,
                                          currency=currency, is_default=is_default))

    def payment_method(self, method_id: int) -> Any:
        pm = m.payment_methods
        return self.conn.execute(select(pm).where(pm.c.id == method_id)).first()

    def default_payment_method(self, buyer_id: int) -> Any:
        pm = m.payment_methods
        return self.conn.execute(select(pm).where(pm.c.buyer_id == buyer_id).order_by(
            pm.c.is_default.desc(), pm.c.id).limit(1)).first()

    # one-click context: everything one_click needs before checkout, in one statement ------
    def one_click_context(self, buyer_id: int, sku: str, period: str, scope: str,
                          key: str) -> Sequence[Any]:
        """One row per location of the SKU's seller that stocks it (one row with NULL
        location columns when none does); no row when there is no such SKU."""
        return _one_click_context().all(self.conn, {
            "buyer_id": buyer_id, "sku": sku, "period": period, "scope": scope,
            "key": key})

    def one_click_contexts(self, params: Sequence[tuple[int, str, str, str, str]]
                           ) -> list[list[Any]]:
        """`one_click_context` for several (buyer_id, sku, period, scope, key) at once, in
        order (on PostgreSQL one statement, `_one_click_contexts`; its rows carry the
        request's `idx` too)."""
        if len(params) < 2 or self.conn.dialect.name != "postgresql":
            return [list(self.one_click_context(*p)) for p in params]
        buyer_ids, skus, periods, scopes, keys = (list(c) for c in zip(*params, strict=True))
        out: list[list[Any]] = [[] for _ in params]
        for row in _one_click_contexts().all(self.conn, {
                "buyer_ids": buyer_ids, "skus": skus, "periods": periods, "scopes": scopes,
                "keys": keys}):
            out[row.idx - 1].append(row)
        return out

    # shipping templates and commission ---------------------------------------------------
    def set_shipping_template(self, seller_id: int, template: dict[str, Any],
                              carrier_id: int) -> None:
        st = m.shipping_templates
        res = self.conn.execute(update(st).where(st.c.seller_id == seller_id)
                                .values(template=template, carrier_id=carrier_id))
        if res.rowcount == 0:
            self.conn.execute(insert(st).values(seller_id=seller_id, template=template,
                                                carrier_id=carrier_id))

    def shipping_template(self, seller_id: int) -> Any:
        st = m.shipping_templates
        return self.conn.execute(select(st).where(st.c.seller_id == seller_id)).first()

    def set_commission_rate(self, category: str, rate: Any) -> None:
        cr = m.commission_rates
        res = self.conn.execute(update(cr).where(cr.c.category == category).values(rate=rate))
        if res.rowcount == 0:
            self.conn.execute(insert(cr).values(category=category, rate=rate))

    def commission_rates(self) -> dict[str, Any]:
        cr = m.commission_rates
        return {r.category: r.rate for r in self.conn.execute(select(cr))}

    # payments and order money --------------------------------------------------------------
    def add_payment(self, **values: Any) -> int:
        return insert_id(self.conn, m.payments, values)

    def payment_of_checkout(self, checkout_id: int) -> Any:
        p = m.payments
        return self.conn.execute(select(p).where(p.c.checkout_id == checkout_id)).first()

    def payment(self, payment_id: int) -> Any:
        p = m.payments
        return self.conn.execute(select(p).where(p.c.id == payment_id)).first()

    def add_order_money(self, rows: list[dict[str, Any]]) -> None:
        insert_rows(self.conn, m.order_money, rows)

    def order_money(self, order_id: int, *, lock: bool = False) -> Any:
        om = m.order_money
        q = select(om).where(om.c.order_id == order_id)
        if lock and self.conn.dialect.name == "postgresql":
            q = q.with_for_update()
        return self.conn.execute(q).first()

    def update_order_money(self, order_id: int, **values: Any) -> None:
        om = m.order_money
        self.conn.execute(update(om).where(om.c.order_id == order_id).values(**values))

    def open_holds(self) -> Sequence[Any]:
        """Orders paid and not released whose hold is not fully refunded."""
        om = m.order_money
        return self.conn.execute(
            select(om.c.order_id, om.c.currency,
                   (om.c.hold - om.c.refunded_from_escrow).label("open"))
            .where(~om.c.released, om.c.hold > om.c.refunded_from_escrow)).all()

    def delivered_before(self, cutoff: datetime) -> list[int]:
        om = m.order_money
        return list(self.conn.execute(
            select(om.c.order_id).join(t.orders, t.orders.c.id == om.c.order_id)
            .where(t.orders.c.state == "delivered", ~om.c.released,
                   om.c.delivered_at <= cutoff).order_by(om.c.order_id)).scalars())

    def lines_with_category(self, order_id: int) -> Sequence[Any]:
        ol = t.order_lines
        return self.conn.execute(
            select(ol.c.quantity, ol.c.unit_price, t.products.c.category)
            .join(t.skus, t.skus.c.id == ol.c.sku_id)
            .join(t.products, t.products.c.id == t.skus.c.product_id)
            .where(ol.c.order_id == order_id).order_by(ol.c.id)).all()

    def add_refund(self, **values: Any) -> int:
        return insert_id(self.conn, m.refunds, values)

    def set_refund_provider_ref(self, refund_id: int, ref: str) -> None:
        r = m.refunds
        self.conn.execute(update(r).where(r.c.id == refund_id).values(provider_ref=ref))

    # idempotency keys -------------------------------------------------------------------
    def add_key(self, **values: Any) -> int:
        return insert_id(self.conn, m.idempotency_keys, values)

    def key(self, scope: str, key: str) -> Any:
        ik = m.idempotency_keys
        return self.conn.execute(select(ik).where(ik.c.scope == scope, ik.c.key == key)
                                 ).first()

    def set_key_response(self, key_id: int, status: str, response: dict[str, Any]) -> None:
        ik = m.idempotency_keys
        self.conn.execute(update(ik).where(ik.c.id == key_id)
                          .values(status=status, response=response))

    def purge_keys(self, now: datetime) -> int:
        ik = m.idempotency_keys
        return int(self.conn.execute(ik.delete().where(ik.c.expires_at < now)).rowcount)

    # membership -------------------------------------------------------------------------
    def membership(self, buyer_id: int) -> Any:
        ms = m.memberships
        return self.conn.execute(select(ms).where(ms.c.buyer_id == buyer_id)).first()

    def paid_periods(self, buyer_id: int) -> set[str]:
        mp = m.membership_periods
        return set(self.conn.execute(select(mp.c.period).where(mp.c.buyer_id == buyer_id))
                   .scalars())

    def save_membership(self, buyer_id: int, currency: str, monthly_fee: int,
                        started_on: date, auto_renew: bool, lapsed_on: date | None) -> None:
        ms = m.memberships
        values = {"currency": currency, "monthly_fee": monthly_fee, "started_on": started_on,
                  "auto_renew": auto_renew, "lapsed_on": lapsed_on}
        res = self.conn.execute(update(ms).where(ms.c.buyer_id == buyer_id).values(**values))
        if res.rowcount == 0:
            self.conn.execute(insert(ms).values(buyer_id=buyer_id, **values))

    def add_period(self, **values: Any) -> None:
        self.conn.execute(insert(m.membership_periods).values(**values))

    def is_member(self, buyer_id: int, period: str) -> bool:
        mp = m.membership_periods
        return self.conn.execute(select(mp.c.period).where(
            mp.c.buyer_id == buyer_id, mp.c.period == period)).first() is not None

    # payouts ----------------------------------------------------------------------------
    def batch(self, key: str) -> Any:
        b = m.payout_batches
        return self.conn.execute(select(b).where(b.c.key == key)).first()

    def add_batch(self, key: str) -> int:
        return insert_id(self.conn, m.payout_batches, dict(key=key, status="posted"))

    def set_batch_status(self, batch_id: int, status: str) -> None:
        b = m.payout_batches
        self.conn.execute(update(b).where(b.c.id == batch_id).values(status=status))

    def add_payout(self, **values: Any) -> int:
        return insert_id(self.conn, m.payouts, values)

    def payouts_of(self, batch_id: int) -> Sequence[Any]:
        p = m.payouts
        return self.conn.execute(select(p).where(p.c.batch_id == batch_id)
                                 .order_by(p.c.id)).all()

    def mark_payout_sent(self, payout_id: int, ref: str) -> None:
        p = m.payouts
        self.conn.execute(update(p).where(p.c.id == payout_id)
                          .values(status="sent", provider_ref=ref))

    def lock_payouts(self) -> None:
        """Serialise payout runs (PostgreSQL: a transaction-scoped advisory lock; SQLite's
        BEGIN IMMEDIATE already serialises writers)."""
        if self.conn.dialect.name == "postgresql":
            self.conn.execute(select(func.pg_advisory_xact_lock(731_003)))

    def count(self, table: Any) -> int:
        return int(self.conn.execute(select(func.count()).select_from(table)).scalar_one())


@functools.cache
def _one_click_context() -> DriverSelect:
    """Built once with bound parameters: SQLAlchemy then reuses its compiled form instead
    of rebuilding a seven-way join's cache key on every buy-now (profiled: ~20% of it); on
    PostgreSQL it runs on the driver directly (`DriverSelect`).

    When the SKU exists, per location of its seller that stocks it (ordered by location,
    as checkout's own candidate query): the location and its available units, and on every
    row the SKU's fields checkout needs, the buyer (NULL when unknown), the default address
    and card, the seller's shipping template, this month's membership, the idempotency key
    if already claimed, and the router index's network signature (`network_signature`).
    No row: no such SKU."""
    return DriverSelect(
        _context_select(bindparam("buyer_id"), bindparam("sku"), bindparam("period"),
                        bindparam("scope"), bindparam("key"))
        # Locks nothing, changes nothing: on PostgreSQL it may run before the checkout's
        # transaction begins (store/sql.py `begin_outside`).
        .execution_options(**{LOCK_FREE_READ: True}))


@functools.cache
def _one_click_contexts() -> DriverSelect:
    """`_one_click_context` for many requests in one PostgreSQL statement: the requests as
    arrays unnested WITH ORDINALITY (`idx`, from 1), each one's rows from the same select
    run as a LATERAL subquery, in request order then location order. Its text is the same
    whatever the number of requests (prepared once), and the network signature's
    subqueries, which depend on no request, run once for all."""
    req = func.unnest(
        bindparam("buyer_ids", type_=ARRAY(Integer)), bindparam("skus", type_=ARRAY(Text)),
        bindparam("periods", type_=ARRAY(Text)), bindparam("scopes", type_=ARRAY(Text)),
        bindparam("keys", type_=ARRAY(Text)),
    ).table_valued("buyer_id", "sku", "period", "scope", "key",
                   with_ordinality="idx").render_derived(name="req")
    ctx = _context_select(req.c.buyer_id, req.c.sku, req.c.period, req.c.scope,
                          req.c.key).lateral("ctx")
    return DriverSelect(select(req.c.idx, *ctx.c).select_from(req.join(ctx, true()))
                        .order_by(req.c.idx, ctx.c.location_id)
                        .execution_options(**{LOCK_FREE_READ: True}))


def _context_select(buyer_id: Any, sku: Any, period: Any, scope: Any, key: Any) -> Any:
    """The one-click context's select for a request given as column expressions."""
    from silkroute.store.network_repo import SIGNATURE_COLUMNS

    pm, st, mp, ik, sk, ad, by = (m.payment_methods, m.shipping_templates,
                                  m.membership_periods, m.idempotency_keys, t.skus,
                                  t.addresses, t.buyers)
    so, lo = t.stock, t.locations
    # (correlated to whatever gives the buyer: a parameter, or the outer request row)
    default_pm = (select(pm.c.id).where(pm.c.buyer_id == buyer_id)
                  .order_by(pm.c.is_default.desc(), pm.c.id).limit(1)
                  .correlate_except(pm).scalar_subquery())
    default_address = (select(ad.c.id).where(ad.c.buyer_id == buyer_id)
                       .order_by(ad.c.is_default.desc(), ad.c.id).limit(1)
                       .correlate_except(ad).scalar_subquery())
    return (select(sk.c.id.label("sku_id"), sk.c.currency.label("sku_currency"),
                   sk.c.seller_id, sk.c.code, sk.c.on_sale, sk.c.weight_g, sk.c.price_amount,
                   by.c.id.label("buyer_found"),
                   ad.c.id.label("address_id"), ad.c.latitude, ad.c.longitude, ad.c.zone_id,
                   pm.c.id.label("pm_id"), pm.c.token, pm.c.currency.label("pm_currency"),
                   st.c.template, st.c.carrier_id, mp.c.period.label("member_period"),
                   ik.c.id.label("key_id"), lo.c.id.label("location_id"),
                   lo.c.name.label("location_name"), lo.c.latitude.label("location_latitude"),
                   lo.c.longitude.label("location_longitude"),
                   (so.c.on_hand - so.c.reserved).label("available"), *SIGNATURE_COLUMNS)
            .select_from(sk)
            .outerjoin(by, by.c.id == buyer_id)
            .outerjoin(ad, ad.c.id == default_address)
            .outerjoin(pm, pm.c.id == default_pm)
            .outerjoin(st, st.c.seller_id == sk.c.seller_id)
            .outerjoin(mp, and_(mp.c.buyer_id == buyer_id, mp.c.period == period))
            .outerjoin(ik, and_(ik.c.scope == scope, ik.c.key == key))
            .outerjoin(so.join(lo, lo.c.id == so.c.location_id),
                       and_(so.c.sku_id == sk.c.id, lo.c.seller_id == sk.c.seller_id))
            .where(sk.c.code == sku)
            .order_by(lo.c.id))
