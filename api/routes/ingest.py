"""Ingest accounting over HTTP: ``/ingest/stats`` (JSON) and ``/metrics`` (Prometheus).

Both are computed from the database at request time (:mod:`ingest.stats`), so they cover
every ingest process and survive restarts; no ingest process has to serve HTTP. They name
gateways, never patients: deployment accounting, for administrators and system clients
given ``system/Device.rs`` (a Prometheus scraper), nobody else.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from api.deps import Access, Connection, require
from ingest.stats import GatewayStats, gateway_stats

router = APIRouter()
_FLEET = require("Device", "read", fleet=True)


@router.get("/ingest/stats")
def stats(_access: Annotated[Access, _FLEET], conn: Connection) -> list[dict[str, Any]]:
    return [g.as_dict() for g in gateway_stats(conn)]


@router.get("/metrics")
def metrics(_access: Annotated[Access, _FLEET], conn: Connection) -> Response:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_IngestCollector(gateway_stats(conn)))
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


class _IngestCollector(Collector):
    def __init__(self, gateways: list[GatewayStats]) -> None:
        self.gateways = gateways

    def collect(self) -> Iterator[Metric]:
        counters = {
            "batches": ("Readings batches received", lambda g: g.batches),
            "readings_stored": ("Readings stored", lambda g: g.readings_stored),
            "duplicates": ("Readings received again and dropped", lambda g: g.duplicates),
            "dead_letters": ("Payloads or readings set aside", lambda g: g.dead_letters),
            "missing_batches": ("Batch seqs never received", lambda g: g.missing_batches),
            "seq_conflicts": (
                "Batches under a seq already seen with other contents (stored, not dropped)",
                lambda g: g.conflicts,
            ),
        }
        for name, (doc, value) in counters.items():
            family = CounterMetricFamily(f"vigil_ingest_{name}", doc, labels=["gateway"])
            for g in self.gateways:
                family.add_metric([g.gateway], value(g))
            yield family
        seq = GaugeMetricFamily(
            "vigil_ingest_highest_seq", "Highest batch seq received", labels=["gateway"]
        )
        lag = GaugeMetricFamily(
            "vigil_ingest_lag_seconds",
            "Now minus the newest measurement stored",
            labels=["gateway"],
        )
        for g in self.gateways:
            if g.highest_seq is not None:
                seq.add_metric([g.gateway], g.highest_seq)
            if g.lag_s is not None:
                lag.add_metric([g.gateway], g.lag_s)
        yield seq
        yield lag
