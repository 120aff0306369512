"""Simulated wearables for CI, the demo and the benchmarks: physiology with scripted and
labelled episodes, spec-exact GATT encoders, bumble peripherals on a virtual Bluetooth
link (:mod:`simulators.ble`), capture replay (:mod:`simulators.trace`) and the labelled
scenarios of the evaluation (:mod:`simulators.scenarios`).

A development layer: production code reaches it only through bleak's backend seam (the
gateway's bumble backend on the simulators' virtual link), never by importing it."""
