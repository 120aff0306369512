"""Readings a well-formed batch may still carry that the database must not hold as facts.

A batch that decodes is screened reading by reading, in a few numpy passes: values outside
the catalogue's plausible range for their metric, and measurement times from a gateway
whose clock is wrong (far in the future, or before the clock was ever set), readings
older than the retention period and, when asked, readings from a device the platform has
not assigned to the patient the gateway names. The rest of the
batch is stored; the refused readings stay recoverable in a dead letter holding the whole
raw payload and a reason that names each of them. A reading the device itself flagged as
invalid is stored with its flag even when its value is implausible: the flag is the
evidence (a probe off the finger), and analytics reads it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from itertools import compress

import numpy as np

from vigil.metrics import CATALOGUE
from vigil.wire.batch import Batch
from vigil.wire.quality import Quality

FUTURE_TOLERANCE_MS = 5 * 60_000
"""A gateway clock this far ahead is wrong, not merely drifting (NTP keeps it to seconds)."""
EARLIEST_MS = 1_577_836_800_000
"""2020-01-01: a gateway that boots without a real-time clock starts in 1970."""
REASONS_LISTED = 5

_size = max(m.id for m in CATALOGUE) + 1
_LOW = np.full(_size, np.inf)
_HIGH = np.full(_size, -np.inf)
for _m in CATALOGUE:
    _LOW[_m.id], _HIGH[_m.id] = _m.low, _m.high
_NAMES = {m.id: m.name for m in CATALOGUE}


def screen(
    batch: Batch,
    now_ms: int,
    retention_days: int = 0,
    assignments: Mapping[str, str] | None = None,
) -> tuple[Batch, str | None]:
    """The batch without the readings it may not store, and why they were refused (None
    when every reading passes). With a retention period, readings older than it are
    refused too: their day is gone, or about to be. With ``assignments`` (device ->
    patient, the platform's side), a reading from a device not assigned to the patient the
    gateway names is refused."""
    implausible = (batch.value < _LOW[batch.metric]) | (batch.value > _HIGH[batch.metric])
    implausible &= (batch.flags & Quality.INVALID) == 0
    future = batch.time > now_ms + FUTURE_TOLERANCE_MS
    unset_clock = batch.time < EARLIEST_MS
    expired = np.zeros(len(batch), dtype=bool)
    if retention_days > 0:
        expired = batch.time < now_ms - retention_days * 86_400_000
    unassigned = np.zeros(len(batch), dtype=bool)
    if assignments is not None:
        pairs = list(zip(batch.device, batch.patient, strict=True))
        wrong = {(d, p) for d, p in set(pairs) if assignments.get(d) != p}
        if wrong:
            unassigned = np.fromiter((pair in wrong for pair in pairs), bool, len(pairs))
    refused = unassigned | implausible | future | unset_clock | expired
    if not refused.any():
        return batch, None
    reasons = []
    for i in np.flatnonzero(refused)[:REASONS_LISTED].tolist():
        metric = _NAMES[int(batch.metric[i])]
        if unassigned[i]:
            why = f"device {batch.device[i]} is not assigned to {batch.patient[i]}"
        elif implausible[i]:
            m = int(batch.metric[i])
            why = f"{metric} {batch.value[i]:g} outside {_LOW[m]:g}..{_HIGH[m]:g}"
        elif future[i]:
            why = f"time {int(batch.time[i] - now_ms) // 1000} s in the future"
        elif unset_clock[i]:
            why = "time before 2020 (gateway clock not set)"
        else:
            why = f"older than the {retention_days}-day retention period"
        reasons.append(f"reading {i} ({why})")
    count = int(refused.sum())
    more = f" and {count - REASONS_LISTED} more" if count > REASONS_LISTED else ""
    reason = f"{count} of {len(batch)} readings refused: {', '.join(reasons)}{more}"
    return _keep(batch, ~refused), reason


def _keep(batch: Batch, mask: np.ndarray) -> Batch:
    kept = mask.tolist()
    return replace(
        batch,
        device=tuple(compress(batch.device, kept)),
        patient=tuple(compress(batch.patient, kept)),
        metric=batch.metric[mask],
        time=batch.time[mask],
        value=batch.value[mask],
        flags=batch.flags[mask],
    )
