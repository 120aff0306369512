"""What the pairing page says about devices, in the words a patient reads.

The registry says which devices are paired; the running service's sessions say how each is
doing. A device paired a moment ago has no session until the service's next discovery pass,
and one just unpaired keeps its session until then: the registry decides what is listed,
the session only how it is doing, and only while it is still the session of that pairing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gateway.pairing import Nearby, Pairing
from vigil.wire.status import DeviceReport

KIND_LABELS = {
    "heart-rate-strap": "Heart-rate chest strap",
    "pulse-oximeter": "Finger pulse oximeter",
}
STATES = {
    "searching": ("Looking for it", "Make sure it is on and close to the gateway."),
    "connecting": ("Connecting", ""),
    "connected": ("Connected", ""),
    "disconnected": (
        "Not connected, trying again",
        "Make sure it is on, worn, and close to the gateway.",
    ),
}


def kind_label(kind: str) -> str:
    return KIND_LABELS.get(kind, "Other device")


def signal_label(rssi: int) -> str:
    """Bluetooth signal strength as a patient would put it (RSSI in dBm)."""
    if rssi >= -60:
        return "strong"
    if rssi >= -75:
        return "good"
    return "weak"


def paired(pairing: Pairing, report: DeviceReport | None, now_ms: int) -> dict[str, Any]:
    live = report if report is not None and report.patient == pairing.patient else None
    last = None if live is None else live.last_reading_ms
    state = "searching" if live is None else live.state
    label, hint = STATES.get(state, (state, ""))
    return {
        "address": pairing.address,
        "name": pairing.name,
        "kind": pairing.kind,
        "kind_label": kind_label(pairing.kind),
        "patient": pairing.patient,
        "state": state,
        "state_label": label,
        "hint": hint,
        "battery": None if live is None else live.battery,
        "last_reading_s": None if last is None else max(0, round((now_ms - last) / 1000)),
    }


def nearby(found: Nearby, pairings: Mapping[str, str]) -> dict[str, Any]:
    return {
        "address": found.address,
        "name": found.name,
        "kind": found.kind,
        "kind_label": kind_label(found.kind),
        "signal": signal_label(found.rssi),
        "rssi": found.rssi,
        "paired_to": pairings.get(found.address),
    }


def suggested_patient(pairings: list[Pairing]) -> str:
    """The patient a new device most likely belongs to: the one every paired device already
    belongs to (a home gateway serves one patient), else nobody."""
    patients = {p.patient for p in pairings}
    return patients.pop() if len(patients) == 1 else ""
