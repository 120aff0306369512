"""Thresholds with a persistence delay and hysteresis, per stream.

A condition starts when a reading crosses an entry threshold (below ``low_on`` or above
``high_on``), becomes an alert candidate once it has held for ``persist_ms`` (the delay that
keeps general-ward monitoring from crying wolf), and clears only when a reading is back
inside the clearing band (``low_off`` .. ``high_off``), so a value hovering at the threshold
does not start and clear it over and over. A reading between the entry and clearing
thresholds changes nothing. NaN values and readings carrying the quality flags the
detector is told to ignore (by default: invalid) say nothing about the condition either;
poor signal is the signal-quality detector's business.

The whole batch is scored in numpy passes: each reading is an 'enter', 'clear' or 'keep'
signal, and a stream's state after each reading is its latest non-'keep' signal, which is a
segmented scan (:func:`analytics.batch.last_index_where`). The state carried between
batches per stream is four numbers: active, onset time, alerted, last time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from analytics.batch import Event, Readings, last_index_where
from vigil.wire.quality import Quality

_NO_TIME = np.iinfo(np.int64).min


@dataclass
class Thresholds:
    """Per-stream configuration; NaN disables a side."""

    low_on: npt.NDArray[np.float64]
    low_off: npt.NDArray[np.float64]
    high_on: npt.NDArray[np.float64]
    high_off: npt.NDArray[np.float64]
    persist_ms: npt.NDArray[np.int64]

    @classmethod
    def empty(cls) -> Thresholds:
        nan = np.zeros(0)
        return cls(nan, nan.copy(), nan.copy(), nan.copy(), np.zeros(0, np.int64))


class ThresholdDetector:
    """One rule (e.g. 'spo2_low') over many streams, each with its own thresholds."""

    def __init__(self, rule: str, ignore_flags: int = int(Quality.INVALID)) -> None:
        self.rule = rule
        self.ignore_flags = ignore_flags
        """Readings carrying any of these quality flags say nothing about the condition."""
        self.config = Thresholds.empty()
        self.active = np.zeros(0, dtype=bool)
        self.onset = np.zeros(0, dtype=np.int64)
        self.alerted = np.zeros(0, dtype=bool)
        self.last_time = np.zeros(0, dtype=np.int64)

    @property
    def streams(self) -> int:
        return len(self.active)

    def configure(
        self,
        stream: int,
        *,
        low_on: float = np.nan,
        low_off: float = np.nan,
        high_on: float = np.nan,
        high_off: float = np.nan,
        persist_s: float = 0.0,
    ) -> None:
        if not np.isnan(low_on) and not low_off >= low_on:
            raise ValueError(f"{self.rule}: low_off {low_off} must be at least low_on {low_on}")
        if not np.isnan(high_on) and not high_off <= high_on:
            raise ValueError(f"{self.rule}: high_off {high_off} must be at most high_on {high_on}")
        self._grow(stream + 1)
        c = self.config
        c.low_on[stream], c.low_off[stream] = low_on, low_off
        c.high_on[stream], c.high_off[stream] = high_on, high_off
        c.persist_ms[stream] = round(persist_s * 1000)

    def _grow(self, streams: int) -> None:
        """Room for ``streams`` slots; capacity at least doubles, so adding streams one by
        one costs amortized constant time."""
        if streams <= self.streams:
            return
        extra = max(streams, 2 * self.streams, 1024) - self.streams
        nans = np.full(extra, np.nan)
        c = self.config
        c.low_on, c.low_off = np.r_[c.low_on, nans], np.r_[c.low_off, nans]
        c.high_on, c.high_off = np.r_[c.high_on, nans], np.r_[c.high_off, nans]
        c.persist_ms = np.r_[c.persist_ms, np.zeros(extra, np.int64)]
        self.active = np.r_[self.active, np.zeros(extra, bool)]
        self.onset = np.r_[self.onset, np.zeros(extra, np.int64)]
        self.alerted = np.r_[self.alerted, np.zeros(extra, bool)]
        self.last_time = np.r_[self.last_time, np.full(extra, _NO_TIME)]

    STATE = ("active", "onset", "alerted", "last_time")

    def state(self) -> dict[str, npt.NDArray[Any]]:
        """What a checkpoint keeps: the per-stream state (configuration is rebuilt from
        the rules, so a changed rule takes effect after a restart)."""
        return {name: getattr(self, name) for name in self.STATE}

    def restore(self, state: dict[str, npt.NDArray[Any]]) -> None:
        streams = len(state["active"])
        self._grow(streams)
        for name in self.STATE:
            getattr(self, name)[:streams] = state[name]

    def score(self, batch: Readings) -> list[Event]:
        """Advance every stream in the batch (sorted by stream, then time) and return the
        events in stream, then time order. Readings at or before a stream's last scored
        time are ignored: late data cannot rewrite a condition already reported."""
        batch = self.unseen(batch)
        if not len(batch):
            return []
        s, v = batch.stream, batch.value
        c = self.config
        usable = ~np.isnan(v) & ((batch.flags & self.ignore_flags) == 0)
        enter = usable & ((v < c.low_on[s]) | (v > c.high_on[s]))  # comparisons with NaN: False
        last = np.r_[np.flatnonzero(s[1:] != s[:-1]), len(batch) - 1]  # last reading per stream
        self.last_time[s[last]] = batch.time[last]
        # Most streams are quiet: nothing entering, nothing active. Only the others need the
        # state machine; on a calm batch that is a small part of it.
        hot = enter | self.active[s]
        if not hot.all():
            hot_streams = np.zeros(self.streams, dtype=bool)
            hot_streams[s[hot]] = True
            keep = hot_streams[s]
            if not keep.any():
                return []
            batch, usable, enter = batch.take(keep), usable[keep], enter[keep]
        return self._advance(batch, usable, enter)

    def unseen(self, batch: Readings) -> Readings:
        """Room for the batch's streams, and its readings later than each stream's last
        scored one: what the state machine will take. Detectors built on this one filter
        with it before moving their own state, so late readings move nothing anywhere."""
        self._grow(int(batch.stream.max()) + 1 if len(batch) else 0)
        return batch.after(self.last_time)

    def _advance(
        self, batch: Readings, usable: npt.NDArray[np.bool_], enter: npt.NDArray[np.bool_]
    ) -> list[Event]:
        """The state machine over the readings of streams that are active or entering."""
        first, start = batch.segments
        s, t, v = batch.stream, batch.time, batch.value
        c = self.config
        lo_on, lo_off, hi_on, hi_off = c.low_on[s], c.low_off[s], c.high_on[s], c.high_off[s]
        inside_low = np.isnan(lo_on) | (v >= lo_off)
        inside_high = np.isnan(hi_on) | (v <= hi_off)
        clear = usable & ~enter & inside_low & inside_high
        pending_before = (self.active & ~self.alerted)[s]
        alerted_before = (self.active & self.alerted)[s]

        # Pending: a run of entering readings; any usable reading that does not enter ends
        # it (the delay needs the condition to hold throughout).
        signal = last_index_where(enter | (usable & ~enter), start)
        pending = np.where(signal >= 0, enter[signal], pending_before)
        began = pending & ~_previous(pending, first, pending_before)
        run_start = last_index_where(began, start)
        onset = np.where(run_start >= 0, t[run_start], self.onset[s])
        reached = enter & pending & (t - onset >= c.persist_ms[s])
        # Alerted: from the entering reading that completes the delay until a reading is
        # back inside the clearing band (hysteresis); readings in between keep it.
        signal = last_index_where(reached | clear, start)
        alerted = np.where(signal >= 0, reached[signal], alerted_before)
        persisted = alerted & ~_previous(alerted, first, alerted_before)
        alert_onset = np.where(signal >= 0, onset[np.maximum(signal, 0)], self.onset[s])

        active = pending | alerted
        before = _previous(active, first, self.active[s])
        started = active & ~before
        cleared = ~active & before

        last = np.r_[np.flatnonzero(first[1:]), len(batch) - 1]
        self.active[s[last]] = active[last]
        self.alerted[s[last]] = alerted[last]
        self.onset[s[last]] = np.where(alerted[last], alert_onset[last], onset[last])

        events = []
        for kind, mask in (("started", started), ("persisted", persisted), ("cleared", cleared)):
            for i in np.flatnonzero(mask).tolist():
                events.append(self._event(kind, batch, i, int(onset[i])))
        events.sort(key=lambda e: (e.stream, e.time, _ORDER[e.kind]))
        return events

    def _event(self, kind: str, batch: Readings, i: int, onset: int) -> Event:
        stream = int(batch.stream[i])
        c = self.config
        thresholds = {
            name: float(getattr(c, name)[stream])
            for name in ("low_on", "low_off", "high_on", "high_off")
            if not np.isnan(getattr(c, name)[stream])
        }
        evidence: dict[str, object] = {"thresholds": thresholds}
        if kind != "cleared":
            evidence["onset"] = onset
            evidence["persist_s"] = int(c.persist_ms[stream]) / 1000
        return Event(kind, self.rule, stream, int(batch.time[i]), float(batch.value[i]), evidence)


_ORDER = {"started": 0, "persisted": 1, "cleared": 2}


def _previous(
    flag: npt.NDArray[np.bool_], first: npt.NDArray[np.bool_], carried: npt.NDArray[np.bool_]
) -> npt.NDArray[np.bool_]:
    """Each reading's predecessor's ``flag`` in its stream; ``carried`` for the batch's first
    reading of a stream."""
    before = np.empty_like(flag)
    before[1:] = flag[:-1]
    before[first] = carried[first]
    return before
