"""Shared fixtures: real databases (SQLite and, when FLOWDECK_TEST_POSTGRES_URL is
set, Postgres), real servers on 127.0.0.1 port 0, and the real client."""
from __future__ import annotations

import os
import pathlib
import sys
import uuid

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
PG_URL = os.environ.get("FLOWDECK_TEST_POSTGRES_URL", "")
BACKENDS = ["sqlite"] + (["postgres"] if PG_URL else [])


def require_postgres() -> str:
    """The Postgres URL; in CI a missing one fails the test instead of skipping it."""
    if not PG_URL:
        if os.environ.get("CI"):
            pytest.fail("FLOWDECK_TEST_POSTGRES_URL is not set: CI must run the Postgres tests")
        pytest.skip("FLOWDECK_TEST_POSTGRES_URL is not set")
    return PG_URL


def pytest_configure(config):
    if os.environ.get("CI") and not PG_URL:
        raise pytest.UsageError("CI must run the database tests on Postgres too: set FLOWDECK_TEST_POSTGRES_URL")


def pytest_report_header(config):
    return f"flowdeck database backends: {', '.join(BACKENDS)}"


def _pg_admin_engine():
    from sqlalchemy import create_engine

    from flowdeck.server.db import make_url_sync

    return create_engine(make_url_sync(PG_URL), isolation_level="AUTOCOMMIT")


def _swap_db(url: str, name: str) -> str:
    base, _, _ = url.rpartition("/")
    return f"{base}/{name}"


@pytest.fixture(scope="session")
def pg_database_factory():
    """Make fresh Postgres databases for this session; drop them at the end."""
    made: list[str] = []
    admin = _pg_admin_engine() if PG_URL else None

    def make() -> str:
        from sqlalchemy import text

        name = f"flowdeck_test_{uuid.uuid4().hex[:12]}"
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        made.append(name)
        from flowdeck.server.db import make_url_sync

        return _swap_db(make_url_sync(PG_URL), name)

    yield make
    if admin is not None:
        from sqlalchemy import text

        with admin.connect() as conn:
            for name in made:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session", params=BACKENDS)
def database_url(request, tmp_path_factory, pg_database_factory):
    """A migrated database per backend for the whole session."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'flowdeck.db'}"
    else:
        url = pg_database_factory()
    from flowdeck.server.db import Database

    db = Database(url, threads=4)
    db.migrate()
    db.close()
    return url


def truncate_all(db) -> None:
    from sqlalchemy import text
    from sqlalchemy.exc import OperationalError

    from flowdeck.server.models import Base

    tables = [t.name for t in reversed(Base.metadata.sorted_tables)]
    for attempt in range(5):
        try:
            with db.write() as s:
                if db.dialect == "postgresql":
                    s.execute(text("TRUNCATE " + ", ".join(tables) + " CASCADE"))
                else:
                    for t in tables:
                        s.execute(text(f"DELETE FROM {t}"))
            return
        except OperationalError as e:
            # A server still finishing the last test's work (releasing the runs
            # of a stream that closed) locks the tables in another order: one
            # side of that deadlock fails, and the truncation is simply retried.
            if "deadlock detected" not in str(e) or attempt == 4:
                raise


@pytest.fixture
def db(database_url):
    """A Database on a clean schema (rows from other tests are gone)."""
    from flowdeck.server.db import Database

    database = Database(database_url, threads=4)
    truncate_all(database)
    yield database
    database.close()


def in_process_server(home, *, background: bool = False, **settings):
    """A started server on its own thread, on 127.0.0.1 port 0 (its address in
    `.address`): `settings` are flowdeck.server.settings.Settings fields;
    `background` runs its loops (scheduler, dispatcher, lease expiry)."""
    from flowdeck.server.app import ThreadedServer
    from flowdeck.server.settings import Settings

    server = ThreadedServer(Settings(home=home, port=0, **settings), background=background)
    server.address = server.start()
    return server


@pytest.fixture(scope="session")
def session_server(database_url, tmp_path_factory):
    """One in-process server per backend for the session (background loops off:
    tests that need the scheduler or dispatcher start their own server)."""
    server = in_process_server(tmp_path_factory.mktemp("home"), database_url=database_url)
    yield server
    server.stop()


@pytest.fixture
def server(session_server):
    truncate_all(session_server.server.db)
    return session_server


@pytest.fixture
def client(server):
    from flowdeck.client import FlowdeckClient

    c = FlowdeckClient(server.address, timeout=20)
    yield c
    c.close()


class Wire:
    """Plain channels and generated stubs, for tests of the wire contract (raw
    messages, request ids, streams) as any gRPC client sees it."""

    def __init__(self):
        self.channels = []

    def channel(self, address: str, api_key: str | None = None):
        from flowdeck.channels import make_channel

        channel = make_channel(address, api_key=api_key or "")
        self.channels.append(channel)
        return channel

    def stub(self, address: str, stub_class, api_key: str | None = None):
        return stub_class(self.channel(address, api_key))


@pytest.fixture
def wire():
    """A `Wire`; its channels close after the test."""
    w = Wire()
    yield w
    for channel in w.channels:
        channel.close()


@pytest.fixture
def flowdeck_home(tmp_path, monkeypatch):
    home = tmp_path / "flowdeck-home"
    home.mkdir()
    monkeypatch.setenv("FLOWDECK_HOME", str(home))
    monkeypatch.delenv("FLOWDECK_API_URL", raising=False)
    return home


@pytest.fixture
def server_process(tmp_path):
    """Start `flowdeck server start` processes: `server_process(*flags, env=...,
    database_url=..., home=...)` returns a started `ServerProcess`. Each is
    stopped after the test, and its output is printed (pytest shows it when the
    test failed)."""
    from support.processes import ServerProcess

    started: list[ServerProcess] = []

    def start(*args, **kw) -> ServerProcess:
        server = ServerProcess(tmp_path / f"server-{len(started)}", *args, **kw)
        started.append(server)
        server.start()
        return server

    yield start
    for server in started:
        server.stop()
        print(f"----- {server.log_path}\n{server.output()}")


def run_cli(*args, env=None, cwd=None, timeout=120, input=None):
    """Run the real `flowdeck` console script as a process."""
    import subprocess

    exe = pathlib.Path(sys.executable).parent / "flowdeck"
    full_env = dict(os.environ)
    full_env.update(env or {})
    return subprocess.run([str(exe), *args], capture_output=True, text=True, env=full_env, cwd=cwd,
                          timeout=timeout, input=input)


# -- API keys (issue 8) -----------------------------------------------------------

@pytest.fixture(scope="session")
def session_key_material():
    """One key per scope plus a revoked admin key, hashed once per session
    (scrypt is slow on purpose); re-inserted after every truncation."""
    from flowdeck.server import api_keys as ak

    out = {}
    for name in (*ak.SCOPES, "revoked"):
        key_id, key = ak.new_key()
        out[name] = (key_id, key, ak.hash_secret(key))
    return out


def insert_test_keys(db, material) -> dict[str, str]:
    from flowdeck.server.models import ApiKeyRow, utcnow

    with db.write() as s:
        for name, (key_id, _key, hashed) in material.items():
            s.add(ApiKeyRow(id=key_id, name=f"test-{name}", scope="admin" if name == "revoked" else name,
                            secret_hash=hashed, created_by="tests", created=utcnow(),
                            revoked=utcnow() if name == "revoked" else None))
    return {name: key for name, (_id, key, _h) in material.items()}


@pytest.fixture(scope="session")
def session_auth_server(database_url, tmp_path_factory):
    """A server with auth on, beside `session_server` on the same database."""
    server = in_process_server(tmp_path_factory.mktemp("auth-home"), database_url=database_url, auth=True,
                               auth_recheck_seconds=0.5)
    yield server
    server.stop()


@pytest.fixture
def auth_server(session_auth_server):
    truncate_all(session_auth_server.server.db)
    return session_auth_server


@pytest.fixture
def api_keys(auth_server, session_key_material) -> dict[str, str]:
    """{"read"|"write"|"agent"|"admin"|"revoked": key} valid on `auth_server`."""
    return insert_test_keys(auth_server.server.db, session_key_material)


@pytest.fixture
def auth_client(auth_server, api_keys):
    """A client of `auth_server` holding the admin key."""
    from flowdeck.client import FlowdeckClient

    c = FlowdeckClient(auth_server.address, timeout=20, api_key=api_keys["admin"])
    yield c
    c.close()
