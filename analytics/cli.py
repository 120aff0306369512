"""`vigil analytics` (the anomaly core as a service) and `vigil analytics replay`."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from vigil.commands import Commands, UserError, require_broker, stop_event
from vigil.settings import Settings

if TYPE_CHECKING:
    from vigil.wire.events import AnalyticsEvent

log = logging.getLogger(__name__)


def register(commands: Commands) -> None:
    analytics = commands.add_parser(
        "analytics",
        help="run the anomaly core on the broker's readings; `analytics replay` scores records",
    )
    analytics.set_defaults(run=_service)
    actions = analytics.add_subparsers(dest="analytics_command", required=False, metavar="ACTION")
    replay = actions.add_parser(
        "replay",
        help="score recorded readings (CSV, or the database) and write the events (JSON lines)",
    )
    source = replay.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--input", metavar="FILE.csv", help="columns patient,time,metric,value[,flags]"
    )
    source.add_argument(
        "--from",
        dest="since",
        metavar="TIME",
        help="replay the database's observations from TIME (ISO 8601 or epoch seconds)",
    )
    replay.add_argument("--to", dest="until", metavar="TIME", help="with --from: until (now)")
    replay.add_argument("--output", required=True, metavar="FILE.jsonl", help="one event per line")
    replay.add_argument(
        "--patients",
        metavar="FILE.json",
        help="per-patient rule changes (VIGIL_ANALYTICS_PATIENTS_FILE; see analytics/config.py)",
    )
    replay.add_argument(
        "--scale2",
        action="append",
        default=[],
        metavar="PATIENT",
        help="a patient on NEWS2 SpO2 scale 2 (hypercapnic respiratory failure; repeatable)",
    )
    replay.set_defaults(run=_replay)


def _service(_args: argparse.Namespace, settings: Settings) -> int:
    from analytics.service import AnalyticsService

    require_broker(settings, settings.analytics_client_id)
    try:
        service = AnalyticsService(settings)
    except ValueError as exc:  # a bad shard, enrollment 'on' without a database, or a
        # ConfigError naming the patient and field
        raise UserError(str(exc)) from None
    counters = service.run(stop_event())
    log.info("analytics stopped: %s", counters)
    return 0


def _replay(args: argparse.Namespace, settings: Settings) -> int:
    from analytics.config import ConfigError, load_patient_rules
    from analytics.engine import Engine
    from analytics.replay import DatabaseReplay, ReplayError, parse_csv, parse_time, replay
    from vigil.db.connection import connect

    path = args.patients or settings.analytics_patients_file
    try:
        engine = Engine(args.scale2, patients=load_patient_rules(Path(path)) if path else None)
    except ConfigError as exc:
        raise UserError(str(exc)) from None
    if args.since is None:
        if args.until is not None:
            raise UserError("--to goes with --from")
        try:
            with open(args.input, encoding="utf-8", newline="") as lines:
                rows = parse_csv(lines)
        except OSError as exc:
            raise UserError(f"cannot read {args.input}: {exc.strerror}") from None
        except UnicodeDecodeError:
            raise UserError(f"{args.input} is not UTF-8 text") from None
        except ReplayError as exc:
            raise UserError(f"{args.input}: {exc}") from None
        for problem in rows.problems:
            print(f"skipped {problem}", file=sys.stderr)
        events = _write_events(args.output, replay(rows, engine))
        print(json.dumps({"rows": len(rows), "skipped": len(rows.problems), "events": events}))
        return 0
    try:
        since = parse_time(args.since)
        until = parse_time(args.until) if args.until else int(time.time() * 1000)
    except ValueError as exc:
        raise UserError(f"--from/--to: {exc}") from None
    if until <= since:
        raise UserError("--to must be later than --from")
    with connect(settings) as conn:
        stored = DatabaseReplay(conn, since, until)
        events = _write_events(args.output, stored.events(engine))
    print(json.dumps({"rows": stored.rows, "skipped": 0, "events": events}))
    return 0


def _write_events(path: str, events: Iterable[AnalyticsEvent]) -> int:
    from analytics.replay import write_events

    try:
        with open(path, "w", encoding="utf-8") as out:
            return write_events(events, out)
    except OSError as exc:
        raise UserError(f"cannot write {path}: {exc.strerror}") from None
