"""One Bluetooth session per paired device: connect, subscribe, reconnect when it drops.

The session depends only on bleak's ``BleakClient`` and takes the backend class as a
parameter, so the same code runs against BlueZ and against the simulators' bumble link.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from bleak import BleakClient
from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.client import BaseBleakClient
from bleak.backends.device import BLEDevice
from bleak.exc import BleakError
from bleak.uuids import normalize_uuid_16

from gateway.gatt import uuids
from gateway.gatt.battery import parse_battery_level
from gateway.gatt.device_information import parse_device_information_string
from gateway.gatt.errors import GattParseError
from gateway.gatt.heart_rate import parse_body_sensor_location, parse_heart_rate_measurement
from gateway.gatt.pulse_oximeter import parse_plx_continuous, parse_plx_spot_check
from gateway.readings import (
    Converted,
    from_battery_level,
    from_heart_rate,
    from_plx_continuous,
    from_plx_spot_check,
)
from vigil.wire.status import DeviceReport

log = logging.getLogger(__name__)

Sink = Callable[[Converted], None]
MAX_ERROR = 500
"""The longest last error a device report carries."""
Clock = Callable[[], int]
_DEVICE_INFORMATION = (
    (0x2A29, "manufacturer"),
    (0x2A24, "model"),
    (0x2A25, "serial"),
    (0x2A26, "firmware"),
)
"""The Device Information strings read at each connection, and the keys they go under."""


@dataclass
class DeviceState:
    address: str
    patient: str
    kind: str = "unknown"
    state: str = "disconnected"
    battery: int | None = None
    connects: int = 0
    drops: int = 0
    """Connections lost after they were established (out of range, battery, ...)."""
    last_drop_ms: int | None = None
    """When the last one was lost: readings stop there, and the gap is the device's."""
    last_reading_ms: int | None = None
    """When the device last sent a reading: a strap connected but silent is off the chest."""
    parse_errors: int = 0
    no_values: int = 0
    last_error: str | None = field(default=None)
    info: dict[str, str] = field(default_factory=dict)
    """Device Information strings and sensor location, read at each connection."""

    def report(self) -> DeviceReport:
        """What the devices topic says of it."""
        return DeviceReport(
            address=self.address,
            patient=self.patient,
            state=self.state,
            kind=self.kind,
            battery=self.battery,
            connects=self.connects,
            drops=self.drops,
            last_drop_ms=self.last_drop_ms,
            last_reading_ms=self.last_reading_ms,
            parse_errors=self.parse_errors,
            no_values=self.no_values,
            last_error=None if self.last_error is None else self.last_error[:MAX_ERROR],
            manufacturer=self.info.get("manufacturer"),
            model=self.info.get("model"),
            serial=self.info.get("serial"),
            firmware=self.info.get("firmware"),
            location=self.info.get("location"),
        )


class DeviceSession:
    def __init__(
        self,
        device: BLEDevice,
        patient: str,
        sink: Sink,
        clock: Clock,
        client_backend: type[BaseBleakClient] | None = None,
        connect_timeout_s: float = 10.0,
        connect_slot: asyncio.Semaphore | None = None,
    ) -> None:
        self.device = device
        self.state = DeviceState(device.address, patient)
        self._sink = sink
        self._clock = clock
        self._last_stamp = -1
        self._backend = client_backend
        self._connect_timeout = connect_timeout_s
        self._client: BleakClient | None = None
        self._connect_slot = connect_slot or asyncio.Semaphore(1)

    async def run(self) -> None:
        """Keep the device connected until cancelled, backing off between failures."""
        failures = 0
        try:
            while True:
                lost = asyncio.Event()
                try:
                    await self._connect(lost)
                    failures = 0
                    await lost.wait()
                    self.state.drops += 1
                    self.state.last_drop_ms = self._clock()
                    log.info("device %s disconnected", self.state.address)
                except (BleakError, TimeoutError, OSError) as exc:
                    failures += 1
                    self.state.last_error = str(exc) or type(exc).__name__
                    log.warning("device %s: %s", self.state.address, self.state.last_error)
                except Exception as exc:
                    # A backend bug must not end this device's monitoring for good.
                    failures += 1
                    self.state.last_error = f"unexpected {type(exc).__name__}: {exc}"
                    log.exception("device %s: unexpected error", self.state.address)
                self.state.state = "disconnected"
                await asyncio.sleep(backoff_s(failures))
        finally:
            await self._disconnect()

    async def _connect(self, lost: asyncio.Event) -> None:
        self.state.state = "connecting"
        client = BleakClient(
            self.device,
            disconnected_callback=lambda _client: lost.set(),
            timeout=self._connect_timeout,
            backend=self._backend,
        )
        # One connection attempt at a time per adapter: controllers (BlueZ's included)
        # handle a single pending LE connection, and the timeout should measure the
        # attempt, not the queue in front of it.
        async with self._connect_slot:
            await client.connect(timeout=self._connect_timeout)
        self._client = client
        services = client.services
        await self._describe(client)
        hrm = services.get_characteristic(uuids.HEART_RATE_MEASUREMENT)
        plx = services.get_characteristic(uuids.PLX_CONTINUOUS_MEASUREMENT)
        spot = services.get_characteristic(uuids.PLX_SPOT_CHECK_MEASUREMENT)
        battery = services.get_characteristic(uuids.BATTERY_LEVEL)
        if hrm is not None:
            self.state.kind = "heart-rate-strap"
            await client.start_notify(hrm, self._on_heart_rate)
        elif plx is not None or spot is not None:
            self.state.kind = "pulse-oximeter"
            if plx is not None:
                await client.start_notify(plx, self._on_plx)
            if spot is not None:  # indicated: stored spot-checks arrive after a reconnect
                await client.start_notify(spot, self._on_spot_check)
        else:
            await client.disconnect()
            raise BleakError("device has neither a Heart Rate nor a Pulse Oximeter measurement")
        if battery is not None:
            self._on_battery(battery, await client.read_gatt_char(battery))
            if "notify" in battery.properties:
                await client.start_notify(battery, self._on_battery)
        self.state.state = "connected"
        self.state.connects += 1
        log.info("device %s connected (%s)", self.state.address, self.state.kind)

    async def _describe(self, client: BleakClient) -> None:
        """What the device says it is: manufacturer, model, serial, firmware, sensor
        location."""
        services = client.services
        for uuid16, key in _DEVICE_INFORMATION:
            characteristic = services.get_characteristic(normalize_uuid_16(uuid16))
            if characteristic is not None and "read" in characteristic.properties:
                try:
                    data = bytes(await client.read_gatt_char(characteristic))
                except BleakError as exc:  # e.g. a string behind pairing: the readings go on
                    log.info("device %s: %s not read (%s)", self.state.address, key, exc)
                    continue
                with self._counting_parse_errors():
                    self.state.info[key] = parse_device_information_string(uuid16, data)
        location = services.get_characteristic(uuids.BODY_SENSOR_LOCATION)
        if location is not None and "read" in location.properties:
            data = bytes(await client.read_gatt_char(location))
            with self._counting_parse_errors():
                self.state.info["location"] = parse_body_sensor_location(data)

    @contextlib.contextmanager
    def _counting_parse_errors(self) -> Iterator[None]:
        try:
            yield
        except GattParseError as exc:
            self.state.parse_errors += 1
            log.warning(
                "device %s sent a malformed %s: %s",
                self.state.address,
                exc.characteristic,
                exc.problem,
            )

    async def _disconnect(self) -> None:
        if self._client is not None:
            with contextlib.suppress(BleakError, TimeoutError, OSError):
                await self._client.disconnect()
            self._client = None

    def _on_heart_rate(self, _c: BleakGATTCharacteristic, data: bytearray) -> None:
        self._deliver(
            data,
            lambda b, t: from_heart_rate(
                parse_heart_rate_measurement(b), self.state.address, self.state.patient, t
            ),
        )

    def _on_plx(self, _c: BleakGATTCharacteristic, data: bytearray) -> None:
        self._deliver(
            data,
            lambda b, t: from_plx_continuous(
                parse_plx_continuous(b), self.state.address, self.state.patient, t
            ),
        )

    def _on_spot_check(self, _c: BleakGATTCharacteristic, data: bytearray) -> None:
        self._deliver(
            data,
            lambda b, t: from_plx_spot_check(
                parse_plx_spot_check(b), self.state.address, self.state.patient, t
            ),
        )

    def _on_battery(self, _c: BleakGATTCharacteristic, data: bytearray) -> None:
        def convert(b: bytes, t: int) -> Converted:
            level = parse_battery_level(b)
            self.state.battery = level
            return from_battery_level(level, self.state.address, self.state.patient, t)

        self._deliver(data, convert, measurement=False)

    def _deliver(
        self,
        data: bytearray,
        convert: Callable[[bytes, int], Converted],
        measurement: bool = True,
    ) -> None:
        with self._counting_parse_errors():
            # Strictly increasing per device: two notifications handled within the same
            # millisecond would otherwise share the store's key and one would be dropped.
            now = max(self._clock(), self._last_stamp + 1)
            self._last_stamp = now
            converted = convert(bytes(data), now)
            self.state.no_values += len(converted.no_values)
            if measurement and converted.readings:
                self.state.last_reading_ms = now
            self._sink(converted)


def backoff_s(failures: int, base: float = 1.0, cap: float = 30.0) -> float:
    """Capped exponential backoff with full jitter; 0 after a clean disconnect."""
    if failures == 0:
        return base * random.random()
    return random.uniform(0, min(cap, base * 2 ** min(failures, 16)))
