"""A ward to attack: two care teams of two patients each, a clinician on each team (one on
the paging roster, one by an access grant), a patient, an administrator, an integration
granted one patient and a metrics scraper; observations, alerts, notifications and
consents for every patient; and the API served by a real uvicorn on loopback."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

import psycopg
import uvicorn

from alerts.outbox import Channels
from alerts.store import take_event
from alerts.teams import add_member, add_team, assign
from api.access import consent
from api.access.tokens import create_client, revoke
from api.app import create_app
from api.fhir.observation import Row, observation_id
from ingest import writer
from ingest.registry import Registry
from tests.alerts.test_store import event
from tests.api.subscriptions.seed import seed_subscriptions
from tests.builders import T0, batch
from vigil.embedded.processes import free_port
from vigil.metrics import SPO2
from vigil.settings import Settings

TEAMS = {"t-north": ("pn1", "pn2"), "t-south": ("ps1", "ps2")}
PATIENTS = ("pn1", "pn2", "ps1", "ps2")
DEVICES = {p: f"C1:00:00:00:00:0{i + 1}" for i, p in enumerate(PATIENTS)}
"""patient -> the address of their oximeter"""


@dataclass
class Ward:
    base: str
    url: str
    tokens: dict[str, str]
    observations: dict[str, str] = field(default_factory=dict)
    """patient -> one of their Observation ids"""
    alerts: dict[str, int] = field(default_factory=dict)
    """patient -> their open alert"""
    consents: dict[str, int] = field(default_factory=dict)
    """patient -> their consent to their own team"""
    subscriptions: dict[str, str] = field(default_factory=dict)
    """patient -> a Subscription to their alerts (tests/api/subscriptions/seed.py)"""

    def auth(self, principal: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[principal]}"}


def populate(
    conn: psycopg.Connection,
) -> tuple[dict[str, str], dict[str, str], dict[str, int], dict[str, int]]:
    for team, patients in TEAMS.items():
        add_team(conn, team)
        for patient in patients:
            assign(conn, patient, team)
    add_member(conn, "t-north", "dr-north", 1, "mailto:north@example.org")
    tokens = {
        "dr-north": create_client(conn, "dr-north"),
        "dr-south": create_client(conn, "dr-south", teams=["t-south"]),
        "pn1": create_client(conn, "pn1-self", "patient", patient="pn1"),
        "admin": create_client(conn, "admin", "admin"),
        "ehr-link": create_client(
            conn,
            "ehr-link",
            "system",
            scopes="system/Observation.rs system/Flag.rs system/Communication.rs",
            patients=["ps1"],
        ),
        "scraper": create_client(conn, "scraper", "system", scopes="system/Device.rs"),
        "expired": create_client(
            conn, "expired", teams=["t-north"], expires=datetime.now(UTC) - timedelta(minutes=1)
        ),
        "revoked": create_client(conn, "revoked", teams=["t-north"]),
    }
    revoke(conn, "revoked")
    rows = [(p, "spo2", T0 + i * 1000, 95.0 + i) for i, p in enumerate(PATIENTS)]
    stored = replace(batch(rows=rows), device=tuple(DEVICES[p] for p in PATIENTS))
    writer.store(conn, [stored])
    Registry().record_readings(conn, [stored], trusted=True)
    observations = {}
    for patient, _, ms, value in rows:
        moment = datetime.fromtimestamp(ms / 1000, UTC)
        row = Row(patient, SPO2.id, moment, value, 0, DEVICES[patient], moment)
        observations[patient] = observation_id(row)
    alerts, consents = {}, {}
    for patient in PATIENTS:
        made = take_event(
            conn, event("persisted", patient=patient), Channels(("http://127.0.0.1:9/x",))
        )
        assert made is not None
        alerts[patient] = made
        team = next(t for t, ps in TEAMS.items() if patient in ps)
        consents[patient] = consent.record(conn, patient, f"CareTeam/{team}", "permit", patient).id
    conn.execute(
        "INSERT INTO audit_event (actor, action, resource, outcome, patients)"
        " VALUES ('seed', 'read', '/seed', 'success', %s)",
        (list(PATIENTS),),
    )
    return tokens, observations, alerts, consents


@contextmanager
def serve(settings: Settings) -> Iterator[str]:
    """The API on a free loopback port, in this process (so tests may tune its module
    constants), until the block ends; its links point at that port unless the settings
    give a public address."""
    port = free_port()
    if settings.api_base_url is None:
        settings = settings.model_copy(update={"api_base_url": f"http://127.0.0.1:{port}"})
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the API did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


@contextmanager
def ward(database_url: str, **settings: object) -> Iterator[Ward]:
    with psycopg.connect(database_url, autocommit=True) as conn, conn.transaction():
        tokens, observations, alerts, consents = populate(conn)
        subscriptions = seed_subscriptions(conn)
    with serve(Settings(database_url=database_url, **settings)) as base:  # type: ignore[arg-type]
        yield Ward(base, database_url, tokens, observations, alerts, consents, subscriptions)
