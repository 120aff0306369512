"""`vigil gateway` and `vigil pair`: the commands a patient's home gateway runs.

Like every package's commands, they import what they run only when they run: the dispatcher
loads every package's ``cli`` to build its help, and a server installed without the
gateway's Bluetooth libraries (or a gateway without the platform's) must still start.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING

from vigil.commands import (
    Commands,
    UserError,
    asyncio_stop_event,
    duration,
    pairing,
    port,
    positive_int,
    require_broker,
)
from vigil.settings import Settings

if TYPE_CHECKING:
    from gateway.pairing import Registry
    from gateway.service import Backends, GatewayService

Simulated = Callable[
    [argparse.Namespace], AbstractAsyncContextManager[tuple[dict[str, str], "Backends"]]
]
"""``--simulate N``: simulated wearables in this process, as (pairings, bleak backends).
The dispatcher hands it in from the simulators, so the gateway reaches them only through
bleak's backend seam and never imports them."""


def register(commands: Commands, simulated: Simulated) -> None:
    gateway = commands.add_parser("gateway", help="run the Bluetooth gateway")
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
    gateway.add_argument(
        "--web",
        type=port,
        metavar="PORT",
        help="serve the pairing page on this port, for a patient's phone on the home network "
        "(the gateway prints its address and a code to type)",
    )
    gateway.add_argument(
        "--web-host",
        default="0.0.0.0",
        metavar="ADDRESS",
        help="with --web: the address to listen on (0.0.0.0: every interface; requests from "
        "outside the local network are refused whatever it is)",
    )
    gateway.set_defaults(run=lambda args, settings: _gateway(args, settings, simulated))

    pair = commands.add_parser("pair", help="pair a wearable with a patient on this gateway")
    action = pair.add_mutually_exclusive_group()
    action.add_argument("--list", action="store_true", help="show the paired devices")
    action.add_argument("--remove", metavar="ADDRESS", help="forget a paired device")
    action.add_argument("--device", metavar="ADDRESS", help="pair this device (with --patient)")
    pair.add_argument("--patient", help="the patient id for --device (e.g. p0001)")
    pair.add_argument(
        "--scan-seconds", type=duration, default=5.0, help="how long to look for devices (5s)"
    )
    pair.set_defaults(run=_pair)


def _gateway(args: argparse.Namespace, settings: Settings, simulated: Simulated) -> int:
    from gateway.pairing import Registry
    from gateway.service import GatewayService

    require_broker(settings, settings.gateway_id)
    if (args.sent_log or args.scripted) and not args.simulate:
        raise UserError("--sent-log and --scripted go with --simulate N")
    if args.web is not None and (args.simulate or args.pair):
        raise UserError(
            "--web pairs devices into this gateway's registry, which --simulate and --pair "
            "bypass; for simulated wearables run `vigil simulate --patients N` and "
            "`vigil gateway --hci tcp-client:127.0.0.1:9100 --web PORT`"
        )
    if args.web is None and args.web_host != "0.0.0.0":
        raise UserError("--web-host goes with --web PORT")

    async def run() -> None:
        stop = asyncio_stop_event()
        if args.simulate:
            async with simulated(args) as (pairings, backends):
                await GatewayService(settings, pairings, backends).run(stop)
        elif args.pair:
            await GatewayService(settings, dict(args.pair)).run(stop)
        else:
            registry = Registry(settings.gateway_data_dir / "pairings.json")
            async with _bluetooth(args.hci) as backends:
                service = GatewayService(settings, registry.pairings, backends)
                async with _pairing_page(args, service, registry):
                    await service.run(stop)

    asyncio.run(run())
    return 0


@contextlib.asynccontextmanager
async def _bluetooth(hci: str | None) -> AsyncIterator[Backends]:
    """The system's Bluetooth (bleak's own backend), or bumble's stack on an HCI transport."""
    from gateway.service import Backends

    if hci is None:
        yield Backends()
        return
    from bleak.exc import BleakError

    from gateway.bumble_host import BumbleCentral

    try:
        central = await BumbleCentral.over_hci(hci)
        await asyncio.wait_for(central.power_on(), 10)
    except (BleakError, TimeoutError) as exc:
        raise UserError(f"no Bluetooth controller on {hci} ({exc or 'no answer'})") from None
    try:
        yield Backends(*central.backends())
    finally:
        await central.close()


@contextlib.asynccontextmanager
async def _pairing_page(
    args: argparse.Namespace, service: GatewayService, registry: Registry
) -> AsyncIterator[None]:
    """``--web``: the pairing page, on the service's own loop so it shows its live sessions."""
    if args.web is None:
        yield
        return
    from gateway.web.server import PairingPage

    page = PairingPage(
        registry,
        service.backends,
        lambda: {address: s.state.report() for address, s in service.sessions.items()},
    )
    try:
        url = await page.start(args.web_host, args.web)
    except OSError as exc:
        raise UserError(
            f"cannot serve the pairing page on {args.web_host}:{args.web} "
            f"({exc.strerror or exc}): choose another port with --web, or check --web-host"
        ) from None
    print(f"Pairing page: {url}  code: {page.gate.code}", flush=True)
    try:
        yield
    finally:
        await page.stop()


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


async def _pair_one(args: argparse.Namespace, registry: Registry) -> int:
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
