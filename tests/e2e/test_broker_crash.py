"""The broker SIGKILLed while it holds batches for an ingest that is away.

Mosquitto writes what it queued to disk only at its autosave: killed in between, it loses
batches it had acknowledged to the gateway. Released on PUBACK, those are gone for good;
kept until ingest confirms the commit, they are sent again. Here the broker saves nothing
after it starts (an autosave interval of an hour), so every batch it queued is lost with it.
"""

from __future__ import annotations

import time
from pathlib import Path

import psycopg
import pytest

from tests.e2e.harness import GatewayThread, IngestProcess, wait_for
from tests.e2e.test_pipeline import assert_stored_exactly_once
from vigil.embedded.broker import start_broker
from vigil.settings import Settings

pytestmark = [pytest.mark.slow, pytest.mark.services]


def stored(url: str) -> int:
    with psycopg.connect(url) as conn:
        (count,) = conn.execute("SELECT count(*) FROM observation").fetchone()  # type: ignore[misc]
    return int(count)


@pytest.mark.parametrize("release_on", ["commit", "puback"])
def test_a_broker_crash_loses_nothing_the_gateway_kept_until_commit(
    settings: Settings, tmp_path: Path, release_on: str
) -> None:
    broker = start_broker(tmp_path / "broker", autosave_interval=3600)
    if broker.kind != "mosquitto":
        broker.stop()
        pytest.skip("the embedded amqtt broker keeps no queue across a restart; install mosquitto")
    settings = settings.model_copy(
        update={"mqtt_url": broker.url, "gateway_release_on": release_on}
    )
    ingest = IngestProcess(settings, tmp_path / "ingest.log")
    gateway = GatewayThread(settings, patients=2)
    try:
        ingest.start()
        gateway.start()
        url = settings.database_url or ""
        assert wait_for(lambda: stored(url) > 20, 30)
        ingest.kill()  # ingest away: the broker queues the gateway's batches for it
        time.sleep(6)
        broker.kill()  # and loses them: it saved nothing since it started
        broker.restart()
        ingest.start()
        time.sleep(2)
        gateway.stop_wearables()
        # What the broker lost is sent again once ingest's commitments show the hole.
        assert wait_for(lambda: gateway.outbox_depth() == 0, 60)
        counters = gateway.stop()
    finally:
        broker.stop()
    if release_on == "puback":
        # Today's weakness, shown: every batch was acknowledged and forgotten, some never stored.
        assert counters.published == counters.readings
        assert wait_for(lambda: stored(url) >= counters.published, 5) is False
    else:
        assert counters.confirmed == counters.readings, "the outbox drained once confirmed"
        assert counters.resent_batches > 0  # what the broker lost came again from the outbox
        assert_stored_exactly_once(gateway, settings, counters.readings, minimum=60)
    ingest.stop()
