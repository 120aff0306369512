"""The zero-install fallback: the same pipeline through the embedded amqtt broker, which
speaks MQTT 3.1.1 only (no shared subscriptions, no session expiry property)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.e2e.harness import GatewayThread, IngestProcess, stored_rows, wait_for
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
        counters = gateway.finish()
    url = settings.database_url or ""
    wait_for(lambda: len(stored_rows(url)) >= counters.published, 20)
    stored = len(stored_rows(url))
    assert ingest.stop() == 0
    assert counters.published > 10
    assert stored == counters.published
    assert "MQTT 3.1.1" in (tmp_path / "ingest.log").read_text()
