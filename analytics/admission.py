"""Which readings analytics scores: only those their gateway may send (issue 14).

Analytics takes its readings straight off the broker, beside ingest and not after it. Were
it to score what ingest refuses, a gateway naming another gateway's patient would raise
false alerts for that patient, hide a real condition (a reading at or before a stream's last
scored time is ignored), and make its own inbox the one the patient's messages go to. So a
batch from a gateway not enrolled is dropped whole, and a reading whose (gateway, device,
patient) is not assigned one by one, before scoring, by the same view and the same
``VIGIL_INGEST_ENROLLED_ONLY`` as ingest (:mod:`vigil.db.enrollment`). Ingest is the one
that dead-letters them; analytics counts them, and names gateways only at DEBUG.

The view is read over one connection of analytics' own (``VIGIL_DATABASE_URL``), opened at
start and kept. When the database cannot be reached the connection is dropped, the last view
kept, and the database asked again :data:`RETRY_S` later: scoring never stops for it. Until
the view has been read once (the database unreachable at start, or none configured), ``on``
drops every batch and ``auto`` scores them all, as it does while nothing is enrolled: a
platform whose analytics cannot tell is not left without its alarms. ``on`` without a
database is refused at start.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import psycopg

from vigil.db.enrollment import EnrollmentView, Mode
from vigil.wire.batch import Batch

log = logging.getLogger(__name__)

RETRY_S = 10.0
"""After a failed read, the database is asked again this much later (not per micro-batch)."""
CONNECT_TIMEOUT_S = 5
STATEMENT_TIMEOUT_MS = 5000
"""A database that hangs delays scoring by at most about this much per attempt."""


@dataclass(frozen=True, slots=True)
class Admitted:
    batches: list[Batch]
    """What may be scored: each batch less the readings its gateway may not send."""
    not_enrolled: int
    """Batches dropped whole: their gateway is not enrolled."""
    unassigned: int
    """Readings dropped: their device is not assigned to their patient on their gateway."""


class Admission:
    def __init__(self, mode: Mode, database_url: str | None) -> None:
        if mode == "on" and not database_url:
            raise ValueError(
                "VIGIL_INGEST_ENROLLED_ONLY=on: analytics reads the enrollment from the "
                "database, and VIGIL_DATABASE_URL is not set"
            )
        self.mode = mode
        self.database_url = database_url
        self.enrollment = EnrollmentView(mode)
        self._conn: psycopg.Connection | None = None
        self._retry_at = 0.0
        self._failing = False

    def start(self) -> None:
        """Read the enrollment, and say so when analytics scores what anyone says."""
        if self.mode == "off":
            self.enrollment.warn_if_open("scored", "dropped unscored")
            return
        if not self.database_url:
            log.warning(
                "no database (VIGIL_DATABASE_URL): analytics cannot read the enrollment, and "
                "scores readings from any gateway under whatever patient they name"
            )
            return
        if self._read(None):
            self.enrollment.warn_if_open("scored", "dropped unscored")

    def admit(self, batches: list[Batch]) -> Admitted:
        if self.mode == "off" or not batches:
            return Admitted(batches, 0, 0)
        if self.database_url:
            self._read(batches)
        kept: list[Batch] = []
        not_enrolled = unassigned = 0
        for batch in batches:
            if not self.enrollment.enrolled(batch.gateway):
                not_enrolled += 1
                log.debug(
                    "dropped a batch of %d readings: %s is not enrolled", len(batch), batch.gateway
                )
                continue
            wrong = self.enrollment.unassigned(batch)
            if wrong is None or not wrong.any():
                kept.append(batch)
                continue
            count = int(wrong.sum())
            unassigned += count
            log.debug(
                "dropped %d of %d readings from %s: not assigned on it",
                count,
                len(batch),
                batch.gateway,
            )
            if count < len(batch):
                kept.append(batch.keep(~wrong))
        return Admitted(kept, not_enrolled, unassigned)

    def gateways_of(self, patient: str) -> set[str] | None:
        """The gateways the enrollment puts ``patient`` on; None while not enforcing."""
        if not self.enrollment.enforcing:
            return None
        return {g for g, p in self.enrollment.assignments.values() if p == patient and g}

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _read(self, batches: list[Batch] | None) -> bool:
        """Bring the view up to date (whole when ``batches`` is None); False when the
        database could not be read, which leaves the view as it was."""
        if self._failing and time.monotonic() < self._retry_at:
            return False
        try:
            conn = self._connection()
            if batches is None:
                self.enrollment.read(conn)
            elif self.enrollment.refresh(conn, batches):
                log.info("a gateway is enrolled: scoring only readings of assigned devices")
        except psycopg.Error as exc:
            self.close()
            self._retry_at = time.monotonic() + RETRY_S
            if self.enrollment.read_at is not None:
                meanwhile = "keeping the view last read"
            elif self.enrollment.enforcing:
                meanwhile = "none read yet: dropping every batch"
            else:
                meanwhile = "none read yet: scoring every batch"
            log.log(
                logging.DEBUG if self._failing else logging.WARNING,
                "cannot read the enrollment (%s); %s, trying again in %g s",
                _first_line(exc),
                meanwhile,
                RETRY_S,
            )
            self._failing = True
            return False
        if self._failing:
            log.info("the enrollment is read again")
            self._failing = False
        return True

    def _connection(self) -> psycopg.Connection:
        if self._conn is None or self._conn.closed or self._conn.broken:
            self.close()
            assert self.database_url
            conn = psycopg.connect(
                self.database_url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S
            )
            try:
                conn.execute(f"SET statement_timeout = {STATEMENT_TIMEOUT_MS}")
            except psycopg.Error:
                conn.close()
                raise
            self._conn = conn
        return self._conn


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
