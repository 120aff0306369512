"""Reading the fields of a JSON message strictly, each failure a :class:`WireError` naming
the field: what every decoder of the wire contract is built from.

JSON's own types are taken as they are: a string is never a number, ``true`` is not 1, and
NaN or Infinity (which Python's json accepts) are not numbers.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
from collections.abc import Mapping
from enum import StrEnum
from typing import Any, TypeVar

from vigil.wire.errors import WireError

E = TypeVar("E", bound=StrEnum)
MAX_TEXT = 4000
"""The longest free text a message carries (a patient message, a device's last error)."""


def parse(payload: bytes | bytearray) -> Any:
    """The JSON document in ``payload``."""
    try:
        return json.loads(bytes(payload).decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise WireError("payload", f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise WireError("payload", f"not JSON ({exc.msg} at position {exc.pos})") from None
    except RecursionError:
        raise WireError("payload", "JSON nested too deeply") from None
    except ValueError as exc:  # e.g. an integer of more digits than Python converts
        raise WireError("payload", f"not JSON Vigil reads ({exc})") from None


def parse_object(payload: bytes | bytearray) -> dict[str, Any]:
    return as_object(parse(payload), "payload")


def as_object(value: Any, name: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise WireError(name, f"expected a JSON object, got {type(value).__name__}")
    return value


def dump(document: Any) -> bytes:
    return json.dumps(document, separators=(",", ":"), allow_nan=False).encode()


def text(
    doc: Mapping[str, Any],
    name: str,
    pattern: re.Pattern[str] | None = None,
    what: str = "",
    longest: int = MAX_TEXT,
) -> str:
    """A string, all of it matching ``pattern`` when given (a final newline included)."""
    value = doc.get(name)
    if (
        not isinstance(value, str)
        or len(value) > longest
        or (pattern is not None and not pattern.fullmatch(value))
    ):
        shown = value if not isinstance(value, str) or len(value) <= 80 else value[:80] + "..."
        raise WireError(name, f"expected {what or f'a string of at most {longest}'}, got {shown!r}")
    return value


def optional_text(doc: Mapping[str, Any], name: str) -> str | None:
    return None if doc.get(name) is None else text(doc, name)


LARGEST = 2**63 - 1
"""The largest integer the database stores (bigint): past it, a number is no id or time."""


def integer(doc: Mapping[str, Any], name: str, minimum: int = 0) -> int:
    value = doc.get(name)
    if type(value) is not int or not minimum <= value <= LARGEST:
        raise WireError(name, f"expected an integer from {minimum} to 2^63-1, got {value!r}")
    return value


def optional_integer(doc: Mapping[str, Any], name: str, minimum: int = 0) -> int | None:
    return None if doc.get(name) is None else integer(doc, name, minimum)


def number(doc: Mapping[str, Any], name: str) -> float:
    value = doc.get(name)
    number = math.nan
    if isinstance(value, int | float) and not isinstance(value, bool):
        with contextlib.suppress(OverflowError):  # an integer beyond any float stays NaN
            number = float(value)
    if not math.isfinite(number):
        raise WireError(name, f"expected a finite number, got {str(value)[:80]}")
    return number


def optional_number(doc: Mapping[str, Any], name: str) -> float | None:
    return None if doc.get(name) is None else number(doc, name)


def choice(doc: Mapping[str, Any], name: str, kind: type[E]) -> E:
    value = doc.get(name)
    if isinstance(value, str) and value in kind._value2member_map_:
        return kind(value)
    names = ", ".join(k.value for k in kind)
    raise WireError(name, f"expected one of {names}, got {value!r}")
