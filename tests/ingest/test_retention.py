"""Dead letters and batch accounting go with the retention period, and the gaps counted
afterwards start where the pruning ended, not at seq 0."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from ingest import retention, writer
from ingest.stats import gateway_stats
from tests.builders import T0, batch

pytestmark = pytest.mark.services
NOW = datetime(2026, 3, 1, tzinfo=UTC)


def fill(conn: psycopg.Connection) -> None:
    """gw-a's seqs 0-5 (4 missing): 0-2 received 40 days ago, 3 and 5 today; two dead
    letters, one of them old."""
    for seq in (0, 1, 2, 3, 5):
        writer.store(conn, [batch("gw-a", seq, [("p0001", "spo2", T0 + seq * 1000, 95.0)])])
    for topic_gateway in ("gw-a", "gw-b"):
        writer.dead_letter(conn, f"vigil/v1/gw/{topic_gateway}/readings", topic_gateway, b"{", "x")
    old = NOW - timedelta(days=40)
    conn.execute("UPDATE ingest_batch SET received = %s WHERE seq <= 2", (old,))
    conn.execute("UPDATE ingest_batch SET received = %s WHERE seq > 2", (NOW,))
    conn.execute("UPDATE dead_letter SET received = %s WHERE gateway = 'gw-a'", (old,))
    conn.execute("UPDATE dead_letter SET received = %s WHERE gateway = 'gw-b'", (NOW,))


def test_what_is_past_retention_goes_and_gaps_count_from_the_last_seq_pruned(
    database_url: str,
) -> None:
    with psycopg.connect(database_url) as conn:
        fill(conn)
        pruned = retention.prune(conn, 30, NOW)
        again = retention.prune(conn, 30, NOW)
        seqs = [s for (s,) in conn.execute("SELECT seq FROM ingest_batch ORDER BY seq")]
        letters = [g for (g,) in conn.execute("SELECT gateway FROM dead_letter")]
        (a,) = (g for g in gateway_stats(conn) if g.gateway == "gw-a")
    assert pruned == retention.Pruned(dead_letters=1, batches=3)
    assert again == retention.Pruned(0, 0)
    assert seqs == [3, 5] and letters == ["gw-b"]
    assert a.gaps == [(4, 4)], "seqs 0-2 were pruned, not lost"


def test_no_retention_keeps_everything(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        fill(conn)
        assert retention.prune(conn, 0, NOW) == retention.Pruned(0, 0)
        assert conn.execute("SELECT count(*) FROM ingest_batch").fetchone() == (5,)
