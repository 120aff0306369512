"""Opening a database connection for a command, with a clear message when it cannot."""

from __future__ import annotations

import psycopg

from vigil.commands import UserError, require_database
from vigil.settings import Settings


def connect(settings: Settings, autocommit: bool = False) -> psycopg.Connection:
    url = require_database(settings)
    try:
        return psycopg.connect(url, connect_timeout=10, autocommit=autocommit)
    except psycopg.OperationalError as exc:
        raise UserError(f"cannot connect to the database ({str(exc).strip()})") from None
