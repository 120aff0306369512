"""`vigil bench faults`: the real pipeline under each fault of issue 17's matrix, with an
honest count of what was lost or doubled and of the alerts told.

:mod:`~bench.faults.stack` starts one run's processes (its own PostgreSQL, Mosquitto,
ingest, analytics, alerts, the simulated wearables and the gateway) and supervises them
(:mod:`~bench.faults.managed`), :mod:`~bench.faults.matrix`
holds what each fault does to them, :mod:`~bench.faults.episodes` the desaturations a run
injects and which must be alerted on, :mod:`~bench.faults.observers` the care team's webhook
and the events the bench hears, :mod:`~bench.faults.tally` the counting, and
:mod:`~bench.faults.runner` the run of the matrix, one fresh stack per fault.
"""

from bench.faults.matrix import FAULTS, Options
from bench.faults.runner import FaultBench

__all__ = ["FAULTS", "FaultBench", "Options"]
