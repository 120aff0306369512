"""What a running gateway counts, reported on its status topic and when it stops."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Counters:
    readings: int = 0
    """Received from the wearables."""
    published: int = 0
    """Readings the broker acknowledged."""
    confirmed: int = 0
    """Readings ingest confirmed committed."""
    batches_published: int = 0
    resent_batches: int = 0
    inbox_messages: int = 0
