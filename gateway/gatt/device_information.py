"""Device Information Service (0x180A) strings: manufacturer, model, serial, revisions.

They are UTF-8 without a terminator, but many devices pad them with NULs or spaces; both
are stripped. A string that is not UTF-8 is a parse error, not a guess."""

from gateway.gatt.errors import GattParseError

CHARACTERISTICS = {
    0x2A29: "Manufacturer Name String",
    0x2A24: "Model Number String",
    0x2A25: "Serial Number String",
    0x2A27: "Hardware Revision String",
    0x2A26: "Firmware Revision String",
    0x2A28: "Software Revision String",
}


def parse_device_information_string(uuid16: int, data: bytes) -> str:
    name = CHARACTERISTICS.get(uuid16, f"Device Information 0x{uuid16:04X}")
    try:
        text = data.decode("utf-8").strip("\x00 ")
    except UnicodeDecodeError as exc:
        raise GattParseError(name, f"not UTF-8 ({exc.reason} at byte {exc.start})", data) from None
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in text):
        # a NUL or control character inside is no name, and the platform's database refuses it
        raise GattParseError(name, "control characters in the string", data)
    return text
