"""The demo's carriers at work: hand-over, then signed tracking events to the real webhook."""

from __future__ import annotations

import json
import random
import time
import warnings
from collections import Counter
from typing import Any

from sqlalchemy import Engine

from silkroute.domain.parcels import sign
from silkroute.services import delivery
from silkroute.store.uow import UnitOfWork


class CarrierFleet:
    """Every carrier the demo's parcels use gets an API account and a webhook secret, and
    posts its events over HTTP to `/api/v1/carrier/events` of the app, in process."""

    def __init__(self, engine: Engine):
        with warnings.catch_warnings():
            # Starlette 1.10 asks for httpx2 under its test client; the in-process client
            # works with httpx, and `make demo` should not print a library's deprecation.
            warnings.filterwarnings("ignore", message=".*install `httpx2` instead",
                                    category=Warning)
            from fastapi.testclient import TestClient

        from silkroute.api.app import create_app

        self.engine = engine
        self.client = TestClient(create_app(engine))
        self.credentials: dict[int, tuple[str, str]] = {}
        self.statuses: Counter[int] = Counter()
        self.events = 0

    def _credentials(self, carrier_id: int) -> tuple[str, str]:
        if carrier_id not in self.credentials:
            account = delivery.create_carrier_account(UnitOfWork(self.engine), carrier_id)
            secret = account.webhook_secret or delivery.rotate_webhook_secret(
                UnitOfWork(self.engine), carrier_id)
            self.credentials[carrier_id] = (account.token.token, secret)
        return self.credentials[carrier_id]

    def post(self, carrier_id: int, tracking: str, event: str, event_id: str) -> Any:
        token, secret = self._credentials(carrier_id)
        body = json.dumps({"event_id": event_id, "tracking_number": tracking,
                           "event": event}).encode()
        stamp = str(int(time.time()))
        res = self.client.post("/api/v1/carrier/events", content=body, headers={
            "Authorization": f"Bearer {token}", "Content-Type": "application/json",
            "X-Silkroute-Timestamp": stamp, "X-Silkroute-Signature": sign(secret, stamp, body)})
        self.statuses[res.status_code] += 1
        self.events += 1
        return res

    def close(self) -> None:
        self.client.close()


def fulfil(engine: Engine, rng: random.Random, paid: list[tuple[int, int]]) -> dict[str, Any]:
    """Sellers hand most paid orders over; carriers pick them up and deliver most, through
    the signed webhook, with a few duplicate and late events as real carriers send them."""
    fleet = CarrierFleet(engine)
    handed = duplicates = 0
    try:
        for seller_id, order_id in paid:
            if rng.random() >= 0.85:
                continue
            parcels = delivery.hand_over(UnitOfWork(engine), seller_id, order_id).parcels
            handed += 1
            deliver = rng.random() < 0.9
            for p in parcels:
                carrier, tracking = int(p["carrier_id"]), str(p["tracking_number"])
                fleet.post(carrier, tracking, "picked_up", f"{tracking}-1")
                if not deliver:
                    fleet.post(carrier, tracking, "in_transit", f"{tracking}-2")
                    continue
                fleet.post(carrier, tracking, "delivered", f"{tracking}-3")
                if rng.random() < 0.03:  # a carrier retries a delivery it already reported
                    fleet.post(carrier, tracking, "delivered", f"{tracking}-3")
                    duplicates += 1
                if rng.random() < 0.03:  # and a late scan arrives after delivery
                    fleet.post(carrier, tracking, "in_transit", f"{tracking}-2")
    finally:
        fleet.close()
    return {"handed_over": handed, "carrier_accounts": len(fleet.credentials),
            "webhook_events": fleet.events, "webhook_duplicates": duplicates,
            "webhook_statuses": {str(k): v for k, v in sorted(fleet.statuses.items())}}
