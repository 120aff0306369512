"""Which decoded batches, and which of their readings, ingest may store.

Every reading is screened (:mod:`vigil.screening`). With enrollment enforced, a batch from
a gateway not enrolled is refused whole, and a reading is stored only when its device is
assigned to its patient on the gateway that sent it: a gateway cannot speak for another
gateway's patient, whether it names that patient with its own device or with the other
gateway's. Enforcement is ``VIGIL_INGEST_ENROLLED_ONLY``: ``on``; ``auto`` (the default),
as soon as any gateway is enrolled; ``off`` only for the demo's open mode.

A batch is refused whole, and its ``seq`` never recorded, when it cannot be its gateway's
own: empty (a gateway never seals one), from a gateway not enrolled, or with not one
reading its gateway may send. Recording its ``seq`` would let whoever can publish on a
gateway's topic take the gateway's next numbers, and make its real batches look like
redeliveries (see :mod:`ingest.writer` for the digest that guards the rest). A batch whose
readings were all refused for other reasons (implausible values, a wrong clock) keeps its
place, so that its ``seq`` is not seen as a gap.

What is enrolled, and the triple test, are the foundation's
(:class:`vigil.db.enrollment.EnrollmentView`), which analytics applies too, before scoring:
read again every minute, gateways not known yet and devices not assigned as named asked
about at once (at most two queries per flush, however many messages), so enrolling takes
effect at once, a withdrawal within a minute. While nothing is enrolled (``auto``), both are
read on every flush: the first enrollment is enforced from the next flush on.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TypeVar

import psycopg

from vigil.db.enrollment import EnrollmentView, Mode
from vigil.screening import screen
from vigil.wire.batch import Batch

log = logging.getLogger(__name__)

EMPTY = "empty batch: a gateway never sends one"

M = TypeVar("M")
"""What a batch came in (an MQTT message): handed back with each verdict."""


class Admission:
    def __init__(self, mode: Mode, retention_days: int) -> None:
        self.mode = mode
        self.retention_days = retention_days
        self.enrollment = EnrollmentView(mode)

    @property
    def enforcing(self) -> bool:
        return self.enrollment.enforcing

    def start(self, conn: psycopg.Connection) -> None:
        """Read the enrollment and say, loudly when it is so, that anyone may speak for
        anyone."""
        if self.mode != "off":
            self.enrollment.read(conn)
        self.enrollment.warn_if_open("stored", "refused")

    def admit(
        self, conn: psycopg.Connection, decoded: Sequence[tuple[M, Batch]], now_ms: int
    ) -> tuple[list[tuple[M, Batch]], list[tuple[M, str]]]:
        """(what may be stored: each batch less its refused readings; what is refused, with
        the reason). A batch can be in both: stored in part, its refusals dead-lettered."""
        if self.enrollment.refresh(conn, [b for _, b in decoded]):
            log.info("a gateway is enrolled: storing only readings of assigned devices")
        enforcing = self.enforcing
        assignments = self.enrollment.assignments if enforcing else None
        good: list[tuple[M, Batch]] = []
        bad: list[tuple[M, str]] = []
        for message, batch in decoded:
            if not len(batch):
                bad.append((message, EMPTY))
                continue
            if not self.enrollment.enrolled(batch.gateway):
                command = f"`vigil enroll {batch.gateway}`"
                bad.append((message, f"gateway: {batch.gateway!r} is not enrolled ({command})"))
                continue
            screened = screen(batch, now_ms, self.retention_days, assignments)
            if screened.reason is not None:
                bad.append((message, screened.reason))
            if screened.unassigned < len(batch):
                good.append((message, screened.kept))
        return good, bad
