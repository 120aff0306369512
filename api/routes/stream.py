"""``/alerts/stream``: every alert change the caller may see, as it happens, as server-sent
events.

For dashboards: ``event: alert``, the change id as the event id, so a reconnecting browser
resumes from ``Last-Event-ID``. The subscription is audited by the edge like any request;
then every delivery is audited with the patients it names. Before a delivery the token and
the policy are asked again (and at least every :data:`RECHECK_S` anyway, so a patient let
in shows up), so a revoked token or a withdrawn consent ends what a stream shows at once.
Waiting streams hold no connection (:mod:`api.stream_feed`).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterable
from typing import Annotated, Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse

from api.access import audit
from api.access.audit import AuditRecord
from api.access.policy import Compartment, Forbidden, Need, decide
from api.deps import Access, identify, require_streaming
from api.edge import Receive, Scope, Send
from api.fhir.outcome import FhirError
from api.fhir.search.values import SearchError, patient_reference
from api.stream_feed import AlertFeed, Subscription, TooManyStreams

router = APIRouter()
KEEP_ALIVE_S = 15.0
"""A comment line after this long without a write keeps proxies from closing the stream."""
RECHECK_S = 30.0
_NEED = Need("Flag", "subscribe")
_LARGEST_ID = 2**63 - 1


@router.get("/alerts/stream")
async def stream_alerts(
    request: Request,
    access: Annotated[Access, require_streaming("Flag", "subscribe")],
    patient: str | None = None,
) -> StreamingResponse:
    try:
        only = patient_reference("patient", patient) if patient else None
    except SearchError as exc:
        raise FhirError(400, "invalid", str(exc)) from None
    access.touch([only])
    feed: AlertFeed = request.app.state.feed
    try:
        subscription = await feed.subscribe(access.who.name, _resume(request))
    except TooManyStreams as exc:
        raise FhirError(429, "throttled", str(exc)) from None
    return EventStream(feed, subscription, _events(request, access, subscription, only))


class EventStream(StreamingResponse):
    """Gives its subscription back however the stream ends, even when the client is gone
    before the first event (then the generator never starts, and its ``finally`` with it)."""

    def __init__(
        self, feed: AlertFeed, subscription: Subscription, events: AsyncIterator[str]
    ) -> None:
        super().__init__(events, media_type="text/event-stream")
        self.feed = feed
        self.subscription = subscription

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.feed.unsubscribe(self.subscription)


def _resume(request: Request) -> int | None:
    resume = request.headers.get("last-event-id", "")
    if resume.isascii() and resume.isdigit() and len(resume) <= 19:
        return min(int(resume), _LARGEST_ID)
    return None


async def _events(
    request: Request, access: Access, subscription: Subscription, only: str | None
) -> AsyncIterator[str]:
    compartment = access.compartment
    checked = time.monotonic()
    written = time.monotonic()
    try:
        backlog = await run_in_threadpool(_backlog, request, subscription, only, compartment)
        while not subscription.overflowed:
            changes = backlog or await _next(subscription)
            backlog = []
            fresh = [c for c in changes if int(c["id"]) > subscription.after]
            if fresh:
                subscription.after = int(fresh[-1]["id"])
            if fresh and (
                any(compartment.holds(c["patient"]) for c in fresh)
                or time.monotonic() > checked + RECHECK_S
            ):
                compartment = await run_in_threadpool(_recheck, request)
                checked = time.monotonic()
            shown = [
                c for c in fresh if compartment.holds(c["patient"]) and only in (None, c["patient"])
            ]
            if shown:
                await run_in_threadpool(
                    audit_delivery, request, access, [c["patient"] for c in shown]
                )
                for change in shown:
                    yield f"id: {change['id']}\nevent: alert\ndata: {json.dumps(change)}\n\n"
                written = time.monotonic()
            elif time.monotonic() > written + KEEP_ALIVE_S:
                yield ": still here\n\n"
                written = time.monotonic()
    except (FhirError, Forbidden):
        return  # the token was revoked or its scopes changed: the stream ends


async def _next(subscription: Subscription) -> list[dict[str, Any]]:
    try:
        return await asyncio.wait_for(subscription.queue.get(), KEEP_ALIVE_S)
    except TimeoutError:
        return []


def _backlog(
    request: Request, subscription: Subscription, only: str | None, compartment: Compartment
) -> list[dict[str, Any]]:
    """What a resumed stream missed, all of it, up to where the live feed took over."""
    feed: AlertFeed = request.app.state.feed
    patients = [only] if only else compartment.limit()
    missed: list[dict[str, Any]] = []
    after = subscription.after
    while after < subscription.live_from:
        page = feed.catch_up(after, patients)
        missed += page
        if len(page) < feed.page:
            break
        after = int(page[-1]["id"])
    return missed


def _recheck(request: Request) -> Compartment:
    """The stream's compartment now (a revoked token raises)."""
    with request.app.state.pool.connection() as conn:
        return decide(conn, identify(request, conn), _NEED)


def audit_delivery(request: Request, access: Access, patients: Iterable[str]) -> None:
    """A delivery on a stream, audited with the patients it names (the subscription itself
    was audited by the edge)."""
    record = AuditRecord(
        resource=request.url.path,
        query=request.url.query,
        action="deliver",
        actor=access.who.name,
        kind=str(access.who.kind),
    )
    record.touch(patients)
    with request.app.state.pool.connection() as conn:
        audit.write(conn, record, 200)
