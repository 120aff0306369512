"""The rules Vigil judges every patient by, and the optional ones a care team turns on.

- NEWS2 red scores (Royal College of Physicians, 2017): SpO2 on scale 1, or on scale 2 for
  patients with hypercapnic respiratory failure whose target is 88-92 %, held ten minutes
  (:data:`SCALE_1`), and pulse held a minute (:data:`PULSE`); a score of 3 in one parameter
  ('red') calls for urgent review. Hard limits catch what must not wait: SpO2 below 88 %
  depth-aware (SatSeconds), pulse past 150 or 35 for 30 s.
- Departures from the patient's own baseline, judged after a four-hour warm-up.
- Technical conditions: readings without a usable value for 30 s ('check the sensor'),
  and a vital-sign stream silent five minutes (``no_data``, by the clock).
- Optional: a pulse rising fast, and multivariate novelty (:data:`OPTIONAL`).

Home readings come every second, so a single one is never enough: each rule holds for a
persistence delay (for SpO2, one that shrinks with the depth), and clears only past a
hysteresis band. Each rule is a value of its
kind (the rule types live beside their detectors), which makes its own detector. Values
are compared as measured (SpO2 and pulse arrive as whole numbers, so ``< 92`` is NEWS2's
``<= 91``).
"""

from __future__ import annotations

from collections.abc import Iterable

from analytics.detectors.baseline import BaselineRule
from analytics.detectors.depth import DepthRule
from analytics.detectors.novelty import NoveltyRule
from analytics.detectors.rate_of_change import RateOfChangeRule
from analytics.detectors.signal_quality import SignalQualityRule
from analytics.detectors.threshold import ThresholdRule
from vigil import metrics

Rule = ThresholdRule | DepthRule | RateOfChangeRule | BaselineRule | SignalQualityRule | NoveltyRule
"""Every kind of rule; each makes its own detector (``rule.detector()``), which configures
each stream from its patient's version of the rule."""

_PULSE = (metrics.HEART_RATE.id, metrics.PULSE_RATE.id)
_SPO2 = (metrics.SPO2.id,)

SCALE_1 = (
    DepthRule(
        "spo2_news2_red",
        _SPO2,
        limit=92,
        clear_at=94,
        sat_seconds=None,
        longest_s=600,
        description="SpO2 below 92 % on average for 10 minutes (NEWS2 scale 1 scores <= 91 % 3)",
    ),
    DepthRule(
        "spo2_desaturation",
        _SPO2,
        limit=88,
        clear_at=90,
        sat_seconds=50,
        longest_s=30,
        description="SpO2 below 88 %: 50 %·s below it (6 s at 80 %, 17 s at 85 %) or below "
        "it on average for 30 s",
    ),
)
"""Moderate hypoxaemia, the NEWS2 red band, is a condition of minutes, not of a minute:
sleep brings saturation down a point or two, and the dips of REM sleep, of a cough or of
a position last one to a few minutes; NEWS2 itself scores one observation taken at rest.
Ten minutes on average in the band is beyond what an ordinary night does and is the
sustained hypoxaemia a care team reviews (medium priority). Below 88 % the rule is depth
aware (SatSeconds, Nellcor): the deeper, the sooner, so a fall to 80 % is told within
seconds and a wobble to 87 % is not told at all; 30 s below on average catches the
shallow slow ones (Taenzer 2010 alarmed at 80 % after 15 s on a surgical ward; at home, 88 %
is the limit a care team asks for)."""
SCALE_2 = (
    DepthRule(
        "spo2_news2_red",
        _SPO2,
        limit=84,
        clear_at=86,
        sat_seconds=None,
        longest_s=600,
        description="SpO2 below 84 % on average for 10 minutes (NEWS2 scale 2 scores <= 83 % 3)",
    ),
    DepthRule(
        "spo2_desaturation",
        _SPO2,
        limit=80,
        clear_at=82,
        sat_seconds=50,
        longest_s=30,
        description="SpO2 below 80 % (scale 2, target 88-92 %): 50 %·s below it or below "
        "it on average for 30 s",
    ),
)
"""NEWS2 scale 2 is for patients with hypercapnic respiratory failure whose target is
88-92 %: the same rules, at the levels that are red for them."""
PULSE = (
    ThresholdRule(
        "hr_news2_red_high",
        _PULSE,
        high_on=130,
        high_off=120,
        persist_s=60,
        description="NEWS2 pulse score 3 (>= 131 /min) for a minute",
    ),
    ThresholdRule(
        "hr_news2_red_low",
        _PULSE,
        low_on=41,
        low_off=45,
        persist_s=60,
        description="NEWS2 pulse score 3 (<= 40 /min) for a minute",
    ),
    ThresholdRule(
        "hr_extreme_high",
        _PULSE,
        high_on=150,
        high_off=140,
        persist_s=30,
        description="pulse above 150 /min for 30 s",
    ),
    ThresholdRule(
        "hr_extreme_low",
        _PULSE,
        low_on=35,
        low_off=40,
        persist_s=30,
        description="pulse below 35 /min for 30 s",
    ),
)
"""NEWS2 scores a pulse of 131 or more, or 40 or less, 3 (red: an urgent review); held a
minute, it is not a climb of the stairs or a slow beat in deep sleep, and the care team is
asked to respond (medium priority). Past 150 or below 35 the same condition is an emergency
(high priority, IEC 60601-1-8) and is told in half the time: 30 s, two or three of the
8-15 s windows over which a wearable averages the pulse, so that a few missed or doubled
beats (which halve or double one window's figure) are not enough."""

OPTIONAL = (
    RateOfChangeRule(
        "hr_rising",
        _PULSE,
        rise=30,
        clear_below=20,
        window_min=5,
        persist_s=60,
        description="pulse up 30 /min within 5 minutes, held for a minute",
    ),
    NoveltyRule(
        "novelty",
        (*_PULSE, *_SPO2),
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
    BaselineRule(
        "spo2_below_baseline",
        _SPO2,
        departure=4,
        sides="below",
        sd_multiple=3,
        persist_s=600,
        description="SpO2 4 points and 3 SD below the patient's own baseline for 10 minutes",
    ),
    BaselineRule(
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
    SignalQualityRule(
        "check_sensor",
        (*_SPO2, *_PULSE),
        persist_s=30,
        description="30 s of readings without a usable value (no contact, probe off, motion)",
    ),
)


STALE_RULE = "no_data"
"""The technical condition of a vital-sign stream silent for five minutes (by the clock, see
analytics.detectors.stale); cleared by its next reading."""
STALE_DESCRIPTION = "no readings from a vital-sign sensor for 5 minutes"


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
"""The default rules' names (what a patient's configuration may disable)."""
KIND_OF: dict[str, type[Rule]] = {
    r.name: type(r) for r in SCALE_1 + SCALE_2 + PULSE + OPTIONAL + BASELINE + TECHNICAL
}
"""The kind of each rule by name: what its tunable numbers are."""
