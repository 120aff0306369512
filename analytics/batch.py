"""A micro-batch of readings as the detectors see it, and the events they emit.

Readings arrive from many gateways at once; the engine gives each (patient, metric) stream
a slot, sorts the batch by stream then time, and hands the detectors arrays they can score
in a few numpy passes. Sorting once lets every detector treat its work as segmented scans
over contiguous runs of one stream (:func:`segments`), with no Python loop per reading.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import numpy.typing as npt

from vigil.wire.events import EventKind

Int64s = npt.NDArray[np.int64]


@dataclass(frozen=True)
class Readings:
    """Struct of arrays, sorted by (stream, time); ``time`` in epoch milliseconds.

    The engine hands one instance to every detector watching the same metrics, so what
    they all need of its layout (:attr:`segments`) is computed once and kept."""

    stream: Int64s
    time: Int64s
    value: npt.NDArray[np.float64]
    flags: npt.NDArray[np.int32]

    def __len__(self) -> int:
        return len(self.stream)

    @classmethod
    def sorted(
        cls,
        stream: npt.ArrayLike,
        time: npt.ArrayLike,
        value: npt.ArrayLike,
        flags: npt.ArrayLike | None = None,
    ) -> Readings:
        stream = np.asarray(stream, dtype=np.int64)
        time = np.asarray(time, dtype=np.int64)
        order = np.lexsort((time, stream))
        return cls(
            stream=stream[order],
            time=time[order],
            value=np.asarray(value, dtype=np.float64)[order],
            flags=(
                np.zeros(len(stream), np.int32)
                if flags is None
                else np.asarray(flags, dtype=np.int32)[order]
            ),
        )

    @cached_property
    def segments(self) -> tuple[npt.NDArray[np.bool_], Int64s]:
        """See :func:`segments`."""
        return segments(self.stream)

    def take(self, mask: npt.NDArray[np.bool_]) -> Readings:
        return Readings(self.stream[mask], self.time[mask], self.value[mask], self.flags[mask])

    def after(self, last_time: Int64s) -> Readings:
        """The readings later than their stream's ``last_time`` (indexed by stream), the
        first of any with the same time: what a detector has not seen yet. Late and repeated
        readings change nothing, so a redelivered batch is harmless."""
        first, _ = self.segments
        newer = self.time > last_time[self.stream]
        newer[1:] &= (self.time[1:] > self.time[:-1]) | first[1:]
        return self if newer.all() else self.take(newer)

    def index_of(self, stream: int, time: int) -> int:
        """Where the reading of ``stream`` at ``time`` is (the first, if there are ties):
        how a detector finds the evidence for one of its few events without a pass over
        the batch."""
        lo = int(np.searchsorted(self.stream, stream, side="left"))
        hi = int(np.searchsorted(self.stream, stream, side="right"))
        return lo + int(np.searchsorted(self.time[lo:hi], time, side="left"))


@dataclass(frozen=True, slots=True)
class Event:
    """What a detector reports: a condition ``started``, ``persisted`` (it has held long
    enough to be an alert candidate) or ``cleared``, with the evidence a clinician checks."""

    kind: EventKind
    rule: str
    stream: int
    time: int
    """Epoch milliseconds of the reading that caused the event."""
    value: float
    evidence: dict[str, Any] = field(default_factory=dict)


def segments(stream: Int64s) -> tuple[npt.NDArray[np.bool_], Int64s]:
    """For readings sorted by stream: whether each is the first of its stream in the batch,
    and the index where its stream's run begins."""
    first = np.ones(len(stream), dtype=bool)
    first[1:] = stream[1:] != stream[:-1]
    start = np.maximum.accumulate(np.where(first, np.arange(len(stream)), 0))
    return first, start


def segmented_cumsum(values: npt.NDArray[np.float64], start: Int64s) -> npt.NDArray[np.float64]:
    """Running sums restarting at each stream's run (``start`` from :func:`segments`). The
    values must be of similar magnitude across the batch: the sums are one cumulative sum
    less its value before each run."""
    total = np.cumsum(values)
    return total - (total[start] - values[start])


def last_index_where(mask: npt.NDArray[np.bool_], start: Int64s) -> Int64s:
    """For each reading, the index of the latest reading at or before it, in the same
    stream's run, where ``mask`` holds; -1 where there is none yet (a segmented scan)."""
    latest = np.maximum.accumulate(np.where(mask, np.arange(len(mask)), -1))
    return np.where(latest >= start, latest, -1)
