"""`vigil demo`: the whole platform on this machine, with simulated patients."""

from __future__ import annotations

import argparse
import logging

from vigil.commands import Commands, UserError, duration, port, positive_int
from vigil.settings import Settings


def register(commands: Commands) -> None:
    demo = commands.add_parser("demo", help="run the whole platform with simulated patients")
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
    demo.add_argument(
        "--timescaledb",
        action="store_true",
        help="store in TimescaleDB (hypertable, compression, continuous aggregate) in the "
        "embedded PostgreSQL; `make timescaledb` installs it",
    )
    demo.set_defaults(run=_demo)


def _demo(args: argparse.Namespace, settings: Settings) -> int:
    from demo.supervisor import Demo
    from vigil.embedded.postgres import has_extension
    from vigil.embedded.processes import port_is_free

    if not port_is_free(args.api_port, settings.api_host):
        raise UserError(f"port {args.api_port} is already in use; choose another with --api-port")
    if args.timescaledb and settings.database_url:
        raise UserError(
            "--timescaledb is for the embedded PostgreSQL, and VIGIL_DATABASE_URL names another "
            "database (whose server decides its storage): unset it, or leave --timescaledb out"
        )
    if args.timescaledb and not has_extension("timescaledb"):
        raise UserError(
            "--timescaledb: TimescaleDB is not installed in the embedded PostgreSQL; install it "
            "with `make timescaledb` (from ../shared/timescaledb), or leave --timescaledb out "
            "to store in native partitions"
        )
    if settings.log_level.upper() == "INFO":
        logging.getLogger().setLevel(logging.WARNING)  # the demo talks through status lines
    return Demo(settings, args).run()
