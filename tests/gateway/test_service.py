"""The gateway service's sealing and in-flight window, with a publisher that stands in for
the broker (pure logic: no Bluetooth, no network)."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from gateway.delivery import HOLE_AFTER_S
from gateway.outbox import BATCH_LIMIT
from gateway.readings import Converted, Reading
from gateway.service import GatewayService
from vigil.settings import Settings
from vigil.wire.batch import Batch
from vigil.wire.commitment import Commitment
from vigil.wire.status import GatewayStatus


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
        service._publisher = service.delivery.publisher = publisher
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


def commitment(service: GatewayService, through: int, latest: int, life: int = 0) -> bytes:
    return Commitment(service.gateway, life or service.outbox.life(), through, latest).encode()


def published_seqs(publisher: HeldPublisher, topic: str) -> list[int]:
    return [Batch.decode(p).seq for t, p in publisher.sent if t == topic]


def streaming(
    tmp_path: Path, batches: int, **settings: object
) -> tuple[GatewayService, HeldPublisher]:
    """A service that published ``batches`` batches of 10 readings, all taken by the broker."""
    service = GatewayService(
        Settings(gateway_id="gw-unit", gateway_data_dir=tmp_path, **settings), {}
    )
    publisher = HeldPublisher()
    service._publisher = service.delivery.publisher = publisher
    for i in range(batches):
        service._store(readings(10, i * 1000))
        service._seal_and_publish()
        while service.delivery.inflight:
            service._on_ack(min(service.delivery.inflight))
    return service, publisher


def test_a_batch_leaves_the_outbox_when_ingest_confirms_it_not_on_puback(tmp_path: Path) -> None:
    service, _ = streaming(tmp_path, 3)
    assert service.outbox.depth() == 30 and service.counters.published == 30
    service.delivery.on_commitment(commitment(service, through=1, latest=1))
    assert [b.seq for b in service.outbox.pending()] == [2]
    assert service.counters.confirmed == 20
    older = commitment(service, through=0, latest=1)
    service.delivery.on_commitment(older)  # no harm
    assert service.outbox.depth() == 10


def test_a_commitment_of_another_life_releases_nothing(tmp_path: Path) -> None:
    service, _ = streaming(tmp_path, 2)
    other = (service.outbox.life() + 1) % 2**53
    service.delivery.on_commitment(commitment(service, through=1, latest=1, life=other))
    service.delivery.on_commitment(b"not json")
    assert service.outbox.depth() == 20


def test_a_hole_below_the_latest_commit_is_sent_again(tmp_path: Path) -> None:
    service, publisher = streaming(tmp_path, 4)
    readings_topic = service.topics.readings
    service.delivery.on_commitment(commitment(service, through=0, latest=3))  # 1 and 2 went missing
    service._seal_and_publish()
    assert published_seqs(publisher, readings_topic) == [0, 1, 2, 3]  # not yet: maybe late
    service.delivery.sent_at = {s: t - HOLE_AFTER_S for s, t in service.delivery.sent_at.items()}
    original = {Batch.decode(p).seq: p for t, p in publisher.sent if t == readings_topic}
    service._seal_and_publish()
    again = publisher.sent[-2:]
    assert [Batch.decode(p).seq for _, p in again] == [1, 2]
    assert [p for _, p in again] == [original[1], original[2]]  # the very bytes: a redelivery
    assert service.counters.resent_batches == 2


def test_with_no_confirmation_at_all_only_the_oldest_few_are_probed(tmp_path: Path) -> None:
    service, publisher = streaming(tmp_path, 5, max_inflight_batches=2)
    readings_topic = service.topics.readings
    first = len(published_seqs(publisher, readings_topic))
    timeout = service.settings.gateway_confirm_timeout_s
    service.delivery.sent_at = {s: t - timeout for s, t in service.delivery.sent_at.items()}
    service.delivery.progress_at -= timeout
    service._seal_and_publish()
    assert published_seqs(publisher, readings_topic)[first:] == [0, 1]  # the window's worth
    while service.delivery.inflight:
        service._on_ack(min(service.delivery.inflight))
    service._seal_and_publish()  # ingest is still away: no new probe before another timeout
    assert published_seqs(publisher, readings_topic)[first:] == [0, 1]


def test_a_platform_that_does_not_confirm_releases_on_puback(tmp_path: Path) -> None:
    service, _ = streaming(tmp_path, 2, gateway_release_on="puback")
    assert service.outbox.depth() == 0 and service.counters.confirmed == 20


def test_the_status_says_what_is_unconfirmed_and_where_the_outbox_starts(tmp_path: Path) -> None:
    service, publisher = streaming(tmp_path, 3)
    service.delivery.on_commitment(commitment(service, through=0, latest=0))
    service._publish_status()
    status = GatewayStatus.decode(
        next(p for t, p in reversed(publisher.sent) if t.endswith("/status"))
    )
    assert (status.unconfirmed, status.oldest_seq, status.next_seq) == (20, 1, 3)
    assert status.life == service.outbox.life() and status.confirmed == 10
    assert status.unconfirmed_age_s is not None


def test_readings_wait_in_memory_while_the_disk_is_full(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    service, _ = streaming(tmp_path, 1)
    outbox = service.outbox

    def full(_readings: object) -> None:
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(outbox, "append", full)
    service._store(readings(5, 50_000))
    service._seal_and_publish()  # still full: nothing lost, nothing raised
    assert service.outbox.loose() == 0 and len(service.disk.held) == 5
    monkeypatch.undo()
    service._store(readings(3, 60_000))  # behind the held ones, in order
    assert len(service.disk.held) == 8
    service._seal_and_publish()
    assert service.disk.held == [] and service.outbox.depth() == 18
    assert service.counters.readings == 18
