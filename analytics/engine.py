"""The scoring engine: a slot per (patient, metric) stream, the rule detectors, one call
per micro-batch.

Readings come in as columns (patient ids, metric ids, times, values, flags) from many
gateways at once. The engine maps them to stream slots with one pass per distinct
(patient, metric) pair, not per reading, sorts the batch once, and hands each detector the
readings of the metrics its rule watches. Events come back with their patient and metric.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from analytics.batch import Event, Readings
from analytics.config import PatientRules
from analytics.detectors.artefacts import LIMITS, ArtefactMarker
from analytics.detectors.base import Detector, Stateful
from analytics.detectors.baseline import BaselineDetector
from analytics.detectors.novelty import NoveltyDetector
from analytics.detectors.rate_of_change import RateOfChangeDetector
from analytics.detectors.signal_quality import SignalQualityDetector
from analytics.detectors.stale import StaleStreams
from analytics.detectors.threshold import ThresholdDetector
from analytics.rules import POOR_SIGNAL, SENSOR_PROBLEM, STALE_RULE, Rule, rules_for
from vigil import metrics

_METRIC_IDS = max(metrics.BY_ID) + 1


@dataclass(frozen=True, slots=True)
class PatientEvent:
    patient: str
    metric: str
    event: Event

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready, times as ISO 8601 UTC."""
        e = self.event
        evidence = dict(e.evidence)
        if "onset" in evidence:
            evidence["onset"] = _iso(int(evidence["onset"]))
        return {
            "patient": self.patient,
            "metric": self.metric,
            "rule": e.rule,
            "kind": e.kind,
            "time": _iso(e.time),
            "value": None if math.isnan(e.value) else e.value,
            "evidence": evidence,
        }


def _iso(ms: int) -> str:
    moment = datetime.fromtimestamp(ms / 1000, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Engine:
    def __init__(
        self,
        scale2_patients: Iterable[str] = (),
        optional_rules: Iterable[str] = (),
        patients: Mapping[str, PatientRules] | None = None,
    ) -> None:
        self.scale2 = set(scale2_patients)
        """Patients scored on NEWS2 SpO2 scale 2 (hypercapnic respiratory failure)."""
        self.optional = tuple(sorted(set(optional_rules)))
        """Optional rules (analytics.rules.OPTIONAL) on for every patient."""
        self.patients = dict(patients or {})
        """What differs from the defaults, per patient (see analytics.config)."""
        anyone = set(self.optional).union(*(c.optional for c in self.patients.values()))
        rules = rules_for(1, anyone) + rules_for(2, anyone)
        self.keys: list[tuple[str, int]] = []
        """(patient, metric id) of each stream slot."""
        self._patient_row: dict[str, int] = {}
        self._table = np.full((1024, _METRIC_IDS), -1, dtype=np.int64)
        """Slot of each (patient row, metric id); -1 where the stream has none yet."""
        self.detectors: dict[str, Detector] = {r.name: _detector(r) for r in rules}
        self._rule_metrics = {
            name: tuple(sorted({m for r in rules if r.name == name for m in r.metrics}))
            for name in self.detectors
        }
        self.artefacts = ArtefactMarker()
        self.silence = StaleStreams(STALE_RULE)
        self._slot_metric = np.zeros(1024, dtype=np.int64)
        """Metric id of each slot (capacity doubles as streams arrive)."""
        self.saved_at: int | None = None
        """Wall-clock epoch ms of the checkpoint this engine was loaded from."""

    def streams(self, patients: Sequence[str], metric: npt.NDArray[np.integer[Any]]) -> Any:
        """Slot of each reading's stream, new streams getting theirs and their rules.

        One dictionary lookup per reading on the patient id alone, then a numpy gather from
        a patient x metric table: building a (patient, metric) tuple per reading cost a
        third of the engine's time."""
        get = self._patient_row.get
        rows = np.fromiter(map(get, patients, itertools.repeat(-1)), np.int64, len(patients))
        metric = np.asarray(metric, dtype=np.int64)
        if (metric < 0).any() or (metric >= _METRIC_IDS).any():
            raise ValueError(f"metric ids are 0..{_METRIC_IDS - 1}")
        slots = np.where(rows >= 0, self._table[rows, metric], -1)
        for i in np.flatnonzero(slots < 0).tolist():
            slots[i] = self.slot(patients[i], int(metric[i]))
        return slots

    def slot(self, patient: str, metric: int) -> int:
        """The stream slot of (patient, metric), made with its rules if new."""
        row = self._patient_row.get(patient)
        if row is None:
            row = self._patient_row[patient] = len(self._patient_row)
            if row == len(self._table):
                self._table = np.r_[self._table, np.full_like(self._table, -1)]
        if self._table[row, metric] >= 0:
            return int(self._table[row, metric])
        slot = len(self.keys)
        self._table[row, metric] = slot
        self.keys.append((patient, metric))
        if slot == len(self._slot_metric):
            self._slot_metric = np.r_[self._slot_metric, np.zeros(slot, np.int64)]
        self._slot_metric[slot] = metric
        self.artefacts.configure(slot, LIMITS.get(metric))
        if metric in LIMITS:  # the vital signs; a battery level may be sparse
            self.silence.configure(slot)
        for rule in self.rules_of(patient):
            if metric in rule.metrics:
                self._configure(rule, slot, row)
        return slot

    def rules_of(self, patient: str) -> tuple[Rule, ...]:
        """The defaults, with the patient's scale, optional and disabled rules, and
        thresholds from their configuration."""
        config = self.patients.get(patient)
        if config is None:
            return rules_for(2 if patient in self.scale2 else 1, self.optional)
        scale = config.scale or (2 if patient in self.scale2 else 1)
        rules = rules_for(scale, {*self.optional, *config.optional})
        numbers: dict[str, dict[str, Any]] = dict(config.thresholds)  # floats, validated
        return tuple(
            dataclasses.replace(rule, **numbers.get(rule.name, {}))
            for rule in rules
            if rule.name not in config.disabled
        )

    def _configure(self, rule: Rule, slot: int, patient_row: int) -> None:
        detector = self.detectors[rule.name]
        if isinstance(detector, NoveltyDetector):
            feature = 1 if self._slot_metric[slot] == metrics.SPO2.id else 0
            detector.configure(slot, patient=patient_row, feature=feature)
        elif isinstance(detector, SignalQualityDetector):
            detector.configure(slot, persist_s=rule.persist_s)
        elif isinstance(detector, BaselineDetector):
            detector.configure(
                slot,
                sides=rule.sides,
                min_change=rule.departure,
                sd_multiple=rule.sd_multiple,
                persist_s=rule.persist_s,
            )
        elif isinstance(detector, RateOfChangeDetector):
            detector.configure(
                slot, rise=rule.rise, clear_below=rule.clear_below, persist_s=rule.persist_s
            )
        elif isinstance(detector, ThresholdDetector):
            detector.configure(
                slot,
                low_on=rule.low_on,
                low_off=rule.low_off,
                high_on=rule.high_on,
                high_off=rule.high_off,
                persist_s=rule.persist_s,
            )

    def stateful(self) -> list[tuple[str, Stateful]]:
        """Everything a checkpoint keeps, by name."""
        return [("artefacts", self.artefacts), ("silence", self.silence), *self.detectors.items()]

    def score(
        self,
        patients: Sequence[str],
        metric: npt.ArrayLike,
        time: npt.ArrayLike,
        value: npt.ArrayLike,
        flags: npt.ArrayLike | None = None,
    ) -> list[PatientEvent]:
        metric = np.asarray(metric, dtype=np.int64)
        if not len(metric):
            return []
        batch = Readings.sorted(self.streams(patients, metric), time, value, flags)
        batch = self.artefacts.mark(batch)
        reading_metric = self._slot_metric[batch.stream]
        watched: dict[tuple[int, ...], Readings] = {}  # rules share their metric sets
        out = self._named(self.silence.score(batch))
        for name, detector in self.detectors.items():
            group = self._rule_metrics[name]
            if group not in watched:
                watched[group] = batch.take(np.isin(reading_metric, group))
            if len(watched[group]):
                out += self._named(detector.score(watched[group]))
        out.sort(key=lambda p: (p.event.time, p.patient, p.event.rule))
        return out

    def score_recorded(
        self,
        patients: Sequence[str],
        metric: npt.ArrayLike,
        time: npt.ArrayLike,
        value: npt.ArrayLike,
        flags: npt.ArrayLike,
    ) -> list[PatientEvent]:
        """Score readings in time order from a recording, with the clock following the data:
        where a stream would fall silent before the next reading, :meth:`tick` at that
        moment, so replay reports silences as the live service would."""
        time = np.asarray(time, dtype=np.int64)
        metric, value, flags = np.asarray(metric), np.asarray(value), np.asarray(flags)
        out: list[PatientEvent] = []
        a, n = 0, len(time)
        while a < n:
            due = self.silence.next_due()
            if due is not None and due <= time[a]:
                out += self.tick(due)
                continue
            # No stream seen from here on can fall silent before stale_s after it.
            limit = int(time[a]) + self.silence.stale_ms
            b = int(np.searchsorted(time, limit if due is None else min(due, limit)))
            out += self.score(patients[a:b], metric[a:b], time[a:b], value[a:b], flags[a:b])
            a = b
        return out

    def tick(self, now_ms: int) -> list[PatientEvent]:
        """What the clock says: streams silent for too long (see
        :mod:`analytics.detectors.stale`). The service calls it every second."""
        return self._named(self.silence.tick(now_ms))

    def _named(self, events: list[Event]) -> list[PatientEvent]:
        out = []
        for event in events:
            patient, m = self.keys[event.stream]
            out.append(PatientEvent(patient, metrics.BY_ID[m].name, event))
        return out


def _detector(rule: Rule) -> Detector:
    if rule.novelty:
        return NoveltyDetector(rule.name, persist_s=rule.persist_s, ignore_flags=POOR_SIGNAL)
    if rule.technical:
        return SignalQualityDetector(rule.name, SENSOR_PROBLEM)
    if rule.is_baseline:
        return BaselineDetector(rule.name, ignore_flags=POOR_SIGNAL)
    if rule.is_rate_of_change:
        return RateOfChangeDetector(rule.name, rule.window_min, ignore_flags=POOR_SIGNAL)
    return ThresholdDetector(rule.name, ignore_flags=POOR_SIGNAL)


def save_checkpoint(engine: Engine, path: Path) -> None:
    """The engine's streams and every detector's state, written atomically (numpy .npz),
    so a restarted service resumes without a cold start."""
    arrays: dict[str, Any] = {
        "patients": np.asarray([p for p, _ in engine.keys], dtype=str),
        "metrics": np.asarray([m for _, m in engine.keys], dtype=np.int64),
        "scale2": np.asarray(sorted(engine.scale2), dtype=str),
        "optional": np.asarray(engine.optional, dtype=str),
        "saved_at": np.asarray(time.time_ns() // 1_000_000, dtype=np.int64),
    }
    for name, detector in engine.stateful():
        for key, array in detector.state().items():
            arrays[f"{name}.{key}"] = array
    temporary = path.with_name(path.name + ".tmp")
    with open(temporary, "wb") as out:
        np.savez(out, **arrays)
    os.replace(temporary, path)


def load_checkpoint(
    path: Path,
    scale2: Iterable[str] | None = None,
    patients: Mapping[str, PatientRules] | None = None,
) -> Engine:
    """The engine saved at ``path``; with ``scale2`` and ``patients``, the rules as
    configured now rather than as they were when it was saved (state is kept, thresholds
    are rebuilt)."""
    with np.load(path) as saved:
        engine = Engine(
            saved["scale2"].tolist() if scale2 is None else scale2,
            saved["optional"].tolist() if "optional" in saved.files else (),
            patients,
        )
        if "saved_at" in saved.files:
            engine.saved_at = int(saved["saved_at"])
        for patient, metric in zip(
            saved["patients"].tolist(), saved["metrics"].tolist(), strict=True
        ):
            engine.slot(patient, metric)
        for name, detector in engine.stateful():
            keys = [k.split(".", 1)[1] for k in saved.files if k.startswith(f"{name}.")]
            if keys:
                detector.restore({k: saved[f"{name}.{k}"] for k in keys})
    return engine
