"""The central station's routes: ``GET /station``, the tiles of the caller's compartment
(:mod:`api.station`) in one answer, most in need of attention first, and ``GET
/station/stream``, the tiles that changed, as server-sent events.

One stream instead of ``/alerts/stream`` beside a tile stream: a browser allows six
connections to a server, a clinician opens patients in other tabs, and an alert change
must reorder the tiles, which needs the tile, not the change. The stream follows the one
alert feed (:mod:`api.stream_feed`, polled every second) and rebuilds the tiles of the
patients an alert change names at once; every :data:`TICK_S` it rebuilds every tile, with
the sparkline's last minutes only, and sends those that changed. Before each rebuild the
token and the policy are asked again, so a revoked token or a withdrawn consent ends
what the stream shows within a tick.

Deliveries are audited as ``deliver`` rows naming the patients sent, one a minute at most
(:data:`AUDIT_EVERY_S`), and at once for a patient the last row did not name: a row per
tick would be 43,000 a day per open station saying the same.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import time
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, StreamingResponse

from api.access.policy import Forbidden, Need, decide
from api.deps import Access, Connection, identify, require, require_streaming
from api.fhir.outcome import FhirError
from api.routes import stream
from api.station import TAIL, WINDOW, build_tiles, frame, patients_of, withheld_from
from api.stream_feed import AlertFeed, Subscription, TooManyStreams

router = APIRouter()
TICK_S = 2.0
"""How often the stream rebuilds every tile: new readings reach the screen this late at most
(alert changes do not wait for it)."""
AUDIT_EVERY_S = 60.0
"""How long a ``deliver`` audit row covers the deliveries of the patients it names."""
_NEED = Need("Observation", "search")


@router.get("/station")
def get_station(
    access: Annotated[Access, require("Observation", "search")], conn: Connection
) -> JSONResponse:
    now = datetime.now(UTC)
    patients = patients_of(conn, access.compartment)
    withheld = withheld_from(access.who)
    tiles = build_tiles(conn, patients, now, now - WINDOW, withheld)
    access.touch(patients)
    # Plain JSON already: FastAPI's encoding of a returned dict would cost a 200-tile answer
    # more than building it.
    return JSONResponse({**frame(now, withheld), "tiles": sorted(tiles, key=lambda t: t["order"])})


@router.get("/station/stream")
async def stream_station(
    request: Request, access: Annotated[Access, require_streaming("Observation", "search")]
) -> StreamingResponse:
    feed: AlertFeed = request.app.state.feed
    try:
        subscription = await feed.subscribe(access.who.name, None)
    except TooManyStreams as exc:
        raise FhirError(429, "throttled", str(exc)) from None
    return stream.EventStream(feed, subscription, _events(request, access, subscription))


async def _events(
    request: Request, access: Access, subscription: Subscription
) -> AsyncIterator[str]:
    sent: dict[str, bytes] = {}
    """patient -> a digest of what the page holds of the tile"""
    audited = _Audited()
    written = due = time.monotonic()
    try:
        while not subscription.overflowed:
            named = await _alert_changes(subscription, due - time.monotonic()) & sent.keys()
            full = time.monotonic() >= due
            if full:
                due = time.monotonic() + TICK_S
            delivery = None
            if full or named:
                look = await run_in_threadpool(_look, request, sent.keys(), None if full else named)
                delivery = _changes(look, sent, full)
            if delivery is not None:
                naming = audited.naming({t["patient"] for t in delivery["tiles"]})
                if naming:
                    await run_in_threadpool(stream.audit_delivery, request, access, naming)
                yield f"event: tiles\ndata: {json.dumps(delivery)}\n\n"
                written = time.monotonic()
            elif time.monotonic() > written + stream.KEEP_ALIVE_S:
                yield ": still here\n\n"
                written = time.monotonic()
    except (FhirError, Forbidden):
        return  # the token was revoked or its scopes changed: the stream ends


def _changes(look: _Look, sent: dict[str, bytes], full: bool) -> dict[str, Any] | None:
    """What to send of ``look``: the tiles that differ from what was sent (``sent`` is
    brought up to date) and, after a full look, the patients no longer in the compartment;
    None: nothing."""
    gone = sorted(sent.keys() - set(look.patients)) if full else []
    for patient in gone:
        del sent[patient]
    changed = []
    for tile in look.tiles:
        digest = _digest(tile, look.tail_from)
        if sent.get(tile["patient"]) != digest:
            sent[tile["patient"]] = digest
            changed.append(tile)
    if not (changed or gone):
        return None
    return {**frame(look.now, look.withheld), "tiles": changed, "gone": gone}


async def _alert_changes(subscription: Subscription, wait_s: float) -> set[str]:
    """The patients of the alert changes the feed hands over within ``wait_s``."""
    batches = []
    if wait_s > 0:
        with contextlib.suppress(TimeoutError):
            batches.append(await asyncio.wait_for(subscription.queue.get(), wait_s))
    while not subscription.queue.empty():
        batches.append(subscription.queue.get_nowait())
    return {str(change["patient"]) for batch in batches for change in batch}


@dataclass(frozen=True, slots=True)
class _Look:
    patients: list[str]
    """The compartment now."""
    tiles: list[dict[str, Any]]
    now: datetime
    tail_from: float
    withheld: list[str]


def _look(request: Request, known: Iterable[str], only: set[str] | None) -> _Look:
    """The tiles as they are now, of the patients ``only`` names (None: all): in full for
    a patient the page does not hold yet, else with the sparkline's last minutes. The
    token and the policy are asked first (a revoked token raises)."""
    with request.app.state.pool.connection() as conn:
        who = identify(request, conn)
        patients = patients_of(conn, decide(conn, who, _NEED))
        withheld = withheld_from(who)
        wanted = [p for p in patients if only is None or p in only]
        held = set(known)
        now = datetime.now(UTC)
        tail = (now - TAIL).replace(second=0, microsecond=0)
        new = [p for p in wanted if p not in held]
        tiles = build_tiles(conn, new, now, now - WINDOW, withheld)
        tiles += build_tiles(conn, [p for p in wanted if p in held], now, tail, withheld)
    return _Look(patients, tiles, now, tail.timestamp(), withheld)


def _digest(tile: dict[str, Any], tail_from: float) -> bytes:
    """What a tile shows, its sparkline's last minutes only (the rest does not change)."""
    shown = {**tile, "spark": [p for p in tile["spark"] if p[0] >= tail_from]}
    return hashlib.blake2b(json.dumps(shown, sort_keys=True).encode(), digest_size=16).digest()


class _Audited:
    """Which patients the stream's last audit rows name, and since when: a delivery is
    covered by a row written less than :data:`AUDIT_EVERY_S` before that names its
    patients."""

    def __init__(self) -> None:
        self.covered: set[str] = set()
        self.since = 0.0

    def naming(self, delivered: set[str]) -> set[str]:
        """The patients a row must name before ``delivered`` goes out (empty: none)."""
        if time.monotonic() - self.since > AUDIT_EVERY_S:
            self.covered, self.since = set(delivered), time.monotonic()
            return set(delivered)
        fresh = delivered - self.covered
        self.covered |= fresh
        return fresh
