"""Repository of parcels, carrier events and secrets, carrier load and refund requests."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, and_, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from silkroute.store import auth_tables as at
from silkroute.store import delivery_tables as d
from silkroute.store import money_tables as m
from silkroute.store import network_tables as nt
from silkroute.store import tables as t
from silkroute.store.sql import insert_id


class DeliveryRepo:
    def __init__(self, conn: Connection):
        self.conn = conn

    # carriers ---------------------------------------------------------------------------
    def carrier(self, carrier_id: int) -> Any:
        return self.conn.execute(select(nt.carriers).where(nt.carriers.c.id == carrier_id)
                                 ).first()

    def max_carrier_id(self) -> int:
        return int(self.conn.execute(select(func.coalesce(func.max(nt.carriers.c.id), 0)))
                   .scalar_one())

    def add_carrier(self, **values: Any) -> None:
        self.conn.execute(insert(nt.carriers).values(**values))

    def carriers_page(self, limit: int, offset: int) -> tuple[Sequence[Any], int]:
        c = nt.carriers
        accounts = (select(func.count()).select_from(at.accounts)
                    .where(at.accounts.c.carrier_id == c.c.id).scalar_subquery())
        has_secret = (select(func.count()).select_from(d.carrier_secrets)
                      .where(d.carrier_secrets.c.carrier_id == c.c.id).scalar_subquery())
        rows = self.conn.execute(
            select(c.c.id, c.c.name, c.c.tier, c.c.daily_capacity, c.c.on_time_rate,
                   c.c.base_fee, c.c.per_kg, accounts.label("accounts"),
                   has_secret.label("has_secret"))
            .order_by(c.c.id).limit(limit).offset(offset)).all()
        total = int(self.conn.execute(select(func.count()).select_from(c)).scalar_one())
        return rows, total

    def secret(self, carrier_id: int) -> str | None:
        return self.conn.execute(select(d.carrier_secrets.c.secret).where(
            d.carrier_secrets.c.carrier_id == carrier_id)).scalar_one_or_none()

    def set_secret(self, carrier_id: int, secret: str) -> None:
        cs = d.carrier_secrets
        if self.secret(carrier_id) is None:
            self.conn.execute(insert(cs).values(carrier_id=carrier_id, secret=secret))
        else:
            self.conn.execute(update(cs).where(cs.c.carrier_id == carrier_id)
                              .values(secret=secret, created_at=func.now()))

    def take_capacity(self, carrier_id: int, day: date, parcels: int, capacity: int) -> bool:
        """Count `parcels` against the carrier's day while it stays within `capacity`."""
        cd = d.carrier_days
        where = and_(cd.c.carrier_id == carrier_id, cd.c.day == day)
        if self.conn.execute(select(cd.c.parcels).where(where)).first() is None:
            if parcels > capacity:
                return False
            nested = self.conn.begin_nested()
            try:
                self.conn.execute(insert(cd).values(carrier_id=carrier_id, day=day,
                                                    parcels=parcels))
                nested.commit()
                return True
            except IntegrityError:  # a concurrent hand-over created the day's row first
                nested.rollback()
        res = self.conn.execute(update(cd).where(where, cd.c.parcels + parcels <= capacity)
                                .values(parcels=cd.c.parcels + parcels))
        return res.rowcount == 1

    # parcels ----------------------------------------------------------------------------
    def add_parcel(self, **values: Any) -> int:
        return insert_id(self.conn, d.parcels, values)

    def parcel(self, parcel_id: int, *, lock: bool = False) -> Any:
        q = select(d.parcels).where(d.parcels.c.id == parcel_id)
        if lock and self.conn.dialect.name == "postgresql":
            q = q.with_for_update()
        return self.conn.execute(q).first()

    def parcel_by_tracking(self, tracking_number: str) -> Any:
        return self.conn.execute(select(d.parcels).where(
            d.parcels.c.tracking_number == tracking_number)).first()

    def parcels_of(self, order_id: int) -> Sequence[Any]:
        return self.conn.execute(select(d.parcels).where(d.parcels.c.order_id == order_id)
                                 .order_by(d.parcels.c.id)).all()

    def move_parcel(self, parcel_id: int, old: str, new: str, **values: Any) -> bool:
        """Compare-and-set a parcel's state; only one concurrent caller wins."""
        p = d.parcels
        res = self.conn.execute(update(p).where(p.c.id == parcel_id, p.c.state == old)
                                .values(state=new, updated_at=func.now(), **values))
        return res.rowcount == 1

    def update_parcels_of(self, order_id: int, **values: Any) -> None:
        p = d.parcels
        self.conn.execute(update(p).where(p.c.order_id == order_id).values(**values))

    def count_attempt(self, order_id: int) -> int:
        """One more wrong pickup code for the order; returns the attempts so far."""
        p = d.parcels
        self.conn.execute(update(p).where(p.c.order_id == order_id)
                          .values(pickup_attempts=p.c.pickup_attempts + 1))
        return int(self.conn.execute(select(func.max(p.c.pickup_attempts))
                                     .where(p.c.order_id == order_id)).scalar_one())

    def carrier_parcels(self, carrier_id: int, state: str | None, limit: int, offset: int
                        ) -> tuple[Sequence[Any], int]:
        p = d.parcels
        where = [p.c.carrier_id == carrier_id]
        if state is not None:
            where.append(p.c.state == state)
        rows = self.conn.execute(select(p).where(*where).order_by(p.c.id.desc())
                                 .limit(limit).offset(offset)).all()
        total = int(self.conn.execute(select(func.count()).select_from(p).where(*where))
                    .scalar_one())
        return rows, total

    def manifest(self, carrier_id: int, start: datetime, end: datetime) -> Sequence[Any]:
        """Parcels handed to the carrier in [start, end), with where from and where to."""
        p, o = d.parcels, t.orders
        origin = t.locations.alias("origin")
        return self.conn.execute(
            select(p.c.id, p.c.tracking_number, p.c.order_id, p.c.state, p.c.weight_g,
                   p.c.created_at, p.c.pickup_location_id, origin.c.id.label("from_id"),
                   origin.c.name.label("from_name"), origin.c.zone_id.label("from_zone"),
                   o.c.zone_id.label("to_zone"), o.c.latitude.label("to_lat"),
                   o.c.longitude.label("to_lon"), o.c.service)
            .join(origin, origin.c.id == p.c.location_id)
            .join(o, o.c.id == p.c.order_id)
            .where(p.c.carrier_id == carrier_id, p.c.created_at >= start, p.c.created_at < end)
            .order_by(origin.c.id, p.c.id)).all()

    def ready_before(self, cutoff: datetime) -> list[int]:
        """Orders whose parcels wait at a pickup point since before `cutoff`."""
        p = d.parcels
        return list(self.conn.execute(
            select(p.c.order_id).where(p.c.state == "ready_for_collection",
                                       p.c.delivered_at <= cutoff)
            .group_by(p.c.order_id).order_by(p.c.order_id)).scalars())

    def settle_candidates(self, order_ids: Sequence[int] | None) -> Sequence[Any]:
        """Parcel states of orders still open for money (shipped, delivered, returned)."""
        p, o = d.parcels, t.orders
        q = (select(p.c.order_id, p.c.state, o.c.state.label("order_state"))
             .join(o, o.c.id == p.c.order_id)
             .where(o.c.state.in_(["ready_to_ship", "shipped", "delivered", "returned"])))
        if order_ids is not None:
            q = q.where(p.c.order_id.in_(list(order_ids)))
        return self.conn.execute(q).all()

    def unpaid_before(self, cutoff: datetime) -> list[int]:
        o = t.orders
        return list(self.conn.execute(
            select(o.c.id).where(o.c.state == "reserved", o.c.created_at <= cutoff)
            .order_by(o.c.id)).scalars())

    def weights(self, order_id: int) -> dict[int, int]:
        """Weight in grams per shipping location of an order."""
        a = t.allocations
        rows = self.conn.execute(
            select(a.c.location_id, func.sum(a.c.quantity * t.skus.c.weight_g))
            .join(t.skus, t.skus.c.id == a.c.sku_id).where(a.c.order_id == order_id)
            .group_by(a.c.location_id)).all()
        return {int(r[0]): int(r[1] or 0) for r in rows}

    def add_stock(self, sku_id: int, location_id: int, quantity: int) -> None:
        """Units come (back) onto a location's shelf; a row is created when missing."""
        s = t.stock
        res = self.conn.execute(update(s).where(s.c.sku_id == sku_id,
                                                s.c.location_id == location_id)
                                .values(on_hand=s.c.on_hand + quantity))
        if res.rowcount == 0:
            self.conn.execute(insert(s).values(sku_id=sku_id, location_id=location_id,
                                               on_hand=quantity, reserved=0))

    def set_allocation_status_at(self, order_id: int, location_id: int, old: str, new: str
                                 ) -> Sequence[Any]:
        """Move an order's allocations at one location; returns the rows moved."""
        a = t.allocations
        rows = self.conn.execute(select(a).where(
            a.c.order_id == order_id, a.c.location_id == location_id, a.c.status == old)
            .order_by(a.c.sku_id)).all()
        if rows:
            self.conn.execute(update(a).where(a.c.id.in_([r.id for r in rows]))
                              .values(status=new))
        return rows

    # carrier events ---------------------------------------------------------------------
    def event_of(self, carrier_id: int, event_id: str) -> Any:
        ce = d.carrier_events
        return self.conn.execute(select(ce).where(ce.c.carrier_id == carrier_id,
                                                  ce.c.event_id == event_id)).first()

    def add_event(self, **values: Any) -> int:
        return insert_id(self.conn, d.carrier_events, values)

    def set_event(self, row_id: int, **values: Any) -> None:
        ce = d.carrier_events
        self.conn.execute(update(ce).where(ce.c.id == row_id).values(**values))

    def events_of(self, parcel_ids: Sequence[int]) -> Sequence[Any]:
        ce = d.carrier_events
        return self.conn.execute(select(ce).where(ce.c.parcel_id.in_(list(parcel_ids)))
                                 .order_by(ce.c.occurred_at, ce.c.id)).all()

    # refund requests --------------------------------------------------------------------
    def add_refund_request(self, **values: Any) -> int:
        return insert_id(self.conn, d.refund_requests, values)

    def refund_request(self, request_id: int) -> Any:
        rr = d.refund_requests
        return self.conn.execute(select(rr).where(rr.c.id == request_id)).first()

    def decide_refund_request(self, request_id: int, state: str, refund_id: int | None,
                              at: datetime) -> bool:
        rr = d.refund_requests
        res = self.conn.execute(update(rr).where(rr.c.id == request_id,
                                                 rr.c.state == "pending")
                                .values(state=state, refund_id=refund_id, decided_at=at))
        return res.rowcount == 1

    def set_refund_request(self, request_id: int, **values: Any) -> None:
        rr = d.refund_requests
        self.conn.execute(update(rr).where(rr.c.id == request_id).values(**values))

    def pending_request_of(self, order_id: int) -> Any:
        rr = d.refund_requests
        return self.conn.execute(select(rr).where(rr.c.order_id == order_id,
                                                  rr.c.state == "pending")).first()

    def refund_requests_of_seller(self, seller_id: int, state: str | None, limit: int,
                                  offset: int) -> tuple[Sequence[Any], int]:
        rr = d.refund_requests
        where = [rr.c.seller_id == seller_id]
        if state is not None:
            where.append(rr.c.state == state)
        rows = self.conn.execute(select(rr).where(*where).order_by(rr.c.id.desc())
                                 .limit(limit).offset(offset)).all()
        total = int(self.conn.execute(select(func.count()).select_from(rr).where(*where))
                    .scalar_one())
        return rows, total

    # statements -------------------------------------------------------------------------
    def statement(self, account_prefix: str, limit: int, offset: int
                  ) -> tuple[Sequence[Any], int, dict[str, int]]:
        """Postings to accounts whose code starts with `account_prefix`, newest first."""
        lp, lt = m.ledger_postings, m.ledger_transactions
        where = lp.c.account.like(account_prefix + "%")
        rows = self.conn.execute(
            select(lp.c.id, lp.c.amount, lp.c.currency, lt.c.kind, lt.c.reference,
                   lt.c.created_at)
            .join(lt, lt.c.id == lp.c.transaction_id).where(where)
            .order_by(lp.c.id.desc()).limit(limit).offset(offset)).all()
        total = int(self.conn.execute(select(func.count()).select_from(lp).where(where))
                    .scalar_one())
        balances = {cur: int(v) for cur, v in self.conn.execute(
            select(lp.c.currency, func.sum(lp.c.amount)).where(where)
            .group_by(lp.c.currency)).all()}
        return rows, total, balances

    def payouts_to(self, account_prefix: str, limit: int, offset: int
                   ) -> tuple[Sequence[Any], int]:
        po, pb = m.payouts, m.payout_batches
        where = po.c.account.like(account_prefix + "%")
        rows = self.conn.execute(
            select(po.c.id, po.c.batch_id, po.c.amount, po.c.currency, po.c.status,
                   po.c.provider_ref, pb.c.created_at)
            .join(pb, pb.c.id == po.c.batch_id).where(where)
            .order_by(po.c.id.desc()).limit(limit).offset(offset)).all()
        total = int(self.conn.execute(select(func.count()).select_from(po).where(where))
                    .scalar_one())
        return rows, total
