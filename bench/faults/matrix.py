"""The faults of issue 17's matrix: what each does to a running stack, and how long it is
expected to last (the run places an episode after it, to see the pipeline recovered).

Each fault starts once the wearables have streamed for a third of the run's readings (at
least 8 s), acts, and returns when it is over: its notes (timings, kills) go into its entry
of the bench's JSON. Kills are SIGKILL; stops are SIGTERM, the clean way down a deploy takes.
"""

from __future__ import annotations

import errno
import os
import shutil
import signal
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bench.faults.episodes import ALERT_DUE_S
from bench.faults.stack import CLIENT_IDS, Layout, Stack, connecting_s
from vigil.embedded import netns

RR_PER_S = 1.2
"""RR intervals a strap sends a second (a pulse of about 72)."""
BATTERY_PER_S = 2 / 3.6
"""Battery notifications a patient's two wearables send a second (a point each 3.6 s)."""
INGEST_LIVES = 4
"""ingest_kill: lives that die through the crash hook, after the plain SIGKILL."""
ALERTS_LIVES = 4
"""alerts_kill: lives that die through the crash hook."""
DISK_FULL_MB = 64
"""The gateway's tmpfs: far more than a run's outbox, and quick to fill."""
DISK_FULL_S = 20.0
RECOVERY_S = 180.0
"""How long a recovering process (a reconnecting gateway, a restarted broker's clients) is
waited for before the run goes on without it; TCP's backoff after a long cut is up to 2 min."""


@dataclass(frozen=True, slots=True)
class Options:
    readings: int = 100_000
    """Readings per fault, at least: the wearables stream until this many are sent and the
    fault, and the episode after it, are over."""
    outage_s: float = 600.0
    cut_s: float = 120.0
    patients: int = 20
    interval_s: float = 0.05

    def __post_init__(self) -> None:
        if self.patients < 3:
            raise ValueError("--patients: at least 3 (each run puts an episode on three)")
        if self.interval_s <= 0:
            raise ValueError("--interval must be above 0 (e.g. 50ms)")

    def readings_per_s(self) -> float:
        return self.patients * (3 / self.interval_s + RR_PER_S + BATTERY_PER_S)

    def lead_s(self) -> float:
        """Streaming before the fault: a third of the readings, and at least 8 s."""
        return max(8.0, self.readings / 3 / self.readings_per_s())

    def ingest_away_s(self) -> float:
        """broker_kill: how long ingest is away while the broker queues for it."""
        return min(30.0, self.lead_s())


@dataclass(frozen=True, slots=True)
class Fault:
    name: str
    act: Callable[[Stack, Options], dict[str, Any]]
    lasts_s: Callable[[Options], float]
    """Expected duration, for placing the episode after it (a longer one is waited out)."""
    layout: Layout = field(default_factory=Layout)
    across_s: float = -ALERT_DUE_S
    """When the episode whose alert falls in the fault starts, from the fault's start: by
    default its alert is due as the fault strikes."""
    unavailable: Callable[[], str | None] = lambda: None


def _broker_kill(stack: Stack, options: Options) -> dict[str, Any]:
    """Ingest stopped (a deploy, a crash loop) while the gateway publishes: the broker
    queues for ingest's session, then dies without saving what it queued since its last
    autosave; restarted on the same port and persistence file, and ingest with it."""
    assert stack.broker is not None
    ingest = stack.services["ingest"]
    away = options.ingest_away_s()
    stack.progress(f"ingest stopped for {away:.0f} s: the broker queues for it")
    ingest.stop()
    before = stack.sent()
    stack.sleep(away)
    stack.progress("broker SIGKILLed, restarted on its port and persistence file")
    stack.broker.kill()
    queued = stack.sent() - before
    stack.sleep(1.0)
    stack.broker.restart()
    ingest.start()
    return {"ingest_away_s": round(away, 1), "sent_while_queued": queued}


def _broker_stop(stack: Stack, options: Options) -> dict[str, Any]:
    """The broker stopped cleanly (it saves its sessions) for the outage, then started."""
    assert stack.broker is not None
    stack.progress(f"broker stopped for {options.outage_s:.0f} s")
    stack.broker.stop()
    stack.sleep(options.outage_s)
    stack.broker.restart()
    back = stack.ward_s()
    stack.wait_for(stack.gateway_online, RECOVERY_S)
    return {"outage_s": options.outage_s, "gateway_back_after_s": round(stack.ward_s() - back, 1)}


def _ingest_kill(stack: Stack, _options: Options) -> dict[str, Any]:
    """A plain SIGKILL, then lives that each store and die before acknowledging."""
    ingest = stack.services["ingest"]
    stack.progress(f"ingest SIGKILLed, then {INGEST_LIVES} lives killed between commit and ack")
    ingest.kill()
    ingest.armed_lives = INGEST_LIVES - 1
    ingest.start(armed=True)
    done = stack.wait_for(lambda: ingest.kills > INGEST_LIVES and not ingest.armed, RECOVERY_S)
    if not done:  # it stopped committing (nothing came): disarmed, it runs on
        ingest.stop()
        ingest.start()
    return {"kills": ingest.kills}


def _analytics_kill(stack: Stack, _options: Options) -> dict[str, Any]:
    analytics = stack.services["analytics"]
    stack.progress("analytics SIGKILLed, restarted")
    analytics.kill()
    stack.sleep(1.0)
    analytics.start()
    return {"kills": analytics.kills}


def _alerts_kill(stack: Stack, _options: Options) -> dict[str, Any]:
    """Lives that each commit (alerts changed, notifications owed) and die before
    delivering or acknowledging; the first comes with the episode's first event, and one of
    the later ones with the commit that owes its notification."""
    alerts = stack.services["alerts"]
    stack.progress(f"alerts restarted with its crash hook: {ALERTS_LIVES} lives die after commit")
    alerts.stop()  # the hook is read at start; a clean stop owes nothing
    alerts.armed_lives = ALERTS_LIVES - 1
    alerts.start(armed=True)
    done = stack.wait_for(lambda: alerts.kills >= ALERTS_LIVES and not alerts.armed, RECOVERY_S)
    if not done:
        alerts.stop()
        alerts.start()
    return {"kills": alerts.kills}


def _gateway_kill(stack: Stack, _options: Options) -> dict[str, Any]:
    assert stack.gateway is not None
    stack.progress("gateway SIGKILLed, restarted")
    stack.gateway.kill()
    killed = stack.devices_report()  # retained: 'connected' until the new one reports
    stack.sleep(1.0)
    stack.gateway.start()
    back = stack.ward_s()
    stack.wait_for(
        lambda: stack.devices_report() is not killed and stack.all_connected(), RECOVERY_S
    )
    return {"reconnected_after_s": round(stack.ward_s() - back, 1)}


def _postgres_restart(stack: Stack, _options: Options) -> dict[str, Any]:
    stack.progress("PostgreSQL stopped for 3 s, started again")
    stack.restart_postgres(3.0)
    return {"down_s": 3.0}


def _postgres_backend_kill(stack: Stack, _options: Options) -> dict[str, Any]:
    """The backend of ingest's connection, found by the application name the bench gives
    ingest (libpq's PGAPPNAME): PostgreSQL then ends every session and recovers."""
    found: list[tuple[Any, ...]] = []
    backends = (
        "SELECT pid, left(query, 80) FROM pg_stat_activity WHERE application_name = "
        f"'{CLIENT_IDS['ingest']}' ORDER BY backend_start DESC"
    )

    def ingest_backend() -> bool:
        found[:] = stack.query(backends)
        return bool(found)

    if not stack.wait_for(ingest_backend, 20):
        raise RuntimeError("ingest's PostgreSQL backend is not in pg_stat_activity")
    pid, statement = found[0]
    stack.progress(f"SIGKILL to ingest's PostgreSQL backend (pid {pid})")
    os.kill(pid, signal.SIGKILL)
    return {"backend_pid": pid, "its_last_statement": statement, "ingest_backends": len(found)}


def _network_cut(stack: Stack, options: Options) -> dict[str, Any]:
    """The namespace's link down (TCP stalls both ways, nothing is refused), then up."""
    assert stack.link is not None
    stack.progress(f"the gateway's network cut for {options.cut_s:.0f} s")
    stack.link.cut()
    cut = stack.ward_s()
    offline = stack.wait_for(lambda: not stack.gateway_online(), options.cut_s)
    dropped_after = round(stack.ward_s() - cut, 1) if offline else None
    stack.sleep(options.cut_s - (stack.ward_s() - cut))
    stack.link.restore()
    back = stack.ward_s()
    stack.wait_for(stack.gateway_online, RECOVERY_S)
    return {
        "cut_s": options.cut_s,
        "broker_dropped_gateway_after_s": dropped_after,
        "gateway_back_after_s": round(stack.ward_s() - back, 1),
    }


def _disk_full(stack: Stack, _options: Options) -> dict[str, Any]:
    """The gateway's tmpfs filled to its last byte for a while, then the filler deleted."""
    filler = stack.gateway_dir / "filler"
    filled = _fill(filler)
    stack.progress(
        f"the gateway's disk full ({filled / 2**20:.0f} MiB filler) for {DISK_FULL_S:.0f} s"
    )
    stack.sleep(DISK_FULL_S)
    status = stack.gateway_status()  # its last before the disk is freed
    filler.unlink()
    return {
        "full_s": DISK_FULL_S,
        "filler_mb": round(filled / 2**20, 1),
        "gateway_while_full": None
        if status is None
        else {"state": status.state, "outbox": status.outbox_depth, "dropped": status.dropped},
    }


def _fill(path: os.PathLike[str]) -> int:
    """Write zeros until the file system has no byte left; returns how many were written."""
    written = 0
    with open(path, "wb", buffering=0) as filler:
        for chunk in (2**20, 4096, 1):
            block = bytes(chunk)
            try:
                while True:
                    written += filler.write(block)
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
    return written


def _mount_unavailable() -> str | None:
    if os.geteuid() != 0:
        return "mounting the gateway's tmpfs needs root"
    if shutil.which("mount") is None:
        return "no mount command"
    return None


FAULTS = {
    f.name: f
    for f in (
        Fault("broker_kill", _broker_kill, lambda o: o.ingest_away_s() + 3),
        Fault("broker_stop", _broker_stop, lambda o: o.outage_s + 5),
        Fault("ingest_kill", _ingest_kill, lambda _: 5.0 * (INGEST_LIVES + 1)),
        Fault("analytics_kill", _analytics_kill, lambda _: 4.0),
        Fault("alerts_kill", _alerts_kill, lambda _: 4.0 * ALERTS_LIVES, across_s=1.0),
        Fault("gateway_kill", _gateway_kill, lambda o: connecting_s(o.patients)),
        Fault("postgres_restart", _postgres_restart, lambda _: 5.0),
        Fault("postgres_backend_kill", _postgres_backend_kill, lambda _: 3.0),
        Fault(
            "network_cut",
            _network_cut,
            lambda o: o.cut_s + 5,
            layout=Layout(netns=True),
            unavailable=netns.unavailable,
        ),
        Fault(
            "disk_full",
            _disk_full,
            lambda _: DISK_FULL_S + 3,
            layout=Layout(tmpfs_mb=DISK_FULL_MB),
            unavailable=_mount_unavailable,
        ),
    )
}
"""Issue 17's matrix, in its order."""
