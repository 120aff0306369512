"""Signal quality: a stream whose readings keep arriving without a usable value.

No skin contact, a probe off the finger, a sensor fault, motion or a questionable pulse:
the device says so in each reading's quality flags (and NaN is no value at all). Clinical
rules ignore such readings, so a probe that fell off never looks like a desaturation; this
detector turns their persistence into a technical condition ('check the sensor') for the
patient and the care team. The derived series is 1 for a poor reading and 0 for a good one,
fed to the threshold state machine: poor for ``persist_s`` raises it, one good reading
clears it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Self

import numpy as np

from analytics.batch import Event, Readings
from analytics.detectors.base import Detector, Place
from analytics.detectors.threshold import ThresholdDetector, ThresholdRule
from analytics.quality import SENSOR_PROBLEM
from vigil.wire.events import EventKind
from vigil.wire.quality import Quality


@dataclass(frozen=True, slots=True)
class SignalQualityRule:
    """Readings with any of ``poor_flags`` (or no value) for ``persist_s``."""

    name: str
    metrics: tuple[int, ...]
    persist_s: float
    description: str = ""
    poor_flags: int = SENSOR_PROBLEM
    TUNABLE: ClassVar[tuple[str, ...]] = ("persist_s",)

    def detector(self) -> SignalQualityDetector:
        return SignalQualityDetector(self.name, self.poor_flags)


class SignalQualityDetector(Detector[SignalQualityRule]):
    def __init__(self, rule: str, poor_flags: int) -> None:
        super().__init__()
        self.rule = rule
        self.poor_flags = poor_flags
        self.condition = ThresholdDetector(rule, ignore_flags=0)

    def configure(self, stream: int, rule: SignalQualityRule, place: Place | None = None) -> None:
        poor = ThresholdRule(
            rule.name, rule.metrics, high_on=0.5, high_off=0.5, persist_s=rule.persist_s
        )
        self.condition.configure(stream, poor)

    @classmethod
    def for_contract(cls) -> Self:
        rule = SignalQualityRule("contract", (), persist_s=3, poor_flags=int(Quality.NO_CONTACT))
        detector = cls("contract", rule.poor_flags)
        for stream in range(6):
            detector.configure(stream, rule)
        return detector

    def score(self, batch: Readings) -> list[Event]:
        poor = np.isnan(batch.value) | ((batch.flags & self.poor_flags) != 0)
        derived = Readings(batch.stream, batch.time, poor.astype(np.float64), batch.flags)
        events = self.condition.score(derived)
        out = []
        for e in events:
            evidence = {"poor_flags": self.poor_flags, "persist_s": e.evidence.get("persist_s")}
            if e.kind != EventKind.CLEARED:
                evidence["onset"] = e.evidence["onset"]
            out.append(Event(e.kind, e.rule, e.stream, e.time, e.value, evidence))
        return out
