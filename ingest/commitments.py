"""The end-to-end acknowledgement's platform side: how far each gateway's batches are
committed (:mod:`vigil.wire.commitment`), kept in ``ingest_commitment`` (migration 016).

Advancing happens in the transaction that stores the batches, so ``through`` never runs
ahead of what is committed, and rows are locked in gateway order, so two ingests sharing the
load wait for each other instead of deadlocking. ``through`` climbs over the batches
registered in ``ingest_batch`` while their ``seq`` is contiguous; a gateway's status moves it
up to just below its ``oldest_seq``, so batches the gateway dropped from a full outbox (they
will never come) do not hold it back. The climb looks at most :data:`LOOKAHEAD` batches
ahead: a hole the gateway still holds is filled by its resending, and until then each flush
pays for that many rows at most.

Every flush publishes the commitment of every gateway it touched, changed or not: a
gateway that sent a batch again had missed it, and a retained message from another ingest
may be older than the row.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import psycopg

from vigil.wire.commitment import Commitment
from vigil.wire.errors import WireError
from vigil.wire.status import GatewayStatus

LOOKAHEAD = 10_000

_ADVANCE = f"""
WITH touched AS (
    SELECT gateway, through, latest, since FROM ingest_commitment
    WHERE gateway = ANY(%s::text[])
    ORDER BY gateway
    FOR UPDATE
), climbed AS (
    SELECT t.gateway,
           max(r.seq) FILTER (WHERE r.seq - t.through = r.n) AS top,
           max(r.seq) AS newest
    FROM touched t
    CROSS JOIN LATERAL (
        SELECT s.seq, row_number() OVER (ORDER BY s.seq) AS n
        FROM (
            SELECT DISTINCT b.seq FROM ingest_batch b
            WHERE b.gateway = t.gateway AND b.seq > t.through
              AND (t.since IS NULL OR coalesce(b.last_delivered, b.received) >= t.since)
            ORDER BY b.seq
            LIMIT {LOOKAHEAD}
        ) s
    ) r
    GROUP BY t.gateway
)
UPDATE ingest_commitment c
SET through = greatest(c.through, coalesce(climbed.top, c.through)),
    latest = greatest(c.latest, coalesce(climbed.newest, c.latest))
FROM touched LEFT JOIN climbed USING (gateway)
WHERE c.gateway = touched.gateway
RETURNING c.gateway, c.life, c.through, c.latest
"""

_FLOOR = """
INSERT INTO ingest_commitment AS c (gateway, life, through, latest)
SELECT * FROM unnest(%s::text[], %s::bigint[], %s::bigint[], %s::bigint[])
ORDER BY 1
ON CONFLICT (gateway) DO UPDATE SET
    through = CASE WHEN c.life = excluded.life
                   THEN greatest(c.through, excluded.through) ELSE excluded.through END,
    latest = CASE WHEN c.life = excluded.life
                  THEN greatest(c.latest, excluded.latest) ELSE excluded.latest END,
    since = CASE WHEN c.life = excluded.life THEN c.since ELSE now() END,
    life = excluded.life
"""


@dataclass(frozen=True, slots=True)
class Floor:
    """What a gateway's status says: its life, and that nothing below ``oldest_seq`` is
    still on its disk."""

    gateway: str
    life: int
    oldest_seq: int


def floors(statuses: Iterable[tuple[str, bytes | bytearray]]) -> list[Floor]:
    """The floors in gateways' status reports (gateway, payload); a status without them
    comes from a gateway that releases on the broker's PUBACK, and a malformed one is the
    registry's to report."""
    found: dict[str, Floor] = {}
    for gateway, payload in statuses:
        try:
            status = GatewayStatus.decode(payload)
        except WireError:
            continue
        if status.gateway == gateway and status.life is not None and status.oldest_seq is not None:
            found[gateway] = Floor(gateway, status.life, status.oldest_seq)
    return list(found.values())


def raise_floors(conn: psycopg.Connection, found: list[Floor]) -> list[Commitment]:
    """Record the floors (a new life starts the gateway's row over) and climb from them;
    the caller commits, then publishes what is returned."""
    if not found:
        return []
    below = [f.oldest_seq - 1 for f in found]
    conn.execute(_FLOOR, ([f.gateway for f in found], [f.life for f in found], below, below))
    return advance(conn, [f.gateway for f in found])


def advance(conn: psycopg.Connection, gateways: Iterable[str]) -> list[Commitment]:
    """Climb ``through`` for the gateways whose batches the current transaction stored."""
    names = sorted(set(gateways))
    if not names:
        return []
    rows = conn.execute(_ADVANCE, (names,)).fetchall()
    return [Commitment(g, int(life), int(t), int(latest)) for g, life, t, latest in rows]
