"""The alerts API: lists, reads and changes by an authenticated caller, audited; FHIR Flag
and Communication views validated with fhir.resources."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import psycopg
import pytest
from fastapi.testclient import TestClient
from fhir.resources.R4B.communication import Communication
from fhir.resources.R4B.flag import Flag

from alerts.outbox import Channels
from alerts.store import take_event
from alerts.teams import assign
from analytics.engine import Engine
from api.app import create_app
from tests.alerts.test_store import event
from tests.api.conftest import clinician_token
from tests.builders import T0
from tests.fhir_checks import check_searchset
from vigil.metrics import SPO2
from vigil.settings import Settings

pytestmark = pytest.mark.services


@pytest.fixture
def api(database_url: str) -> Iterator[tuple[TestClient, dict[str, str], str, list[int]]]:
    with psycopg.connect(database_url, autocommit=True) as conn:
        token = clinician_token(conn, "dr-test", ["p1", "p2"])
        ids = []
        for e in (
            event("persisted"),
            event("persisted", "hr_extreme_high", "heart_rate"),
            event("persisted", "check_sensor", "heart_rate", patient="p2"),
        ):
            with conn.transaction():
                ids.append(take_event(conn, e, Channels(("http://127.0.0.1:9/x",))))
    with TestClient(create_app(Settings(database_url=database_url))) as client:
        yield client, {"Authorization": f"Bearer {token}"}, database_url, ids


def audit_rows(url: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT actor, action, resource, outcome, patients FROM audit_event ORDER BY id"
        ).fetchall()


def test_alerts_are_listed_by_patient_and_priority_and_the_read_is_audited(api) -> None:  # type: ignore[no-untyped-def]
    client, auth, url, ids = api
    everyone = client.get("/alerts", headers=auth).json()
    assert {a["id"] for a in everyone} == set(ids)
    high = client.get("/alerts?patient=p1&priority=high", headers=auth).json()
    assert [(a["rule"], a["priority"], a["state"]) for a in high] == [
        ("hr_extreme_high", "high", "triggered"),
        ("spo2_desaturation", "high", "triggered"),
    ]
    assert high[0]["evidence"]["onset"] == "2026-01-01T10:00:00.000Z"
    assert audit_rows(url)[-1] == ("dr-test", "search", "/alerts", "success", ["p1"])
    assert client.get("/alerts").status_code == 401


def test_acknowledge_snooze_resolve_as_the_caller(api) -> None:  # type: ignore[no-untyped-def]
    client, auth, url, ids = api
    alert_id = ids[0]
    ack = client.post(f"/alerts/{alert_id}/acknowledge", headers=auth, json={"note": "calling"})
    assert ack.status_code == 200 and ack.json()["actor"] == "dr-test"
    bad = client.post(f"/alerts/{alert_id}/snooze", headers=auth, json={"until": "2099-01-01"})
    assert bad.status_code == 400
    for far in ("2099-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "2020-01-01T00:00:00Z"):
        refused = client.post(f"/alerts/{alert_id}/snooze", headers=auth, json={"until": far})
        assert refused.status_code == 400 and "within 7 days" in refused.text
    until = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
    snooze = client.post(f"/alerts/{alert_id}/snooze", headers=auth, json={"until": until})
    assert snooze.status_code == 200
    assert client.post(f"/alerts/{alert_id}/resolve", headers=auth).status_code == 200
    again = client.post(f"/alerts/{alert_id}/acknowledge", headers=auth)
    assert again.status_code == 409
    assert "already resolved" in again.json()["issue"][0]["diagnostics"]
    assert client.post("/alerts/999999/acknowledge", headers=auth).status_code == 404
    detail = client.get(f"/alerts/{alert_id}", headers=auth).json()
    assert [(c["change"], c["actor"]) for c in detail["changes"]] == [
        ("triggered", "vigil-alerts"),
        ("acknowledged", "dr-test"),
        ("snoozed", "dr-test"),
        ("resolved", "dr-test"),
    ]
    assert detail["notifications"][0]["channel"] == "webhook"
    assert ("dr-test", "resolve", f"/alerts/{alert_id}/resolve", "success", ["p1"]) in audit_rows(
        url
    )


def test_alerts_as_fhir_flags(api) -> None:  # type: ignore[no-untyped-def]
    client, auth, url, ids = api
    client.post(f"/alerts/{ids[1]}/resolve", headers=auth)
    bundle = client.get("/fhir/Flag?patient=Patient/p1", headers=auth).json()
    check_searchset(bundle)
    flags = [e["resource"] for e in bundle["entry"]]
    for flag in flags:
        Flag.model_validate(flag)
    assert {(f["id"], f["status"]) for f in flags} == {
        (str(ids[0]), "active"),
        (str(ids[1]), "inactive"),
    }
    priority = flags[0]["extension"][0]["valueCodeableConcept"]["coding"][0]
    assert (priority["system"], priority["code"]) == (
        "http://hl7.org/fhir/flag-priority-code",
        "PH",
    )
    active = client.get("/fhir/Flag?patient=Patient/p1&status=active", headers=auth).json()
    assert [e["resource"]["id"] for e in active["entry"]] == [str(ids[0])]
    missing = client.get("/fhir/Flag", headers=auth)
    assert missing.status_code == 400 and missing.json()["resourceType"] == "OperationOutcome"
    assert audit_rows(url)[-2][1:] == ("search", "/fhir/Flag", "success", ["p1"])


def test_notifications_as_fhir_communications(api) -> None:  # type: ignore[no-untyped-def]
    client, auth, _url, ids = api
    bundle = client.get("/fhir/Communication?patient=Patient/p1", headers=auth).json()
    check_searchset(bundle)
    resources = [e["resource"] for e in bundle["entry"]]
    for r in resources:
        Communication.model_validate(r)
    assert {r["about"][0]["reference"] for r in resources} == {f"Flag/{ids[0]}", f"Flag/{ids[1]}"}
    assert {r["status"] for r in resources} == {"in-progress"}  # nothing delivered yet


def test_a_flag_reads_in_the_words_of_the_scale_its_patient_was_judged_on(api) -> None:  # type: ignore[no-untyped-def]
    client, auth, url, _ids = api
    engine = Engine(scale2_patients=["p-copd"])
    n = 620
    found = engine.score(
        ["p-one"] * n + ["p-copd"] * n,
        np.full(2 * n, SPO2.id),
        np.r_[np.arange(n), np.arange(n)] * 1000 + T0,
        np.full(2 * n, 79.0),
    )
    with psycopg.connect(url, autocommit=True) as conn, conn.transaction():
        assign(conn, "p-one", "t-test")
        assign(conn, "p-copd", "t-test")
        for e in found:
            if e.event.rule == "spo2_news2_red":
                take_event(conn, engine.describe(e), Channels())
    texts = {}
    for patient in ("p-one", "p-copd"):
        bundle = client.get(f"/fhir/Flag?patient=Patient/{patient}", headers=auth).json()
        (entry,) = bundle["entry"]
        texts[patient] = entry["resource"]["code"]["text"]
    assert "scale 1" in texts["p-one"] and "scale 2" in texts["p-copd"]
