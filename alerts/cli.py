"""`vigil alerts` (the service; `list`, `tail`, `ack`, `resolve`, `snooze`) and `vigil team`."""

from __future__ import annotations

import argparse
import json
import logging
from datetime import datetime
from datetime import time as clock

from vigil.commands import (
    Commands,
    UserError,
    positive_int,
    require_broker,
    require_database,
    stop_event,
)
from vigil.settings import Settings

log = logging.getLogger(__name__)
_CHANGES = {"ack": "acknowledged", "resolve": "resolved", "snooze": "snoozed"}


def register(commands: Commands) -> None:
    alerts = commands.add_parser(
        "alerts", help="run the alerts service; `alerts list|ack|resolve|snooze` manage alerts"
    )
    alerts.add_argument(
        "action",
        nargs="?",
        choices=["list", "tail", *_CHANGES],
        help="(none: run the service); tail: follow alert changes as they happen",
    )
    alerts.add_argument(
        "alert", nargs="?", type=positive_int, help="alert id (ack, resolve, snooze)"
    )
    alerts.add_argument("--by", metavar="NAME", help="who acknowledges, resolves or snoozes")
    alerts.add_argument("--note", default="", help="a note kept with the change")
    alerts.add_argument("--until", metavar="TIME", help="snooze: until (ISO 8601)")
    alerts.add_argument("--patient", help="list: one patient's alerts")
    alerts.add_argument("--all", action="store_true", help="list: resolved ones too")
    alerts.add_argument("--json", action="store_true", help="list: one JSON document")
    alerts.set_defaults(run=_alerts)

    team = commands.add_parser(
        "team", help="care teams: who is told of a patient's alerts, in order"
    )
    actions = team.add_subparsers(dest="team_command", required=True, metavar="ACTION")
    add = actions.add_parser("add", help="create or change a team")
    add.add_argument("team")
    add.add_argument("--name", default="")
    add.add_argument("--timezone", default="UTC", help="for quiet hours (Europe/London)")
    add.add_argument("--quiet", metavar="HH:MM-HH:MM", help="no low priority (22:00-07:00)")
    member = actions.add_parser("member", help="add or change a member")
    member.add_argument("team")
    member.add_argument("member")
    member.add_argument("--tier", type=positive_int, required=True, help="1 is told first")
    member.add_argument(
        "--contact", required=True, help="an apprise URL (mailto://, ntfy://, slack:// ...)"
    )
    member.add_argument(
        "--until", metavar="TIME", help="on the team until then (ISO 8601), e.g. a locum"
    )
    assign = actions.add_parser("assign", help="a patient to a team")
    assign.add_argument("patient")
    assign.add_argument("team")
    assign.add_argument("--name", help="the patient's display name, as clinicians know them")
    contact = actions.add_parser(
        "contact", help="a patient's own channel for their messages (an apprise URL)"
    )
    contact.add_argument("patient")
    contact.add_argument("contact")
    team.set_defaults(run=_team)


def _alerts(args: argparse.Namespace, settings: Settings) -> int:
    if args.action is None:
        return _service(settings)
    if args.action == "list":
        return _list(args, settings)
    if args.action == "tail":
        return _tail(args, settings)
    return _act(args, settings)


def _service(settings: Settings) -> int:
    from alerts.service import AlertsService

    require_database(settings)
    require_broker(settings, settings.alerts_client_id)
    if settings.alerts_webhook_urls and not settings.alerts_webhook_secret:
        raise UserError(
            "webhooks are signed: set VIGIL_ALERTS_WEBHOOK_SECRET to the secret the receivers "
            "check X-Vigil-Signature with"
        )
    stop = stop_event()
    try:
        service = AlertsService(settings)
    except ValueError as exc:  # a messages file or admin URL that cannot be used, named
        raise UserError(str(exc)) from None
    counters = service.run(stop)
    log.info("alerts stopped: %s", counters)
    return 0


def _tail(args: argparse.Namespace, settings: Settings) -> int:
    """The last few alert changes, then each new one as it happens, until Ctrl-C."""
    from alerts.queries import changes_since, latest_change
    from vigil.db.connection import connect

    stop = stop_event()
    with connect(settings, autocommit=True) as conn:
        after = max(0, latest_change(conn) - 10)
        while not stop.is_set():
            for c in changes_since(conn, after, _only(args.patient)):
                note = f" ({c['note']})" if c["note"] else ""
                print(
                    f"{c['at'][:19]} alert {c['alert']} {c['priority']:<6} {c['patient']:<12}"
                    f" {c['rule']}: {c['change']} by {c['actor']}{note}",
                    flush=True,
                )
                after = c["id"]
            stop.wait(1.0)
    return 0


def _list(args: argparse.Namespace, settings: Settings) -> int:
    from alerts.queries import STATES, list_alerts
    from vigil.db.connection import connect

    with connect(settings) as conn:
        alerts = list_alerts(
            conn, STATES["all" if args.all else "open"], _only(args.patient), limit=200
        )
    if args.json:
        listed = [
            {
                "id": a.id,
                "patient": a.patient,
                "family": a.family,
                "rule": a.rule,
                "rules": a.rules,
                "repetitions": a.repetitions,
                "priority": a.priority,
                "state": a.state,
                "inhibited": a.inhibited_by is not None,
                "triggered": str(a.triggered_at),
                "cleared": str(a.cleared_at) if a.cleared_at else None,
                "failed_notifications": a.failed_notifications,
                "team_unreachable": a.team_unreachable,
            }
            for a in alerts
        ]
        print(json.dumps(listed))
        return 0
    if not alerts:
        print("no open alerts" if not args.all else "no alerts")
        return 0
    for a in alerts:
        flags = (" (inhibited)" if a.inhibited_by is not None else "") + (
            f" ({a.failed_notifications} notification(s) FAILED: `vigil alerts list --json`)"
            if a.failed_notifications
            else ""
        )
        if a.team_unreachable:
            flags += " (TEAM UNREACHABLE: nobody of the care team was told; tell them)"
        cleared = "" if a.cleared_at is None else f", cleared {a.cleared_at:%H:%M:%S}"
        if a.cleared_at is not None and a.state == "triggered" and a.priority == "high":
            cleared += " (unacknowledged: `vigil alerts ack`)"
        again = f" x{a.repetitions + 1}" if a.repetitions else ""
        when = f"{a.triggered_at:%Y-%m-%d %H:%M:%S}"
        what = f"{a.id:>6} {a.priority:<6} {a.state:<12} {a.patient:<12} {a.rule}{again}"
        print(f"{what}{flags}  {when}{cleared}")
    return 0


def _act(args: argparse.Namespace, settings: Settings) -> int:
    from alerts.store import AlertError, act
    from vigil.db.connection import connect

    if args.alert is None:
        raise UserError(f"which alert? `vigil alerts {args.action} ID --by NAME`")
    if not args.by:
        raise UserError("say who you are: --by NAME (every change records its actor)")
    until = None
    if args.action == "snooze":
        if not args.until:
            raise UserError("snooze until when? --until 2026-01-01T12:00:00Z")
        until = _time(args.until)
    change = _CHANGES[args.action]
    with connect(settings) as conn:
        try:
            with conn.transaction():
                act(conn, args.alert, change, args.by, args.note, until)
        except AlertError as exc:
            raise UserError(str(exc)) from None
    print(f"alert {args.alert} {change} by {args.by}")
    return 0


def _team(args: argparse.Namespace, settings: Settings) -> int:
    from alerts.teams import add_member, add_patient_contact, add_team, assign
    from vigil.db.connection import connect
    from vigil.db.migrate import migrate

    with connect(settings, autocommit=True) as conn:
        migrate(conn)
        try:
            if args.team_command == "add":
                add_team(conn, args.team, args.name, args.timezone, _quiet_hours(args.quiet))
                print(f"team {args.team} saved")
            elif args.team_command == "member":
                until = _time(args.until) if args.until else None
                add_member(conn, args.team, args.member, args.tier, args.contact, until)
                print(f"{args.member} is tier {args.tier} of {args.team}")
            elif args.team_command == "contact":
                add_patient_contact(conn, args.patient, args.contact)
                print(f"{args.patient} is told on that channel too")
            else:
                assign(conn, args.patient, args.team, args.name)
                print(f"{args.patient}'s alerts go to {args.team}")
        except ValueError as exc:
            raise UserError(str(exc)) from None
    return 0


def _quiet_hours(text: str | None) -> tuple[clock, clock] | None:
    if not text:
        return None
    try:
        start, end = (clock.fromisoformat(t) for t in text.split("-"))
    except ValueError:
        raise UserError(f"--quiet {text!r}: use HH:MM-HH:MM") from None
    return start, end


def _only(patient: str | None) -> list[str] | None:
    return [patient] if patient else None


def _time(text: str) -> datetime:
    """An ``--until`` time: ISO 8601 with its UTC offset."""
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise UserError(f"--until {text!r} is not ISO 8601") from None
    if moment.tzinfo is None:
        raise UserError("--until needs a UTC offset (add Z or +01:00)")
    return moment
