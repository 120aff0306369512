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

from dataclasses import dataclass
from typing import ClassVar, Literal, Self

import numpy as np
import numpy.typing as npt

from analytics.batch import Event, Readings, segmented_cumsum
from analytics.detectors.base import Column, Detector, PerStream, Place
from analytics.detectors.threshold import ThresholdDetector, ThresholdRule
from analytics.quality import POOR_SIGNAL
from vigil.wire.quality import Quality

_MAX_EXPONENT = 4.0
"""Largest lambda * (t - t_0) within one slice: weights up to e**4 keep the running sums
of a 100,000-stream batch exact to far below a tenth of a unit."""
_SIDES = ("above", "below", "both")


@dataclass(frozen=True, slots=True)
class BaselineRule:
    """The patient's level at least ``departure`` and ``sd_multiple`` of their standard
    deviations from their own baseline, on ``sides``, for ``persist_s``."""

    name: str
    metrics: tuple[int, ...]
    departure: float
    sides: Literal["above", "below", "both"] = "both"
    sd_multiple: float = 3.0
    persist_s: float = 0.0
    description: str = ""
    baseline_half_life_s: float = 24 * 3600
    level_half_life_s: float = 60
    warm_up_s: float = 4 * 3600
    warm_up_readings: float = 600
    """Weight of readings the baseline needs besides time: a day of spot checks every
    hour is not a baseline."""
    ignore_flags: int = POOR_SIGNAL
    TUNABLE: ClassVar[tuple[str, ...]] = ("departure", "sd_multiple", "persist_s")

    def __post_init__(self) -> None:
        if self.sides not in _SIDES or not self.departure > 0 or not self.sd_multiple >= 0:
            raise ValueError(
                f"{self.name}: sides is above, below or both; departure > 0; sd_multiple >= 0"
            )

    def detector(self) -> BaselineDetector:
        return BaselineDetector(self)


class _Mean(PerStream):
    """Per-stream exponentially weighted mean (and optionally variance) in arrays."""

    weight = Column(np.float64, 0.0)
    mean = Column(np.float64, 0.0)
    var = Column(np.float64, 0.0)

    def __init__(self, half_life_s: float, variance: bool) -> None:
        super().__init__()
        self.rate = np.log(2) / (half_life_s * 1000)  # per millisecond
        self.variance = variance

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


class BaselineDetector(Detector[BaselineRule]):
    """One departure rule (e.g. 'spo2_below_baseline') over many streams."""

    first_time = Column(np.int64, -1)
    learned_time = Column(np.int64, -1)
    """Time of the stream's last usable reading, from which the means decay."""
    min_change = Column(np.float64, np.inf, saved=False)
    sd_multiple = Column(np.float64, 0.0, saved=False)

    def __init__(self, rule: BaselineRule) -> None:
        super().__init__()
        self.rule = rule.name
        self.ignore_flags = rule.ignore_flags
        self.warm_up_ms = round(rule.warm_up_s * 1000)
        self.warm_up_readings = rule.warm_up_readings
        self.baseline = _Mean(rule.baseline_half_life_s, variance=True)
        self.level = _Mean(rule.level_half_life_s, variance=False)
        self.condition = ThresholdDetector(rule.name, ignore_flags=0)

    def configure(self, stream: int, rule: BaselineRule, place: Place | None = None) -> None:
        """The departure ratio (level - baseline) / max(sd_multiple SD, departure) enters at
        1 on a watched side and clears back below 0.5."""
        above, below = rule.sides != "below", rule.sides != "above"
        ratio = ThresholdRule(
            rule.name,
            rule.metrics,
            low_on=-1.0 if below else None,
            low_off=-0.5 if below else None,
            high_on=1.0 if above else None,
            high_off=0.5 if above else None,
            persist_s=rule.persist_s,
        )
        self.condition.configure(stream, ratio)
        self.grow(stream + 1)
        self.min_change[stream] = rule.departure
        self.sd_multiple[stream] = rule.sd_multiple

    def grow(self, rows: int) -> None:
        super().grow(rows)
        self.baseline.grow(rows)
        self.level.grow(rows)

    @classmethod
    def for_contract(cls) -> Self:
        rule = BaselineRule(
            "contract",
            (),
            departure=3,
            sd_multiple=0.5,
            persist_s=5,
            baseline_half_life_s=60,
            level_half_life_s=5,
            warm_up_s=20,
            warm_up_readings=5,
            ignore_flags=int(Quality.INVALID),
        )
        detector = cls(rule)
        for stream in range(6):
            detector.configure(stream, rule)
        return detector

    def score(self, batch: Readings) -> list[Event]:
        # What the condition will ignore (late readings, a second one at the same time)
        # must not teach the baseline either.
        batch = self.condition.unseen(batch)
        self.grow(self.condition.rows)
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
