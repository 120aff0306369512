"""`vigil bench gateway`: the counting it relies on, and a short real run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bench.gateway import GatewayBench, Received
from tests.builders import T0, batch
from vigil.embedded.broker import find_mosquitto


class Message:
    def __init__(self, topic: str, payload: bytes) -> None:
        self.topic = topic
        self.payload = payload


def deliver(received: Received, *payloads: bytes) -> None:
    for payload in payloads:
        received.on_message(None, None, Message("vigil/v1/gw/gw-1/readings", payload))  # type: ignore[arg-type]


def test_resent_batches_count_once_and_late_ones_are_out_of_order() -> None:
    received = Received()
    first = (batch(seq=0)).encode()
    second = (batch(seq=1, rows=[("p0001", "spo2", T0 + 1000, 96.0)])).encode()
    third = (batch(seq=2, rows=[("p0001", "spo2", T0 + 2000, 95.0)])).encode()
    deliver(received, first, third, second, first, b"not a batch")
    assert received.total() == 4
    assert received.duplicate_batches == 1
    assert received.out_of_order == 1
    assert received.undecodable == 1
    assert received.readings[("C1:00:00:00:00:01", "spo2", 96.0)] == 1


@pytest.mark.slow
@pytest.mark.services
def test_a_short_run_measures_the_gateway_and_loses_nothing(tmp_path: Path) -> None:
    lines: list[str] = []
    result: dict[str, Any] = GatewayBench(
        devices=4, duration_s=6, settle_s=1, folder=tmp_path, progress=lines.append
    ).run()
    assert result["devices"] == 4
    assert result["sent"] > 20 and result["lost"] == 0 and result["unexpected"] == 0
    assert result["readings"] > 10
    assert result["cpu_ms_per_reading"] > 0
    assert result["peak_rss_mb"] > 20  # the kernel's figure for a Python process
    assert result["batches_out_of_order"] == 0
    assert lines[0].startswith("4 devices connected")
    assert result["broker"] == ("mosquitto" if find_mosquitto() else "amqtt")


def test_an_odd_number_of_devices_is_refused() -> None:
    with pytest.raises(ValueError, match="even number"):
        GatewayBench(devices=3, duration_s=1)
