import contextlib
import json

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from vigil.metrics import BY_NAME, CATALOGUE
from vigil.wire.batch import ABSENT_VALUE, SCHEMA_VERSION, Batch
from vigil.wire.errors import WireError
from vigil.wire.quality import Quality

names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789:-", min_size=1, max_size=20)
patients = st.from_regex(r"[A-Za-z0-9.-]{1,36}", fullmatch=True)
REASONS = [
    Quality.NOT_A_NUMBER,
    Quality.NOT_AT_RESOLUTION,
    Quality.POSITIVE_INFINITY,
    Quality.NEGATIVE_INFINITY,
]
readings = st.one_of(
    st.tuples(
        st.floats(allow_nan=False, allow_infinity=False),
        st.integers(0, 0xFFFF).map(lambda f: f & ~Quality.ABSENT),
    ),
    st.tuples(
        st.just(np.nan),
        st.tuples(st.integers(0, 0xFFFF), st.sampled_from(REASONS)).map(
            lambda fr: fr[0] & ~Quality.ABSENT | fr[1]
        ),
    ),
)
"""(value, flags): a measurement, or an absent reading with NaN and one reason."""


@st.composite
def batches(draw: st.DrawFn) -> Batch:
    n = draw(st.integers(0, 30))
    values = draw(st.lists(readings, min_size=n, max_size=n))
    return Batch(
        gateway=draw(st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,20}", fullmatch=True)),
        seq=draw(st.integers(0, 2**53)),
        sent=draw(st.integers(0, 2**45)),
        device=tuple(draw(st.lists(names, min_size=n, max_size=n))),
        patient=tuple(draw(st.lists(patients, min_size=n, max_size=n))),
        metric=np.array(
            draw(st.lists(st.sampled_from([m.id for m in CATALOGUE]), min_size=n, max_size=n)),
            dtype=np.int16,
        ),
        time=np.array(
            draw(st.lists(st.integers(0, 2**45), min_size=n, max_size=n)), dtype=np.int64
        ),
        value=np.array([v for v, _ in values], dtype=np.float64),
        flags=np.array([f for _, f in values], dtype=np.int32),
    )


@given(batches())
def test_round_trip(batch: Batch) -> None:
    assert Batch.decode(batch.encode()) == batch


def test_batches_compare_by_value_and_type() -> None:
    one = Batch.decode(json.dumps(good()).encode())
    other = Batch.decode(json.dumps({**good(), "value": [72, 97.0]}).encode())
    assert one == Batch.decode(json.dumps(good()).encode()) and one != other


def good() -> dict:
    return {
        "v": 1,
        "gateway": "gw-1",
        "seq": 3,
        "sent": 1_700_000_000_000,
        "device": ["C1:00:00:00:00:01", "C2:00:00:00:00:01"],
        "patient": ["p0001", "p0001"],
        "metric": ["heart_rate", "spo2"],
        "time": [1_700_000_000_000, 1_700_000_000_010],
        "value": [72, 97.5],
        "flags": [0, 1],
    }


def test_decodes_a_known_document() -> None:
    batch = Batch.decode(json.dumps(good()).encode())
    assert len(batch) == 2
    assert batch.metric.tolist() == [BY_NAME["heart_rate"].id, BY_NAME["spo2"].id]
    assert batch.value.tolist() == [72.0, 97.5]


def absent_document() -> dict:
    """A new gateway's batch: a pulse rate, and an SpO2 the oximeter sent as NRes."""
    return {
        **good(),
        "metric": ["pulse_rate", "spo2"],
        "value": [64, ABSENT_VALUE],
        "flags": [0, int(Quality.NOT_AT_RESOLUTION | Quality.LOW_PERFUSION)],
    }


def test_an_absent_reading_decodes_to_nan_with_its_reason() -> None:
    batch = Batch.decode(json.dumps(absent_document()).encode())
    assert batch.value[0] == 64.0 and np.isnan(batch.value[1])
    assert batch.absent.tolist() == [False, True]
    assert Quality.NOT_AT_RESOLUTION in Quality(int(batch.flags[1]))


def test_an_absent_reading_travels_as_a_number_no_ingest_before_it_stores() -> None:
    """An ingest that predates absent readings decodes version 1, then refuses a value
    outside its metric's plausible range unless the reading is flagged invalid (which a
    gateway never sends with a reason: tests/gateway/test_readings.py), so it dead-letters
    just this reading and stores the rest of the batch."""
    batch = Batch.decode(json.dumps(absent_document()).encode())
    wire = json.loads(batch.encode())
    assert wire["v"] == SCHEMA_VERSION == 1
    assert wire["value"] == [64.0, ABSENT_VALUE]
    assert all(m.low > ABSENT_VALUE for m in CATALOGUE)


def test_any_number_flags_went_with_before_still_decodes() -> None:
    """Before absent readings any flags went with any finite number: none is refused now,
    the reason bits only say that the number is no value."""
    doc = {**good(), "value": [72, 97.5], "flags": [int(Quality.POSITIVE_INFINITY), 0xFFFF]}
    batch = Batch.decode(json.dumps(doc).encode())
    assert batch.absent.tolist() == [True, True] and np.isnan(batch.value).all()


def test_batches_with_absent_readings_compare_equal() -> None:
    doc = json.dumps(absent_document()).encode()
    assert Batch.decode(doc) == Batch.decode(doc)
    assert Batch.decode(doc) != Batch.decode(json.dumps(good()).encode())


def mutate(**changes: object) -> bytes:
    doc = good()
    for key, value in changes.items():
        if value is ...:
            del doc[key]
        else:
            doc[key] = value
    return json.dumps(doc).encode()


MALFORMED = [
    (b"\xff\xfe", "payload", "UTF-8"),
    (b"{not json", "payload", "not JSON"),
    (b"[1, 2]", "payload", "JSON object"),
    (mutate(v=2), "v", "unsupported schema version 2"),
    (mutate(v=...), "v", "unsupported schema version None"),
    (mutate(gateway="a/b"), "gateway", "expected a gateway id"),
    (mutate(seq=-1), "seq", "integer from 0 to 2^63-1"),
    (mutate(seq="7"), "seq", "integer from 0 to 2^63-1"),
    (mutate(sent=1.5), "sent", "integer from 0 to 2^63-1"),
    (mutate(seq=2**63), "seq", "integer from 0 to 2^63-1"),
    (mutate(time=...), "time", "missing"),
    (mutate(value="72"), "value", "expected an array"),
    (mutate(flags=[0]), "columns", "differ in length"),
    (mutate(metric=["heart_rate", "temperature"]), "metric", "item 1 is 'temperature'"),
    (mutate(device=["", "x"]), "device", "item 0"),
    (mutate(device=["x", "a\u0000b"]), "device", "item 1"),
    (mutate(patient=[None, "p"]), "patient", "item 0"),
    (mutate(patient=["p1", "p 2"]), "patient", "item 1 is 'p 2'"),
    (mutate(patient=["p1", "p" * 37]), "patient", "item 1"),
    (mutate(time=[1, "2"]), "time", "item 1 is '2'"),
    (mutate(time=[1, 2.5]), "time", "item 1 is 2.5"),
    (mutate(time=[-5, 1]), "time", "outside"),
    (mutate(value=[72, None]), "value", "item 1 is None"),
    (
        b'{"v":1,"gateway":"g","seq":1,"sent":1,"device":["d"],"patient":["p"],'
        b'"metric":["spo2"],"time":[1],"value":[NaN],"flags":[0]}',
        "value",
        "finite",
    ),
    (mutate(flags=[0, 70000]), "flags", "outside"),
    (mutate(time=[[1], [2, 3]]), "time", "item 0 is [1]"),
    (mutate(time=[[1], [2]]), "time", "item 0 is [1]"),
    (mutate(value=[[72.0], [97.0]]), "value", "item 0 is [72.0]"),
    (mutate(time=[2**70, 1]), "time", "beyond 64 bits"),
    (mutate(time=[True, 1]), "time", "item 0 is True"),
]


@pytest.mark.parametrize(("payload", "field", "words"), MALFORMED)
def test_malformed_batches_raise_one_error_naming_the_field(
    payload: bytes, field: str, words: str
) -> None:
    with pytest.raises(WireError) as raised:
        Batch.decode(payload)
    assert raised.value.field == field
    assert words in str(raised.value)
    assert str(raised.value).startswith(f"{field}: ")


@given(st.binary(max_size=200))
def test_arbitrary_bytes_raise_only_wire_error(payload: bytes) -> None:
    with contextlib.suppress(WireError):
        Batch.decode(payload)


def test_deeply_nested_json_is_a_wire_error() -> None:
    with pytest.raises(WireError, match="nested too deeply"):
        Batch.decode(b"[" * 100_000 + b"]" * 100_000)
