"""A fault run's accounting: readings sent, stored, lost and doubled; alerts expected,
raised and notified.

Readings are matched as `vigil bench gateway` matches them, by (device, metric, value):
the wearables' log has no times (a wearable does not know when its notification is
received and stamped), so a reading lost and another of the same value doubled would
cancel; what remains is an honest lower bound of both. Battery levels are also read when
a device connects, which the wearables do not log: stored battery readings beyond those
sent are counted apart, never as doubled.

An alert is raised when a row is in ``alert``; it is notified when the care team's webhook
received it, and notified twice for every further delivery of the same telling (alert and
revision), whatever its idempotency key lets the receiver drop.
"""

from __future__ import annotations

import collections
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.faults.episodes import RULE
from bench.gateway import Key, _key
from vigil import metrics


@dataclass
class SentLog:
    readings: collections.Counter[Key] = field(default_factory=collections.Counter)
    spo2: dict[str, list[float]] = field(default_factory=dict)
    """Each patient's SpO2 as their oximeter sent it, in order."""

    @property
    def total(self) -> int:
        return sum(self.readings.values())


def read_sent(path: Path) -> SentLog:
    log = SentLog()
    if not path.exists():
        return log
    with open(path, encoding="utf-8") as lines:
        for line in lines:
            r = json.loads(line)
            log.readings[_key(r["address"], r["metric"], r["value"])] += 1
            if r["metric"] == metrics.SPO2.name:
                log.spo2.setdefault(r["patient"], []).append(float(r["value"]))
    return log


def stored_readings(rows: Iterable[tuple[Any, ...]]) -> collections.Counter[Key]:
    """``rows``: (device, metric id, value) of observation; absent readings (no value) are
    none the wearables sent."""
    return collections.Counter(
        _key(device, metrics.BY_ID[metric].name, value)
        for device, metric, value in rows
        if value is not None
    )


EXAMPLES = 5
"""Readings lost and doubled shown by key, for a first look at why."""


def readings(sent: SentLog, stored: collections.Counter[Key]) -> dict[str, Any]:
    missing = {key: n - stored[key] for key, n in sent.readings.items() if n > stored[key]}
    extra = {key: n - sent.readings[key] for key, n in stored.items() if n > sent.readings[key]}
    battery = metrics.BATTERY.name
    doubled = {key: n for key, n in extra.items() if key[1] != battery}
    battery_reads = sum(n for key, n in extra.items() if key[1] == battery)
    return {
        "sent": sent.total,
        "stored": sum(stored.values()) - battery_reads,
        "lost": sum(missing.values()),
        "doubled": sum(doubled.values()),
        "battery_read_on_connect": battery_reads,
        "lost_examples": [[*key, n] for key, n in list(missing.items())[:EXAMPLES]],
        "doubled_examples": [[*key, n] for key, n in list(doubled.items())[:EXAMPLES]],
    }


def alerts(
    raised: list[tuple[int, str, str]],
    deliveries: dict[tuple[int, int], int],
    verdicts: dict[str, dict[str, Any]],
) -> dict[str, Any]:
    """``raised``: (id, patient, rule) of every alert row; ``deliveries``: the webhook's
    count per (alert id, revision); ``verdicts``: the episodes' (:func:`episodes.judged`)."""
    expected = {p for p, v in verdicts.items() if v["verdict"] == "expected"}
    marginal = {p for p, v in verdicts.items() if v["verdict"] == "marginal"}
    delivered = {alert for alert, _ in deliveries}
    desaturations = [(i, p) for i, p, rule in raised if rule == RULE.name]
    by_patient = collections.Counter(p for _, p in desaturations)
    return {
        "alerts_expected": len(expected),
        "alerts_raised": len(raised),
        "alerts_notified": len({i for i, _, _ in raised} & delivered),
        "notified_twice": sum(n - 1 for n in deliveries.values()),
        "alerts_marginal": len(marginal),
        "expected_not_raised": sorted(expected - set(by_patient)),
        "raised_twice": sorted(p for p, n in by_patient.items() if n > 1),
        "raised_unexpected": sorted(
            {p for p in by_patient if p not in expected | marginal}
            | {f"{p}: {rule}" for _, p, rule in raised if rule != RULE.name}
        ),
        "episodes": verdicts,
    }
