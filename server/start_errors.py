"""Why a server cannot start, in one line: its address, its database URL, its database.

gRPC reports a failed bind only in its C-core log (off unless GRPC_VERBOSITY
asks for it), and SQLAlchemy and the drivers wrap a refused connection in
several layers; the user gets one sentence naming the cause instead.
These errors are raised while the server starts and are never sent.
"""
from __future__ import annotations

import errno
import os
import re
import socket

from flowdeck.core.errors import DataLossError, FlowdeckError, InvalidArgumentError, UnavailableError

SCHEMES = ("sqlite", "postgresql")
# The drivers flowdeck ships with (empty: the dialect's default, which is this one).
DRIVERS = {"sqlite": ("", "pysqlite"), "postgresql": ("", "psycopg")}
URL_EXAMPLE = "e.g. postgresql://user@127.0.0.1:5432/flowdeck or sqlite:////path/to/flowdeck.db"


# -- the address ----------------------------------------------------------------------------

def bind_error(host: str, port: int) -> FlowdeckError:
    """The cause gRPC found binding host:port, found again with a plain socket."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as e:
        return UnavailableError(f"cannot bind {host}:{port}: cannot resolve {host!r} ({e.strerror})",
                                reason="BIND_FAILED")
    for family, kind, proto, _name, addr in infos:
        with socket.socket(family, kind, proto) as s:
            # As gRPC does: a port left in TIME_WAIT is free to bind.
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(addr)
            except OSError as e:
                return UnavailableError(_bind_cause(host, port, e), reason="BIND_FAILED")
    return UnavailableError(f"cannot bind {host}:{port} (run with GRPC_VERBOSITY=debug to see gRPC's reason)",
                            reason="BIND_FAILED")


def _bind_cause(host: str, port: int, e: OSError) -> str:
    if e.errno == errno.EADDRINUSE:
        return f"port {port} is already in use on {host}: stop what listens there or choose another --port"
    if e.errno == errno.EADDRNOTAVAIL:
        return f"cannot bind {host}:{port}: {host} is not an address of this machine"
    if e.errno == errno.EACCES:
        return f"cannot bind {host}:{port}: permission denied (ports below 1024 need privileges)"
    return f"cannot bind {host}:{port}: {e.strerror or e}"


# -- the database URL -----------------------------------------------------------------------

def check_database_url(url: str) -> None:
    """A URL flowdeck can use (after `make_url_sync`), else InvalidArgumentError naming it."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        raise _bad_url(url, f"not a database URL ({URL_EXAMPLE})") from None
    backend, driver = parsed.get_backend_name(), parsed.get_driver_name()
    if backend not in SCHEMES:
        raise _bad_url(url, f"unsupported database {backend!r}: flowdeck runs on SQLite and Postgres ({URL_EXAMPLE})")
    if driver not in DRIVERS[backend]:
        raise _bad_url(url, f"unsupported driver {driver!r}: use {backend}:// ({URL_EXAMPLE})")


def _bad_url(url: str, problem: str) -> InvalidArgumentError:
    return InvalidArgumentError(f"invalid database URL {_hide_password(url)!r}: {problem}", field="database_url",
                                reason="DATABASE_URL_INVALID")


def _hide_password(url: str) -> str:
    return re.sub(r"(://[^:/@]*:)[^@/]*@", r"\1***@", url)


# -- the database ---------------------------------------------------------------------------

def sqlite_folder_error(path: str, e: OSError) -> FlowdeckError:
    folder = os.path.dirname(path)
    return UnavailableError(f"cannot create the folder {folder} for the SQLite database: {e.strerror or e} "
                            "(set FLOWDECK_HOME to a folder you can write)", reason="DATABASE_UNAVAILABLE")


def database_error(url: str, exc: Exception) -> FlowdeckError:
    """One line for a database that refused the first connection (`exc` as raised by SQLAlchemy)."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    text = str(getattr(exc, "orig", None) or exc).strip()
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_error(parsed.database or ":memory:", text)
    where = f"{parsed.host or 'localhost'}:{parsed.port or 5432}"
    missing = re.search(r'database "([^"]+)" does not exist', text)
    if missing:
        cause = f'database "{missing.group(1)}" does not exist on {where}'
    elif "Connection refused" in text:
        cause = f"cannot connect to Postgres at {where}: connection refused (is Postgres running there?)"
    else:
        cause = f"cannot connect to Postgres at {where}: {_driver_cause(text)}"
    return UnavailableError(cause, reason="DATABASE_UNAVAILABLE")


def _sqlite_error(path: str, text: str) -> FlowdeckError:
    if "file is not a database" in text or "malformed" in text:
        return DataLossError(f"{path} is not a usable SQLite database ({text}): move it away, or point "
                             "FLOWDECK_HOME or --database-url elsewhere", reason="DATABASE_CORRUPT")
    folder = os.path.dirname(path) or "."
    hint = f" (the folder {folder} is not writable)" if not os.access(folder, os.W_OK) else ""
    return UnavailableError(f"cannot open the SQLite database {path}: {text}{hint}", reason="DATABASE_UNAVAILABLE")


def _driver_cause(text: str) -> str:
    """The part of a psycopg message that says what went wrong, on one line."""
    line = text.splitlines()[0] if text else "unknown error"
    line = line.rsplit(" failed: ", 1)[-1]
    return re.sub(r"^(FATAL|ERROR):\s+", "", line).strip()
