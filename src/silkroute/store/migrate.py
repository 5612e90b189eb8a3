"""Apply Alembic migrations programmatically (`silkroute db upgrade`, demo, tests)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Engine

from silkroute.domain.errors import ValidationError

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(url: str | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    if url:
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> str:
    """Bring the schema to `revision`; returns the revision the database is now at."""
    cfg = alembic_config()
    with engine.connect() as conn:
        cfg.attributes["connection"] = conn
        _run(command.upgrade, cfg, revision)
        conn.commit()
    return current_revision(engine) or ""


def downgrade(engine: Engine, revision: str) -> None:
    """Take the schema back to `revision` (`base` removes every table migrations made)."""
    cfg = alembic_config()
    with engine.connect() as conn:
        cfg.attributes["connection"] = conn
        _run(command.downgrade, cfg, revision)
        conn.commit()


def _run(step: Any, cfg: Config, revision: str) -> None:
    """Run an Alembic command; a revision it cannot place (a database written by a newer
    silkroute, or a typo) is bad input, not a crash."""
    try:
        step(cfg, revision)
    except CommandError as exc:
        raise ValidationError(f"db: cannot migrate to {revision!r}: {exc} (was this database "
                              "made by a newer silkroute?)", field="db") from None


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head
