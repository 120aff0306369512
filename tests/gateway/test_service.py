"""The gateway service's sealing and in-flight window, with a publisher that stands in for
the broker (pure logic: no Bluetooth, no network)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from gateway.outbox import BATCH_LIMIT
from gateway.readings import Converted, Reading
from gateway.service import GatewayService
from vigil.settings import Settings


class HeldPublisher:
    """Takes messages and acknowledges only when told: a broker that went away."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes]] = []

    def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> int:
        self.sent.append((topic, payload))
        return len(self.sent)

    def close(self) -> None:
        pass


def readings(n: int, start: int) -> Converted:
    return Converted(
        [Reading("C1:00:00:00:00:01", "p0001", 2, start + i, 95.0, 0) for i in range(n)], []
    )


def test_a_full_window_seals_only_full_batches_and_acks_drain_them(tmp_path: Path) -> None:
    async def run() -> tuple[list[int], list[tuple[str, bytes]], int]:
        settings = Settings(gateway_id="gw-unit", gateway_data_dir=tmp_path, max_inflight_batches=2)
        service = GatewayService(settings, {})
        publisher = HeldPublisher()
        service._publisher = publisher
        clock = 0
        for _ in range(2):  # two ordinary seconds fill the window
            service._store(readings(10, clock))
            service._seal_and_publish()
            clock += 1000
        for _ in range(6):  # the broker stops acknowledging: 6 x 1,000 readings wait
            service._store(readings(1000, clock))
            service._seal_and_publish()
            clock += 1000
        sealed_while_away = [b.readings for b in service.outbox.pending(after_seq=1)]
        for mid in (1, 2, 3):  # the broker is back: acks refill the window at once
            service._on_ack(mid)
        service._seal_and_publish()  # the next second: the remainder goes too
        sent = publisher.sent
        left = service.outbox.loose()
        service.outbox.close()
        return sealed_while_away, sent, left

    sealed_while_away, sent, left = asyncio.run(run())
    assert sealed_while_away == [BATCH_LIMIT]  # one full batch, not six small ones
    # two ordinary batches, then the full one (sent on an ack), then the remainder
    assert [p.count(b'"p0001"') for _, p in sent] == [10, 10, BATCH_LIMIT, 1000]
    assert left == 0
