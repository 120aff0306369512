"""Simulated wearables: bumble GATT servers that advertise and notify like real ones.

A chest strap exposes the Heart Rate Service (0x180D) and a fingertip oximeter the Pulse
Oximeter Service (0x1822); both expose the Battery Service (0x180F) and Device Information.
Values come from :mod:`simulators.physiology` through the spec-exact encoders. A wearable
only measures while a central is subscribed, as real ones do, so every notification it
sends is one the gateway was listening for.
"""

from __future__ import annotations

import abc
from datetime import datetime
from typing import Any

from bumble import gatt
from bumble.core import UUID, AdvertisingData
from bumble.device import Device

from simulators.ble.radio import VirtualRadio
from simulators.gatt.encoders import (
    encode_battery_level,
    encode_heart_rate_measurement,
    encode_plx_continuous,
    encode_plx_spot_check,
    encode_sfloat,
)
from simulators.physiology import Physiology

ADVERTISING_INTERVAL_MS = 100
"""Fast advertising, as a wearable does right after power-on, so discovery takes < 1 s."""

_NOTIFY = gatt.Characteristic.Properties.NOTIFY
_READ = gatt.Characteristic.Properties.READ
_READABLE = gatt.Characteristic.READABLE


class Wearable(abc.ABC):
    kind: str
    service_uuid: str
    measurement_uuid: str

    def __init__(
        self, radio: VirtualRadio, address: str, name: str, physiology: Physiology
    ) -> None:
        self.address = address
        self.name = name
        self.physiology = physiology
        self.serial = "SIM-" + address.replace(":", "")
        """What its Device Information says its serial number is: its own, as a real one's."""
        self.battery = 100.0
        self._battery_reported = 100
        self.device: Device = radio.device(address, name)
        self.measurement = gatt.Characteristic(self.measurement_uuid, _NOTIFY, _READABLE, b"")
        self.battery_level = gatt.Characteristic(
            "2A19", _READ | _NOTIFY, _READABLE, encode_battery_level(100)
        )
        self.device.add_services(
            [
                gatt.Service(self.service_uuid, [self.measurement, *self._extra_characteristics()]),
                gatt.Service("180F", [self.battery_level]),
                gatt.Service(
                    "180A",
                    [
                        gatt.Characteristic("2A29", _READ, _READABLE, b"Vigil Simulators"),
                        gatt.Characteristic("2A24", _READ, _READABLE, self.kind.encode()),
                        gatt.Characteristic("2A25", _READ, _READABLE, self.serial.encode()),
                        gatt.Characteristic("2A26", _READ, _READABLE, b"1.0.0\x00"),
                    ],
                ),
            ]
        )
        self.device.advertising_data = bytes(
            AdvertisingData(
                [
                    (AdvertisingData.FLAGS, bytes([0x06])),
                    (AdvertisingData.COMPLETE_LOCAL_NAME, name.encode()),
                    (
                        AdvertisingData.COMPLETE_LIST_OF_16_BIT_SERVICE_CLASS_UUIDS,
                        bytes(UUID(self.service_uuid)) + bytes(UUID("180F")),
                    ),
                ]
            )
        )

    async def power_on(self) -> None:
        await self.device.power_on()
        await self.device.start_advertising(
            auto_restart=True,
            advertising_interval_min=ADVERTISING_INTERVAL_MS,
            advertising_interval_max=ADVERTISING_INTERVAL_MS,
        )

    async def power_off(self) -> None:
        await self.device.power_off()

    def subscribed(self, characteristic: gatt.Characteristic[Any]) -> bool:
        return any(
            cccd.get(characteristic.handle, b"\x00\x00")[0] & 0x03  # notify or indicate
            for cccd in self.device.gatt_server.subscribers.values()
        )

    async def disconnect_all(self) -> None:
        """Drop every connection, as when the patient walks out of range."""
        for connection in list(self.device.connections.values()):
            await connection.disconnect()

    async def tick(self, dt_s: float) -> dict[str, list[float]]:
        """Measure and notify once; returns what was sent, by metric name.

        The ward advances the shared physiology; a wearable only samples it.
        """
        sent: dict[str, list[float]] = {}
        if self.subscribed(self.measurement):
            payload, sent = self._measure(dt_s)
            await self.device.notify_subscribers(self.measurement, payload)
        self.battery = max(0.0, self.battery - dt_s / 360.0)  # ~10 hours per charge
        level = round(self.battery)
        if level != self._battery_reported and self.subscribed(self.battery_level):
            self._battery_reported = level
            self.battery_level.value = encode_battery_level(level)
            await self.device.notify_subscribers(self.battery_level, encode_battery_level(level))
            sent["battery"] = [float(level)]
        return sent

    def _extra_characteristics(self) -> list[gatt.Characteristic[bytes]]:
        return []

    @abc.abstractmethod
    def _measure(self, dt_s: float) -> tuple[bytes, dict[str, list[float]]]:
        """Sample physiology: the notification payload, and its values by metric name."""


class HeartRateStrap(Wearable):
    kind = "heart-rate-strap"
    service_uuid = "180D"
    measurement_uuid = "2A37"

    def _extra_characteristics(self) -> list[gatt.Characteristic[bytes]]:
        return [gatt.Characteristic("2A38", _READ, _READABLE, bytes([1]))]  # chest

    def _measure(self, dt_s: float) -> tuple[bytes, dict[str, list[float]]]:
        sample = self.physiology.cardiac(dt_s)
        payload = encode_heart_rate_measurement(
            sample.heart_rate, contact=sample.contact, rr_intervals_ms=sample.rr_intervals_ms
        )
        # What the gateway can recover: RR travels in 1/1024 s units.
        rr = [round(r * 1024 / 1000) * 1000 / 1024 for r in sample.rr_intervals_ms]
        return payload, {"heart_rate": [float(sample.heart_rate)], "rr_interval": rr}


class PulseOximeter(Wearable):
    kind = "pulse-oximeter"
    service_uuid = "1822"
    measurement_uuid = "2A5F"

    def _extra_characteristics(self) -> list[gatt.Characteristic[bytes]]:
        self.spot_check_measurement = gatt.Characteristic(
            "2A5E", gatt.Characteristic.Properties.INDICATE, _READABLE, b""
        )
        return [self.spot_check_measurement]

    async def spot_check(self, spo2: int, pulse_rate: int, taken: datetime) -> None:
        """Indicate a spot-check taken at ``taken`` (device local time), as a stored
        measurement is replayed when the gateway comes back in range."""
        payload = encode_plx_spot_check(
            encode_sfloat(spo2, 0), encode_sfloat(pulse_rate, 0), timestamp=taken
        )
        await self.device.indicate_subscribers(self.spot_check_measurement, payload)

    def _measure(self, dt_s: float) -> tuple[bytes, dict[str, list[float]]]:
        sample = self.physiology.oximetry()
        payload = encode_plx_continuous(
            encode_sfloat(sample.spo2, 0),
            encode_sfloat(sample.pulse_rate, 0),
            measurement_status=0x0100,  # fully qualified data
            device_status=0,
        )
        return payload, {"spo2": [float(sample.spo2)], "pulse_rate": [float(sample.pulse_rate)]}
