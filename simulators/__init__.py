"""Simulated wearables for CI and the demo: physiology, spec-exact GATT encoders, bumble
peripherals on a virtual Bluetooth link, and the bleak backend that reaches them.

Production code reaches this package only through the bleak backend seam."""
