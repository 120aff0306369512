"""Opening a database connection: for a command, with a clear message when it cannot; for
a service, again and again until the database is back."""

from __future__ import annotations

import logging
import threading

import psycopg

from vigil.commands import UserError, require_database
from vigil.settings import Settings

log = logging.getLogger(__name__)


def connect(settings: Settings, autocommit: bool = False) -> psycopg.Connection:
    url = require_database(settings)
    try:
        return psycopg.connect(url, connect_timeout=10, autocommit=autocommit)
    except psycopg.OperationalError as exc:
        raise UserError(f"cannot connect to the database ({str(exc).strip()})") from None


def connect_retrying(
    url: str, stop: threading.Event, autocommit: bool = False
) -> psycopg.Connection | None:
    """A service's connection, retried with backoff (0.5 s doubling to 10 s) while the
    database is away (restarting, recovering from a crashed backend); None once ``stop`` is
    set. A service rides through a database restart instead of exiting."""
    delay = 0.5
    while not stop.is_set():
        try:
            return psycopg.connect(url, connect_timeout=10, autocommit=autocommit)
        except psycopg.OperationalError as exc:
            log.warning("database unavailable (%s); retrying in %.1f s", first_line(exc), delay)
            stop.wait(delay)
            delay = min(delay * 2, 10.0)
    return None


def first_line(exc: BaseException) -> str:
    """What a database error says, without the context lines psycopg adds."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
