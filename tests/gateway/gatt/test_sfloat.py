import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.gatt.sfloat import (
    NAN,
    NEGATIVE_INFINITY,
    NRES,
    POSITIVE_INFINITY,
    RESERVED,
    NoValue,
    decode_float,
    decode_sfloat,
)
from simulators.gatt.encoders import encode_sfloat


def test_every_encoding_decodes_to_a_finite_number_or_a_reasoned_no_value() -> None:
    specials = 0
    for raw in range(0x10000):
        value = decode_sfloat(raw)
        if isinstance(value, NoValue):
            specials += 1
            assert value.reason
        else:
            assert isinstance(value, float) and math.isfinite(value)
    assert specials == 5


@pytest.mark.parametrize(
    ("sfloat", "float32", "expected"),
    [
        (0x07FF, 0x007FFFFF, NAN),
        (0x0800, 0x00800000, NRES),
        (0x07FE, 0x007FFFFE, POSITIVE_INFINITY),
        (0x0802, 0x00800002, NEGATIVE_INFINITY),
        (0x0801, 0x00800001, RESERVED),
    ],
)
def test_special_values(sfloat: int, float32: int, expected: NoValue) -> None:
    assert decode_sfloat(sfloat) == expected
    assert decode_float(float32) == expected


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        (0x0000, 0.0),
        (0x0062, 98.0),  # exponent 0, mantissa 98
        (0xF3CF, 97.5),  # exponent -1, mantissa 975
        (0x0FFF, -1.0),  # mantissa -1
        (0x1002, 20.0),  # exponent 1
        (0x07FD, 2045.0),  # largest ordinary mantissa
        (0x0803, -2045.0),
        (0x8001, 1e-8),  # exponent -8
    ],
)
def test_known_vectors(raw: int, value: float) -> None:
    assert decode_sfloat(raw) == pytest.approx(value)


@given(st.integers(-2045, 2045), st.integers(-8, 7))
def test_encoder_round_trip(mantissa: int, exponent: int) -> None:
    value = mantissa * 10.0**exponent
    decoded = decode_sfloat(encode_sfloat(value, exponent))
    assert isinstance(decoded, float)
    assert decoded == pytest.approx(value, rel=1e-9, abs=1e-12)


def test_out_of_range_encodes_as_nres() -> None:
    assert decode_sfloat(encode_sfloat(5000, 0)) == NRES
    assert decode_sfloat(encode_sfloat(-2046, 0)) == NRES  # would collide with -INFINITY
