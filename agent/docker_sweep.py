"""Orphan containers: flow run containers no live agent looks after.

An agent killed with -9 leaves its containers running (unlike a subprocess,
a container does not die with its parent). Every agent that can reach a
Docker engine looks, when it starts and then every `interval` seconds, at the
containers labelled with a flow run of its own server (`flowdeck.agent.
docker_runner` LABEL_*: the same API address) that it does not hold itself. A container whose run is no longer held
under the container's fencing token (the run ended, was deleted, or its lease
expired or moved on) is an orphan once two looks at least `interval` apart
agree: an agent that is just removing its own finished container is not raced.
Orphans are stopped (SIGTERM, SIGKILL after `stop_grace`) and removed, except
exited ones whose runner said auto_remove=False (kept for inspection).
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Callable

from flowdeck.agent import docker_runner
from flowdeck.agent.lease_watch import lease_gone

log = logging.getLogger("flowdeck.agent")


class OrphanSweep:
    def __init__(self, client, api_url: str, held: Callable[[], set[tuple[str, int]]], *, interval: float,
                 stop_grace: float):
        self.client = client
        self.labels = [docker_runner.LABEL_RUN, f"{docker_runner.LABEL_API}={api_url}"]
        self.held = held
        self.interval = interval
        self.stop_grace = stop_grace
        self.suspects: dict[str, float] = {}
        self.wake = threading.Event()
        self._unavailable_said = False

    def start(self, finished: threading.Event) -> threading.Thread:
        def loop() -> None:
            while not finished.is_set():
                self.sweep()
                self.wake.wait(self.interval)
                self.wake.clear()

        thread = threading.Thread(target=loop, name="docker-sweep", daemon=True)
        thread.start()
        return thread

    def sweep(self) -> list[str]:
        """One look; returns the names of the containers it removed."""
        try:
            engine = docker_runner.engine()
            containers = engine.containers.list(all=True, filters={"label": self.labels})
        except Exception as e:  # noqa: BLE001 - no engine here: nothing to sweep
            if not self._unavailable_said:
                log.debug("orphan container sweep: %s", e)
                self._unavailable_said = True
            return []
        held = self.held()
        now = time.monotonic()
        seen, removed = set(), []
        for container in containers:
            why = self._orphaned(container, held)
            if why is None:
                continue
            seen.add(container.id)
            first = self.suspects.setdefault(container.id, now)
            if now - first >= self.interval * 0.9 and self._reap(container, why):
                removed.append(container.name)
        self.suspects = {cid: t for cid, t in self.suspects.items() if cid in seen and cid not in removed}
        return removed

    def _orphaned(self, container, held: set[tuple[str, int]]) -> str | None:
        from flowdeck.exceptions import FlowdeckError, NotFoundError

        labels = container.labels or {}
        run_id = labels.get(docker_runner.LABEL_RUN, "")
        try:
            token = int(labels.get(docker_runner.LABEL_TOKEN, "0"))
        except ValueError:
            token = 0
        if (run_id, token) in held:
            return None
        if container.status == "exited" and labels.get(docker_runner.LABEL_AUTO_REMOVE) == "false":
            return None
        try:
            run = self.client.get_flow_run(run_id)
        except NotFoundError:
            run = None
        except FlowdeckError:
            return None  # the server cannot say: leave it for the next look
        return lease_gone(run, token)

    def _reap(self, container, why: str) -> bool:
        try:
            if container.status in ("running", "restarting", "paused"):
                container.stop(timeout=max(0, int(round(self.stop_grace))))
            container.remove(force=True)
        except Exception as e:  # noqa: BLE001
            if "No such container" in str(e):
                return True
            log.warning("could not remove orphan container %s: %s", container.name, e)
            return False
        log.info("removed orphan container %s of flow run %s: %s", container.name,
                 (container.labels or {}).get(docker_runner.LABEL_RUN, "?"), why)
        return True
