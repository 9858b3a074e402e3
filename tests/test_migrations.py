"""The one Alembic chain: a full upgrade from empty on every backend, idempotent,
and in agreement with the SQLAlchemy models."""
from __future__ import annotations

import os

import pytest
from sqlalchemy import inspect, text

BACKENDS = ["sqlite"] + (["postgres"] if os.environ.get("FLOWDECK_TEST_POSTGRES_URL") else [])


@pytest.fixture(params=BACKENDS)
def fresh_url(request, tmp_path, pg_database_factory):
    """An empty database (never migrated) per backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'fresh.db'}"
    return pg_database_factory()


def _head() -> str:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from flowdeck.server.db import MIGRATIONS

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    heads = ScriptDirectory.from_config(cfg).get_heads()
    assert len(heads) == 1, f"the migration chain has several heads: {heads}"
    return heads[0]


def _version(db) -> str:
    with db.read() as s:
        return s.scalar(text("SELECT version_num FROM alembic_version"))


def test_upgrade_from_empty_creates_every_table(fresh_url):
    from flowdeck.server.db import Database
    from flowdeck.server.models import Base

    db = Database(fresh_url, threads=2)
    try:
        assert inspect(db.write_engine).get_table_names() == []
        db.migrate()
        tables = set(inspect(db.write_engine).get_table_names())
        assert set(Base.metadata.tables) | {"alembic_version"} == tables
        assert _version(db) == _head()
    finally:
        db.close()


def test_upgrade_twice_is_idempotent_and_keeps_rows(fresh_url):
    from flowdeck.server import flows
    from flowdeck.server.db import Database

    db = Database(fresh_url, threads=2)
    try:
        db.migrate()
        with db.write() as s:
            flows.get_or_create(s, "survivor")
        db.migrate()
        assert _version(db) == _head()
    finally:
        db.close()
    # A new process (a new Database) starting on the migrated database is a no-op too.
    again = Database(fresh_url, threads=2)
    try:
        again.migrate()
        with again.read() as s:
            assert flows.get_by_name(s, "survivor").name == "survivor"
    finally:
        again.close()


def test_models_and_migrations_agree(fresh_url):
    """The equivalent of `alembic check`: autogenerate finds nothing to do."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from flowdeck.server.db import Database
    from flowdeck.server.models import Base

    db = Database(fresh_url, threads=2)
    try:
        db.migrate()
        with db.write_engine.connect() as conn:
            ctx = MigrationContext.configure(
                conn,
                opts={
                    "compare_type": True,
                    "compare_server_default": True,
                    "render_as_batch": conn.dialect.name == "sqlite",
                },
            )
            diffs = compare_metadata(ctx, Base.metadata)
        assert diffs == [], "models and migrations disagree; add a migration:\n" + "\n".join(map(str, diffs))
    finally:
        db.close()


def test_sqlite_runs_in_wal_mode_with_foreign_keys(tmp_path):
    from flowdeck.server.db import Database

    db = Database(f"sqlite:///{tmp_path / 'wal.db'}", threads=2)
    try:
        db.migrate()
        with db.read() as s:
            assert s.scalar(text("PRAGMA journal_mode")) == "wal"
            assert s.scalar(text("PRAGMA foreign_keys")) == 1
            assert s.scalar(text("PRAGMA busy_timeout")) >= 1000
    finally:
        db.close()
