"""A ward of simulated patients, each wearing a chest strap and a pulse oximeter.

The ward owns the virtual radio, powers the wearables on, ticks them once a second and
keeps a log of every reading it actually sent, which is what end-to-end tests compare the
database against.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from dataclasses import asdict, dataclass
from typing import Any, TextIO

from bumble.transport import Transport

from gateway.bumble_host import GATEWAY_ADDRESS, BumbleCentral
from simulators.ble.radio import VirtualRadio
from simulators.ble.wearables import HeartRateStrap, PulseOximeter, Wearable
from simulators.physiology import Physiology, Scripted

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SentReading:
    address: str
    patient: str
    metric: str
    value: float


def patient_id(index: int) -> str:
    return f"p{index + 1:04d}"


def strap_address(index: int) -> str:
    return f"C1:00:00:00:{index >> 8:02X}:{index & 0xFF:02X}"


def oximeter_address(index: int) -> str:
    return f"C2:00:00:00:{index >> 8:02X}:{index & 0xFF:02X}"


class Ward:
    def __init__(
        self,
        patients: int,
        seed: int = 1,
        interval_s: float = 1.0,
        sent_log: TextIO | None = None,
        scripts: dict[int, tuple[Scripted, ...]] | None = None,
    ) -> None:
        if patients < 1 or patients > 0xFFFF:
            raise ValueError("a ward holds 1 to 65535 patients")
        self.patients = patients
        self.seed = seed
        self.interval_s = interval_s
        self.sent: list[SentReading] = []
        self._sent_log = sent_log
        """Where each sent reading is also written, one JSON line each, flushed every tick:
        the record survives when the process that ran the ward is killed."""
        self.wearables: list[Wearable] = []
        self.pairings: dict[str, str] = {}
        """Device address -> patient id, what a patient sets up with `vigil pair`."""
        self._physiologies: list[Physiology] = []
        self.scripts = scripts or {}
        """Episodes per patient index (see simulators.physiology.Scripted)."""
        self._radio: VirtualRadio | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self._host: Any = None
        """With :meth:`serve`, bumble's TCP server sink towards the gateway's host process
        (its ``transport`` is None while no host is connected)."""

    async def start(self) -> BumbleCentral:
        """Power every wearable on and return the gateway's central on the same link."""
        radio = await self._power_on()
        central = radio.central()
        await central.power_on()
        return central

    async def serve(self, hci_spec: str) -> Transport:
        """Power every wearable on and serve the gateway's controller on ``hci_spec``, for a
        gateway in another process (``vigil gateway --hci``)."""
        radio = await self._power_on()
        transport = await radio.serve_hci(hci_spec, GATEWAY_ADDRESS)
        self._host = transport.sink if hasattr(transport.sink, "transport") else None
        return transport

    async def _power_on(self) -> VirtualRadio:
        self._radio = radio = VirtualRadio()
        for i in range(self.patients):
            patient = patient_id(i)
            physiology = Physiology.seeded(self.seed * 100_003 + i, self.scripts.get(i, ()))
            self._physiologies.append(physiology)
            strap = HeartRateStrap(radio, strap_address(i), f"HRM {patient}", physiology)
            oximeter = PulseOximeter(radio, oximeter_address(i), f"PLX {patient}", physiology)
            for wearable in (strap, oximeter):
                self.wearables.append(wearable)
                self.pairings[wearable.address] = patient
                await wearable.power_on()
        self._task = asyncio.create_task(self._run(), name="ward")
        return radio

    async def _run(self) -> None:
        next_tick = time.monotonic()
        served = False
        while not self._stopping.is_set():
            # A tick that starts late does not make the next one early: ticks back to back
            # would reach the gateway in the same millisecond, and two readings of a device
            # stamped alike are one row in the store (its key has the time, not the tick).
            next_tick = max(next_tick, time.monotonic()) + self.interval_s
            served = await self._follow_gateway_host(served)
            for physiology in self._physiologies:
                physiology.advance(self.interval_s)
            for wearable in self.wearables:
                patient = self.pairings[wearable.address]
                sent = await wearable.tick(self.interval_s)
                for metric, values in sent.items():
                    readings = [SentReading(wearable.address, patient, metric, v) for v in values]
                    self.sent.extend(readings)
                    if self._sent_log is not None:
                        self._sent_log.writelines(json.dumps(asdict(r)) + "\n" for r in readings)
            if self._sent_log is not None:
                self._sent_log.flush()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), next_tick - time.monotonic())

    async def _follow_gateway_host(self, served: bool) -> bool:
        """Before each tick: whether a gateway host is connected to the controller this ward
        serves. One whose process died (its HCI connection closed) is gone from the air:
        real wearables notice at their link's supervision timeout, drop the link and
        advertise again, so that the gateway, restarted, finds them. bumble's virtual
        controller never notices (its reset clears nothing): the wearables would go on
        notifying, and logging as sent, readings nobody receives, and a restarted gateway
        would never see them advertise. So the ward drops their links before it ticks
        again. Only bumble's TCP server transport says whether a host is connected."""
        if self._host is None:
            return False
        present = self._host.transport is not None
        if served and not present:
            log.info("the gateway's host went away; its wearables drop their links")
            for wearable in self.wearables:
                await wearable.disconnect_all()
        return present

    async def stop(self) -> None:
        """Stop measuring once the tick under way is over: a tick cut short would have
        notified readings it never logged. Wearables stay powered so in-flight
        notifications arrive."""
        if self._task is not None:
            self._stopping.set()
            await self._task
            self._task = None
