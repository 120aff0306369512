"""Encoders that write GATT characteristic values exactly as the Bluetooth SIG specs lay
them out, the mirror image of :mod:`gateway.gatt`."""
