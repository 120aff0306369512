"""How far each gateway's batches are committed, on a real PostgreSQL."""

from __future__ import annotations

import psycopg
import pytest

from ingest import commitments, writer
from ingest.commitments import Floor
from tests.builders import T0, batch
from vigil.wire.commitment import Commitment
from vigil.wire.status import GatewayStatus, Presence

pytestmark = pytest.mark.services
LIFE = 7


def store(conn: psycopg.Connection, gateway: str, *seqs: int, shift: int = 0) -> list[Commitment]:
    """Store the batches (each with a reading of its own) and climb, as ingest's flush does."""
    batches = [batch(gateway, seq, [("p1", "spo2", T0 + seq * 1000 + shift, 95.0)]) for seq in seqs]
    writer.store(conn, batches)
    confirmed = commitments.advance(conn, [gateway])
    conn.commit()
    return confirmed


def floor(conn: psycopg.Connection, gateway: str, oldest_seq: int, life: int = LIFE) -> Commitment:
    (confirmed,) = commitments.raise_floors(conn, [Floor(gateway, life, oldest_seq)])
    conn.commit()
    return confirmed


def test_through_climbs_over_contiguous_batches_and_stops_at_a_hole(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        assert floor(conn, "gw-1", 0) == Commitment("gw-1", LIFE, -1, -1)
        assert store(conn, "gw-1", 0, 1) == [Commitment("gw-1", LIFE, 1, 1)]
        assert store(conn, "gw-1", 3, 4) == [Commitment("gw-1", LIFE, 1, 4)]  # 2 is missing
        assert store(conn, "gw-1", 2) == [Commitment("gw-1", LIFE, 4, 4)]
        assert store(conn, "gw-1", 2) == [Commitment("gw-1", LIFE, 4, 4)]  # a resend: told again


def test_a_gateway_that_never_said_its_floor_gets_no_commitment(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        assert store(conn, "gw-old", 0, 1) == []  # it releases on PUBACK
        (rows,) = conn.execute("SELECT count(*) FROM ingest_commitment").fetchone()  # type: ignore[misc]
    assert rows == 0


def test_batches_the_gateway_dropped_do_not_hold_the_commitment_back(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        floor(conn, "gw-1", 0)
        store(conn, "gw-1", 0, 5, 6)
        # The gateway's full outbox dropped 1-4: its status says it holds nothing below 5.
        assert floor(conn, "gw-1", 5) == Commitment("gw-1", LIFE, 6, 6)
        assert floor(conn, "gw-1", 3) == Commitment("gw-1", LIFE, 6, 6)  # a stale status: no harm


def test_a_new_life_starts_over_and_counts_only_what_came_since(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        floor(conn, "gw-1", 0)
        store(conn, "gw-1", 0, 1, 2, 3)
        # The outbox was wiped: seq starts again at 0 under a new life. Its batches 0-3 are
        # not the old ones, so the old ones must not confirm them.
        assert floor(conn, "gw-1", 0, life=8) == Commitment("gw-1", 8, -1, -1)
        assert store(conn, "gw-1", 0, 1, shift=500) == [Commitment("gw-1", 8, 1, 1)]


def test_status_reports_give_floors_only_with_a_life(database_url: str) -> None:
    new = GatewayStatus("gw-1", Presence.ONLINE, life=LIFE, oldest_seq=4).encode()
    old = GatewayStatus("gw-2", Presence.ONLINE, next_seq=9).encode()
    assert commitments.floors([("gw-1", new), ("gw-2", old), ("gw-3", b"{")]) == [
        Floor("gw-1", LIFE, 4)
    ]
    assert commitments.floors([("gw-9", new)]) == []  # a status naming another gateway
