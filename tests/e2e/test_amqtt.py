"""The zero-install fallback: the same pipeline through the embedded amqtt broker, which
speaks MQTT 3.1.1 only (no shared subscriptions, no session expiry property)."""

from __future__ import annotations

import time
from pathlib import Path

import psycopg
import pytest

from tests.e2e.harness import GatewayThread, IngestProcess
from vigil.settings import Settings

pytestmark = [pytest.mark.slow, pytest.mark.services]


def test_gateway_to_database_through_amqtt(
    settings: Settings, amqtt_url: str, tmp_path: Path
) -> None:
    settings = settings.model_copy(update={"mqtt_url": amqtt_url})
    ingest = IngestProcess(settings, tmp_path / "ingest.log")
    ingest.start()
    gateway = GatewayThread(settings, patients=1)
    gateway.start()
    try:
        time.sleep(5)
    finally:
        gateway.stop_wearables()
        time.sleep(1)
        counters = gateway.stop()
    deadline = time.monotonic() + 20
    with psycopg.connect(settings.database_url or "") as conn:
        while time.monotonic() < deadline:
            (stored,) = conn.execute("SELECT count(*) FROM observation").fetchone()  # type: ignore[misc]
            if stored >= counters.published:
                break
            time.sleep(0.2)
    assert ingest.stop() == 0
    assert counters.published > 10
    assert stored == counters.published
    assert "MQTT 3.1.1" in (tmp_path / "ingest.log").read_text()
