"""`vigil ingest` (the service, and `ingest stats`); `vigil enroll` is :mod:`ingest.enroll_cli`."""

from __future__ import annotations

import argparse
import json
import logging

from ingest import enroll_cli
from vigil.commands import Commands, UserError, require_broker, require_database, stop_event
from vigil.settings import Settings

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

    enroll_cli.register(commands)


def _ingest(args: argparse.Namespace, settings: Settings) -> int:
    if args.action == "stats":
        return _stats(args, settings)
    if args.json:
        raise UserError("--json goes with `vigil ingest stats`")
    from ingest.service import IngestService

    require_database(settings)
    require_broker(settings, settings.ingest_client_id)
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
        if g.conflicts:
            print(f"    conflicts: {g.conflicts} batches under a seq another batch holds")
    return 0
