"""The readings batch: what a gateway publishes on ``vigil/v1/gw/{gateway}/readings``.

A batch is a JSON object with one array per field (columnar), so the decoder converts each
column to a numpy array in one call instead of building an object per reading::

    {"v": 1, "gateway": "gw-1", "seq": 42, "sent": 1732540000123,
     "device": ["C0:00:00:00:00:01", ...], "patient": ["p001", ...],
     "metric": ["heart_rate", ...], "time": [1732540000000, ...],
     "value": [72.0, ...], "flags": [0, ...]}

``seq`` increases by one per batch per gateway and survives gateway restarts, so a gap is
data loss and a repeat is a redelivery. Times are UTC milliseconds since the epoch.
Decoding is strict: every problem raises :class:`BatchError` naming the field.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from vigil.metrics import BY_ID, BY_NAME
from vigil.wire.topics import GATEWAY_ID

SCHEMA_VERSION = 1
COLUMNS = ("device", "patient", "metric", "time", "value", "flags")
PATIENT_ID = re.compile(r"^[A-Za-z0-9\-.]{1,36}$")
"""Patient ids become FHIR ids (and parts of Observation ids, at most 64 characters)."""
DEVICE_ID = re.compile(r"^[\x21-\x7e]{1,64}$")
"""A Bluetooth address, or the UUID macOS reports instead; never a control character."""
MAX_READINGS = 100_000
"""A batch larger than this is refused: it is a bug or an attack, not a gateway."""


class BatchError(ValueError):
    """A payload that is not a valid readings batch; the message names the field."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


@dataclass(frozen=True, slots=True)
class Batch:
    gateway: str
    seq: int
    sent: int
    device: tuple[str, ...]
    patient: tuple[str, ...]
    metric: npt.NDArray[np.int16]
    """Catalogue ids (see :mod:`vigil.metrics`)."""
    time: npt.NDArray[np.int64]
    value: npt.NDArray[np.float64]
    flags: npt.NDArray[np.int32]

    def __len__(self) -> int:
        return len(self.time)


def encode_batch(batch: Batch) -> bytes:
    doc = {
        "v": SCHEMA_VERSION,
        "gateway": batch.gateway,
        "seq": batch.seq,
        "sent": batch.sent,
        "device": list(batch.device),
        "patient": list(batch.patient),
        "metric": [BY_ID[int(m)].name for m in batch.metric],
        "time": batch.time.tolist(),
        "value": batch.value.tolist(),
        "flags": batch.flags.tolist(),
    }
    return json.dumps(doc, separators=(",", ":")).encode()


def decode_batch(payload: bytes | bytearray) -> Batch:
    try:
        doc = json.loads(payload.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise BatchError("payload", f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise BatchError("payload", f"not JSON ({exc.msg} at position {exc.pos})") from None
    except RecursionError:
        raise BatchError("payload", "JSON nested too deeply") from None
    if not isinstance(doc, dict):
        raise BatchError("payload", f"expected a JSON object, got {type(doc).__name__}")

    version = doc.get("v")
    if version != SCHEMA_VERSION:
        raise BatchError("v", f"unsupported schema version {version!r} (this decoder reads 1)")
    gateway = doc.get("gateway")
    if not isinstance(gateway, str) or not GATEWAY_ID.match(gateway):
        raise BatchError("gateway", f"expected a gateway id, got {gateway!r}")
    seq = _integer(doc, "seq", minimum=0)
    sent = _integer(doc, "sent", minimum=0)

    columns = {}
    for name in COLUMNS:
        column = doc.get(name)
        if not isinstance(column, list):
            raise BatchError(name, "missing" if column is None else "expected an array")
        columns[name] = column
    lengths = {len(c) for c in columns.values()}
    if len(lengths) != 1:
        detail = ", ".join(f"{n}={len(c)}" for n, c in columns.items())
        raise BatchError("columns", f"arrays differ in length ({detail})")
    if lengths.pop() > MAX_READINGS:
        raise BatchError("columns", f"more than {MAX_READINGS} readings in one batch")

    return Batch(
        gateway=gateway,
        seq=seq,
        sent=sent,
        device=_devices(columns["device"]),
        patient=_patients(columns["patient"]),
        metric=_metric_ids(columns["metric"]),
        time=_integers(columns["time"], "time", np.int64, 0, 2**53),
        value=_numbers(columns["value"]),
        flags=_integers(columns["flags"], "flags", np.int32, 0, 0xFFFF),
    )


def _integer(doc: dict[str, Any], name: str, minimum: int) -> int:
    value = doc.get(name)
    if type(value) is not int or value < minimum:
        raise BatchError(name, f"expected an integer >= {minimum}, got {value!r}")
    return value


def _devices(column: list[Any]) -> tuple[str, ...]:
    for i, item in enumerate(column):
        if not isinstance(item, str) or not DEVICE_ID.match(item):
            raise BatchError(
                "device", f"item {i} is {item!r}, expected 1-64 printable characters, no spaces"
            )
    return tuple(column)


def _patients(column: list[Any]) -> tuple[str, ...]:
    for i, item in enumerate(column):
        if not isinstance(item, str) or not PATIENT_ID.match(item):
            raise BatchError(
                "patient", f"item {i} is {item!r}, expected 1-36 letters, digits, '-' or '.'"
            )
    return tuple(column)


def _metric_ids(column: list[Any]) -> npt.NDArray[np.int16]:
    ids = np.empty(len(column), dtype=np.int16)
    for i, name in enumerate(column):
        metric = BY_NAME.get(name) if isinstance(name, str) else None
        if metric is None:
            raise BatchError("metric", f"item {i} is {name!r}, not a metric in the catalogue")
        ids[i] = metric.id
    return ids


def _integers(
    column: list[Any], name: str, dtype: type[np.signedinteger[Any]], low: int, high: int
) -> Any:
    array = np.array(column)
    if len(column) and array.dtype.kind not in "iu":
        bad = next(i for i, x in enumerate(column) if type(x) is not int)
        raise BatchError(name, f"item {bad} is {column[bad]!r}, expected an integer")
    out_of_range = (array < low) | (array > high) if len(column) else np.zeros(0, dtype=bool)
    if out_of_range.any():
        bad = int(np.argmax(out_of_range))
        raise BatchError(name, f"item {bad} is {column[bad]!r}, outside {low}..{high}")
    return array.astype(dtype)


def _numbers(column: list[Any]) -> npt.NDArray[np.float64]:
    array = np.array(column)
    if len(column) and array.dtype.kind not in "iuf":
        bad = next(i for i, x in enumerate(column) if type(x) not in (int, float))
        raise BatchError("value", f"item {bad} is {column[bad]!r}, expected a number")
    values = array.astype(np.float64)
    # json.loads accepts NaN and Infinity; they are not measurements.
    finite = np.isfinite(values)
    if not finite.all():
        bad = int(np.argmin(finite))
        raise BatchError("value", f"item {bad} is {column[bad]!r}, expected a finite number")
    return values
