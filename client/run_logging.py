"""Logs of flow runs: `get_run_logger()`, batched shipping, print capture.

* `get_run_logger()` returns a logger whose records go to the server, attached
  to the current flow run, and are shown on the console (stderr).
* A `LogShipper` per run sends records in batches from a background thread:
  every `interval` seconds or as soon as `batch_size` records wait, and once
  more, synchronously, when the run ends (`close()`).
* While a flow with `log_prints=True` runs, `sys.stdout`/`sys.stderr` are
  wrapped so that complete lines are also sent to the run's logs (stdout at
  INFO, stderr at WARNING), and still shown as usual.

Environment: FLOWDECK_LOGGING_LEVEL (default INFO) and FLOWDECK_LOGGING_CONSOLE
(set to 0 to keep run loggers off the console).
"""
from __future__ import annotations

import contextvars
import datetime as dt
import logging
import os
import sys
import threading
from typing import Any

from flowdeck import context

RUN_LOGGER_NAME = "flowdeck.flow_run"
STDOUT_LOGGER = "stdout"
STDERR_LOGGER = "stderr"
MAX_MESSAGE = 64 * 1024  # characters per record; longer messages are cut


def _utc(ts: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(ts, tz=dt.timezone.utc)


# -- shipping ---------------------------------------------------------------------


class LogShipper:
    """Sends one run's log records to the server in batches.

    `put()` never blocks on the network. A background thread flushes every
    `interval` seconds or when `batch_size` records are waiting; `close()`
    stops it and sends whatever is left before returning.
    """

    def __init__(self, client, flow_run_id: str, *, interval: float = 0.5, batch_size: int = 100,
                 max_pending: int = 100_000):
        self.client = client
        self.flow_run_id = flow_run_id
        self.interval = interval
        self.batch_size = batch_size
        self.max_pending = max_pending
        self.sent = 0
        self.batches = 0
        self.dropped = 0
        self._pending: list[dict] = []
        self._cond = threading.Condition()
        self._closed = False
        self._warned = False
        # In the context it was made in: its calls belong to the run's trace (flowdeck.core.telemetry).
        self._thread = threading.Thread(target=contextvars.copy_context().run, args=(self._run,),
                                        name=f"flowdeck-logs-{flow_run_id[:8]}", daemon=True)

    def start(self) -> "LogShipper":
        _shippers[self.flow_run_id] = self
        self._thread.start()
        return self

    def put(self, level: int, logger_name: str, message: str, created: float | None = None) -> None:
        if len(message) > MAX_MESSAGE:
            message = message[:MAX_MESSAGE] + " [truncated]"
        record = {
            "flow_run_id": self.flow_run_id,
            "timestamp": _utc(created if created is not None else _now()),
            "level": int(level),
            "logger_name": logger_name,
            "message": message,
        }
        with self._cond:
            if self._closed:
                late = True
            else:
                late = False
                if len(self._pending) >= self.max_pending:
                    self.dropped += 1
                    return
                self._pending.append(record)
                if len(self._pending) >= self.batch_size:
                    self._cond.notify()
        if late:  # a thread the flow started logs after the run ended
            self._send([record])

    def _take(self) -> list[dict]:
        batch, self._pending = self._pending, []
        return batch

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._closed or len(self._pending) >= self.batch_size,
                                    timeout=self.interval)
                batch = self._take()
                closed = self._closed
            self._send(batch)
            if closed:
                return

    def _send(self, records: list[dict]) -> None:
        for i in range(0, len(records), self.batch_size):
            chunk = records[i:i + self.batch_size]
            try:
                self.client.create_logs(chunk)
            except Exception as e:  # noqa: BLE001 - logging must never break a run
                self.dropped += len(chunk)
                if not self._warned:
                    self._warned = True
                    raw_stderr().write(f"flowdeck: could not send {len(chunk)} log records of flow run "
                                       f"{self.flow_run_id}: {e}\n")
            else:
                self.sent += len(chunk)
                self.batches += 1

    def flush(self) -> None:
        """Send what is waiting now (from the calling thread)."""
        with self._cond:
            batch = self._take()
        self._send(batch)

    def close(self, timeout: float = 30.0) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify()
        if self._thread.is_alive():
            self._thread.join(timeout)
        self.flush()
        _shippers.pop(self.flow_run_id, None)


def _now() -> float:
    import time

    return time.time()


# Shippers of the runs active in this process, by flow run id.
_shippers: dict[str, LogShipper] = {}


# -- the run logger ------------------------------------------------------------------


class RunLogHandler(logging.Handler):
    """Hands records of the run loggers to the shipper of their flow run."""

    def __init__(self):
        super().__init__()
        self.setFormatter(logging.Formatter("%(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        run_id = getattr(record, "flow_run_id", None)
        if run_id is None:
            ctx = context.current()
            run_id = ctx.flow_run.id if ctx else None
        shipper = _shippers.get(run_id) if run_id else None
        if shipper is None:
            return
        try:
            message = self.format(record)
        except Exception:  # noqa: BLE001
            self.handleError(record)
            return
        shipper.put(record.levelno, record.name, message, record.created)


class _ConsoleFormatter(logging.Formatter):
    def __init__(self):
        super().__init__("%(asctime)s.%(msecs)03d | %(levelname)-7s | %(run_label)s - %(message)s",
                         datefmt="%H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        if not hasattr(record, "run_label"):
            name = getattr(record, "flow_run_name", None)
            record.run_label = f"Flow run {name!r}" if name else record.name
        return super().format(record)


class _ConsoleHandler(logging.StreamHandler):
    """Writes to the real stderr, never to the capturing wrapper (which would
    send the line to the server a second time)."""

    def __init__(self):
        super().__init__(sys.stderr)
        self.setFormatter(_ConsoleFormatter())

    @property
    def stream(self):  # type: ignore[override]
        return raw_stderr()

    @stream.setter
    def stream(self, value):
        pass


_setup_lock = threading.Lock()
_configured = False


def run_logger_base() -> logging.Logger:
    """The `flowdeck.flow_run` logger, configured on first use."""
    global _configured
    logger = logging.getLogger(RUN_LOGGER_NAME)
    if _configured:
        return logger
    with _setup_lock:
        if not _configured:
            level = os.environ.get("FLOWDECK_LOGGING_LEVEL", "INFO").upper()
            logger.setLevel(getattr(logging, level, logging.INFO))
            logger.propagate = False
            logger.addHandler(RunLogHandler())
            if os.environ.get("FLOWDECK_LOGGING_CONSOLE", "1").lower() not in ("0", "false", "no", "off"):
                logger.addHandler(_ConsoleHandler())
            _configured = True
    return logger


def logger_for(ctx: "context.FlowRunContext") -> logging.LoggerAdapter:
    return logging.LoggerAdapter(
        run_logger_base(),
        {"flow_run_id": ctx.flow_run.id, "flow_run_name": ctx.flow_run.name, "flow_name": ctx.flow.name},
    )


def get_run_logger() -> logging.LoggerAdapter:
    """A logger for the current flow run: records go to the run's logs on the
    server (see `flowdeck flow-run logs`) and to the console. Raises
    `MissingContextError` outside of a flow run."""
    return logger_for(context.get_run_context())


# -- print capture ---------------------------------------------------------------------


class _Capture:
    """Stands in for sys.stdout/sys.stderr while flows run: passes everything
    through and sends complete lines to the current run's logs."""

    def __init__(self, original, stream: str, level: int):
        self._original = original
        self._stream = stream
        self._level = level
        self._lock = threading.Lock()

    @property
    def original(self):
        return self._original

    def write(self, text: str) -> int:
        n = self._original.write(text)
        ctx = context.current()
        if ctx is not None and ctx.log_prints and text:
            shipper = _shippers.get(ctx.flow_run.id)
            if shipper is not None:
                with self._lock:
                    buf = ctx.partial.get(self._stream, "") + text
                    *lines, rest = buf.split("\n")
                    ctx.partial[self._stream] = rest
                for line in lines:
                    line = line.rstrip("\r")
                    if line.strip():
                        shipper.put(self._level, self._stream, line)
        return len(text) if n is None else n

    def writelines(self, lines) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        self._original.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._original, name)


_capture_lock = threading.Lock()
_capture_depth = 0


def raw_stderr():
    err = sys.stderr
    return err.original if isinstance(err, _Capture) else err


def start_capture() -> None:
    """Wrap sys.stdout/sys.stderr (reference counted across nested runs)."""
    global _capture_depth
    with _capture_lock:
        if _capture_depth == 0:
            if not isinstance(sys.stdout, _Capture) and sys.stdout is not None:
                sys.stdout = _Capture(sys.stdout, STDOUT_LOGGER, logging.INFO)
            if not isinstance(sys.stderr, _Capture) and sys.stderr is not None:
                sys.stderr = _Capture(sys.stderr, STDERR_LOGGER, logging.WARNING)
        _capture_depth += 1


def stop_capture() -> None:
    global _capture_depth
    with _capture_lock:
        _capture_depth = max(0, _capture_depth - 1)
        if _capture_depth == 0:
            if isinstance(sys.stdout, _Capture):
                sys.stdout = sys.stdout.original
            if isinstance(sys.stderr, _Capture):
                sys.stderr = sys.stderr.original


def flush_partial(ctx: "context.FlowRunContext") -> None:
    """Send what a run printed without a final newline."""
    shipper = _shippers.get(ctx.flow_run.id)
    for stream, rest in list(ctx.partial.items()):
        if rest.strip() and shipper is not None:
            shipper.put(logging.INFO if stream == STDOUT_LOGGER else logging.WARNING, stream, rest.rstrip("\r"))
    ctx.partial.clear()
