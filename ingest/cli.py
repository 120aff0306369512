"""`vigil ingest` (the service, and `ingest stats`) and `vigil enroll`."""

from __future__ import annotations

import argparse
import json
import logging

from vigil.commands import (
    Commands,
    UserError,
    pairing,
    require_broker,
    require_database,
    stop_event,
)
from vigil.settings import Settings
from vigil.wire.topics import GATEWAY_ID

log = logging.getLogger(__name__)


def register(commands: Commands) -> None:
    ingest = commands.add_parser(
        "ingest", help="run the ingest service (MQTT -> PostgreSQL); `ingest stats` reports"
    )
    ingest.add_argument(
        "action",
        nargs="?",
        choices=["stats"],
        help="stats: per gateway, highest seq, gaps, duplicates, dead letters and lag",
    )
    ingest.add_argument("--json", action="store_true", help="with stats: one JSON document")
    ingest.set_defaults(run=_ingest)

    enroll = commands.add_parser(
        "enroll",
        help="allow gateways to send readings (enforced with VIGIL_INGEST_ENROLLED_ONLY)",
    )
    enroll.add_argument("gateways", nargs="*", metavar="GATEWAY_ID", help="gateways to enroll")
    enroll.add_argument(
        "--device",
        type=pairing,
        action="append",
        default=[],
        metavar="ADDRESS=PATIENT",
        help="assign a wearable to its patient (repeatable)",
    )
    enroll.add_argument("--note", default="", help="e.g. where the gateway is, or whose it is")
    enroll.add_argument("--list", action="store_true", help="show the enrolled gateways")
    enroll.add_argument("--remove", metavar="ID", help="withdraw a gateway or a device")
    enroll.set_defaults(run=_enroll)


def _ingest(args: argparse.Namespace, settings: Settings) -> int:
    if args.action == "stats":
        return _stats(args, settings)
    if args.json:
        raise UserError("--json goes with `vigil ingest stats`")
    from ingest.service import IngestService

    require_database(settings)
    require_broker(settings)
    counters = IngestService(settings).run(stop_event())
    log.info("ingest stopped: %s", counters)
    return 0


def _stats(args: argparse.Namespace, settings: Settings) -> int:
    import psycopg

    from ingest.stats import gateway_stats
    from vigil.db.connection import connect

    with connect(settings) as conn:
        try:
            gateways = gateway_stats(conn)
        except psycopg.errors.UndefinedTable:
            raise UserError("the database has no Vigil tables yet: run `vigil migrate`") from None
    if args.json:
        print(json.dumps([g.as_dict() for g in gateways]))
        return 0
    if not gateways:
        print("nothing received yet")
        return 0
    print(
        f"{'gateway':<24} {'batches':>8} {'last seq':>9} {'stored':>10} {'dupl.':>7}"
        f" {'dead':>5} {'missing':>8} {'lag':>9}"
    )
    for g in gateways:
        lag = "-" if g.lag_s is None else f"{g.lag_s:.1f} s"
        seq = "-" if g.highest_seq is None else str(g.highest_seq)
        print(
            f"{g.gateway:<24} {g.batches:>8} {seq:>9} {g.readings_stored:>10}"
            f" {g.duplicates:>7} {g.dead_letters:>5} {g.missing_batches:>8} {lag:>9}"
        )
        for first, last in g.gaps[:5]:
            print(f"    gap: seq {first}" + (f"-{last}" if last > first else ""))
        if len(g.gaps) > 5:
            print(f"    ... and {len(g.gaps) - 5} more gaps (see --json)")
    return 0


def _enroll(args: argparse.Namespace, settings: Settings) -> int:
    from ingest import enrollment
    from vigil.db.connection import connect
    from vigil.db.migrate import migrate

    adding = bool(args.gateways or args.device)
    if sum((adding, args.list, bool(args.remove))) != 1:
        raise UserError(
            "give gateway ids or --device ADDRESS=PATIENT to enroll, or --list, or --remove ID"
        )
    for gateway in args.gateways:
        if not GATEWAY_ID.fullmatch(gateway):
            raise UserError(f"{gateway!r} is not a gateway id: 1-64 letters, digits, '.', '_', '-'")
    with connect(settings) as conn:
        migrate(conn)
        if args.list:
            found = enrollment.enrolled(conn)
            if not found.gateways and not found.devices:
                print("nothing enrolled; enroll a gateway with `vigil enroll GATEWAY_ID`")
            for gateway, enrolled, note in found.gateways:
                print(f"gateway {gateway:<24} {enrolled:%Y-%m-%d %H:%M}  {note}")
            for device, patient, assigned in found.devices:
                print(f"device  {device:<24} {assigned:%Y-%m-%d %H:%M}  {patient}")
        elif args.remove:
            if not enrollment.withdraw(conn, args.remove):
                raise UserError(f"{args.remove} is not enrolled (see `vigil enroll --list`)")
            print(f"withdrew {args.remove}; ingest refuses it within a minute")
        else:
            enrollment.enroll(conn, args.gateways, args.device, args.note)
            names = args.gateways + [f"{d} to {p}" for d, p in args.device]
            print(f"enrolled {', '.join(names)}")
    return 0
