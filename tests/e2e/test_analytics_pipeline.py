"""The whole path to an alert candidate: a simulated oximeter over the bleak backend, the
real gateway, the broker, and `vigil analytics` publishing the event."""

from __future__ import annotations

import pytest

from simulators.ble.ward import patient_id
from simulators.physiology import Scripted
from tests.e2e.harness import AnalyticsThread, EventCollector, GatewayThread, wait_for
from vigil.settings import Settings

pytestmark = [pytest.mark.slow, pytest.mark.services]


def test_a_scripted_desaturation_reaches_the_events_topic(settings: Settings) -> None:
    settings = settings.model_copy(
        update={"analytics_client_id": f"analytics-{settings.gateway_id}"}
    )
    desaturating, steady = patient_id(0), patient_id(1)
    events = EventCollector(settings)
    analytics = AnalyticsThread(
        settings.model_copy(update={"analytics_state_dir": settings.gateway_data_dir / "a"})
    )
    gateway = GatewayThread(
        settings, patients=2, scripts={0: (Scripted("spo2", 83, start_s=5, hold_s=60),)}
    )
    gateway.start()
    try:
        # ramp 10 s, then at most a few seconds to cross 88 %, then the 15 s delay
        assert wait_for(lambda: "persisted" in events.kinds(desaturating), 90)
    finally:
        gateway.stop()
        counters = analytics.stop()
        events.close()
    persisted = next(
        e
        for e in events.received
        if e["patient"] == desaturating
        and e["kind"] == "persisted"
        and e["rule"] == "spo2_desaturation"
    )
    assert persisted["gateway"] == settings.gateway_id
    assert persisted["metric"] == "spo2" and persisted["value"] < 88
    assert not [e for e in events.received if e["patient"] == steady and e["kind"] == "persisted"]
    assert counters.readings > 0 and counters.undecodable == 0
