"""A patient's vital signs over time, for the simulated wearables.

Each vital sign is a mean-reverting random walk (Ornstein-Uhlenbeck) around the patient's
own baseline: values wander the way real ones do, stay in a physiological band, and two
patients never look the same. Heart rate drives the beat-to-beat (RR) intervals, with a
little variability, so the chest strap's RR list and its heart rate agree.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True, slots=True)
class Baseline:
    heart_rate: float = 72.0
    spo2: float = 97.0

    @classmethod
    def random(cls, rng: np.random.Generator) -> Baseline:
        return cls(heart_rate=float(rng.uniform(58, 88)), spo2=float(rng.uniform(94.5, 98.5)))


@dataclass(frozen=True, slots=True)
class CardiacSample:
    heart_rate: int
    rr_intervals_ms: tuple[float, ...]
    contact: bool


@dataclass(frozen=True, slots=True)
class OximetrySample:
    spo2: int
    pulse_rate: int


@dataclass
class Physiology:
    """Steps forward in time; one instance per simulated patient."""

    baseline: Baseline
    rng: np.random.Generator
    _hr: float = field(init=False)
    _spo2: float = field(init=False)
    _since_beat_ms: float = field(init=False, default=0.0)
    _beat_ms: float = field(init=False)

    def __post_init__(self) -> None:
        self._hr = self.baseline.heart_rate
        self._spo2 = self.baseline.spo2
        self._beat_ms = self._next_beat_ms()

    @classmethod
    def seeded(cls, seed: int) -> Physiology:
        rng = np.random.default_rng(seed)
        return cls(Baseline.random(rng), rng)

    def advance(self, dt_s: float) -> None:
        self._hr = _ou_step(self._hr, self.baseline.heart_rate, 0.05, 1.5, dt_s, self.rng)
        self._spo2 = _ou_step(self._spo2, self.baseline.spo2, 0.1, 0.4, dt_s, self.rng)
        self._hr = min(max(self._hr, 35.0), 190.0)
        self._spo2 = min(max(self._spo2, 70.0), 100.0)

    def cardiac(self, dt_s: float) -> CardiacSample:
        """Beats that ended in the last ``dt_s`` seconds, as a chest strap reports them."""
        self._since_beat_ms += dt_s * 1000
        rr: list[float] = []
        while self._since_beat_ms >= self._beat_ms:
            self._since_beat_ms -= self._beat_ms
            rr.append(self._beat_ms)
            self._beat_ms = self._next_beat_ms()
        return CardiacSample(round(self._hr), tuple(rr), contact=True)

    def _next_beat_ms(self) -> float:
        return 60_000.0 / self._hr * (1 + 0.03 * float(self.rng.standard_normal()))

    def oximetry(self) -> OximetrySample:
        pulse = self._hr + float(self.rng.normal(0, 1.0))
        return OximetrySample(round(self._spo2), round(pulse))


def _ou_step(
    x: float, mean: float, theta: float, sigma: float, dt: float, rng: np.random.Generator
) -> float:
    return x + theta * (mean - x) * dt + sigma * np.sqrt(dt) * float(rng.standard_normal())
