"""The administrators' channel: a care team nobody of which could be told of an alert is
reported to them once, through the outbox; a report that fails is an ERROR, not a loop.
Every care-team channel here is a real local receiver that refuses: HTTP 503, or a port
nobody listens on."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import psycopg
import pytest

from alerts.admins import admin_urls
from alerts.dispatch import Dispatcher
from alerts.model import State
from alerts.outbox import Channels, escalate
from alerts.queries import list_alerts, notifications_of_alert, notifications_of_patient
from alerts.store import take_event
from alerts.teams import add_member, add_team, assign
from tests.alerts.receiver import SECRET, Receiver
from tests.alerts.test_store import event

pytestmark = pytest.mark.services
VALUE = 83.7
"""The reading of the alerts' evidence, which no report and no log line may carry."""
ATTEMPTS = 2


def closed_port() -> int:
    """A local port nobody listens on: connections to it are refused."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def refusing() -> Iterator[Receiver]:
    r = Receiver(SECRET, fail_first=10_000)
    yield r
    r.close()


@pytest.fixture
def admins() -> Iterator[Receiver]:
    r = Receiver(SECRET)
    yield r
    r.close()


def unreachable_ward(conn: psycopg.Connection, refusing: Receiver) -> None:
    """Ward 7, whose nurse's phone answers 503 and whose doctor's is nowhere."""
    add_team(conn, "ward-7", "Ward 7 virtual ward")
    add_member(conn, "ward-7", "nurse-a", 1, f"json://127.0.0.1:{refusing.port}/nurse-a")
    add_member(conn, "ward-7", "doctor-b", 2, f"json://127.0.0.1:{closed_port()}/doctor-b")
    assign(conn, "p1", "ward-7")


def channels(refusing: Receiver, admins: Receiver) -> Channels:
    return Channels(
        care_team_webhooks=(refusing.url,),
        patient_inbox=False,
        admin_urls=(f"json://127.0.0.1:{admins.port}/admins",),
    )


def open_alert(conn: psycopg.Connection, chans: Channels) -> int:
    with conn.transaction():
        alert_id = take_event(conn, event("persisted", value=VALUE), chans)
    assert alert_id is not None
    return alert_id


def service_rounds(conn: psycopg.Connection, chans: Channels, rounds: int) -> None:
    """What the service's two threads do, in turn, with the backoff's waits skipped."""
    dispatcher = Dispatcher(conn, SECRET, lambda *_: None, max_attempts=ATTEMPTS)
    for _ in range(rounds):
        dispatcher.run_once()
        conn.execute("UPDATE notification SET next_attempt = now() WHERE state = 'pending'")
        with conn.transaction():
            escalate(conn, chans)


def changes(conn: psycopg.Connection, alert_id: int) -> list[str]:
    rows = conn.execute("SELECT change FROM alert_change WHERE alert = %s ORDER BY id", (alert_id,))
    return [c for (c,) in rows]


def test_a_team_whose_every_channel_refuses_is_reported_to_the_administrators_once(
    conn: psycopg.Connection,
    refusing: Receiver,
    admins: Receiver,
    caplog: pytest.LogCaptureFixture,
) -> None:
    unreachable_ward(conn, refusing)
    chans = channels(refusing, admins)
    caplog.set_level("INFO")
    alert_id = open_alert(conn, chans)
    service_rounds(conn, chans, 12)  # long past the last tier's last attempt
    (report,) = admins.requests
    assert report["path"] == "/admins" and report["answered"] == 200
    title, text = report["body"]["title"], report["body"]["message"]
    assert title == f"Vigil: care team ward-7 could not be reached (alert {alert_id})"
    assert f"Alert {alert_id} (high, spo2_desaturation) of patient p1" in text
    assert "care team ward-7 (Ward 7 virtual ward)" in text
    assert "- nurse-a (tier 1) by apprise: apprise could not deliver it, after 2" in text
    assert "- doctor-b (tier 2) by apprise" in text
    assert "- webhook at 127.0.0.1 by webhook: HTTP 503, after 2" in text
    assert str(VALUE) not in text and str(VALUE) not in caplog.text
    assert changes(conn, alert_id).count("team_unreachable") == 1
    assert "no one of the care team could be told (team ward-7" in caplog.text
    (listed,) = list_alerts(conn, (State.TRIGGERED,))
    assert listed.team_unreachable and listed.as_dict()["team_unreachable"] is True
    admin = [n for n in notifications_of_alert(conn, alert_id) if n.audience == "admin"]
    assert [(n.state, n.attempts) for n in admin] == [("sent", 1)]
    assert all(n.audience != "admin" for n in notifications_of_patient(conn, "p1"))


def test_a_report_that_fails_too_is_an_error_and_kept_failed_not_a_loop(
    conn: psycopg.Connection,
    refusing: Receiver,
    admins: Receiver,
    caplog: pytest.LogCaptureFixture,
) -> None:
    admins.fail_first = 10_000
    unreachable_ward(conn, refusing)
    chans = channels(refusing, admins)
    alert_id = open_alert(conn, chans)
    with caplog.at_level("ERROR"):
        service_rounds(conn, chans, 12)
    assert [r["answered"] for r in admins.requests] == [503] * ATTEMPTS
    admin = [n for n in notifications_of_alert(conn, alert_id) if n.audience == "admin"]
    assert [(n.state, n.attempts, n.last_error) for n in admin] == [
        ("failed", ATTEMPTS, "apprise could not deliver it")
    ]
    assert "to the administrators" in caplog.text and "kept as failed" in caplog.text
    owed = conn.execute("SELECT count(*) FROM notification").fetchone()
    service_rounds(conn, chans, 5)
    assert conn.execute("SELECT count(*) FROM notification").fetchone() == owed
    assert len(admins.requests) == ATTEMPTS
    assert changes(conn, alert_id).count("team_unreachable") == 1


def test_a_crash_before_the_commit_loses_no_report_and_a_pass_found_again_doubles_none(
    conn: psycopg.Connection, refusing: Receiver, admins: Receiver
) -> None:
    unreachable_ward(conn, refusing)
    chans = channels(refusing, admins)
    alert_id = open_alert(conn, chans)
    dispatcher = Dispatcher(conn, SECRET, lambda *_: None, max_attempts=1)
    dispatcher.run_once()  # tier 1 and the webhook fail for good
    with conn.transaction():
        escalate(conn, chans)  # tier 2
    dispatcher.run_once()  # and it fails: every tier tried, nobody told
    with pytest.raises(RuntimeError), conn.transaction():
        escalate(conn, chans)
        raise RuntimeError("killed before the commit")
    assert "team_unreachable" not in changes(conn, alert_id)
    with conn.transaction():
        escalate(conn, chans)
    conn.execute("UPDATE alert SET escalate_at = now()")  # a late failure finds it again
    with conn.transaction():
        escalate(conn, chans)
    restarted = Dispatcher(conn, SECRET, lambda *_: None)
    assert restarted.run_once() == 1
    assert restarted.run_once() == 0
    assert len(admins.requests) == 1
    assert changes(conn, alert_id).count("team_unreachable") == 1


def test_a_team_is_not_unreachable_while_its_last_tier_is_still_being_tried(
    conn: psycopg.Connection, refusing: Receiver, admins: Receiver
) -> None:
    unreachable_ward(conn, refusing)
    chans = channels(refusing, admins)
    alert_id = open_alert(conn, chans)
    dispatcher = Dispatcher(conn, SECRET, lambda *_: None, max_attempts=1)
    dispatcher.run_once()
    with conn.transaction():
        escalate(conn, chans)  # tier 2 owed, not yet tried
    conn.execute("UPDATE alert SET escalate_at = now()")  # its timeout passed meanwhile
    with conn.transaction():
        escalate(conn, chans)
    assert changes(conn, alert_id)[-1] == "escalation_exhausted"
    assert "team_unreachable" not in changes(conn, alert_id)
    dispatcher.run_once()  # now doctor-b's phone refuses too
    with conn.transaction():
        escalate(conn, chans)
    assert changes(conn, alert_id)[-1] == "team_unreachable"


def test_a_team_reached_by_anyone_is_not_reported(
    conn: psycopg.Connection, refusing: Receiver, admins: Receiver
) -> None:
    unreachable_ward(conn, refusing)
    reached = Receiver(SECRET)
    try:
        chans = Channels(
            care_team_webhooks=(refusing.url, reached.url),
            patient_inbox=False,
            admin_urls=(f"json://127.0.0.1:{admins.port}/admins",),
        )
        alert_id = open_alert(conn, chans)
        service_rounds(conn, chans, 12)
    finally:
        reached.close()
    assert len(reached.requests) == 1
    assert admins.requests == []
    assert changes(conn, alert_id)[-1] == "escalation_exhausted"


def test_an_admin_url_apprise_cannot_use_is_refused_without_showing_it() -> None:
    assert admin_urls(" json://a/x , mailto://ops:pw@example.org ,") == (
        "json://a/x",
        "mailto://ops:pw@example.org",
    )
    with pytest.raises(ValueError, match=r"URL 2 \(foo\) is not one apprise can use") as bad:
        admin_urls("json://a/x,foo://ops:hunter2@example.org")
    assert "hunter2" not in str(bad.value)
