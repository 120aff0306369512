"""IEEE 11073-20601 SFLOAT, the 16-bit decimal float of the health device profiles.

A 4-bit signed exponent (high nibble) and a 12-bit signed mantissa: value = m * 10**e.
Five mantissa values with exponent 0 are not numbers but statements ('not a number',
'not at this resolution', infinities, reserved); they become :class:`NoValue` with the
reason, so a special value can never be mistaken for a measurement.
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

_SPECIAL = {
    0x07FF: NAN,
    0x0800: NRES,
    0x07FE: POSITIVE_INFINITY,
    0x0802: NEGATIVE_INFINITY,
    0x0801: RESERVED,
}


def decode_sfloat(raw: int) -> float | NoValue:
    """Decode one SFLOAT from its 16-bit little-endian integer."""
    special = _SPECIAL.get(raw & 0xFFFF)
    if special is not None:
        return special
    mantissa = raw & 0x0FFF
    if mantissa >= 0x0800:
        mantissa -= 0x1000
    exponent = (raw >> 12) & 0x0F
    if exponent >= 0x08:
        exponent -= 0x10
    # round() removes the binary noise of 10**-e so 97.5 stays 97.5, not 97.50000000000001
    return round(mantissa * 10.0**exponent, max(0, -exponent))
