"""The central station's tiles: exactly the caller's compartment, most in need first, with
the latest values, sparklines, devices and alerts as the writers stored them; and the tile
stream, which sends what changed, an alert change at once, and stops for a revoked token."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
import pytest
from fastapi.testclient import TestClient

from alerts.outbox import Channels
from alerts.store import act, take_event
from alerts.teams import add_team, assign
from api.access.tokens import create_client, revoke
from api.app import create_app
from api.routes import station, stream
from api.station import STALE_AFTER
from ingest import writer
from ingest.registry import Registry
from tests.alerts.test_store import event
from tests.api.access.ward import serve
from tests.api.conftest import clinician_token
from tests.builders import batch
from vigil.db.enrollment import EnrollmentView
from vigil.settings import Settings
from vigil.wire.quality import Quality
from vigil.wire.status import DeviceReport, GatewayDevices, GatewayStatus, Presence
from vigil.wire.topics import Topics

pytestmark = pytest.mark.services

ORDER = ["pa2", "pa7", "pa3", "pa1", "pa8", "pa6", "pa4", "pa5"]
"""Team A as the station shows it: high alerts still calling (the older first), a high one
acknowledged, medium, low, no reading ever, a reading 10 minutes old, all well."""
GATEWAY = "gw-station"


@dataclass
class Ward:
    url: str
    now: datetime
    tokens: dict[str, str]
    alerts: dict[str, int]
    seq: int = 0

    def auth(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}

    def readings(
        self,
        patient: str,
        end: datetime,
        seconds: int = 300,
        spo2: float = 96.0,
        pulse: float = 70.0,
        flags: int = 0,
    ) -> None:
        """A reading of SpO2 (with ``flags``) and heart rate every 10 s up to ``end``,
        stored as ingest does."""
        ms = int(end.timestamp() * 1000)
        rows = []
        for t in range(ms - seconds * 1000, ms + 1, 10_000):
            rows += [(patient, "spo2", t, spo2), (patient, "heart_rate", t, pulse)]
        stored = replace(
            batch(GATEWAY, self.seq, rows, [flags if r[1] == "spo2" else 0 for r in rows]),
            device=tuple(device(patient, metric) for _, metric, _, _ in rows),
        )
        self.seq += 1
        with psycopg.connect(self.url) as conn, conn.transaction():
            writer.store(conn, [stored])
            Registry().record_readings(conn, [stored], trusted=True)


def device(patient: str, metric: str) -> str:
    return f"{'C1' if metric == 'heart_rate' else 'C2'}:00:00:00:00:{patient[-1]}{patient[1]}"


def alert(url: str, patient: str, rule: str, metric: str, at: datetime) -> int:
    with psycopg.connect(url) as conn, conn.transaction():
        made = take_event(
            conn,
            event(
                "persisted", rule, metric, patient=patient, time=at.isoformat(), description=rule
            ),
            Channels(),
        )
    assert made is not None
    return made


def build_ward(url: str) -> Ward:
    now = datetime.now(UTC)
    with psycopg.connect(url, autocommit=True) as conn:
        tokens = {
            "dr-a": clinician_token(conn, "dr-a", [f"pa{i}" for i in range(1, 9)], "t-a"),
            "dr-b": clinician_token(conn, "dr-b", ["pb1"], "t-b"),
            "admin": create_client(conn, "admin", "admin"),
            "pa1": create_client(conn, "pa1-self", "patient", patient="pa1"),
        }
        add_team(conn, "t-a")
        assign(conn, "pa5", "t-a", "Ada Lovelace")
    w = Ward(url, now, tokens, {})
    for patient in ("pa1", "pa2", "pa3", "pa5", "pa7", "pa8", "pb1"):
        w.readings(patient, now - timedelta(seconds=5))
    w.readings("pa4", now - timedelta(minutes=10))
    minute = timedelta(minutes=1)
    w.alerts = {
        "pa1": alert(url, "pa1", "spo2_news2_red", "spo2", now - 5 * minute),
        "pa2": alert(url, "pa2", "spo2_desaturation", "spo2", now - 2 * minute),
        "pa3": alert(url, "pa3", "hr_extreme_high", "heart_rate", now - 3 * minute),
        "pa7": alert(url, "pa7", "spo2_desaturation", "spo2", now - minute),
        "pa8": alert(url, "pa8", "hr_rising", "heart_rate", now - 4 * minute),
        "pb1": alert(url, "pb1", "spo2_desaturation", "spo2", now - 9 * minute),
    }
    with psycopg.connect(url) as conn, conn.transaction():
        act(conn, w.alerts["pa3"], "acknowledged", "nurse-a")
    return w


@pytest.fixture
def ward(database_url: str) -> Ward:
    return build_ward(database_url)


@pytest.fixture
def client(ward: Ward) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(database_url=ward.url))) as c:
        yield c


def tiles_of(client: TestClient, ward: Ward, who: str) -> list[dict[str, Any]]:
    answer = client.get("/station", headers=ward.auth(who))
    assert answer.status_code == 200, answer.text
    return list(answer.json()["tiles"])


def test_a_clinician_gets_the_tiles_of_their_team_most_in_need_first(
    client: TestClient, ward: Ward
) -> None:
    tiles = tiles_of(client, ward, "dr-a")
    assert [t["patient"] for t in tiles] == ORDER
    attention = {t["patient"]: t["attention"] for t in tiles}
    assert attention == {
        "pa2": "high",
        "pa7": "high",
        "pa3": "high",
        "pa1": "medium",
        "pa8": "low",
        "pa6": "stale",
        "pa4": "stale",
        "pa5": "ok",
    }
    with psycopg.connect(ward.url) as conn:
        row = conn.execute(
            "SELECT actor, action, patients FROM audit_event WHERE resource = '/station'"
        ).fetchone()
    assert row == ("dr-a", "search", sorted(ORDER))
    assert [t["patient"] for t in tiles_of(client, ward, "dr-b")] == ["pb1"]


def test_an_administrator_sees_everyone_and_a_patient_only_themselves(
    client: TestClient, ward: Ward
) -> None:
    assert {t["patient"] for t in tiles_of(client, ward, "admin")} == {*ORDER, "pb1"}
    (own,) = tiles_of(client, ward, "pa1")
    assert own["patient"] == "pa1" and own["alerts"][0]["id"] == ward.alerts["pa1"]
    assert client.get("/station").status_code == 401


def test_a_tile_holds_the_latest_values_the_sparkline_the_devices_and_the_alerts(
    client: TestClient, ward: Ward
) -> None:
    end = ward.now - timedelta(seconds=5)
    ward.readings("pa5", end + timedelta(seconds=2), seconds=0, spo2=91.0, pulse=88.0)
    with psycopg.connect(ward.url) as conn:
        strap = DeviceReport(
            device("pa5", "heart_rate"), "pa5", "connected", "heart-rate-strap", 64
        )
        oximeter = DeviceReport(device("pa5", "spo2"), "pa5", "disconnected", "pulse-oximeter", 12)
        Registry().record_reports(
            conn,
            [
                (Topics(GATEWAY).devices, GatewayDevices((strap, oximeter)).encode()),
                (Topics(GATEWAY).status, GatewayStatus(GATEWAY, Presence.ONLINE).encode()),
            ],
            EnrollmentView("off"),
        )
    tiles = {t["patient"]: t for t in tiles_of(client, ward, "dr-a")}
    ada = tiles["pa5"]
    assert ada["name"] == "Ada Lovelace"
    assert ada["spo2"]["value"] == 91.0 and ada["pulse"]["value"] == 88.0
    newest = datetime.fromisoformat(ada["last"])
    assert abs(newest - (end + timedelta(seconds=2))) < timedelta(milliseconds=1)
    minutes = [p[0] for p in ada["spark"]]
    assert minutes == sorted(minutes) and minutes[-1] - minutes[0] <= 30 * 60
    assert len(minutes) in (5, 6)  # 5 minutes of readings, across 5 or 6 clock minutes
    last_minute = ada["spark"][-1]
    assert last_minute[2] == 91.0 and last_minute[6] == 88.0  # the SpO2 min, the pulse max
    assert {(d["kind"], d["state"], d["battery"], d["gateway_state"]) for d in ada["devices"]} == {
        ("heart-rate-strap", "connected", 64, "online"),
        ("pulse-oximeter", "disconnected", 12, "online"),
    }
    assert ada["alerts"] == []
    (desaturation,) = tiles["pa2"]["alerts"]
    assert desaturation["priority"] == "high" and desaturation["calling"] is True
    assert desaturation["rule"] == desaturation["description"] == "spo2_desaturation"
    (taken,) = tiles["pa3"]["alerts"]
    assert taken["state"] == "acknowledged" and taken["calling"] is False
    assert tiles["pa6"]["last"] is None and tiles["pa6"]["spark"] == []


def test_an_invalid_newest_reading_shows_no_value_and_a_snooze_stops_the_call(
    client: TestClient, ward: Ward
) -> None:
    ward.readings("pa5", ward.now, seconds=0, flags=int(Quality.INVALID))
    until = (datetime.now(UTC) + timedelta(minutes=15)).isoformat()
    snoozed = client.post(
        f"/alerts/{ward.alerts['pa2']}/snooze", headers=ward.auth("dr-a"), json={"until": until}
    )
    assert snoozed.status_code == 200
    tiles = {t["patient"]: t for t in tiles_of(client, ward, "dr-a")}
    assert tiles["pa5"]["spo2"] == {"value": None, "at": tiles["pa5"]["last"]}
    assert tiles["pa5"]["pulse"]["value"] == 70.0  # the strap still measures
    assert tiles["pa2"]["alerts"][0]["calling"] is False
    assert [t["patient"] for t in tiles.values()][:3] == ["pa7", "pa3", "pa2"]


def test_two_minutes_without_a_reading_is_stale(client: TestClient, ward: Ward) -> None:
    ward.readings("pa6", ward.now - STALE_AFTER - timedelta(seconds=10), seconds=60)
    tiles = {t["patient"]: t for t in tiles_of(client, ward, "dr-a")}
    assert tiles["pa6"]["attention"] == "stale"
    assert [p for p in tiles if tiles[p]["attention"] == "stale"] == ["pa4", "pa6"]
    ward.readings("pa6", datetime.now(UTC), seconds=0)
    assert {t["patient"]: t for t in tiles_of(client, ward, "dr-a")}["pa6"]["attention"] == "ok"


def events(response: httpx.Response) -> Iterator[dict[str, Any]]:
    """The stream's ``tiles`` events, as they come."""
    kind = None
    for line in response.iter_lines():
        if line.startswith("event: "):
            kind = line[7:]
        elif line.startswith("data: ") and kind == "tiles":
            yield json.loads(line[6:])


def showing(received: Iterator[dict[str, Any]], patient: str) -> tuple[dict[str, Any], set[str]]:
    """The tile of ``patient`` in the next event that has it (a minute ending may send
    others' before), and every patient sent until then."""
    sent: set[str] = set()
    for _ in range(5):
        tiles = {t["patient"]: t for t in next(received)["tiles"]}
        sent |= tiles.keys()
        if patient in tiles:
            return tiles[patient], sent
    raise AssertionError(f"no tile of {patient} in 5 events")


def open_stream(base: str, ward: Ward, who: str = "dr-a") -> Any:
    return httpx.stream("GET", f"{base}/station/stream", headers=ward.auth(who), timeout=10)


def test_the_stream_sends_every_tile_then_those_that_changed(
    ward: Ward, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(station, "TICK_S", 0.5)
    with serve(Settings(database_url=ward.url)) as base, open_stream(base, ward) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        received = events(response)
        first = next(received)
        assert {t["patient"] for t in first["tiles"]} == set(ORDER)
        assert len({t["patient"]: t for t in first["tiles"]}["pa5"]["spark"]) >= 5
        ward.readings("pa5", datetime.now(UTC), seconds=0, spo2=90.0)
        tile, sent = showing(received, "pa5")
        assert tile["spo2"]["value"] == 90.0 and len(tile["spark"]) <= 3  # its last minutes
        assert not {"pa4", "pa6"} & sent  # nothing new of theirs


def test_an_alert_change_is_sent_at_once_and_only_to_its_patients_team(
    ward: Ward, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(station, "TICK_S", 60.0)  # after the first, no tick during the test
    with serve(Settings(database_url=ward.url)) as base, open_stream(base, ward) as response:
        received = events(response)
        next(received)
        alert(ward.url, "pb1", "hr_extreme_low", "heart_rate", datetime.now(UTC))
        raised = alert(ward.url, "pa5", "spo2_desaturation", "spo2", datetime.now(UTC))
        started = time.monotonic()
        shown = next(received)
        assert time.monotonic() - started < 5
        (tile,) = shown["tiles"]
        assert tile["patient"] == "pa5" and tile["attention"] == "high"
        assert tile["alerts"][0]["id"] == raised
    with psycopg.connect(ward.url) as conn:
        named = conn.execute(
            "SELECT DISTINCT unnest(patients) FROM audit_event WHERE action = 'deliver'"
        ).fetchall()
    assert {p for (p,) in named} == set(ORDER)


def test_a_revoked_token_ends_the_stream(ward: Ward, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(station, "TICK_S", 0.5)
    monkeypatch.setattr(stream, "KEEP_ALIVE_S", 0.5)
    with serve(Settings(database_url=ward.url)) as base, open_stream(base, ward) as response:
        received = events(response)
        next(received)
        with psycopg.connect(ward.url, autocommit=True) as conn:
            revoke(conn, "dr-a")
        started = time.monotonic()
        list(received)  # the stream ends; a stream going on would time out reading
        assert time.monotonic() - started < 5
