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
from typing import Any

import numpy as np
import numpy.typing as npt
from river import covariance

from analytics.batch import Event, Readings
from analytics.detectors.threshold import ThresholdDetector
from vigil.wire.quality import Quality

MINUTE_MS = 60_000
FEATURES = ("pulse", "spo2", "pulse_change", "spo2_change")
_NONE = -1
_NEVER = np.iinfo(np.int64).min // 2


class NoveltyDetector:
    def __init__(
        self,
        rule: str,
        *,
        fading_factor: float = 1 / 720,
        warm_up_min: int = 240,
        novel_d2: float = 30.0,
        persist_s: float = 180.0,
        ignore_flags: int = int(Quality.INVALID),
    ) -> None:
        self.rule = rule
        self.fading_factor = fading_factor
        self.warm_up_min = warm_up_min
        self.novel_d2 = novel_d2
        self.persist_s = persist_s
        self.ignore_flags = ignore_flags
        self.patient = np.zeros(0, np.int64)
        """Per stream: the patient's row, or -1 for a stream this rule does not watch."""
        self.feature = np.zeros(0, np.int64)
        """Per stream: 0 pulse, 1 SpO2."""
        self.last_time = np.zeros(0, np.int64)
        # per patient row
        self.minute = np.zeros(0, np.int64)
        self.sums = np.zeros((0, 2))
        self.counts = np.zeros((0, 2))
        self.previous = np.zeros((0, 2))
        self.previous_minute = np.zeros(0, np.int64)
        self.mean = np.zeros((0, 4))
        self.learned = np.zeros(0, np.int64)
        self.models: dict[int, covariance.EwaCovariance] = {}
        self.condition = ThresholdDetector(rule, ignore_flags=0)

    def configure(self, stream: int, *, patient: int, feature: int) -> None:
        if feature not in (0, 1):
            raise ValueError(f"{self.rule}: feature is 0 (pulse) or 1 (SpO2)")
        self._grow_streams(stream + 1)
        self._grow_patients(patient + 1)
        self.patient[stream] = patient
        self.feature[stream] = feature
        self.condition.configure(
            patient, high_on=self.novel_d2, high_off=self.novel_d2 / 2, persist_s=self.persist_s
        )

    def _grow_streams(self, n: int) -> None:
        extra = n - len(self.patient)
        if extra > 0:
            extra = max(extra, len(self.patient), 1024)
            self.patient = np.r_[self.patient, np.full(extra, _NONE)]
            self.feature = np.r_[self.feature, np.zeros(extra, np.int64)]
            self.last_time = np.r_[self.last_time, np.full(extra, np.iinfo(np.int64).min)]

    def _grow_patients(self, n: int) -> None:
        extra = n - len(self.minute)
        if extra > 0:
            extra = max(extra, len(self.minute), 1024)
            self.minute = np.r_[self.minute, np.full(extra, _NONE)]
            self.sums = np.r_[self.sums, np.zeros((extra, 2))]
            self.counts = np.r_[self.counts, np.zeros((extra, 2))]
            self.previous = np.r_[self.previous, np.full((extra, 2), np.nan)]
            self.previous_minute = np.r_[self.previous_minute, np.full(extra, _NEVER)]
            self.mean = np.r_[self.mean, np.zeros((extra, 4))]
            self.learned = np.r_[self.learned, np.zeros(extra, np.int64)]

    _ARRAYS = ("last_time", "minute", "sums", "counts", "previous", "previous_minute")

    def state(self) -> dict[str, npt.NDArray[Any]]:
        models = pickle.dumps(self.models)  # our own file: the checkpoint this service wrote
        return {
            **{f"condition_{k}": v for k, v in self.condition.state().items()},
            **{name: getattr(self, name) for name in (*self._ARRAYS, "mean", "learned")},
            "models": np.frombuffer(models, dtype=np.uint8),
        }

    def restore(self, state: dict[str, npt.NDArray[Any]]) -> None:
        self.condition.restore({k: state[f"condition_{k}"] for k in ThresholdDetector.STATE})
        self._grow_streams(len(state["last_time"]))
        self._grow_patients(len(state["minute"]))
        for name in (*self._ARRAYS, "mean", "learned"):
            saved = state[name]
            getattr(self, name)[: len(saved)] = saved
        self.models = pickle.loads(state["models"].tobytes())

    def score(self, batch: Readings) -> list[Event]:
        if not len(batch):
            return []
        self._grow_streams(int(batch.stream.max()) + 1)
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
        current = self.minute[p]
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
        same = head & (g_minute == self.minute[g_patient])
        sums[same] += self.sums[g_patient[same]]
        counts[same] += self.counts[g_patient[same]]
        completed: list[tuple[int, int, float, float, int]] = []
        """(patient, minute, pulse mean, SpO2 mean, index of the completing reading)"""
        carried_done = head & ~same & (self.minute[g_patient] >= 0)
        for g in np.flatnonzero(carried_done).tolist():
            row = int(g_patient[g])
            c, s = self.counts[row], self.sums[row]
            completed.append(self._minute(row, int(self.minute[row]), s, c, int(index[starts[g]])))
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
        self.minute[rows] = g_minute[tail]
        self.sums[rows] = sums[tail]
        self.counts[rows] = counts[tail]
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
            consecutive = self.previous_minute[row] == minute - 1
            change = np.array([pulse, spo2]) - self.previous[row] if consecutive else np.zeros(2)
            x = np.array([pulse, spo2, change[0], change[1]])
            self.previous[row] = (pulse, spo2)
            self.previous_minute[row] = minute
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
        if model is None or self.learned[row] < self.warm_up_min:
            return float("nan")
        cov = np.full((4, 4), np.nan)
        for (a, b), value in model.matrix.items():
            cov[FEATURES.index(a), FEATURES.index(b)] = cov[
                FEATURES.index(b), FEATURES.index(a)
            ] = value
        if not np.isfinite(cov).all():
            return float("nan")
        d = x - self.mean[row]
        # a small ridge: a feature that has not moved (a very steady SpO2) is not infinitely
        # surprising when it moves by a point
        return float(d @ np.linalg.pinv(cov + np.eye(4) * 1e-3) @ d)

    def _learn(self, row: int, x: npt.NDArray[np.float64]) -> None:
        model = self.models.get(row)
        if model is None:
            model = self.models[row] = covariance.EwaCovariance(fading_factor=self.fading_factor)
            self.mean[row] = x
        else:
            self.mean[row] += self.fading_factor * (x - self.mean[row])
        model.update(dict(zip(FEATURES, x.tolist(), strict=True)))
        self.learned[row] += 1
