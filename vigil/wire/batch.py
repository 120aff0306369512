"""The readings batch: what a gateway publishes on ``vigil/v1/gw/{gateway}/readings``.

A batch is a JSON object with one array per field (columnar), so the decoder converts each
column to a numpy array in one call instead of building an object per reading::

    {"v": 1, "gateway": "gw-1", "seq": 42, "sent": 1732540000123,
     "device": ["C0:00:00:00:00:01", ...], "patient": ["p001", ...],
     "metric": ["heart_rate", ...], "time": [1732540000000, ...],
     "value": [72.0, ...], "flags": [0, ...]}

``seq`` increases by one per batch per gateway and survives gateway restarts, so a gap is
data loss and a repeat is a redelivery. Times are UTC milliseconds since the epoch.
Decoding is strict: every problem raises :class:`~vigil.wire.errors.WireError` naming the
field.

A reading the device sent without a value (NaN, NRes, an infinity) has the reason among its
flags (:attr:`~vigil.wire.quality.Quality.ABSENT`) and :data:`ABSENT_VALUE` as its value on
the wire; decoded, its value is NaN. That is an addition to version 1, not a version 2: a
version 2 would be refused whole by every ingest before it, while an ingest that predates
absent readings refuses just those (their value is below every plausible range, and they
are not flagged invalid) into a dead letter that keeps the payload, and stores the rest.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from itertools import compress
from typing import Any

import numpy as np
import numpy.typing as npt

from vigil.metrics import BY_ID, BY_NAME
from vigil.wire import document
from vigil.wire.errors import WireError
from vigil.wire.quality import Quality
from vigil.wire.topics import GATEWAY_ID

SCHEMA_VERSION = 1
COLUMNS = ("device", "patient", "metric", "time", "value", "flags")
PATIENT_ID = re.compile(r"^[A-Za-z0-9\-.]{1,36}$")
"""Patient ids become FHIR ids (and parts of Observation ids, at most 64 characters)."""
DEVICE_ID = re.compile(r"^[\x21-\x7e]{1,64}$")
"""A Bluetooth address, or the UUID macOS reports instead; never a control character."""
MAX_READINGS = 100_000
"""A batch larger than this is refused: it is a bug or an attack, not a gateway."""
ABSENT_VALUE = -1.0
"""The number an absent reading carries on the wire, since JSON has no NaN: outside every
metric's plausible range, so nothing that ignores the reason bits can take it for a value."""


@dataclass(frozen=True, slots=True, eq=False)
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
    """NaN where the reading is absent (its flags say why)."""
    flags: npt.NDArray[np.int32]

    def __len__(self) -> int:
        return len(self.time)

    def __eq__(self, other: object) -> bool:
        """Field by field, arrays by value and type (the dataclass default would compare
        arrays to a truth value numpy refuses to give)."""
        if not isinstance(other, Batch):
            return NotImplemented
        return all(_same(getattr(self, f.name), getattr(other, f.name)) for f in fields(self))

    __hash__ = None  # type: ignore[assignment]

    @property
    def absent(self) -> npt.NDArray[np.bool_]:
        """Which readings carry no value, only the reason the device gave."""
        return (self.flags & Quality.ABSENT) != 0

    def keep(self, mask: npt.NDArray[np.bool_]) -> Batch:
        """The batch with only the readings ``mask`` selects."""
        kept = mask.tolist()
        return replace(
            self,
            device=tuple(compress(self.device, kept)),
            patient=tuple(compress(self.patient, kept)),
            metric=self.metric[mask],
            time=self.time[mask],
            value=self.value[mask],
            flags=self.flags[mask],
        )

    def encode(self) -> bytes:
        return document.dump(
            {
                "v": SCHEMA_VERSION,
                "gateway": self.gateway,
                "seq": self.seq,
                "sent": self.sent,
                "device": list(self.device),
                "patient": list(self.patient),
                "metric": [BY_ID[int(m)].name for m in self.metric],
                "time": self.time.tolist(),
                "value": np.where(self.absent, ABSENT_VALUE, self.value).tolist(),
                "flags": self.flags.tolist(),
            }
        )

    @classmethod
    def decode(cls, payload: bytes | bytearray) -> Batch:
        # numpy reads true as 1 in a column of numbers; a payload with no true or false in it
        # at all (every real batch) spares the look at each item that catches it.
        bools = b"true" in payload or b"false" in payload
        return _decode(document.parse_object(payload), bools)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, np.ndarray):
        nan = a.dtype.kind == "f"  # an absent reading's NaN is the same as another's
        return (
            isinstance(b, np.ndarray) and a.dtype == b.dtype and np.array_equal(a, b, equal_nan=nan)
        )
    return bool(a == b)


def _decode(doc: dict[str, Any], bools: bool) -> Batch:
    version = doc.get("v")
    if version != SCHEMA_VERSION:
        raise WireError("v", f"unsupported schema version {version!r} (this decoder reads 1)")
    gateway = document.text(doc, "gateway", GATEWAY_ID, "a gateway id")
    seq = document.integer(doc, "seq")
    sent = document.integer(doc, "sent")

    columns = {}
    for name in COLUMNS:
        column = doc.get(name)
        if not isinstance(column, list):
            raise WireError(name, "missing" if column is None else "expected an array")
        columns[name] = column
    lengths = {len(c) for c in columns.values()}
    if len(lengths) != 1:
        detail = ", ".join(f"{n}={len(c)}" for n, c in columns.items())
        raise WireError("columns", f"arrays differ in length ({detail})")
    if lengths.pop() > MAX_READINGS:
        raise WireError("columns", f"more than {MAX_READINGS} readings in one batch")

    device = _devices(columns["device"])
    patient = _patients(columns["patient"])
    metric = _metric_ids(columns["metric"])
    time = _integers(columns["time"], "time", np.int64, 0, 2**53, bools)
    numbers = _numbers(columns["value"], bools)
    flags = _integers(columns["flags"], "flags", np.int32, 0, 0xFFFF, bools)
    return Batch(gateway, seq, sent, device, patient, metric, time, _values(numbers, flags), flags)


def _devices(column: list[Any]) -> tuple[str, ...]:
    for i, item in enumerate(column):
        if not isinstance(item, str) or not DEVICE_ID.fullmatch(item):
            raise WireError(
                "device", f"item {i} is {item!r}, expected 1-64 printable characters, no spaces"
            )
    return tuple(column)


def _patients(column: list[Any]) -> tuple[str, ...]:
    for i, item in enumerate(column):
        if not isinstance(item, str) or not PATIENT_ID.fullmatch(item):
            raise WireError(
                "patient", f"item {i} is {item!r}, expected 1-36 letters, digits, '-' or '.'"
            )
    return tuple(column)


def _metric_ids(column: list[Any]) -> npt.NDArray[np.int16]:
    ids = np.empty(len(column), dtype=np.int16)
    for i, name in enumerate(column):
        metric = BY_NAME.get(name) if isinstance(name, str) else None
        if metric is None:
            raise WireError("metric", f"item {i} is {name!r}, not a metric in the catalogue")
        ids[i] = metric.id
    return ids


def _integers(
    column: list[Any],
    name: str,
    dtype: type[np.signedinteger[Any]],
    low: int,
    high: int,
    bools: bool,
) -> Any:
    array = _flat(column, name, "iu", lambda x: type(x) is int, "an integer", bools)
    out_of_range = (array < low) | (array > high) if len(column) else np.zeros(0, dtype=bool)
    if out_of_range.any():
        bad = int(np.argmax(out_of_range))
        raise WireError(name, f"item {bad} is {column[bad]!r}, outside {low}..{high}")
    return array.astype(dtype)


def _numbers(column: list[Any], bools: bool) -> npt.NDArray[np.float64]:
    array = _flat(column, "value", "iuf", lambda x: type(x) in (int, float), "a number", bools)
    values = array.astype(np.float64)
    # json.loads accepts NaN and Infinity; they are not measurements.
    finite = np.isfinite(values)
    if not finite.all():
        bad = int(np.argmin(finite))
        raise WireError("value", f"item {bad} is {column[bad]!r}, expected a finite number")
    return values


def _values(
    numbers: npt.NDArray[np.float64], flags: npt.NDArray[np.int32]
) -> npt.NDArray[np.float64]:
    """The values, NaN where the flags give a reason for none, whatever number stands there:
    any flags went with any number before absent readings, so none of them is refused now."""
    return np.where((flags & Quality.ABSENT) != 0, np.nan, numbers)


def _flat(
    column: list[Any],
    name: str,
    kinds: str,
    accept: Callable[[Any], bool],
    what: str,
    bools: bool,
) -> npt.NDArray[Any]:
    """The column as one numpy array in a single call (no object per reading), when every
    item is a plain JSON number of the kind; otherwise the first item that is not."""
    try:
        array = np.array(column)
    except (ValueError, OverflowError):  # nested arrays of different lengths
        array = np.array([], dtype=object)
    wrong = array.ndim != 1 or array.dtype.kind not in kinds
    if len(column) and (wrong or (bools and any(type(x) is bool for x in column))):
        bad = next((i for i, x in enumerate(column) if not accept(x)), None)
        if bad is None:  # numbers of the kind, too large for an array of them
            raise WireError(name, "numbers beyond 64 bits")
        raise WireError(name, f"item {bad} is {column[bad]!r}, expected {what}")
    return array
