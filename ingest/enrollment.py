"""Which gateways may send readings and which wearable is whose, on the platform's side.

`vigil enroll` writes the two tables (``gateway``, ``device_assignment``); with
``VIGIL_INGEST_ENROLLED_ONLY`` ingest reads them to refuse batches from gateways not
enrolled and readings from devices not assigned to the patient the gateway names.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import psycopg


@dataclass(frozen=True, slots=True)
class Enrolled:
    gateways: list[tuple[str, datetime, str]]
    """(id, enrolled, note)"""
    devices: list[tuple[str, str, datetime]]
    """(device, patient, assigned)"""


def enroll(
    conn: psycopg.Connection,
    gateways: Iterable[str],
    devices: Iterable[tuple[str, str]],
    note: str = "",
) -> None:
    """Enroll gateways (a second time changes the note) and assign devices to patients (a
    device already assigned moves to its new patient)."""
    for gateway in gateways:
        conn.execute(
            "INSERT INTO gateway (id, note) VALUES (%s, %s)"
            " ON CONFLICT (id) DO UPDATE SET note = excluded.note",
            (gateway, note),
        )
    for device, patient in devices:
        conn.execute(
            "INSERT INTO device_assignment (device, patient) VALUES (%s, %s)"
            " ON CONFLICT (device) DO UPDATE SET patient = excluded.patient, assigned = now()",
            (device, patient),
        )


def withdraw(conn: psycopg.Connection, gateway_or_device: str) -> int:
    """Withdraw a gateway or a device's assignment; how many rows went."""
    removed = conn.execute("DELETE FROM gateway WHERE id = %s", (gateway_or_device,)).rowcount
    removed += conn.execute(
        "DELETE FROM device_assignment WHERE device = %s", (gateway_or_device.upper(),)
    ).rowcount
    return removed


def enrolled(conn: psycopg.Connection) -> Enrolled:
    gateways = conn.execute("SELECT id, enrolled, note FROM gateway ORDER BY id").fetchall()
    devices = conn.execute(
        "SELECT device, patient, assigned FROM device_assignment ORDER BY patient, device"
    ).fetchall()
    return Enrolled(gateways, devices)


def gateways(conn: psycopg.Connection, among: Iterable[str] | None = None) -> set[str]:
    """The enrolled gateways (of ``among`` when given)."""
    if among is None:
        rows = conn.execute("SELECT id FROM gateway")
    else:
        rows = conn.execute("SELECT id FROM gateway WHERE id = ANY(%s)", (sorted(among),))
    return {g for (g,) in rows}


def assignments(conn: psycopg.Connection, devices: Iterable[str] | None = None) -> dict[str, str]:
    """Device -> patient (for ``devices`` when given)."""
    if devices is None:
        rows = conn.execute("SELECT device, patient FROM device_assignment")
    else:
        rows = conn.execute(
            "SELECT device, patient FROM device_assignment WHERE device = ANY(%s)",
            (sorted(devices),),
        )
    return dict(rows.fetchall())
