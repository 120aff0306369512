"""The device and patient registry (migration 013), as ingest keeps it current.

Two sources. The readings a flush commits name (device, patient, gateway): each gets its
device and patient rows in the same transaction, so an Observation's device and subject
always resolve. The gateways' retained reports say what each paired wearable is
(``devices``: manufacturer, model, serial, firmware, location, kind, state, battery) and
whether the gateway is online (``status``); they are recorded in a transaction of their own.

Whose a device is follows the platform, not the gateway: where ``device_assignment`` has
the device, its patient is the device's; what a gateway says only counts while enrollment
is not enforced (the demo's open mode, or nothing enrolled yet). With enrollment enforced, a
gateway not enrolled is not listened to, and a report about a device assigned through
another gateway is ignored, so no gateway moves someone else's device or rewrites what it
is. A malformed report is dropped with a warning: it is a retained status, sent again in a
few seconds, not data to keep as a dead letter.

Versions of a device are the table's trigger's business, not this module's.

What was recorded is remembered in the process, once committed: the same sighting is written
again only when something in it changed or a minute has passed (``seen``), so a flush of
readings from devices already known costs a dictionary lookup per device, not a statement.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import astuple, dataclass, fields

import psycopg

from vigil.db import enrollment
from vigil.db.enrollment import EnrollmentView
from vigil.wire.batch import Batch
from vigil.wire.errors import WireError
from vigil.wire.status import GatewayDevices, GatewayStatus
from vigil.wire.topics import Topics, gateway_of

log = logging.getLogger(__name__)

SEEN_EVERY_S = 60.0
"""A device's or gateway's ``seen`` is refreshed at most this often."""
MAX_REMEMBERED = 100_000
"""Past this many sightings remembered (a flood of made-up device ids in the open mode), the
memory starts again: the cost is a statement per device, once."""
_NOTHING_AT_ALL = "unknown"
"""What a gateway says of a device's kind before it has connected to it."""

_RECORD_DEVICES = """
WITH sighting (id, patient, gateway, kind, manufacturer, model, serial, firmware, location,
               state, battery) AS (
    SELECT * FROM unnest(%(id)s::text[], %(patient)s::text[], %(gateway)s::text[],
                         %(kind)s::text[], %(manufacturer)s::text[], %(model)s::text[],
                         %(serial)s::text[], %(firmware)s::text[], %(location)s::text[],
                         %(state)s::text[], %(battery)s::smallint[])
), decided AS (
    SELECT s.*, coalesce(a.patient, CASE WHEN %(trusted)s THEN s.patient END) AS owner
    FROM sighting s
    LEFT JOIN LATERAL (
        SELECT patient, gateway FROM device_assignment
        WHERE upper(device) = upper(s.id) ORDER BY assigned DESC LIMIT 1
    ) AS a ON true
    WHERE %(trusted)s OR a.patient IS NULL OR a.gateway = s.gateway
), registered AS (
    INSERT INTO patient (id)
    SELECT owner FROM decided WHERE owner IS NOT NULL
    UNION SELECT unnest(%(subjects)s::text[])
    ON CONFLICT (id) DO NOTHING
)
INSERT INTO device AS d (id, kind, manufacturer, model, serial, firmware, location, gateway,
                         patient, state, battery)
SELECT id, coalesce(kind, 'unknown'), manufacturer, model, serial, firmware, location,
       gateway, owner, state, battery
FROM decided
ORDER BY upper(id)  -- two ingest processes lock the rows in one order: no deadlock
ON CONFLICT ((upper(id))) DO UPDATE SET
    kind = CASE WHEN excluded.kind = 'unknown' THEN d.kind ELSE excluded.kind END,
    manufacturer = coalesce(excluded.manufacturer, d.manufacturer),
    model = coalesce(excluded.model, d.model),
    serial = coalesce(excluded.serial, d.serial),
    firmware = coalesce(excluded.firmware, d.firmware),
    location = coalesce(excluded.location, d.location),
    gateway = excluded.gateway,
    patient = excluded.patient,
    state = coalesce(excluded.state, d.state),
    battery = coalesce(excluded.battery, d.battery),
    seen = now()
"""
_RECORD_GATEWAY = """
INSERT INTO gateway_state AS g (gateway, state, software) VALUES (%s, %s, %s)
ON CONFLICT (gateway) DO UPDATE SET
    state = excluded.state, software = coalesce(excluded.software, g.software), seen = now()
"""


@dataclass(frozen=True, slots=True)
class Sighting:
    """One device as a flush's readings or a gateway's report show it; None: not said."""

    device: str
    patient: str
    gateway: str
    kind: str | None = None
    manufacturer: str | None = None
    model: str | None = None
    serial: str | None = None
    firmware: str | None = None
    location: str | None = None
    state: str | None = None
    battery: int | None = None


Recorded = list[tuple[Hashable, Hashable]]
"""What a transaction wrote, to remember once it commits: (what it is of, what it said)."""


def is_report(topic: str) -> bool:
    """Whether ``topic`` is a gateway's retained ``status`` or ``devices``."""
    gateway = gateway_of(topic)
    return gateway is not None and topic in (Topics(gateway).status, Topics(gateway).devices)


class Registry:
    def __init__(self) -> None:
        self._recorded: dict[Hashable, tuple[Hashable, float]] = {}
        """What was committed of each device and gateway, and when (``time.monotonic``)."""

    def record_readings(
        self, conn: psycopg.Connection, batches: Sequence[Batch], trusted: bool
    ) -> Recorded:
        """Register the devices and patients of ``batches``, in the caller's transaction;
        ``trusted``: whether the patient the gateway names counts where the platform has no
        assignment (enrollment not enforced). Returns what to :meth:`remember` once the
        transaction has committed."""
        latest: dict[str, tuple[str, str, str]] = {}
        subjects: set[str] = set()
        for batch in batches:
            # The last reading of each device in a batch says whose it is now.
            for device, patient in dict(zip(batch.device, batch.patient, strict=True)).items():
                latest[device.upper()] = (device, patient, batch.gateway)
            subjects.update(batch.patient)
        now = time.monotonic()
        due = [key for key, said in latest.items() if self._due(("reading", key), said, now)]
        new_subjects = [p for p in subjects if ("patient", p) not in self._recorded]
        if due or new_subjects:
            sightings = [Sighting(*latest[key]) for key in due]
            self._write_devices(conn, sightings, trusted, new_subjects)
        recorded: Recorded = [(("reading", key), latest[key]) for key in due]
        return recorded + [(("patient", p), True) for p in new_subjects]

    def record_reports(
        self,
        conn: psycopg.Connection,
        reports: Iterable[tuple[str, bytes | bytearray]],
        view: EnrollmentView,
    ) -> None:
        """Record the gateways' retained reports (topic, payload), in a transaction of its
        own, as far as ``view`` (ingest's enrollment) lets each gateway speak."""
        devices: dict[str, Sighting] = {}
        statuses: dict[str, GatewayStatus] = {}
        for topic, payload in reports:
            gateway = gateway_of(topic)
            assert gateway is not None
            try:
                if topic == Topics(gateway).status:
                    statuses[gateway] = _status(gateway, payload)
                else:
                    for sighting in _sightings(gateway, payload):
                        devices[sighting.device.upper()] = sighting
            except WireError as exc:
                # The problem can quote what the device said of its patient: DEBUG only.
                log.warning("dropping a malformed report on %s (%s)", topic, exc.field)
                log.debug("malformed report on %s: %s", topic, exc)
        now = time.monotonic()
        due_devices = [
            (("report", key), s) for key, s in devices.items() if self._due(("report", key), s, now)
        ]
        due_statuses = [
            (("gateway", g), (s.state, s.version))
            for g, s in statuses.items()
            if self._due(("gateway", g), (s.state, s.version), now)
        ]
        if not (due_devices or due_statuses):
            return
        with conn.transaction():
            said = {s.gateway for _, s in due_devices} | {g for (_, g), _ in due_statuses}
            heard = _enrolled(conn, view, said)
            due_devices = [(k, s) for k, s in due_devices if s.gateway in heard]
            due_statuses = [((t, g), s) for (t, g), s in due_statuses if g in heard]
            if due_devices:
                self._write_devices(conn, [s for _, s in due_devices], not view.enforcing, [])
            for (_, gateway), (state, software) in due_statuses:
                conn.execute(_RECORD_GATEWAY, (gateway, str(state), software))
        self.remember([*due_devices, *due_statuses])

    def remember(self, recorded: Recorded) -> None:
        """Note what a committed transaction wrote, so it is not written again for a while."""
        if len(self._recorded) + len(recorded) > MAX_REMEMBERED:
            self._recorded.clear()
        now = time.monotonic()
        for key, said in recorded:
            self._recorded[key] = (said, now)

    def _due(self, key: Hashable, said: Hashable, now: float) -> bool:
        """Whether ``said`` of ``key`` needs writing: new, changed, or its ``seen`` is old."""
        before = self._recorded.get(key)
        return before is None or before[0] != said or now - before[1] >= SEEN_EVERY_S

    @staticmethod
    def _write_devices(
        conn: psycopg.Connection,
        sightings: Sequence[Sighting],
        trusted: bool,
        subjects: Sequence[str],
    ) -> None:
        names = [f.name for f in fields(Sighting)]
        columns = list(zip(*(astuple(s) for s in sightings), strict=True)) or [()] * len(names)
        values = {name: list(column) for name, column in zip(names, columns, strict=True)}
        values["id"] = values.pop("device")
        conn.execute(_RECORD_DEVICES, {**values, "trusted": trusted, "subjects": list(subjects)})


def _status(gateway: str, payload: bytes | bytearray) -> GatewayStatus:
    status = GatewayStatus.decode(payload)
    if status.gateway != gateway:
        raise WireError("gateway", f"the status says {status.gateway!r}, its topic {gateway!r}")
    return status


def _sightings(gateway: str, payload: bytes | bytearray) -> list[Sighting]:
    return [
        Sighting(
            device=report.address,
            patient=report.patient,
            gateway=gateway,
            kind=None if report.kind == _NOTHING_AT_ALL else report.kind,
            manufacturer=report.manufacturer,
            model=report.model,
            serial=report.serial,
            firmware=report.firmware,
            location=report.location,
            state=report.state,
            # A level past 100 % is no level (and past a smallint, no row).
            battery=report.battery
            if report.battery is not None and report.battery <= 100
            else None,
        )
        for report in GatewayDevices.decode(payload).devices
    ]


def _enrolled(conn: psycopg.Connection, view: EnrollmentView, gateways: set[str]) -> set[str]:
    """Those of ``gateways`` that may be heard: all while enrollment is not enforced, else
    the enrolled ones (asking the database about those the view does not know yet, so that
    a gateway enrolled a moment ago is heard at once)."""
    heard = {g for g in gateways if view.enrolled(g)}
    strangers = gateways - heard
    if strangers:
        heard |= enrollment.gateways(conn, strangers)
    return heard
