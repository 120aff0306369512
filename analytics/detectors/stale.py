"""A stream that has gone quiet: no reading for ``stale_s``.

A probe in a drawer, a flat battery, a gateway out of range: no reading says nothing to a
rule that waits for readings, so silence is judged by the clock. :meth:`tick` (the service
calls it every second; replay calls it with the data's own time) raises the technical
condition for each stream whose last reading is ``stale_s`` old, and the stream's next
reading clears it. Short gaps are counted per stream (``gaps``: silences longer than
``gap_s``), so a flaky link shows before it becomes an outage.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from analytics.batch import Event, Readings

_NEVER = np.iinfo(np.int64).min // 2


class StaleStreams:
    STATE = ("last_seen", "stale", "gaps")

    def __init__(self, rule: str, stale_s: float = 300.0, gap_s: float = 10.0) -> None:
        self.rule = rule
        self.stale_ms = round(stale_s * 1000)
        self.gap_ms = round(gap_s * 1000)
        self.watched = np.zeros(0, dtype=bool)
        self.last_seen = np.zeros(0, dtype=np.int64)
        self.stale = np.zeros(0, dtype=bool)
        self.gaps = np.zeros(0, dtype=np.int64)

    def configure(self, stream: int) -> None:
        self._grow(stream + 1)
        self.watched[stream] = True

    def _grow(self, streams: int) -> None:
        extra = streams - len(self.watched)
        if extra > 0:
            extra = max(extra, len(self.watched), 1024)
            self.watched = np.r_[self.watched, np.zeros(extra, bool)]
            self.last_seen = np.r_[self.last_seen, np.full(extra, _NEVER)]
            self.stale = np.r_[self.stale, np.zeros(extra, bool)]
            self.gaps = np.r_[self.gaps, np.zeros(extra, np.int64)]

    def state(self) -> dict[str, npt.NDArray[Any]]:
        return {name: getattr(self, name) for name in self.STATE}

    def restore(self, state: dict[str, npt.NDArray[Any]]) -> None:
        streams = len(state["last_seen"])
        self._grow(streams)
        for name in self.STATE:
            getattr(self, name)[:streams] = state[name]

    def score(self, batch: Readings) -> list[Event]:
        """Note the readings' times (any reading counts: a flagged one is not silence);
        a stale stream's first new reading clears its condition."""
        if not len(batch):
            return []
        self._grow(int(batch.stream.max()) + 1)
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
            Event("cleared", self.rule, int(s[i]), int(t[i]), float(batch.value[i]), {})
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
            events.append(Event("started", self.rule, stream, since, float("nan"), evidence))
            events.append(Event("persisted", self.rule, stream, now_ms, float("nan"), evidence))
        return events
