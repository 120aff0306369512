"""The central station's tiles: one per patient, what a clinician glances at, in the order
of who needs attention.

A tile holds the latest SpO2 and pulse, a sparkline of the last 30 minutes, when the last
reading was taken, each device's battery and connection as its gateway last reported them,
and the patient's open alerts. A compartment's tiles, whatever its size, come from a
handful of queries, each on an index: the newest row per patient and vital sign (the
primary key, read backwards within the window), the sparkline from the one-minute rollup
(30 rows per patient and vital sign, against ~1,800 raw ones), the registry's devices
(migration 013) and the open alerts (:mod:`alerts.queries`).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from alerts.queries import STATES, Alert, list_alerts
from api.access.policy import Compartment
from api.access.principal import Principal
from vigil.metrics import HEART_RATE, PULSE_RATE, SPO2
from vigil.wire.quality import Quality
from vigil.wire.times import iso

WINDOW = timedelta(minutes=30)
"""What a sparkline spans."""
TAIL = timedelta(minutes=2)
"""What the stream sends of a sparkline it has sent before: the minutes still filling."""
BUCKET_S = 60
"""A sparkline point is a minute of the rollup (its min, mean and max)."""
STALE_AFTER = timedelta(minutes=2)
"""A patient with no vital-sign reading for this long has stale data. Readings come every
second and a gateway publishes every second or so, riding out short network cuts from its
outbox, so two minutes of silence is past any normal delay; yet it is well before the
analytics' ``no_data`` alert (five minutes), so the station shows a sensor gone quiet
before anyone is paged for it."""
_PULSE = (HEART_RATE.id, PULSE_RATE.id)
"""The strap's heart rate and the oximeter's pulse rate are one pulse on a tile: whichever
device is on the patient, the clinician sees a pulse."""
_VITALS = (SPO2.id, *_PULSE)
_GROUPS = ("high", "medium", "low", "stale", "ok")
"""A tile's attention, in the order tiles are shown."""


def frame(now: datetime, withheld: list[str]) -> dict[str, Any]:
    """What every answer says beside its tiles: the server's time (the page's clock may be
    off; ages are counted from this) and how to read the tiles."""
    return {
        "now": iso(now),
        "stale_after_s": STALE_AFTER.total_seconds(),
        "window_s": WINDOW.total_seconds(),
        "bucket_s": BUCKET_S,
        "withheld": withheld,
    }


def withheld_from(who: Principal) -> list[str]:
    """What the token's scopes do not reach, left out of every tile (an integration given
    Observations only gets no alerts and no devices)."""
    return [r for r in ("Flag", "Device") if not who.may(r, "s")]


def patients_of(conn: psycopg.Connection, compartment: Compartment) -> list[str]:
    """Whose tiles the compartment holds: for an administrator, every patient registered."""
    if compartment.everyone:
        return [p for (p,) in conn.execute("SELECT id FROM patient ORDER BY id")]
    return sorted(compartment.patients)


def build_tiles(
    conn: psycopg.Connection,
    patients: list[str],
    now: datetime,
    since: datetime,
    withheld: list[str],
) -> list[dict[str, Any]]:
    """The tiles of ``patients``, their sparklines from ``since`` on, without what the
    caller's scopes do not reach (``withheld``)."""
    if not patients:
        return []
    names: dict[str, str | None] = dict(
        conn.execute("SELECT id, name FROM patient WHERE id = ANY(%s)", (patients,)).fetchall()
    )
    latest = _latest(conn, patients, now)
    spark = _spark(conn, patients, since)
    devices = {} if "Device" in withheld else _devices(conn, patients)
    alerts = {} if "Flag" in withheld else _open_alerts(conn, patients)
    tiles = []
    for patient in patients:
        vitals = latest.get(patient, {})
        tile: dict[str, Any] = {"patient": patient, "name": names.get(patient)}
        last = max((at for at, _ in vitals.values()), default=None)
        tile["last"] = iso(last) if last else None
        tile["spo2"] = _vital(vitals.get(SPO2.id))
        pulses = [vitals[m] for m in _PULSE if m in vitals]
        tile["pulse"] = _vital(max(pulses, key=lambda r: r[0], default=None))
        tile["spark"] = spark.get(patient, [])
        mine = sorted(alerts.get(patient, []), key=lambda a: _alert_rank(a, now))
        tile["alerts"] = [_alert(a, now) for a in mine]
        tile["devices"] = devices.get(patient, [])
        tile["attention"], tile["order"] = _attention(patient, mine, last, now)
        tiles.append(tile)
    return tiles


def _vital(reading: tuple[datetime, float | None] | None) -> dict[str, Any] | None:
    if reading is None:
        return None
    at, value = reading
    return {"value": value, "at": iso(at)}


def _latest(
    conn: psycopg.Connection, patients: list[str], now: datetime
) -> dict[str, dict[int, tuple[datetime, float | None]]]:
    """patient -> metric -> (time, value) of its newest reading; a value the device could
    not measure, or flagged invalid, is None: the sensor is there but says nothing usable.

    Looked for in the sparkline's window first, which the planner prunes to a day's
    partition or two, instead of probing each of a month's for every series; only a patient
    with nothing in it (stale data) is looked up further back. So a vital sign silent for
    longer than the window, beside another still measured, has no latest value: the tile
    shows none rather than one half an hour old."""
    latest = _newest(conn, patients, now - WINDOW)
    quiet = [p for p in patients if p not in latest]
    if quiet:
        latest.update(_newest(conn, quiet, datetime.min.replace(tzinfo=UTC)))
    return latest


def _newest(
    conn: psycopg.Connection, patients: list[str], since: datetime
) -> dict[str, dict[int, tuple[datetime, float | None]]]:
    rows = conn.execute(
        "SELECT p, m, o.effective, CASE WHEN o.flags & %(invalid)s = 0 THEN o.value END"
        " FROM unnest(%(patients)s::text[]) AS p CROSS JOIN unnest(%(metrics)s::smallint[]) AS m"
        " CROSS JOIN LATERAL (SELECT effective, value, flags FROM observation"
        "  WHERE patient = p AND metric = m AND effective >= %(since)s"
        "  ORDER BY effective DESC LIMIT 1) AS o",
        {
            "invalid": int(Quality.INVALID),
            "patients": patients,
            "metrics": list(_VITALS),
            "since": since,
        },
    ).fetchall()
    latest: dict[str, dict[int, tuple[datetime, float | None]]] = {}
    for patient, metric, at, value in rows:
        latest.setdefault(patient, {})[metric] = (at, value)
    return latest


def _spark(conn: psycopg.Connection, patients: list[str], since: datetime) -> dict[str, list[Any]]:
    """patient -> ``[minute epoch s, SpO2 mean, min, max, pulse mean, min, max]`` per minute
    with readings (a vital without any that minute: None), oldest first."""
    rows = conn.execute(
        "SELECT patient, extract(epoch FROM bucket)::bigint, metric = %s,"
        " min(min), max(max), sum(sum) / sum(count)"
        " FROM observation_1m WHERE patient = ANY(%s) AND metric = ANY(%s) AND bucket >= %s"
        " GROUP BY 1, 2, 3 ORDER BY 1, 2",
        (SPO2.id, patients, list(_VITALS), since.replace(second=0, microsecond=0)),
    ).fetchall()
    spark: dict[str, list[Any]] = {}
    for patient, minute, is_spo2, low, high, mean in rows:
        points = spark.setdefault(patient, [])
        if not points or points[-1][0] != minute:
            points.append([minute, None, None, None, None, None, None])
        start = 1 if is_spo2 else 4
        points[-1][start : start + 3] = [round(mean, 1), low, high]
    return spark


def _devices(conn: psycopg.Connection, patients: list[str]) -> dict[str, list[dict[str, Any]]]:
    """patient -> the devices that are theirs now, as their gateways last reported them."""
    rows = conn.execute(
        "SELECT d.patient, d.id, d.kind, d.state, d.battery, d.seen, d.gateway, g.state"
        " FROM device d LEFT JOIN gateway_state g ON g.gateway = d.gateway"
        " WHERE d.patient = ANY(%s) ORDER BY d.patient, d.kind, d.id",
        (patients,),
    ).fetchall()
    keys = ("id", "kind", "state", "battery", "seen", "gateway", "gateway_state")
    devices: dict[str, list[dict[str, Any]]] = {}
    for patient, *values in rows:
        device = dict(zip(keys, values, strict=True))
        device["seen"] = iso(device["seen"])
        devices.setdefault(patient, []).append(device)
    return devices


def _open_alerts(conn: psycopg.Connection, patients: list[str]) -> dict[str, list[Alert]]:
    # One open alert per patient and family at most (the alert_open_episode index).
    found: dict[str, list[Alert]] = {}
    for alert in list_alerts(conn, STATES["open"], patients, None, limit=50 * len(patients)):
        found.setdefault(alert.patient, []).append(alert)
    return found


def _calling(alert: Alert, now: datetime) -> bool:
    """Waiting for someone: not acknowledged, not snoozed, not explained away by a sensor
    off the finger."""
    snoozed = alert.snoozed_until is not None and alert.snoozed_until > now
    return alert.state == "triggered" and not snoozed and alert.inhibited_by is None


def _alert_rank(alert: Alert, now: datetime) -> tuple[bool, int, datetime]:
    return (not _calling(alert, now), _GROUPS.index(alert.priority), alert.triggered_at)


def _alert(alert: Alert, now: datetime) -> dict[str, Any]:
    return {
        "id": alert.id,
        "priority": alert.priority,
        "state": alert.state,
        "rule": alert.rule,
        "description": alert.description,
        "triggered_at": iso(alert.triggered_at),
        "snoozed_until": iso(alert.snoozed_until) if alert.snoozed_until else None,
        "revision": alert.revision,
        "calling": _calling(alert, now),
        "inhibited": alert.inhibited_by is not None,
    }


def _attention(
    patient: str, alerts: list[Alert], last: datetime | None, now: datetime
) -> tuple[str, list[Any]]:
    """What the tile needs, and the key tiles are shown in: open high, medium, then low
    alerts (an alert still calling before one someone has taken, then the oldest), then
    stale data (the stalest first; never a reading, first of all), then the rest."""
    counted = [a for a in alerts if a.inhibited_by is None]
    if counted:
        top = min(_GROUPS.index(a.priority) for a in counted)
        heads = [a for a in counted if _GROUPS.index(a.priority) == top]
        calling = [a for a in heads if _calling(a, now)]
        since = min(a.triggered_at for a in calling or heads)
        return _GROUPS[top], [top, 0 if calling else 1, since.timestamp(), patient]
    if last is None or now - last > STALE_AFTER:
        return "stale", [3, 0, last.timestamp() if last else 0, patient]
    return "ok", [4, 0, 0, patient]
