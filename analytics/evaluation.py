"""Scoring the detectors against labelled episodes: sensitivity, false events per
patient-day, detection delay.

An episode is caught when a rule that speaks to it (:data:`RULES_FOR`) *persists* (becomes
an alert candidate) for that patient between the episode's start and a minute after its end;
the delay is from the start (the first second the clean signal was past the line) to that
event, so it includes the rules' persistence delay. A clinical event that persists anywhere
else, more than two minutes from any labelled clinical episode of the patient, is false;
technical events ('check the sensor', no data) are counted apart, against the sensor-off
and dropout labels.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from analytics.rules import RULE_NAMES, SCALE_1, SCALE_2, STALE_RULE, TECHNICAL

RULES_FOR = {
    "desaturation": {"spo2_desaturation", "spo2_news2_red", "spo2_below_baseline"},
    "tachycardia": {"hr_news2_red_high", "hr_extreme_high", "hr_rising", "hr_off_baseline"},
    "bradycardia": {"hr_news2_red_low", "hr_extreme_low", "hr_off_baseline"},
    "sensor_off": {r.name for r in TECHNICAL},
    "dropout": {STALE_RULE},
}
TECHNICAL_RULES = {r.name for r in TECHNICAL} | {STALE_RULE}
TECHNICAL_KINDS = ("sensor_off", "dropout")
CLINICAL_RULES = set(RULE_NAMES) - TECHNICAL_RULES
CAUGHT_AFTER_END_MS = 60_000
FALSE_MARGIN_MS = 120_000
assert {r.name for r in SCALE_1 + SCALE_2} <= CLINICAL_RULES


@dataclass(frozen=True, slots=True)
class Labelled:
    """What evaluation needs of a scenario patient (see simulators.scenarios)."""

    patient: str
    scenario: str
    hours: float
    episodes: list[tuple[str, int, int]]
    """(kind, start ms, end ms)"""


@dataclass(frozen=True, slots=True)
class Persisted:
    patient: str
    rule: str
    time: int


def evaluate(
    patients: Iterable[Labelled], events: Iterable[Persisted]
) -> dict[str, dict[str, Any]]:
    """Per scenario kind: episodes, caught, sensitivity, median delay (s), false clinical
    and technical events per patient-day."""
    by_patient: dict[str, list[Persisted]] = defaultdict(list)
    for event in events:
        by_patient[event.patient].append(event)
    table: dict[str, dict[str, Any]] = {}
    tally: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    delays: dict[str, list[float]] = defaultdict(list)
    for p in patients:
        row = tally[p.scenario]
        row["patients"] += 1
        row["patient_days"] += p.hours / 24
        mine = by_patient.get(p.patient, [])
        for kind, start, end in p.episodes:
            row["episodes"] += 1
            hits = [
                e.time
                for e in mine
                if e.rule in RULES_FOR[kind]
                and start - 60_000 <= e.time <= end + CAUGHT_AFTER_END_MS
            ]
            if hits:
                row["caught"] += 1
                delays[p.scenario].append(max(0, min(hits) - start) / 1000)
        clinical_spans = [(s, e) for k, s, e in p.episodes if k not in TECHNICAL_KINDS]
        sensor_spans = [(s, e) for k, s, e in p.episodes if k in TECHNICAL_KINDS]
        for e in mine:
            if e.rule in CLINICAL_RULES and not _near(e.time, clinical_spans):
                row["false_clinical"] += 1
            elif e.rule in TECHNICAL_RULES and not _near(e.time, sensor_spans):
                row["false_technical"] += 1
    for scenario, row in tally.items():
        days = row["patient_days"]
        episodes = int(row["episodes"])
        table[scenario] = {
            "sensitivity": round(row["caught"] / episodes, 3) if episodes else None,
            "false_per_patient_day": round(row["false_clinical"] / days, 3),
            "median_delay_s": (
                round(statistics.median(delays[scenario]), 1) if delays[scenario] else None
            ),
            "episodes": episodes,
            "caught": int(row["caught"]),
            "patients": int(row["patients"]),
            "patient_days": round(days, 2),
            "false_technical_per_patient_day": round(row["false_technical"] / days, 3),
        }
    return table


def _near(time: int, spans: list[tuple[int, int]]) -> bool:
    return any(start - FALSE_MARGIN_MS <= time <= end + FALSE_MARGIN_MS for start, end in spans)
