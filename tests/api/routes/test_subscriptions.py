"""FHIR Subscriptions over real HTTP: the API on uvicorn with its worker, a real rest-hook
receiver and a real websocket client, against the populated ward."""

from __future__ import annotations

import json
from typing import Any

import httpx
import psycopg
import pytest
from websockets.sync.client import connect

from alerts.channels import verify
from alerts.outbox import Channels
from alerts.store import take_event
from api.subscriptions.resources import CONTENT, FILTER, SECRET, TOPIC_CANONICAL
from api.subscriptions.topics import NEW_ALERT, NEW_OBSERVATION
from tests.alerts.test_store import event
from tests.api.access.ward import Ward, populate, serve, ward
from tests.api.subscriptions.receiver import event_numbers, parameter, receiver
from vigil.settings import Settings

pytestmark = [pytest.mark.slow, pytest.mark.services]


def subscription(
    patient: str | None,
    endpoint: str | None,
    topic: str = NEW_ALERT.url,
    content: str = "id-only",
) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Subscription",
        "status": "requested",
        "reason": "the test's integration",
        "criteria": topic,
        "channel": {
            "type": "rest-hook" if endpoint else "websocket",
            "payload": "application/fhir+json",
            "_payload": {"extension": [{"url": CONTENT, "valueCode": content}]},
        },
    }
    if endpoint:
        resource["channel"]["endpoint"] = endpoint
    if patient:
        resource["_criteria"] = {
            "extension": [{"url": FILTER, "valueString": f"Flag?patient=Patient/{patient}"}]
        }
    return resource


def pulse_alert(url: str, patient: str) -> int:
    """A new alert: a pulse episode (the ward's alerts are SpO2 ones)."""
    with psycopg.connect(url, autocommit=True) as conn, conn.transaction():
        made = take_event(
            conn,
            event("persisted", rule="hr_extreme_high", metric="heart_rate", patient=patient),
            Channels(),
        )
    assert made is not None
    return made


def create(w: Ward, who: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(f"{w.base}/fhir/Subscription", json=body, headers=w.auth(who), timeout=10)


def secret_of(made: dict[str, Any]) -> str:
    return next(e["valueString"] for e in made["channel"]["extension"] if e["url"] == SECRET)


def test_a_rest_hook_gets_its_handshake_then_signed_numbered_alerts(database_url: str) -> None:
    with receiver() as hook, ward(database_url, api_local_hooks=True) as w:
        answer = create(w, "dr-north", subscription("pn1", hook.url))
        assert answer.status_code == 201, answer.text
        made = answer.json()
        assert made["status"] == "requested"
        assert answer.headers["location"].endswith(f"/fhir/Subscription/{made['id']}")
        secret = secret_of(made)
        (handshake,) = hook.wait_for(1)
        assert handshake.kind == "handshake"
        assert verify(secret, handshake.body, handshake.headers["x-vigil-signature"])

        alert = pulse_alert(w.url, "pn1")
        pulse_alert(w.url, "pn2")  # dr-north's too, but not this subscription's patient
        note = hook.wait_for(2)[1]
        assert verify(secret, note.body, note.headers["x-vigil-signature"])
        assert note.numbers == [1]
        assert note.bundle["entry"][1]["fullUrl"].endswith(f"/fhir/Flag/{alert}")

        read = httpx.get(answer.headers["location"], headers=w.auth("dr-north")).json()
        assert read["status"] == "active"
        assert SECRET not in json.dumps(read)
        status = httpx.get(f"{answer.headers['location']}/$status", headers=w.auth("dr-north"))
        assert status.status_code == 200
        parameters = status.json()["entry"][0]["resource"]
        since = next(
            p for p in parameters["parameter"] if p["name"] == "events-since-subscription-start"
        )
        assert since["valueString"] == "1"
        replay = httpx.get(
            f"{answer.headers['location']}/$events",
            params={"eventsSinceNumber": "1"},
            headers=w.auth("dr-north"),
        ).json()
        assert replay["type"] == "history" and event_numbers(replay) == [1]
        assert parameter(replay, "type")["valueCode"] == "query-event"

        other = httpx.get(answer.headers["location"], headers=w.auth("dr-south"))
        assert other.status_code == 404
        gone = httpx.delete(answer.headers["location"], headers=w.auth("dr-north"))
        assert gone.status_code == 204
        again = httpx.delete(answer.headers["location"], headers=w.auth("dr-north"))
        assert again.status_code == 204
        assert httpx.get(answer.headers["location"], headers=w.auth("dr-north")).status_code == 410


@pytest.mark.parametrize(
    ("who", "body", "status"),
    [
        ("dr-north", subscription("ps1", "http://127.0.0.1:9/hook"), 404),  # another team's
        ("pn1", subscription("pn2", "http://127.0.0.1:9/hook"), 404),  # another patient
        ("ehr-link", subscription("ps1", "http://127.0.0.1:9/hook"), 403),  # no Subscription scope
        ("dr-north", subscription(None, None, NEW_OBSERVATION.url), 400),  # needs a patient
        ("dr-north", subscription("pn1", "http://example.org/hook"), 400),  # plain http, not local
        ("dr-north", subscription("pn1", "https://127.0.0.1:5432/"), 400),  # this machine
        ("dr-north", subscription("pn1", "https://169.254.169.254/latest"), 400),  # metadata
        ("dr-north", subscription("pn1", "https://10.1.2.3/hook"), 400),  # a private network
        ("dr-north", subscription("pn1", None, "https://example.org/no-such-topic"), 400),
    ],
)
def test_what_may_not_be_subscribed_to_is_refused(
    database_url: str, who: str, body: dict[str, Any], status: int
) -> None:
    with ward(database_url) as w:
        answer = create(w, who, body)
        assert answer.status_code == status, answer.text
        assert answer.json()["resourceType"] == "OperationOutcome"
        with psycopg.connect(database_url) as conn:
            made = conn.execute("SELECT count(*) FROM subscription").fetchone()
        assert made == (len(w.subscriptions),)  # the ward's own, and no other


def test_alerts_raised_while_the_api_is_down_are_delivered_after_it_restarts(
    database_url: str,
) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn, conn.transaction():
        tokens, *_ = populate(conn)
    auth = {"Authorization": f"Bearer {tokens['dr-north']}"}
    settings = Settings(database_url=database_url, api_local_hooks=True)
    with receiver() as hook:
        with serve(settings) as base:
            answer = httpx.post(
                f"{base}/fhir/Subscription", json=subscription(None, hook.url), headers=auth
            )
            assert answer.status_code == 201
            hook.wait_for(1)
            pulse_alert(database_url, "pn1")
            hook.wait_for(2)
        pulse_alert(database_url, "pn2")  # while no API runs
        hook.refusals = 1  # and the first try after the restart fails too
        with serve(settings):
            hook.wait_for(3, timeout=30)
        assert [n for r in hook.events() for n in r.numbers] == [1, 2]


def test_a_websocket_is_sent_its_handshake_and_then_the_events(database_url: str) -> None:
    with ward(database_url) as w:
        made = create(w, "pn1", subscription("pn1", None))
        assert made.status_code == 201, made.text
        assert made.json()["status"] == "active"
        location = made.headers["location"]
        binding = httpx.post(f"{location}/$get-ws-binding-token", headers=w.auth("pn1"))
        assert binding.status_code == 200, binding.text
        values = {p["name"]: p for p in binding.json()["parameter"]}
        refused = httpx.post(f"{location}/$get-ws-binding-token", headers=w.auth("dr-north"))
        assert refused.status_code == 404
        with connect(values["websocket-url"]["valueUrl"], open_timeout=10) as socket:
            socket.send("bind-with-token not-a-token")
            assert json.loads(socket.recv(10))["resourceType"] == "OperationOutcome"
            socket.send(f"bind-with-token {values['token']['valueString']}")
            handshake = json.loads(socket.recv(10))
            assert parameter(handshake, "type")["valueCode"] == "handshake"
            alert = pulse_alert(w.url, "pn1")
            note = json.loads(socket.recv(20))
        assert parameter(note, "type")["valueCode"] == "event-notification"
        assert event_numbers(note) == [1]
        assert note["entry"][1]["fullUrl"].endswith(f"/Flag/{alert}")


def test_the_capability_statement_lists_subscriptions_and_their_topics(
    database_url: str,
) -> None:
    with ward(database_url) as w:
        statement = httpx.get(f"{w.base}/fhir/metadata").json()
        openapi = httpx.get(f"{w.base}/openapi.json").json()
    (entry,) = [r for r in statement["rest"][0]["resource"] if r["type"] == "Subscription"]
    assert {"create", "read", "delete", "search-type"} <= {i["code"] for i in entry["interaction"]}
    declared = openapi["paths"]["/fhir/Subscription"]["get"]["x-fhir-interaction"]
    assert [e["valueCanonical"] for e in declared["extension"] if e["url"] == TOPIC_CANONICAL] == [
        NEW_ALERT.url,
        "https://vigil-rpm.org/fhir/SubscriptionTopic/alert-changed",
        NEW_OBSERVATION.url,
    ]


def test_a_principal_holds_a_bounded_number_of_subscriptions(database_url: str) -> None:
    with ward(database_url, api_subscriptions_per_principal=2) as w:
        assert create(w, "dr-north", subscription("pn1", None)).status_code == 201  # 2 with pn2's
        refused = create(w, "dr-north", subscription("pn1", None))
        assert refused.status_code == 429 and "at most" in refused.json()["issue"][0]["diagnostics"]
        assert create(w, "dr-south", subscription("ps1", None)).status_code == 201  # their own


def test_an_endpoints_credentials_are_shown_only_when_made(database_url: str) -> None:
    with ward(database_url) as w:
        body = subscription("pn1", None)
        body["channel"]["header"] = ["Authorization: Bearer their-secret"]
        made = create(w, "dr-north", body)
        assert made.status_code == 201, made.text
        assert made.json()["channel"]["header"] == ["Authorization: Bearer their-secret"]
        for who in ("dr-north", "admin"):
            read = httpx.get(made.headers["location"], headers=w.auth(who))
            assert "their-secret" not in read.text
