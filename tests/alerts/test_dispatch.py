"""Delivering the outbox to a real local HTTP receiver: signed, retried, never dropped."""

from __future__ import annotations

import json
from collections.abc import Callable

import psycopg
import pytest

from alerts.channels import DeliveryError
from alerts.dispatch import Dispatcher
from alerts.outbox import Channels
from alerts.store import take_event
from tests.alerts.receiver import SECRET, Receiver
from tests.alerts.test_store import event

pytestmark = pytest.mark.services


def owe(conn: psycopg.Connection, url: str) -> None:
    with conn.transaction():
        take_event(conn, event("persisted"), Channels(care_team_webhooks=(url,)))


def make_due(conn: psycopg.Connection) -> None:
    """The backoff's wait, skipped: the test is about what happens, not when."""
    conn.execute("UPDATE notification SET next_attempt = now() WHERE state = 'pending'")


def sent_to_inbox() -> tuple[list[tuple[str, bytes]], Callable[[str, bytes], None]]:
    sent: list[tuple[str, bytes]] = []
    return sent, lambda gateway, payload: sent.append((gateway, payload))


def test_a_webhook_is_signed_with_an_idempotency_key(
    conn: psycopg.Connection, receiver: Receiver
) -> None:
    owe(conn, receiver.url)
    inbox, publish = sent_to_inbox()
    assert Dispatcher(conn, SECRET, publish).run_once() == 2  # webhook and patient inbox
    (request,) = receiver.requests
    assert request["signature_ok"] and request["key"].startswith("vigil-alert-")
    body = request["body"]
    assert (body["patient"], body["priority"]) == ("p1", "high")
    assert [a["rule"] for a in body["alerts"]] == ["spo2_desaturation"]
    assert body["idempotency_key"] == request["key"]
    ((gateway, payload),) = inbox
    assert gateway == "gw-1" and "oxygen level" in json.loads(payload)["text"]
    assert Dispatcher(conn, SECRET, publish).run_once() == 0  # nothing owed any more


def test_a_patients_alerts_raised_together_go_as_one_message(
    conn: psycopg.Connection, receiver: Receiver
) -> None:
    with conn.transaction():  # one micro-batch of events
        for e in (event("persisted"), event("persisted", "check_sensor", "heart_rate")):
            take_event(conn, e, Channels(care_team_webhooks=(receiver.url,)))
    inbox, publish = sent_to_inbox()
    assert Dispatcher(conn, SECRET, publish).run_once() == 4
    (request,) = receiver.requests
    assert [a["rule"] for a in request["body"]["alerts"]] == ["spo2_desaturation", "check_sensor"]
    assert request["body"]["priority"] == "high" and request["key"].startswith("vigil-group-")
    ((_, payload),) = inbox
    message = json.loads(payload)
    assert len(message["alerts"]) == 2 and message["text"].count("oxygen level") == 1
    assert "check that the finger clip" in message["text"]


def test_a_receiver_failing_five_times_gets_the_alert_once(
    conn: psycopg.Connection, receiver: Receiver
) -> None:
    receiver.fail_first = 5
    owe(conn, receiver.url)
    _, publish = sent_to_inbox()
    dispatcher = Dispatcher(conn, SECRET, publish, max_attempts=8)
    for _ in range(6):
        dispatcher.run_once()
        make_due(conn)
    assert [r["answered"] for r in receiver.requests] == [503] * 5 + [200]
    assert len({r["key"] for r in receiver.requests}) == 1
    assert len(receiver.delivered()) == 1
    state = conn.execute("SELECT state, attempts FROM notification WHERE channel = 'webhook'")
    assert state.fetchone() == ("sent", 6)


def test_a_delivery_that_keeps_failing_is_marked_failed_and_visible(
    conn: psycopg.Connection, receiver: Receiver
) -> None:
    receiver.fail_first = 100
    owe(conn, receiver.url)

    def broker_down(_gateway: str, _payload: bytes) -> None:
        raise DeliveryError("broker: connection refused")

    dispatcher = Dispatcher(conn, SECRET, broker_down, max_attempts=3)
    for _ in range(5):
        dispatcher.run_once()
        make_due(conn)
    rows = conn.execute(
        "SELECT channel, state, attempts, last_error FROM notification ORDER BY id"
    ).fetchall()
    assert rows == [
        ("webhook", "failed", 3, "HTTP 503"),
        ("mqtt", "failed", 3, "broker: connection refused"),
    ]
    assert len(receiver.requests) == 3


def test_a_failure_nobody_foresaw_is_a_failed_attempt_not_the_end_of_delivery(
    conn: psycopg.Connection, receiver: Receiver
) -> None:
    owe(conn, receiver.url)

    def broken(_gateway: str, _payload: bytes) -> None:
        raise RuntimeError("a bug in a channel")

    assert Dispatcher(conn, SECRET, broken).run_once() == 1  # the webhook still went
    rows = conn.execute("SELECT channel, state, attempts, last_error FROM notification").fetchall()
    assert sorted(rows) == [
        ("mqtt", "pending", 1, "unexpected RuntimeError"),
        ("webhook", "sent", 1, ""),
    ]
