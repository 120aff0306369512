"""The database every service shares: connecting a command (:mod:`vigil.db.connection`) and
the schema's migrations (plain SQL in ``migrations/``, applied in order by
:mod:`vigil.db.migrate`).

Importing the package imports no database driver, so `vigil` starts on a gateway."""
