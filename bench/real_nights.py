"""`vigil bench alerts --real DIR`: the default rules on real nights, and on real nights with
labelled episodes laid over them.

*As recorded*: every night read by :mod:`simulators.recordings`, scored as it was. An alert
is false unless the night itself shows, within two minutes, an event as the goals define
one (:func:`analytics.evaluation.signal_events`: SpO2 below 88 % for 30 s, a pulse past 40
or 130 for a minute); those events are scored for sensitivity as well, and every clinical
alert is counted too, false or not. *Laid over*: copies of the nights with desaturations,
tachycardias and bradycardias laid over the real signal (:mod:`simulators.overlays`), for
sensitivity and delay per kind, and per cadence (a monitor's numerics at one a minute cannot
be told from within seconds). The same runs score two naive monitors, SpO2 below 88 % for
15 s and for 30 s, as the reference.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from analytics.evaluation import (
    CLINICAL_RULES,
    Labelled,
    Persisted,
    evaluate,
    signal_events,
    spans_past,
)
from bench.alert_replay import Condition, Patient, persisted, score, told
from simulators.overlays import KINDS as LAID_OVER
from simulators.overlays import overlay
from simulators.recordings import Recording, load_folder
from vigil import metrics
from vigil.wire.events import EventKind

NAIVE_S = (15, 30)
"""The naive monitors' delays: SpO2 below 88 % for this long."""
MINUTES_FROM_S = 30
DAY_MS = 86_400_000
"""Recordings whose readings come further apart than this are a monitor's numerics."""


def real_nights(folder: Path, seed: int, optional: tuple[str, ...], copies: int) -> dict[str, Any]:
    recordings, skipped = load_folder(folder)
    if not recordings:
        raise RuntimeError(f"no recordings any loader reads in {folder}: {'; '.join(skipped)}")
    nights = [_patient(r, _name(r, i)) for i, r in enumerate(recordings)]
    own = {p.name: signal_events(p.metric, p.time, p.value) for p in nights}
    labelled = [
        Labelled(
            p.name,
            "as_recorded",
            r.hours,
            [e for e in own[p.name] if e[0] in LAID_OVER],
            [*(e for e in own[p.name] if e[0] not in LAID_OVER), _after_end(p)],  # silences
        )
        for p, r in zip(nights, recordings, strict=True)
    ]
    conditions = score(nights, optional)
    found = told(conditions)
    as_recorded = evaluate(labelled, persisted(conditions), found)["as_recorded"]
    as_recorded["clinical_alerts_per_patient_day"] = round(
        sum(e.rule in CLINICAL_RULES for e in found) / (sum(r.hours for r in recordings) / 24), 3
    )
    laid_labels, laid_patients = _laid_over(recordings, nights, own, seed, copies)
    laid_conditions = score(laid_patients, optional)
    laid_told = told(laid_conditions)
    laid_persisted = persisted(laid_conditions)
    return {
        "recordings": len(recordings),
        "hours": round(sum(r.hours for r in recordings), 1),
        "as_recorded": as_recorded,
        "by_recording": _by_recording(recordings, nights, own, conditions, found),
        "laid_over": evaluate(laid_labels, laid_persisted, laid_told),
        "laid_over_by_cadence": _by_cadence(laid_labels, laid_persisted, laid_told, recordings),
        "reference": {
            f"spo2_below_88_for_{s}s": {
                "as_recorded": _scored(labelled, naive(nights, s))["as_recorded"],
                "laid_over": _scored(laid_labels, naive(laid_patients, s))["desaturation"],
            }
            for s in NAIVE_S
        },
        "skipped": skipped,
    }


def _after_end(night: Patient) -> tuple[str, int, int]:
    """The silence after a night ends: the others' nights go on, and the clock with them, so
    its 'no data' is the benchmark's doing."""
    end = int(night.time[-1])
    return ("dropout", end, end + DAY_MS)


def _scored(labels: list[Labelled], conditions: list[Condition]) -> dict[str, dict[str, Any]]:
    return evaluate(labels, persisted(conditions), told(conditions))


def _laid_over(
    recordings: list[Recording],
    nights: list[Patient],
    own: dict[str, list[tuple[str, int, int]]],
    seed: int,
    copies: int,
) -> tuple[list[Labelled], list[Patient]]:
    labels: list[Labelled] = []
    patients: list[Patient] = []
    for k, kind in enumerate(LAID_OVER):
        for copy in range(copies):
            for r, (recording, night) in enumerate(zip(recordings, nights, strict=True)):
                shift = _shift(recording)
                avoid = tuple((a - shift, b - shift) for _, a, b in own[night.name])
                over, laid = overlay(
                    recording, kind, seed * 100_000 + k * 1000 + copy * 37 + r, avoid
                )
                if not laid:
                    continue
                name = f"{night.name}-{kind[:5]}-{copy}"
                spans = [(e.kind, e.start + shift, e.end + shift) for e in laid]
                known = [*own[night.name], _after_end(night)]
                labels.append(Labelled(name, kind, recording.hours, spans, known))
                patients.append(_patient(over, name))
    return labels, patients


def _by_recording(
    recordings: list[Recording],
    nights: list[Patient],
    own: dict[str, list[tuple[str, int, int]]],
    conditions: list[Condition],
    found: list[Persisted],
) -> dict[str, dict[str, Any]]:
    """Per night: its own events, and the conditions that persisted against the alerts told
    of them (many dips of an apnoea, many gaps of a night: one alert, repetitions counted)."""
    rows = {}
    for night, recording in zip(nights, recordings, strict=True):
        mine = [e for e in found if e.patient == night.name]
        held = [c for c in conditions if c.patient == night.name and c.kind == EventKind.PERSISTED]
        clinical = [e for e in mine if e.rule in CLINICAL_RULES]
        rows[recording.name] = {
            "source": recording.source,
            "hours": round(recording.hours, 2),
            "interval_s": recording.interval_s,
            "events_in_signal": dict(Counter(kind for kind, _, _ in own[night.name])),
            "clinical_alerts": len(clinical),
            "conditions": sum(c.rule in CLINICAL_RULES for c in held),
            "rules": dict(Counter(e.rule for e in clinical)),
            "technical_alerts": len(mine) - len(clinical),
            "technical_conditions": sum(c.rule not in CLINICAL_RULES for c in held),
        }
    return rows


def _by_cadence(
    labels: list[Labelled],
    persisted_: list[Persisted],
    told_: list[Persisted],
    recordings: list[Recording],
) -> dict[str, dict[str, Any]]:
    minutes = {_name(r, i) for i, r in enumerate(recordings) if r.interval_s > MINUTES_FROM_S}
    table = {}
    for cadence, wanted in (("seconds", False), ("minutes", True)):
        chosen = [x for x in labels if (_night_of(x.patient) in minutes) == wanted]
        if chosen:
            table[cadence] = evaluate(chosen, persisted_, told_)
    return table


def naive(patients: list[Patient], for_s: float) -> list[Condition]:
    """A naive monitor's conditions: SpO2 below 88 % for ``for_s``, cleared by the first
    reading at 88 % or more."""
    found = []
    for p in patients:
        mine = p.metric == metrics.SPO2.id
        for start, end in spans_past(p.time[mine], p.value[mine] < 88, for_s):
            for kind, time in (
                (EventKind.PERSISTED, start + round(for_s * 1000)),
                (EventKind.CLEARED, end),
            ):
                found.append(Condition(p.name, "spo2_desaturation", "spo2", kind, time))
    return found


def _name(recording: Recording, index: int) -> str:
    """A patient id for a night: its place in the folder (two files may share a name in
    different folders) and enough of its name to know it by."""
    return f"{index:02d}.{re.sub(r'[^A-Za-z0-9]', '', recording.name)[-24:]}"


def _night_of(copy: str) -> str:
    """The night a laid-over copy was made of (its name is the night's, the kind's and the
    copy's, joined by dashes)."""
    return copy.rsplit("-", 2)[0]


def _shift(recording: Recording) -> int:
    """Every night starts at the same moment (2026-01-01T00:00:00Z) when scored."""
    return 1_767_225_600_000 - int(recording.time[0])


def _patient(recording: Recording, name: str) -> Patient:
    """A recording as the gateway would have published it: its SpO2 and pulse, every
    missing value no reading at all."""
    channels = ((metrics.SPO2.id, recording.spo2), (metrics.PULSE_RATE.id, recording.pulse))
    have = [~np.isnan(values) for _, values in channels]
    metric = np.concatenate([np.full(h.sum(), m) for (m, _), h in zip(channels, have, strict=True)])
    time = np.concatenate([recording.time[h] for h in have]) + _shift(recording)
    value = np.concatenate([v[h] for (_, v), h in zip(channels, have, strict=True)])
    order = np.argsort(time, kind="stable")
    return Patient(name, metric[order], time[order], value[order], np.zeros(len(order), np.int32))
