"""`vigil bench alerts`: the default rules over labelled scenarios (simulators.scenarios).

Each scenario kind gets its own patients, each a day at 1 Hz; their readings are scored in
time order through a fresh engine, five minutes of every patient per call (the engine's
events do not depend on how readings are cut into batches, see the detector contract test).
Only *persisted* events count: they are what the alerts service acts on.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from analytics.engine import Engine
from analytics.evaluation import Labelled, Persisted, evaluate
from analytics.rules import PULSE, SCALE_1
from simulators.scenarios import KINDS, generate
from vigil.process import keep_freed_arrays
from vigil.wire.events import EventKind

CHUNK_MS = 300_000


def _persist_s(name: str) -> float:
    return next(r.persist_s for r in SCALE_1 + PULSE if r.name == name)


GOALS = {
    "sensitivity": {"desaturation": 0.95, "tachycardia": 0.95, "bradycardia": 0.95},
    "false_per_patient_day": 1.0,
    "median_delay_s": {
        "desaturation": _persist_s("spo2_desaturation") + 5,
        "tachycardia": _persist_s("hr_news2_red_high") + 5,
        "bradycardia": _persist_s("hr_news2_red_low") + 5,
    },
}


def bench_alerts(
    patients_per_kind: int = 20, hours: float = 24, seed: int = 1, optional: tuple[str, ...] = ()
) -> dict[str, Any]:
    """With ``optional``, those optional rules on as well (what turning them on costs)."""
    keep_freed_arrays()
    labelled: list[Labelled] = []
    persisted: list[Persisted] = []
    for k, kind in enumerate(KINDS):
        records = [
            generate(kind, f"{kind}-{i:03d}", seed * 100_000 + k * 1000 + i, hours)
            for i in range(patients_per_kind)
        ]
        labelled += [
            Labelled(r.patient, kind, r.hours, [(e.kind, e.start, e.end) for e in r.episodes])
            for r in records
        ]
        names = [r.patient for r in records]
        who = np.concatenate([np.full(len(r.time), j) for j, r in enumerate(records)])
        time = np.concatenate([r.time for r in records])
        order = np.argsort(time, kind="stable")
        who, time = who[order], time[order]
        metric = np.concatenate([r.metric for r in records])[order]
        value = np.concatenate([r.value for r in records])[order]
        flags = np.concatenate([r.flags for r in records])[order]
        engine = Engine(optional_rules=optional)
        cuts = np.searchsorted(time, np.arange(time[0], time[-1] + CHUNK_MS, CHUNK_MS))
        for a, b in zip(cuts[:-1].tolist(), cuts[1:].tolist(), strict=True):
            if a == b:
                continue
            for e in engine.score_recorded(
                [names[j] for j in who[a:b].tolist()],
                metric[a:b],
                time[a:b],
                value[a:b],
                flags[a:b],
            ):
                if e.event.kind == EventKind.PERSISTED:
                    persisted.append(Persisted(e.patient, e.event.rule, e.event.time))
    table = evaluate(labelled, persisted)
    return {"scenarios": table, "goals": GOALS, "met": _met(table), "optional_rules": optional}


def _met(table: dict[str, dict[str, Any]]) -> bool:
    for kind, least in GOALS["sensitivity"].items():  # type: ignore[attr-defined]
        if (table[kind]["sensitivity"] or 0) < least:
            return False
    for kind, most in GOALS["median_delay_s"].items():  # type: ignore[attr-defined]
        delay = table[kind]["median_delay_s"]
        if delay is None or delay > most:
            return False
    return all(
        row["false_per_patient_day"] <= GOALS["false_per_patient_day"] for row in table.values()
    )
