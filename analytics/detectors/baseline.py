"""A personal baseline: what is normal for this patient, and a sustained departure from it.

Population thresholds miss a patient whose SpO2 has drifted from 97 % to 92 % (still above
NEWS2's red band) and fire all day for one whose normal is 89 %. Per stream this detector
keeps two exponentially weighted means with time-based decay (irregular sampling and gaps
weigh by elapsed time, not by reading count):

- the *baseline*: mean and variance over a long half-life (a day, so it spans sleep and
  activity), which a departure of an hour or two barely moves;
- the *level*: the mean over a short half-life (minutes), so one noisy reading is not a
  departure.

The departure is ``level - baseline`` over a scale of ``max(sd_multiple * sd, min_change)``:
the patient's own variability, floored by a change that matters clinically, so a patient
with a very steady record is not flagged for a change of two beats. That ratio is a derived
series fed to the threshold state machine: a condition starts when it passes 1 on a
watched side, is reported after ``persist_s``, and clears back below 0.5. Until the stream
has ``warm_up_s`` of history and enough readings, nothing is judged (the ratio is NaN).

Vectorized with the weights relative to each stream's first reading in the batch:
``mean_i = c + sum(e_j (x_j - c)) / (W + sum e_j)`` with ``e_j = exp(lambda (t_j - t_0))``
as segmented running sums. A batch whose streams span many short half-lives is scored in
time slices so the weights stay of similar size (the running sums stay exact).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from analytics.batch import Event, Readings, segmented_cumsum
from analytics.detectors.threshold import ThresholdDetector
from vigil.wire.quality import Quality

_MAX_EXPONENT = 4.0
"""Largest lambda * (t - t_0) within one slice: weights up to e**4 keep the running sums
of a 100,000-stream batch exact to far below a tenth of a unit."""


class _Mean:
    """Per-stream exponentially weighted mean (and optionally variance) in arrays."""

    def __init__(self, half_life_s: float, variance: bool) -> None:
        self.rate = np.log(2) / (half_life_s * 1000)  # per millisecond
        self.variance = variance
        self.weight = np.zeros(0)
        self.mean = np.zeros(0)
        self.var = np.zeros(0)

    def grow(self, extra: int) -> None:
        self.weight = np.r_[self.weight, np.zeros(extra)]
        self.mean = np.r_[self.mean, np.zeros(extra)]
        self.var = np.r_[self.var, np.zeros(extra)]

    def update(
        self,
        batch: Readings,
        first: npt.NDArray[np.bool_],
        start: npt.NDArray[np.int64],
        since_ms: npt.NDArray[np.float64],
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """Mean, variance and weight after each reading (all usable, sorted by stream and
        time); ``since_ms`` is each run's time since the stream's last reading before the
        batch (inf for a new stream). Carries the last of each stream."""
        s, t, x = batch.stream, batch.time, batch.value
        held = self.weight[s]
        carried = held * np.exp(-self.rate * since_ms[start])
        centre = np.where(held > 0, self.mean[s], x[start])
        d = x - centre
        if first.all():  # live traffic: one reading per stream, no running sums needed
            weight = carried + 1.0
            mean = centre + d / weight
            second = (carried * self.var[s] + d * d) / weight if self.variance else None
        else:
            e = np.exp(self.rate * (t - t[start]))
            weight_sum = carried + segmented_cumsum(e, start)
            mean = centre + segmented_cumsum(e * d, start) / weight_sum
            second = None
            if self.variance:
                second = (carried * self.var[s] + segmented_cumsum(e * d * d, start)) / weight_sum
            weight = weight_sum / e
        var = np.zeros(len(x)) if second is None else np.maximum(second - (mean - centre) ** 2, 0)
        last = np.r_[np.flatnonzero(first[1:]), len(x) - 1]
        self.weight[s[last]], self.mean[s[last]], self.var[s[last]] = (
            weight[last],
            mean[last],
            var[last],
        )
        return mean, var, weight


class BaselineDetector:
    """One departure rule (e.g. 'spo2_below_baseline') over many streams."""

    def __init__(
        self,
        rule: str,
        *,
        baseline_half_life_s: float = 24 * 3600,
        level_half_life_s: float = 60,
        warm_up_s: float = 4 * 3600,
        warm_up_readings: float = 600,
        ignore_flags: int = int(Quality.INVALID),
    ) -> None:
        self.rule = rule
        self.ignore_flags = ignore_flags
        self.warm_up_ms = round(warm_up_s * 1000)
        self.warm_up_readings = warm_up_readings
        """Weight of readings the baseline needs besides time: a day of spot checks every
        hour is not a baseline."""
        self.baseline = _Mean(baseline_half_life_s, variance=True)
        self.level = _Mean(level_half_life_s, variance=False)
        self.first_time = np.zeros(0, dtype=np.int64)
        self.learned_time = np.zeros(0, dtype=np.int64)
        """Time of the stream's last usable reading, from which the means decay."""
        self.min_change = np.zeros(0)
        self.sd_multiple = np.zeros(0)
        self.condition = ThresholdDetector(rule, ignore_flags=0)

    def configure(
        self,
        stream: int,
        *,
        sides: str,
        min_change: float,
        sd_multiple: float,
        persist_s: float,
    ) -> None:
        """Departure when the level is ``sd_multiple`` standard deviations and at least
        ``min_change`` from the baseline, on ``sides``: 'above', 'below' or 'both'."""
        if sides not in ("above", "below", "both") or not min_change > 0 or not sd_multiple >= 0:
            raise ValueError(
                f"{self.rule}: sides is above, below or both; min_change > 0; sd_multiple >= 0"
            )
        above = {"high_on": 1.0, "high_off": 0.5} if sides != "below" else {}
        below = {"low_on": -1.0, "low_off": -0.5} if sides != "above" else {}
        self.condition.configure(stream, **above, **below, persist_s=persist_s)
        self._grow(stream + 1)
        self.min_change[stream] = min_change
        self.sd_multiple[stream] = sd_multiple

    def _grow(self, streams: int) -> None:
        extra = streams - len(self.min_change)
        if extra <= 0:
            return
        extra = max(extra, len(self.min_change), 1024)
        self.baseline.grow(extra)
        self.level.grow(extra)
        self.first_time = np.r_[self.first_time, np.full(extra, -1, np.int64)]
        self.learned_time = np.r_[self.learned_time, np.full(extra, -1, np.int64)]
        self.min_change = np.r_[self.min_change, np.full(extra, np.inf)]
        self.sd_multiple = np.r_[self.sd_multiple, np.zeros(extra)]

    def state(self) -> dict[str, npt.NDArray[Any]]:
        return {
            **self.condition.state(),
            "baseline_weight": self.baseline.weight,
            "baseline_mean": self.baseline.mean,
            "baseline_var": self.baseline.var,
            "level_weight": self.level.weight,
            "level_mean": self.level.mean,
            "first_time": self.first_time,
            "learned_time": self.learned_time,
        }

    def restore(self, state: dict[str, npt.NDArray[Any]]) -> None:
        self.condition.restore({k: state[k] for k in ThresholdDetector.STATE})
        streams = len(state["first_time"])
        self._grow(streams)
        for mean, prefix in ((self.baseline, "baseline"), (self.level, "level")):
            mean.weight[:streams] = state[f"{prefix}_weight"]
            mean.mean[:streams] = state[f"{prefix}_mean"]
        self.baseline.var[:streams] = state["baseline_var"]
        self.first_time[:streams] = state["first_time"]
        self.learned_time[:streams] = state["learned_time"]

    def score(self, batch: Readings) -> list[Event]:
        # What the condition will ignore (late readings, a second one at the same time)
        # must not teach the baseline either.
        batch = self.condition.unseen(batch)
        self._grow(self.condition.streams)
        _, start = batch.segments
        if not len(batch):
            return []
        span = (batch.time - batch.time[start]) * self.level.rate
        if span.max() <= _MAX_EXPONENT:
            return self._score_slice(batch)
        piece = (span // _MAX_EXPONENT).astype(np.int64)
        events = [
            e for k in np.unique(piece).tolist() for e in self._score_slice(batch.take(piece == k))
        ]
        events.sort(key=lambda e: (e.stream, e.time))
        return events

    def _score_slice(self, batch: Readings) -> list[Event]:
        usable = ~np.isnan(batch.value) & ((batch.flags & self.ignore_flags) == 0)
        ratio = np.full(len(batch), np.nan)
        level = np.full(len(batch), np.nan)
        base = np.full(len(batch), np.nan)
        sd = np.full(len(batch), np.nan)
        good = batch if usable.all() else batch.take(usable)
        if len(good):
            first, start = good.segments
            s, t = good.stream, good.time
            unseen = self.first_time[s[first]] < 0
            self.first_time[s[first][unseen]] = t[first][unseen]
            since = np.where(self.learned_time[s] >= 0, t - self.learned_time[s], np.inf)
            base_mean, base_var, weight = self.baseline.update(good, first, start, since)
            level_mean, _, _ = self.level.update(good, first, start, since)
            last = np.r_[np.flatnonzero(first[1:]), len(good) - 1]
            self.learned_time[s[last]] = t[last]
            warm = (t - self.first_time[s] >= self.warm_up_ms) & (weight >= self.warm_up_readings)
            deviation = np.sqrt(base_var)
            scale = np.maximum(self.sd_multiple[s] * deviation, self.min_change[s])
            ratio[usable] = np.where(warm, (level_mean - base_mean) / scale, np.nan)
            level[usable], base[usable], sd[usable] = level_mean, base_mean, deviation
        events = self.condition.score(Readings(batch.stream, batch.time, ratio, batch.flags))
        out = []
        for e in events:  # events are few: their evidence is looked up one by one
            i = batch.index_of(e.stream, e.time)
            evidence = {
                **{k: v for k, v in e.evidence.items() if k in ("onset", "persist_s")},
                "departure": round(e.value, 3),
                "level": round(float(level[i]), 2),
                "baseline": round(float(base[i]), 2),
                "baseline_sd": round(float(sd[i]), 2),
                "min_change": float(self.min_change[e.stream]),
                "sd_multiple": float(self.sd_multiple[e.stream]),
            }
            out.append(Event(e.kind, e.rule, e.stream, e.time, float(batch.value[i]), evidence))
        return out
