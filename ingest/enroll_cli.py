"""`vigil enroll`: gateways, their devices, and everyone's broker credentials.

Enrolling a gateway tells ingest which patients it speaks for (through which devices) and
issues its broker password; enrolling a service (``--service ingest``) issues the password
a platform service logs in with. A password is printed once and only its hash is kept, in
the database and in Mosquitto's password file, which is written with the ACL file after
every change when ``VIGIL_BROKER_PASSWORD_FILE`` and ``VIGIL_BROKER_ACL_FILE`` say where.
Mosquitto reads them again on SIGHUP (``--reload-broker PID``, or ``systemctl reload
mosquitto``).
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from ingest.credentials import SERVICE_ROLES, Role
from vigil.commands import Commands, UserError, pairing, positive_int
from vigil.settings import Settings
from vigil.wire.topics import GATEWAY_ID

if TYPE_CHECKING:
    import psycopg

    from ingest.enrollment import Enrolled

_CLIENT_ID_SETTING: dict[Role, str] = {
    "ingest": "VIGIL_INGEST_CLIENT_ID",
    "analytics": "VIGIL_ANALYTICS_CLIENT_ID, to which a shard appends -SHARD",
    "alerts": "VIGIL_ALERTS_CLIENT_ID",
}
_KEPT_HASHED = "shown this once: only its hash is kept"


def register(commands: Commands) -> None:
    enroll = commands.add_parser(
        "enroll",
        help="enroll gateways and their devices, and issue broker credentials",
        description=__doc__.splitlines()[0] if __doc__ else None,
    )
    enroll.add_argument(
        "gateways",
        nargs="*",
        metavar="GATEWAY_ID",
        help="gateways to enroll; each gets its broker password the first time",
    )
    enroll.add_argument(
        "--device",
        type=pairing,
        action="append",
        default=[],
        metavar="ADDRESS=PATIENT",
        help="assign a wearable to its patient on the (one) gateway given (repeatable)",
    )
    enroll.add_argument("--note", help="e.g. where the gateway is, or whose it is")
    enroll.add_argument(
        "--service",
        choices=SERVICE_ROLES,
        help="issue a platform service's broker password (monitor: reads the status topics)",
    )
    enroll.add_argument(
        "--username",
        help="with --service: its username, which must be its MQTT client id (default: the "
        "role's client id setting, e.g. vigil-ingest; vigil-monitor for a monitor)",
    )
    enroll.add_argument(
        "--new-password",
        action="store_true",
        help="issue a new password though the account has one (the old one stops working)",
    )
    enroll.add_argument(
        "--write-broker-files",
        action="store_true",
        help="write the broker's password and ACL files from the database",
    )
    enroll.add_argument(
        "--reload-broker",
        type=positive_int,
        metavar="PID",
        help="signal Mosquitto (its process id) to read its files again once written",
    )
    enroll.add_argument("--list", action="store_true", help="show what is enrolled")
    enroll.add_argument(
        "--remove", metavar="NAME", help="withdraw a gateway, a device or a service's account"
    )
    enroll.set_defaults(run=_enroll)


def _enroll(args: argparse.Namespace, settings: Settings) -> int:
    from ingest import enrollment
    from vigil.db.connection import connect
    from vigil.db.migrate import migrate

    username = _check(args, settings)
    with connect(settings) as conn:
        migrate(conn)
        if args.list:
            _list(enrollment.enrolled(conn))
            return 0
        if args.remove:
            if not enrollment.withdraw(conn, args.remove):
                raise UserError(f"{args.remove} is not enrolled (see `vigil enroll --list`)")
            conn.commit()
            print(f"withdrew {args.remove}; ingest refuses it within a minute")
        elif username is not None:
            _issue(conn, username, args.service, args.new_password)
        elif args.gateways:
            _enroll_gateways(conn, args)
        _write_broker_files(conn, settings, args.reload_broker, asked=args.write_broker_files)
    return 0


def _check(args: argparse.Namespace, settings: Settings) -> str | None:
    """Refuse what does not go together; the service's username, when one is enrolled."""
    actions = [
        bool(args.gateways or args.device),
        bool(args.service),
        args.write_broker_files,
        args.list,
        bool(args.remove),
    ]
    if sum(actions) != 1:
        raise UserError(
            "give gateway ids (with --device ADDRESS=PATIENT), or --service ROLE, or "
            "--write-broker-files, or --list, or --remove NAME"
        )
    if args.device and len(args.gateways) != 1:
        raise UserError(
            "--device needs the one gateway the devices are paired on: "
            "`vigil enroll GATEWAY_ID --device ADDRESS=PATIENT`"
        )
    if args.username and not args.service:
        raise UserError("--username goes with --service ROLE")
    if args.new_password and not (args.gateways or args.service):
        raise UserError("--new-password goes with gateway ids or --service ROLE")
    if args.reload_broker and (args.list or not settings.broker_password_file):
        raise UserError("--reload-broker goes with a change and VIGIL_BROKER_PASSWORD_FILE set")
    username = None
    if args.service:
        defaults = {
            "ingest": settings.ingest_client_id,
            "analytics": settings.analytics_client_id,
            "alerts": settings.alerts_client_id,
            "monitor": "vigil-monitor",
        }
        username = args.username or defaults[args.service]
    for name in [*args.gateways, *([username] if username else [])]:
        if not GATEWAY_ID.fullmatch(name):
            raise UserError(f"{name!r} is not a valid id: 1-64 letters, digits, '.', '_', '-'")
    return username


def _enroll_gateways(conn: psycopg.Connection, args: argparse.Namespace) -> None:
    from ingest import credentials, enrollment

    issued = {}
    for gateway in args.gateways:
        role = credentials.role_of(conn, gateway)
        if role not in (None, "gateway"):
            raise UserError(f"{gateway} is the broker account of a service ({role})")
        enrollment.enroll(conn, gateway, args.note)
        enrollment.assign(conn, gateway, args.device)
        if role is None or args.new_password:
            issued[gateway] = credentials.issue(conn, gateway, "gateway")
    conn.commit()
    devices = "".join(f"\n  device {d} of {p}" for d, p in args.device)
    print(f"enrolled {', '.join(args.gateways)}{devices}")
    for gateway, password in issued.items():
        print(f"broker password of gateway {gateway} ({_KEPT_HASHED}):\n  {password}")
        print(
            f"  on the gateway: VIGIL_GATEWAY_ID={gateway} "
            f"VIGIL_MQTT_URL=mqtts://{gateway}:{password}@BROKER:8883"
        )


def _issue(conn: psycopg.Connection, username: str, role: Role, again: bool) -> None:
    from ingest import credentials
    from vigil.db import enrollment

    held = credentials.role_of(conn, username)
    if held is not None and held != role:
        raise UserError(f"{username} is already the broker account of a {held}")
    if held is not None and not again:
        raise UserError(f"{username} has its password; --new-password issues another")
    if enrollment.gateways(conn, [username]):
        raise UserError(f"{username} is an enrolled gateway")
    password = credentials.issue(conn, username, role)
    conn.commit()
    print(f"broker password of {username} ({role}; {_KEPT_HASHED}):\n  {password}")
    url = f"VIGIL_MQTT_URL=mqtt://{username}:{password}@BROKER:1883"
    if role == "monitor":
        print(f"  it connects with {url}, one connection at a time")
    else:
        print(f"  it connects with {url}; its client id must be {username}")
        print(f"  ({_CLIENT_ID_SETTING[role]}): the broker takes usernames as client ids")


def _write_broker_files(
    conn: psycopg.Connection, settings: Settings, reload_pid: int | None, asked: bool
) -> None:
    """The password and ACL files from the accounts, where the settings say; without them,
    how to set them (an error when writing them was what was asked)."""
    from ingest import broker_files, credentials

    password_path, acl_path = settings.broker_password_file, settings.broker_acl_file
    if password_path is None or acl_path is None:
        advice = (
            "set VIGIL_BROKER_PASSWORD_FILE and VIGIL_BROKER_ACL_FILE (deploy/mosquitto.conf "
            "names /etc/mosquitto/passwd and /etc/mosquitto/acl), then run "
            "`vigil enroll --write-broker-files`"
        )
        if asked:
            raise UserError(f"nowhere to write the broker's files: {advice}")
        print(f"the broker's files are not written: {advice}")
        return
    accounts = credentials.accounts(conn)
    texts = (broker_files.password_file(accounts), broker_files.acl_file(accounts))
    for path, text in zip((password_path, acl_path), texts, strict=True):
        try:
            created = broker_files.write(path, text)
        except OSError as exc:
            raise UserError(f"cannot write {path} ({exc.strerror or exc})") from None
        if created:
            print(
                f"created {path}, readable by its owner only: the broker's user must be able "
                f"to read it (e.g. `chown mosquitto {path}`); later writes keep its owner and mode"
            )
    print(f"wrote {password_path} and {acl_path} ({len(accounts)} accounts)")
    if reload_pid is None:
        print("Mosquitto reads them when reloaded: `systemctl reload mosquitto`")
        return
    try:
        broker_files.reload_broker(reload_pid)
    except OSError as exc:
        raise UserError(f"cannot signal process {reload_pid} ({exc.strerror or exc})") from None
    print(f"asked the broker (process {reload_pid}) to read them again")


def _list(found: Enrolled) -> None:
    if not (found.gateways or found.devices or found.accounts):
        print("nothing enrolled; enroll a gateway with `vigil enroll GATEWAY_ID`")
    for gateway, enrolled, note in found.gateways:
        print(f"gateway {gateway:<24} {enrolled:%Y-%m-%d %H:%M}  {note}")
    for device, assigned_on, patient, assigned in found.devices:
        on = assigned_on or "no gateway: assign it again"
        print(f"device  {device:<24} {assigned:%Y-%m-%d %H:%M}  {patient} ({on})")
    for account in found.accounts:
        print(f"broker  {account.username:<24} {account.issued:%Y-%m-%d %H:%M}  {account.role}")
