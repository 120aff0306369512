"""Simulated Bluetooth: bumble controllers on one in-process virtual link.

:class:`VirtualRadio` is the air; :mod:`simulators.ble.wearables` are GATT servers on it;
:meth:`VirtualRadio.central` puts the gateway's bumble backend (:mod:`gateway.bumble_host`)
on the same link, so the gateway's bleak code runs unchanged; :class:`Ward` puts patients'
devices together.
A ward can also serve the gateway's controller over a bumble HCI transport (TCP), so the
gateway runs in its own process with its Bluetooth host stack, as on real hardware.
"""

from simulators.ble.radio import VirtualRadio
from simulators.ble.ward import SentReading, Ward
from simulators.ble.wearables import HeartRateStrap, PulseOximeter, Wearable

__all__ = [
    "HeartRateStrap",
    "PulseOximeter",
    "SentReading",
    "VirtualRadio",
    "Ward",
    "Wearable",
]
