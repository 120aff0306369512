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


def test_only_released_batches_leave_and_seq_survives_restart(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite"
    box = Outbox(path, "gw-1")
    life = box.life()
    box.append(readings(4))
    box.seal(1, limit=2)
    box.seal(1, limit=2)
    assert box.release(0) == 2
    assert box.release(0) == 0  # a second PUBACK changes nothing
    box.close()

    reopened = Outbox(path, "gw-1")
    assert reopened.life() == life  # the life is the file's, drawn once
    assert [b.seq for b in reopened.pending()] == [1]
    assert reopened.depth() == 2
    reopened.append(readings(1, start=9))
    assert reopened.seal(2).seq == 2  # type: ignore[union-attr]
    assert [b.seq for b in reopened.pending(after_seq=1)] == [2]


def test_commitments_release_everything_up_to_them(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.sqlite", "gw-1")
    assert box.oldest_seq() == 0
    for i in range(4):
        box.append(readings(3, start=3 * i))
        box.seal(i)
    assert box.unconfirmed(through_seq=2) == (9, 1000)  # batches 0-2 are with the broker
    assert box.release_through(1) == 6
    assert [b.seq for b in box.pending()] == [2, 3]
    assert box.oldest_seq() == 2
    assert [b.seq for b in box.batches([3, 0, 2])] == [2, 3]  # 0 is gone
    assert box.release_through(3) == 6
    assert box.oldest_seq() == box.next_seq() == 4
    assert box.unconfirmed(through_seq=3) == (0, None)


def test_a_new_outbox_has_a_life_of_its_own(tmp_path: Path) -> None:
    first = Outbox(tmp_path / "a.sqlite", "gw-1").life()
    second = Outbox(tmp_path / "b.sqlite", "gw-1").life()
    assert first != second and 0 <= first < 2**53 and 0 <= second < 2**53


def test_a_full_outbox_drops_the_oldest_batches_not_with_the_broker(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite"
    box = Outbox(path, "gw-1")
    for i in range(4):
        box.append(readings(4, start=4 * i))
        box.seal(i)
    # batch 0 awaits its PUBACK: kept; 1 and 2 go, the oldest after it
    assert box.drop_oldest(max_readings=10, keep={0}) == {1: 4, 2: 4}
    assert [b.seq for b in box.pending()] == [0, 3]
    assert box.depth() == 8
    assert box.drop_oldest(max_readings=10, keep={0}) == {}
    box.count_dropped(5)  # readings a full disk kept from the outbox
    box.close()
    assert Outbox(path, "gw-1").dropped() == 13  # survives restarts
