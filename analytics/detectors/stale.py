"""A stream that has gone quiet: no reading for ``stale_s``.

A probe in a drawer, a flat battery, a gateway out of range: no reading says nothing to a
rule that waits for readings, so silence is judged by the clock. :meth:`tick` (the service
calls it every second; replay calls it with the data's own time) raises the technical
condition for each stream whose last reading is ``stale_s`` old, and the stream's next
reading clears it. Short gaps are counted per stream (``gaps``: silences longer than
``gap_s``), so a flaky link shows before it becomes an outage.
"""

from __future__ import annotations

from typing import Self

import numpy as np

from analytics.batch import Event, Readings
from analytics.detectors.base import Column, Stage
from vigil.wire.events import EventKind

_NEVER = np.iinfo(np.int64).min // 2


class StaleStreams(Stage):
    watched = Column(np.bool_, False, saved=False)
    last_seen = Column(np.int64, _NEVER)
    stale = Column(np.bool_, False)
    gaps = Column(np.int64, 0)

    def __init__(self, rule: str, stale_s: float = 300.0, gap_s: float = 10.0) -> None:
        super().__init__()
        self.rule = rule
        self.stale_ms = round(stale_s * 1000)
        self.gap_ms = round(gap_s * 1000)

    def configure(self, stream: int) -> None:
        self.grow(stream + 1)
        self.watched[stream] = True

    @classmethod
    def for_contract(cls) -> Self:
        clock = cls("contract", stale_s=30, gap_s=5)
        for stream in range(6):
            clock.configure(stream)
        return clock

    def contract_output(self, batch: Readings) -> list[tuple[int, int, str]]:
        """The readings in time order with the clock following them, as replay runs it: a
        tick whenever a stream falls due before the next reading."""
        events = []
        for moment in np.unique(batch.time).tolist():
            while (due := self.next_due()) is not None and due <= moment:
                events += self.tick(due)
            events += self.score(batch.take(batch.time == moment))
        return [(e.stream, e.time, str(e.kind)) for e in events]

    def score(self, batch: Readings) -> list[Event]:
        """Note the readings' times (any reading counts: a flagged one is not silence);
        a stale stream's first new reading clears its condition."""
        if not len(batch):
            return []
        self.grow(int(batch.stream.max()) + 1)
        first, _ = batch.segments
        s, t = batch.stream, batch.time
        before = np.empty_like(t)
        before[1:] = t[:-1]
        before[first] = self.last_seen[s[first]]
        newer = t > before
        # per gap, not a pass over every stream on every batch
        np.add.at(self.gaps, s[newer & (t - before > self.gap_ms) & (before > _NEVER)], 1)
        last = np.r_[np.flatnonzero(first[1:]), len(batch) - 1]
        self.last_seen[s[last]] = np.maximum(self.last_seen[s[last]], t[last])
        back = first & self.stale[s] & newer
        events = [
            Event(EventKind.CLEARED, self.rule, int(s[i]), int(t[i]), float(batch.value[i]), {})
            for i in np.flatnonzero(back).tolist()
        ]
        self.stale[s[back]] = False
        return events

    def next_due(self) -> int | None:
        """The earliest moment a watched stream would go stale without another reading."""
        waiting = self.watched & ~self.stale & (self.last_seen > _NEVER)
        if not waiting.any():
            return None
        return int(self.last_seen[waiting].min()) + self.stale_ms

    def tick(self, now_ms: int) -> list[Event]:
        """Streams silent for ``stale_s`` at ``now_ms``: the condition starts where the
        silence began and is reported now."""
        silent = np.flatnonzero(
            self.watched
            & ~self.stale
            & (self.last_seen > _NEVER)
            & (now_ms - self.last_seen >= self.stale_ms)
        )
        self.stale[silent] = True
        events = []
        for stream in silent.tolist():
            since = int(self.last_seen[stream])
            evidence = {
                "onset": since,
                "stale_s": self.stale_ms / 1000,
                "gaps": int(self.gaps[stream]),
            }
            events.append(
                Event(EventKind.STARTED, self.rule, stream, since, float("nan"), evidence)
            )
            events.append(
                Event(EventKind.PERSISTED, self.rule, stream, now_ms, float("nan"), evidence)
            )
        return events
