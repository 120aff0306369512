"""`vigil migrate`: bring a database's schema up to date."""

from __future__ import annotations

import argparse

from vigil.commands import Commands
from vigil.settings import Settings


def register(commands: Commands) -> None:
    command = commands.add_parser("migrate", help="apply database migrations")
    command.set_defaults(run=_migrate)


def _migrate(_args: argparse.Namespace, settings: Settings) -> int:
    from vigil.db.connection import connect
    from vigil.db.migrate import migrate

    with connect(settings) as conn:
        applied = migrate(conn)
    print(f"applied {len(applied)} migration(s): {', '.join(applied) or 'none needed'}")
    return 0
