"""Topic names, versioned under ``vigil/v1/`` so a v2 contract can run beside v1."""

from __future__ import annotations

import re

PREFIX = "vigil/v1"
GATEWAY_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
"""Gateway ids become topic levels and client ids: no '/', '+', '#' or spaces."""


class Topics:
    """The topics of one gateway (or, with ``gateway='+'``, the filter over all of them)."""

    def __init__(self, gateway: str) -> None:
        if gateway != "+" and not GATEWAY_ID.fullmatch(gateway):
            raise ValueError(
                f"gateway id {gateway!r} is not valid: use 1-64 letters, digits, '.', '_' or '-'"
            )
        self.gateway = gateway

    @property
    def readings(self) -> str:
        return f"{PREFIX}/gw/{self.gateway}/readings"

    @property
    def status(self) -> str:
        return f"{PREFIX}/gw/{self.gateway}/status"

    @property
    def devices(self) -> str:
        return f"{PREFIX}/gw/{self.gateway}/devices"

    @property
    def inbox(self) -> str:
        return f"{PREFIX}/gw/{self.gateway}/inbox"

    @property
    def committed(self) -> str:
        """Retained, written by ingest: how far the platform has committed the gateway's
        batches (:class:`vigil.wire.commitment.Commitment`)."""
        return f"{PREFIX}/gw/{self.gateway}/committed"


ALL = Topics("+")


EVENTS = f"{PREFIX}/events/+"
"""Filter over every patient's analytics events (what the alerts service subscribes to)."""


def patient_events(patient: str) -> str:
    """Analytics events of one patient: conditions started, persisted and cleared."""
    return f"{PREFIX}/events/{patient}"


def service_status(client_id: str) -> str:
    """Retained online/offline status of a platform service instance (e.g. an ingest)."""
    return f"{PREFIX}/svc/{client_id}/status"


def gateway_of(topic: str) -> str | None:
    """The gateway id in a ``vigil/v1/gw/{gateway}/...`` topic, or None for other topics."""
    parts = topic.split("/")
    if len(parts) == 5 and f"{parts[0]}/{parts[1]}" == PREFIX and parts[2] == "gw":
        return parts[3]
    return None
