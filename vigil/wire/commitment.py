"""What the platform tells a gateway it has committed: the end-to-end acknowledgement.

A broker's PUBACK only says the broker has the batch, and Mosquitto keeps what it queued on
disk only at its next autosave: a broker killed in between loses batches it acknowledged.
So a gateway keeps every batch until ingest has committed it. Ingest publishes, retained on
``vigil/v1/gw/{gateway}/committed``, ``through``: every ``seq`` up to it is committed (or was
dropped by the gateway itself, which its status says with ``oldest_seq``); the gateway
releases those. ``latest`` is the highest ``seq`` committed: above ``through`` and below
``latest`` lies a hole, batches that went missing on the way, which the gateway sends again
without waiting for its longer timeout. ``life`` is the gateway's outbox's own
(:class:`~vigil.wire.status.GatewayStatus`): a commitment of another life releases nothing.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from vigil.wire import document
from vigil.wire.topics import GATEWAY_ID


@dataclass(frozen=True, slots=True)
class Commitment:
    gateway: str
    life: int
    through: int
    """-1 when nothing is committed yet."""
    latest: int

    def encode(self) -> bytes:
        return document.dump(asdict(self))

    @classmethod
    def decode(cls, payload: bytes | bytearray) -> Commitment:
        doc = document.parse_object(payload)
        return cls(
            gateway=document.text(doc, "gateway", GATEWAY_ID, "a gateway id"),
            life=document.integer(doc, "life"),
            through=document.integer(doc, "through", minimum=-1),
            latest=document.integer(doc, "latest", minimum=-1),
        )
