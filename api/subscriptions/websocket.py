"""The websocket channel: a client gets a binding token (``$get-ws-binding-token``),
connects, sends ``bind-with-token TOKEN`` and is sent a handshake, then every new event of
that subscription as the same notification Bundles a rest-hook gets. One socket may bind
several subscriptions.

Events reach sockets from the database, not from the finder: whichever API process found
them, the one holding the socket sends them. One poll a second serves every socket of the
process. Before each delivery the owner's reach is asked again, as for rest-hooks; an owner
whose access has ended has the subscription turned off and its sockets unbound. A socket
is sent what happens after it bound; ``$events`` gives what came before.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from dataclasses import dataclass, field
from typing import Any

from fastapi import WebSocket, WebSocketDisconnect
from fastapi.concurrency import run_in_threadpool
from psycopg_pool import ConnectionPool

from api.access import audit
from api.access.audit import AuditRecord
from api.fhir.outcome import operation_outcome
from api.subscriptions import store
from api.subscriptions.owners import may_see, reach
from api.subscriptions.resources import Event, Subscription, notification

log = logging.getLogger(__name__)

POLL_S = 1.0
MAX_BINDINGS = 2000
"""Subscriptions bound on one process's sockets in all."""
MAX_PER_SOCKET = 20
_COMMAND = "bind-with-token"


@dataclass(eq=False)
class Binding:
    socket: WebSocket
    subscription: str
    position: int
    """The last event number this socket was sent."""
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    """One send at a time on a socket: the poll and the handshake may both send."""


@dataclass(frozen=True, slots=True)
class _Batch:
    sub: Subscription
    events: list[Event]
    hidden: frozenset[int]


class Sockets:
    def __init__(self, pool: ConnectionPool, base: str) -> None:
        self.pool = pool
        self.base = base
        self._bindings: set[Binding] = set()
        self._task: asyncio.Task[None] | None = None

    async def serve(self, socket: WebSocket) -> None:
        """One client's connection, until it goes."""
        await socket.accept()
        mine: list[Binding] = []
        try:
            while True:
                command, _, token = (await socket.receive_text()).strip().partition(" ")
                if command != _COMMAND or not token:
                    await _say(socket, "invalid", f"send '{_COMMAND} TOKEN'", None)
                elif len(mine) >= MAX_PER_SOCKET or len(self._bindings) >= MAX_BINDINGS:
                    await _say(socket, "throttled", "too many subscriptions bound", None)
                else:
                    binding = await self._bind(socket, token.strip())
                    if binding is not None:
                        mine.append(binding)
        except (WebSocketDisconnect, RuntimeError):
            pass  # the client went (RuntimeError: it went while we were sending)
        finally:
            self._bindings.difference_update(mine)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _bind(self, socket: WebSocket, token: str) -> Binding | None:
        sub = await run_in_threadpool(self._bindable, token)
        if sub is None:
            await _say(socket, "login", "the token is unknown or expired", None)
            return None
        binding = Binding(socket, sub.id, sub.events)
        async with binding.lock:
            self._bindings.add(binding)
            await socket.send_text(json.dumps(notification(sub, self.base, "handshake")))
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._poll())
        return binding

    def _bindable(self, token: str) -> Subscription | None:
        """The live websocket subscription a token binds, its owner still let in."""
        with self.pool.connection() as conn:
            found = store.bound_by(conn, token)
            sub = store.read(conn, found) if found else None
            if sub is None or sub.deleted or sub.status == "off" or reach(conn, sub) is None:
                return None
            record = AuditRecord(
                f"/fhir/Subscription/{sub.id}", None, "bind", sub.owner, sub.owner_kind
            )
            record.touch([sub.patient])
            audit.write(conn, record, 200)
            return sub

    async def _poll(self) -> None:
        while self._bindings:
            try:
                await self._deliver()
            except Exception as exc:  # the database is away: sockets wait, the poll goes on
                log.warning("websocket subscriptions poll failed (%s)", type(exc).__name__)
            await asyncio.sleep(POLL_S)

    async def _deliver(self) -> None:
        after: dict[str, int] = {}
        for binding in list(self._bindings):
            seen = after.get(binding.subscription, binding.position)
            after[binding.subscription] = min(seen, binding.position)
        batches = await run_in_threadpool(self._read, after)
        for binding in list(self._bindings):
            batch = batches.get(binding.subscription)
            if batch is None:
                self._bindings.discard(binding)
                with contextlib.suppress(Exception):
                    await _say(binding.socket, "forbidden", "the subscription has ended", 1008)
                continue
            fresh = [e for e in batch.events if e.number > binding.position]
            if not fresh:
                continue
            body = notification(batch.sub, self.base, "event-notification", fresh, batch.hidden)
            async with binding.lock:
                try:
                    await binding.socket.send_text(json.dumps(body))
                except Exception:
                    self._bindings.discard(binding)  # the client went
                    continue
            binding.position = fresh[-1].number

    def _read(self, after: dict[str, int]) -> dict[str, _Batch]:
        """Per bound subscription still live, the events after ``after`` (a page), audited
        before any is sent; a subscription missing from the answer has ended."""
        batches = {}
        with self.pool.connection() as conn:
            for subscription_id, position in after.items():
                sub = store.read(conn, subscription_id)
                if sub is None or sub.deleted or sub.status == "off":
                    continue
                compartment = reach(conn, sub)
                if compartment is None:
                    store.set_status(conn, sub.id, "off", "the subscriber's access has ended")
                    conn.commit()
                    continue
                events = store.events(conn, sub.id, position, sub.events, sub.max_count)
                hidden = frozenset(
                    e.number for e in events if not may_see(compartment, sub, e.patient)
                )
                if events:
                    record = AuditRecord(
                        f"/fhir/Subscription/{sub.id}", None, "deliver", sub.owner, sub.owner_kind
                    )
                    record.touch(e.patient for e in events if e.number not in hidden)
                    audit.write(conn, record, 200)
                batches[sub.id] = _Batch(sub, events, hidden)
        return batches


async def _say(socket: WebSocket, code: str, diagnostics: str, close: int | None) -> None:
    outcome: dict[str, Any] = operation_outcome(code, diagnostics)
    await socket.send_text(json.dumps(outcome))
    if close is not None:
        await socket.close(close)
