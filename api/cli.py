"""`vigil api` (the HTTP API) and `vigil token` (its clients)."""

from __future__ import annotations

import argparse

from vigil.commands import Commands, port, require_database
from vigil.settings import Settings


def register(commands: Commands) -> None:
    api = commands.add_parser("api", help="run the HTTP API (FHIR)")
    api.add_argument("--port", type=port, default=None, help="port (VIGIL_API_PORT, 8000)")
    api.set_defaults(run=_api)

    token = commands.add_parser("token", help="manage API tokens")
    actions = token.add_subparsers(dest="token_command", required=True, metavar="ACTION")
    create = actions.add_parser("create", help="create an API client and print its token")
    create.add_argument("name")
    create.add_argument("--role", choices=["clinician", "admin"], default="clinician")
    token.set_defaults(run=_token)


def _api(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from api.app import create_app

    require_database(settings)
    uvicorn.run(
        create_app(settings),
        host=settings.api_host,
        port=args.port or settings.api_port,
        log_level=settings.log_level.lower(),
        access_log=False,  # URLs name patients: no PHI in info logs
    )
    return 0


def _token(args: argparse.Namespace, settings: Settings) -> int:
    from api.tokens import create_client
    from vigil.db.connection import connect
    from vigil.db.migrate import migrate

    with connect(settings) as conn:
        migrate(conn)
        token = create_client(conn, args.name, args.role)
    print(token)
    return 0
