"""Stateful property: random money flows keep the ledger, escrow and stock consistent."""

from __future__ import annotations

import shutil
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from silkroute.domain.errors import DomainError
from silkroute.payments.test_provider import TestPaymentProvider
from silkroute.services import payments as P
from silkroute.services.one_click import one_click
from silkroute.store import money_tables as mt
from silkroute.store.engine import make_engine
from silkroute.store.uow import UnitOfWork
from tests.conftest import _truncate_all
from tests.integration.money_helpers import (
    APPROVE,
    DECLINE,
    TIMEOUT,
    assert_invariants,
    money_market,
)

CARDS = {"approve": APPROVE, "decline": DECLINE, "timeout": TIMEOUT}
T0 = datetime(2026, 11, 2, 9, tzinfo=UTC)


def machine_for(make_engine_fn):  # noqa: ANN001, ANN201
    class MoneyFlows(RuleBasedStateMachine):
        @initialize()
        def setup(self) -> None:
            self.engine = make_engine_fn()
            self.provider = TestPaymentProvider()
            self.uow = lambda: UnitOfWork(self.engine)
            self.m = money_market(self.uow, units=6)
            self.cards = {name: P.add_card(self.uow(), self.m.buyer_seoul, number,
                                           default=False).payment_method_id
                          for name, number in CARDS.items()}
            self.orders: list[int] = []
            self.now = T0
            self.n = 0

        def teardown(self) -> None:
            if hasattr(self, "engine"):
                self.engine.dispose()

        def _try(self, fn, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
            try:
                return fn(*args, **kwargs)
            except DomainError:
                return None  # refusals are fine; what they leave behind is checked

        def _pick(self, i: int) -> int | None:
            return self.orders[i % len(self.orders)] if self.orders else None

        @rule(sku=st.sampled_from(["TEA-1", "MUG-1"]), qty=st.integers(1, 3),
              card=st.sampled_from(sorted(CARDS)))
        def buy(self, sku: str, qty: int, card: str) -> None:
            self.n += 1
            with self.engine.begin() as conn:  # make the chosen card the default one
                conn.execute(mt.payment_methods.update().values(
                    is_default=mt.payment_methods.c.id == self.cards[card]))
            res = self._try(one_click, self.uow(), self.m.buyer_seoul, sku, qty,
                            idempotency_key=f"k{self.n}", now=self.now, provider=self.provider)
            if res is not None:
                self.orders.append(res.order_id)

        @rule(i=st.integers(0, 50))
        def ship(self, i: int) -> None:
            if (o := self._pick(i)) is not None:
                self._try(P.ship, self.uow(), o)

        @rule(i=st.integers(0, 50))
        def deliver(self, i: int) -> None:
            if (o := self._pick(i)) is not None:
                self._try(P.deliver, self.uow(), o, now=self.now)

        @rule(i=st.integers(0, 50))
        def confirm(self, i: int) -> None:
            if (o := self._pick(i)) is not None:
                self._try(P.confirm_receipt, self.uow(), o)

        @rule(days=st.integers(0, 12))
        def auto_confirm(self, days: int) -> None:
            self.now += timedelta(days=days)
            P.auto_confirm(self.uow(), now=self.now)

        @rule(i=st.integers(0, 50), amount=st.one_of(st.none(), st.integers(1, 40000)))
        def refund(self, i: int, amount: int | None) -> None:
            if (o := self._pick(i)) is not None:
                self._try(P.refund, self.uow(), o, amount, provider=self.provider)

        @rule()
        def payout(self) -> None:
            P.run_payouts(self.uow(), provider=self.provider)

        @rule(action=st.sampled_from(["subscribe", "renew", "lapse"]))
        def member(self, action: str) -> None:
            self._try(getattr(P, action), self.uow(), self.m.buyer_seoul,
                      today=self.now.date(), **({} if action == "lapse"
                                               else {"provider": self.provider}))

        @invariant()
        def consistent(self) -> None:
            if hasattr(self, "engine"):
                assert_invariants(self.engine)
                paid = sum(p.amount.amount for p in self.provider.payouts)
                assert paid == self.provider.paid_out_total("KRW").amount

    return MoneyFlows


@pytest.mark.parametrize("backend_name", [
    "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_money_flows_keep_every_invariant(backend_name, request, tmp_path):
    if backend_name == "sqlite":
        template = request.getfixturevalue("sqlite_template")

        def fresh():  # noqa: ANN202
            path = tmp_path / f"{uuid.uuid4().hex}.db"
            shutil.copy(template, path)
            return make_engine(f"sqlite:///{path}")
    else:
        url = request.getfixturevalue("pg_database")

        def fresh():  # noqa: ANN202
            eng = make_engine(url)
            _truncate_all(eng)
            return eng

    machine = machine_for(fresh)
    machine.TestCase.settings = settings(
        max_examples=25, stateful_step_count=12, deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
    machine.TestCase().runTest()
