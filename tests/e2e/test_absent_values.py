"""A reading the oximeter sends without a value goes from the air to the FHIR API as one:
bumble GATT -> bleak -> gateway -> MQTT -> ingest -> PostgreSQL -> Observation."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest

from api.fhir.observation import Row, render_observation
from simulators.ble import PulseOximeter
from simulators.gatt.encoders import SFLOAT_NRES, encode_plx_spot_check, encode_sfloat
from tests.e2e.harness import GatewayThread, IngestProcess, stored_rows, wait_for
from vigil.metrics import PULSE_RATE, SPO2
from vigil.settings import Settings
from vigil.wire.quality import Quality

pytestmark = [pytest.mark.slow, pytest.mark.services]


def test_an_spo2_sent_as_nres_is_stored_and_served_without_a_value(
    settings: Settings, tmp_path: Path
) -> None:
    ingest = IngestProcess(settings, tmp_path / "ingest.log")
    ingest.start()
    gateway = GatewayThread(settings, patients=1)
    gateway.start()
    taken = datetime(2026, 11, 24, 22, 15, 0)  # device local time: apart from the live rows
    oximeter = next(w for w in gateway.ward.wearables if isinstance(w, PulseOximeter))
    payload = encode_plx_spot_check(SFLOAT_NRES, encode_sfloat(64, 0), timestamp=taken)
    try:
        assert wait_for(lambda: oximeter.subscribed(oximeter.spot_check_measurement), 15)
        gateway.call(
            lambda: oximeter.device.indicate_subscribers(oximeter.spot_check_measurement, payload)
        )
        time.sleep(2)
    finally:
        gateway.stop_wearables()
        counters = gateway.stop()
    url = settings.database_url or ""
    assert wait_for(lambda: len(stored_rows(url)) >= counters.published, 20)
    ingest.stop()
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT patient, metric, effective, value, flags, device, received FROM observation"
            " WHERE effective = %s ORDER BY metric",
            (taken.astimezone(UTC),),
        ).fetchall()
        (dead_letters,) = conn.execute("SELECT count(*) FROM dead_letter").fetchone()  # type: ignore[misc]
    spo2, pulse = (Row(*r) for r in rows)
    assert (spo2.metric, spo2.value) == (SPO2.id, None)
    assert spo2.flags == int(Quality.NOT_AT_RESOLUTION | Quality.INVALID)
    assert (pulse.metric, pulse.value) == (PULSE_RATE.id, 64.0)
    assert dead_letters == 0
    resource = render_observation(spo2)
    assert "valueQuantity" not in resource
    assert resource["dataAbsentReason"]["coding"][0]["code"] == "error"
