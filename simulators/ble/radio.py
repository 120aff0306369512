"""The virtual air: one bumble LocalLink that every simulated controller joins."""

from __future__ import annotations

import asyncio
from typing import Any

from bumble import hci, ll
from bumble.controller import Controller
from bumble.device import Device
from bumble.hci import Address
from bumble.host import Host
from bumble.link import LocalLink
from bumble.transport import Transport, open_transport
from bumble.transport.common import AsyncPipeSink

from gateway.bumble_host import GATEWAY_ADDRESS, BumbleCentral


class _ScanAwareLink(LocalLink):
    """bumble's link hands every advertisement to every controller. With hundreds of
    wearables advertising ten times a second that is O(N^2) work per second on one event
    loop; a radio only listens to advertisements while it scans or initiates a connection
    (it connects on hearing the target advertise), so deliver them to those only.
    Connection requests (also advertising-channel PDUs) still go to everyone."""

    def send_advertising_pdu(self, sender_controller: Controller, packet: Any) -> None:
        if not isinstance(packet, ll.AdvInd | ll.AdvExtInd):
            super().send_advertising_pdu(sender_controller, packet)
            return
        loop = asyncio.get_running_loop()
        for controller in self.controllers:
            listening = controller.le_scan_enable or controller.pending_le_connection
            if controller is not sender_controller and listening:
                loop.call_soon(controller.on_ll_advertising_pdu, packet)


class _Controller(Controller):
    """bumble's virtual controller, cancelling a connection attempt as the specification
    says (Vol 4, Part E, 7.8.13): the attempt ends and the host hears 'LE Connection
    Complete' with Unknown Connection Identifier. bumble's answers 'success' and keeps the
    attempt pending, so every later connection would be refused as 'command disallowed'."""

    def on_hci_le_create_connection_cancel_command(
        self, command: hci.HCI_LE_Create_Connection_Cancel_Command
    ) -> hci.HCI_StatusReturnParameters:
        pending = self.pending_le_connection
        self.pending_le_connection = None
        if pending is not None:
            failed = hci.HCI_LE_Connection_Complete_Event(
                status=hci.HCI_ErrorCode.UNKNOWN_CONNECTION_IDENTIFIER_ERROR,
                connection_handle=0,
                role=hci.Role.CENTRAL,
                peer_address_type=pending.peer_address_type,
                peer_address=pending.peer_address,
                connection_interval=0,
                peripheral_latency=0,
                supervision_timeout=0,
                central_clock_accuracy=0,
            )
            # After the Command Complete that the return value becomes.
            asyncio.get_running_loop().call_soon(self.send_hci_packet, failed)
        return super().on_hci_le_create_connection_cancel_command(command)


class VirtualRadio:
    """Creates bumble devices that can see each other; must be used inside a running loop."""

    def __init__(self) -> None:
        self.link = _ScanAwareLink()
        self.controllers: dict[str, Controller] = {}

    def device(self, address: str, name: str) -> Device:
        """A powered-off bumble Device with its own virtual controller on this link.

        ``address`` is used as a random static address (top two bits set), which is what
        most wearables advertise with.
        """
        controller = _Controller(name, link=self.link, public_address=address)
        self.controllers[address] = controller
        host = Host(controller, AsyncPipeSink(controller))
        return Device(name=name, address=Address(address, Address.RANDOM_DEVICE_ADDRESS), host=host)

    def central(self, address: str = GATEWAY_ADDRESS) -> BumbleCentral:
        """The gateway's adapter in this process, on the same link as the wearables."""
        return BumbleCentral(self.device(address, "vigil-gateway"))

    async def serve_hci(self, spec: str, address: str) -> Transport:
        """A controller on this link whose host is in another process, reached through a
        bumble HCI transport (e.g. ``tcp-server:127.0.0.1:9100``): the gateway's Bluetooth
        stack then runs, and is measured, in its own process, as it would with a real
        adapter."""
        transport = await open_transport(spec)
        controller = _Controller(
            "remote-host",
            host_source=transport.source,
            host_sink=transport.sink,
            link=self.link,
            public_address=address,
        )
        self.controllers[address] = controller
        return transport
