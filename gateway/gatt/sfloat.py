"""IEEE 11073-20601 SFLOAT and FLOAT, the decimal floats of the health device profiles.

SFLOAT is 16 bits: a 4-bit signed exponent (high nibble) and a 12-bit signed mantissa,
value = m * 10**e. FLOAT is 32 bits: an 8-bit signed exponent and a 24-bit mantissa. In both,
five mantissa values with exponent 0 are not numbers but statements ('not a number', 'not
at this resolution', infinities, reserved); they become :class:`NoValue` with the reason,
so a special value can never be mistaken for a measurement.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class NoValue:
    reason: str


NAN = NoValue("NaN (not a number)")
NRES = NoValue("NRes (not at this resolution)")
POSITIVE_INFINITY = NoValue("+INFINITY")
NEGATIVE_INFINITY = NoValue("-INFINITY")
RESERVED = NoValue("reserved for future use")

_SFLOAT_SPECIAL = {
    0x07FF: NAN,
    0x0800: NRES,
    0x07FE: POSITIVE_INFINITY,
    0x0802: NEGATIVE_INFINITY,
    0x0801: RESERVED,
}
_FLOAT_SPECIAL = {
    0x007FFFFF: NAN,
    0x00800000: NRES,
    0x007FFFFE: POSITIVE_INFINITY,
    0x00800002: NEGATIVE_INFINITY,
    0x00800001: RESERVED,
}


def decode_sfloat(raw: int) -> float | NoValue:
    """Decode one SFLOAT from its 16-bit (little-endian on the air) integer."""
    return _decode(raw & 0xFFFF, _SFLOAT_SPECIAL, mantissa_bits=12, exponent_bits=4)


def decode_float(raw: int) -> float | NoValue:
    """Decode one FLOAT from its 32-bit (little-endian on the air) integer."""
    return _decode(raw & 0xFFFFFFFF, _FLOAT_SPECIAL, mantissa_bits=24, exponent_bits=8)


def _decode(
    raw: int, special: dict[int, NoValue], mantissa_bits: int, exponent_bits: int
) -> float | NoValue:
    no_value = special.get(raw)
    if no_value is not None:
        return no_value
    mantissa = _signed(raw & ((1 << mantissa_bits) - 1), mantissa_bits)
    exponent = _signed(raw >> mantissa_bits, exponent_bits)
    # round() removes the binary noise of 10**-e so 97.5 stays 97.5, not 97.50000000000001
    return round(mantissa * 10.0**exponent, max(0, -exponent))


def _signed(value: int, bits: int) -> int:
    return value - (1 << bits) if value >= 1 << (bits - 1) else value
