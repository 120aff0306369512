"""Which gateways may send readings and which wearable is whose, on the platform's side.

`vigil enroll` writes the tables (``gateway``, ``device_assignment``, and the broker
accounts of :mod:`ingest.credentials`); ingest (:mod:`ingest.admission`) and analytics read
them through :mod:`vigil.db.enrollment` to take a reading only when its device is assigned
to its patient on the gateway that sent it: a gateway speaks only for its own patients, and
only through their own devices. An assignment also moves the device in the registry (a
trigger on ``device_assignment``, migration 013), whoever writes it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import psycopg

from ingest import credentials


@dataclass(frozen=True, slots=True)
class Enrolled:
    gateways: list[tuple[str, datetime, str]]
    """(id, enrolled, note)"""
    devices: list[tuple[str, str | None, str, datetime]]
    """(device, gateway, patient, assigned); gateway None: assigned before gateways were
    part of an assignment, and refused until assigned again"""
    accounts: list[credentials.Account]


def enroll(conn: psycopg.Connection, gateway: str, note: str | None = None) -> None:
    """Enroll a gateway; a second time changes its note when one is given."""
    conn.execute(
        "INSERT INTO gateway (id, note) VALUES (%s, coalesce(%s, ''))"
        " ON CONFLICT (id) DO UPDATE SET note = coalesce(%s, gateway.note)",
        (gateway, note, note),
    )


def assign(conn: psycopg.Connection, gateway: str, devices: Iterable[tuple[str, str]]) -> None:
    """Assign devices (address, patient) to their patients on ``gateway``, an enrolled one;
    a device already assigned moves to its new gateway and patient."""
    for device, patient in devices:
        conn.execute(
            "INSERT INTO device_assignment (device, gateway, patient) VALUES (%s, %s, %s)"
            " ON CONFLICT (device) DO UPDATE"
            " SET gateway = excluded.gateway, patient = excluded.patient, assigned = now()",
            (device, gateway, patient),
        )


def withdraw(conn: psycopg.Connection, name: str) -> int:
    """Withdraw a gateway (with its devices and broker account), a device's assignment or a
    service's broker account; how many rows went."""
    removed = conn.execute("DELETE FROM gateway WHERE id = %s", (name,)).rowcount
    removed += credentials.revoke(conn, name)
    removed += conn.execute(
        "DELETE FROM device_assignment WHERE device = %s", (name.upper(),)
    ).rowcount
    return removed


def enrolled(conn: psycopg.Connection) -> Enrolled:
    gateways = conn.execute("SELECT id, enrolled, note FROM gateway ORDER BY id").fetchall()
    devices = conn.execute(
        "SELECT device, gateway, patient, assigned FROM device_assignment"
        " ORDER BY gateway, patient, device"
    ).fetchall()
    return Enrolled(gateways, devices, credentials.accounts(conn))
