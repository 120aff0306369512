"""Readings replayed through the engine, and the alerts the alerts service would make of
them: what both alert-quality benchmarks (simulated days, real nights) score.

Readings are scored in time order through a fresh engine, five minutes of every patient
per call, with the clock following the data. The engine's persisted events become alerts
as :mod:`alerts.episodes` groups them, one per patient episode.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime

import numpy as np
import numpy.typing as npt

from alerts import episodes
from alerts.episodes import Episode, Step, family_of
from alerts.model import kind_of
from analytics.engine import Engine
from analytics.evaluation import Persisted
from vigil.settings import Settings
from vigil.wire.events import EventKind

CHUNK_MS = 300_000
ACKNOWLEDGED_AFTER_S = 300.0
"""How long the benchmark's care team takes to acknowledge an alert."""
CLEAR_FOR_S: float = Settings.model_fields["alerts_auto_resolve_s"].default
"""The service's default (not this environment's setting): what a deployment gets."""
_FOREVER = 2**62


@dataclass(frozen=True, slots=True)
class Patient:
    """One patient's readings, in time order."""

    name: str
    metric: npt.NDArray[np.int64]
    time: npt.NDArray[np.int64]
    value: npt.NDArray[np.float64]
    flags: npt.NDArray[np.int32]


@dataclass(frozen=True, slots=True)
class Condition:
    """A persisted or cleared condition, as the alerts service receives it."""

    patient: str
    rule: str
    metric: str
    kind: EventKind
    time: int


def score(patients: list[Patient], optional: tuple[str, ...]) -> list[Condition]:
    """The persisted and cleared conditions of every patient, scored together in time
    order."""
    names = [p.name for p in patients]
    who = np.concatenate([np.full(len(p.time), j) for j, p in enumerate(patients)])
    time = np.concatenate([p.time for p in patients])
    order = np.argsort(time, kind="stable")
    who, time = who[order], time[order]
    metric = np.concatenate([p.metric for p in patients])[order]
    value = np.concatenate([p.value for p in patients])[order]
    flags = np.concatenate([p.flags for p in patients])[order]
    engine = Engine(optional_rules=optional)
    cuts = np.searchsorted(time, np.arange(time[0], time[-1] + CHUNK_MS, CHUNK_MS))
    found = []
    for a, b in zip(cuts[:-1].tolist(), cuts[1:].tolist(), strict=True):
        if a == b:
            continue
        for e in engine.score_recorded(
            [names[j] for j in who[a:b].tolist()], metric[a:b], time[a:b], value[a:b], flags[a:b]
        ):
            if e.event.kind != EventKind.STARTED:
                found.append(
                    Condition(e.patient, e.event.rule, e.metric, e.event.kind, e.event.time)
                )
    return found


def persisted(conditions: list[Condition]) -> list[Persisted]:
    """The conditions that persisted, each with when it cleared (a condition never cleared
    holds to the end)."""
    holding: dict[tuple[str, str, str], int] = {}
    spans = []
    for c in sorted(conditions, key=lambda c: c.time):
        key = (c.patient, c.rule, c.metric)
        if c.kind == EventKind.PERSISTED:
            holding.setdefault(key, c.time)
        elif key in holding:
            spans.append(Persisted(c.patient, c.rule, holding.pop(key), c.time))
    spans += [Persisted(p, rule, t, _FOREVER) for (p, rule, _), t in holding.items()]
    return spans


def told(conditions: list[Condition]) -> list[Persisted]:
    """What people are told: the alerts opened, worsened and renewed, as the alerts service
    makes episodes of the conditions (:mod:`alerts.episodes`). Somebody acknowledges each
    telling :data:`ACKNOWLEDGED_AFTER_S` after it; an episode resolves once clear for the
    service's default time. The oximeter's 'check the sensor' holding SpO2 episodes back is
    not modelled: every episode is told (the benchmark errs on the side of more alerts)."""
    open_: dict[tuple[str, str], tuple[Episode, int]] = {}
    """Per (patient, family): the open episode, and when people were last told of it."""
    out = []
    for c in sorted(conditions, key=lambda c: c.time):
        key = (c.patient, family_of(c.rule))
        at = _moment(c.time)
        if key in open_:
            episode, opened = open_[key]
            if c.time - opened >= ACKNOWLEDGED_AFTER_S * 1000:
                episode = replace(episode, acknowledged=True)
            if episodes.resolves(episode, at, CLEAR_FOR_S):
                del open_[key]
            else:
                open_[key] = (episode, opened)
        if c.kind == EventKind.CLEARED:
            if key in open_:
                episode, opened = open_[key]
                open_[key] = (episodes.cleared(episode, c.rule, c.metric, at), opened)
            continue
        current = open_.get(key)
        priority = kind_of(c.rule).priority
        episode, step = episodes.persisted(
            current[0] if current else None, c.rule, c.metric, priority, at, CLEAR_FOR_S
        )
        telling = step in (Step.OPENED, Step.WORSENED, Step.RENEWED)
        open_[key] = (episode, c.time if telling or current is None else current[1])
        if telling:
            out.append(Persisted(c.patient, c.rule, c.time))
    return out


def _moment(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)
