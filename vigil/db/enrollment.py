"""Which gateways are enrolled and which wearable is whose, as the services that take
readings see it (issue 14): a gateway speaks only for its own patients, and only through
their own devices.

`vigil enroll` writes the tables (``gateway``, ``device_assignment(device, gateway,
patient)``; :mod:`ingest.enrollment`). Ingest stores, and analytics scores, a reading only
when its (gateway, device, patient) triple is assigned, and neither takes a batch from a
gateway not enrolled: each keeps an :class:`EnrollmentView` over a connection of its own
and applies it to every batch. Whether they do is one setting for both,
``VIGIL_INGEST_ENROLLED_ONLY`` (:data:`Mode`): ``on``; ``auto`` (the default), as soon as
any gateway is enrolled; ``off`` only for the demo's open mode.

The view is read whole every minute; gateways not known yet and devices not assigned as
named are asked about at once (at most two queries per refresh, however many batches), so
enrolling takes effect at once, a withdrawal within a minute. While nothing is enrolled the
view is read whole on every refresh: the first enrollment is enforced from the next one on.
A refresh that fails leaves the view as it was.

The connection is the caller's: importing this module imports no database driver.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Literal

import numpy as np
import numpy.typing as npt

from vigil.wire.batch import Batch

if TYPE_CHECKING:
    import psycopg

log = logging.getLogger(__name__)

Mode = Literal["auto", "on", "off"]
"""``VIGIL_INGEST_ENROLLED_ONLY``."""
Assignments = Mapping[str, tuple[str | None, str]]
"""Device -> (gateway, patient); gateway None: assigned before gateways were part of an
assignment, and refused until assigned again."""

EVERY_S = 60.0
"""The whole view is read again this often."""


def gateways(conn: psycopg.Connection, among: Iterable[str] | None = None) -> set[str]:
    """The enrolled gateways (of ``among`` when given)."""
    if among is None:
        rows = conn.execute("SELECT id FROM gateway")
    else:
        rows = conn.execute("SELECT id FROM gateway WHERE id = ANY(%s)", (sorted(among),))
    return {g for (g,) in rows}


def assignments(
    conn: psycopg.Connection, devices: Iterable[str] | None = None
) -> dict[str, tuple[str | None, str]]:
    """Device -> (gateway, patient), for ``devices`` when given; device ids upper-cased,
    as enrollment writes them, since Bluetooth stacks differ in the case they report."""
    query = "SELECT device, gateway, patient FROM device_assignment"
    if devices is None:
        rows = conn.execute(query)
    else:
        named = sorted({d.upper() for d in devices})
        rows = conn.execute(query + " WHERE upper(device) = ANY(%s)", (named,))
    return {device.upper(): (gateway, patient) for device, gateway, patient in rows}


def unassigned(batch: Batch, assigned: Assignments) -> npt.NDArray[np.bool_]:
    """Which readings of ``batch`` name a device that is not assigned to their patient on
    the batch's gateway: another gateway's patient, under the sender's own device or under
    the other gateway's, is not assigned, whatever the pair (device, patient) is."""
    pairs = set(zip(batch.device, batch.patient, strict=True))
    wrong = {(d, p) for d, p in pairs if assigned.get(d.upper()) != (batch.gateway, p)}
    if not wrong:
        return np.zeros(len(batch), dtype=bool)
    each = zip(batch.device, batch.patient, strict=True)
    return np.fromiter((pair in wrong for pair in each), bool, len(batch))


class EnrollmentView:
    """The enrollment a service holds between reads, and what it makes of a batch."""

    def __init__(self, mode: Mode) -> None:
        self.mode = mode
        self.gateways: set[str] = set()
        self.assignments: dict[str, tuple[str | None, str]] = {}
        self.read_at: float | None = None
        """When the view was last read whole (``time.monotonic``); None: never."""

    @property
    def enforcing(self) -> bool:
        return self.mode == "on" or (self.mode == "auto" and bool(self.gateways))

    def warn_if_open(self, taken: str, refused: str) -> None:
        """Say, loudly, when whatever any gateway says is ``taken`` (stored, scored): the
        open mode, or nothing enrolled yet (then, with ``on``, every batch is ``refused``)."""
        if self.mode == "off":
            log.warning(
                "VIGIL_INGEST_ENROLLED_ONLY=off: readings from ANY gateway are %s under "
                "whatever patient they name. This is the demo's open mode: never a deployment's.",
                taken,
            )
        elif not self.gateways:
            log.warning(
                "no gateway is enrolled: until one is (`vigil enroll GATEWAY --device "
                "ADDRESS=PATIENT`), %s",
                f"every batch is {refused}"
                if self.mode == "on"
                else f"readings from any gateway are {taken} under whatever patient they name",
            )

    def enrolled(self, gateway: str) -> bool:
        """Whether a batch from ``gateway`` may be taken at all (any, while not enforcing)."""
        return not self.enforcing or gateway in self.gateways

    def unassigned(self, batch: Batch) -> npt.NDArray[np.bool_] | None:
        """The readings of ``batch`` its gateway may not send (:func:`unassigned`); None
        while not enforcing."""
        return unassigned(batch, self.assignments) if self.enforcing else None

    def read(self, conn: psycopg.Connection) -> None:
        """Read the whole view, in a transaction of its own (none is left open behind the
        caller); when a query fails the view stays as it was."""
        with conn.transaction():
            enrolled = gateways(conn)
            assigned = assignments(conn)
        self.gateways, self.assignments = enrolled, assigned
        self.read_at = time.monotonic()

    def refresh(self, conn: psycopg.Connection, batches: Iterable[Batch]) -> bool:
        """Bring the view up to date for ``batches``: read whole when a minute has passed
        (or nothing is enrolled), else ask only about their gateways not known and their
        devices not assigned as named. Nothing in ``off`` mode. Returns whether enforcement
        began with this refresh."""
        if self.mode == "off":
            return False
        batches = list(batches)
        was_enforcing = self.enforcing
        if not self.gateways or self.read_at is None or time.monotonic() >= self.read_at + EVERY_S:
            self.read(conn)
        else:
            strangers = {b.gateway for b in batches} - self.gateways
            suspects = {
                d
                for b in batches
                for d, p in set(zip(b.device, b.patient, strict=True))
                if self.assignments.get(d.upper()) != (b.gateway, p)
            }
            if strangers or suspects:
                with conn.transaction():
                    found = gateways(conn, strangers) if strangers else set()
                    assigned = assignments(conn, suspects) if suspects else {}
                self.gateways |= found
                self.assignments.update(assigned)
        return self.enforcing and not was_enforcing
