"""Scoring the detectors against labelled episodes: sensitivity, false events per
patient-day, detection delay.

A real recording comes without labels, but the goals say what an event is: SpO2 below
88 % for 30 s or more, a pulse below 40 or above 130 /min for a minute or more, a silence of
five minutes (:data:`DEFINITIONS`). :func:`signal_events` finds those in the signal as it
was recorded, so an alert on a real night is false only where the night shows no such
event: a monitor is not blamed for telling of a real apnoea's desaturations, and one
raising alerts at 87 % for 20 s is.

An episode is caught when a rule that speaks to it (:data:`RULES_FOR`) *persists* (becomes
an alert candidate) for that patient between a minute before the episode's start and a
minute after its end; the delay is from the start (the first second the clean signal was
past the line) to that event, so it includes the rules' persistence delay. One caught by a
condition that persisted earlier and still holds at its start (``caught_holding``) has no
delay to count. A clinical event
that persists anywhere else, more than two minutes from any labelled clinical episode of the
patient, is false; technical events ('check the sensor', no data) are counted apart,
against the sensor-off and dropout labels.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from analytics.rules import RULE_NAMES, SCALE_1, SCALE_2, STALE_RULE, TECHNICAL
from vigil import metrics

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
    known: list[tuple[str, int, int]] = field(default_factory=list)
    """Events of the background (a real night's own, :func:`signal_events`): an alert near
    one is not false, and they are not scored (the row is about ``episodes``)."""


@dataclass(frozen=True, slots=True)
class Persisted:
    patient: str
    rule: str
    time: int
    until: int | None = None
    """When the condition cleared (it held from ``time`` until then); None: a moment."""


def evaluate(
    patients: Iterable[Labelled],
    events: Iterable[Persisted],
    told: Iterable[Persisted] | None = None,
) -> dict[str, dict[str, Any]]:
    """Per scenario kind: episodes, caught, sensitivity, median delay (s), false clinical
    and technical alerts per patient-day. ``events`` are the persisted conditions (what
    catches an episode, and when); ``told`` what people were told of them (the alerts
    opened and worsened), the events themselves when not given."""
    by_patient: dict[str, list[Persisted]] = defaultdict(list)
    events = list(events)
    for event in events:
        by_patient[event.patient].append(event)
    told_by_patient: dict[str, list[Persisted]] = defaultdict(list)
    for event in events if told is None else told:
        told_by_patient[event.patient].append(event)
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
            speaking = [e for e in mine if e.rule in RULES_FOR[kind]]
            hits = [
                e.time for e in speaking if start - 60_000 <= e.time <= end + CAUGHT_AFTER_END_MS
            ]
            if hits:
                row["caught"] += 1
                delays[p.scenario].append(max(0, min(hits) - start) / 1000)
            elif any(e.until is not None and e.time < start <= e.until for e in speaking):
                row["caught"] += 1  # a condition already told of, still holding
                row["caught_holding"] += 1
        every = p.episodes + p.known
        clinical_spans = [(s, e) for k, s, e in every if k not in TECHNICAL_KINDS]
        sensor_spans = [(s, e) for k, s, e in every if k in TECHNICAL_KINDS]
        for e in told_by_patient.get(p.patient, []):
            if e.rule in CLINICAL_RULES and not _near(e, clinical_spans):
                row["false_clinical"] += 1
            elif e.rule in TECHNICAL_RULES and not _near(e, sensor_spans):
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
            "caught_holding": int(row["caught_holding"]),
            "patients": int(row["patients"]),
            "patient_days": round(days, 2),
            "false_technical_per_patient_day": round(row["false_technical"] / days, 3),
        }
    return table


def _near(event: Persisted, spans: list[tuple[int, int]]) -> bool:
    """Whether the event (or the time its condition held) comes within the margin of one
    of the spans."""
    until = event.time if event.until is None else event.until
    return any(
        start - FALSE_MARGIN_MS <= until and event.time <= end + FALSE_MARGIN_MS
        for start, end in spans
    )


@dataclass(frozen=True, slots=True)
class Definition:
    kind: str
    metrics: tuple[int, ...]
    below: float | None
    above: float | None
    for_s: float


DEFINITIONS = (
    Definition("desaturation", (metrics.SPO2.id,), 88, None, 30),
    Definition("bradycardia", (metrics.HEART_RATE.id, metrics.PULSE_RATE.id), 40, None, 60),
    Definition("tachycardia", (metrics.HEART_RATE.id, metrics.PULSE_RATE.id), None, 130, 60),
)
"""What the goals call an event (issue 13), and the silence a 'no data' alert is about."""
SILENCE_S = 300


def signal_events(
    metric: npt.NDArray[np.int64], time: npt.NDArray[np.int64], value: npt.NDArray[np.float64]
) -> list[tuple[str, int, int]]:
    """The events of :data:`DEFINITIONS` in one patient's readings (time order), and the
    silences of :data:`SILENCE_S` or more of each of its streams ('dropout'); a run past a
    line as :func:`spans_past` has it."""
    found = []
    for d in DEFINITIONS:
        mine = np.isin(metric, d.metrics)
        t, v = time[mine], value[mine]
        past = (v < d.below) if d.below is not None else (v > d.above)  # type: ignore[operator]
        found += [(d.kind, start, end) for start, end in spans_past(t, past, d.for_s)]
    end = int(time[-1]) if len(time) else 0
    for stream in np.unique(metric).tolist():
        t = np.r_[time[metric == stream], end]  # a stream that stops is silent to the end
        gaps = np.flatnonzero(np.diff(t) >= SILENCE_S * 1000)
        found += [("dropout", int(t[i]), int(t[i + 1])) for i in gaps.tolist()]
    return sorted(found, key=lambda e: e[1])


def spans_past(
    t: npt.NDArray[np.int64], past: npt.NDArray[np.bool_], for_s: float
) -> list[tuple[int, int]]:
    """(start, end) of each run of one stream's readings past the line for ``for_s`` or
    more: from its first reading to its last and one interval more (a reading a minute
    stands for its minute); a gap of three intervals ends a run."""
    if len(t) < 2:
        return []
    interval = int(np.median(np.diff(t))) or 1
    return [
        (first, last + interval)
        for first, last in _runs(t, past, 3 * interval)
        if last - first + interval >= for_s * 1000
    ]


def _runs(
    t: npt.NDArray[np.int64], past: npt.NDArray[np.bool_], longest_gap: int
) -> list[tuple[int, int]]:
    """(first, last) time of each run of readings past the line with no gap longer than
    ``longest_gap`` between them."""
    at = np.flatnonzero(past)
    if not len(at):
        return []
    breaks = np.flatnonzero((np.diff(at) > 1) | (np.diff(t[at]) > longest_gap))
    firsts = np.r_[at[0], at[breaks + 1]]
    lasts = np.r_[at[breaks], at[-1]]
    return list(zip(t[firsts].tolist(), t[lasts].tolist(), strict=True))
