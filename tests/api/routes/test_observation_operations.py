"""$lastn and $stats, against SQL over the same rows."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace

import psycopg
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from ingest import writer
from tests.api.conftest import clinician_token
from tests.builders import batch
from vigil.settings import Settings

pytestmark = pytest.mark.services


@pytest.fixture
def api(database_url: str) -> Iterator[tuple[TestClient, dict[str, str], str]]:
    now = int(time.time() * 1000)
    hour = [
        ("p1", m, now - s * 1000, 90.0 + s % 7)
        for s in range(1, 3601, 10)
        for m in ("spo2", "pulse_rate", "heart_rate")
    ]
    old = [("p1", "spo2", now - 40 * 86_400_000 + s * 1000, 70.0) for s in range(30)]
    strap = replace(
        batch(seq=0, rows=hour), device=tuple("C1" if r[1] == "heart_rate" else "C2" for r in hour)
    )
    with psycopg.connect(database_url) as conn:
        conn.execute("SELECT vigil_ensure_day('observation', (now() - interval '40 days')::date)")
        conn.execute(
            "SELECT vigil_ensure_day('observation_1m', (now() - interval '40 days')::date)"
        )
        writer.store(conn, [strap, batch(seq=1, rows=old)])
        token = clinician_token(conn, "dr-ops", ["p1"])
        conn.commit()
    with TestClient(create_app(Settings(database_url=database_url))) as client:
        yield client, {"Authorization": f"Bearer {token}"}, database_url


def test_lastn_gives_the_last_n_per_metric_even_when_codes_are_shared(api) -> None:  # type: ignore[no-untyped-def]
    client, auth, url = api
    bundle = client.get(
        "/fhir/Observation/$lastn?patient=p1&code=8867-4,59408-5&max=3", headers=auth
    ).json()
    found = [e["resource"] for e in bundle["entry"]]
    assert len(found) == 9  # heart rate and pulse rate share 8867-4 and stay two groups
    with psycopg.connect(url) as conn:
        for metric in (1, 2, 3):
            expected = [
                r[0]
                for r in conn.execute(
                    "SELECT value FROM observation WHERE patient = 'p1' AND metric = %s"
                    " ORDER BY effective DESC LIMIT 3",
                    (metric,),
                )
            ]
            mdc = {1: "147842", 2: "150456", 3: "149530"}[metric]
            shown = [
                r["valueQuantity"]["value"]
                for r in found
                if any(c["code"] == mdc for c in r["code"]["coding"])
            ]
            assert shown == expected
    one = client.get("/fhir/Observation/$lastn?patient=p1", headers=auth).json()
    assert len(one["entry"]) == 3  # every metric the patient has, the last one each


def test_stats_over_a_period_match_sql_from_the_rollup(api) -> None:  # type: ignore[no-untyped-def]
    client, auth, url = api
    response = client.get(
        "/fhir/Observation/$stats?subject=Patient/p1&code=59408-5&duration=24", headers=auth
    )
    assert response.status_code == 200, response.text
    (parameter,) = response.json()["parameter"]
    components = {c["code"]["coding"][0]["code"]: c for c in parameter["resource"]["component"]}
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT count(*), min(value), max(value), avg(value), sum(value) FROM observation"
            " WHERE patient = 'p1' AND metric = 2 AND effective > now() - interval '24 hours'"
        ).fetchone()
    assert row is not None
    assert components["count"]["valueInteger"] == row[0] == 360
    assert components["minimum"]["valueQuantity"]["value"] == row[1]
    assert components["maximum"]["valueQuantity"]["value"] == row[2]
    assert components["average"]["valueQuantity"]["value"] == pytest.approx(row[3], abs=1e-4)
    assert components["sum"]["valueQuantity"]["value"] == pytest.approx(row[4])
    month = client.get(
        "/fhir/Observation/$stats?subject=p1&code=59408-5&duration=2000&statistic=minimum",
        headers=auth,
    )
    (parameter,) = month.json()["parameter"]
    assert (
        parameter["resource"]["component"][0]["valueQuantity"]["value"] == 70.0
    )  # the old readings


def test_stats_refuses_what_the_rollup_cannot_answer(api) -> None:  # type: ignore[no-untyped-def]
    client, auth, _ = api
    for query, words in (
        ("statistic=median", "raw reading"),
        ("duration=-1", "duration"),
        ("statistic=mode", "one of"),
    ):
        response = client.get(f"/fhir/Observation/$stats?subject=p1&{query}", headers=auth)
        assert response.status_code == 400 and words in response.json()["issue"][0]["diagnostics"]
    foreign = client.get("/fhir/Observation/$stats?subject=p9", headers=auth)
    assert foreign.status_code == 200 and foreign.json() == {"resourceType": "Parameters"}
