"""Keyset paging, checked row for row against SQL: ties in time between two devices, both
sort orders, and a walk while a writer keeps storing readings (new ones and a backlog)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime
from urllib.parse import parse_qs, urlsplit

import psycopg
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.fhir.observation import Row, observation_id
from api.fhir.search.paging import decode
from ingest import writer
from tests.api.conftest import clinician_token
from tests.builders import T0, batch
from vigil.settings import Settings

pytestmark = [pytest.mark.services, pytest.mark.slow]
STRAPS = ("C1:00:00:00:00:01", "C1:00:00:00:00:02")


def readings(start_ms: int, seconds: int, seq: int, patient: str = "p1") -> list:  # type: ignore[type-arg]
    """Two straps sending heart rate at the same instants, and an oximeter: ties on time
    (and on time and metric) everywhere."""
    made = []
    for device in STRAPS:
        rows = [(patient, "heart_rate", start_ms + s * 1000, 60.0 + s % 40) for s in range(seconds)]
        rows += [(patient, "spo2", start_ms + s * 1000, 90.0 + s % 10) for s in range(seconds)]
        made.append(replace(batch(seq=seq, rows=rows), device=tuple(device for _ in rows)))
        seq += 1
    return made


@pytest.fixture
def api(database_url: str) -> Iterator[tuple[TestClient, dict[str, str], str]]:
    with psycopg.connect(database_url) as conn:
        writer.store(conn, readings(T0, 60, 0))
        token = clinician_token(conn, "dr-walk", ["p1"])
        conn.commit()
    with TestClient(create_app(Settings(database_url=database_url))) as client:
        yield client, {"Authorization": f"Bearer {token}"}, database_url


def walk(client: TestClient, auth: dict[str, str], url: str) -> tuple[list[str], list[str]]:
    """Every id of every page, following next links; and the next links followed."""
    ids: list[str] = []
    links: list[str] = []
    while url:
        page = client.get(url, headers=auth)
        assert page.status_code == 200, page.text
        ids += [e["resource"]["id"] for e in page.json()["entry"] if e["search"]["mode"] == "match"]
        found = [link["url"] for link in page.json()["link"] if link["relation"] == "next"]
        url = found[0].removeprefix("http://127.0.0.1:8000") if found else ""
        links += found
    return ids, links


def stored(url: str, order: str, before: object = None) -> list[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT patient, metric, effective, value, flags, device, received FROM observation"
            " WHERE patient = 'p1' AND (%s::timestamptz IS NULL OR received < %s)"
            f" ORDER BY effective {order}, metric {order}, device {order}",
            (before, before),
        ).fetchall()
    return [observation_id(Row(*r)) for r in rows]


@pytest.mark.parametrize(("sort", "order"), [("-date", "DESC"), ("date", "ASC")])
def test_a_walk_over_ties_returns_every_row_once_in_order(api, sort: str, order: str) -> None:  # type: ignore[no-untyped-def]
    client, auth, url = api
    ids, links = walk(client, auth, f"/fhir/Observation?subject=p1&_count=7&_sort={sort}")
    assert len(ids) == 240 and len(links) == 34
    assert ids == stored(url, order)


def test_a_walk_while_readings_arrive_returns_exactly_the_rows_received_before_it(api) -> None:  # type: ignore[no-untyped-def]
    client, auth, url = api
    stop = threading.Event()

    def write() -> None:
        seq = 1000
        with psycopg.connect(url) as conn:
            while not stop.is_set():
                # new readings after the walk began, and a backlog inside what it walks
                for start in (T0 + 3_600_000 + seq * 1000, T0 + 30_500 + seq):
                    writer.store(conn, readings(start, 2, seq))
                    conn.commit()
                    seq += 2

    writing = threading.Thread(target=write)
    writing.start()
    try:
        for sort, order in (("-date", "DESC"), ("date", "ASC")):
            ids, links = walk(client, auth, f"/fhir/Observation?subject=p1&_count=9&_sort={sort}")
            snapshot = decode(
                parse_qs(urlsplit(links[0]).query)["_cursor"][0], datetime, int, str
            ).snapshot
            assert len(set(ids)) == len(ids)
            assert ids == stored(url, order, snapshot)
    finally:
        stop.set()
        writing.join()
    assert len(stored(url, "ASC")) > 240 + 8  # the writer wrote meanwhile


def test_total_is_exact_when_asked_and_the_same_on_every_page(api) -> None:  # type: ignore[no-untyped-def]
    client, auth, _ = api
    first = client.get("/fhir/Observation?subject=p1&_count=100&_total=accurate", headers=auth)
    assert first.json()["total"] == 240
    link = next(x["url"] for x in first.json()["link"] if x["relation"] == "next")
    second = client.get(link.removeprefix("http://127.0.0.1:8000"), headers=auth)
    assert second.json()["total"] == 240
    plain = client.get("/fhir/Observation?subject=p1&_count=100", headers=auth).json()
    assert "total" not in plain  # more than a page, and not asked: not counted
    counted = client.get("/fhir/Observation?subject=p1&_summary=count", headers=auth).json()
    assert counted["total"] == 240 and not counted.get("entry")


def test_a_cursor_not_given_by_the_server_is_a_400(api) -> None:  # type: ignore[no-untyped-def]
    client, auth, _ = api
    for bad in ("nonsense", "eyJzIjoxfQ", "e30"):
        response = client.get(f"/fhir/Observation?subject=p1&_cursor={bad}", headers=auth)
        assert response.status_code == 400, bad
        assert "_cursor" in response.json()["issue"][0]["diagnostics"]


def test_counts_fit_the_rows(api) -> None:  # type: ignore[no-untyped-def]
    """A page of 0 says how many there are and has no next link."""
    client, auth, _ = api
    empty = client.get("/fhir/Observation?subject=p1&_count=0&_total=accurate", headers=auth)
    assert empty.json()["total"] == 240
    assert [x["relation"] for x in empty.json()["link"]] == ["self"]
