"""Every message of the wire contract: decode(encode(x)) == x, and nothing a broker can
deliver (bytes, any JSON, a valid message with one field replaced by any JSON value)
raises anything but WireError."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.vigil.wire.test_batch import batches
from vigil.metrics import CATALOGUE
from vigil.wire.batch import Batch
from vigil.wire.errors import WireError
from vigil.wire.events import AnalyticsEvent, EventKind
from vigil.wire.messages import PatientMessage
from vigil.wire.status import (
    DeviceReport,
    GatewayDevices,
    GatewayStatus,
    Presence,
    ServiceStatus,
)

patients = st.from_regex(r"[A-Za-z0-9.-]{1,36}", fullmatch=True)
gateways = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,20}", fullmatch=True)
printable = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=40)
labels = st.text(max_size=60)  # any text: device information strings are UTF-8
names = st.text(st.characters(blacklist_categories=("Cc",)), max_size=60)
"""What a device says it is: any text but control characters, which the registry refuses."""
counts = st.integers(0, 2**40)
finite = st.floats(allow_nan=False, allow_infinity=False)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | finite | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4)
    ),
    max_leaves=12,
)
moments = st.integers(0, 2**42).map(
    lambda ms: datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms)
)

events = st.builds(
    AnalyticsEvent,
    id=printable,
    patient=patients,
    metric=st.sampled_from([m.name for m in CATALOGUE]),
    rule=st.from_regex(r"[a-z][a-z0-9_]{0,20}", fullmatch=True),
    kind=st.sampled_from(EventKind),
    time=moments,
    value=st.none() | finite,
    evidence=st.dictionaries(st.text(max_size=8), json_values, max_size=4),
    gateway=st.none() | gateways,
    description=labels,
)
messages = st.builds(
    PatientMessage,
    patient=patients,
    alerts=st.lists(st.integers(0, 2**40), max_size=5).map(tuple),
    text=st.text(min_size=1, max_size=200).filter(str.strip),
    idempotency_key=st.from_regex(r"[\x21-\x7e]{1,60}", fullmatch=True),
)
service_statuses = st.builds(ServiceStatus, st.sampled_from(Presence), st.none() | counts)
gateway_statuses = st.builds(
    GatewayStatus,
    gateway=gateways,
    state=st.sampled_from(Presence),
    version=st.none() | labels,
    outbox_depth=st.none() | counts,
    oldest_age_s=st.none() | finite,
    readings=st.none() | counts,
    published=st.none() | counts,
    next_seq=st.none() | counts,
    dropped=st.none() | counts,
    parse_errors=st.none() | counts,
    cpu_s=st.none() | finite,
    peak_rss_mb=st.none() | finite,
)
reports = st.builds(
    DeviceReport,
    address=st.from_regex(r"[\x21-\x7e]{1,64}", fullmatch=True),
    patient=patients,
    state=names,
    kind=names,
    battery=st.none() | st.integers(0, 100),
    connects=counts,
    drops=counts,
    last_drop_ms=st.none() | counts,
    parse_errors=counts,
    no_values=counts,
    last_error=st.none() | labels,
    manufacturer=st.none() | names,
    model=st.none() | names,
    serial=st.none() | names,
    firmware=st.none() | names,
    location=st.none() | names,
)
devices = st.lists(reports, max_size=4).map(lambda r: GatewayDevices(tuple(r)))

KINDS: dict[str, tuple[Any, Callable[[bytes], object]]] = {
    "batch": (batches(), Batch.decode),
    "event": (events, AnalyticsEvent.decode),
    "patient message": (messages, PatientMessage.decode),
    "service status": (service_statuses, ServiceStatus.decode),
    "gateway status": (gateway_statuses, GatewayStatus.decode),
    "gateway devices": (devices, GatewayDevices.decode),
}


@pytest.fixture(params=sorted(KINDS))
def kind(request: pytest.FixtureRequest) -> str:
    return request.param  # type: ignore[no-any-return]


@pytest.mark.parametrize("name", sorted(KINDS))
def test_decode_of_encode_is_the_message(name: str) -> None:
    strategy, decode = KINDS[name]

    @given(strategy)
    def round_trip(message: Any) -> None:
        assert decode(message.encode()) == message

    round_trip()


@pytest.mark.parametrize("name", sorted(KINDS))
def test_bytes_and_any_json_raise_only_wire_error(name: str) -> None:
    _, decode = KINDS[name]

    @given(st.binary(max_size=200) | json_values.map(lambda v: json.dumps(v).encode()))
    def hostile(payload: bytes) -> None:
        with contextlib.suppress(WireError):
            decode(payload)

    hostile()


@pytest.mark.parametrize("name", sorted(KINDS))
def test_a_valid_message_with_any_field_replaced_raises_only_wire_error(name: str) -> None:
    strategy, decode = KINDS[name]

    @given(strategy, st.data())
    def replaced(message: Any, data: st.DataObject) -> None:
        document = json.loads(message.encode())
        target = document[0] if isinstance(document, list) and document else document
        if not isinstance(target, dict) or not target:
            return
        field = data.draw(st.sampled_from(sorted(target)))
        target[field] = data.draw(json_values)
        with contextlib.suppress(WireError):
            decode(json.dumps(document).encode())

    replaced()


HOSTILE = [
    b'{"v": 1, "seq": ' + b"9" * 5000 + b"}",  # more digits than Python converts
    b'{"state": "online", "shard": ' + b"9" * 400 + b"}",
    b'{"gateway": "g", "state": "online", "cpu_s": ' + b"9" * 400 + b"}",
    b'{"id": "e", "patient": "p", "metric": "spo2", "rule": "r", "kind": "started",'
    b' "time": "0001-01-01T00:00:00+01:00", "value": 1}',  # before year 1 in UTC
    b'{"id": "e", "patient": "p", "metric": "spo2", "rule": "r", "kind": "started",'
    b' "time": "2026-01-01T00:00:00Z", "value": 1, "evidence": {"onset": "soon"}}',
    b'{"patient": "p1\\n", "alerts": [], "text": "t", "idempotency_key": "k"}',
]


@pytest.mark.parametrize("payload", HOSTILE)
@pytest.mark.parametrize("name", sorted(KINDS))
def test_hostile_numbers_times_and_ids_are_wire_errors(name: str, payload: bytes) -> None:
    with contextlib.suppress(WireError):
        KINDS[name][1](payload)


def test_an_id_with_a_trailing_newline_is_refused() -> None:
    message = PatientMessage("p1", (1,), "text", "key")
    payload = message.encode().replace(b'"p1"', b'"p1\\n"')
    with pytest.raises(WireError, match="patient"):
        PatientMessage.decode(payload)


def test_an_event_without_an_offset_or_with_an_unknown_kind_names_the_field() -> None:
    good = json.loads(
        AnalyticsEvent(
            "e1",
            "p1",
            "spo2",
            "spo2_desaturation",
            EventKind.PERSISTED,
            datetime(2026, 1, 1, tzinfo=UTC),
            84.0,
        ).encode()
    )
    for field, value, words in (
        ("time", "2026-01-01T10:00:00", "UTC offset"),
        ("kind", "exploded", "one of started, persisted, cleared"),
        ("metric", "temperature", "not a metric"),
        ("value", float("inf"), "finite number"),
        ("evidence", {"onset": "yesterday"}, "ISO 8601"),
    ):
        with pytest.raises(WireError) as raised:
            AnalyticsEvent.decode(json.dumps({**good, field: value}).encode())
        assert raised.value.field.startswith(field) and words in str(raised.value)


def test_a_device_report_that_is_wrong_names_its_place() -> None:
    payload = json.dumps([{"address": "A", "patient": "p1", "state": "connected"}, {}])
    with pytest.raises(WireError) as raised:
        GatewayDevices.decode(payload.encode())
    assert raised.value.field == "devices[1].address"


def test_a_device_name_with_a_control_character_is_refused() -> None:
    report = {"address": "C1:00:00:00:00:01", "patient": "p1", "state": "connected"}
    with pytest.raises(WireError, match="model"):
        DeviceReport.from_document({**report, "model": "H10\x00x"})
    assert DeviceReport.from_document({**report, "last_error": "a\nb"}).last_error == "a\nb"
