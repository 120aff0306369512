"""The scoring engine: a slot per (patient, metric) stream, the rule detectors, one call
per micro-batch.

Readings come in as columns (patient ids, metric ids, times, values, flags) from many
gateways at once. The engine maps them to stream slots with one pass per distinct
(patient, metric) pair, not per reading, sorts the batch once, and hands each detector the
readings of the metrics its rule watches. Events come back with their patient and metric.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import numpy.typing as npt

from analytics.batch import Event, Readings
from analytics.detectors.threshold import ThresholdDetector
from analytics.rules import RULE_NAMES, Rule, rules_for
from vigil import metrics


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
            "value": e.value,
            "evidence": evidence,
        }


def _iso(ms: int) -> str:
    moment = datetime.fromtimestamp(ms / 1000, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Engine:
    def __init__(self, scale2_patients: Iterable[str] = ()) -> None:
        self.scale2 = set(scale2_patients)
        """Patients scored on NEWS2 SpO2 scale 2 (hypercapnic respiratory failure)."""
        self.slots: dict[tuple[str, int], int] = {}
        self.keys: list[tuple[str, int]] = []
        self.detectors = {name: ThresholdDetector(name) for name in RULE_NAMES}
        self._rule_metrics = {
            name: sorted(
                {m for r in rules_for(1) + rules_for(2) if r.name == name for m in r.metrics}
            )
            for name in RULE_NAMES
        }
        self._slot_metric = np.zeros(1024, dtype=np.int64)
        """Metric id of each slot (capacity doubles as streams arrive)."""

    def streams(self, patients: Sequence[str], metric: npt.NDArray[np.integer[Any]]) -> Any:
        """Slot of each reading's stream, new streams getting theirs and their rules."""
        names, patient_index = np.unique(np.asarray(patients, dtype=object), return_inverse=True)
        pair = patient_index.astype(np.int64) * 256 + np.asarray(metric, dtype=np.int64)
        pairs, inverse = np.unique(pair, return_inverse=True)
        slots = np.empty(len(pairs), dtype=np.int64)
        for j, code in enumerate(pairs.tolist()):
            key = (str(names[code // 256]), code % 256)
            slot = self.slots.get(key)
            if slot is None:
                slot = self._add(key)
            slots[j] = slot
        return slots[inverse]

    def _add(self, key: tuple[str, int]) -> int:
        slot = len(self.keys)
        self.slots[key] = slot
        self.keys.append(key)
        patient, metric = key
        if slot == len(self._slot_metric):
            self._slot_metric = np.r_[self._slot_metric, np.zeros(slot, np.int64)]
        self._slot_metric[slot] = metric
        for rule in rules_for(2 if patient in self.scale2 else 1):
            if metric in rule.metrics:
                self._configure(rule, slot)
        return slot

    def _configure(self, rule: Rule, slot: int) -> None:
        self.detectors[rule.name].configure(
            slot,
            low_on=rule.low_on,
            low_off=rule.low_off,
            high_on=rule.high_on,
            high_off=rule.high_off,
            persist_s=rule.persist_s,
        )

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
        reading_metric = self._slot_metric[batch.stream]
        out = []
        for name, detector in self.detectors.items():
            mask = np.isin(reading_metric, self._rule_metrics[name])
            if mask.any():
                for event in detector.score(batch.take(mask)):
                    patient, m = self.keys[event.stream]
                    out.append(PatientEvent(patient, metrics.BY_ID[m].name, event))
        out.sort(key=lambda p: (p.event.time, p.patient, p.event.rule))
        return out
