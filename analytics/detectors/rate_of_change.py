"""Rate of change: a value that has risen (or fallen) by more than a margin within a window,
e.g. heart rate up 30 /min within 5 minutes.

The rise of a reading is its value minus the lowest value of its stream over the window:
the readings of the same and the previous ``window_min - 1`` whole minutes up to it. The
rise is a derived series, and the condition on it (persistence, hysteresis) is the
threshold detector's state machine, reused. Windows are whole minutes so that the state
carried between batches is bounded and exact: per stream, the lowest value of each of the
last ``window_min`` minutes (a small ring indexed by minute), which a new batch's readings
extend. Within a batch the window minimum is a range-minimum query over the readings sorted
by stream and time (a sparse table of running minima), so there is no loop per reading.
A fall is the same with the values negated.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Self

import numpy as np
import numpy.typing as npt

from analytics.batch import Event, Readings
from analytics.detectors.base import Column, Detector, Place
from analytics.detectors.threshold import ThresholdDetector, ThresholdRule
from analytics.quality import POOR_SIGNAL
from vigil.wire.quality import Quality

MINUTE_MS = 60_000
_TIME_BITS = 42  # epoch milliseconds stay below 2**42 until the year 2109


@dataclass(frozen=True, slots=True)
class RateOfChangeRule:
    """The value up by ``rise`` within ``window_min`` minutes, held for ``persist_s``;
    clears once the rise is back below ``clear_below``. With ``falling``, a fall."""

    name: str
    metrics: tuple[int, ...]
    rise: float
    clear_below: float
    window_min: int = 5
    persist_s: float = 0.0
    falling: bool = False
    description: str = ""
    ignore_flags: int = POOR_SIGNAL
    TUNABLE: ClassVar[tuple[str, ...]] = ("rise", "clear_below", "persist_s")

    def detector(self) -> RateOfChangeDetector:
        return RateOfChangeDetector(self.name, self.window_min, self.falling, self.ignore_flags)


class RateOfChangeDetector(Detector[RateOfChangeRule]):
    ring_low = Column(np.float64, np.inf, width="window")
    """Per stream, the lowest (signed) value of each minute kept, at slot minute % window."""
    ring_minute = Column(np.int64, -(2**40), width="window")

    def __init__(
        self,
        rule: str,
        window_min: int = 5,
        falling: bool = False,
        ignore_flags: int = int(Quality.INVALID),
    ) -> None:
        self.window = window_min
        super().__init__()
        self.rule = rule
        self.sign = -1.0 if falling else 1.0
        self.ignore_flags = ignore_flags
        self.condition = ThresholdDetector(rule, ignore_flags)

    def configure(self, stream: int, rule: RateOfChangeRule, place: Place | None = None) -> None:
        """The condition on the change: it enters at ``rise``, clears below ``clear_below``."""
        change = ThresholdRule(
            rule.name,
            rule.metrics,
            high_on=rule.rise,
            high_off=rule.clear_below,
            persist_s=rule.persist_s,
        )
        self.condition.configure(stream, change)
        self.grow(self.condition.rows)

    @classmethod
    def for_contract(cls) -> Self:
        rule = RateOfChangeRule("contract", (), rise=12, clear_below=6, window_min=2, persist_s=5)
        detector = cls("contract", window_min=2)
        for stream in range(6):
            detector.configure(stream, rule)
        return detector

    def score(self, batch: Readings) -> list[Event]:
        # What the condition will ignore (late readings, a second reading at the same time)
        # must not move the windows either.
        batch = self.condition.unseen(batch)
        self.grow(self.condition.rows)
        if not len(batch):
            return []
        s, t = batch.stream, batch.time
        usable = ~np.isnan(batch.value) & ((batch.flags & self.ignore_flags) == 0)
        signed = np.where(usable, self.sign * batch.value, np.inf)
        minute = t // MINUTE_MS

        # The window inside the batch: from the first reading of minute - (window - 1).
        key = (s << _TIME_BITS) + t
        start_key = (s << _TIME_BITS) + (minute - (self.window - 1)) * MINUTE_MS
        first = np.searchsorted(key, start_key, side="left")
        low = _range_min(signed, first, np.arange(len(batch)))
        # ... and the minutes before the batch, from the ring.
        ring_minute = self.ring_minute[s]
        in_window = (ring_minute >= (minute - (self.window - 1))[:, None]) & (
            ring_minute <= minute[:, None]
        )
        low = np.minimum(low, np.where(in_window, self.ring_low[s], np.inf).min(axis=1))

        # signed - low is the rise (or, negated values, the fall) within the window.
        known = usable & np.isfinite(low)
        change = np.full(len(batch), np.nan)
        change[known] = signed[known] - low[known]
        self._remember(s, minute, signed)
        events = self.condition.score(Readings(s, t, change, batch.flags))
        out = []
        for e in events:  # events are few: report the reading's own value, the change aside
            i = batch.index_of(e.stream, e.time)
            evidence = {**e.evidence, "change": e.value, "window_min": self.window}
            out.append(Event(e.kind, e.rule, e.stream, e.time, float(batch.value[i]), evidence))
        return out

    def _remember(
        self, s: npt.NDArray[np.int64], minute: npt.NDArray[np.int64], signed: npt.NDArray[Any]
    ) -> None:
        """Fold the batch's per-minute minima into each stream's ring."""
        group = np.ones(len(s), dtype=bool)
        group[1:] = (s[1:] != s[:-1]) | (minute[1:] != minute[:-1])
        starts = np.flatnonzero(group)
        g_stream, g_minute = s[starts], minute[starts]
        g_low = np.minimum.reduceat(signed, starts)
        slot = g_minute % self.window
        # Of several minutes of one stream landing on one slot, the latest wins.
        order = np.lexsort((g_minute, slot, g_stream))
        last = np.ones(len(order), dtype=bool)
        last[:-1] = (g_stream[order][1:] != g_stream[order][:-1]) | (
            slot[order][1:] != slot[order][:-1]
        )
        pick = order[last]
        gs, gm, gl, gslot = g_stream[pick], g_minute[pick], g_low[pick], slot[pick]
        held_minute = self.ring_minute[gs, gslot]
        same = held_minute == gm
        newer = gm > held_minute
        self.ring_low[gs[same], gslot[same]] = np.minimum(
            self.ring_low[gs[same], gslot[same]], gl[same]
        )
        self.ring_low[gs[newer], gslot[newer]] = gl[newer]
        self.ring_minute[gs[newer], gslot[newer]] = gm[newer]


def _range_min(
    values: npt.NDArray[np.float64], first: npt.NDArray[np.intp], last: npt.NDArray[np.intp]
) -> npt.NDArray[np.float64]:
    """min(values[first[i] : last[i] + 1]) for every i, with a sparse table: level k holds
    the minimum of each run of 2**k values, and any range is two overlapping runs. Only the
    levels the longest range needs are built: live traffic brings one reading per stream
    per batch, and then no level beyond the values themselves."""
    length = last - first + 1
    k = np.floor(np.log2(length)).astype(np.int64)
    levels = [values]
    width = 1
    for _ in range(int(k.max())):
        previous = levels[-1]
        levels.append(np.minimum(previous[:-width], previous[width:]))
        width *= 2
    out = np.empty(len(first))
    for level in np.unique(k).tolist():
        rows = k == level
        table = levels[level]
        out[rows] = np.minimum(table[first[rows]], table[last[rows] - (1 << level) + 1])
    return out
