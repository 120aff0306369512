"""The finder and the rest-hook deliveries against a real PostgreSQL and a real HTTP
receiver: numbered events, signed notifications, retries, restarts, and the policy asked
again before events are recorded and delivered."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

import psycopg
import pytest

from alerts.channels import verify
from alerts.outbox import Channels
from alerts.store import act, take_event
from api.access import consent
from api.access.principal import Principal
from api.access.tokens import authenticate, revoke
from api.subscriptions import store
from api.subscriptions.delivery import RestHooks
from api.subscriptions.finder import Finder
from api.subscriptions.resources import Subscription
from api.subscriptions.topics import ALERT_CHANGED, NEW_ALERT, NEW_OBSERVATION
from ingest import writer
from tests.alerts.test_store import event
from tests.api.conftest import clinician_token
from tests.api.subscriptions.receiver import Receiver, parameter, receiver
from tests.builders import batch

pytestmark = [pytest.mark.slow, pytest.mark.services]

BASE = "http://vigil.test/fhir"


@dataclass
class Setup:
    url: str
    owner: Principal
    hook: Receiver

    def worker(self) -> tuple[psycopg.Connection, Finder, RestHooks]:
        """A worker as a fresh process has it: new connections, nothing in memory."""
        conn = psycopg.connect(self.url, autocommit=True)
        return (
            conn,
            Finder(conn),
            RestHooks(psycopg.connect(self.url, autocommit=True), BASE, local_hooks=True),
        )

    def subscribe(self, topic: str, patient: str | None, content: str = "id-only") -> Subscription:
        with psycopg.connect(self.url, autocommit=True) as conn, conn.transaction():
            return store.create(
                conn,
                self.owner,
                topic=topic,
                patient=patient,
                channel="rest-hook",
                endpoint=self.hook.url,
                headers=["X-Client: vigil-test"],
                content=content,
                reason="test",
                timeout_s=5,
                max_count=20,
                ends=None,
            )

    def alert(self, patient: str = "p1") -> int:
        with psycopg.connect(self.url, autocommit=True) as conn, conn.transaction():
            made = take_event(conn, event("persisted", patient=patient), Channels())
        assert made is not None
        return made

    def read(self, sub: Subscription) -> Subscription:
        with psycopg.connect(self.url) as conn:
            found = store.read(conn, sub.id)
        assert found is not None
        return found


@pytest.fixture
def setup(database_url: str) -> Iterator[Setup]:
    with psycopg.connect(database_url, autocommit=True) as conn:
        token = clinician_token(conn, "dr-a", ["p1"])
        owner = authenticate(conn, token)
    assert owner is not None
    with receiver() as hook:
        yield Setup(database_url, owner, hook)


def settle() -> None:
    """The finder reads up to a second ago (rows of roles whose transactions it cannot
    see get that long to commit)."""
    time.sleep(1.2)


def until(done: object, run: object, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not done():  # type: ignore[operator]
        assert time.monotonic() < deadline, "not done in time"
        run()  # type: ignore[operator]
        time.sleep(0.1)


def test_handshake_then_a_signed_notification_numbered_from_one(setup: Setup) -> None:
    sub = setup.subscribe(NEW_ALERT.url, "p1", content="full-resource")
    assert sub.status == "requested"
    _, finder, hooks = setup.worker()
    assert hooks.run_once() == 1
    (handshake,) = setup.hook.wait_for(1)
    assert handshake.kind == "handshake"
    assert handshake.headers["x-client"] == "vigil-test"
    assert verify(sub.secret, handshake.body, handshake.headers["x-vigil-signature"])
    assert setup.read(sub).status == "active"

    alert = setup.alert("p1")
    setup.alert("p2")  # not dr-a's patient, nor the filter's
    settle()
    assert finder.run_once() == 1
    assert hooks.run_once() == 1
    note = setup.hook.wait_for(2)[1]
    assert note.headers["content-type"] == "application/fhir+json"
    assert verify(sub.secret, note.body, note.headers["x-vigil-signature"])
    assert not verify("another secret", note.body, note.headers["x-vigil-signature"])
    bundle = note.bundle
    assert bundle["type"] == "history"
    assert note.kind == "event-notification"
    assert note.numbers == [1]
    assert parameter(bundle, "events-since-subscription-start")["valueString"] == "1"
    assert parameter(bundle, "topic")["valueCanonical"] == NEW_ALERT.url
    flag = bundle["entry"][1]
    assert flag["fullUrl"] == f"{BASE}/Flag/{alert}"
    assert flag["resource"]["resourceType"] == "Flag"
    assert flag["resource"]["subject"] == {"reference": "Patient/p1"}
    assert flag["request"] == {"method": "POST", "url": "Flag"}
    assert hooks.run_once() == 0  # nothing more is owed


def test_a_refusing_receiver_gets_retries_then_every_event_in_order(setup: Setup) -> None:
    sub = setup.subscribe(ALERT_CHANGED.url, None)
    conn, finder, hooks = setup.worker()
    hooks.run_once()
    alert = setup.alert("p1")
    with conn.transaction():
        act(conn, alert, "acknowledged", "nurse-a")
    setup.hook.refusals = 2
    settle()
    assert finder.run_once() == 1
    for _ in range(2):
        assert hooks.run_once() == 0
        retried = setup.read(sub)
        assert retried.attempts > 0 and "HTTP 503" in retried.error
        conn.execute("UPDATE subscription SET next_attempt = now() WHERE id = %s", (sub.id,))
    assert hooks.run_once() == 1
    assert setup.hook.refused == 2
    (note,) = setup.hook.events()
    assert note.numbers == [1]
    assert note.bundle["entry"][1]["request"] == {"method": "PUT", "url": f"Flag/{alert}"}
    delivered = setup.read(sub)
    assert (delivered.status, delivered.attempts, delivered.delivered) == ("active", 0, 1)


def test_a_failed_handshake_is_an_error_until_the_endpoint_answers(setup: Setup) -> None:
    sub = setup.subscribe(NEW_ALERT.url, "p1")
    setup.hook.refusals = 1
    _, _, hooks = setup.worker()
    hooks.run_once()
    assert setup.read(sub).status == "error"
    with psycopg.connect(setup.url, autocommit=True) as conn:
        conn.execute("UPDATE subscription SET next_attempt = now() WHERE id = %s", (sub.id,))
    hooks.run_once()
    assert setup.read(sub).status == "active"


def test_a_restart_between_finding_and_delivering_misses_nothing(setup: Setup) -> None:
    sub = setup.subscribe(NEW_ALERT.url, None)
    conn, finder, hooks = setup.worker()
    hooks.run_once()
    setup.alert("p1")
    settle()
    finder.run_once()
    conn.close()  # the process dies before delivering, and more alerts come meanwhile
    with psycopg.connect(setup.url, autocommit=True) as other:
        other.execute("UPDATE alert SET state = 'resolved'")  # a new episode may open
    setup.alert("p1")
    settle()
    _, finder, hooks = setup.worker()
    assert finder.run_once() == 1
    until(lambda: len(setup.hook.events()) >= 1, hooks.run_once)
    assert [n for r in setup.hook.events() for n in r.numbers] == [1, 2]
    assert setup.read(sub).events == 2


def test_new_observations_of_the_patient_become_events(setup: Setup) -> None:
    sub = setup.subscribe(NEW_OBSERVATION.url, "p1", content="full-resource")
    _, finder, hooks = setup.worker()
    hooks.run_once()
    ms = int(time.time() * 1000)
    with psycopg.connect(setup.url) as writing:
        writer.store(writing, [batch(rows=[("p1", "spo2", ms, 95.0), ("p2", "spo2", ms, 91.0)])])
    settle()
    assert finder.run_once() == 1
    hooks.run_once()
    (note,) = setup.hook.events()
    observation = note.bundle["entry"][1]["resource"]
    assert observation["resourceType"] == "Observation"
    assert observation["subject"] == {"reference": "Patient/p1"}
    assert observation["valueQuantity"]["value"] == 95.0
    assert setup.read(sub).events == 1


def test_a_consent_deny_stops_events_and_strips_those_not_yet_delivered(setup: Setup) -> None:
    sub = setup.subscribe(NEW_ALERT.url, None)
    conn, finder, hooks = setup.worker()
    hooks.run_once()
    setup.alert("p1")
    settle()
    assert finder.run_once() == 1  # recorded while dr-a's team may see p1
    with conn.transaction():
        consent.record(conn, "p1", "CareTeam/t-test", "deny", "p1")
    hooks.run_once()
    (note,) = setup.hook.events()
    assert note.numbers == [1]
    assert len(note.bundle["entry"]) == 1 and "p1" not in note.body.decode()
    with psycopg.connect(setup.url, autocommit=True) as other:
        other.execute("UPDATE alert SET state = 'resolved'")
    setup.alert("p1")
    settle()
    assert finder.run_once() == 0
    assert setup.read(sub).events == 1


def test_a_revoked_owner_turns_the_subscription_off(setup: Setup) -> None:
    sub = setup.subscribe(NEW_ALERT.url, None)
    conn, finder, hooks = setup.worker()
    hooks.run_once()
    setup.alert("p1")
    settle()
    finder.run_once()
    revoke(conn, "dr-a")
    hooks.run_once()
    assert setup.hook.events() == []
    off = setup.read(sub)
    assert off.status == "off" and "access has ended" in off.error


def test_the_posted_criteria_are_exactly_the_topics() -> None:
    from typing import get_args

    from api.subscriptions.resources import PostedSubscription
    from api.subscriptions.topics import TOPICS

    criteria = PostedSubscription.model_fields["criteria"].annotation
    assert set(get_args(criteria)) == set(TOPICS)
