"""Readings a well-formed batch may still carry that the database must not hold as facts.

A batch that decodes is screened reading by reading, in a few numpy passes: values outside
the catalogue's plausible range for their metric, and measurement times from a gateway
whose clock is wrong (far in the future, or before the clock was ever set), readings
older than the retention period and, when asked, readings whose device the platform has
not assigned to the patient they name on the gateway that sent them. The rest of the batch
is stored; the refused readings stay recoverable in a dead letter holding the raw payload
(up to a size) and a reason that names each of them. A reading the device itself flagged as
invalid is stored with its flag even when its value is implausible: the flag is the
evidence (a probe off the finger), and analytics reads it. So is an absent reading (the
device sent no value, and why): there is no value to be implausible.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vigil.db import enrollment
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


@dataclass(frozen=True, slots=True)
class Screened:
    kept: Batch
    """The batch without the readings it may not store."""
    reason: str | None
    """Why readings were refused (None when every reading passes)."""
    unassigned: int
    """How many readings were refused because their device is not assigned to their
    patient on the batch's gateway."""


def screen(
    batch: Batch,
    now_ms: int,
    retention_days: int = 0,
    assignments: enrollment.Assignments | None = None,
) -> Screened:
    """Screen every reading of ``batch``. With a retention period, readings older than it
    are refused too: their day is gone, or about to be. With ``assignments`` (device ->
    (gateway, patient), the platform's side), a reading whose device is not assigned to its
    patient on the batch's gateway is refused (:func:`vigil.db.enrollment.unassigned`)."""
    implausible = (batch.value < _LOW[batch.metric]) | (batch.value > _HIGH[batch.metric])
    implausible &= ((batch.flags & Quality.INVALID) == 0) & ~batch.absent
    future = batch.time > now_ms + FUTURE_TOLERANCE_MS
    unset_clock = batch.time < EARLIEST_MS
    expired = np.zeros(len(batch), dtype=bool)
    if retention_days > 0:
        expired = batch.time < now_ms - retention_days * 86_400_000
    unassigned = np.zeros(len(batch), dtype=bool)
    if assignments is not None:
        unassigned = enrollment.unassigned(batch, assignments)
    refused = unassigned | implausible | future | unset_clock | expired
    if not refused.any():
        return Screened(batch, None, 0)
    reasons = []
    for i in np.flatnonzero(refused)[:REASONS_LISTED].tolist():
        metric = _NAMES[int(batch.metric[i])]
        if unassigned[i]:
            why = (
                f"device {batch.device[i]} is not assigned to {batch.patient[i]} on {batch.gateway}"
            )
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
    return Screened(batch.keep(~refused), reason, int(unassigned.sum()))
