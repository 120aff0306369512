"""``/alerts/stream``: every alert change as it happens, as server-sent events.

For dashboards: ``event: alert``, the change id as the event id, so a reconnecting browser
resumes from ``Last-Event-ID``. The subscription is audited once, with its filter. The
stream is a coroutine that sleeps between polls, and each poll borrows a pooled connection
for its one query: an open dashboard holds neither a worker thread nor a connection, so
any number of them leave the rest of the API its pool.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse
from psycopg_pool import ConnectionPool

from alerts.queries import changes_since, latest_change
from api.audit import Outcome, audit
from api.deps import caller_of

router = APIRouter()
POLL_S = 1.0
KEEP_ALIVE_POLLS = 15
"""A comment line after this many quiet polls keeps proxies from closing an idle stream."""


@router.get("/alerts/stream")
async def stream_alerts(request: Request, patient: str | None = None) -> StreamingResponse:
    pool: ConnectionPool = request.app.state.pool
    resume = request.headers.get("last-event-id", "")

    def subscribe() -> int:
        with pool.connection() as conn:
            who = caller_of(request, conn)
            after = int(resume) if resume.isdigit() else latest_change(conn)
            audit(
                conn,
                who.name,
                "subscribe",
                "/alerts/stream",
                request.url.query,
                Outcome.SUCCESS,
                [patient] if patient else [],
            )
            return after

    def poll(after: int) -> list[dict[str, Any]]:
        with pool.connection() as conn:
            return changes_since(conn, after, patient)

    async def events(after: int) -> AsyncIterator[str]:
        quiet = 0
        while True:
            changes = await run_in_threadpool(poll, after)
            for change in changes:
                after = int(change["id"])
                yield f"id: {after}\nevent: alert\ndata: {json.dumps(change)}\n\n"
            quiet = 0 if changes else quiet + 1
            if quiet and quiet % KEEP_ALIVE_POLLS == 0:
                yield ": still here\n\n"
            await asyncio.sleep(POLL_S)

    after = await run_in_threadpool(subscribe)
    return StreamingResponse(
        events(after), media_type="text/event-stream", headers={"Cache-Control": "no-cache"}
    )
