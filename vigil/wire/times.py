"""Times on the wire: UTC with milliseconds and a Z (2026-11-25T16:00:15.000Z); inside,
epoch milliseconds or aware datetimes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from vigil.wire import document
from vigil.wire.errors import WireError


def moment(ms: int) -> datetime:
    """The aware UTC datetime of epoch milliseconds."""
    return datetime.fromtimestamp(ms / 1000, UTC)


def iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def iso_of_ms(ms: int) -> str:
    return iso(moment(ms))


def parse_iso(doc: dict[str, Any], name: str) -> datetime:
    """The time of field ``name``: ISO 8601 with its UTC offset."""
    text = document.text(doc, name, what="an ISO 8601 time", longest=64)
    try:
        at = datetime.fromisoformat(text.replace("Z", "+00:00"))
        if at.tzinfo is None:
            raise WireError(name, f"expected a time with its UTC offset, got {text!r}")
        return at.astimezone(UTC)
    except (ValueError, OverflowError) as exc:  # a day that is not, a year past 9999 in UTC
        if isinstance(exc, WireError):
            raise
        raise WireError(name, f"expected an ISO 8601 time, got {text!r}") from None
