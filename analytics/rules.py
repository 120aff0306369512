"""The default clinical threshold rules, from NEWS2 and hard limits.

NEWS2 (Royal College of Physicians, 2017) scores SpO2 on scale 1, or on scale 2 for
patients with hypercapnic respiratory failure whose target is 88-92 %, and pulse on one
scale; a score of 3 in one parameter ('red') calls for urgent review. Home readings come
every second, so a single one is never enough: each rule holds for a persistence delay, and
clears only past a hysteresis band. Hard limits catch what must not wait a minute.

These defaults are provisional: the evaluation issue tunes delays and bands on labelled
scenarios. Values are compared as measured (SpO2 and pulse arrive as whole numbers, so
``< 92`` is NEWS2's ``<= 91``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from analytics.detectors.artefacts import FLATLINE, IMPLAUSIBLE_JUMP
from vigil import metrics
from vigil.wire.quality import Quality

SENSOR_PROBLEM = int(Quality.NO_CONTACT | Quality.INVALID | Quality.SENSOR_FAULT | FLATLINE)
"""Quality flags that say the sensor is off, broken or stuck: when they persist, the patient
or the care team must check it (the technical rule)."""
POOR_SIGNAL = SENSOR_PROBLEM | int(Quality.MOTION | Quality.QUESTIONABLE) | IMPLAUSIBLE_JUMP
"""Quality flags that make a reading say nothing to a clinical rule: a probe off the finger
or a moving hand must not look like a desaturation. Motion and artefacts alone raise no
technical condition: they pass, and a patient told to check a sensor twenty times a day
stops listening."""


@dataclass(frozen=True, slots=True)
class Rule:
    """A threshold rule (entry and clearing thresholds); with ``rise`` set, a rate of change
    rule (the value up by ``rise`` within ``window_min`` minutes, clearing below
    ``clear_below``); with ``departure`` set, a personal-baseline rule; with ``technical``,
    the rule that readings of poor signal quality have persisted."""

    name: str
    metrics: tuple[int, ...]
    low_on: float = float("nan")
    low_off: float = float("nan")
    high_on: float = float("nan")
    high_off: float = float("nan")
    persist_s: float = 0.0
    description: str = ""
    rise: float = float("nan")
    clear_below: float = float("nan")
    window_min: int = 5
    technical: bool = False
    departure: float = float("nan")
    """A personal-baseline rule: the patient's level this far from their own baseline on
    one of ``sides`` ('above', 'below' or 'both'), and ``sd_multiple`` of their standard
    deviations."""
    sides: str = "both"
    sd_multiple: float = 3.0
    novelty: bool = False
    """The river model of multivariate novelty per patient (pulse, SpO2, their changes)."""

    @property
    def is_rate_of_change(self) -> bool:
        return not math.isnan(self.rise)

    @property
    def is_baseline(self) -> bool:
        return not math.isnan(self.departure)


_PULSE = (metrics.HEART_RATE.id, metrics.PULSE_RATE.id)
_SPO2 = (metrics.SPO2.id,)

SCALE_1 = (
    Rule(
        "spo2_news2_red",
        _SPO2,
        low_on=92,
        low_off=94,
        persist_s=60,
        description="NEWS2 SpO2 scale 1 score 3 (<= 91 %) for a minute",
    ),
    Rule(
        "spo2_desaturation",
        _SPO2,
        low_on=88,
        low_off=90,
        persist_s=15,
        description="SpO2 below 88 % for 15 s",
    ),
)
SCALE_2 = (
    Rule(
        "spo2_news2_red",
        _SPO2,
        low_on=84,
        low_off=86,
        persist_s=60,
        description="NEWS2 SpO2 scale 2 score 3 (<= 83 %) for a minute",
    ),
    Rule(
        "spo2_desaturation",
        _SPO2,
        low_on=80,
        low_off=82,
        persist_s=15,
        description="SpO2 below 80 % for 15 s (scale 2 target 88-92 %)",
    ),
)
PULSE = (
    Rule(
        "hr_news2_red_high",
        _PULSE,
        high_on=130,
        high_off=120,
        persist_s=60,
        description="NEWS2 pulse score 3 (>= 131 /min) for a minute",
    ),
    Rule(
        "hr_news2_red_low",
        _PULSE,
        low_on=41,
        low_off=45,
        persist_s=60,
        description="NEWS2 pulse score 3 (<= 40 /min) for a minute",
    ),
    Rule(
        "hr_extreme_high",
        _PULSE,
        high_on=150,
        high_off=140,
        persist_s=15,
        description="pulse above 150 /min for 15 s",
    ),
    Rule(
        "hr_extreme_low",
        _PULSE,
        low_on=35,
        low_off=40,
        persist_s=15,
        description="pulse below 35 /min for 15 s",
    ),
)

OPTIONAL = (
    Rule(
        "hr_rising",
        _PULSE,
        rise=30,
        clear_below=20,
        window_min=5,
        persist_s=60,
        description="pulse up 30 /min within 5 minutes, held for a minute",
    ),
    Rule(
        "novelty",
        (*_PULSE, *_SPO2),
        novelty=True,
        persist_s=180,
        description="three minutes unlike this patient's recent hours (pulse, SpO2 and their "
        "changes together; squared Mahalanobis distance of 30 or more)",
    ),
)
"""Rules a care team turns on per patient (``Engine(optional_rules=...)``). A pulse rising
30 /min within minutes is what every climb of the stairs does: without a motion sensor to
tell exercise from trouble it is not a default. (In the evaluation it fired 2.2 times per
simulated patient-day on ordinary days while a reading in the hysteresis band could keep a
pending condition; with the delay requiring the rise throughout it fires on none there,
but the simulator's walks are gentler than life.) Novelty keeps a river model per patient
(about 1.1 kB more per patient, and a Python call per patient-minute): on where the
budget allows."""

BASELINE = (
    Rule(
        "spo2_below_baseline",
        _SPO2,
        departure=4,
        sides="below",
        sd_multiple=3,
        persist_s=600,
        description="SpO2 4 points and 3 SD below the patient's own baseline for 10 minutes",
    ),
    Rule(
        "hr_off_baseline",
        _PULSE,
        departure=30,
        sd_multiple=4,
        persist_s=2700,
        description="pulse 30 /min and 4 SD away from the patient's own baseline for 45 "
        "minutes (longer than most walks: infection, atrial fibrillation, dehydration, "
        "a drug effect)",
    ),
)
"""Baseline rules judge nothing until a stream has four hours of history (warm-up)."""

TECHNICAL = (
    Rule(
        "check_sensor",
        (*_SPO2, *_PULSE),
        persist_s=30,
        technical=True,
        description="30 s of readings without a usable value (no contact, probe off, motion)",
    ),
)


STALE_RULE = "no_data"
"""The technical condition of a vital-sign stream silent for five minutes (by the clock, see
analytics.detectors.stale); cleared by its next reading."""


def rules_for(scale: int, optional: Iterable[str] = ()) -> tuple[Rule, ...]:
    """The rules for a patient on NEWS2 SpO2 scale 1 or 2, with the optional rules named."""
    if scale not in (1, 2):
        raise ValueError(f"NEWS2 SpO2 scale is 1 or 2, not {scale}")
    wanted = set(optional)
    unknown = wanted - {r.name for r in OPTIONAL}
    if unknown:
        names = ", ".join(r.name for r in OPTIONAL)
        raise ValueError(f"unknown optional rule {', '.join(sorted(unknown))}: one of {names}")
    extra = tuple(r for r in OPTIONAL if r.name in wanted)
    return (SCALE_1 if scale == 1 else SCALE_2) + PULSE + extra + BASELINE + TECHNICAL


RULE_NAMES = tuple(dict.fromkeys(r.name for r in SCALE_1 + SCALE_2 + PULSE + BASELINE + TECHNICAL))
