"""A cursor over a characteristic value, for parsers whose fields follow their flags."""

from __future__ import annotations

import struct
from datetime import datetime

from gateway.gatt.errors import GattParseError
from gateway.gatt.sfloat import NoValue, decode_float, decode_sfloat


class ByteReader:
    def __init__(self, characteristic: str, data: bytes) -> None:
        self.characteristic = characteristic
        self.data = data
        self.offset = 0

    def _take(self, size: int, field: str) -> bytes:
        if self.offset + size > len(self.data):
            raise GattParseError(self.characteristic, f"truncated in {field}", self.data)
        chunk = self.data[self.offset : self.offset + size]
        self.offset += size
        return chunk

    def u8(self, field: str) -> int:
        return self._take(1, field)[0]

    def u16(self, field: str) -> int:
        return int(struct.unpack("<H", self._take(2, field))[0])

    def u24(self, field: str) -> int:
        low, high = struct.unpack("<HB", self._take(3, field))
        return int(low | high << 16)

    def sfloat(self, field: str) -> float | NoValue:
        return decode_sfloat(self.u16(field))

    def float32(self, field: str) -> float | NoValue:
        return decode_float(int(struct.unpack("<I", self._take(4, field))[0]))

    def date_time(self, field: str) -> datetime | None:
        """Bluetooth Date Time (7 bytes); None when the device marks it unknown (zeros)."""
        year, month, day, hour, minute, second = struct.unpack("<HBBBBB", self._take(7, field))
        if year == 0 or month == 0 or day == 0:
            return None
        try:
            return datetime(year, month, day, hour, minute, second)
        except ValueError:
            raise GattParseError(
                self.characteristic,
                f"{field} {year}-{month}-{day} {hour}:{minute}:{second} is not a date",
                self.data,
            ) from None

    def end(self) -> None:
        rest = len(self.data) - self.offset
        if rest:
            raise GattParseError(
                self.characteristic, f"{rest} unexpected bytes after the last field", self.data
            )
