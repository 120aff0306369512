"""Which wearable belongs to which patient: the gateway's pairing registry, and pairing.

A patient pairs a device once (`vigil pair`); the registry, a small JSON file beside the
outbox, tells the gateway what to connect to and whose readings they are. Only devices the
patient chose are recorded: a neighbour's heart-rate strap seen in a scan never is.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from bleak import BleakClient, BleakScanner
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData
from bleak.exc import BleakError

from gateway.files import replace_private
from gateway.gatt import uuids
from gateway.service import Backends
from vigil.wire.batch import PATIENT_ID

KINDS = {
    uuids.HEART_RATE_SERVICE: "heart-rate-strap",
    uuids.PULSE_OXIMETER_SERVICE: "pulse-oximeter",
}


class PairingError(Exception):
    """An expected failure a patient can act on; the message says what to do."""


@dataclass(frozen=True, slots=True)
class Pairing:
    address: str
    patient: str
    kind: str
    name: str
    paired_at: str
    bonded: bool


@dataclass(frozen=True, slots=True)
class Nearby:
    address: str
    name: str
    kind: str
    rssi: int
    device: BLEDevice


class Registry:
    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> list[Pairing]:
        if not self.path.exists():
            return []
        try:
            return [Pairing(**entry) for entry in json.loads(self.path.read_text())]
        except (ValueError, TypeError) as exc:
            raise PairingError(f"the pairing registry {self.path} is damaged ({exc})") from None

    def pairings(self) -> dict[str, str]:
        """Device address -> patient, what the gateway service needs."""
        return {p.address: p.patient for p in self.load()}

    def save(self, pairings: list[Pairing]) -> None:
        """Write atomically: a power cut mid-write must not lose every pairing."""
        replace_private(self.path, json.dumps([asdict(p) for p in pairings], indent=2))

    def add(self, pairing: Pairing) -> None:
        self.save([p for p in self.load() if p.address != pairing.address] + [pairing])

    def remove(self, address: str) -> Pairing:
        pairings = self.load()
        found = next((p for p in pairings if p.address == address.upper()), None)
        if found is None:
            raise PairingError(f"{address} is not paired (see `vigil pair --list`)")
        self.save([p for p in pairings if p is not found])
        return found


async def scan(backends: Backends, seconds: float = 5.0) -> list[Nearby]:
    """Wearables advertising a Heart Rate or Pulse Oximeter service, strongest first."""
    seen: dict[str, Nearby] = {}

    def on_advertisement(device: BLEDevice, adv: AdvertisementData) -> None:
        kind = next((KINDS[u] for u in adv.service_uuids if u in KINDS), "unknown")
        seen[device.address.upper()] = Nearby(
            device.address.upper(), adv.local_name or device.name or "?", kind, adv.rssi, device
        )

    scanner = BleakScanner(
        on_advertisement, service_uuids=list(uuids.MONITORED_SERVICES), backend=backends.scanner
    )
    try:
        await scanner.start()
        await asyncio.sleep(seconds)
        await scanner.stop()
    except FileNotFoundError:
        raise PairingError(
            "no Bluetooth service: BlueZ (bluetoothd) and D-Bus must be running "
            "(sudo systemctl start bluetooth)"
        ) from None
    except PermissionError:
        raise PairingError(
            "permission denied by Bluetooth: run as a user in the 'bluetooth' group"
        ) from None
    except BleakError as exc:
        if "adapter" in str(exc).lower():
            raise PairingError("no Bluetooth adapter found: plug one in or enable it") from None
        if "accessdenied" in str(exc).lower().replace(" ", ""):
            raise PairingError(
                "permission denied by Bluetooth: run as a user in the 'bluetooth' group"
            ) from None
        raise PairingError(f"Bluetooth scan failed: {exc}") from None
    return sorted(seen.values(), key=lambda n: (-n.rssi, n.address))


async def pair(
    nearby: Nearby, patient: str, backends: Backends, registry: Registry, bond: bool = True
) -> Pairing:
    """Connect once, bond where the device supports it, and record the pairing."""
    if not PATIENT_ID.fullmatch(patient):
        raise PairingError(
            f"patient id {patient!r} must be 1-36 letters, digits, '-' or '.' (e.g. p0001)"
        )
    bonded = False
    client = BleakClient(nearby.device, backend=backends.client, timeout=15)
    try:
        await client.connect()
        if bond:
            try:
                await client.pair()
                bonded = True
            except (BleakError, NotImplementedError):
                bonded = False  # many wearables work without bonding; the data is not secret-keyed
    except (BleakError, TimeoutError) as exc:
        raise PairingError(
            f"could not connect to {nearby.name} ({nearby.address}): {exc}"
        ) from None
    finally:
        if client.is_connected:
            await client.disconnect()
    pairing = Pairing(
        nearby.address,
        patient,
        nearby.kind,
        nearby.name,
        datetime.now(UTC).isoformat(timespec="seconds"),
        bonded,
    )
    registry.add(pairing)
    return pairing


async def interactive(
    backends: Backends,
    registry: Registry,
    ask: Callable[[str], str],
    say: Callable[[str], None],
    seconds: float = 5.0,
) -> list[Pairing]:
    """Scan, list what is nearby, and pair the devices the patient picks."""
    say(f"Scanning for heart-rate and pulse-oximeter devices for {seconds:.0f} s ...")
    found = await scan(backends, seconds)
    if not found:
        raise PairingError(
            "nothing found: wake the device (put the strap on, clip the oximeter to a finger), "
            "bring it close to the gateway and try again"
        )
    known = registry.pairings()
    for i, n in enumerate(found, 1):
        note = f"  (paired to {known[n.address]})" if n.address in known else ""
        say(f"{i:>2}. {n.name:<20} {n.address}  {n.kind:<17} {n.rssi:>4} dBm{note}")
    paired: list[Pairing] = []
    while True:
        answer = ask("Pair which device? (number, or Enter to finish) ").strip()
        if not answer:
            return paired
        if not answer.isdigit() or not 1 <= int(answer) <= len(found):
            say(f"Please type a number from 1 to {len(found)}, or press Enter to finish.")
            continue
        chosen = found[int(answer) - 1]
        patient = ask(f"Patient id for {chosen.name}: ").strip()
        try:
            pairing = await pair(chosen, patient, backends, registry)
        except PairingError as exc:
            say(str(exc))
            continue
        say(
            f"Paired {pairing.name} ({pairing.address}) to {pairing.patient}"
            f"{'' if pairing.bonded else ' (no bonding: the device does not ask for it)'}."
        )
        paired.append(pairing)
