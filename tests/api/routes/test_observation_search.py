"""Every Observation search parameter and prefix, checked against the same filter written
in Python over the rows stored; HTTP semantics (errors, ETag, 406); _include."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import psycopg
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.fhir.device import device_resource_id
from api.fhir.observation import Row, observation_id
from ingest import writer
from ingest.registry import Registry
from tests.api.conftest import clinician_token
from tests.builders import T0, batch
from tests.conftest import with_database
from vigil.db.migrate import migrate
from vigil.metrics import BATTERY, HEART_RATE, PULSE_RATE, RR_INTERVAL, SPO2
from vigil.settings import Settings

pytestmark = pytest.mark.services
STRAP, OXIMETER = "C1:00:00:00:00:01", "C2:00:00:00:00:02"
START = datetime.fromtimestamp(T0 / 1000, UTC)


@pytest.fixture(scope="module")
def stored(postgres_server_url: str) -> Iterator[tuple[str, str, list[Row]]]:
    """A module's worth of readings (two hours, every metric, some flagged early)."""
    name = "search_params"
    with psycopg.connect(postgres_server_url, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name}")
        admin.execute(f"CREATE DATABASE {name}")
    url = with_database(postgres_server_url, name)
    with psycopg.connect(url) as conn:
        migrate(conn)
        strap = [
            ("p1", m, T0 + s * 60_000, 50.0 + s)
            for s in range(120)
            for m in ("heart_rate", "rr_interval")
        ]
        oxi = [
            ("p1", m, T0 + s * 60_000, 80.0 + s % 21)
            for s in range(120)
            for m in ("spo2", "pulse_rate", "battery")
        ]
        batches = [
            replace(batch(seq=0, rows=strap), device=tuple(STRAP for _ in strap)),
            replace(
                batch(seq=1, rows=oxi, flags=[2 if i % 7 == 0 else 0 for i in range(len(oxi))]),
                device=tuple(OXIMETER for _ in oxi),
            ),
        ]
        writer.store(conn, batches)
        Registry().record_readings(conn, batches, trusted=True)
        token = clinician_token(conn, "dr-search", ["p1"])
        conn.commit()
        rows = [
            Row(*r)
            for r in conn.execute(
                "SELECT patient, metric, effective, value, flags, device, received FROM observation"
            )
        ]
    yield url, token, rows


@pytest.fixture(scope="module")
def client(stored: tuple[str, str, list[Row]]) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(database_url=stored[0]))) as client:
        yield client


def ids(
    client: TestClient, token: str, query: str, headers: dict[str, str] | None = None
) -> set[str]:
    response = client.get(
        f"/fhir/Observation?subject=p1&_count=1000&{query}",
        headers={"Authorization": f"Bearer {token}", **(headers or {})},
    )
    assert response.status_code == 200, response.text
    return {e["resource"]["id"] for e in response.json()["entry"] if e["search"]["mode"] == "match"}


def at(minutes: int) -> datetime:
    return START + timedelta(minutes=minutes)


def iso(moment: datetime) -> str:
    return quote(moment.strftime("%Y-%m-%dT%H:%M:%SZ"))


CASES: list[tuple[str, Callable[[Row], bool]]] = [
    ("code=8867-4", lambda r: r.metric in (HEART_RATE.id, PULSE_RATE.id)),
    ("code=urn:iso:std:iso:11073:10101|149530", lambda r: r.metric == PULSE_RATE.id),
    (
        "code=http://loinc.org|2708-6,urn:iso:std:iso:11073:10101|147240",
        lambda r: r.metric in (SPO2.id, RR_INTERVAL.id),
    ),
    ("category=vital-signs", lambda r: r.metric in (HEART_RATE.id, SPO2.id, PULSE_RATE.id)),
    (
        "category=http://terminology.hl7.org/CodeSystem/observation-category|procedure",
        lambda r: r.metric == RR_INTERVAL.id,
    ),
    ("category=device", lambda r: r.metric == BATTERY.id),
    (f"date={iso(at(10))}", lambda r: r.effective == at(10)),
    (f"date=ne{iso(at(10))}", lambda r: r.effective != at(10)),
    (f"date=gt{iso(at(100))}", lambda r: r.effective > at(100)),
    (f"date=sa{iso(at(100))}", lambda r: r.effective > at(100)),
    (f"date=ge{iso(at(100))}", lambda r: r.effective >= at(100)),
    (f"date=lt{iso(at(5))}", lambda r: r.effective < at(5)),
    (f"date=eb{iso(at(5))}", lambda r: r.effective < at(5)),
    (f"date=le{iso(at(5))}", lambda r: r.effective <= at(5)),
    (f"date=ge{iso(at(5))}&date=lt{iso(at(8))}", lambda r: at(5) <= r.effective < at(8)),
    ("date=2025-11-24", lambda r: r.effective.date() == START.date()),
    ("date=ge2025-11", lambda r: True),
    ("status=preliminary", lambda r: r.flags & 2 != 0),
    ("status=final", lambda r: r.flags & 2 == 0),
    ("value-quantity=lt85", lambda r: r.value < 85),
    ("value-quantity=ge150", lambda r: r.value >= 150),
    ("value-quantity=gt160", lambda r: r.value > 160),
    ("value-quantity=le51", lambda r: r.value <= 51),
    ("value-quantity=100", lambda r: 99.5 <= r.value < 100.5),
    ("value-quantity=ne100", lambda r: not 99.5 <= r.value < 100.5),
    (
        "value-quantity=lt85|http://unitsofmeasure.org|%25",
        lambda r: r.value < 85 and r.metric in (SPO2.id, BATTERY.id),
    ),
    (f"device=Device/{device_resource_id(STRAP)}", lambda r: r.device == STRAP),
    ("_lastUpdated=ge2000-01-01", lambda r: True),
    ("_lastUpdated=lt2000-01-01", lambda r: False),
]


@pytest.mark.parametrize(("query", "keep"), CASES, ids=[c[0] for c in CASES])
def test_each_parameter_finds_what_sql_holds(client, stored, query: str, keep) -> None:  # type: ignore[no-untyped-def]
    _, token, rows = stored
    expected = {observation_id(r) for r in rows if keep(r)}
    assert ids(client, token, query) == expected


def test_ids_alone_name_the_patient(client, stored) -> None:  # type: ignore[no-untyped-def]
    _, token, rows = stored
    two = sorted(observation_id(r) for r in rows)[:2]
    response = client.get(
        f"/fhir/Observation?_id={','.join(two)}", headers={"Authorization": f"Bearer {token}"}
    )
    assert {e["resource"]["id"] for e in response.json()["entry"]} == set(two)


def test_elements_summary_and_include(client, stored) -> None:  # type: ignore[no-untyped-def]
    _, token, _ = stored
    auth = {"Authorization": f"Bearer {token}"}
    cut = client.get(
        "/fhir/Observation?subject=p1&_count=1&_elements=code,valueQuantity", headers=auth
    ).json()
    resource = cut["entry"][0]["resource"]
    assert set(resource) == {"resourceType", "id", "meta", "code", "valueQuantity", "status"}
    assert resource["meta"]["tag"][0]["code"] == "SUBSETTED"
    summary = client.get("/fhir/Observation?subject=p1&_count=1&_summary=true", headers=auth).json()
    assert "device" not in summary["entry"][0]["resource"]
    included = client.get(
        "/fhir/Observation?subject=p1&_count=5&_include=Observation:subject&_include=Observation:device",
        headers=auth,
    ).json()
    extra = [e["resource"] for e in included["entry"] if e["search"]["mode"] == "include"]
    assert {r["resourceType"] for r in extra} >= {"Patient", "Device"}
    shown = [e["resource"] for e in included["entry"] if e["search"]["mode"] == "match"]
    references = {r["device"]["reference"] for r in shown} | {
        r["subject"]["reference"] for r in shown
    }
    assert references <= {f"{r['resourceType']}/{r['id']}" for r in extra}
    for reference in references:  # every reference resolves by a read
        assert client.get(f"/fhir/{reference}", headers=auth).status_code == 200


def test_lenient_handling_ignores_unknown_parameters_and_says_so(client, stored) -> None:  # type: ignore[no-untyped-def]
    _, token, _ = stored
    auth = {"Authorization": f"Bearer {token}"}
    strict = client.get("/fhir/Observation?subject=p1&focus=x", headers=auth)
    assert strict.status_code == 400
    lenient = client.get(
        "/fhir/Observation?subject=p1&focus=x&_count=2",
        headers={**auth, "Prefer": "handling=lenient"},
    )
    assert lenient.status_code == 200
    notes = [e["resource"] for e in lenient.json()["entry"] if e["search"]["mode"] == "outcome"]
    assert "focus" in notes[0]["issue"][0]["diagnostics"]
    link = next(x["url"] for x in lenient.json()["link"] if x["relation"] == "next")
    assert "focus" not in link


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/fhir/Observation?subject=p1&date=ge2026-13-01", 400),
        ("/fhir/Observation?subject=p1&date=2026-02-30", 400),
        ("/fhir/Observation?subject=p1&value-quantity=high", 400),
        ("/fhir/Observation/..%2F..", 404),
        ("/fhir/Observation/p1.2.99999999999999.zzzzzzzz", 404),
        ("/fhir/Nothing", 404),
        ("/fhir/Observation?subject=p1&_format=xml", 406),
        ("/fhir/Observation?subject=p1&_format=application/fhir%2Bxml", 406),
    ],
)
def test_errors_are_operation_outcomes_with_the_right_status(
    client, stored, path: str, status: int
) -> None:  # type: ignore[no-untyped-def]
    _, token, _ = stored
    response = client.get(path, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == status
    assert response.json()["resourceType"] == "OperationOutcome"


def test_accept_without_json_is_406_and_delete_405(client, stored) -> None:  # type: ignore[no-untyped-def]
    _, token, _ = stored
    auth = {"Authorization": f"Bearer {token}"}
    xml = client.get(
        "/fhir/Observation?subject=p1", headers={**auth, "Accept": "application/fhir+xml"}
    )
    assert xml.status_code == 406 and xml.json()["resourceType"] == "OperationOutcome"
    fine = client.get(
        "/fhir/Observation?subject=p1&_count=1",
        headers={**auth, "Accept": "application/fhir+json, */*;q=0.1"},
    )
    assert fine.status_code == 200
    assert client.delete("/fhir/Observation?subject=p1", headers=auth).status_code == 405


def test_etag_round_trip(client, stored) -> None:  # type: ignore[no-untyped-def]
    _, token, _ = stored
    auth = {"Authorization": f"Bearer {token}"}
    one = client.get("/fhir/Observation?subject=p1&_count=1", headers=auth).json()["entry"][0][
        "resource"
    ]
    read = client.get(f"/fhir/Observation/{one['id']}", headers=auth)
    assert read.headers["etag"] == 'W/"1"' and read.json()["meta"]["versionId"] == "1"
    assert read.json()["meta"]["lastUpdated"] and read.headers["last-modified"]
    again = client.get(f"/fhir/Observation/{one['id']}", headers={**auth, "If-None-Match": 'W/"1"'})
    assert again.status_code == 304 and again.content == b""
    patient = client.get("/fhir/Patient/p1", headers=auth)
    tag = patient.headers["etag"]
    assert client.get("/fhir/Patient/p1", headers={**auth, "If-None-Match": tag}).status_code == 304
    assert (
        client.get("/fhir/Patient/p1", headers={**auth, "If-None-Match": 'W/"0"'}).status_code
        == 200
    )


def test_rr_and_battery_claim_no_vital_signs(client, stored) -> None:  # type: ignore[no-untyped-def]
    _, token, _ = stored
    auth = {"Authorization": f"Bearer {token}"}
    for category in ("procedure", "device"):
        bundle = client.get(
            f"/fhir/Observation?subject=p1&category={category}&_count=3", headers=auth
        ).json()
        for entry in bundle["entry"]:
            resource: dict[str, Any] = entry["resource"]
            assert "profile" not in resource["meta"]
            assert [c["coding"][0]["code"] for c in resource["category"]] == [category]


def _cursor(key: list[object]) -> str:
    text = json.dumps({"s": "2026-01-01T00:00:00+00:00", "k": key})
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "path",
    [
        "/fhir/Observation?subject=p1&_cursor=" + _cursor(["x", 1, "C1"]),
        "/fhir/Observation?subject=p1&_cursor=" + _cursor([{"t": "2026-01-01T00:00:00Z"}, "2", 3]),
        "/fhir/Observation?subject=p1&_cursor="
        + _cursor([{"t": "2026-01-01T00:00:00Z"}, 2, "a\x00"]),
        "/fhir/Observation?subject=p1&_cursor="
        + _cursor([{"t": "2026-01-01T00:00:00Z"}, 10**30, "a"]),
        "/fhir/Communication?patient=p1&_cursor=" + _cursor([10**30]),
        "/fhir/Flag?patient=p1&_cursor=" + _cursor([{"t": "2026-01-01T00:00:00"}, 1]),
        "/fhir/Patient?_cursor=" + _cursor(["p\x00"]),
        "/fhir/Device?patient=p1&_count=5",
        "/fhir/Flag?patient=p1&_summary=count",
        "/fhir/Observation/$lastn?patient=p1&device=Device/nothing",
    ],
)
def test_edited_cursors_and_parameters_not_offered_are_400(client, stored, path: str) -> None:  # type: ignore[no-untyped-def]
    _, token, _ = stored
    response = client.get(path, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 400, response.text
    assert response.json()["resourceType"] == "OperationOutcome"


@pytest.mark.parametrize("date", ["ap9998-12-31", "ap0001-01-01", "ap9998"])
def test_approximate_dates_at_the_ends_of_the_calendar(client, stored, date: str) -> None:  # type: ignore[no-untyped-def]
    _, token, _ = stored
    response = client.get(
        f"/fhir/Observation?subject=p1&date={date}", headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 200, response.text


def test_a_lenient_walk_keeps_the_filters_it_used(client, stored) -> None:  # type: ignore[no-untyped-def]
    _, token, rows = stored
    auth = {"Authorization": f"Bearer {token}", "Prefer": "handling=lenient"}
    url = f"/fhir/Observation?subject=p1&date=ge{iso(at(100))}&date=bad&_count=7"
    walked: set[str] = set()
    while url:
        page = client.get(url, headers=auth).json()
        walked |= {e["resource"]["id"] for e in page["entry"] if e["search"]["mode"] == "match"}
        links = [x["url"] for x in page["link"] if x["relation"] == "next"]
        url = links[0].removeprefix("http://127.0.0.1:8000") if links else ""
        assert not links or ("date=ge" in links[0] and "bad" not in links[0])
    assert walked == {observation_id(r) for r in rows if r.effective >= at(100)}
    zero = client.get("/fhir/Observation?subject=p1&_count=0", headers=auth).json()
    assert "total" not in zero  # more than none match: not counted, not said to be 0
