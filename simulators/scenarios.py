"""Labelled scenarios: simulated patient-days at 1 Hz with the events a detector must catch
and the artefacts it must not be fooled by, marked where they are.

Every patient has a day of ordinary physiology, with what real nights show
(``../shared/real-vitals``): heart rate and SpO2 wandering around their own baseline (AR(1)
noise over a minute and a slow drift over hours, measurement noise, rounded as devices
report them and held for 1-4 s by devices that refresh slowly); a night of sleep (pulse
8-14 /min lower, SpO2 a point or two lower, REM periods another point lower for 10-25
minutes, and up to a dozen brief dips of 2-6 points an hour, which put a sleeper at 88-92 %
for tens of seconds again and again); a few bouts of activity (pulse 15-40 /min up for 5-40
minutes); motion bursts, mostly while awake; and readings lost for seconds to minutes, now
and then, as a home's Bluetooth loses them. A scenario adds one kind of trouble on top:

- ``desaturation``: SpO2 ramps down to a nadir of 75-87.5 %, holds, and ramps back; labelled
  where the clean signal is below 88 %, each 30-180 s long;
- ``tachycardia`` / ``bradycardia``: pulse above 130 (135-165) or below 40 (30-37) for
  1-10 minutes, labelled where the clean signal is past 130 / 40;
- ``motion``: bursts of 3-25 s of nonsense (SpO2 5-20 points low, pulse doubled or halved),
  half of them flagged by the oximeter as motion, half not, as with real devices;
- ``sensor_off``: 1-30 minutes with the probe off the finger and the strap without contact
  (flagged, no value), labelled for the technical 'check the sensor' rule;
- ``dropout``: 30 s to 30 minutes with no readings at all from one device or both,
  labelled when five minutes or longer (for the technical 'no data' rule);
- ``normal``: nothing but the day itself.

Labels are intervals of the *clean* signal (before measurement noise): the time a clinician
would say the condition began and ended. What the ordinary day does by itself past the
evaluation's definitions (a sleeper's dip below 88 % for 30 s) is labelled as well: it is an
event, whichever scenario it happens in. Values are generated with numpy in whole arrays,
so a hundred patient-days take seconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
from scipy.signal import lfilter

from analytics.evaluation import signal_events
from vigil import metrics
from vigil.wire.quality import Quality

KINDS = ("desaturation", "tachycardia", "bradycardia", "motion", "sensor_off", "dropout", "normal")
T0_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z, the day starts at midnight
HR, SPO2 = metrics.HEART_RATE.id, metrics.SPO2.id


@dataclass(frozen=True, slots=True)
class Episode:
    """A labelled condition: ``kind`` is one of desaturation, tachycardia, bradycardia,
    sensor_off, dropout; times in epoch milliseconds."""

    kind: str
    start: int
    end: int


@dataclass
class PatientRecord:
    patient: str
    scenario: str
    hours: float
    metric: npt.NDArray[np.int64]
    time: npt.NDArray[np.int64]
    value: npt.NDArray[np.float64]
    flags: npt.NDArray[np.int32]
    episodes: list[Episode] = field(default_factory=list)


def generate(scenario: str, patient: str, seed: int, hours: float = 24) -> PatientRecord:
    if scenario not in KINDS:
        raise ValueError(f"unknown scenario {scenario!r}: one of {', '.join(KINDS)}")
    rng = np.random.default_rng(seed)
    day = _Day(rng, int(hours * 3600))
    episodes: list[Episode] = []
    if scenario == "desaturation":
        episodes = day.desaturations()
    elif scenario in ("tachycardia", "bradycardia"):
        episodes = day.pulse_excursions(high=scenario == "tachycardia")
    elif scenario == "motion":
        day.motion()
    elif scenario == "sensor_off":
        episodes = day.sensor_off()
    elif scenario == "dropout":
        episodes = day.dropouts()
    return day.record(patient, scenario, hours, episodes)


class _Day:
    def __init__(self, rng: np.random.Generator, seconds: int) -> None:
        self.rng = rng
        self.n = seconds
        self.t = np.arange(seconds)
        self.hr_base = float(rng.uniform(58, 88))
        self.spo2_base = float(rng.uniform(94.5, 98.5))
        hour = self.t / 3600 % 24
        asleep = trapezoid(hour, 23.0, 7.0 + 24, ramp=0.3) + trapezoid(hour + 24, 23, 31, 0.3)
        self.asleep = asleep
        slower = min(float(rng.uniform(8, 14)), self.hr_base - 50)  # asleep: 50 /min or more
        self.hr = (
            self.hr_base
            - slower * asleep
            + _ar1(rng, seconds, sigma=3.0, tau_s=60)
            + _ar1(rng, seconds, sigma=2.0, tau_s=7200)
            + self._bouts(asleep)
        )
        self.spo2 = (
            self.spo2_base
            - rng.uniform(0.8, 1.8) * asleep
            + _ar1(rng, seconds, sigma=0.6, tau_s=30)
            + _ar1(rng, seconds, sigma=0.4, tau_s=7200)
            + self._rem(asleep)
        )
        self.spo2 += self._sleep_dips(asleep)
        self.flags = {HR: np.zeros(seconds, np.int32), SPO2: np.zeros(seconds, np.int32)}
        self.present = {HR: np.ones(seconds, bool), SPO2: np.ones(seconds, bool)}
        self.artefact = {HR: np.full(seconds, np.nan), SPO2: np.full(seconds, np.nan)}
        self.busy = np.zeros(seconds, bool)
        """Seconds already given to a scripted episode (episodes never overlap)."""
        self.hold_s = {HR: int(rng.choice([1, 1, 2, 3])), SPO2: int(rng.choice([1, 1, 2, 4]))}
        """How often each device refreshes the value it reports (many hold it for seconds)."""
        self._motion(int(rng.integers(5, 21) * seconds / 86400 + 0.5), awake_only=True)
        self._brief_losses()

    def _bouts(self, asleep: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        extra = np.zeros(self.n)
        for _ in range(int(self.rng.integers(3, 7) * self.n / 86400 + 0.5)):
            length = self.rng.uniform(5, 40) * 60
            start = self.rng.uniform(0, max(self.n - length, 1))
            lift = self.rng.uniform(15, 40) * trapezoid(self.t, start, start + length, 180)
            extra = np.maximum(extra, lift * (1 - asleep))
        return extra

    def _rem(self, asleep: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """REM sleep, every 80-110 minutes for 10-25 of them: breathing shallower and less
        regular, saturation half a point to a point and a half lower."""
        lower = np.zeros(self.n)
        at = float(self.rng.uniform(60, 100)) * 60
        while at < self.n:
            length = self.rng.uniform(10, 25) * 60
            lower -= self.rng.uniform(0.5, 1.5) * trapezoid(self.t, at, at + length, 120)
            at += length + self.rng.uniform(80, 110) * 60
        return lower * asleep

    def _sleep_dips(self, asleep: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """Brief dips of sleep (a hypopnoea, a sigh, a turn): 2-6 points for 10-45 s, from
        none to a dozen an hour of sleep, as in older adults without a sleep disorder
        (a 3 % oxygen desaturation index under 15 an hour is not sleep apnoea)."""
        dips = np.zeros(self.n)
        rate = self.rng.uniform(0, 12) / 3600
        for _ in range(int(rate * float(asleep.sum()) + 0.5)):
            start = self.rng.uniform(0, self.n - 60)
            length = self.rng.uniform(10, 45)
            ramp = self.rng.uniform(4, 10)
            dips -= self.rng.uniform(2, 6) * trapezoid(self.t, start, start + length, ramp)
        return dips * asleep

    def _brief_losses(self) -> None:
        """A home's Bluetooth: readings lost for 2 s to 3 minutes, now and then, from one
        device or both (under the five minutes that make the 'no data' condition)."""
        for _ in range(int(self.rng.uniform(0.5, 4) * self.n / 3600)):
            length = float(np.clip(self.rng.lognormal(np.log(15), 1.0), 2, 180))
            start = int(self.rng.uniform(0, self.n - length))
            which = [(HR,), (SPO2,), (HR, SPO2)][int(self.rng.choice(3))]
            for metric in which:
                self.present[metric][start : start + int(length)] = False

    def _slot(self, length: float, margin: float = 600) -> float | None:
        """A start time for an episode of ``length`` s clear of the others by ``margin``."""
        for _ in range(50):
            start = float(self.rng.uniform(margin, self.n - length - margin))
            a, b = int(start - margin), int(start + length + margin)
            if not self.busy[max(a, 0) : b].any():
                self.busy[max(a, 0) : b] = True
                return start
        return None

    def desaturations(self) -> list[Episode]:
        episodes = []
        for _ in range(max(1, int(self.rng.integers(4, 9) * self.n / 86400 + 0.5))):
            below = self.rng.uniform(30, 180)  # seconds below 88 %
            nadir = self.rng.uniform(75, 87.5)
            ramp = self.rng.uniform(10, 25)
            # The profile is below 88 for `below` seconds: extend the plateau by the ramps'
            # share under 88.
            level = self.spo2_base - 1
            under = ramp * (88 - nadir) / (level - nadir)
            plateau = max(below - 2 * under, 1.0)
            start = self._slot(plateau + 2 * ramp)
            if start is None:
                continue
            shape = trapezoid(self.t, start + ramp, start + ramp + plateau, ramp)
            self.spo2 = self.spo2 * (1 - shape) + nadir * shape
            window = slice(int(start), int(start + plateau + 2 * ramp) + 1)
            episodes.append(self._label("desaturation", self.spo2 < 88, window))
        return [e for e in episodes if e.end - e.start >= 30_000]

    def pulse_excursions(self, high: bool) -> list[Episode]:
        episodes = []
        for _ in range(max(1, int(self.rng.integers(2, 5) * self.n / 86400 + 0.5))):
            length = self.rng.uniform(60, 600)
            target = self.rng.uniform(135, 165) if high else self.rng.uniform(30, 37)
            ramp = 30.0
            start = self._slot(length + 2 * ramp)
            if start is None:
                continue
            shape = trapezoid(self.t, start + ramp, start + ramp + length, ramp)
            self.hr = self.hr * (1 - shape) + target * shape
            past = self.hr > 130 if high else self.hr < 40
            kind = "tachycardia" if high else "bradycardia"
            window = slice(int(start), int(start + length + 2 * ramp) + 1)
            episodes.append(self._label(kind, past, window))
        return [e for e in episodes if e.end - e.start >= 60_000]

    def _label(self, kind: str, past: npt.NDArray[np.bool_], window: slice) -> Episode:
        """The episode placed in ``window``: from the first to the last second its clean
        signal is past the line (``past``)."""
        inside = np.flatnonzero(past[window]) + window.start
        if not len(inside):
            return Episode(kind, 0, 0)  # dropped by the caller's length check
        return Episode(kind, T0_MS + int(inside[0]) * 1000, T0_MS + int(inside[-1]) * 1000)

    def motion(self) -> None:
        self._motion(int(self.rng.integers(20, 41) * self.n / 86400 + 0.5))

    def _motion(self, bursts: int, awake_only: bool = False) -> None:
        """Bursts of 3-25 s of nonsense from a moving hand (SpO2 5-20 points low, pulse
        doubled or halved), half of them flagged by the oximeter as motion, half not, as
        with real devices; every day has some, mostly while awake."""
        for _ in range(bursts):
            start = int(self.rng.uniform(0, self.n - 30))
            if awake_only and self.asleep[start] > 0.5 and self.rng.random() < 0.8:
                continue
            burst = slice(start, start + int(self.rng.uniform(3, 25)))
            size = burst.stop - burst.start
            self.artefact[SPO2][burst] = self.spo2[burst] - self.rng.uniform(5, 20, size)
            self.artefact[HR][burst] = self.hr[burst] * self.rng.choice([0.5, 2.0])
            if self.rng.random() < 0.5:
                self.flags[SPO2][burst] |= int(Quality.MOTION)

    def sensor_off(self) -> list[Episode]:
        episodes = []
        for _ in range(max(1, int(self.rng.integers(2, 7) * self.n / 86400 + 0.5))):
            length = self.rng.uniform(60, 1800)
            start = self._slot(length, margin=120)
            if start is None:
                continue
            off = slice(int(start), int(start + length))
            for metric, flag in (
                (SPO2, Quality.NO_CONTACT | Quality.SENSOR_FAULT),
                (HR, Quality.NO_CONTACT),
            ):
                self.flags[metric][off] |= int(flag)
                self.artefact[metric][off] = np.nan
            episodes.append(
                Episode("sensor_off", T0_MS + off.start * 1000, T0_MS + off.stop * 1000)
            )
        return episodes

    def dropouts(self) -> list[Episode]:
        """Gaps; those of five minutes or more are labelled (five minutes of silence is the
        'no data' technical condition)."""
        episodes = []
        for _ in range(int(self.rng.integers(3, 9) * self.n / 86400 + 0.5)):
            length = self.rng.uniform(30, 1800)
            start = self._slot(length, margin=120)
            if start is None:
                continue
            gap = slice(int(start), int(start + length))
            which = self.rng.choice(3)
            for metric in [(HR,), (SPO2,), (HR, SPO2)][which]:
                self.present[metric][gap] = False
            if length >= 300:
                episodes.append(
                    Episode("dropout", T0_MS + gap.start * 1000, T0_MS + gap.stop * 1000)
                )
        return episodes

    def _unscripted(self, scripted: list[Episode]) -> list[Episode]:
        """Events the ordinary day made by itself (a sleeper's dip below 88 % for 30 s, a
        deep sleep's pulse under 40 for a minute), found in the clean signal by the same
        definitions the evaluation applies to real nights, where no scripted one is."""
        both = np.r_[np.full(self.n, HR), np.full(self.n, SPO2)]
        found = signal_events(both, np.r_[self.t, self.t] * 1000 + T0_MS, np.r_[self.hr, self.spo2])
        return [
            Episode(kind, start, end)
            for kind, start, end in found
            if not any(e.start <= end and start <= e.end for e in scripted if e.kind == kind)
        ]

    def record(
        self, patient: str, scenario: str, hours: float, episodes: list[Episode]
    ) -> PatientRecord:
        episodes = episodes + self._unscripted(episodes)
        parts = []
        for metric, clean, noise in ((HR, self.hr, 1.0), (SPO2, self.spo2, 0.5)):
            measured = (clean + self.rng.normal(0, noise, self.n)).round()
            hold = self.hold_s[metric]
            measured = measured[self.t // hold * hold]  # the device's refresh
            artefact = self.artefact[metric]
            flagged_off = (self.flags[metric] & int(Quality.NO_CONTACT)) != 0
            measured = np.where(np.isnan(artefact) & ~flagged_off, measured, artefact.round())
            if metric == SPO2:
                measured = np.minimum(measured, 100)
            keep = self.present[metric]
            parts.append(
                (
                    np.full(keep.sum(), metric),
                    self.t[keep],
                    measured[keep],
                    self.flags[metric][keep],
                )
            )
        metric_col, t, value, flags = (np.concatenate(c) for c in zip(*parts, strict=True))
        order = np.argsort(t, kind="stable")
        return PatientRecord(
            patient,
            scenario,
            hours,
            metric_col[order].astype(np.int64),
            T0_MS + t[order].astype(np.int64) * 1000,
            value[order].astype(np.float64),
            flags[order].astype(np.int32),
            sorted(episodes, key=lambda e: e.start),
        )


def trapezoid(
    t: npt.NDArray[np.float64] | npt.NDArray[np.int64], start: float, end: float, ramp: float
) -> npt.NDArray[np.float64]:
    """0 outside, 1 on [start, end], linear ramps of ``ramp`` on either side."""
    rise = np.clip((t - (start - ramp)) / ramp, 0, 1)
    fall = np.clip(((end + ramp) - t) / ramp, 0, 1)
    return np.minimum(rise, fall)


def _ar1(rng: np.random.Generator, n: int, sigma: float, tau_s: float) -> npt.NDArray[np.float64]:
    """Slow wander with standard deviation ``sigma`` and correlation time ``tau_s``: an
    Ornstein-Uhlenbeck process sampled each second, as one linear filter over white noise."""
    a = np.exp(-1 / tau_s)
    white = rng.normal(0, sigma * np.sqrt(1 - a * a), n)
    return np.asarray(lfilter([1.0], [1.0, -a], white))
