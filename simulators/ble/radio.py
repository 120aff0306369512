"""The virtual air: one bumble LocalLink that every simulated controller joins."""

from __future__ import annotations

import asyncio
from typing import Any

from bumble import ll
from bumble.controller import Controller
from bumble.device import Device
from bumble.hci import Address
from bumble.host import Host
from bumble.link import LocalLink
from bumble.transport.common import AsyncPipeSink


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
        controller = Controller(name, link=self.link, public_address=address)
        self.controllers[address] = controller
        host = Host(controller, AsyncPipeSink(controller))
        return Device(name=name, address=Address(address, Address.RANDOM_DEVICE_ADDRESS), host=host)
