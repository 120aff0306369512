"""Ingest accounting over HTTP: JSON stats and the Prometheus exposition."""

from collections.abc import Iterator

import psycopg
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from api.access.tokens import create_client
from api.app import create_app
from tests.ingest.test_stats import fill
from vigil.settings import Settings

pytestmark = pytest.mark.services


@pytest.fixture
def client(database_url: str) -> Iterator[tuple[TestClient, dict[str, str]]]:
    fill(database_url)
    with psycopg.connect(database_url) as conn:
        token = create_client(conn, "prometheus", "admin")
        conn.commit()
    with TestClient(create_app(Settings(database_url=database_url))) as c:
        yield c, {"Authorization": f"Bearer {token}"}


def test_metrics_carry_the_counters_per_gateway(client: tuple[TestClient, dict[str, str]]) -> None:
    c, auth = client
    response = c.get("/metrics", headers=auth)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples = {
        (s.name, s.labels.get("gateway")): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }
    assert samples[("vigil_ingest_readings_stored_total", "gw-a")] == 4
    assert samples[("vigil_ingest_duplicates_total", "gw-a")] == 1
    assert samples[("vigil_ingest_missing_batches_total", "gw-a")] == 4
    assert samples[("vigil_ingest_dead_letters_total", "gw-c")] == 1
    assert samples[("vigil_ingest_seq_conflicts_total", "gw-a")] == 0
    assert samples[("vigil_ingest_highest_seq", "gw-a")] == 7
    assert samples[("vigil_ingest_lag_seconds", "gw-b")] > 0


def test_stats_as_json(client: tuple[TestClient, dict[str, str]]) -> None:
    c, auth = client
    by_gateway = {g["gateway"]: g for g in c.get("/ingest/stats", headers=auth).json()}
    assert by_gateway["gw-a"]["gaps"] == [[2, 3], [5, 6]]
    assert by_gateway["gw-b"]["highest_seq"] == 3


@pytest.mark.parametrize("path", ["/metrics", "/ingest/stats"])
def test_a_token_is_required(client: tuple[TestClient, dict[str, str]], path: str) -> None:
    c, _ = client
    assert c.get(path).status_code == 401
