"""Every table of every part of silkroute on one MetaData (what Alembic compares against)."""

from __future__ import annotations

import contextlib

from silkroute.store.tables import metadata

# Parts of the schema that live in their own modules register on the same MetaData.
for _module in ("silkroute.store.network_tables", "silkroute.store.money_tables",
                "silkroute.store.auth_tables", "silkroute.store.delivery_tables",
                "silkroute.store.test_provider_tables", "silkroute.store.cart_tables"):
    with contextlib.suppress(ModuleNotFoundError):
        __import__(_module)

__all__ = ["metadata"]
