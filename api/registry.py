"""Reading the registry of patients, sensors and gateways the FHIR routes serve.

The tables are kept by ingest (``device``, ``device_version``, ``patient``,
``gateway_state``; migration 013); here they are only read. Device ids are FHIR's
(:func:`api.fhir.device.device_resource_id`), which SQL cannot compute, so a lookup by
id narrows in SQL by what is cheap to know and matches the id here.
"""

from __future__ import annotations

from collections.abc import Iterable

import psycopg

from api.fhir.device import (
    Gateway,
    SensorVersion,
    device_resource_id,
    gateway_resource_id,
)
from api.fhir.patient import PatientRow

_SENSOR = (
    "device, version, kind, manufacturer, model, serial, firmware, location, gateway, patient,"
    " valid_from, valid_until"
)
_CURRENT = (
    "id, version, kind, manufacturer, model, serial, firmware, location, gateway, patient,"
    " updated, NULL::timestamptz"
)


def patients(
    conn: psycopg.Connection,
    ids: Iterable[str] | None,
    active: bool | None = None,
    after: str | None = None,
    limit: int | None = None,
) -> list[PatientRow]:
    """The patients named (None: every patient), ordered by id, after the id ``after``."""
    wanted = None if ids is None else sorted(set(ids))
    rows = conn.execute(
        "SELECT p.id, p.name, p.active, p.updated, t.team, c.name"
        " FROM patient p"
        " LEFT JOIN patient_team t ON t.patient = p.id"
        " LEFT JOIN care_team c ON c.id = t.team"
        " WHERE (%(ids)s::text[] IS NULL OR p.id = ANY(%(ids)s))"
        "   AND (%(active)s::boolean IS NULL OR p.active = %(active)s)"
        "   AND (%(after)s::text IS NULL OR p.id > %(after)s)"
        " ORDER BY p.id LIMIT %(limit)s",
        {"ids": wanted, "active": active, "after": after, "limit": limit},
    ).fetchall()
    return [PatientRow(r[0], r[1], r[2], r[3], r[4], r[5] or None) for r in rows]


def sensors(conn: psycopg.Connection, patients: Iterable[str]) -> list[SensorVersion]:
    """The sensors that are now the patients'."""
    rows = conn.execute(
        f"SELECT {_CURRENT} FROM device WHERE patient = ANY(%s) ORDER BY id",
        (sorted(set(patients)),),
    ).fetchall()
    return [SensorVersion(*r) for r in rows]


def sensors_and_gateways(
    conn: psycopg.Connection, patients: Iterable[str], addresses: Iterable[str] | None = None
) -> tuple[list[SensorVersion], list[Gateway]]:
    """The patients' sensors now (only those with ``addresses``, when given) and the
    gateways those are on."""
    found = sensors(conn, patients)
    if addresses is not None:
        wanted = set(addresses)
        found = [s for s in found if s.address in wanted]
    on = {s.gateway for s in found if s.gateway}
    whose = {s.patient for s in found if s.patient}
    return found, [g for g in gateways(conn, patients=whose) if g.id in on] if on else []


def sensor_history(conn: psycopg.Connection, resource_id: str) -> list[SensorVersion]:
    """Every version of the sensor with this FHIR id, newest first ([] if none)."""
    address = sensor_address(conn, resource_id)
    if address is None:
        return []
    rows = conn.execute(
        f"SELECT {_SENSOR} FROM device_version WHERE device = %s ORDER BY version DESC",
        (address,),
    ).fetchall()
    return [SensorVersion(*r) for r in rows]


def sensor_address(conn: psycopg.Connection, resource_id: str) -> str | None:
    candidates = _sensor_candidates(conn, [resource_id])
    return candidates.get(resource_id)


def addresses_of(conn: psycopg.Connection, patient: str, resource_ids: list[str]) -> list[str]:
    """The addresses of the devices with these FHIR ids that were ever the patient's."""
    rows = conn.execute(
        "SELECT DISTINCT device FROM device_version WHERE patient = %s", (patient,)
    ).fetchall()
    wanted = set(resource_ids)
    return sorted(a for (a,) in rows if device_resource_id(a) in wanted)


def _sensor_candidates(conn: psycopg.Connection, resource_ids: list[str]) -> dict[str, str]:
    """FHIR id -> address. A plain id is the address lower-cased with '-' for ':', so SQL
    can find it by that; a hashed id ('h...') needs the hash of every address, which only
    a registry of the size of a ward's devices makes affordable."""
    plain = [i for i in resource_ids if not i.startswith("h")]
    hashed = any(i.startswith("h") for i in resource_ids)
    rows = conn.execute(
        "SELECT id FROM device WHERE lower(replace(id, ':', '-')) = ANY(%s)"
        " OR (%s AND lower(replace(id, ':', '-')) !~ '^[a-z0-9.-]{1,64}$')",
        (plain, hashed),
    ).fetchall()
    found = {device_resource_id(a): a for (a,) in rows}
    return {i: found[i] for i in resource_ids if i in found}


def gateways(
    conn: psycopg.Connection,
    resource_ids: Iterable[str] | None = None,
    patients: Iterable[str] | None = None,
) -> list[Gateway]:
    """Gateways by FHIR id, or those the patients' sensors are on now: enrolled, reporting
    or merely carrying readings."""
    rows = conn.execute(
        "SELECT k.id, g.enrolled, s.state, s.software, s.seen"
        " FROM (SELECT id FROM gateway UNION SELECT gateway FROM gateway_state"
        "       UNION SELECT gateway FROM device WHERE gateway IS NOT NULL) k"
        " LEFT JOIN gateway g ON g.id = k.id LEFT JOIN gateway_state s ON s.gateway = k.id"
        " WHERE %(patients)s::text[] IS NULL"
        "    OR k.id IN (SELECT gateway FROM device WHERE patient = ANY(%(patients)s))"
        " ORDER BY 1",
        {"patients": None if patients is None else sorted(set(patients))},
    ).fetchall()
    found = [Gateway(*r) for r in rows]
    if resource_ids is None:
        return found
    wanted = set(resource_ids)
    return [g for g in found if gateway_resource_id(g.id) in wanted]


def gateway_patients(conn: psycopg.Connection, gateway: str) -> list[str]:
    """The patients whose sensors are on the gateway now: whoever sees one sees it."""
    rows = conn.execute(
        "SELECT DISTINCT patient FROM device WHERE gateway = %s AND patient IS NOT NULL",
        (gateway,),
    ).fetchall()
    return [p for (p,) in rows]
