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
from alerts.store import AlertError, act, auto_resolve, release_inhibitions, take_event
from analytics.rules import RULE_NAMES, STALE_RULE
from tests.builders import schema_before
from vigil.db.migrate import migrate
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


def test_one_open_alert_per_patient_and_vital_sign_cleared_when_every_condition_is(
    conn: psycopg.Connection,
) -> None:
    first = take(conn, event("persisted", "hr_news2_red_high", "heart_rate"))
    assert take(conn, event("persisted", "hr_news2_red_high", "pulse_rate")) == first
    assert take(conn, event("persisted", "hr_news2_red_high", patient="p2")) != first
    take(conn, event("cleared", "hr_news2_red_high", "heart_rate"))
    assert alerts(conn)[0][3:] == (["hr_news2_red_high:pulse_rate"], None, False)  # oximeter
    just_now = datetime.now(UTC).isoformat()
    take(conn, event("cleared", "hr_news2_red_high", "pulse_rate", time=just_now))
    assert alerts(conn)[0][5] is True
    with conn.transaction():
        assert auto_resolve(conn, 3600) == []  # a recurrence within the hour is the same one
        assert auto_resolve(conn, 0) == [first]
    assert changes(conn, first)[-1] == ("resolved", "vigil-alerts")
    again = take(conn, event("persisted", "hr_news2_red_high", "heart_rate"))
    assert again != first and alerts(conn)[2][2] == "triggered"


def test_three_rules_of_one_desaturation_are_one_alert_and_one_message(
    conn: psycopg.Connection,
) -> None:
    for rule in ("spo2_desaturation", "spo2_news2_red", "spo2_below_baseline"):
        take(conn, event("persisted", rule))
    ((alert_id, rule, state, active, _, _),) = alerts(conn)
    assert (rule, state) == ("spo2_desaturation", "triggered")
    assert active == ["spo2_desaturation:spo2", "spo2_news2_red:spo2", "spo2_below_baseline:spo2"]
    owed = conn.execute("SELECT channel, revision FROM notification ORDER BY id").fetchall()
    assert owed == [("webhook", 0), ("mqtt", 0)]  # the care team's, the patient's
    assert [c for c, _ in changes(conn, alert_id)].count("condition_holds") == 2


def test_a_worse_condition_heads_the_episode_and_tells_everyone_again(
    conn: psycopg.Connection,
) -> None:
    alert_id = take(conn, event("persisted", "spo2_news2_red"))
    assert alert_id is not None
    with conn.transaction():
        act(conn, alert_id, "acknowledged", "nurse-a")
    assert take(conn, event("persisted", "spo2_desaturation")) == alert_id
    row = conn.execute(
        "SELECT rule, priority, state, rules, revision FROM alert WHERE id = %s", (alert_id,)
    ).fetchone()
    assert row == (
        "spo2_desaturation",
        "high",
        "triggered",  # acknowledged at medium: somebody must see it is worse
        ["spo2_news2_red", "spo2_desaturation"],
        1,
    )
    keys = conn.execute(
        "SELECT revision, body->>'rule', idempotency_key FROM notification WHERE channel ="
        " 'webhook' ORDER BY id"
    ).fetchall()
    assert [k[:2] for k in keys] == [(0, "spo2_news2_red"), (1, "spo2_desaturation")]
    assert keys[0][2] != keys[1][2]
    assert ("worsened", "vigil-alerts") in changes(conn, alert_id)


def test_a_condition_coming_back_is_counted_not_told_again(conn: psycopg.Connection) -> None:
    alert_id = take(conn, event("persisted", "spo2_news2_red"))
    for _ in range(3):  # the dips of a sleep apnoea
        take(conn, event("cleared", "spo2_news2_red"))
        assert take(conn, event("persisted", "spo2_news2_red")) == alert_id
    (repetitions,) = conn.execute("SELECT repetitions FROM alert").fetchone()  # type: ignore[misc]
    assert repetitions == 3
    assert conn.execute("SELECT count(*) FROM notification").fetchone() == (2,)
    assert [c for c, _ in changes(conn, alert_id)].count("recurred") == 3


def test_a_high_alert_that_clears_by_itself_stays_open_until_acknowledged(
    conn: psycopg.Connection,
) -> None:
    alert_id = take(conn, event("persisted"))
    assert alert_id is not None
    take(conn, event("cleared"))
    with conn.transaction():
        assert auto_resolve(conn, 0) == []
    assert alerts(conn)[0][2:] == ("triggered", [], None, True)  # cleared, unacknowledged
    note = conn.execute(
        "SELECT note FROM alert_change WHERE alert = %s AND change = 'condition_cleared'",
        (alert_id,),
    ).fetchone()
    assert note is not None and "until acknowledged" in note[0]
    with conn.transaction():
        act(conn, alert_id, "acknowledged", "nurse-a")
        assert auto_resolve(conn, 0) == [alert_id]


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
    own_strap = take(conn, event("persisted", "check_sensor", "heart_rate"))
    assert alerts(conn)[0][4] is None  # the strap is not the oximeter
    assert take(conn, event("persisted", "check_sensor", "spo2")) == own_strap  # one episode
    assert alerts(conn)[0][4] == own_strap
    assert changes(conn, desat)[-1] == ("inhibited", "vigil-alerts")
    take(conn, event("cleared", "check_sensor", "spo2"))  # the oximeter is back, the strap not
    assert alerts(conn)[0][4] is None


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


def test_alerts_open_before_episodes_carry_on_as_episodes(empty_database_url: str) -> None:
    with psycopg.connect(empty_database_url, autocommit=True) as conn:
        schema_before(conn, 10)
        for patient, rule, active, state in (
            ("p1", "spo2_desaturation", ["spo2"], "triggered"),
            ("p1", "spo2_news2_red", ["spo2"], "acknowledged"),
            ("p1", "hr_extreme_high", [], "resolved"),
            ("p2", "check_sensor", ["spo2", "heart_rate"], "triggered"),
        ):
            conn.execute(
                "INSERT INTO alert (patient, rule, active, priority, state, triggered_at,"
                " evidence, event_id) VALUES (%s, %s, %s, 'high', %s, now(), '{}', 'old')",
                (patient, rule, active, state),
            )
        assert migrate(conn)[0] == "010_alert_episodes.sql"
        assert conn.execute("SELECT family, rules, active FROM alert ORDER BY id").fetchall() == [
            ("spo2", ["spo2_desaturation"], ["spo2_desaturation:spo2"]),
            ("spo2_news2_red", ["spo2_news2_red"], ["spo2_news2_red:spo2"]),  # one per family
            ("pulse", ["hr_extreme_high"], []),
            ("check_sensor", ["check_sensor"], ["check_sensor:spo2", "check_sensor:heart_rate"]),
        ]
        assert take(conn, event("persisted", "spo2_desaturation")) == 1  # joins the old one
        assert take(conn, event("cleared", "spo2_news2_red")) == 2  # clears where it holds


def test_a_worsening_while_the_oximeter_is_off_is_told_when_it_is_back(
    conn: psycopg.Connection,
) -> None:
    alert_id = take(conn, event("persisted", "spo2_news2_red"))
    assert alert_id is not None
    with conn.transaction():
        act(conn, alert_id, "acknowledged", "nurse-a")  # acknowledged: not held back by it
    sensor = take(conn, event("persisted", "check_sensor", "spo2"))
    take(conn, event("persisted"))  # a desaturation the probe may be making up
    owed = "SELECT count(*) FROM notification WHERE alert = %s AND revision = 1"
    assert conn.execute(owed, (alert_id,)).fetchone() == (0,)
    assert alerts(conn)[0][4] == sensor
    take(conn, event("cleared", "check_sensor", "spo2"))
    assert conn.execute(owed, (alert_id,)).fetchone() == (2,)  # the care team, the patient


def test_a_sensor_alert_resolved_by_hand_lets_what_it_held_back_be_told(
    conn: psycopg.Connection,
) -> None:
    sensor = take(conn, event("persisted", "check_sensor", "spo2"))
    desat = take(conn, event("persisted"))
    assert sensor is not None and desat is not None
    with conn.transaction():
        act(conn, sensor, "resolved", "nurse-a", "probe refitted")
        assert release_inhibitions(conn, CHANNELS) == 1
    assert alerts(conn)[1][4] is None
    assert conn.execute("SELECT count(*) FROM notification WHERE alert = %s", (desat,)).fetchone()[
        0
    ]


def test_a_high_alert_never_told_does_not_latch(conn: psycopg.Connection) -> None:
    take(conn, event("persisted", "check_sensor", "spo2"))
    desat = take(conn, event("persisted"))  # held back: nobody was told
    take(conn, event("cleared"))
    with conn.transaction():
        assert auto_resolve(conn, 0) == [desat]


def test_a_latched_alert_whose_condition_comes_back_hours_later_is_told_again(
    conn: psycopg.Connection,
) -> None:
    alert_id = take(conn, event("persisted", time="2026-01-01T02:00:00Z"))
    take(conn, event("cleared", time="2026-01-01T02:01:00Z"))
    assert take(conn, event("persisted", time="2026-01-01T05:00:00Z")) == alert_id
    rows = conn.execute(
        "SELECT revision, count(*) FROM notification WHERE alert = %s GROUP BY 1 ORDER BY 1",
        (alert_id,),
    ).fetchall()
    assert rows == [(0, 2), (1, 2)]
    assert ("renewed", "vigil-alerts") in changes(conn, alert_id)
