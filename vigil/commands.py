"""What every `vigil` sub-command shares: how a package registers its commands, argument
types, expected failures, the stop event that Ctrl-C and SIGTERM set, and the checks that a
broker or a database is configured.

Each package's ``cli`` module has a ``register(commands)`` that adds its sub-commands to
the dispatcher's parser, each with ``set_defaults(run=handler)``; a handler takes the parsed
arguments and the settings and returns the exit status. An expected failure (a bad
argument, a service that cannot be reached) raises :class:`UserError`, which the dispatcher
prints as one line saying what is wrong and how to fix it; tracebacks are for bugs.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import signal
import threading
from collections.abc import Callable
from typing import TypeAlias
from urllib.parse import urlsplit

from vigil.settings import Settings

Commands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"
"""Where a package adds its sub-commands (the dispatcher's ``add_subparsers()``)."""
Handler = Callable[[argparse.Namespace, Settings], int]

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h)?$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}
_DEVICE = re.compile(
    r"([0-9A-Fa-f]{2}:){5}[0-9A-Fa-f]{2}"
    r"|[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}"
)


class UserError(Exception):
    """An expected failure: printed as one line, exit status 2."""


def duration(text: str) -> float:
    """Seconds from ``90s``, ``5m``, ``1h``, ``250ms`` or a bare number of seconds."""
    match = _DURATION.match(text.strip())
    if match is None:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a duration; use a number with a unit, e.g. 30s, 5m or 1h"
        )
    return float(match[1]) * _UNITS[match[2]]


def positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of at least 1")
    return int(text)


def port(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a TCP port (1-65535)")
    return int(text)


def pairing(text: str) -> tuple[str, str]:
    """A wearable and its patient, ``ADDRESS=PATIENT``, the address upper-cased: a Bluetooth
    address, or the UUID macOS gives a device instead; the patient an id the wire carries."""
    from vigil.wire.batch import PATIENT_ID  # numpy: only for the commands that pair

    address, sep, patient = text.partition("=")
    if not sep or not _DEVICE.fullmatch(address) or not PATIENT_ID.fullmatch(patient):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not ADDRESS=PATIENT (e.g. C1:00:00:00:00:01=p0001, or a macOS "
            "device UUID; patient ids are letters, digits, '-' and '.')"
        )
    return address.upper(), patient


def stop_event() -> threading.Event:
    """An event that SIGINT and SIGTERM set: what a service's loop runs until."""
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    return stop


def asyncio_stop_event() -> asyncio.Event:
    """:func:`stop_event` for a command on an asyncio loop (call it inside the loop)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop


def require_broker(settings: Settings, client_id: str) -> str:
    """The broker's URL; refused when it logs in under another name than ``client_id``: a
    broker that takes usernames as client ids (deploy/mosquitto.conf) would then refuse,
    without a word under MQTT 3.1.1, whatever the process publishes on its own topics."""
    if not settings.mqtt_url:
        raise UserError("no broker: set VIGIL_MQTT_URL (e.g. mqtt://localhost:1883)")
    username = urlsplit(settings.mqtt_url).username
    if username is not None and username != client_id:
        raise UserError(
            f"VIGIL_MQTT_URL logs in as {username!r}, but this process is {client_id!r}: "
            "the broker names a client by its username, so use the account `vigil enroll` "
            f"issued for {client_id!r} (or set the client id to {username!r})"
        )
    return settings.mqtt_url


def require_database(settings: Settings) -> str:
    if not settings.database_url:
        raise UserError("no database: set VIGIL_DATABASE_URL (e.g. postgresql://localhost/vigil)")
    return settings.database_url
