from pathlib import Path

from gateway.outbox import Outbox
from gateway.readings import Reading
from vigil.wire.batch import Batch


def readings(n: int, start: int = 0) -> list[Reading]:
    return [
        Reading("C1:00:00:00:00:01", "p0001", 1, 1000 + i, 60.0 + i, 0)
        for i in range(start, start + n)
    ]


def test_seal_numbers_batches_and_keeps_order(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.sqlite", "gw-1")
    assert box.seal(5) is None
    box.append(readings(3))
    first = box.seal(99)
    box.append(readings(2, start=3))
    second = box.seal(100)
    assert first is not None and second is not None
    assert (first.seq, first.readings, second.seq, second.readings) == (0, 3, 1, 2)
    decoded = Batch.decode(first.payload)
    assert decoded.gateway == "gw-1" and decoded.sent == 99
    assert decoded.value.tolist() == [60.0, 61.0, 62.0]
    assert [b.seq for b in box.pending()] == [0, 1]
    assert box.depth() == 5 and box.oldest_ms() == 1000


def test_seal_respects_the_limit(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.sqlite", "gw-1")
    box.append(readings(7))
    assert [box.seal(1, limit=3).readings for _ in range(3)] == [3, 3, 1]  # type: ignore[union-attr]


def test_only_acknowledged_batches_leave_and_seq_survives_restart(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite"
    box = Outbox(path, "gw-1")
    box.append(readings(4))
    box.seal(1, limit=2)
    box.seal(1, limit=2)
    assert box.acknowledge(0) == 2
    assert box.acknowledge(0) == 0  # a second PUBACK changes nothing
    box.close()

    reopened = Outbox(path, "gw-1")
    assert [b.seq for b in reopened.pending()] == [1]
    assert reopened.depth() == 2
    reopened.append(readings(1, start=9))
    assert reopened.seal(2).seq == 2  # type: ignore[union-attr]
    assert [b.seq for b in reopened.pending(after_seq=1)] == [2]


def test_a_full_outbox_drops_the_oldest_unsent_batches_and_counts_them(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite"
    box = Outbox(path, "gw-1")
    for i in range(4):
        box.append(readings(4, start=4 * i))
        box.seal(i)
    assert box.drop_oldest(max_readings=10, after_seq=0) == 8  # batch 0 is with the publisher
    assert [b.seq for b in box.pending()] == [0, 3]
    assert box.depth() == 8
    assert box.drop_oldest(max_readings=10, after_seq=0) == 0
    box.close()
    assert Outbox(path, "gw-1").dropped() == 8  # survives restarts
