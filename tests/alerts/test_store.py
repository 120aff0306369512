"""The alert lifecycle in the database: deduplication, clearing, inhibition, people's
changes, and the notifications owed."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from alerts.model import KINDS
from alerts.outbox import Channels
from alerts.store import AlertError, act, auto_resolve, take_event
from analytics.rules import RULE_NAMES, STALE_RULE
from vigil.wire.events import AnalyticsEvent

pytestmark = pytest.mark.services
CHANNELS = Channels(care_team_webhooks=("http://127.0.0.1:9/team",))
_ids = itertools.count()


def event(
    kind: str, rule: str = "spo2_desaturation", metric: str = "spo2", **extra: Any
) -> AnalyticsEvent:
    """An analytics event as the alerts service decodes it off the wire."""
    return AnalyticsEvent.from_document(
        {
            "id": f"e{next(_ids)}",
            "patient": extra.pop("patient", "p1"),
            "metric": metric,
            "rule": rule,
            "kind": kind,
            "time": "2026-01-01T10:00:15.000Z",
            "value": 84.0,
            "evidence": {"onset": "2026-01-01T10:00:00.000Z"},
            "gateway": "gw-1",
            **extra,
        }
    )


def take(conn: psycopg.Connection, e: AnalyticsEvent) -> int | None:
    with conn.transaction():
        return take_event(conn, e, CHANNELS)


def alerts(conn: psycopg.Connection) -> list[tuple[Any, ...]]:
    return conn.execute(
        "SELECT id, rule, state, active, inhibited_by, cleared_at IS NOT NULL FROM alert"
        " ORDER BY id"
    ).fetchall()


def changes(conn: psycopg.Connection, alert_id: int) -> list[tuple[str, str]]:
    return conn.execute(
        "SELECT change, actor FROM alert_change WHERE alert = %s ORDER BY id", (alert_id,)
    ).fetchall()


def test_every_rule_has_a_priority_and_audience() -> None:
    assert set(RULE_NAMES) | {STALE_RULE} <= set(KINDS)


def test_one_open_alert_per_patient_and_rule_cleared_when_every_stream_is(
    conn: psycopg.Connection,
) -> None:
    first = take(conn, event("persisted", "hr_extreme_high", "heart_rate"))
    assert take(conn, event("persisted", "hr_extreme_high", "pulse_rate")) == first
    assert len(alerts(conn)) == 1
    take(conn, event("cleared", "hr_extreme_high", "heart_rate"))
    assert alerts(conn)[0][3:] == (["pulse_rate"], None, False)  # still held by the oximeter
    take(conn, event("cleared", "hr_extreme_high", "pulse_rate"))
    assert alerts(conn)[0][5] is True
    with conn.transaction():
        assert auto_resolve(conn, 0) == [first]
    assert changes(conn, first)[-1] == ("resolved", "vigil-alerts")
    again = take(conn, event("persisted", "hr_extreme_high", "heart_rate"))
    assert again != first and alerts(conn)[1][2] == "triggered"


def test_an_event_seen_twice_changes_nothing(conn: psycopg.Connection) -> None:
    e = event("persisted")
    assert take(conn, e) is not None
    assert take(conn, e) is None
    assert conn.execute("SELECT count(*) FROM notification").fetchone() == (2,)


def test_notifications_go_to_the_care_team_and_the_patients_inbox(
    conn: psycopg.Connection,
) -> None:
    take(conn, event("persisted"))
    take(conn, event("persisted", "hr_extreme_high", "heart_rate"))
    rows = conn.execute(
        "SELECT a.rule, n.channel, n.target, n.audience, n.body->>'text' FROM notification n"
        " JOIN alert a ON a.id = n.alert ORDER BY n.id"
    ).fetchall()
    assert [r[:4] for r in rows] == [
        ("spo2_desaturation", "webhook", "http://127.0.0.1:9/team", "care_team"),
        ("spo2_desaturation", "mqtt", "gw-1", "patient"),
        ("hr_extreme_high", "webhook", "http://127.0.0.1:9/team", "care_team"),
    ]
    assert "oxygen level has been low" in rows[1][4]


def test_no_spo2_alert_while_the_oximeter_is_off_the_finger(conn: psycopg.Connection) -> None:
    sensor = take(conn, event("persisted", "check_sensor", "spo2"))
    desat = take(conn, event("persisted"))
    assert alerts(conn)[1][4] == sensor
    assert changes(conn, desat) == [("inhibited", "vigil-alerts")]
    owed = conn.execute("SELECT count(*) FROM notification WHERE alert = %s", (desat,))
    assert owed.fetchone() == (0,)
    take(conn, event("cleared", "check_sensor", "spo2"))
    assert alerts(conn)[1][4] is None
    assert changes(conn, desat)[-1] == ("inhibition_lifted", "vigil-alerts")


def test_a_sensor_coming_off_inhibits_the_spo2_alert_already_open(
    conn: psycopg.Connection,
) -> None:
    desat = take(conn, event("persisted"))
    strap = take(conn, event("persisted", "check_sensor", "heart_rate", patient="p2"))
    assert strap is not None and alerts(conn)[0][4] is None  # another patient's strap
    sensor = take(conn, event("persisted", "check_sensor", "spo2"))
    assert alerts(conn)[0][4] == sensor
    assert changes(conn, desat)[-1] == ("inhibited", "vigil-alerts")


def test_people_acknowledge_resolve_and_snooze_with_their_name(conn: psycopg.Connection) -> None:
    alert_id = take(conn, event("persisted"))
    assert alert_id is not None
    with conn.transaction():
        act(conn, alert_id, "acknowledged", "dr-smith", "calling the patient")
    later = datetime.now(UTC) + timedelta(minutes=30)
    with conn.transaction():
        act(conn, alert_id, "snoozed", "dr-smith", until=later)
    with pytest.raises(AlertError, match="in the future"), conn.transaction():
        act(conn, alert_id, "snoozed", "dr-smith", until=datetime.now(UTC))
    with conn.transaction():
        act(conn, alert_id, "resolved", "nurse-jones")
    with pytest.raises(AlertError, match="already resolved"), conn.transaction():
        act(conn, alert_id, "acknowledged", "dr-smith")
    with pytest.raises(AlertError, match="no alert 999999"), conn.transaction():
        act(conn, 999_999, "acknowledged", "dr-smith")
    assert [c for c in changes(conn, alert_id)] == [
        ("triggered", "vigil-alerts"),
        ("acknowledged", "dr-smith"),
        ("snoozed", "dr-smith"),
        ("resolved", "nurse-jones"),
    ]
