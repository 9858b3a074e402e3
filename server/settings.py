"""Server settings: one pydantic object read from FLOWDECK_* environment variables."""
from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field, field_validator

from flowdeck.core.settings import flowdeck_home, load_settings

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


class Settings(BaseModel):
    """Every server setting. Each field `x` is read from `FLOWDECK_X` when not given."""

    home: Path = Field(default_factory=flowdeck_home)
    # Empty: SQLite at $FLOWDECK_HOME/flowdeck.db (the embedded default).
    database_url: str = ""
    host: str = "127.0.0.1"
    port: int = 4300
    log_level: str = "INFO"
    # "text" lines, or "json": one JSON object per line (flowdeck.core.logs).
    log_format: str = "text"
    # Threads that run database work; the event loop never blocks on I/O. More
    # threads than cores mostly add GIL contention (4 measured best on 2 cores).
    db_threads: int = Field(default=4, ge=1)
    # Seconds in-flight RPCs get to finish on SIGTERM/SIGINT.
    shutdown_grace: float = Field(default=10.0, ge=0)
    # Scheduler.
    scheduler_enabled: bool = True
    scheduler_loop_seconds: float = 5.0
    scheduler_min_runs: int = 3
    scheduler_max_runs: int = 100
    scheduler_max_days: float = 100.0
    scheduler_grace_seconds: float = 60.0
    late_after_seconds: float = 5.0
    # Agents.
    lease_ttl_seconds: float = 30.0
    # Dispatcher: besides waking on events and due times, look again this often
    # (changes made by other processes without a notification).
    dispatcher_safety_tick_seconds: float = 2.0
    # Postgres: LISTEN/NOTIFY so every replica hears of new runs and cancels.
    pg_notify: bool = True
    # Flow data.
    max_flow_data_bytes: int = 64 * 1024 * 1024
    # Security (see README "Security"). API keys: on with --auth, FLOWDECK_AUTH
    # or FLOWDECK_SERVER_AUTH=true.
    auth: bool = False
    # TLS: certificate chain and private key (PEM files); with a client CA,
    # mutual TLS (clients must present a certificate it signed).
    tls_cert: str = ""
    tls_key: str = ""
    tls_client_ca: str = ""
    # Limits: refused with RESOURCE_EXHAUSTED / INVALID_ARGUMENT, nothing stored.
    max_request_bytes: int = 64 * 1024 * 1024
    max_parameters_bytes: int = 1024 * 1024
    max_tags: int = 100
    max_lease_streams_per_key: int = 1000
    # Server-side work of one call (streams except the lease stream) ends with
    # DEADLINE_EXCEEDED after this long, whatever deadline the client set.
    rpc_deadline_seconds: float = 120.0
    # An open lease stream re-checks its API key at most this often.
    auth_recheck_seconds: float = 5.0
    # How long a request_id's first response is kept for replays (AIP-155).
    request_log_retention_seconds: float = 86400.0
    # The web dashboard (flowdeck.server.dashboard), served by `flowdeck server
    # start` on the API's host: its port (0 picks a free one), or off.
    ui: bool = True
    ui_port: int = 4301
    # Prometheus metrics at /metrics on that HTTP port (kept with --no-ui).
    # Under auth a scrape needs an API key (any scope: read) unless public.
    metrics: bool = True
    metrics_public: bool = False
    # How often the gauges that count runs in the database are refreshed.
    metrics_refresh_seconds: float = 5.0

    @field_validator("port")
    @classmethod
    def _real_port(cls, v: int) -> int:
        # gRPC would bind a port above 65535 modulo 65536, silently elsewhere.
        if not 0 <= v <= 65535:
            raise ValueError("must be 0 to 65535 (0 picks a free port)")
        return v

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, v: str) -> str:
        if v.upper() not in LOG_LEVELS:
            raise ValueError(f"must be one of {', '.join(LOG_LEVELS)}")
        return v.upper()

    @classmethod
    def from_env(cls, **overrides) -> "Settings":
        """FLOWDECK_* variables, then `overrides` (flags; None: not given). A bad
        value raises InvalidArgumentError naming the setting and its source."""
        return load_settings(cls, "FLOWDECK_", overrides, fallbacks={"auth": "FLOWDECK_SERVER_AUTH"})

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.home / 'flowdeck.db'}"
