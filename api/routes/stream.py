"""``/alerts/stream``: every alert change the caller may see, as it happens, as server-sent
events.

For dashboards: ``event: alert``, the change id as the event id, so a reconnecting browser
resumes from ``Last-Event-ID``. The subscription is audited by the edge like any request;
then every delivery is audited with the patients it names, and before it is sent the token
and the policy are asked again, so a revoked token or a withdrawn consent ends what a
stream shows at once. Waiting streams hold no connection (:mod:`api.stream_feed`).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse

from api.access import audit
from api.access.audit import AuditRecord
from api.access.policy import Compartment, Forbidden, Need, decide
from api.deps import Access, identify, require
from api.fhir.outcome import FhirError
from api.fhir.search import SearchError, patient_reference
from api.stream_feed import AlertFeed, Subscription, TooManyStreams

router = APIRouter()
KEEP_ALIVE_S = 15.0
"""A comment line after this long without events keeps proxies from closing the stream."""
_NEED = Need("Flag", "subscribe")


@router.get("/alerts/stream")
async def stream_alerts(
    request: Request,
    access: Annotated[Access, require("Flag", "subscribe")],
    patient: str | None = None,
) -> StreamingResponse:
    try:
        only = patient_reference("patient", patient) if patient else None
    except SearchError as exc:
        raise FhirError(400, "invalid", str(exc)) from None
    access.touch([only])
    feed: AlertFeed = request.app.state.feed
    resume = request.headers.get("last-event-id", "")
    try:
        subscription = await feed.subscribe(
            access.who.name, int(resume) if resume.isascii() and resume.isdigit() else None
        )
    except TooManyStreams as exc:
        raise FhirError(429, "throttled", str(exc)) from None
    return StreamingResponse(
        _events(request, access, subscription, only), media_type="text/event-stream"
    )


async def _events(
    request: Request, access: Access, subscription: Subscription, only: str | None
) -> AsyncIterator[str]:
    feed: AlertFeed = request.app.state.feed
    try:
        compartment = access.compartment
        backlog = await run_in_threadpool(
            feed.catch_up, subscription.after, [only] if only else compartment.limit()
        )
        while True:
            changes = backlog or await _next(subscription)
            backlog = []
            if subscription.overflowed:
                return
            fresh = [c for c in changes if int(c["id"]) > subscription.after]
            if not fresh:
                yield ": still here\n\n"
                continue
            subscription.after = int(fresh[-1]["id"])
            compartment = await run_in_threadpool(_recheck, request, access)
            shown = [
                c
                for c in fresh
                if compartment.holds(c["patient"]) and (only is None or c["patient"] == only)
            ]
            if not shown:
                continue
            await run_in_threadpool(_audit_delivery, request, access, shown)
            for change in shown:
                yield f"id: {change['id']}\nevent: alert\ndata: {json.dumps(change)}\n\n"
    except (FhirError, Forbidden):
        return  # the token was revoked or its scopes changed: the stream ends
    finally:
        feed.unsubscribe(subscription)


async def _next(subscription: Subscription) -> list[dict[str, Any]]:
    try:
        return await asyncio.wait_for(subscription.queue.get(), KEEP_ALIVE_S)
    except TimeoutError:
        return []


def _recheck(request: Request, access: Access) -> Compartment:
    """The stream's principal and compartment now (a revoked token raises)."""
    with request.app.state.feed.pool.connection() as conn:
        return decide(conn, identify(request, conn), _NEED)


def _audit_delivery(request: Request, access: Access, shown: list[dict[str, Any]]) -> None:
    record = AuditRecord(
        resource=request.url.path,
        query=request.url.query,
        action="deliver",
        actor=access.who.name,
        kind=str(access.who.kind),
    )
    record.touch(c["patient"] for c in shown)
    with request.app.state.feed.pool.connection() as conn:
        audit.write(conn, record, 200)
