"""One poller of alert changes for every open stream, so that a thousand dashboards cost one
query a second and hold no pooled connection while they wait.

Each open stream is a :class:`Subscription` with a bounded queue; the poller hands every
change to every queue, and each stream keeps what its principal may see. A stream that
falls far behind (a stalled client) is ended rather than allowed to grow without bound: the
browser reconnects with ``Last-Event-ID`` and catches up from the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from typing import Any

from fastapi.concurrency import run_in_threadpool
from psycopg_pool import ConnectionPool

from alerts.queries import changes_since, latest_change

log = logging.getLogger(__name__)

POLL_S = 1.0
QUEUE_BATCHES = 256
"""Polls' worth of changes a stream may lag before it is ended."""


PAGE = 500
"""Changes read at a time."""
MAX_STREAMS = 2000
"""Open streams the API serves in all, past the limit per principal."""


class TooManyStreams(Exception):
    pass


class Subscription:
    def __init__(self, holder: str) -> None:
        self.holder = holder
        self.after = 0
        """The last change this stream has passed."""
        self.live_from = 0
        """The live feed hands it every change after this one; those up to it are read
        from the database (a resumed stream)."""
        self.queue: asyncio.Queue[list[dict[str, Any]]] = asyncio.Queue(QUEUE_BATCHES)
        self.overflowed = False

    def offer(self, changes: list[dict[str, Any]]) -> None:
        try:
            self.queue.put_nowait(changes)
        except asyncio.QueueFull:
            self.overflowed = True


class AlertFeed:
    def __init__(self, pool: ConnectionPool, per_principal: int) -> None:
        self.pool = pool
        self.per_principal = per_principal
        self._subscriptions: set[Subscription] = set()
        self._held: Counter[str] = Counter()
        self._last = 0
        self._task: asyncio.Task[None] | None = None
        self.page = PAGE

    async def subscribe(self, holder: str, resume: int | None) -> Subscription:
        """A new stream for ``holder``, from change ``resume`` (else from now)."""
        if self._held[holder] >= self.per_principal:
            raise TooManyStreams(
                f"{holder} already holds {self.per_principal} alert streams; close one first"
            )
        if len(self._subscriptions) >= MAX_STREAMS:
            raise TooManyStreams(f"the API already serves {MAX_STREAMS} alert streams")
        subscription = Subscription(holder)
        self._held[holder] += 1  # counted before the await below: no two may overshoot
        self._subscriptions.add(subscription)
        try:
            if self._task is None or self._task.done():  # idle until now: from the present
                self._last = await run_in_threadpool(self._latest)
                self._task = asyncio.create_task(self._poll())
        except BaseException:
            self.unsubscribe(subscription)
            raise
        subscription.live_from = self._last
        subscription.after = self._last if resume is None else min(resume, self._last)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        if subscription in self._subscriptions:
            self._subscriptions.discard(subscription)
            self._held[subscription.holder] -= 1

    def catch_up(self, after: int, patients: list[str] | None) -> list[dict[str, Any]]:
        """Changes since ``after`` straight from the database, a page at most."""
        with self.pool.connection() as conn:
            return changes_since(conn, after, patients, self.page)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def _latest(self) -> int:
        with self.pool.connection() as conn:
            return latest_change(conn)

    async def _poll(self) -> None:
        while self._subscriptions:
            try:
                changes = await run_in_threadpool(self.catch_up, self._last, None)
            except Exception as exc:  # the database is away: streams wait, the poll goes on
                log.warning("alert feed poll failed (%s)", type(exc).__name__)
                changes = []
            if changes:
                self._last = int(changes[-1]["id"])
                for subscription in list(self._subscriptions):
                    subscription.offer(changes)
            await asyncio.sleep(POLL_S)
