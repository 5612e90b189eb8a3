"""The delivery journeys of test_delivery_api.py again, over real HTTP against a real
`silkroute serve` process on a free loopback port, on SQLite and on PostgreSQL.

The in-process tests run every case quickly; these prove the same journeys hold when the
server is its own process (its own payment provider, connection pool and jobs) sharing
only the database with the test.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine

from silkroute.bench.http import Server
from tests.e2e import test_delivery_api as journeys


@pytest.fixture
def world(engine: Engine, tmp_path: Path) -> Iterator[journeys.World]:
    url = engine.url.render_as_string(hide_password=False)
    with Server(url, tmp_path / "serve.log", ready_timeout=60) as srv, \
            httpx.Client(base_url=srv.base, timeout=30) as http:
        yield journeys.build_world(http, engine)  # type: ignore[arg-type]


def test_journey_of_buyer_seller_carrier_and_operator_over_real_http(
        world: journeys.World) -> None:
    journeys.test_buyer_seller_carrier_operator_journey(world)


def test_order_online_collect_in_store_over_real_http(world: journeys.World) -> None:
    journeys.test_order_online_collect_in_store_with_the_code(world, world.client)
