"""A bleak backend on bumble's Bluetooth host stack, for any HCI controller bumble reaches.

The gateway normally talks to the system's Bluetooth (BlueZ) through bleak. This backend
runs bumble's own host stack instead, on an HCI transport (``vigil gateway --hci``: a USB
dongle, or the virtual controller a simulated ward serves), and the simulators put it on
their in-process virtual link. bleak instantiates backend classes itself
(``BleakScanner(backend=cls)``), so the central they act through is bound into the classes
by :meth:`BumbleCentral.backends`. Everything below the bleak API is real Bluetooth host
code: advertising reports, LE connections, ATT service discovery, CCCD writes and
notifications, disconnect events.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterator
from typing import Any

from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.client import BaseBleakClient, NotifyCallback
from bleak.backends.descriptor import BleakGATTDescriptor
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData, BaseBleakScanner
from bleak.backends.service import BleakGATTService, BleakGATTServiceCollection
from bleak.exc import BleakDeviceNotFoundError, BleakError
from bleak.uuids import normalize_uuid_str
from bumble.core import UUID, AdvertisingData, BaseBumbleError
from bumble.core import TimeoutError as BumbleTimeoutError
from bumble.device import Advertisement, Connection, Device, Peer
from bumble.hci import Address, HCI_Error
from bumble.transport import Transport, open_transport

log = logging.getLogger(__name__)

GATEWAY_ADDRESS = "F0:00:00:00:00:01"

_PROPERTY_NAMES = {
    0x01: "broadcast",
    0x02: "read",
    0x04: "write-without-response",
    0x08: "write",
    0x10: "notify",
    0x20: "indicate",
    0x40: "authenticated-signed-writes",
    0x80: "extended-properties",
}


@contextlib.contextmanager
def _as_bleak_errors(what: str) -> Iterator[None]:
    """bleak callers catch BleakError; bumble raises its own protocol errors."""
    try:
        yield
    except BaseBumbleError as exc:
        raise BleakError(f"{what}: {exc}") from exc


def _uuid(uuid: UUID) -> str:
    return normalize_uuid_str(uuid.to_hex_str("-"))


class BumbleCentral:
    """The gateway's Bluetooth adapter: a bumble host on one controller."""

    def __init__(self, device: Device) -> None:
        self.device = device
        self.addresses: dict[str, Address] = {}
        """Addresses seen in advertisements, with their type, by their string form."""
        self._connect_lock = asyncio.Lock()
        self._scanners: list[_Scanner] = []
        self._scanning = False
        self._transport: Transport | None = None

    @classmethod
    async def over_hci(cls, spec: str, address: str = GATEWAY_ADDRESS) -> BumbleCentral:
        """A central whose controller is reached through a bumble HCI transport (``usb:0``,
        or the one ``vigil simulate --patients N --hci tcp-server:HOST:PORT`` serves)."""
        try:
            transport = await open_transport(spec)
        except (OSError, ValueError, BaseBumbleError) as exc:
            raise BleakError(f"cannot open the HCI transport {spec}: {exc}") from exc
        device = Device.with_hci(
            "vigil-gateway",
            Address(address, Address.RANDOM_DEVICE_ADDRESS),
            transport.source,
            transport.sink,
        )
        central = cls(device)
        central._transport = transport
        return central

    async def close(self) -> None:
        if self._transport is not None:
            await self._transport.close()
            self._transport = None

    async def power_on(self) -> None:
        await self.device.power_on()
        self.device.on("advertisement", self._on_advertisement)

    def backends(self) -> tuple[type[BaseBleakScanner], type[BaseBleakClient]]:
        """Scanner and client backend classes bound to this central, for bleak's backend=."""
        scanner = type("BumbleScanner", (_Scanner,), {"central": self})
        client = type("BumbleClient", (_Client,), {"central": self})
        return scanner, client

    def _on_advertisement(self, advertisement: Advertisement) -> None:
        self.addresses[str(advertisement.address)] = advertisement.address
        for scanner in list(self._scanners):
            scanner.report(advertisement)

    async def _start_scanning(self, scanner: _Scanner) -> None:
        self._scanners.append(scanner)
        if not self._scanning:
            self._scanning = True
            await self.device.start_scanning(filter_duplicates=False)

    async def _stop_scanning(self, scanner: _Scanner) -> None:
        if scanner in self._scanners:
            self._scanners.remove(scanner)
        if self._scanning and not self._scanners:
            self._scanning = False
            await self.device.stop_scanning()

    async def connect(self, address: str, timeout: float) -> Connection:
        # bumble allows one pending LE connection at a time, like most controllers.
        async with self._connect_lock:
            peer = self.addresses.get(address) or Address(address, Address.RANDOM_DEVICE_ADDRESS)
            try:
                # On timeout bumble cancels the attempt and waits for the controller to end it.
                return await self.device.connect(peer, timeout=timeout)
            except BumbleTimeoutError:
                raise TimeoutError(f"{address} did not answer within {timeout:.0f} s") from None
            except (HCI_Error, BaseBumbleError) as exc:
                raise BleakError(f"connection to {address} failed: {exc}") from exc


class _Scanner(BaseBleakScanner):
    central: BumbleCentral

    def __init__(
        self,
        detection_callback: Any,
        service_uuids: list[str] | None,
        scanning_mode: str = "active",
        **kwargs: Any,
    ) -> None:
        super().__init__(detection_callback, service_uuids)

    async def start(self) -> None:
        self.seen_devices = {}
        await self.central._start_scanning(self)

    async def stop(self) -> None:
        await self.central._stop_scanning(self)

    def report(self, advertisement: Advertisement) -> None:
        data = advertisement.data
        uuids = [
            _uuid(u)
            for kind in (
                AdvertisingData.COMPLETE_LIST_OF_16_BIT_SERVICE_CLASS_UUIDS,
                AdvertisingData.INCOMPLETE_LIST_OF_16_BIT_SERVICE_CLASS_UUIDS,
                AdvertisingData.COMPLETE_LIST_OF_128_BIT_SERVICE_CLASS_UUIDS,
            )
            for u in (data.get(kind) or [])
        ]
        if not self.is_allowed_uuid(uuids):
            return
        name = data.get(AdvertisingData.COMPLETE_LOCAL_NAME)
        name = name if isinstance(name, str) else None
        adv = AdvertisementData(
            local_name=name,
            manufacturer_data={},
            service_data={},
            service_uuids=uuids,
            tx_power=None,
            rssi=advertisement.rssi,
            platform_data=(advertisement,),
        )
        address = str(advertisement.address)
        device = self.create_or_update_device(address, address, name, advertisement.address, adv)
        self.call_detection_callbacks(device, adv)


class _Client(BaseBleakClient):
    central: BumbleCentral

    def __init__(self, address_or_ble_device: BLEDevice | str, **kwargs: Any) -> None:
        super().__init__(
            address_or_ble_device,
            disconnected_callback=kwargs.pop("disconnected_callback", None),
            timeout=kwargs.pop("timeout", 10.0),
        )
        self._name = (
            address_or_ble_device.name if isinstance(address_or_ble_device, BLEDevice) else None
        )
        self._connection: Connection | None = None
        self._peer: Peer | None = None
        self._closing = False

    @property
    def name(self) -> str:
        return self._name or self.address

    @property
    def mtu_size(self) -> int:
        return self._connection.att_mtu if self._connection else 23

    @property
    def is_connected(self) -> bool:
        return self._connection is not None

    async def connect(self, pair: bool = False, **kwargs: Any) -> None:
        timeout = float(kwargs.get("timeout") or self._timeout)
        try:
            connection = await self.central.connect(self.address, timeout)
        except TimeoutError:
            raise BleakDeviceNotFoundError(
                self.address, f"Device with address {self.address} was not found."
            ) from None
        self._connection = connection
        self._closing = False
        connection.on("disconnection", self._on_disconnection)
        self._peer = Peer(connection)
        with _as_bleak_errors(f"service discovery on {self.address}"):
            self.services = await self._discover(self._peer)
        if pair:
            await self.pair()

    async def _discover(self, peer: Peer) -> BleakGATTServiceCollection:
        collection = BleakGATTServiceCollection()
        for service in await peer.discover_services():
            bleak_service = BleakGATTService(service, service.handle, _uuid(service.uuid))
            collection.add_service(bleak_service)
            for characteristic in await peer.discover_characteristics(service=service):
                properties = [
                    n for bit, n in _PROPERTY_NAMES.items() if characteristic.properties & bit
                ]
                collection.add_characteristic(
                    BleakGATTCharacteristic(
                        characteristic,
                        characteristic.handle,
                        _uuid(characteristic.uuid),
                        properties,  # type: ignore[arg-type]
                        lambda: self.mtu_size - 3,
                        bleak_service,
                    )
                )
        return collection

    def _on_disconnection(self, reason: int) -> None:
        self._connection = None
        self._peer = None
        if not self._closing and self._disconnected_callback is not None:
            self._disconnected_callback()

    async def disconnect(self) -> None:
        self._closing = True
        if self._connection is not None:
            await self._connection.disconnect()
        self._connection = None

    async def pair(self, *args: Any, **kwargs: Any) -> None:
        with _as_bleak_errors(f"pairing with {self.address}"):
            await self._require_connection().pair()

    async def unpair(self) -> None:
        keystore = self.central.device.keystore
        if keystore is not None:
            await keystore.delete(self.address)

    def _require_connection(self) -> Connection:
        if self._connection is None:
            raise BleakError("Not connected")
        return self._connection

    def _require_peer(self) -> Peer:
        self._require_connection()
        assert self._peer is not None
        return self._peer

    async def read_gatt_char(
        self, characteristic: BleakGATTCharacteristic, **kwargs: Any
    ) -> bytearray:
        with _as_bleak_errors(f"read {characteristic.uuid}"):
            return bytearray(await self._require_peer().read_value(characteristic.obj))

    async def read_gatt_descriptor(
        self, descriptor: BleakGATTDescriptor, **kwargs: Any
    ) -> bytearray:
        with _as_bleak_errors(f"read descriptor {descriptor.handle}"):
            return bytearray(await self._require_peer().read_value(descriptor.handle))

    async def write_gatt_char(
        self, characteristic: BleakGATTCharacteristic, data: Any, response: bool
    ) -> None:
        with _as_bleak_errors(f"write {characteristic.uuid}"):
            await self._require_peer().write_value(characteristic.obj, bytes(data), response)

    async def write_gatt_descriptor(self, descriptor: BleakGATTDescriptor, data: Any) -> None:
        with _as_bleak_errors(f"write descriptor {descriptor.handle}"):
            await self._require_peer().write_value(descriptor.handle, bytes(data), True)

    async def start_notify(
        self, characteristic: BleakGATTCharacteristic, callback: NotifyCallback, **kwargs: Any
    ) -> None:
        def deliver(value: bytes, callback: Callable[[bytearray], None] = callback) -> None:
            callback(bytearray(value))

        with _as_bleak_errors(f"subscribe {characteristic.uuid}"):
            await self._require_peer().subscribe(characteristic.obj, deliver)

    async def stop_notify(self, characteristic: BleakGATTCharacteristic) -> None:
        with _as_bleak_errors(f"unsubscribe {characteristic.uuid}"):
            await self._require_peer().unsubscribe(characteristic.obj)
