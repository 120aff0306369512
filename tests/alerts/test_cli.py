"""`vigil team` and `vigil alerts list|ack|resolve|snooze` as a user meets them."""

from __future__ import annotations

import json

import psycopg
import pytest

from alerts.outbox import Channels
from alerts.store import take_event
from tests.alerts.test_store import event
from tests.cli.test_main import vigil

pytestmark = pytest.mark.services


def test_a_team_is_set_up_from_the_command_line(database_url: str) -> None:
    env = {"VIGIL_DATABASE_URL": database_url}
    assert vigil("team", "add", "ward-7", "--quiet", "22:00-07:00", env=env).returncode == 0
    member = vigil(
        "team", "member", "ward-7", "nurse-a", "--tier", "1", "--contact", "ntfy://x", env=env
    )
    assert member.returncode == 0 and "tier 1 of ward-7" in member.stdout
    named = vigil("team", "assign", "p1", "ward-7", "--name", "Ada Lovelace", env=env)
    assert named.returncode == 0 and "Ada" not in named.stdout
    bad = vigil("team", "add", "ward-8", "--quiet", "late", env=env)
    assert bad.returncode == 2 and "use HH:MM-HH:MM" in bad.stderr
    missing = vigil("team", "member", "nope", "x", "--tier", "1", "--contact", "a://", env=env)
    assert missing.returncode == 2 and "vigil team add nope" in missing.stderr
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT team FROM patient_team").fetchall() == [("ward-7",)]
        assert conn.execute("SELECT id, name FROM patient").fetchall() == [("p1", "Ada Lovelace")]


def test_alerts_are_listed_and_acknowledged_with_a_name(database_url: str) -> None:
    env = {"VIGIL_DATABASE_URL": database_url}
    assert vigil("alerts", "list", env=env).stdout.strip() == "no open alerts"
    with psycopg.connect(database_url, autocommit=True) as conn, conn.transaction():
        alert_id = take_event(conn, event("persisted"), Channels())
    listed = json.loads(vigil("alerts", "list", "--json", env=env).stdout)
    assert [(a["id"], a["rule"], a["state"], a["failed_notifications"]) for a in listed] == [
        (alert_id, "spo2_desaturation", "triggered", 0)
    ]
    nameless = vigil("alerts", "ack", str(alert_id), env=env)
    assert nameless.returncode == 2 and "--by NAME" in nameless.stderr
    ack = vigil("alerts", "ack", str(alert_id), "--by", "dr-smith", env=env)
    assert ack.returncode == 0, ack.stderr
    done = vigil("alerts", "resolve", str(alert_id), "--by", "dr-smith", env=env)
    assert done.returncode == 0
    again = vigil("alerts", "ack", str(alert_id), "--by", "dr-smith", env=env)
    assert again.returncode == 2 and "already resolved" in again.stderr
    assert "Traceback" not in again.stderr
    late = vigil("alerts", "snooze", "1", "--by", "x", "--until", "soon", env=env)
    assert late.returncode == 2 and "not ISO 8601" in late.stderr


def test_an_admin_url_that_cannot_be_used_stops_the_start_with_what_to_fix() -> None:
    env = {
        "VIGIL_DATABASE_URL": "postgresql://localhost/unused",
        "VIGIL_MQTT_URL": "mqtt://localhost:1",  # not reached: the check comes first
        "VIGIL_ALERTS_ADMIN_URLS": "json://localhost/ops,foo://ops:hunter2@example.org",
    }
    refused = vigil("alerts", env=env)
    assert refused.returncode == 2
    assert "VIGIL_ALERTS_ADMIN_URLS: URL 2 (foo) is not one apprise can use" in refused.stderr
    assert "hunter2" not in refused.stderr and "Traceback" not in refused.stderr
