"""From a simulated oximeter to the people: a scripted desaturation goes through the
gateway, the broker, `vigil analytics` and `vigil alerts`, and reaches the care team's
webhook (signed) and the patient's gateway inbox."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from simulators.ble.ward import patient_id
from simulators.physiology import Scripted
from tests.alerts.receiver import SECRET, Receiver
from tests.e2e.harness import AnalyticsThread, GatewayThread, ServiceProcess, wait_for
from vigil.settings import Settings

pytestmark = [pytest.mark.slow, pytest.mark.services]


def test_a_desaturation_reaches_the_care_team_and_the_patient(
    settings: Settings, tmp_path: Path
) -> None:
    receiver = Receiver(SECRET)
    alerts = ServiceProcess(
        "alerts",
        f"alerts-{settings.gateway_id}",
        {
            "VIGIL_DATABASE_URL": settings.database_url or "",
            "VIGIL_MQTT_URL": settings.mqtt_url or "",
            "VIGIL_ALERTS_CLIENT_ID": f"alerts-{settings.gateway_id}",
            "VIGIL_ALERTS_WEBHOOK_URLS": receiver.url,
            "VIGIL_ALERTS_WEBHOOK_SECRET": SECRET,
        },
        tmp_path / "alerts.log",
    )
    alerts.start()
    analytics = AnalyticsThread(
        settings.model_copy(
            update={
                "analytics_client_id": f"analytics-{settings.gateway_id}",
                "analytics_state_dir": tmp_path / "analytics",
            }
        )
    )
    gateway = GatewayThread(
        settings, patients=1, scripts={0: (Scripted("spo2", 83, start_s=3, hold_s=60),)}
    )
    gateway.start()
    inbox = settings.gateway_data_dir / "inbox.jsonl"
    try:
        assert wait_for(lambda: receiver.delivered() and inbox.exists(), 120)
    finally:
        gateway.stop()
        analytics.stop()
        alerts.stop()
        receiver.close()
    alerts_told = [a for r in receiver.delivered().values() for a in r["body"]["alerts"]]
    assert any(a["rule"] == "spo2_desaturation" and a["priority"] == "high" for a in alerts_told)
    assert all(r["signature_ok"] for r in receiver.requests)
    message = json.loads(inbox.read_text().splitlines()[0])
    assert message["patient"] == patient_id(0) and "oxygen level" in message["text"]
