"""The MQTT wire contract: topic names, and a typed codec for every message on them.

Each message is a frozen dataclass with ``encode()`` and a ``decode(payload)`` that raises
one :class:`WireError` naming the field for any payload that is not that message.
"""

from vigil.wire.batch import SCHEMA_VERSION, Batch
from vigil.wire.errors import WireError
from vigil.wire.quality import Quality
from vigil.wire.topics import Topics

__all__ = ["SCHEMA_VERSION", "Batch", "Quality", "Topics", "WireError"]
