"""The subscriptions worker: a thread of ``vigil api`` that finds events and delivers the
rest-hooks, about once a second, on a connection of its own.

It runs inside the API, not as a service of its own, because everything it does is the
API's: the policy that re-checks each delivery, the audit trail, the FHIR rendering, and the
websockets, which only the process holding them can write to. ``vigil demo`` runs the API,
so it runs this too. Several API processes may run it: the finder and the deliveries each
take an advisory lock, so one process at a time finds and one delivers.
"""

from __future__ import annotations

import logging
import threading
import time

import psycopg

from api.subscriptions import store
from api.subscriptions.delivery import RestHooks
from api.subscriptions.finder import Finder

log = logging.getLogger(__name__)

POLL_S = 1.0
RECONNECT_S = 5.0
PRUNE_EVERY_S = 3600.0


class Worker:
    def __init__(
        self,
        database_url: str,
        base: str,
        retention_days: int,
        local_hooks: bool = False,
        poll_s: float = POLL_S,
    ) -> None:
        """``base``: the FHIR base URL that notifications' references start with;
        ``retention_days``: how long events are kept for ``$events`` (0: always);
        ``local_hooks``: rest-hooks may call this machine and private networks."""
        self.database_url = database_url
        self.base = base
        self.retention_days = retention_days
        self.local_hooks = local_hooks
        self.poll_s = poll_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="subscriptions", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                with psycopg.connect(self.database_url, autocommit=True) as conn:
                    self._loop(conn)
            except psycopg.Error as exc:  # the database is away: try again shortly
                log.warning("subscriptions worker: %s; reconnecting", type(exc).__name__)
                self._stop.wait(RECONNECT_S)
            except Exception:  # a bug must not end deliveries for the API's lifetime
                log.exception("subscriptions worker failed; starting again")
                self._stop.wait(RECONNECT_S)

    def _loop(self, conn: psycopg.Connection) -> None:
        finder = Finder(conn)
        hooks = RestHooks(conn, self.base, local_hooks=self.local_hooks)
        pruned = 0.0
        while not self._stop.is_set():
            if time.monotonic() - pruned > PRUNE_EVERY_S:
                store.prune_events(conn, self.retention_days)
                pruned = time.monotonic()
            busy = finder.run_once() + hooks.run_once()
            if not busy:
                self._stop.wait(self.poll_s)
