"""Property: any sequence of set_stock, checkout and cancel keeps stock consistent."""

from __future__ import annotations

import shutil
import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from silkroute.domain.errors import DomainError
from silkroute.services.catalog import set_stock
from silkroute.services.checkout import CartLine, cancel, checkout
from silkroute.store import tables as t
from silkroute.store.engine import make_engine
from silkroute.store.uow import UnitOfWork
from tests.conftest import _truncate_all
from tests.integration.helpers import small_market

SKUS = ("TEA-1", "MUG-1", "CUP-1")

ops = st.lists(st.one_of(
    st.tuples(st.just("set"), st.sampled_from(SKUS), st.sampled_from(("seoul", "busan")),
              st.integers(0, 6)),
    st.tuples(st.just("checkout"), st.lists(
        st.tuples(st.sampled_from(SKUS), st.integers(1, 4)), min_size=1, max_size=3),
        st.booleans()),
    st.tuples(st.just("cancel"), st.integers(0, 10)),
), min_size=1, max_size=25)


def _check_invariants(engine) -> None:  # noqa: ANN001
    with engine.connect() as conn:
        stock = {(r.sku_id, r.location_id): (r.on_hand, r.reserved)
                 for r in conn.execute(select(t.stock))}
        held = conn.execute(
            select(t.allocations.c.sku_id, t.allocations.c.location_id,
                   t.allocations.c.quantity, t.orders.c.state)
            .join(t.orders, t.orders.c.id == t.allocations.c.order_id)
            .where(t.allocations.c.status == "reserved")).all()
        lines = conn.execute(select(t.order_lines.c.order_id, t.order_lines.c.sku_id,
                                    t.order_lines.c.quantity)).all()
        allocs = conn.execute(select(t.allocations.c.order_id, t.allocations.c.sku_id,
                                     t.allocations.c.quantity)).all()
    for on_hand, reserved in stock.values():
        assert 0 <= reserved <= on_hand
    expected: dict[tuple[int, int], int] = {}
    for sku_id, loc, qty, state in held:
        assert state == "reserved"
        expected[(sku_id, loc)] = expected.get((sku_id, loc), 0) + qty
    # conservation: what locations say is reserved is exactly what live orders hold
    assert {k: v[1] for k, v in stock.items() if v[1]} == expected
    # every order line is allocated in full, no more, no less
    per_line: dict[tuple[int, int], int] = {}
    for oid, sku_id, qty in allocs:
        per_line[(oid, sku_id)] = per_line.get((oid, sku_id), 0) + qty
    assert per_line == {(oid, sku_id): qty for oid, sku_id, qty in lines}


@pytest.mark.parametrize("backend_name", [
    "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(steps=ops)
def test_stock_invariants_hold_for_any_sequence(backend_name, steps, request, tmp_path):
    if backend_name == "sqlite":
        path = tmp_path / f"{uuid.uuid4().hex}.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        engine = make_engine(f"sqlite:///{path}")
    else:
        engine = make_engine(request.getfixturevalue("pg_database"))
        _truncate_all(engine)
    try:
        def uow() -> UnitOfWork:
            return UnitOfWork(engine)

        m = small_market(uow, skus={"TEA-1": 1000, "MUG-1": 2000, "CUP-1": 3000})
        where = {"seoul": m.seoul, "busan": m.busan}
        placed: list[int] = []
        for step in steps:
            try:
                if step[0] == "set":
                    set_stock(uow(), step[1], where[step[2]], step[3])
                elif step[0] == "checkout":
                    buyer = m.buyer_seoul if step[2] else m.buyer_busan
                    res = checkout(uow(), buyer, [CartLine(s, q) for s, q in step[1]])
                    placed.extend(o.order_id for o in res.orders)
                elif placed:
                    cancel(uow(), placed[step[1] % len(placed)])
            except DomainError:
                pass  # refusals are fine; what matters is what they leave behind
            _check_invariants(engine)
    finally:
        engine.dispose()
