"""`vigil api` (the HTTP API) and `vigil token` (its clients: create, list, revoke)."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from vigil.commands import Commands, UserError, duration, port, require_database
from vigil.settings import Settings

if TYPE_CHECKING:
    import psycopg

    from api.access.tokens import Client

KINDS = ("clinician", "patient", "admin", "system")
DEFAULT_LIFETIME = "90d"


def register(commands: Commands) -> None:
    api = commands.add_parser("api", help="run the HTTP API (FHIR)")
    api.add_argument("--port", type=port, default=None, help="port (VIGIL_API_PORT, 8000)")
    api.set_defaults(run=_api)

    token = commands.add_parser("token", help="manage API tokens: create, list, revoke")
    actions = token.add_subparsers(dest="token_command", required=True, metavar="ACTION")
    create = actions.add_parser("create", help="create an API client and print its token once")
    create.add_argument("name")
    create.add_argument(
        "--role",
        choices=KINDS,
        default="clinician",
        help="clinician: the patients of their care teams; patient: their own record; "
        "admin: every patient and the audit trail; system: only what --team/--patient grant",
    )
    create.add_argument(
        "--team", action="append", default=[], help="(clinician, system) a care team's patients"
    )
    create.add_argument(
        "--patient",
        action="append",
        default=[],
        help="(patient) whose token it is; (system) a patient granted; repeatable for system",
    )
    create.add_argument(
        "--scope",
        action="append",
        help="SMART scopes instead of the role's defaults, e.g. user/Observation.rs",
    )
    create.add_argument(
        "--expires",
        default=DEFAULT_LIFETIME,
        help=f"lifetime, e.g. 12h, 30d, or 'never' (default {DEFAULT_LIFETIME})",
    )
    actions.add_parser("list", help="show the API clients (never their tokens)")
    revoke = actions.add_parser("revoke", help="revoke a client's token, at once")
    revoke.add_argument("name")
    token.set_defaults(run=_token)


def _api(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from api.app import create_app

    require_database(settings)
    try:
        app = create_app(settings)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    uvicorn.run(
        app,
        host=settings.api_host,
        port=args.port or settings.api_port,
        log_level=settings.log_level.lower(),
        access_log=False,  # URLs name patients: no PHI in info logs
    )
    return 0


def _token(args: argparse.Namespace, settings: Settings) -> int:
    from api.access import tokens
    from vigil.db.connection import connect
    from vigil.db.migrate import migrate

    require_database(settings)
    with connect(settings) as conn:
        migrate(conn)
        if args.token_command == "list":
            _list(tokens.clients(conn))
        elif args.token_command == "revoke":
            if not tokens.revoke(conn, args.name):
                raise UserError(f"no live client {args.name!r} (see `vigil token list`)")
            print(f"revoked {args.name}: its token no longer works")
        else:
            print(_create(conn, args))
    return 0


def _create(conn: psycopg.Connection, args: argparse.Namespace) -> str:
    from api.access import tokens

    patient = args.patient if args.role != "patient" else []
    if args.role == "patient" and len(args.patient) != 1:
        raise UserError("a patient token is for one patient: give --patient ID once")
    try:
        return tokens.create_client(
            conn,
            args.name,
            args.role,
            patient=args.patient[0] if args.role == "patient" else None,
            scopes=" ".join(args.scope) if args.scope else None,
            expires=_expiry(args.expires),
            teams=args.team,
            patients=patient,
        )
    except ValueError as exc:
        raise UserError(str(exc)) from None


def _expiry(text: str) -> datetime | None:
    if text == "never":
        return None
    days = text.endswith("d") and text[:-1].isdigit()
    try:
        seconds = int(text[:-1]) * 86400 if days else duration(text)
    except argparse.ArgumentTypeError as exc:
        raise UserError(f"--expires: {exc}, or a number of days such as 30d, or never") from None
    return datetime.now(UTC) + timedelta(seconds=seconds)


def _list(found: list[Client]) -> None:
    if not found:
        print("no API clients; create one with `vigil token create NAME`")
    for client in found:
        if client.revoked:
            state = "revoked"
        elif client.expires:
            state = f"expires {client.expires:%Y-%m-%d %H:%M}"
        else:
            state = "no expiry"
        print(f"{client.name:<24} {client.kind:<9} {state:<24} {' '.join(client.grants)}")
