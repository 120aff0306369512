"""The MQTT wire contract: topic names, reading quality flags and the readings batch codec."""

from vigil.wire.batch import SCHEMA_VERSION, Batch, BatchError, decode_batch, encode_batch
from vigil.wire.quality import Quality
from vigil.wire.topics import Topics

__all__ = [
    "SCHEMA_VERSION",
    "Batch",
    "BatchError",
    "Quality",
    "Topics",
    "decode_batch",
    "encode_batch",
]
