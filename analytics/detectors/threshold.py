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
from typing import ClassVar, Self

import numpy as np
import numpy.typing as npt

from analytics.batch import Event, Readings, last_index_where
from analytics.detectors.base import Column, Detector, Place
from analytics.quality import POOR_SIGNAL
from vigil.wire.events import EventKind
from vigil.wire.quality import Quality

_NO_TIME = np.iinfo(np.int64).min


@dataclass(frozen=True, slots=True)
class ThresholdRule:
    """Entry and clearing thresholds on either side (None: that side is off), held for
    ``persist_s``. Readings carrying any of ``ignore_flags`` say nothing about the
    condition."""

    name: str
    metrics: tuple[int, ...]
    low_on: float | None = None
    low_off: float | None = None
    high_on: float | None = None
    high_off: float | None = None
    persist_s: float = 0.0
    description: str = ""
    ignore_flags: int = POOR_SIGNAL
    TUNABLE: ClassVar[tuple[str, ...]] = ("low_on", "low_off", "high_on", "high_off", "persist_s")

    def __post_init__(self) -> None:
        if self.low_on is not None and (self.low_off is None or self.low_off < self.low_on):
            raise ValueError(
                f"{self.name}: low_off {self.low_off} must be at least low_on {self.low_on}"
            )
        if self.high_on is not None and (self.high_off is None or self.high_off > self.high_on):
            raise ValueError(
                f"{self.name}: high_off {self.high_off} must be at most high_on {self.high_on}"
            )

    def detector(self) -> ThresholdDetector:
        return ThresholdDetector(self.name, self.ignore_flags)


class ThresholdDetector(Detector[ThresholdRule]):
    """One rule (e.g. 'spo2_low') over many streams, each with its own thresholds."""

    low_on = Column(np.float64, np.nan, saved=False)
    low_off = Column(np.float64, np.nan, saved=False)
    high_on = Column(np.float64, np.nan, saved=False)
    high_off = Column(np.float64, np.nan, saved=False)
    persist_ms = Column(np.int64, 0, saved=False)
    active = Column(np.bool_, False)
    onset = Column(np.int64, 0)
    alerted = Column(np.bool_, False)
    last_time = Column(np.int64, _NO_TIME)

    def __init__(self, rule: str, ignore_flags: int = int(Quality.INVALID)) -> None:
        super().__init__()
        self.rule = rule
        self.ignore_flags = ignore_flags

    def configure(self, stream: int, rule: ThresholdRule, place: Place | None = None) -> None:
        self.grow(stream + 1)
        for side in ("low_on", "low_off", "high_on", "high_off"):
            value = getattr(rule, side)
            getattr(self, side)[stream] = np.nan if value is None else value
        self.persist_ms[stream] = round(rule.persist_s * 1000)

    @classmethod
    def for_contract(cls) -> Self:
        rule = ThresholdRule("contract", (), 88, 90, 100, 98, persist_s=5)
        detector = cls("contract")
        for stream in range(6):
            detector.configure(stream, rule)
        return detector

    def score(self, batch: Readings) -> list[Event]:
        """Advance every stream in the batch (sorted by stream, then time) and return the
        events in stream, then time order. Readings at or before a stream's last scored
        time are ignored: late data cannot rewrite a condition already reported."""
        batch = self.unseen(batch)
        if not len(batch):
            return []
        s, v = batch.stream, batch.value
        usable = ~np.isnan(v) & ((batch.flags & self.ignore_flags) == 0)
        enter = usable & ((v < self.low_on[s]) | (v > self.high_on[s]))  # NaN compares False
        last = np.r_[np.flatnonzero(s[1:] != s[:-1]), len(batch) - 1]  # last reading per stream
        self.last_time[s[last]] = batch.time[last]
        # Most streams are quiet: nothing entering, nothing active. Only the others need the
        # state machine; on a calm batch that is a small part of it.
        hot = enter | self.active[s]
        if not hot.all():
            hot_streams = np.zeros(self.rows, dtype=bool)
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
        self.grow(int(batch.stream.max()) + 1 if len(batch) else 0)
        return batch.after(self.last_time)

    def _advance(
        self, batch: Readings, usable: npt.NDArray[np.bool_], enter: npt.NDArray[np.bool_]
    ) -> list[Event]:
        """The state machine over the readings of streams that are active or entering."""
        first, start = batch.segments
        s, t, v = batch.stream, batch.time, batch.value
        lo_on, lo_off = self.low_on[s], self.low_off[s]
        hi_on, hi_off = self.high_on[s], self.high_off[s]
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
        reached = enter & pending & (t - onset >= self.persist_ms[s])
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
        for kind, mask in (
            (EventKind.STARTED, started),
            (EventKind.PERSISTED, persisted),
            (EventKind.CLEARED, cleared),
        ):
            for i in np.flatnonzero(mask).tolist():
                events.append(self._event(kind, batch, i, int(onset[i])))
        events.sort(key=lambda e: (e.stream, e.time, _ORDER[e.kind]))
        return events

    def _event(self, kind: EventKind, batch: Readings, i: int, onset: int) -> Event:
        stream = int(batch.stream[i])
        thresholds = {
            name: float(getattr(self, name)[stream])
            for name in ("low_on", "low_off", "high_on", "high_off")
            if not np.isnan(getattr(self, name)[stream])
        }
        evidence: dict[str, object] = {"thresholds": thresholds}
        if kind != EventKind.CLEARED:
            evidence["onset"] = onset
            evidence["persist_s"] = int(self.persist_ms[stream]) / 1000
        return Event(kind, self.rule, stream, int(batch.time[i]), float(batch.value[i]), evidence)


_ORDER = {EventKind.STARTED: 0, EventKind.PERSISTED: 1, EventKind.CLEARED: 2}


def _previous(
    flag: npt.NDArray[np.bool_], first: npt.NDArray[np.bool_], carried: npt.NDArray[np.bool_]
) -> npt.NDArray[np.bool_]:
    """Each reading's predecessor's ``flag`` in its stream; ``carried`` for the batch's first
    reading of a stream."""
    before = np.empty_like(flag)
    before[1:] = flag[:-1]
    before[first] = carried[first]
    return before
