"""The embedded default: with no FLOWDECK_API_URL, the client starts an
in-process server on SQLite under $FLOWDECK_HOME.

This is the one place the client layer reaches into the server (the
import-linter contracts in pyproject.toml allow exactly these imports).
"""
from __future__ import annotations

import atexit
import threading

_embedded_lock = threading.Lock()
_embedded = None


def embedded_address() -> str:
    """Start (once per process) an in-process server on SQLite under $FLOWDECK_HOME,
    bound to loopback on a free port, and return its address."""
    global _embedded
    with _embedded_lock:
        if _embedded is None:
            from flowdeck.server.app import ThreadedServer
            from flowdeck.server.settings import Settings

            settings = Settings.from_env(host="127.0.0.1", port=0, database_url="", db_threads=4,
                                         tls_cert="", tls_key="", tls_client_ca="")
            # Scheduling and lease loops belong to a real server; the embedded one
            # only tracks what this process does.
            server = ThreadedServer(settings, background=False)
            address = server.start()
            atexit.register(server.stop)
            _embedded = (server, address)
        return _embedded[1]
