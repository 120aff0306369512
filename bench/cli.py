"""`vigil bench COMPONENT`: measure one part of Vigil; the last line printed is JSON."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from vigil.commands import Commands, UserError, duration, positive_int
from vigil.settings import Settings


def register(commands: Commands) -> None:
    bench = commands.add_parser("bench", help="measure a component; the last line printed is JSON")
    components = bench.add_subparsers(dest="bench_command", required=True, metavar="COMPONENT")

    gateway = components.add_parser(
        "gateway", help="one gateway process serving simulated wearables: CPU, memory, losses"
    )
    gateway.add_argument(
        "--devices", type=positive_int, default=200, help="wearables, two per patient (200)"
    )
    gateway.add_argument("--duration", type=duration, default=60.0, help="measuring window (60s)")
    gateway.add_argument(
        "--outage",
        type=duration,
        default=0.0,
        help="stop the broker this long once devices stream (e.g. 10m), then check the drain",
    )
    gateway.set_defaults(run=_gateway)

    analytics = components.add_parser(
        "analytics", help="readings/s through the anomaly core on one core, state per stream"
    )
    analytics.add_argument(
        "--streams", type=positive_int, default=100_000, help="(patient, metric) streams (100000)"
    )
    analytics.add_argument(
        "--seconds", type=positive_int, default=20, help="seconds of readings to score (20)"
    )
    analytics.set_defaults(run=_analytics)

    alerts = components.add_parser(
        "alerts",
        help="the default rules over labelled scenarios: sensitivity, false events, delay",
    )
    alerts.add_argument(
        "--patients", type=positive_int, default=20, help="patients per scenario kind (20)"
    )
    alerts.add_argument(
        "--hours", type=positive_int, default=24, help="hours of readings per patient (24)"
    )
    alerts.add_argument("--seed", type=int, default=1, help="scenario seed (1)")
    alerts.add_argument(
        "--optional",
        action="append",
        default=[],
        metavar="RULE",
        help="turn an optional rule on as well (hr_rising, novelty; repeatable)",
    )
    alerts.add_argument(
        "--real",
        type=Path,
        metavar="DIR",
        help="real recordings too (e.g. ../shared/real-vitals): each night as recorded, and "
        "copies with labelled episodes laid over it",
    )
    alerts.add_argument(
        "--copies",
        type=positive_int,
        default=10,
        help="with --real: copies of each night per kind of episode laid over it (10)",
    )
    alerts.set_defaults(run=_alerts)

    latency = components.add_parser(
        "latency",
        help="ms from a reading's publication to the care team's webhook, whole pipeline",
    )
    latency.add_argument(
        "--patients", type=positive_int, default=5000, help="patients at 1 Hz (5000)"
    )
    latency.add_argument(
        "--gateways", type=positive_int, default=50, help="gateways they are spread over (50)"
    )
    latency.add_argument(
        "--seconds", type=positive_int, default=60, help="seconds of streaming (60)"
    )
    latency.set_defaults(run=_latency)

    ingest = components.add_parser(
        "ingest", help="stored readings/s through broker and ingest, against raw binary COPY"
    )
    ingest.add_argument(
        "--readings", type=positive_int, default=2_000_000, help="readings to send (2000000)"
    )
    ingest.add_argument(
        "--batch", type=positive_int, default=500, help="readings per gateway batch (500)"
    )
    ingest.add_argument(
        "--gateways", type=positive_int, default=100, help="gateways sending them (100)"
    )
    ingest.add_argument(
        "--timescaledb",
        action="store_true",
        help="into a hypertable (TimescaleDB installed in the embedded PostgreSQL)",
    )
    ingest.add_argument(
        "--database-url",
        metavar="URL",
        help="into this (empty) database instead of an embedded one, whatever its storage",
    )
    ingest.set_defaults(run=_ingest)

    storage = components.add_parser(
        "storage",
        help="bytes per patient-day of oximeter data, raw and compressed (TimescaleDB), "
        "and in native partitions",
    )
    storage.add_argument("--patients", type=positive_int, default=1000, help="patients (1000)")
    storage.add_argument(
        "--hours", type=positive_int, default=24, help="hours of 1 Hz SpO2 and pulse rate (24)"
    )
    storage.set_defaults(run=_storage)

    api = components.add_parser(
        "api", help="an ordinary request's latency with and without open alert streams"
    )
    api.add_argument("--streams", type=positive_int, default=200, help="streams held open (200)")
    api.add_argument(
        "--requests", type=positive_int, default=300, help="timed requests each way (300)"
    )
    api.set_defaults(run=_api)

    fhir = components.add_parser(
        "fhir", help="a FHIR client's wait on a big table: a 24-h page and $stats over 30 days"
    )
    fhir.add_argument("--patients", type=positive_int, default=8, help="patients (8)")
    fhir.add_argument("--days", type=positive_int, default=30, help="days of data each (30)")
    fhir.add_argument(
        "--interval", type=positive_int, default=3, help="seconds between readings (3)"
    )
    fhir.add_argument("--requests", type=positive_int, default=300, help="timed requests (300)")
    fhir.set_defaults(run=_fhir)

    web = components.add_parser(
        "web",
        help="page loads in headless Chromium: the central station, a patient's trends, "
        "a patient's own view",
    )
    web.add_argument(
        "--patients", type=positive_int, default=200, help="patients on the station (200)"
    )
    web.add_argument(
        "--days", type=positive_int, default=30, help="days of one-minute rollup each (30)"
    )
    web.add_argument("--repeats", type=positive_int, default=20, help="loads of each page (20)")
    web.set_defaults(run=_web)

    faults = components.add_parser(
        "faults",
        help="the whole pipeline under each fault of the matrix: readings lost or doubled, "
        "alerts expected, raised and notified (needs root for the network and disk faults)",
    )
    faults.add_argument(
        "--readings", type=positive_int, default=100_000, help="readings per fault (100000)"
    )
    faults.add_argument(
        "--only", action="append", default=[], metavar="NAME", help="this fault only (repeatable)"
    )
    faults.add_argument(
        "--outage", type=duration, default=600.0, help="broker_stop: the broker's outage (10m)"
    )
    faults.add_argument(
        "--cut",
        type=duration,
        default=120.0,
        help="network_cut: how long (2m; past 45 s the broker drops the gateway's connection)",
    )
    faults.add_argument("--folder", type=Path, help="keep each run's logs and files here")
    faults.add_argument(
        "--patients", type=positive_int, default=20, help="patients, two wearables each (20)"
    )
    faults.add_argument(
        "--interval",
        type=duration,
        default=0.05,
        help="between a wearable's measurements (50ms: 20 patients send about 1,200/s)",
    )
    faults.add_argument(
        "--parallel", type=positive_int, default=1, help="faults run side by side (1)"
    )
    faults.set_defaults(run=_faults)


def _report(run: Callable[[], dict[str, Any]]) -> int:
    """Run a benchmark and print its figures; one whose processes cannot start says so."""
    try:
        result = run()
    except RuntimeError as exc:
        raise UserError(str(exc)) from None
    print(json.dumps(result))
    return 0


def _gateway(args: argparse.Namespace, _settings: Settings) -> int:
    from bench.gateway import GatewayBench

    if args.devices % 2:
        raise UserError(
            f"--devices {args.devices}: use an even number (a strap and an oximeter each)"
        )
    return _report(GatewayBench(args.devices, args.duration, args.outage).run)


def _analytics(args: argparse.Namespace, _settings: Settings) -> int:
    from bench.analytics import bench_analytics

    if args.streams < 2:
        raise UserError("--streams: at least 2 (a patient's SpO2 and heart rate)")
    return _report(lambda: bench_analytics(args.streams, args.seconds))


def _alerts(args: argparse.Namespace, _settings: Settings) -> int:
    from analytics.rules import OPTIONAL
    from bench.alerts import bench_alerts

    unknown = set(args.optional) - {r.name for r in OPTIONAL}
    if unknown:
        names = ", ".join(r.name for r in OPTIONAL)
        raise UserError(f"--optional {', '.join(sorted(unknown))}: one of {names}")
    if args.real is not None and not args.real.is_dir():
        raise UserError(f"--real {args.real}: not a folder of recordings")
    optional = tuple(args.optional)
    return _report(
        lambda: bench_alerts(args.patients, args.hours, args.seed, optional, args.real, args.copies)
    )


def _latency(args: argparse.Namespace, _settings: Settings) -> int:
    from bench.latency import LatencyBench

    if args.patients % args.gateways:
        raise UserError(
            f"--patients {args.patients} must split evenly over --gateways {args.gateways}"
        )
    if args.seconds <= 15:
        raise UserError("--seconds: more than 15 (events start at the tenth second)")
    return _report(LatencyBench(args.patients, args.gateways, args.seconds).run)


def _ingest(args: argparse.Namespace, settings: Settings) -> int:
    from bench.ingest import IngestBench
    from vigil.embedded.postgres import has_extension
    from vigil.wire.batch import MAX_READINGS

    if args.batch > MAX_READINGS:
        raise UserError(f"--batch {args.batch}: a batch holds at most {MAX_READINGS}")
    if args.timescaledb and args.database_url:
        raise UserError("--timescaledb or --database-url: the database is the one or the other")
    if args.timescaledb and not has_extension("timescaledb"):
        raise UserError(
            "--timescaledb: TimescaleDB is not installed in the embedded PostgreSQL; "
            "install it with ../shared/timescaledb/install.sh .venv (or make timescaledb)"
        )
    bench = IngestBench(
        args.readings,
        args.batch,
        args.gateways,
        settings,
        timescaledb=args.timescaledb,
        database_url=args.database_url,
    )
    return _report(bench.run)


def _storage(args: argparse.Namespace, _settings: Settings) -> int:
    from bench.storage import StorageBench
    from vigil.embedded.postgres import has_extension

    if not has_extension("timescaledb"):
        raise UserError(
            "bench storage measures TimescaleDB's compression, and TimescaleDB is not "
            "installed in the embedded PostgreSQL; install it with `make timescaledb` "
            "(from ../shared/timescaledb)"
        )
    return _report(StorageBench(args.patients, args.hours).run)


def _api(args: argparse.Namespace, _settings: Settings) -> int:
    import tempfile

    from bench.api import ApiBench

    with tempfile.TemporaryDirectory(prefix="vigil-bench-api-") as folder:
        return _report(ApiBench(args.streams, args.requests, Path(folder)).run)


def _fhir(args: argparse.Namespace, _settings: Settings) -> int:
    import tempfile

    from bench.fhir import FhirBench

    with tempfile.TemporaryDirectory(prefix="vigil-bench-fhir-") as folder:
        bench = FhirBench(args.patients, args.days, args.interval, args.requests, Path(folder))
        return _report(bench.run)


def _web(args: argparse.Namespace, _settings: Settings) -> int:
    import tempfile

    from bench.web import WebBench

    with tempfile.TemporaryDirectory(prefix="vigil-bench-web-") as folder:
        return _report(WebBench(args.patients, args.days, args.repeats, Path(folder)).run)


def _faults(args: argparse.Namespace, _settings: Settings) -> int:
    from bench.faults import FaultBench, Options

    try:
        options = Options(args.readings, args.outage, args.cut, args.patients, args.interval)
        bench = FaultBench(options, args.only, args.folder, args.parallel)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    return _report(bench.run)
