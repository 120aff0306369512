"""What ingest has done, computed from the database so it survives ingest restarts.

``duplicates`` counts every reading delivered more than once or already stored: the
readings of all deliveries of all batches, minus the rows those batches stored.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import psycopg


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
        doc["newest_measurement"] = (
            self.newest_measurement.isoformat() if self.newest_measurement else None
        )
        return doc


def ingest_stats(conn: psycopg.Connection, since: datetime) -> IngestStats:
    """Totals for batches first received at or after ``since``."""
    batches, delivered = conn.execute(
        "SELECT count(*), coalesce(sum(readings * deliveries), 0) FROM ingest_batch"
        " WHERE received >= %s",
        (since,),
    ).fetchone() or (0, 0)
    stored, newest = conn.execute(
        "SELECT count(o.*), max(o.effective) FROM ingest_batch b"
        " JOIN observation o ON o.gateway = b.gateway AND o.seq = b.seq"
        " WHERE b.received >= %s",
        (since,),
    ).fetchone() or (0, None)
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
