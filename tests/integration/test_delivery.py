"""Delivery services on both backends: hand-over capacity, events, jobs with a moved clock."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest

from silkroute.domain.errors import Conflict, DomainError
from silkroute.domain.parcels import CarrierEvent, ParcelState, next_state, sign
from silkroute.services import delivery, payments
from silkroute.services.jobs import JobSettings, run_jobs
from silkroute.services.ledger_check import check
from silkroute.services.one_click import one_click
from tests.integration.helpers import small_market, stock_of

APPROVE = "4242424242424242"


def test_parcel_state_machine_only_moves_forward() -> None:
    s, e = ParcelState, CarrierEvent
    assert next_state(s.HANDED_OVER, e.DELIVERED, to_pickup_point=False) == s.DELIVERED
    assert next_state(s.HANDED_OVER, e.DELIVERED, to_pickup_point=True) \
        == s.READY_FOR_COLLECTION
    assert next_state(s.IN_TRANSIT, e.PICKED_UP, to_pickup_point=False) is None
    assert next_state(s.DELIVERED, e.LOST, to_pickup_point=False) is None
    assert next_state(s.FAILED_ATTEMPT, e.OUT_FOR_DELIVERY, to_pickup_point=False,
                      newer=False) is None
    assert next_state(s.FAILED_ATTEMPT, e.OUT_FOR_DELIVERY, to_pickup_point=False) \
        == s.OUT_FOR_DELIVERY


def _paid(uow, market, qty: int = 1, key: str = "k") -> int:  # noqa: ANN001
    return one_click(uow(), market.buyer_seoul, "TEA-1", qty, idempotency_key=key).order_id


@pytest.fixture
def market(uow):  # noqa: ANN001, ANN201
    m = small_market(uow, stock={("TEA-1", "seoul"): 10})
    payments.add_card(uow(), m.buyer_seoul, APPROVE)
    delivery.register_carrier(uow(), "Fast", carrier_id=1, daily_capacity=2)
    return m


def _event(uow, tracking: str, kind: str, event_id: str, now: datetime):  # noqa: ANN001, ANN202
    with uow() as u:
        secret = u.conn.exec_driver_sql(
            "select secret from carrier_secrets where carrier_id = 1").scalar_one()
    raw = json.dumps({"event_id": event_id, "tracking_number": tracking,
                      "event": kind}).encode()
    ts = str(int(now.timestamp()))
    return delivery.receive_event(uow, 1, raw, ts, sign(secret, ts, raw), now=now)


def test_hand_over_consumes_carrier_capacity_per_day(uow, market) -> None:  # noqa: ANN001
    orders = [_paid(uow, market, 1, f"k{i}") for i in range(3)]
    day = datetime(2030, 5, 1, tzinfo=UTC).date()
    for oid in orders[:2]:
        assert delivery.hand_over(uow(), market.seller_id, oid, today=day).state \
            == "ready_to_ship"
    with pytest.raises(Conflict) as refused:
        delivery.hand_over(uow(), market.seller_id, orders[2], today=day)
    assert refused.value.code == "capacity_exhausted"
    with uow() as u:  # nothing of the refused hand-over was kept
        assert u.repos.orders.get(orders[2]).state == "paid"
    nxt = delivery.hand_over(uow(), market.seller_id, orders[2], today=day + timedelta(days=1))
    assert [p["state"] for p in nxt.parcels] == ["handed_over"]
    # handing over again answers the same parcels
    again = delivery.hand_over(uow(), market.seller_id, orders[0], today=day)
    assert [p["tracking_number"] for p in again.parcels] == [f"SR{orders[0]:08d}L{market.seoul}"]


def test_concurrent_duplicate_events_apply_once(uow, market, backend: str) -> None:  # noqa: ANN001
    delivery.create_carrier_account(uow(), 1)
    oid = _paid(uow, market, 2)
    tracking = delivery.hand_over(uow(), market.seller_id, oid).parcels[0]["tracking_number"]
    now = datetime.now(UTC)
    results: list[object] = []

    def send() -> None:
        try:
            results.append(_event(uow, tracking, "picked_up", "same-id", now).duplicate)
        except DomainError as exc:  # pragma: no cover - shown in the assertion
            results.append(exc.code)

    threads = [threading.Thread(target=send) for _ in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert sorted(results, key=str) == [False, True, True, True]
    assert stock_of(uow, "TEA-1", market.seoul) == (8, 0)
    with uow() as u:
        assert u.repos.orders.get(oid).state == "shipped"


def test_jobs_confirm_after_days_and_pay_out(uow, market) -> None:  # noqa: ANN001
    delivery.create_carrier_account(uow(), 1)
    oid = _paid(uow, market, 1)
    tracking = delivery.hand_over(uow(), market.seller_id, oid).parcels[0]["tracking_number"]
    now = datetime.now(UTC)
    assert _event(uow, tracking, "delivered", "d1", now).order_state == "delivered"
    settings = JobSettings(auto_confirm_days=10, reservation_minutes=30, pickup_days=7)
    early = run_jobs(uow, settings, now=now + timedelta(days=9))
    assert (early.auto_confirmed, early.payouts) == ([], 0)
    late = run_jobs(uow, settings, now=now + timedelta(days=10, seconds=1))
    assert late.auto_confirmed == [oid]
    assert (late.payouts, late.paid_out) == (1, {"KRW": late.paid_out["KRW"]})
    assert late.paid_out["KRW"] > 0
    assert run_jobs(uow, settings, now=now + timedelta(days=11)).payouts == 0
    assert check(uow()).ok


def test_stale_and_forged_webhooks_change_nothing(uow, market) -> None:  # noqa: ANN001
    delivery.create_carrier_account(uow(), 1)
    oid = _paid(uow, market, 1)
    tracking = delivery.hand_over(uow(), market.seller_id, oid).parcels[0]["tracking_number"]
    raw = json.dumps({"event_id": "a", "tracking_number": tracking, "event": "lost"}).encode()
    now = datetime.now(UTC)
    ts = str(int(time.time()) - 3600)
    with pytest.raises(DomainError) as stale:
        delivery.receive_event(uow, 1, raw, ts, sign("whatever", ts, raw), now=now)
    assert stale.value.code == "stale_timestamp"
    ts = str(int(now.timestamp()))
    with pytest.raises(DomainError) as forged:
        delivery.receive_event(uow, 1, raw, ts, sign("whatever", ts, raw), now=now)
    assert forged.value.code == "bad_signature"
    with uow() as u:
        assert u.repos.orders.get(oid).state == "ready_to_ship"
