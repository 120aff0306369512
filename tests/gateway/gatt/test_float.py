import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.gatt.sfloat import (
    NRES,
    NoValue,
    decode_float,
)
from simulators.gatt.encoders import encode_float


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        (0x00000000, 0.0),
        (0xFE00_2626, 97.66),
        (0x00FF_FFFF, -1.0),
        (0x0100_0002, 20.0),
        (0x0080_0003, -(2**23 - 3)),
    ],
)
def test_known_vectors(raw: int, value: float) -> None:
    assert decode_float(raw) == pytest.approx(value)


@given(st.integers(0, 2**32 - 1))
def test_every_encoding_is_a_finite_number_or_a_reasoned_no_value(raw: int) -> None:
    value = decode_float(raw)
    assert (isinstance(value, NoValue) and value.reason) or math.isfinite(value)  # type: ignore[arg-type]


@given(st.integers(-(2**23 - 3), 2**23 - 3), st.integers(-10, 10))
def test_encoder_round_trip(mantissa: int, exponent: int) -> None:
    value = mantissa * 10.0**exponent
    decoded = decode_float(encode_float(value, exponent))
    assert decoded == pytest.approx(value, rel=1e-9, abs=1e-12)


def test_out_of_range_encodes_as_nres() -> None:
    assert decode_float(encode_float(1e9, 0)) == NRES
