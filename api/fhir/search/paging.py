"""Keyset paging: a page starts after the last row of the one before, on a total order.

``_offset`` paging on a table that grows while a client walks it repeats and skips rows
(each new reading shifts every later offset by one), and on an order with ties it can do
both with no new data at all. So a search orders on its resource's total order (time, then
a unique tie-breaker) and the ``next`` link carries a cursor: the key of the last row shown
and the walk's *snapshot*, a time every page is bounded by (``received < snapshot``). A
walk therefore returns exactly the rows received before its snapshot, each once, whatever
arrives while it goes on, in either sort order.

The snapshot is taken on the first page as the start of the oldest transaction still open
that may still write (:data:`OLDEST_OPEN_TRANSACTION`), not simply ``now()``: a row carries its
transaction's start time as ``received``, so a transaction that began before the first page
and commits after it must not put rows behind the walk. Seeing other sessions' transaction
starts needs the ``pg_read_all_stats`` role (or the same role as the writers); without it
the snapshot is ``now()``, and a row committed in that instant can be missed or shown once
extra by a walk.

The cursor is opaque to clients (base64url JSON); a cursor a client changed only moves the
walk inside the same search, whose compartment is checked on every page.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

from api.fhir.search.values import SearchError

OLDEST_OPEN_TRANSACTION = (
    "(SELECT min(xact_start) FROM pg_stat_activity WHERE datname = current_database()"
    "  AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
    "  AND (backend_xid IS NOT NULL OR xact_start > clock_timestamp() - interval '60 seconds'))"
)
"""The start of the oldest other transaction that may still commit rows stamped earlier:
one that has written, or any begun in the last minute (a reader idle for longer holds no
one back). NULL when there is none; what exact walks and the subscriptions' finder are
bounded by."""
_SNAPSHOT = f"SELECT least(now(), coalesce({OLDEST_OPEN_TRANSACTION}, now()))"


@dataclass(frozen=True, slots=True)
class Cursor:
    snapshot: datetime
    after: tuple[Any, ...] | None
    """The key of the last row shown; None before the first row."""

    def encode(self) -> str:
        key = None if self.after is None else [_plain(v) for v in self.after]
        text = json.dumps({"s": self.snapshot.isoformat(), "k": key}, separators=(",", ":"))
        return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _plain(value: Any) -> Any:
    return {"t": value.isoformat()} if isinstance(value, datetime) else value


def _typed(value: Any) -> Any:
    """A key column as the server wrote it: a time, a whole number a bigint holds, or a
    short printable string; anything else is a cursor someone made."""
    if isinstance(value, dict) and set(value) == {"t"} and isinstance(value["t"], str):
        moment = datetime.fromisoformat(value["t"])
        if moment.tzinfo is None:
            raise ValueError(value)
        return moment
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) < 2**62:
        return value
    if isinstance(value, str) and len(value) <= 64 and value.isprintable():
        return value
    raise ValueError(value)


def decode(token: str, *types: type) -> Cursor:
    """The cursor of a ``next`` link; ``types``: those of the search's key columns."""
    try:
        padded = token + "=" * (-len(token) % 4)
        doc = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
        snapshot = datetime.fromisoformat(doc["s"])
        key = doc["k"]
        after = None if key is None else tuple(_typed(v) for v in key)
        if snapshot.tzinfo is None or (
            after is not None
            and (
                len(after) != len(types)
                or not all(isinstance(v, t) for v, t in zip(after, types, strict=True))
            )
        ):
            raise ValueError(token)
    except (ValueError, KeyError, TypeError, UnicodeError, binascii.Error):
        raise SearchError(
            "_cursor: not a cursor this server gave (follow the next link as given)"
        ) from None
    return Cursor(snapshot, after)


def start(conn: psycopg.Connection) -> Cursor:
    """The cursor of a walk's first page."""
    row = conn.execute(_SNAPSHOT).fetchone()
    assert row is not None
    return Cursor(row[0], None)


def sees_other_sessions(conn: psycopg.Connection) -> bool:
    """Whether this role can read other sessions' transaction starts, which exact walks
    (and the subscriptions' finder) are bounded by."""
    row = conn.execute(
        "SELECT rolsuper OR pg_has_role(current_user, 'pg_read_all_stats', 'member')"
        " FROM pg_roles WHERE rolname = current_user"
    ).fetchone()
    return bool(row and row[0])
