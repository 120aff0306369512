"""A patient's messages: what the alerts service told them, one message per telling however
many channels carried it, only within the caller's compartment, audited."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from alerts.dispatch import Dispatcher
from alerts.model import KINDS
from alerts.outbox import Channels
from alerts.store import take_event
from alerts.teams import add_patient_contact
from api.access.tokens import create_client
from api.app import create_app
from tests.alerts.test_store import event
from tests.api.conftest import clinician_token
from vigil.settings import Settings

pytestmark = pytest.mark.services

LOW_OXYGEN = KINDS["spo2_desaturation"].patient_message
CHECK_SENSOR = KINDS["check_sensor"].patient_message


@pytest.fixture
def api(database_url: str) -> Iterator[tuple[TestClient, dict[str, str], str]]:
    """p1 told of a medium SpO2 alert, then again when it worsened to high, then of their
    sensor; p1 also has an e-mail contact, so each telling goes by two channels. A pulse
    alert is for the care team only. p2 is told of their own sensor."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        tokens = {
            "p1": create_client(conn, "p1-self", "patient", patient="p1"),
            "dr": clinician_token(conn, "dr-test", ["p1"]),
            "dr-other": clinician_token(conn, "dr-other", ["p2"], team="t-other"),
        }
        add_patient_contact(conn, "p1", "json://127.0.0.1:9/p1")
        for e in (
            event("persisted", "spo2_news2_red"),
            event("persisted", "spo2_desaturation"),
            event("persisted", "hr_extreme_high", "heart_rate"),
            event("persisted", "check_sensor", "spo2"),
            event("persisted", "check_sensor", "spo2", patient="p2"),
        ):
            with conn.transaction():
                take_event(conn, e, Channels())
    with TestClient(create_app(Settings(database_url=database_url))) as client:
        yield client, tokens, database_url


def messages(client: TestClient, token: str, patient: str, **params: int) -> Any:
    return client.get(
        f"/patients/{patient}/messages",
        params=params,
        headers={"Authorization": f"Bearer {token}"},
    )


def test_a_patient_reads_each_telling_once_newest_first(api) -> None:  # type: ignore[no-untyped-def]
    client, tokens, url = api
    answer = messages(client, tokens["p1"], "p1")
    assert answer.status_code == 200
    doc = answer.json()
    assert doc["patient"] == "p1"
    told = [(m["rule"], m["revision"], m["text"]) for m in doc["messages"]]
    assert told == [
        ("check_sensor", 0, CHECK_SENSOR),
        ("spo2_desaturation", 1, LOW_OXYGEN),  # the episode worsened: told again
        ("spo2_desaturation", 0, LOW_OXYGEN),
    ]
    assert all(m["delivered"] is None and m["alert_state"] == "triggered" for m in doc["messages"])
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT actor, action, resource, outcome, patients FROM audit_event"
            " ORDER BY id DESC LIMIT 1"
        ).fetchone()
    assert row == ("p1-self", "search", "/patients/p1/messages", "success", ["p1"])
    assert len(messages(client, tokens["p1"], "p1", limit=1).json()["messages"]) == 1


def test_a_message_is_delivered_when_its_first_channel_got_it_through(api) -> None:  # type: ignore[no-untyped-def]
    client, tokens, url = api
    inbox: list[tuple[str, bytes]] = []
    with psycopg.connect(url, autocommit=True) as conn:
        # The gateway's inbox takes the messages; the e-mail contact refuses them.
        Dispatcher(conn, "secret", lambda gw, payload: inbox.append((gw, payload))).run_once()
    assert inbox
    shown = messages(client, tokens["p1"], "p1").json()["messages"]
    assert len(shown) == 3
    assert all(m["delivered"] is not None for m in shown)


def test_the_care_team_reads_them_and_nobody_else(api) -> None:  # type: ignore[no-untyped-def]
    client, tokens, _ = api
    assert len(messages(client, tokens["dr"], "p1").json()["messages"]) == 3
    for who, patient in (("p1", "p2"), ("dr", "p2"), ("dr-other", "p1"), ("p1", "nobody")):
        refused = messages(client, tokens[who], patient)
        assert refused.status_code == 404, (who, patient)
        assert refused.json()["resourceType"] == "OperationOutcome"
        assert patient not in refused.text and CHECK_SENSOR not in refused.text
    assert messages(client, tokens["p1"], "p1%00").status_code == 400
    assert client.get("/patients/p1/messages").status_code == 401
