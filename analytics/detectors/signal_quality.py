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

from typing import Any

import numpy as np
import numpy.typing as npt

from analytics.batch import Event, Readings
from analytics.detectors.threshold import ThresholdDetector


class SignalQualityDetector:
    def __init__(self, rule: str, poor_flags: int) -> None:
        self.rule = rule
        self.poor_flags = poor_flags
        self.condition = ThresholdDetector(rule, ignore_flags=0)

    def configure(self, stream: int, *, persist_s: float) -> None:
        self.condition.configure(stream, high_on=0.5, high_off=0.5, persist_s=persist_s)

    def state(self) -> dict[str, npt.NDArray[Any]]:
        return self.condition.state()

    def restore(self, state: dict[str, npt.NDArray[Any]]) -> None:
        self.condition.restore(state)

    def score(self, batch: Readings) -> list[Event]:
        poor = np.isnan(batch.value) | ((batch.flags & self.poor_flags) != 0)
        derived = Readings(batch.stream, batch.time, poor.astype(np.float64), batch.flags)
        events = self.condition.score(derived)
        out = []
        for e in events:
            evidence = {"poor_flags": self.poor_flags, "persist_s": e.evidence.get("persist_s")}
            if e.kind != "cleared":
                evidence["onset"] = e.evidence["onset"]
            out.append(Event(e.kind, e.rule, e.stream, e.time, e.value, evidence))
        return out
