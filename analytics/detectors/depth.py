"""Depth-aware persistence: how long a saturation must stay low before it is a condition
depends on how low it is.

A fixed delay treats 87 % and 75 % alike: long enough to hold back the second is too long
for the first, and short enough for the first cries wolf at the second. As Nellcor's
SatSeconds does, this detector integrates the deficit below the limit over time (%·s): a
saturation of 80 % against a limit of 88 % adds 8 a second, 87 % adds 1, so a fall to 80 %
is a condition within seconds while 87 % for 20 s is not one. The integral leaks: a reading
above the limit takes back its own excess, so a saturation hovering around the limit (88,
87, 89 ...) adds nothing on average, and a reading back at ``clear_at`` ends the episode at
once. Besides the area, a saturation below the limit *on average* (by a quarter point or more) for
``longest_s`` (the integral never back at zero for that long) is a condition however
shallow: a slow shallow desaturation is as real as a deep fast one.

Each reading stands for the time since the one before, but at most twice the interval
before that (and a minute): a gap in the readings is not counted as time spent low, in the
area or in the time below the limit, and a monitor that sends one value a minute still
integrates.

Vectorized: the leaky integral is the Lindley recursion ``W = max(0, W + x)``, whose value
is the running sum less its running minimum, computed per episode with one cumulative sum
and one running minimum (of ranks, so that it is exact) over the readings below
``clear_at``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Self, TypeVar

import numpy as np
import numpy.typing as npt

from analytics.batch import Event, Readings, last_index_where
from analytics.detectors.base import Column, Detector, Place
from analytics.quality import POOR_SIGNAL
from vigil.wire.events import EventKind
from vigil.wire.quality import Quality

G = TypeVar("G", bound=np.generic)
_NEVER = np.iinfo(np.int64).min // 2
LONGEST_STEP_S = 60.0
"""The most one reading counts for (a minute, the cadence of bedside monitor numerics)."""
MEAN_DEFICIT = 0.25
"""How far below the limit on average (points) the time path asks for: a saturation that
sits *at* the limit, half its readings a point below, is not below it, though the leaky
integral of its noise seldom returns to zero (it grows as the square root of the time, the
deficit of one below as the time)."""


@dataclass(frozen=True, slots=True)
class DepthRule:
    """The deficit below ``limit`` integrated to ``sat_seconds`` (%·s; None: only the time
    path), or the saturation below ``limit`` on average for ``longest_s``; ends once the
    integral is back at zero or a reading is at ``clear_at``."""

    name: str
    metrics: tuple[int, ...]
    limit: float
    clear_at: float
    sat_seconds: float | None
    longest_s: float
    description: str = ""
    ignore_flags: int = POOR_SIGNAL
    TUNABLE: ClassVar[tuple[str, ...]] = ("limit", "clear_at", "sat_seconds", "longest_s")

    def __post_init__(self) -> None:
        if not self.clear_at >= self.limit:
            raise ValueError(f"{self.name}: clear_at {self.clear_at} below limit {self.limit}")
        if self.sat_seconds is not None and not self.sat_seconds > 0:
            raise ValueError(f"{self.name}: sat_seconds must be above 0")
        if not self.longest_s > 0:
            raise ValueError(f"{self.name}: longest_s must be above 0")

    def detector(self) -> DepthDetector:
        return DepthDetector(self.name, self.ignore_flags)


class DepthDetector(Detector[DepthRule]):
    limit = Column(np.float64, np.nan, saved=False)
    clear_at = Column(np.float64, np.nan, saved=False)
    sat_seconds = Column(np.float64, np.inf, saved=False)
    longest_ms = Column(np.int64, np.iinfo(np.int64).max, saved=False)
    area = Column(np.float64, 0.0)
    """The leaky integral of the deficit, %·s."""
    onset = Column(np.int64, 0)
    """When the integral last left zero."""
    low_for = Column(np.float64, 0.0)
    """Seconds of readings since then (what a gap did not show is not counted)."""
    alerted = Column(np.bool_, False)
    last_time = Column(np.int64, _NEVER)
    """Of the last usable reading."""
    scored_time = Column(np.int64, _NEVER)
    """Of the last reading scored, usable or not: what is older is late, and ignored."""
    last_step = Column(np.int64, round(LONGEST_STEP_S * 1000))
    """The interval before it (unknown at first: only the minute's cap applies)."""

    def __init__(self, rule: str, ignore_flags: int = int(Quality.INVALID)) -> None:
        super().__init__()
        self.rule = rule
        self.ignore_flags = ignore_flags

    def configure(self, stream: int, rule: DepthRule, place: Place | None = None) -> None:
        self.grow(stream + 1)
        self.limit[stream] = rule.limit
        self.clear_at[stream] = rule.clear_at
        self.sat_seconds[stream] = np.inf if rule.sat_seconds is None else rule.sat_seconds
        self.longest_ms[stream] = round(rule.longest_s * 1000)

    @classmethod
    def for_contract(cls) -> Self:
        rule = DepthRule("contract", (), limit=90, clear_at=92, sat_seconds=20, longest_s=8)
        detector = cls("contract")
        for stream in range(6):
            detector.configure(stream, rule)
        return detector

    def score(self, batch: Readings) -> list[Event]:
        if not len(batch):
            return []
        self.grow(int(batch.stream.max()) + 1)
        batch = batch.after(self.scored_time)  # late or repeated readings move nothing
        if not len(batch):
            return []
        last = np.r_[np.flatnonzero(batch.segments[0][1:]), len(batch) - 1]
        self.scored_time[batch.stream[last]] = batch.time[last]
        usable = ~np.isnan(batch.value) & ((batch.flags & self.ignore_flags) == 0)
        good = batch if usable.all() else batch.take(usable)
        return self._advance(good) if len(good) else []

    def _advance(self, good: Readings) -> list[Event]:
        first, start = good.segments
        s, t, v = good.stream, good.time, good.value
        live = bool(first.all())  # live traffic: one reading per stream, its past carried
        previous_time = self.last_time[s] if live else _previous(t, first, self.last_time[s])
        step = np.where(previous_time > _NEVER, t - previous_time, 0)
        if live:
            previous_step = self.last_step[s]
        else:  # the last interval known before each reading (a stream's first has none)
            known = _previous(last_index_where(step > 0, start), first, np.full(len(t), -1))
            previous_step = np.where(known >= 0, step[np.maximum(known, 0)], self.last_step[s])
        cap = np.minimum(2 * previous_step, round(LONGEST_STEP_S * 1000))
        weight_s = np.minimum(step, cap) / 1000
        reset = v >= self.clear_at[s]
        end = np.arange(len(t)) if live else np.r_[np.flatnonzero(first[1:]), len(t) - 1]
        streams = s[end]
        self.last_time[streams] = t[end]
        moved = step[end] > 0
        self.last_step[streams[moved]] = step[end][moved]
        # Only the streams with a reading below clear_at, or a deficit carried, move: the
        # others (most, most of the time) stay at zero.
        busy = np.zeros(len(self.area), bool)
        busy[s[~reset]] = True
        busy[streams[self.area[streams] > 1e-9]] = True
        chosen = busy[s]
        if not chosen.any():
            return []
        if chosen.all():
            return self._integrate(good, weight_s, reset)
        return self._integrate(good.take(chosen), weight_s[chosen], reset[chosen])

    def _integrate(
        self, good: Readings, weight_s: npt.NDArray[np.float64], reset: npt.NDArray[np.bool_]
    ) -> list[Event]:
        """The leaky integral per episode: episodes begin at a stream's first reading (from
        the carried area) and at each reset reading (from zero)."""
        first, start = good.segments
        s, t, v = good.stream, good.time, good.value
        x = np.where(reset, 0.0, (self.limit[s] - v) * weight_s)
        begins = first | reset
        episode = np.cumsum(begins, dtype=np.int64)
        total = np.cumsum(x)
        opening = np.maximum.accumulate(np.where(begins, np.arange(len(x)), 0))
        relative = total - (total[opening] - x[opening])
        carried = np.where(first[opening] & ~reset[opening], self.area[s], 0.0)
        lowest = _lowest_so_far(relative, episode, ~reset)
        area = np.maximum(relative - np.minimum(-carried, lowest), 0.0)
        area[reset] = 0.0

        positive = area > 1e-9
        was_positive = _previous(positive, first, self.area[s] > 1e-9)
        zero = last_index_where(~positive, start)
        run_start = np.minimum(zero + 1, len(t) - 1)
        onset = np.where(
            zero >= 0,
            t[run_start],
            np.where(self.area[s] > 1e-9, self.onset[s], t[start]),
        )
        counted = np.cumsum(weight_s)
        carried_low = np.where(self.area[s] > 1e-9, self.low_for[s], 0.0)
        low_for = np.where(
            zero >= 0,
            counted - counted[np.maximum(zero, 0)],
            carried_low + counted - (counted[start] - weight_s[start]),
        )
        long_low = (low_for * 1000 >= self.longest_ms[s]) & (area >= MEAN_DEFICIT * low_for)
        due = positive & ((area >= self.sat_seconds[s]) | long_low)
        latest_due = last_index_where(due, start)
        alerted = positive & ((latest_due > zero) | ((zero < 0) & self.alerted[s]))
        was_alerted = _previous(alerted, first, self.alerted[s])

        end = np.r_[np.flatnonzero(first[1:]), len(t) - 1]
        streams = s[end]
        self.area[streams] = area[end]
        self.onset[streams] = onset[end]
        self.low_for[streams] = np.where(positive[end], low_for[end], 0.0)
        self.alerted[streams] = alerted[end]

        events = []
        for kind, mask in (
            (EventKind.STARTED, positive & ~was_positive),
            (EventKind.PERSISTED, alerted & ~was_alerted),
            (EventKind.CLEARED, ~positive & was_positive),
        ):
            for i in np.flatnonzero(mask).tolist():
                events.append(self._event(kind, good, i, int(onset[i]), float(area[i])))
        order = {EventKind.STARTED: 0, EventKind.PERSISTED: 1, EventKind.CLEARED: 2}
        events.sort(key=lambda e: (e.stream, e.time, order[e.kind]))
        return events

    def _event(self, kind: EventKind, good: Readings, i: int, onset: int, area: float) -> Event:
        stream = int(good.stream[i])
        evidence: dict[str, object] = {
            "limit": float(self.limit[stream]),
            "clear_at": float(self.clear_at[stream]),
        }
        if kind != EventKind.CLEARED:
            sat_seconds = float(self.sat_seconds[stream])
            evidence |= {
                "onset": onset,
                "deficit_pct_s": round(area, 1),
                "sat_seconds": None if np.isinf(sat_seconds) else sat_seconds,
                "longest_s": int(self.longest_ms[stream]) / 1000,
            }
        return Event(kind, self.rule, stream, int(good.time[i]), float(good.value[i]), evidence)


def _lowest_so_far(
    values: npt.NDArray[np.float64], episode: npt.NDArray[np.int64], inside: npt.NDArray[np.bool_]
) -> npt.NDArray[np.float64]:
    """The running minimum of ``values`` within each episode (runs of equal ``episode``), at
    the readings ``inside`` an episode (elsewhere 0). Exact: the minimum is taken over the
    values' ranks, each episode's shifted below every earlier one's, in integers (a shift
    of the floats themselves loses their low digits in a long batch)."""
    lowest = np.zeros(len(values))
    at = np.flatnonzero(inside)
    if not len(at):
        return lowest
    chosen = values[at]
    order = np.argsort(chosen, kind="stable")
    rank = np.empty(len(at), np.int64)
    rank[order] = np.arange(len(at))
    shift = episode[at] * len(at)
    lowest[at] = chosen[order[np.minimum.accumulate(rank - shift) + shift]]
    return lowest


def _previous(
    values: npt.NDArray[G], first: npt.NDArray[np.bool_], carried: npt.NDArray[G]
) -> npt.NDArray[G]:
    """Each reading's predecessor's value in its stream; ``carried`` for a stream's first."""
    before = np.empty_like(values)
    before[1:] = values[:-1]
    before[first] = carried[first]
    return before
