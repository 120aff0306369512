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
class Scripted:
    """An episode a simulated patient goes through: ``vital`` ('spo2' or 'heart_rate')
    moves to ``target`` from ``start_s`` (seconds after the wearables start), ramping over
    ``ramp_s``, holds for ``hold_s`` and ramps back. A desaturation to 84 % for a minute is
    ``Scripted("spo2", 84, start_s=10, hold_s=60)``."""

    vital: str
    target: float
    start_s: float
    hold_s: float
    ramp_s: float = 10.0

    def weight(self, t_s: float) -> float:
        """How far the vital sign is taken to the target at ``t_s`` (0 to 1)."""
        rise = (t_s - self.start_s) / self.ramp_s
        fall = (self.start_s + 2 * self.ramp_s + self.hold_s - t_s) / self.ramp_s
        return min(max(min(rise, fall, 1.0), 0.0), 1.0)


DEMO_SCRIPTS: dict[int, tuple[Scripted, ...]] = {
    0: (Scripted("spo2", 83, start_s=5, hold_s=90),),
    1: (Scripted("heart_rate", 158, start_s=10, hold_s=120, ramp_s=20),),
}
"""What `vigil demo` shows a clinician: the first patient desaturates to 83 % for a minute
and a half, the second's pulse climbs to 158 /min for two minutes; the others stay well."""


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
    script: tuple[Scripted, ...] = ()
    _elapsed_s: float = field(init=False, default=0.0)
    _hr: float = field(init=False)
    _spo2: float = field(init=False)
    _since_beat_ms: float = field(init=False, default=0.0)
    _beat_ms: float = field(init=False)

    def __post_init__(self) -> None:
        self._hr = self.baseline.heart_rate
        self._spo2 = self.baseline.spo2
        self._beat_ms = self._next_beat_ms()

    @classmethod
    def seeded(cls, seed: int, script: tuple[Scripted, ...] = ()) -> Physiology:
        rng = np.random.default_rng(seed)
        return cls(Baseline.random(rng), rng, script)

    def advance(self, dt_s: float) -> None:
        self._elapsed_s += dt_s
        hr_mean, hr_pull = self._steered("heart_rate", self.baseline.heart_rate, 0.05)
        spo2_mean, spo2_pull = self._steered("spo2", self.baseline.spo2, 0.1)
        self._hr = _ou_step(self._hr, hr_mean, hr_pull, 1.5, dt_s, self.rng)
        self._spo2 = _ou_step(self._spo2, spo2_mean, spo2_pull, 0.4, dt_s, self.rng)
        self._hr = min(max(self._hr, 35.0), 190.0)
        self._spo2 = min(max(self._spo2, 70.0), 100.0)

    def _steered(self, vital: str, mean: float, pull: float) -> tuple[float, float]:
        """The mean a vital sign reverts to now, and how fast: a scripted episode moves
        the mean and pulls harder, so the value follows its ramps; the wander around it
        stays the patient's own."""
        for episode in self.script:
            w = episode.weight(self._elapsed_s) if episode.vital == vital else 0.0
            if w > 0:
                mean, pull = mean * (1 - w) + episode.target * w, 0.5
        return mean, pull

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
