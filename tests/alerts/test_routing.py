"""Care teams: the first tier told, the next one when nobody acknowledges a high-priority
alert in time, quiet hours for low priority; deliveries through apprise to a real
local receiver."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from alerts.dispatch import Dispatcher
from alerts.model import load_patient_messages
from alerts.outbox import Channels, escalate
from alerts.store import act, take_event
from alerts.teams import add_member, add_patient_contact, add_team, assign
from tests.alerts.receiver import Receiver
from tests.alerts.test_store import event

pytestmark = pytest.mark.services
CHANNELS = Channels(escalate_after_s=120)


def ward(conn: psycopg.Connection, receiver: Receiver, **team: object) -> None:
    add_team(conn, "ward-7", "Ward 7 virtual ward", **team)  # type: ignore[arg-type]
    add_member(conn, "ward-7", "nurse-a", 1, f"json://127.0.0.1:{receiver.port}/nurse-a")
    add_member(conn, "ward-7", "doctor-b", 2, f"json://127.0.0.1:{receiver.port}/doctor-b")
    assign(conn, "p1", "ward-7")


def deliver(conn: psycopg.Connection) -> int:
    return Dispatcher(conn, "unused", lambda *_: None).run_once()


def open_alert(
    conn: psycopg.Connection, rule: str = "hr_extreme_high", metric: str = "heart_rate"
) -> int:
    with conn.transaction():
        alert_id = take_event(conn, event("persisted", rule, metric), CHANNELS)
    assert alert_id is not None
    return alert_id


def overdue(conn: psycopg.Connection) -> list[int]:
    """The escalation timeout, passed: the test is about what happens, not the waiting."""
    conn.execute("UPDATE alert SET escalate_at = now() WHERE escalate_at IS NOT NULL")
    with conn.transaction():
        return escalate(conn, CHANNELS)


def test_the_first_tier_is_told_through_apprise(
    conn: psycopg.Connection, receiver: Receiver
) -> None:
    ward(conn, receiver)
    open_alert(conn)
    deliver(conn)
    (request,) = receiver.requests
    assert request["path"] == "/nurse-a"
    assert request["body"]["title"] == "Vigil HIGH: hr_extreme_high (p1)"
    assert "vigil alerts ack" in request["body"]["message"]


def test_unacknowledged_high_priority_goes_to_the_next_tier_and_acknowledging_stops_it(
    conn: psycopg.Connection, receiver: Receiver
) -> None:
    ward(conn, receiver)
    alert_id = open_alert(conn)
    assert overdue(conn) == [alert_id]
    deliver(conn)  # both tiers in one round, delivered side by side
    assert sorted(r["path"] for r in receiver.requests) == ["/doctor-b", "/nurse-a"]
    assert overdue(conn) == []  # no third tier: recorded, and nobody else to tell
    last = conn.execute(
        "SELECT change FROM alert_change WHERE alert = %s ORDER BY id DESC LIMIT 1", (alert_id,)
    ).fetchone()
    assert last == ("escalation_exhausted",)

    second = open_alert(conn, "spo2_desaturation", "spo2")  # another episode
    with conn.transaction():
        act(conn, second, "acknowledged", "nurse-a")
    assert overdue(conn) == []
    assert conn.execute(
        "SELECT tier, escalate_at FROM alert WHERE id = %s", (second,)
    ).fetchone() == (1, None)


def test_a_snoozed_alert_escalates_only_when_the_snooze_ends(
    conn: psycopg.Connection, receiver: Receiver
) -> None:
    ward(conn, receiver)
    alert_id = open_alert(conn)
    until = datetime.now(UTC) + timedelta(hours=1)
    with conn.transaction():
        act(conn, alert_id, "snoozed", "nurse-a", until=until)
    with conn.transaction():
        assert escalate(conn, CHANNELS) == []
    (due,) = conn.execute("SELECT escalate_at FROM alert WHERE id = %s", (alert_id,)).fetchone()
    assert abs((due - until).total_seconds()) < 1


def test_low_priority_waits_out_the_quiet_hours(
    conn: psycopg.Connection, receiver: Receiver
) -> None:
    now = datetime.now(UTC)
    start, end = (now - timedelta(hours=1)).time(), (now + timedelta(hours=2)).time()
    ward(conn, receiver, quiet=(start.replace(microsecond=0), end.replace(microsecond=0)))
    with conn.transaction():
        take_event(conn, event("persisted", "hr_off_baseline", "heart_rate"), CHANNELS)
    open_alert(conn)  # high priority: quiet hours do not apply
    deliver(conn)
    assert [r["path"] for r in receiver.requests] == ["/nurse-a"]
    (wait,) = conn.execute(
        "SELECT next_attempt FROM notification WHERE state = 'pending'"
    ).fetchone()
    assert timedelta(hours=1.9) < wait - now < timedelta(hours=2.1)


def test_quiet_hours_over_midnight(conn: psycopg.Connection) -> None:
    def quiet_until(at: str) -> object:
        row = conn.execute(
            "SELECT vigil_quiet_until(%s::timestamptz, 'Europe/London', '22:00', '07:00')",
            (at,),
        ).fetchone()
        return row[0].astimezone(UTC).isoformat() if row and row[0] else None

    assert quiet_until("2026-01-10T23:30:00Z") == "2026-01-11T07:00:00+00:00"
    assert quiet_until("2026-01-11T03:00:00Z") == "2026-01-11T07:00:00+00:00"
    assert quiet_until("2026-07-11T03:00:00Z") == "2026-07-11T06:00:00+00:00"  # BST
    assert quiet_until("2026-01-11T12:00:00Z") is None


def test_mistakes_in_teams_are_named(conn: psycopg.Connection) -> None:
    with pytest.raises(ValueError, match="unknown time zone"):
        add_team(conn, "t", timezone="Mars/Olympus")
    with pytest.raises(ValueError, match="no team 'nope'"):
        add_member(conn, "nope", "x", 1, "json://localhost")
    with pytest.raises(ValueError, match="tiers start at 1"):
        add_member(conn, "nope", "x", 0, "json://localhost")


def test_the_patient_is_told_on_their_own_channel_in_the_teams_words(
    conn: psycopg.Connection, receiver: Receiver, tmp_path: Path
) -> None:
    add_patient_contact(conn, "p1", f"json://127.0.0.1:{receiver.port}/p1-phone")
    path = tmp_path / "messages.json"
    path.write_text(json.dumps({"spo2_desaturation": "Votre oxygène est bas. Reposez-vous."}))
    channels = Channels(patient_messages=load_patient_messages(path))
    with conn.transaction():
        take_event(conn, event("persisted"), channels)
    inbox: list[bytes] = []
    Dispatcher(conn, "unused", lambda _g, payload: inbox.append(payload)).run_once()
    (request,) = receiver.requests
    assert request["path"] == "/p1-phone"
    assert request["body"]["message"] == "Votre oxygène est bas. Reposez-vous."
    assert json.loads(inbox[0])["text"] == "Votre oxygène est bas. Reposez-vous."


@pytest.mark.parametrize(
    ("document", "words"),
    [({"fever": "x"}, "'fever' is not a rule"), ({"spo2_desaturation": " "}, "is empty")],
)
def test_a_messages_file_with_a_mistake_is_refused(
    tmp_path: Path, document: dict[str, str], words: str
) -> None:
    path = tmp_path / "messages.json"
    path.write_text(json.dumps(document))
    with pytest.raises(ValueError, match=words):
        load_patient_messages(path)


def failed_deliveries(conn: psycopg.Connection, rounds: int) -> None:
    dispatcher = Dispatcher(conn, "unused", lambda *_: None, max_attempts=2)
    for _ in range(rounds):
        dispatcher.run_once()
        conn.execute("UPDATE notification SET next_attempt = now() WHERE state = 'pending'")


def changes(conn: psycopg.Connection, alert_id: int) -> list[str]:
    rows = conn.execute("SELECT change FROM alert_change WHERE alert = %s ORDER BY id", (alert_id,))
    return [c for (c,) in rows]


def test_a_delivery_that_failed_escalates_at_once_whatever_the_priority(
    conn: psycopg.Connection, receiver: Receiver
) -> None:
    receiver.fail_first = 2  # nurse-a's two attempts
    ward(conn, receiver)
    alert_id = open_alert(conn, "hr_news2_red_high")  # medium: it would not escalate by time
    failed_deliveries(conn, 2)
    with conn.transaction():
        assert escalate(conn, CHANNELS) == [alert_id]  # no waiting for a timeout
    deliver(conn)
    answered = [(r["path"], r["answered"]) for r in receiver.requests]
    assert answered == [("/nurse-a", 503), ("/nurse-a", 503), ("/doctor-b", 200)]
    assert changes(conn, alert_id)[-2:] == ["delivery_failed", "escalated"]


def test_a_team_nobody_of_which_can_be_told_is_reported(
    conn: psycopg.Connection, receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    receiver.fail_first = 100
    ward(conn, receiver)
    alert_id = open_alert(conn)
    failed_deliveries(conn, 2)
    with conn.transaction():
        assert escalate(conn, CHANNELS) == [alert_id]
    failed_deliveries(conn, 2)
    with conn.transaction(), caplog.at_level("ERROR"):
        assert escalate(conn, CHANNELS) == []
    assert changes(conn, alert_id)[-2:] == ["escalation_exhausted", "team_unreachable"]
    assert "no one of the care team could be told" in caplog.text
