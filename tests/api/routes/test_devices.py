"""Patient and Device: a sensor handed from one patient to another, its versions as each
care team may see them, its gateway, and the patients of a clinician."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import psycopg
import pytest
from fastapi.testclient import TestClient

from api.access.tokens import create_client
from api.app import create_app
from api.fhir.device import device_resource_id, gateway_resource_id
from ingest import writer
from ingest.registry import Registry
from tests.api.conftest import clinician_token
from tests.builders import T0, batch
from vigil.settings import Settings

pytestmark = pytest.mark.services
OXIMETER = "C2:00:00:00:00:AA"


@pytest.fixture
def api(database_url: str) -> Iterator[tuple[TestClient, dict[str, dict[str, str]]]]:
    registry = Registry()
    with psycopg.connect(database_url) as conn:
        for seq, patient in enumerate(("pa", "pb")):
            made = batch(
                gateway="gw-home", seq=seq, rows=[(patient, "spo2", T0 + seq * 60_000, 97.0)]
            )
            made = replace(made, device=(OXIMETER,))
            writer.store(conn, [made])
            registry.record_readings(conn, [made], trusted=True)
            conn.commit()
            registry = Registry()  # a fresh process: nothing remembered
        tokens = {
            "a": clinician_token(conn, "dr-a", ["pa"], team="t-a"),
            "b": clinician_token(conn, "dr-b", ["pb"], team="t-b"),
            "admin": create_client(conn, "admin", "admin"),
        }
        conn.commit()
    with TestClient(create_app(Settings(database_url=database_url))) as client:
        yield client, {k: {"Authorization": f"Bearer {t}"} for k, t in tokens.items()}


def test_a_sensor_is_its_current_patients_and_its_history_shows_only_whom_one_sees(api) -> None:  # type: ignore[no-untyped-def]
    client, auth = api
    device = device_resource_id(OXIMETER)
    assert device == "c2-00-00-00-00-aa"
    assert client.get(f"/fhir/Device/{device}", headers=auth["a"]).status_code == 404
    now = client.get(f"/fhir/Device/{device}", headers=auth["b"])
    assert now.status_code == 200
    resource = now.json()
    assert resource["patient"] == {"reference": "Patient/pb"}
    assert resource["meta"]["versionId"] == "2" and now.headers["etag"] == 'W/"2"'
    assert resource["parent"]["reference"] == f"Device/{gateway_resource_id('gw-home')}"
    seen_by_b = client.get(f"/fhir/Device/{device}/_history", headers=auth["b"]).json()
    assert [e["resource"]["meta"]["versionId"] for e in seen_by_b["entry"]] == ["2"]
    assert client.get(f"/fhir/Device/{device}/_history/1", headers=auth["b"]).status_code == 404
    everything = client.get(f"/fhir/Device/{device}/_history", headers=auth["admin"]).json()
    versions = [e["resource"] for e in everything["entry"]]
    assert [v["patient"]["reference"] for v in versions] == ["Patient/pb", "Patient/pa"]
    periods = [v["extension"][0]["valuePeriod"] for v in versions]
    assert periods[1]["end"] == periods[0]["start"] and "end" not in periods[0]
    first = client.get(f"/fhir/Device/{device}/_history/1", headers=auth["admin"])
    assert first.status_code == 200 and first.json()["status"] == "inactive"


def test_observations_reference_a_device_and_a_patient_that_resolve(api) -> None:  # type: ignore[no-untyped-def]
    client, auth = api
    bundle = client.get("/fhir/Observation?patient=pb", headers=auth["b"]).json()
    (entry,) = bundle["entry"]
    for reference in (
        entry["resource"]["device"]["reference"],
        entry["resource"]["subject"]["reference"],
    ):
        assert client.get(f"/fhir/{reference}", headers=auth["b"]).status_code == 200


def test_device_search_and_the_gateway(api) -> None:  # type: ignore[no-untyped-def]
    client, auth = api
    found = client.get(
        "/fhir/Device?patient=Patient/pb&_include=Device:patient", headers=auth["b"]
    ).json()
    kinds = {(e["resource"]["resourceType"], e["search"]["mode"]) for e in found["entry"]}
    assert kinds == {("Device", "match"), ("Patient", "include")}
    gateway = gateway_resource_id("gw-home")
    assert client.get(f"/fhir/Device/{gateway}", headers=auth["b"]).status_code == 200
    assert client.get(f"/fhir/Device/{gateway}", headers=auth["a"]).status_code == 404
    assert client.get("/fhir/Device?patient=Patient/pa", headers=auth["b"]).json()["total"] == 0
    assert client.get("/fhir/Device", headers=auth["b"]).status_code == 400


def test_a_clinicians_patient_search_is_their_list(api) -> None:  # type: ignore[no-untyped-def]
    client, auth = api
    mine = client.get("/fhir/Patient?_revinclude=Device:patient", headers=auth["b"]).json()
    matched = [e["resource"]["id"] for e in mine["entry"] if e["search"]["mode"] == "match"]
    assert matched == ["pb"]
    patient = client.get("/fhir/Patient/pb", headers=auth["b"]).json()
    assert (
        patient["active"] is True
        and patient["extension"][0]["valueReference"]["identifier"]["value"] == "t-b"
    )
    assert client.get("/fhir/Patient/pa", headers=auth["b"]).status_code == 404
    every = client.get("/fhir/Patient?_count=1", headers=auth["admin"]).json()
    assert len(every["entry"]) == 1 and any(x["relation"] == "next" for x in every["link"])
