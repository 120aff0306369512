"""Artefacts the devices do not flag: implausible jumps and a flatline.

Oximeters flag some motion, and chest straps report lost contact, but many artefacts arrive
as ordinary readings: a hand moving makes SpO2 read 10-20 points low for a few seconds, a
strap counting every other beat halves the pulse. Physiology cannot do that: SpO2 falls at
most a couple of points a second even in apnoea, and a pulse averaged over beats does not
move 20 /min (or 30 %) from one second to the next. A reading that far from the one before
it (within 3 s) is an implausible jump, and every reading of the stream within ``hold_s`` after the
latest jump is marked as an artefact, so the clinical rules ignore it and a long run of
artefacts raises the technical 'check the sensor' condition instead. The price is paid by
real abrupt changes (a sudden 2:1 heart block halves the pulse): they are seen ``hold_s``
late. A value that has not changed at all for ``flatline_s`` (a stuck sensor, a frozen
display value) is marked the same way, where the readings come every few seconds: a
bedside monitor's numerics at one a minute repeat a rounded value by chance, not by being
stuck.

The marks are quality bits of their own, above the device's (they never travel on the
wire). Per stream the state is the last valued reading, its time, the latest jump and the
latest change of value: four numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Self

import numpy as np
import numpy.typing as npt

from analytics.batch import Readings, last_index_where
from analytics.detectors.base import Column, Stage
from analytics.quality import FLATLINE, IMPLAUSIBLE_JUMP
from vigil import metrics
from vigil.wire.quality import Quality

_NO_VALUE = int(Quality.NO_CONTACT | Quality.INVALID | Quality.SENSOR_FAULT)
_NEIGHBOURS_MS = 3000
_NEVER = np.iinfo(np.int64).min // 2


@dataclass(frozen=True, slots=True)
class ArtefactLimits:
    jump: float
    """Largest plausible change between readings at most 3 s apart..."""
    jump_fraction: float
    """... or this fraction of the earlier value, if more (a pulse of 150 moves more in a
    second than a pulse of 50)."""
    hold_s: float
    flatline_s: float


LIMITS = {
    metrics.SPO2.id: ArtefactLimits(jump=5, jump_fraction=0, hold_s=20, flatline_s=1800),
    metrics.HEART_RATE.id: ArtefactLimits(jump=20, jump_fraction=0.3, hold_s=20, flatline_s=180),
    metrics.PULSE_RATE.id: ArtefactLimits(jump=20, jump_fraction=0.3, hold_s=20, flatline_s=180),
}
"""SpO2 at 98 % can stay put for many minutes in a healthy person; a beat-averaged pulse
that does not move at all for three minutes is a stuck value."""


class ArtefactMarker(Stage):
    """Marks artefact readings of many streams; configured per stream."""

    jump = Column(np.float64, np.inf, saved=False)
    jump_fraction = Column(np.float64, 0.0, saved=False)
    hold_ms = Column(np.int64, 0, saved=False)
    flatline_ms = Column(np.int64, np.iinfo(np.int64).max, saved=False)
    last_value = Column(np.float64, np.nan)
    last_time = Column(np.int64, _NEVER)
    jump_time = Column(np.int64, _NEVER)
    change_time = Column(np.int64, _NEVER)

    def configure(self, stream: int, limits: ArtefactLimits | None) -> None:
        """A stream with no limits (None) is never marked."""
        self.grow(stream + 1)
        if limits is not None:
            self.jump[stream] = limits.jump
            self.jump_fraction[stream] = limits.jump_fraction
            self.hold_ms[stream] = round(limits.hold_s * 1000)
            self.flatline_ms[stream] = round(limits.flatline_s * 1000)

    @classmethod
    def for_contract(cls) -> Self:
        marker = cls()
        short = ArtefactLimits(jump=8, jump_fraction=0.1, hold_s=5, flatline_s=20)
        for stream in range(6):
            marker.configure(stream, short if stream < 5 else None)
        return marker

    def contract_output(self, batch: Readings) -> list[tuple[int, int, str]]:
        marked = self.mark(batch)
        names = {IMPLAUSIBLE_JUMP: "jump", FLATLINE: "flatline"}
        return [
            (int(s), int(t), name)
            for bit, name in names.items()
            for s, t in zip(
                marked.stream[(marked.flags & bit) != 0].tolist(),
                marked.time[(marked.flags & bit) != 0].tolist(),
                strict=True,
            )
        ]

    def mark(self, batch: Readings) -> Readings:
        """The batch with its artefact readings' flags set. Readings at or before a stream's
        last valued reading neither move the state nor are judged (the detectors ignore
        them too)."""
        if not len(batch):
            return batch
        self.grow(int(batch.stream.max()) + 1)
        s, t, v = batch.stream, batch.time, batch.value
        first, start = batch.segments
        valued = ~np.isnan(v) & ((batch.flags & _NO_VALUE) == 0) & (t > self.last_time[s])
        if not valued.any():
            return batch
        if first.all():  # live traffic: one reading per stream, the previous one is carried
            prev_value, prev_time = self.last_value[s], self.last_time[s]
        else:  # the previous valued reading of the same stream, in the batch or carried
            prev_value, prev_time = self._previous(valued, batch)
            valued &= t > prev_time  # of readings at the same time, the first counts
            prev_value, prev_time = self._previous(valued, batch)

        step_limit = np.maximum(self.jump[s], self.jump_fraction[s] * prev_value)
        # comparisons with NaN (no previous value) are False
        jumped = valued & (np.abs(v - prev_value) > step_limit) & (t - prev_time <= _NEIGHBOURS_MS)
        changed = valued & (v != prev_value)
        jump_time = self._latest(jumped, t, self.jump_time[s], batch)
        change_time = self._latest(changed, t, self.change_time[s], batch)

        marks = np.where(valued & (t - jump_time <= self.hold_ms[s]), IMPLAUSIBLE_JUMP, 0)
        stuck = (t - change_time >= self.flatline_ms[s]) & (t - prev_time <= _NEIGHBOURS_MS)
        marks |= np.where(valued & stuck, FLATLINE, 0)

        if first.all():
            streams, at = s[valued], np.flatnonzero(valued)
        else:
            last = last_index_where(valued, start)
            end = np.r_[np.flatnonzero(first[1:]), len(batch) - 1]
            seen = last[end] >= 0
            streams, at = s[end][seen], last[end][seen]
        self.last_value[streams] = v[at]
        self.last_time[streams] = t[at]
        self.jump_time[streams] = jump_time[at]
        self.change_time[streams] = change_time[at]
        if not marks.any():
            return batch
        return Readings(s, t, v, batch.flags | marks.astype(np.int32))

    def _previous(
        self, valued: npt.NDArray[np.bool_], batch: Readings
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]:
        """Value and time of each reading's previous valued reading in its stream (in the
        batch, or carried from earlier ones)."""
        s, t, v = batch.stream, batch.time, batch.value
        first, start = batch.segments
        previous = last_index_where(valued, start)
        prior = np.full_like(previous, -1)
        prior[1:] = previous[:-1]
        prior[first] = -1
        at = np.maximum(prior, 0)
        return (
            np.where(prior >= 0, v[at], self.last_value[s]),
            np.where(prior >= 0, t[at], self.last_time[s]),
        )

    @staticmethod
    def _latest(
        mask: npt.NDArray[np.bool_],
        t: npt.NDArray[np.int64],
        carried: npt.NDArray[np.int64],
        batch: Readings,
    ) -> npt.NDArray[np.int64]:
        """Time of the latest reading at or before each where ``mask`` holds, in its
        stream; ``carried`` where there is none in the batch."""
        if batch.segments[0].all():
            return np.where(mask, t, carried)
        latest = last_index_where(mask, batch.segments[1])
        return np.where(latest >= 0, t[np.maximum(latest, 0)], carried)
