"""The virtual air: one bumble LocalLink that every simulated controller joins."""

from __future__ import annotations

from bumble.controller import Controller
from bumble.device import Device
from bumble.hci import Address
from bumble.host import Host
from bumble.link import LocalLink
from bumble.transport.common import AsyncPipeSink


class VirtualRadio:
    """Creates bumble devices that can see each other; must be used inside a running loop."""

    def __init__(self) -> None:
        self.link = LocalLink()

    def device(self, address: str, name: str) -> Device:
        """A powered-off bumble Device with its own virtual controller on this link.

        ``address`` is used as a random static address (top two bits set), which is what
        most wearables advertise with.
        """
        controller = Controller(name, link=self.link, public_address=address)
        host = Host(controller, AsyncPipeSink(controller))
        return Device(name=name, address=Address(address, Address.RANDOM_DEVICE_ADDRESS), host=host)
