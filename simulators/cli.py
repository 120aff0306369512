"""`vigil simulate`, and the simulated wearables behind `vigil gateway --simulate N`.

``simulate --trace`` replays a capture from a real wearable through simulated devices and
the real gateway; ``simulate --patients N`` serves a ward's wearables (and the gateway's
controller) to a gateway in another process. :func:`simulated_ward` is what the dispatcher
hands `vigil gateway` for ``--simulate``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from vigil.commands import (
    Commands,
    UserError,
    asyncio_stop_event,
    duration,
    positive_int,
    require_broker,
)
from vigil.settings import Settings

if TYPE_CHECKING:
    from gateway.service import Backends
    from simulators.physiology import Scripted


def register(commands: Commands) -> None:
    simulate = commands.add_parser(
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
        "--interval",
        type=duration,
        default=1.0,
        metavar="SECONDS",
        help="with --patients: time between the wearables' measurements (1s; 100ms sends ten "
        "times as many readings, the physiology still in real time)",
    )
    simulate.add_argument(
        "--scripted",
        nargs="?",
        const="",
        metavar="FILE",
        help="with --patients: patients go through scripted episodes, the demo's (a "
        "desaturation, a tachycardia) or those of FILE, JSON: "
        '{"p0003": [{"vital": "spo2", "target": 80, "start_s": 30, "hold_s": 40}]}',
    )
    simulate.add_argument(
        "--speed", type=float, default=1.0, help="replay speed; 10 plays ten times faster (1)"
    )
    simulate.set_defaults(run=_simulate)


@contextlib.asynccontextmanager
async def simulated_ward(
    args: argparse.Namespace,
) -> AsyncIterator[tuple[dict[str, str], Backends]]:
    """``args.simulate`` patients' wearables on a virtual link in this process, with the
    first patients' scripted episodes when ``args.scripted``; what they send is appended to
    ``args.sent_log`` when given."""
    from gateway.service import Backends
    from simulators.ble import Ward
    from simulators.physiology import DEMO_SCRIPTS

    with contextlib.ExitStack() as files:
        sent_log = files.enter_context(open(args.sent_log, "a")) if args.sent_log else None
        ward = Ward(
            args.simulate, sent_log=sent_log, scripts=DEMO_SCRIPTS if args.scripted else None
        )
        central = await ward.start()
        try:
            yield ward.pairings, Backends(*central.backends())
        finally:
            await ward.stop()


def _simulate(args: argparse.Namespace, settings: Settings) -> int:
    if args.patients:
        return _serve_ward(args, settings)
    if args.scripted is not None or args.interval != 1.0:
        raise UserError("--scripted and --interval go with --patients N")
    return _replay_trace(args, settings)


def _replay_trace(args: argparse.Namespace, settings: Settings) -> int:
    from gateway.service import Backends, GatewayService
    from simulators.trace import TracePlayer, parse_trace

    require_broker(settings, settings.gateway_id)
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

    print(json.dumps(asyncio.run(run())))
    return 0


def _serve_ward(args: argparse.Namespace, settings: Settings) -> int:
    from gateway.pairing import Pairing, Registry
    from simulators.ble import Ward

    if args.interval <= 0:
        raise UserError("--interval must be above 0 (e.g. 1s, or 100ms for ten times the rate)")
    scripts = _scripts(args.scripted, args.patients) if args.scripted is not None else None

    async def run() -> None:
        stop = asyncio_stop_event()
        with contextlib.ExitStack() as files:
            sent_log = files.enter_context(open(args.sent_log, "a")) if args.sent_log else None
            ward = Ward(args.patients, interval_s=args.interval, sent_log=sent_log, scripts=scripts)
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


def _scripts(path: str, patients: int) -> dict[int, tuple[Scripted, ...]]:
    """The episodes of ``--scripted``, by patient index: the demo's without a file. A
    benchmark writes the file to put its episodes where its faults are."""
    from simulators.physiology import DEMO_SCRIPTS, Scripted

    if not path:
        return DEMO_SCRIPTS
    try:
        with open(path, encoding="utf-8") as file:
            document = json.load(file)
    except OSError as exc:
        raise UserError(f"cannot read --scripted {path}: {exc.strerror}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserError(f"--scripted {path} is not JSON ({exc})") from None
    if not isinstance(document, dict):
        raise UserError(f'--scripted {path}: expected {{"p0001": [episode, ...], ...}}')
    scripts: dict[int, tuple[Scripted, ...]] = {}
    for patient, episodes in document.items():
        index = int(patient[1:]) - 1 if patient[1:].isdigit() else -1
        if not patient.startswith("p") or not 0 <= index < patients:
            raise UserError(f"--scripted {path}: {patient!r} is not one of p0001..p{patients:04d}")
        try:
            scripts[index] = tuple(Scripted(**episode) for episode in episodes)
        except TypeError as exc:
            raise UserError(f"--scripted {path}: {patient}: {_EPISODE} ({exc})") from None
        if any(e.vital not in ("spo2", "heart_rate") for e in scripts[index]):
            raise UserError(f"--scripted {path}: {patient}: {_EPISODE}")
    return scripts


_EPISODE = (
    'an episode is {"vital": "spo2" or "heart_rate", "target": N, "start_s": N, "hold_s": N}'
    ', with "ramp_s" optional'
)
