"""Ingest accounting from the database: totals, per-gateway gaps, duplicates, lag."""

from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from ingest import writer
from ingest.stats import gateway_stats
from tests.builders import T0, batch
from tests.cli.test_main import vigil
from vigil.db.migrate import migrate

pytestmark = pytest.mark.services
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def fill(url: str) -> None:
    with psycopg.connect(url) as conn:
        for seq in (0, 1, 4, 7):
            writer.store(conn, [batch("gw-a", seq, [("p0001", "spo2", T0 + seq * 1000, 95.0)])])
        writer.store(conn, [batch("gw-a", 4, [("p0001", "spo2", T0 + 4000, 95.0)])])  # again
        writer.store(conn, [batch("gw-b", 3, [("p0002", "heart_rate", T0, 70.0)])])
        writer.dead_letter(conn, "vigil/v1/gw/gw-a/readings", "gw-a", b"{", "payload: not JSON")
        writer.dead_letter(conn, "vigil/v1/gw/gw-c/readings", "gw-c", b"x", "payload: not JSON")
        conn.commit()


def test_gaps_duplicates_dead_letters_and_lag_per_gateway(database_url: str) -> None:
    fill(database_url)
    now = EPOCH + timedelta(milliseconds=T0 + 67_000)
    with psycopg.connect(database_url) as conn:
        found = {g.gateway: g for g in gateway_stats(conn, now)}
    a, b, c = found["gw-a"], found["gw-b"], found["gw-c"]
    assert (a.batches, a.highest_seq, a.readings_stored, a.duplicates) == (4, 7, 4, 1)
    assert a.gaps == [(2, 3), (5, 6)] and a.missing_batches == 4
    assert a.dead_letters == 1 and a.lag_s == 60.0
    assert b.gaps == [(0, 2)] and b.lag_s == 67.0  # seq starts at 0: the first three are missing
    assert (c.batches, c.dead_letters, c.highest_seq) == (0, 1, None)


def test_vigil_ingest_stats_prints_a_table_and_json(database_url: str) -> None:
    fill(database_url)
    env = {"VIGIL_DATABASE_URL": database_url}
    table = vigil("ingest", "stats", env=env)
    as_json = vigil("ingest", "stats", "--json", env=env)
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].split() == [
        "gateway",
        "batches",
        "last",
        "seq",
        "stored",
        "dupl.",
        "dead",
        "missing",
        "lag",
    ]
    assert lines[1].split()[:7] == ["gw-a", "4", "7", "4", "1", "1", "4"]
    assert "    gap: seq 2-3" in lines and "    gap: seq 5-6" in lines
    assert as_json.returncode == 0
    assert '"gaps": [[2, 3], [5, 6]]' in as_json.stdout


def test_vigil_ingest_stats_on_an_empty_database(database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        migrate(conn)
    result = vigil("ingest", "stats", env={"VIGIL_DATABASE_URL": database_url})
    assert result.returncode == 0 and result.stdout.strip() == "nothing received yet"
