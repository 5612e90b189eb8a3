"""schemathesis over the OpenAPI document as buyer, seller and operator; docs need no network."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from silkroute.api.app import create_app
from silkroute.payments.test_provider import TestPaymentProvider
from silkroute.services import payments
from silkroute.services.accounts import create_account, issue_token
from silkroute.store.engine import make_engine
from silkroute.store.uow import UnitOfWork

# Examples per operation and role: 54 operations x 3 roles stay within about two minutes.
EXAMPLES = int(os.environ.get("SILKROUTE_SCHEMATHESIS_EXAMPLES", "12"))
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]
ROLES = ("buyer", "seller", "operator")


@pytest.fixture(scope="module")
def market(sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[dict[str, Any]]:
    """An app on a fresh SQLite copy with a shop, stock, a buyer with a card and orders."""
    import shutil

    path = tmp_path_factory.mktemp("schema") / "schema.db"
    shutil.copy(sqlite_template, path)
    engine = make_engine(f"sqlite:///{path}")
    provider = TestPaymentProvider()  # knows the seeded payments; each test re-installs it
    old = payments.set_provider(provider)
    app = create_app(engine)
    uows = lambda: UnitOfWork(engine)  # noqa: E731
    accounts = {role: create_account(uows(), role, f"Schema {role}", with_token=True)
                for role in ROLES}
    with TestClient(app) as client:
        seller = {"Authorization": f"Bearer {accounts['seller'].token.token}"}  # type: ignore[union-attr]
        buyer = {"Authorization": f"Bearer {accounts['buyer'].token.token}"}  # type: ignore[union-attr]
        assert client.post("/api/v1/seller/locations", json={"name": "WH", "city": "Seoul"},
                           headers=seller).status_code == 201
        csv = ("title,sku,price,currency,weight_g,location,quantity\n"
               "Green tea,TEA-1,12000,KRW,300,WH,500\nMug,MUG-1,9000,KRW,400,WH,500\n")
        assert client.post("/api/v1/seller/catalog/imports", content=csv.encode(),
                           headers={**seller, "Content-Type": "text/csv"}).status_code == 201
        assert client.post("/api/v1/buyer/addresses", json={"city": "Busan", "default": True},
                           headers=buyer).status_code == 201
        assert client.post("/api/v1/buyer/payment-methods",
                           json={"card": "4242424242424242"}, headers=buyer).status_code == 201
        for n in range(3):
            r = client.post("/api/v1/buyer/buy-now", json={"sku": "TEA-1"},
                            headers={**buyer, "Idempotency-Key": f"seed-{n}"})
            assert r.status_code == 201, r.text
        client.post("/api/v1/buyer/checkouts", json={"lines": [{"sku": "MUG-1"}]},
                    headers=buyer)
    payments.set_provider(old)
    yield {"app": app, "engine": engine, "uows": uows, "accounts": accounts,
           "provider": provider}
    engine.dispose()


def _fresh_token(market: dict[str, Any], role: str) -> str:
    """A token of its own per run: a case that revokes tokens cannot lock the next out."""
    return issue_token(market["uows"](), market["accounts"][role].account_id, "schema").token


def test_schemathesis_finds_no_5xx_and_no_response_outside_the_schema(
        market: dict[str, Any]) -> None:
    payments.set_provider(market["provider"])  # conftest installed a fresh one per test
    schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", market["app"])
    failures: list[str] = []
    started = time.monotonic()
    operations = [r.ok() for r in schema.get_all_operations()]  # type: ignore[union-attr]
    assert len(operations) >= 25
    for operation in operations:
        for role in ROLES:
            headers = {"Authorization": f"Bearer {_fresh_token(market, role)}"}
            try:
                _fuzz(operation, headers)
            except (Exception, BaseExceptionGroup) as exc:  # collect them all, report each
                failures.append(f"{role} {operation.label}: {_short(exc)}")
    elapsed = time.monotonic() - started
    assert failures == [], f"{len(failures)} failing operation/role pairs in {elapsed:.0f} s:\n" \
        + "\n\n".join(failures)


def _fuzz(operation: Any, headers: dict[str, str]) -> None:
    """EXAMPLES generated cases of one operation with these headers; no shrinking."""

    @given(case=operation.as_strategy())
    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
              phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
    def run(case: Any) -> None:
        case.headers = {**(case.headers or {}), **headers}
        case.call_and_validate(checks=CHECKS)

    run()


def _short(exc: BaseException) -> str:
    text = str(exc)
    return text if len(text) < 3000 else text[:3000] + " …"


def test_docs_page_loads_swagger_ui_from_this_server_only(market: dict[str, Any]) -> None:
    with TestClient(market["app"]) as client:
        page = client.get("/api/v1/docs")
        assert page.status_code == 200
        assert "swagger-ui" in page.text.lower()
        urls = re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", page.text)
        urls += re.findall(r"""url\s*:\s*["']([^"']+)["']""", page.text)
        assert urls, page.text
        assert [u for u in urls if not u.startswith("/")] == [], page.text
        assert "//" not in "".join(urls)
        assert '"validatorUrl": null' in page.text  # no badge fetched from swagger.io
        for url in urls:
            asset = client.get(url)
            assert asset.status_code == 200, url
            assert len(asset.content) > 0
        assert client.get("/api/v1/openapi.json").json()["openapi"].startswith("3.")
