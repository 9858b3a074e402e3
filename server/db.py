"""Engines, sessions and migrations.

Database work is synchronous SQLAlchemy run in a bounded thread pool, so the
grpc.aio event loop never blocks on I/O. On SQLite, writes are serialized: one
lock in this process and BEGIN IMMEDIATE across processes, with WAL and a busy
timeout, so concurrent writers never see "database is locked".
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Iterator, TypeVar

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session, sessionmaker

from flowdeck.server import start_errors

log = logging.getLogger("flowdeck.server.db")
T = TypeVar("T")
MIGRATIONS = Path(__file__).parent / "migrations"


def _sqlite_engine(url: str, immediate: bool, pool_size: int) -> Engine:
    engine = create_engine(
        url,
        pool_size=pool_size,
        max_overflow=0,
        connect_args={"check_same_thread": False, "timeout": 60},
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):
        # We emit BEGIN ourselves (pysqlite's implicit transactions are unreliable).
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA busy_timeout=60000")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):
        # Database.read_statement(): one SELECT is its own snapshot; no BEGIN.
        if conn.get_execution_options().get("flowdeck_single_statement"):
            return
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def make_url_sync(url: str) -> str:
    """Accept the common spellings and pick the drivers flowdeck ships with."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://"):]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    if url.startswith("sqlite+aiosqlite://"):
        url = "sqlite://" + url[len("sqlite+aiosqlite://"):]
    return url


class Database:
    """One per server. `read()` and `write()` open a session in one transaction."""

    def __init__(self, url: str, threads: int = 8):
        self.url = make_url_sync(url)
        start_errors.check_database_url(self.url)
        self.is_sqlite = self.url.startswith("sqlite")
        self.threads = threads
        if self.is_sqlite:
            path = self.url.split("///", 1)[-1]
            if path and path != ":memory:":
                try:
                    Path(path).parent.mkdir(parents=True, exist_ok=True)
                except OSError as e:
                    raise start_errors.sqlite_folder_error(path, e) from None
            self.read_engine = _sqlite_engine(self.url, immediate=False, pool_size=threads)
            self.write_engine = _sqlite_engine(self.url, immediate=True, pool_size=2)
        else:
            self.read_engine = create_engine(
                self.url, pool_size=threads + 2, max_overflow=4, pool_pre_ping=True
            )
            self.write_engine = self.read_engine
        # Single-statement reads (the hottest lookups): no BEGIN/COMMIT round
        # trips. One statement sees one consistent snapshot on both databases.
        if self.is_sqlite:
            self._single_engine = self.read_engine.execution_options(flowdeck_single_statement=True)
        else:
            self._single_engine = self.read_engine.execution_options(isolation_level="AUTOCOMMIT")
        self._read_sessions = sessionmaker(self.read_engine, expire_on_commit=False)
        self._write_sessions = sessionmaker(self.write_engine, expire_on_commit=False)
        # SQLite has one writer at a time; queue in-process writers here instead
        # of spinning on the busy timeout.
        self._write_lock = threading.Lock() if self.is_sqlite else contextlib.nullcontext()
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="flowdeck-db")

    @property
    def dialect(self) -> str:
        return self.write_engine.dialect.name

    @contextlib.contextmanager
    def read(self) -> Iterator[Session]:
        with self._read_sessions() as session, session.begin():
            yield session

    @contextlib.contextmanager
    def read_statement(self) -> Iterator[Connection]:
        """A Core connection for work that runs exactly ONE read statement (so it
        needs no transaction of its own: a statement is atomic on its own)."""
        with self._single_engine.connect() as conn:
            yield conn

    @contextlib.contextmanager
    def write(self) -> Iterator[Session]:
        with self._write_lock:
            with self._write_sessions() as session, session.begin():
                yield session

    async def run(self, fn: Callable[..., T], *args) -> T:
        """Run blocking database work on the pool, off the event loop."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, fn, *args)

    async def run_read(self, fn: Callable[[Session], T]) -> T:
        def work():
            with self.read() as s:
                return fn(s)

        return await self.run(work)

    async def run_read_statement(self, fn: Callable[[Connection], T]) -> T:
        def work():
            with self.read_statement() as conn:
                return fn(conn)

        return await self.run(work)

    async def run_write(self, fn: Callable[[Session], T]) -> T:
        def work():
            with self.write() as s:
                return fn(s)

        return await self.run(work)

    def probe(self) -> None:
        """Connect once: a database that cannot be used raises one FlowdeckError saying why."""
        from sqlalchemy.exc import DBAPIError

        try:
            with self.write_engine.connect() as conn:
                conn.exec_driver_sql("SELECT 1")
        except DBAPIError as e:
            raise start_errors.database_error(self.url, e) from None

    def migrate(self) -> None:
        """Bring the schema to the newest revision (idempotent)."""
        from alembic import command

        self.probe()
        command.upgrade(alembic_config(self), "head")

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        self.read_engine.dispose()
        if self.write_engine is not self.read_engine:
            self.write_engine.dispose()


def alembic_config(db: Database):
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["engine"] = db.write_engine
    return cfg
