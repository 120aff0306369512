from collections.abc import Iterator
from urllib.parse import quote

import psycopg
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from ingest import writer
from tests.api.conftest import clinician_token
from tests.builders import T0, batch
from tests.fhir_checks import check_searchset, check_vital_sign
from vigil.settings import Settings

pytestmark = pytest.mark.services

ROWS = [
    ("p0001", "heart_rate", T0, 72.0),
    ("p0001", "spo2", T0, 97.0),
    ("p0001", "pulse_rate", T0, 71.0),
    ("p0001", "rr_interval", T0, 833.0),
    ("p0001", "heart_rate", T0 + 60_000, 75.0),
    ("p0002", "heart_rate", T0, 88.0),
]


@pytest.fixture
def api(database_url: str) -> Iterator[tuple[TestClient, dict[str, str], str]]:
    with psycopg.connect(database_url) as conn:
        writer.store(conn, [batch(rows=ROWS, flags=[0, 2, 0, 0, 0, 0])])
        token = clinician_token(conn, "dr-test", ["p0001", "p0002"])
        conn.commit()
    with TestClient(create_app(Settings(database_url=database_url))) as client:
        yield client, {"Authorization": f"Bearer {token}"}, database_url


def audit_rows(url: str) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT actor, action, resource, outcome, patients FROM audit_event ORDER BY id"
        ).fetchall()


def test_search_returns_valid_vital_signs_matching_the_rows(api) -> None:  # type: ignore[no-untyped-def]
    client, auth, url = api
    response = client.get(
        "/fhir/Observation?subject=Patient/p0001&code=http://loinc.org|8867-4", headers=auth
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/fhir+json")
    bundle = response.json()
    check_searchset(bundle)
    assert bundle["total"] == 3
    resources = [e["resource"] for e in bundle["entry"]]
    for resource in resources:
        check_vital_sign(resource)
    # newest first, the exact reverse of oldest first (time, metric, device): at the same
    # instant the oximeter's pulse rate (metric 3) before the strap's heart rate (metric 1)
    assert [r["valueQuantity"]["value"] for r in resources] == [75.0, 71.0, 72.0]
    assert [r["subject"]["reference"] for r in resources] == ["Patient/p0001"] * 3
    assert audit_rows(url)[-1] == ("dr-test", "search", "/fhir/Observation", "success", ["p0001"])


def test_spo2_carries_both_loinc_codes_and_quality(api) -> None:  # type: ignore[no-untyped-def]
    client, auth, _ = api
    bundle = client.get("/fhir/Observation?subject=p0001&code=59408-5", headers=auth).json()
    (entry,) = bundle["entry"]
    resource = entry["resource"]
    check_vital_sign(resource)
    assert resource["valueQuantity"] == {
        "value": 97.0,
        "unit": "%",
        "system": "http://unitsofmeasure.org",
        "code": "%",
    }
    assert resource["status"] == "preliminary"  # flag 2: early estimate
    assert resource["effectiveDateTime"] == "2025-11-24T16:00:00.000Z"


def test_date_count_sort_and_paging(api) -> None:  # type: ignore[no-untyped-def]
    client, auth, _ = api
    newest = client.get("/fhir/Observation?subject=p0001&code=8867-4&_count=1", headers=auth).json()
    assert newest["entry"][0]["resource"]["valueQuantity"]["value"] == 75.0
    walked = [newest["entry"][0]["resource"]["valueQuantity"]["value"]]
    page = newest
    while nexts := [link["url"] for link in page["link"] if link["relation"] == "next"]:
        assert "_cursor=" in nexts[0] and "_count=1" in nexts[0]
        page = client.get(nexts[0].removeprefix("http://127.0.0.1:8000"), headers=auth).json()
        walked += [e["resource"]["valueQuantity"]["value"] for e in page["entry"]]
    assert walked == [75.0, 71.0, 72.0]
    oldest = client.get("/fhir/Observation?subject=p0001&code=8867-4&_sort=date", headers=auth)
    assert [e["resource"]["valueQuantity"]["value"] for e in oldest.json()["entry"]] == [
        72.0,
        71.0,
        75.0,
    ]
    later = client.get(
        f"/fhir/Observation?subject=p0001&date={quote('ge2025-11-24T16:00:30Z')}", headers=auth
    ).json()
    assert [e["resource"]["valueQuantity"]["value"] for e in later["entry"]] == [75.0]


def test_read_by_id_round_trips(api) -> None:  # type: ignore[no-untyped-def]
    client, auth, url = api
    bundle = client.get("/fhir/Observation?subject=p0002", headers=auth).json()
    resource = bundle["entry"][0]["resource"]
    again = client.get(f"/fhir/Observation/{resource['id']}", headers=auth)
    assert again.status_code == 200 and again.json() == resource
    for unknown in ("p0002.1.5.0a0b0c0d", f"{resource['id'][:-8]}00000000", "not-an-id"):
        missing = client.get(f"/fhir/Observation/{unknown}", headers=auth)
        assert missing.status_code == 404 and missing.json()["resourceType"] == "OperationOutcome"
    assert audit_rows(url)[-4][1:4] == ("read", f"/fhir/Observation/{resource['id']}", "success")


def test_patient_data_needs_a_token_and_refusals_are_audited(api) -> None:  # type: ignore[no-untyped-def]
    client, _, url = api
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic eDp5"}):
        response = client.get("/fhir/Observation?subject=p0001", headers=headers)
        assert response.status_code == 401
        assert response.json()["issue"][0]["code"] == "login"
    assert [r[3] for r in audit_rows(url)] == ["denied"] * 3


def test_bad_searches_are_400_operation_outcomes(api) -> None:  # type: ignore[no-untyped-def]
    client, auth, _ = api
    response = client.get("/fhir/Observation?code=8867-4", headers=auth)
    assert response.status_code == 400
    assert "subject: required" in response.json()["issue"][0]["diagnostics"]
