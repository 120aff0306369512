"""`vigil simulate --trace`: a captured notification log replayed through the real path."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import psycopg
import pytest

from simulators.gatt.encoders import encode_plx_continuous, encode_sfloat
from simulators.trace import parse_trace
from tests.e2e.harness import IngestProcess
from vigil.embedded.processes import vigil_command
from vigil.settings import Settings

STRAP, OXIMETER = "AA:BB:CC:DD:EE:01", "AA:BB:CC:DD:EE:02"


def line(t: float, device: str, char: str, payload: str) -> str:
    return json.dumps({"t": t, "device": device, "char": char, "hex": payload})


TRACE = [
    line(0.0, STRAP, "2a37", "16480304"),  # 72 bpm, contact, one RR of 1027/1024 s
    line(
        0.5,
        OXIMETER,
        "2A5F",
        encode_plx_continuous(encode_sfloat(97, 0), encode_sfloat(64, 0)).hex(),
    ),
    "{this is not json",
    line(0.8, STRAP, "2a5f", "00"),  # a strap has no PLX characteristic
    line(1.0, STRAP, "2a37", "0650"),  # 80 bpm, contact
    line(1.2, STRAP, "2a37", "01"),  # truncated: the gateway counts it and goes on
    line(1.3, "not-an-address", "2a37", "0650"),
    line(1.4, OXIMETER, "2a5f", "zz"),
]


def test_parse_trace_reports_bad_lines_by_number() -> None:
    events, problems = parse_trace(TRACE)
    assert [(e.line, e.device, e.char) for e in events] == [
        (1, STRAP, "2a37"),
        (2, OXIMETER, "2a5f"),
        (4, STRAP, "2a5f"),
        (5, STRAP, "2a37"),
        (6, STRAP, "2a37"),
    ]
    assert [p.split(":")[0] for p in problems] == ["line 3", "line 7", "line 8"]
    assert "Bluetooth address" in problems[1]


@pytest.mark.slow
@pytest.mark.services
def test_replayed_trace_reaches_the_database(settings: Settings, tmp_path: Path) -> None:
    trace = tmp_path / "capture.jsonl"
    trace.write_text("\n".join(TRACE) + "\n")
    ingest = IngestProcess(settings, tmp_path / "ingest.log")
    ingest.start()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("VIGIL_")},
        "VIGIL_MQTT_URL": settings.mqtt_url or "",
        "VIGIL_GATEWAY_ID": settings.gateway_id,
        "VIGIL_GATEWAY_DATA_DIR": str(tmp_path / "gw"),
    }
    try:
        result = subprocess.run(
            [
                *vigil_command(),
                "simulate",
                "--trace",
                str(trace),
                "--patient",
                "p0077",
            ],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr
        summary = json.loads(result.stdout.strip().splitlines()[-1])
        url = settings.database_url or ""
        deadline = time.monotonic() + 20
        with psycopg.connect(url) as conn:
            query = (
                "SELECT metric, value, flags FROM observation WHERE metric <> 5"
                " ORDER BY effective, metric"
            )
            while time.monotonic() < deadline and len(conn.execute(query).fetchall()) < 5:
                time.sleep(0.2)
            rows = conn.execute(query).fetchall()
            (patients,) = conn.execute(
                "SELECT array_agg(DISTINCT patient) FROM observation"
            ).fetchone()  # type: ignore[misc]
    finally:
        ingest.stop()
    assert summary["notifications"] == 4 and summary["skipped"] == 4
    assert summary["parse_errors"] == 1 and summary["published"] == summary["readings"]
    assert [(m, pytest.approx(v)) for m, v, _ in rows] == [
        (1, 72.0),
        (4, 1027 * 1000 / 1024),
        (2, 97.0),
        (3, 64.0),
        (1, 80.0),
    ]
    assert patients == ["p0077"]
    assert "skipped line 3" in result.stderr and "has no characteristic 2a5f" in result.stderr
