"""The batches between the outbox and the platform: with the broker until its PUBACK, then
kept until ingest's commitment covers them (:mod:`vigil.wire.commitment`), and sent again
when they seem lost.

A broker that crashes loses what it acknowledged and had not yet saved, so a batch leaves
the outbox only once ingest says it is committed. At most ``max_inflight_batches`` await a
PUBACK at a time. A batch the broker took and ingest did not confirm is sent again: soon
(:data:`HOLE_AFTER_S`) when ingest has committed a later one, since it went missing on the
way; else, when nothing at all was confirmed for ``gateway_confirm_timeout_s``, the oldest
window of them, once per timeout, which costs a few duplicates while ingest is away and
finds a batch lost at the tail. Duplicates are recognized by ingest and stored once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from gateway.counters import Counters
from gateway.outbox import Outbox
from gateway.publisher import Publisher
from vigil.settings import Settings
from vigil.wire.commitment import Commitment
from vigil.wire.errors import WireError

log = logging.getLogger(__name__)

HOLE_AFTER_S = 10.0
"""A batch below ingest's latest commit and not confirmed is sent again this long after it
was last sent: long enough for one merely committed out of order to be confirmed."""


class Delivery:
    def __init__(
        self,
        outbox: Outbox,
        settings: Settings,
        topic: str,
        counters: Counters,
        attempt: Callable[..., Any],
    ) -> None:
        """``attempt(write, *args)`` runs an outbox write, or returns None when the disk
        refuses it (:class:`gateway.disk.Disk`)."""
        self.outbox = outbox
        self.settings = settings
        self.topic = topic
        self.counters = counters
        self.attempt = attempt
        self.publisher: Publisher | None = None
        self.confirms = settings.gateway_release_on == "commit"
        self.life = outbox.life()
        self.inflight: dict[int, tuple[int, int]] = {}  # mid -> (seq, readings)
        self.handed_up_to = -1  # highest seq given to the publisher this run
        self.sent_at: dict[int, float] = {}  # seq -> when the broker took it, unconfirmed
        self.through = -1  # confirmed by ingest up to here
        self.released = -1  # and released from the outbox up to here
        self.latest = -1  # ingest's highest commit
        self.progress_at = time.monotonic()

    def room(self) -> int:
        return self.settings.max_inflight_batches - len(self.inflight)

    def with_broker(self) -> set[int]:
        """The ``seq`` of the batches awaiting a PUBACK."""
        return {seq for seq, _ in self.inflight.values()}

    def unsent(self) -> bool:
        """Whether a sealed batch was not yet taken by the broker."""
        return bool(self.inflight or self.outbox.pending(after_seq=self.handed_up_to, limit=1))

    def on_ack(self, mid: int) -> bool:
        """A PUBACK; False when it is not for a batch (a status message)."""
        if mid not in self.inflight:
            return False
        seq, readings = self.inflight.pop(mid)
        self.counters.published += readings
        self.counters.batches_published += 1
        if not self.confirms:
            self.counters.confirmed += self.attempt(self.outbox.release, seq) or 0
        elif seq > self.through:
            self.sent_at[seq] = time.monotonic()
        return True

    def on_commitment(self, payload: bytes) -> None:
        try:
            commitment = Commitment.decode(payload)
        except WireError as exc:
            log.warning("ignoring a commitment that is not one (%s)", exc)
            return
        if commitment.gateway != self.outbox.gateway or commitment.life != self.life:
            log.info("ignoring a commitment for another life of this gateway's outbox")
            return
        if commitment.through > self.through:
            self.through = commitment.through
            self.progress_at = time.monotonic()
        self.latest = max(self.latest, commitment.latest)
        self.release_confirmed()

    def release_confirmed(self) -> None:
        """Forget what is confirmed; again at every tick after a full disk refused it."""
        if self.through <= self.released or not self.confirms:
            return
        released = self.attempt(self.outbox.release_through, self.through)
        if released is not None:
            self.counters.confirmed += released
            self.released = self.through
            self.sent_at = {s: t for s, t in self.sent_at.items() if s > self.through}

    def forget(self, dropped: dict[int, int]) -> None:
        """Batches the full outbox dropped are no longer waited for."""
        self.sent_at = {s: t for s, t in self.sent_at.items() if s not in dropped}

    def publish_pending(self) -> None:
        if self.publisher is None or self.room() <= 0:
            return
        for batch in self.outbox.pending(after_seq=self.handed_up_to, limit=self.room()):
            self._publish(batch.seq, batch.readings, batch.payload)
            self.handed_up_to = batch.seq

    def send_unconfirmed_again(self) -> None:
        room = self.room()
        if self.publisher is None or room <= 0 or not self.sent_at:
            return
        now = time.monotonic()
        waiting = sorted(self.sent_at)
        due = [s for s in waiting if s < self.latest and now - self.sent_at[s] >= HOLE_AFTER_S]
        timeout = self.settings.gateway_confirm_timeout_s
        quiet = now - self.progress_at >= timeout
        if not due and quiet and now - self.sent_at[waiting[0]] >= timeout:
            due = waiting
            self.progress_at = now  # the next probe after another timeout
        for batch in self.outbox.batches(due[:room]):
            self._publish(batch.seq, batch.readings, batch.payload)
            del self.sent_at[batch.seq]
            self.counters.resent_batches += 1
        if due:
            log.info("sending %d unconfirmed batches again", min(len(due), room))

    def _publish(self, seq: int, readings: int, payload: bytes) -> None:
        assert self.publisher is not None
        mid = self.publisher.publish(self.topic, payload)
        self.inflight[mid] = (seq, readings)
