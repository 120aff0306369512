"""The database every service shares: connecting a command (:func:`connect`) and the
schema's migrations (plain SQL in ``migrations/``, applied in order by :func:`migrate`)."""

from vigil.db.connection import connect
from vigil.db.migrate import migrate

__all__ = ["connect", "migrate"]
