"""What ingest has done, computed from the database so it survives ingest restarts and
covers every ingest process at once.

Everything comes from ``ingest_batch`` (one row per batch ever received, with its readings,
deliveries, rows stored and newest measurement time) and ``dead_letter``; the observation
table is never scanned. ``duplicates`` counts every reading delivered more than once or
already stored: the readings of all deliveries, minus the rows stored. A gap is a run of
``seq`` values never received from a gateway (seq starts at 0, or after the last one
pruned with retention): batches the gateway dropped when its outbox was full, or that were
refused whole (dead-lettered) and so never recorded. A conflict is a batch received under a
``seq`` another batch of its gateway already holds, with other contents: a gateway whose
outbox was lost and started again from 0, or someone publishing as the gateway.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import psycopg

_TOTALS = """
SELECT count(*), coalesce(sum(readings * deliveries), 0), coalesce(sum(stored), 0), max(newest)
FROM ingest_batch WHERE received >= %s
"""
_PER_GATEWAY = """
SELECT gateway, count(*), max(seq), coalesce(sum(readings * deliveries), 0),
       coalesce(sum(stored), 0), max(newest), max(received), count(*) - count(DISTINCT seq)
FROM ingest_batch GROUP BY gateway ORDER BY gateway
"""
_GAPS = """
SELECT gateway, coalesce(previous + 1, p.through_seq + 1, 0) AS first, seq - 1 AS last
FROM (
    SELECT gateway, seq, lag(seq) OVER (PARTITION BY gateway ORDER BY seq) AS previous
    FROM (SELECT DISTINCT gateway, seq FROM ingest_batch) batches
) s
LEFT JOIN ingest_pruned p USING (gateway)
WHERE seq > coalesce(previous + 1, p.through_seq + 1, 0)
ORDER BY gateway, seq
"""
_DEAD = "SELECT gateway, count(*) FROM dead_letter GROUP BY gateway"


@dataclass(frozen=True, slots=True)
class IngestStats:
    batches: int
    readings_delivered: int
    readings_stored: int
    duplicates: int
    dead_letters: int
    newest_measurement: datetime | None

    def as_dict(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["newest_measurement"] = _iso(self.newest_measurement)
        return doc


@dataclass(frozen=True, slots=True)
class GatewayStats:
    gateway: str
    batches: int
    highest_seq: int | None
    readings_delivered: int
    readings_stored: int
    duplicates: int
    dead_letters: int
    newest_measurement: datetime | None
    last_received: datetime | None
    lag_s: float | None
    """Now minus the newest measurement stored: how far behind the data is."""
    gaps: list[tuple[int, int]] = field(default_factory=list)
    """Missing seq ranges, first and last inclusive."""
    conflicts: int = 0
    """Batches received under a seq another batch of the gateway holds (all stored)."""

    @property
    def missing_batches(self) -> int:
        return sum(last - first + 1 for first, last in self.gaps)

    def as_dict(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["newest_measurement"] = _iso(self.newest_measurement)
        doc["last_received"] = _iso(self.last_received)
        doc["gaps"] = [list(g) for g in self.gaps]
        doc["missing_batches"] = self.missing_batches
        return doc


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def ingest_stats(conn: psycopg.Connection, since: datetime) -> IngestStats:
    """Totals for batches first received at or after ``since``."""
    batches, delivered, stored, newest = conn.execute(_TOTALS, (since,)).fetchone() or (
        0,
        0,
        0,
        None,
    )
    (dead,) = conn.execute(
        "SELECT count(*) FROM dead_letter WHERE received >= %s", (since,)
    ).fetchone() or (0,)
    return IngestStats(
        batches=int(batches),
        readings_delivered=int(delivered),
        readings_stored=int(stored),
        duplicates=int(delivered) - int(stored),
        dead_letters=int(dead),
        newest_measurement=newest,
    )


def gateway_stats(conn: psycopg.Connection, now: datetime | None = None) -> list[GatewayStats]:
    """Per gateway, since the beginning: highest seq, gaps, duplicates, dead letters, lag.
    Dead letters that name no gateway (unreadable payloads) are listed under ``?``."""
    now = now or datetime.now(UTC)
    gaps: dict[str, list[tuple[int, int]]] = {}
    for gateway, first, last in conn.execute(_GAPS):
        gaps.setdefault(gateway, []).append((int(first), int(last)))
    dead = {gateway or "?": int(n) for gateway, n in conn.execute(_DEAD)}
    found = []
    for gateway, batches, highest, delivered, stored, newest, received, conflicts in conn.execute(
        _PER_GATEWAY
    ):
        found.append(
            GatewayStats(
                gateway=gateway,
                batches=int(batches),
                highest_seq=int(highest),
                readings_delivered=int(delivered),
                readings_stored=int(stored),
                duplicates=int(delivered) - int(stored),
                dead_letters=dead.pop(gateway, 0),
                newest_measurement=newest,
                last_received=received,
                lag_s=round((now - newest).total_seconds(), 1) if newest else None,
                gaps=gaps.get(gateway, []),
                conflicts=int(conflicts),
            )
        )
    for gateway, n in sorted(dead.items()):  # gateways whose every batch was dead-lettered
        found.append(GatewayStats(gateway, 0, None, 0, 0, 0, n, None, None, None))
    return found
