"""The patient decides who sees them: a withdrawn team sees nothing from the next request
on and is told why, a second team let in sees them, every decision is a valid FHIR
Consent and in the audit trail; nobody records a decision for someone else."""

from __future__ import annotations

from typing import Any

import httpx
import psycopg
import pytest
from fhir.resources.R4B.consent import Consent

from tests.api.access.ward import Ward, ward

pytestmark = [pytest.mark.slow, pytest.mark.services]


def decide(w: Ward, by: str, patient: str, actor: str, decision: str) -> httpx.Response:
    return httpx.post(
        f"{w.base}/fhir/Consent",
        headers=w.auth(by),
        json={
            "resourceType": "Consent",
            "status": "active",
            "patient": {"reference": f"Patient/{patient}"},
            "provision": {"type": decision, "actor": [{"reference": {"reference": actor}}]},
        },
    )


def observations(w: Ward, by: str, patient: str) -> dict[str, Any]:
    response = httpx.get(f"{w.base}/fhir/Observation?patient={patient}", headers=w.auth(by))
    assert response.status_code == 200
    return dict(response.json())


def test_withdrawing_a_team_hides_the_patient_from_it_at_once_and_says_why(
    database_url: str,
) -> None:
    with ward(database_url) as w:
        assert observations(w, "dr-north", "pn1")["total"] == 1
        made = decide(w, "pn1", "pn1", "CareTeam/t-north", "deny")
        assert made.status_code == 201, made.text
        Consent.model_validate(made.json())
        assert made.headers["location"].endswith(f"/fhir/Consent/{made.json()['id']}")
        hidden = observations(w, "dr-north", "pn1")
        assert hidden["total"] == 0
        (note,) = [e for e in hidden["entry"] if e["search"]["mode"] == "outcome"]
        assert "withdrew CareTeam/t-north's access" in note["resource"]["issue"][0]["diagnostics"]
        mine = httpx.get(f"{w.base}/access", headers=w.auth("dr-north")).json()
        assert mine["patients"] == ["pn2"] and mine["hidden"][0]["patient"] == "pn1"
        alerts = httpx.get(f"{w.base}/alerts", headers=w.auth("dr-north")).json()
        assert {a["patient"] for a in alerts} == {"pn2"}
        flag = httpx.get(f"{w.base}/alerts/{w.alerts['pn1']}", headers=w.auth("dr-north"))
        assert flag.status_code == 404
        # the other team learns nothing, not even that pn1 exists
        other = observations(w, "dr-south", "pn1")
        assert other["total"] == 0 and other["entry"] == []
        assert decide(w, "pn1", "pn1", "CareTeam/t-north", "permit").status_code == 201
        assert observations(w, "dr-north", "pn1")["total"] == 1
        history = httpx.get(f"{w.base}/fhir/Consent?patient=pn1", headers=w.auth("pn1")).json()
        assert [e["resource"]["provision"]["type"] for e in history["entry"]] == [
            "permit",
            "deny",
            "permit",
        ]
    with psycopg.connect(database_url) as conn:
        trail = conn.execute(
            "SELECT actor, outcome, patients FROM audit_event"
            " WHERE action = 'create' AND resource = '/fhir/Consent' ORDER BY id"
        ).fetchall()
    assert trail == [("pn1-self", "success", ["pn1"])] * 2


def test_a_patient_can_let_a_second_team_in(database_url: str) -> None:
    with ward(database_url) as w:
        assert observations(w, "dr-south", "pn1")["total"] == 0
        made = decide(w, "pn1", "pn1", "CareTeam/t-south", "permit")
        assert made.status_code == 201
        again = httpx.get(made.headers["location"], headers=w.auth("dr-south"))
        assert again.status_code == 200 and again.json() == made.json()
        assert observations(w, "dr-south", "pn1")["total"] == 1
        # the second team sees the decision about itself, not the patient's others
        theirs = httpx.get(f"{w.base}/fhir/Consent?patient=pn1", headers=w.auth("dr-south"))
        actors = [
            e["resource"]["provision"]["actor"][0]["reference"]["reference"]
            for e in theirs.json()["entry"]
        ]
        assert actors == ["CareTeam/t-south"]
        north = f"{w.base}/fhir/Consent/{w.consents['pn1']}"
        assert httpx.get(north, headers=w.auth("dr-south")).status_code == 404
        assert httpx.get(north, headers=w.auth("dr-north")).status_code == 200
        mine = httpx.get(f"{w.base}/access", headers=w.auth("dr-south")).json()
        assert mine["patients"] == ["pn1", "ps1", "ps2"]


def test_an_integration_can_be_shut_out(database_url: str) -> None:
    with ward(database_url) as w:
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute(
                "INSERT INTO api_client (name, role, patient, token_sha256)"
                " VALUES ('ps1-self', 'patient', 'ps1', 'x')"
            )
        assert observations(w, "ehr-link", "ps1")["total"] == 1
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute(
                "INSERT INTO consent (patient, actor, decision, recorded_by)"
                " VALUES ('ps1', 'Device/ehr-link', 'deny', 'ps1-self')"
            )
        assert observations(w, "ehr-link", "ps1")["total"] == 0


@pytest.mark.parametrize(
    ("by", "patient", "actor", "status"),
    [
        ("pn1", "pn2", "CareTeam/t-north", 403),  # not their own
        ("dr-north", "pn1", "CareTeam/t-north", 403),  # clinicians do not decide for patients
        ("admin", "pn1", "CareTeam/t-north", 403),
        ("pn1", "pn1", "CareTeam/t-nowhere", 400),
        ("pn1", "pn1", "Practitioner/dr-north", 400),
    ],
)
def test_decisions_nobody_may_record(
    database_url: str, by: str, patient: str, actor: str, status: int
) -> None:
    with ward(database_url) as w:
        answer = decide(w, by, patient, actor, "deny")
        assert answer.status_code == status
        assert answer.json()["resourceType"] == "OperationOutcome"
        assert observations(w, "dr-north", "pn1")["total"] == 1
