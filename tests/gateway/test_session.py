"""A device session reads what the wearable says it is, over bleak and the simulators' link."""

from __future__ import annotations

import asyncio

import pytest
from bleak import BleakScanner

from gateway.session import DeviceSession
from simulators.ble import HeartRateStrap, VirtualRadio
from simulators.physiology import Physiology
from vigil.wire.status import DeviceReport, GatewayDevices

pytestmark = pytest.mark.slow
ADDRESS = "C1:00:00:00:00:07"


async def strap_session(clock_ms: int) -> tuple[HeartRateStrap, DeviceSession]:
    """A simulated strap on the virtual radio, and a session for it (not yet running)
    whose clock stands still at ``clock_ms``."""
    radio = VirtualRadio()
    strap = HeartRateStrap(radio, ADDRESS, "HRM test", Physiology.seeded(7))
    await strap.power_on()
    central = radio.central()
    await central.power_on()
    scanner_backend, client_backend = central.backends()
    device = await BleakScanner.find_device_by_address(
        ADDRESS, timeout=2.0, backend=scanner_backend
    )
    assert device is not None
    return strap, DeviceSession(device, "p0001", lambda _: None, lambda: clock_ms, client_backend)


def test_the_device_information_reaches_the_report_serial_number_included() -> None:
    async def run() -> DeviceReport:
        _, session = await strap_session(0)
        task = asyncio.create_task(session.run())
        try:
            for _ in range(100):
                if session.state.state == "connected":
                    break
                await asyncio.sleep(0.05)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        return session.state.report()

    report = asyncio.run(run())
    assert report.state == "connected"
    assert (report.manufacturer, report.model, report.firmware) == (
        "Vigil Simulators",
        "heart-rate-strap",
        "1.0.0",
    )
    assert report.serial == "SIM-C10000000007"
    # ... and onto the wire, where a gateway before the serial sent none.
    (decoded,) = GatewayDevices.decode(GatewayDevices((report,)).encode()).devices
    assert decoded.serial == "SIM-C10000000007"
    older = GatewayDevices.decode(b'[{"address": "A", "patient": "p", "state": "s"}]')
    assert older.devices[0].serial is None


def test_the_report_says_when_the_device_last_measured_at_a_time_of_its_own() -> None:
    async def run() -> tuple[int | None, int | None]:
        strap, session = await strap_session(1234)
        task = asyncio.create_task(session.run())
        try:
            for _ in range(100):
                if session.state.state == "connected" and session.state.battery is not None:
                    break
                await asyncio.sleep(0.05)
            before = session.state.report().last_reading_ms  # only the battery was read
            await strap.tick(1.0)
            for _ in range(100):
                if session.state.last_reading_ms is not None:
                    break
                await asyncio.sleep(0.05)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        return before, session.state.report().last_reading_ms

    before, after = asyncio.run(run())
    # The clock stands still at 1234, which the battery level took on connecting: the
    # measurement is stamped the next millisecond, so the store never takes it for the same.
    assert (before, after) == (None, 1235)
