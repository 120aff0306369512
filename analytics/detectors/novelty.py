"""Multivariate novelty per patient: a minute unlike this patient's recent minutes.

Thresholds look at one vital sign at a time; a pulse of 105 with SpO2 of 92 can be ordinary
for one patient and new for another, and a change in how the two move together (pulse up
while SpO2 falls) says more than either. Each minute of a patient becomes a vector of four
features: mean pulse, mean SpO2, and their changes from the minute before. The model per
patient is river's ``covariance.EwaCovariance`` of those vectors (exponentially weighted,
so it follows slow drift, memory ``1 / fading_factor`` minutes) with the matching weighted
mean kept here in numpy; a minute's novelty is its squared Mahalanobis distance from them,
scored before the minute is learned. That distance is a derived series fed to the threshold
state machine: ``novel_d2`` or more for ``persist_s`` is a condition. Nothing is judged until
``warm_up_min`` minutes have been learned.

Why this model: river's anomaly detectors either need far more memory per patient
(HalfSpaceTrees: about 150 kB with 5 trees of height 6) or cannot enclose a region
(OneClassSVM is linear: it scored a minute 40 /min above normal as less anomalous than a
normal one). The covariance of four features is about 1.1 kB of Python objects per patient.

The minute is the patient's, across both streams: a patient-minute is complete when a
reading of a later minute arrives from either device. Gateways send a patient's devices
together, so a reading of a minute already completed is rare; it is left out of the means.
The Python loop is per completed patient-minute (1/120 of the readings at 1 Hz on two
devices), never per reading.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from typing import Any, ClassVar, Self

import numpy as np
import numpy.typing as npt
from river import covariance

from analytics.batch import Event, Readings
from analytics.detectors.base import Column, Detector, PerStream, Place
from analytics.detectors.threshold import ThresholdDetector, ThresholdRule
from analytics.quality import POOR_SIGNAL
from vigil import metrics
from vigil.wire.quality import Quality

MINUTE_MS = 60_000
FEATURES = ("pulse", "spo2", "pulse_change", "spo2_change")
_NONE = -1
_NEVER = np.iinfo(np.int64).min // 2


@dataclass(frozen=True, slots=True)
class NoveltyRule:
    """Squared Mahalanobis distance of a patient-minute of at least ``novel_d2`` from the
    patient's recent minutes, for ``persist_s``; nothing judged before ``warm_up_min``
    minutes have been learned. The numbers are the same for every patient."""

    name: str
    metrics: tuple[int, ...]
    persist_s: float = 180.0
    description: str = ""
    fading_factor: float = 1 / 720
    warm_up_min: int = 240
    novel_d2: float = 30.0
    ignore_flags: int = POOR_SIGNAL
    TUNABLE: ClassVar[tuple[str, ...]] = ()

    def detector(self) -> NoveltyDetector:
        return NoveltyDetector(self)


class _PatientMinutes(PerStream):
    """Per patient: the open minute's sums and counts, the previous minute, the model's mean
    and how many minutes it has learned."""

    minute = Column(np.int64, _NONE)
    sums = Column(np.float64, 0.0, width=2)
    counts = Column(np.float64, 0.0, width=2)
    previous = Column(np.float64, np.nan, width=2)
    previous_minute = Column(np.int64, _NEVER)
    mean = Column(np.float64, 0.0, width=4)
    learned = Column(np.int64, 0)


class NoveltyDetector(Detector[NoveltyRule]):
    patient = Column(np.int64, _NONE, saved=False)
    """Per stream: the patient's row, or -1 for a stream this rule does not watch."""
    feature = Column(np.int64, 0, saved=False)
    """Per stream: 0 pulse, 1 SpO2."""
    last_time = Column(np.int64, np.iinfo(np.int64).min)

    def __init__(self, rule: NoveltyRule) -> None:
        super().__init__()
        self.rule = rule.name
        self.fading_factor = rule.fading_factor
        self.warm_up_min = rule.warm_up_min
        self.novel_d2 = rule.novel_d2
        self.ignore_flags = rule.ignore_flags
        self.patients = _PatientMinutes()
        self.models: dict[int, covariance.EwaCovariance] = {}
        self.condition = ThresholdDetector(rule.name, ignore_flags=0)
        self._novel = ThresholdRule(
            rule.name,
            rule.metrics,
            high_on=rule.novel_d2,
            high_off=rule.novel_d2 / 2,
            persist_s=rule.persist_s,
        )

    def configure(self, stream: int, rule: NoveltyRule, place: Place) -> None:
        """A stream of the patient at ``place``: its pulse or SpO2 feeds their minutes (the
        condition is the patient's, across both devices)."""
        self.grow(stream + 1)
        self.patients.grow(place.patient + 1)
        self.patient[stream] = place.patient
        self.feature[stream] = 1 if place.metric == metrics.SPO2.id else 0
        self.condition.configure(place.patient, self._novel)

    @classmethod
    def for_contract(cls) -> Self:
        rule = NoveltyRule(
            "contract",
            (),
            persist_s=0,
            fading_factor=0.2,
            warm_up_min=1,
            novel_d2=2,
            ignore_flags=int(Quality.INVALID),
        )
        detector = cls(rule)
        for stream in range(6):
            metric = metrics.SPO2.id if stream % 2 else metrics.PULSE_RATE.id
            detector.configure(stream, rule, Place(stream // 2, metric))
        return detector

    def state(self) -> dict[str, npt.NDArray[Any]]:
        models = pickle.dumps(self.models)  # our own file: the checkpoint this service wrote
        return {**super().state(), "models": np.frombuffer(models, dtype=np.uint8)}

    def restore(self, state: dict[str, npt.NDArray[Any]]) -> None:
        super().restore(state)
        self.models = pickle.loads(state["models"].tobytes())

    def score(self, batch: Readings) -> list[Event]:
        if not len(batch):
            return []
        self.grow(int(batch.stream.max()) + 1)
        batch = batch.after(self.last_time)
        if not len(batch):
            return []
        first, _ = batch.segments
        last = np.r_[np.flatnonzero(first[1:]), len(batch) - 1]
        self.last_time[batch.stream[last]] = batch.time[last]
        patient = self.patient[batch.stream]
        usable = (patient >= 0) & ~np.isnan(batch.value) & ((batch.flags & self.ignore_flags) == 0)
        if not usable.any():
            return []
        # The patient's readings in time order, across both streams.
        index = np.flatnonzero(usable)
        p, t = patient[index], batch.time[index]
        order = np.lexsort((t, p))
        index, p, t = index[order], p[order], t[order]
        feature, value = self.feature[batch.stream[index]], batch.value[index]
        minute = t // MINUTE_MS
        current = self.patients.minute[p]
        on_time = minute >= current  # a minute already completed is left out
        index, p, t, minute = index[on_time], p[on_time], t[on_time], minute[on_time]
        feature, value = feature[on_time], value[on_time]
        if not len(p):
            return []
        # Groups of (patient, minute); each patient's last group stays open.
        new_group = np.ones(len(p), bool)
        new_group[1:] = (p[1:] != p[:-1]) | (minute[1:] != minute[:-1])
        starts = np.flatnonzero(new_group)
        g_patient, g_minute = p[starts], minute[starts]
        sums = np.stack(
            [np.add.reduceat(np.where(feature == f, value, 0.0), starts) for f in (0, 1)], 1
        )
        counts = np.stack(
            [np.add.reduceat((feature == f).astype(float), starts) for f in (0, 1)], 1
        )
        # Fold the open minute carried from earlier batches into a group of the same minute.
        head = np.ones(len(starts), bool)
        head[1:] = g_patient[1:] != g_patient[:-1]
        same = head & (g_minute == self.patients.minute[g_patient])
        sums[same] += self.patients.sums[g_patient[same]]
        counts[same] += self.patients.counts[g_patient[same]]
        completed: list[tuple[int, int, float, float, int]] = []
        """(patient, minute, pulse mean, SpO2 mean, index of the completing reading)"""
        carried_done = head & ~same & (self.patients.minute[g_patient] >= 0)
        for g in np.flatnonzero(carried_done).tolist():
            row = int(g_patient[g])
            c, s = self.patients.counts[row], self.patients.sums[row]
            completed.append(
                self._minute(row, int(self.patients.minute[row]), s, c, int(index[starts[g]]))
            )
        tail = np.ones(len(starts), bool)
        tail[:-1] = g_patient[1:] != g_patient[:-1]
        for g in np.flatnonzero(~tail).tolist():
            completed.append(
                self._minute(
                    int(g_patient[g]),
                    int(g_minute[g]),
                    sums[g],
                    counts[g],
                    int(index[starts[g + 1]]),
                )
            )
        rows = g_patient[tail]
        self.patients.minute[rows] = g_minute[tail]
        self.patients.sums[rows] = sums[tail]
        self.patients.counts[rows] = counts[tail]
        completed.sort(key=lambda c: (c[0], c[1]))
        return self._judge(batch, completed)

    @staticmethod
    def _minute(
        row: int, minute: int, sums: npt.NDArray[Any], counts: npt.NDArray[Any], at: int
    ) -> tuple[int, int, float, float, int]:
        with np.errstate(invalid="ignore", divide="ignore"):
            means = sums / counts
        return row, minute, float(means[0]), float(means[1]), at

    def _judge(
        self, batch: Readings, completed: list[tuple[int, int, float, float, int]]
    ) -> list[Event]:
        """Score each completed patient-minute with both vital signs, learn it, and run the
        distances through the condition."""
        rows, times, distances, at = [], [], [], []
        for row, minute, pulse, spo2, reading in completed:
            if np.isnan(pulse) or np.isnan(spo2):
                continue
            consecutive = self.patients.previous_minute[row] == minute - 1
            change = (
                np.array([pulse, spo2]) - self.patients.previous[row]
                if consecutive
                else np.zeros(2)
            )
            x = np.array([pulse, spo2, change[0], change[1]])
            self.patients.previous[row] = (pulse, spo2)
            self.patients.previous_minute[row] = minute
            rows.append(row)
            times.append(int(batch.time[reading]))
            distances.append(self._distance(row, x))
            at.append(reading)
            self._learn(row, x)
        if not rows:
            return []
        order = np.lexsort((np.asarray(times), np.asarray(rows)))
        derived = Readings(
            np.asarray(rows, np.int64)[order],
            np.asarray(times, np.int64)[order],
            np.asarray(distances)[order],
            np.zeros(len(rows), np.int32),
        )
        reading_of = {(rows[i], times[i]): at[i] for i in range(len(rows))}
        out = []
        for e in self.condition.score(derived):
            i = reading_of[(e.stream, e.time)]
            evidence = {
                **{k: v for k, v in e.evidence.items() if k in ("onset", "persist_s")},
                "mahalanobis_d2": round(e.value, 2),
                "novel_d2": self.novel_d2,
                "features": FEATURES,
                "model": "river covariance.EwaCovariance",
            }
            stream = int(batch.stream[i])
            out.append(Event(e.kind, self.rule, stream, e.time, float(batch.value[i]), evidence))
        out.sort(key=lambda e: (e.stream, e.time))
        return out

    def _distance(self, row: int, x: npt.NDArray[np.float64]) -> float:
        model = self.models.get(row)
        if model is None or self.patients.learned[row] < self.warm_up_min:
            return float("nan")
        cov = np.full((4, 4), np.nan)
        for (a, b), value in model.matrix.items():
            cov[FEATURES.index(a), FEATURES.index(b)] = cov[
                FEATURES.index(b), FEATURES.index(a)
            ] = value
        if not np.isfinite(cov).all():
            return float("nan")
        d = x - self.patients.mean[row]
        # a small ridge: a feature that has not moved (a very steady SpO2) is not infinitely
        # surprising when it moves by a point
        return float(d @ np.linalg.pinv(cov + np.eye(4) * 1e-3) @ d)

    def _learn(self, row: int, x: npt.NDArray[np.float64]) -> None:
        model = self.models.get(row)
        if model is None:
            model = self.models[row] = covariance.EwaCovariance(fading_factor=self.fading_factor)
            self.patients.mean[row] = x
        else:
            self.patients.mean[row] += self.fading_factor * (x - self.patients.mean[row])
        model.update(dict(zip(FEATURES, x.tolist(), strict=True)))
        self.patients.learned[row] += 1
