"""Every change of an alert is a row of ``alert_change`` with its actor: a person's name,
or :data:`SYSTEM` for what the service did by itself."""

from __future__ import annotations

import psycopg

SYSTEM = "vigil-alerts"


def record(
    conn: psycopg.Connection, alert_id: int, change: str, actor: str, note: str = ""
) -> None:
    conn.execute(
        "INSERT INTO alert_change (alert, change, actor, note) VALUES (%s, %s, %s, %s)",
        (alert_id, str(change), actor, note),
    )
