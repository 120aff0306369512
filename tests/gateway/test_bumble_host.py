"""The bleak backend over bumble: bleak's own façade, real GATT underneath."""

import asyncio

import pytest
from bleak import BleakClient, BleakScanner
from bleak.exc import BleakError
from bleak.uuids import normalize_uuid_16

from gateway.bumble_host import BumbleCentral
from gateway.gatt import parse_battery_level, parse_heart_rate_measurement, uuids
from simulators.ble import HeartRateStrap, PulseOximeter, VirtualRadio
from simulators.physiology import Physiology
from vigil.embedded.processes import free_port

pytestmark = pytest.mark.slow


async def world() -> tuple[HeartRateStrap, PulseOximeter, BumbleCentral]:
    radio = VirtualRadio()
    physiology = Physiology.seeded(7)
    strap = HeartRateStrap(radio, "C1:00:00:00:00:01", "HRM test", physiology)
    oximeter = PulseOximeter(radio, "C2:00:00:00:00:01", "PLX test", physiology)
    await strap.power_on()
    await oximeter.power_on()
    central = radio.central()
    await central.power_on()
    return strap, oximeter, central


def test_scanner_filters_by_service_uuid() -> None:
    async def run() -> dict[str, list[str]]:
        _, _, central = await world()
        scanner_backend, _ = central.backends()
        found = await BleakScanner.discover(
            timeout=1.0,
            service_uuids=[uuids.HEART_RATE_SERVICE],
            backend=scanner_backend,
            return_adv=True,
        )
        return {d.address: a.service_uuids for d, a in found.values()}

    found = asyncio.run(run())
    assert list(found) == ["C1:00:00:00:00:01"]
    assert uuids.HEART_RATE_SERVICE in found["C1:00:00:00:00:01"]


def test_client_reads_subscribes_and_sees_a_peripheral_disconnect() -> None:
    async def run() -> tuple[int, list[int], bool, bool]:
        strap, _, central = await world()
        scanner_backend, client_backend = central.backends()
        device = await BleakScanner.find_device_by_address(
            "C1:00:00:00:00:01", timeout=2.0, backend=scanner_backend
        )
        assert device is not None
        dropped = asyncio.Event()
        client = BleakClient(
            device, disconnected_callback=lambda _c: dropped.set(), backend=client_backend
        )
        await client.connect()
        battery = parse_battery_level(bytes(await client.read_gatt_char(uuids.BATTERY_LEVEL)))
        beats: list[int] = []
        got = asyncio.Event()

        def on_hr(_char: object, data: bytearray) -> None:
            beats.append(parse_heart_rate_measurement(bytes(data)).bpm)
            got.set()

        await client.start_notify(uuids.HEART_RATE_MEASUREMENT, on_hr)
        await strap.tick(1.0)
        await asyncio.wait_for(got.wait(), 2)
        await strap.disconnect_all()
        await asyncio.wait_for(dropped.wait(), 2)
        return battery, beats, dropped.is_set(), client.is_connected

    battery, beats, dropped, connected = asyncio.run(run())
    assert battery == 100
    assert len(beats) == 1 and 35 <= beats[0] <= 190
    assert dropped and not connected


def test_a_central_in_another_stack_over_hci_times_out_then_connects() -> None:
    """The gateway's Bluetooth host on a TCP HCI transport (as `vigil gateway --hci` runs it):
    an attempt on a device that is off ends at its timeout, and the controller then takes the
    next attempt (bumble's own kept the first pending and refused every later one)."""

    async def run() -> tuple[str, int]:
        radio = VirtualRadio()
        strap = HeartRateStrap(radio, "C1:00:00:00:00:01", "HRM test", Physiology.seeded(3))
        await strap.power_on()
        port = free_port()
        transport = await radio.serve_hci(f"tcp-server:127.0.0.1:{port}", "F0:00:00:00:00:09")
        central = await BumbleCentral.over_hci(f"tcp-client:127.0.0.1:{port}")
        try:
            await central.power_on()
            _, client_backend = central.backends()
            with pytest.raises(BleakError, match="not found"):
                await BleakClient("C3:00:00:00:00:01", backend=client_backend).connect(timeout=1)
            client = BleakClient("C1:00:00:00:00:01", backend=client_backend)
            await client.connect(timeout=5)
            kind = bytes(await client.read_gatt_char(normalize_uuid_16(0x2A24))).decode()
            battery = parse_battery_level(bytes(await client.read_gatt_char(uuids.BATTERY_LEVEL)))
            await client.disconnect()
            return kind, battery
        finally:
            await central.close()
            await transport.close()

    assert asyncio.run(run()) == ("heart-rate-strap", 100)


def test_opening_a_missing_hci_transport_is_a_bleak_error() -> None:
    async def run() -> None:
        await BumbleCentral.over_hci(f"tcp-client:127.0.0.1:{free_port()}")

    with pytest.raises(BleakError, match="cannot open the HCI transport"):
        asyncio.run(run())
