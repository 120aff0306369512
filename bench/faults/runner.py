"""Running the matrix: each fault on a stack of its own, its timeline, its drain, its entry.

A run's timeline is on the ward's clock (seconds since the wearables started): the
wearables connect (about 0.2 s each after a few seconds of scanning), stream a third of the
readings, the fault acts and returns when it is over, and the wearables stream on until the
run's readings are sent and the episode after the fault is over. Then they stop (their log
is complete), and the bench waits for the pipeline to drain: every reading sent stored, or
the gateway idle (its outbox empty, nothing unconfirmed) and nothing stored for a while;
then for the alerts to settle (every expected episode raised, every alert delivered, no
webhook notification pending). Only then is it counted.

Faults run one after another unless ``parallel`` says otherwise: each has its own servers
and ports, so runs side by side do not see each other's faults, only each other's load.
"""

from __future__ import annotations

import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psycopg

from bench.faults.episodes import Episode, judged, plan, write_scripts
from bench.faults.matrix import FAULTS, Fault, Options
from bench.faults.stack import Stack, connecting_s
from bench.faults.tally import SentLog, alerts, read_sent, readings, stored_readings
from vigil import metrics
from vigil.embedded.broker import find_mosquitto

DRAIN_S = 180.0
"""The longest wait for the pipeline to drain, plus a second per 2,000 readings sent (a
gateway resends what ingest has not confirmed after 60 s)."""
QUIET_S = 10.0
ALERTS_SETTLE_S = 60.0
REPEAT_GRACE_S = 2.0
"""After the alerts settle: time for a repeated delivery to show."""
_STORED = f"SELECT count(*) FROM observation WHERE metric <> {metrics.BATTERY.id}"
_BATCHES = (
    "SELECT count(*), coalesce(sum(deliveries - 1), 0), coalesce(sum(readings - stored), 0)"
    " FROM ingest_batch"
)
"""Batches, their redeliveries, and the rows of new batches the store already held under
the same (patient, metric, effective, device): readings of one device stamped in the same
millisecond (the gateway stamps on arrival), or readings a gateway sealed twice."""


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


class FaultBench:
    def __init__(
        self,
        options: Options,
        only: Sequence[str] = (),
        folder: Path | None = None,
        parallel: int = 1,
        progress: Callable[[str], None] = _stderr,
    ) -> None:
        unknown = [name for name in only if name not in FAULTS]
        if unknown:
            raise ValueError(f"--only {', '.join(unknown)}: one of {', '.join(FAULTS)}")
        if folder is not None and folder.exists() and any(folder.iterdir()):
            raise ValueError(f"--folder {folder} is not empty: give a new or an empty one")
        self.options = options
        self.names = list(dict.fromkeys(only)) or list(FAULTS)
        self.folder = folder
        self.parallel = parallel
        self.progress = progress
        self._abort = threading.Event()

    def run(self) -> dict[str, Any]:
        with tempfile.TemporaryDirectory(prefix="vigil-faults-") as temp:
            root = self.folder or Path(temp)
            # The longest first, so that side by side the last to end is not a long one.
            longest_first = sorted(self.names, key=lambda n: -self._planned_s(FAULTS[n]))
            with ThreadPoolExecutor(self.parallel) as pool:
                try:
                    entries = pool.map(lambda n: self._one(FAULTS[n], root / n), longest_first)
                    done = dict(zip(longest_first, entries, strict=True))
                except KeyboardInterrupt:
                    self._abort.set()  # the runs end at their next wait, and clean up
                    raise
            faults = {name: done[name] for name in self.names}
        o = self.options
        return {
            "faults": faults,
            "readings_per_fault": o.readings,
            "patients": o.patients,
            "interval_s": o.interval_s,
            "planned_readings_per_s": round(o.readings_per_s()),
            "parallel": self.parallel,
        }

    def _timeline(self, fault: Fault) -> tuple[float, list[Episode]]:
        """When the fault starts on the ward's clock, and the run's episodes."""
        o = self.options
        connected_s = connecting_s(o.patients)
        fault_s = connected_s + o.lead_s()
        episodes = plan(
            o.patients, connected_s, fault_s, fault_s + fault.across_s, fault_s + fault.lasts_s(o)
        )
        return fault_s, episodes

    def _planned_s(self, fault: Fault) -> float:
        _, episodes = self._timeline(fault)
        return max(e.end_s for e in episodes)

    def _one(self, fault: Fault, folder: Path) -> dict[str, Any]:
        reason = fault.unavailable()
        if reason is None and find_mosquitto() is None:
            reason = (
                "needs Mosquitto (persistent sessions, a persistence file): apt install mosquitto"
            )
        if reason is not None:
            self.progress(f"[{fault.name}] skipped: {reason}")
            return {"skipped": reason}
        o = self.options
        fault_s, episodes = self._timeline(fault)
        folder.mkdir(parents=True, exist_ok=True)
        scripts = folder / "scripts.json"
        write_scripts(episodes, scripts)

        def progress(line: str) -> None:
            self.progress(f"[{fault.name}] {line}")

        stack = Stack(
            folder, o.patients, o.interval_s, scripts, fault.layout, progress, self._abort
        )
        try:
            stack.start()
            return self._run(fault, stack, episodes, fault_s)
        except (RuntimeError, psycopg.Error) as exc:
            progress(f"failed: {exc}")
            return {"error": str(exc), "unplanned_exits": stack.unplanned}
        finally:
            stack.close()

    def _run(
        self, fault: Fault, stack: Stack, episodes: list[Episode], fault_s: float
    ) -> dict[str, Any]:
        o = self.options
        connected, sent_when_connected = stack.ward_s(), stack.sent()
        stack.progress(
            f"{2 * o.patients} wearables connected at {connected:.0f} s; "
            f"the fault at {fault_s:.0f} s"
        )
        stack.wait_for(lambda: stack.ward_s() >= fault_s, fault_s)
        began, sent_before = stack.ward_s(), stack.sent()
        notes = fault.act(stack, o)
        ended, sent_by_end = stack.ward_s(), stack.sent()
        stack.progress(f"fault over after {ended - began:.0f} s")
        caught_up = _CatchUp(stack, sent_by_end)
        until = max(e.end_s for e in episodes) + 3
        stream_s = 3 * o.readings / o.readings_per_s() + until

        def streamed() -> bool:
            caught_up.poll()
            return stack.sent() >= o.readings and stack.ward_s() >= until

        stack.wait_for(streamed, stream_s)
        stack.stop_wearables()
        streamed_s = stack.ward_s() - connected
        sent = read_sent(stack.sent_log)
        stack.progress(f"{sent.total} readings sent; draining")
        drain_began = time.monotonic()
        drained = stack.wait_for(_Drained(stack, sent).check, DRAIN_S + sent.total / 2000)
        drain_s = time.monotonic() - drain_began
        verdicts = judged(episodes, sent.spo2, o.interval_s)
        expected = {p for p, v in verdicts.items() if v["verdict"] == "expected"}
        settled = stack.wait_for(lambda: _alerts_settled(stack, expected), ALERTS_SETTLE_S)
        stack.sleep(REPEAT_GRACE_S)
        entry = self._count(stack, sent, verdicts)
        stack.progress(
            f"lost {entry['lost']}, doubled {entry['doubled']}; alerts expected "
            f"{entry['alerts_expected']}, raised {entry['alerts_raised']}, notified "
            f"{entry['alerts_notified']}"
        )
        return {
            **entry,
            "connected_at_s": round(connected, 1),
            "sent_per_s": round((sent.total - sent_when_connected) / streamed_s),
            "fault_at_s": round(began, 1),
            "fault_s": round(ended - began, 1),
            "sent_during_fault": sent_by_end - sent_before,
            "caught_up_after_fault_s": caught_up.after_s,
            "drain_s": round(drain_s, 1),
            "drained": drained,
            "alerts_settled": settled,
            **notes,
            "unplanned_exits": stack.unplanned,
        }

    @staticmethod
    def _count(stack: Stack, sent: SentLog, verdicts: dict[str, dict[str, Any]]) -> dict[str, Any]:
        assert stack.desk is not None and stack.events is not None
        stored = stored_readings(stack.query("SELECT device, metric, value FROM observation"))
        raised = stack.query("SELECT id, patient, rule FROM alert ORDER BY id")
        deliveries, _ = stack.desk.snapshot()
        batches, redeliveries, not_stored = stack.query(_BATCHES)[0]
        (dead_letters,) = stack.query("SELECT count(*) FROM dead_letter")[0]
        status = stack.gateway_status()
        return {
            **readings(sent, stored),
            **alerts([(int(i), p, r) for i, p, r in raised], deliveries, verdicts),
            "batches": int(batches),
            "batch_redeliveries": int(redeliveries),
            "store_key_collisions": int(not_stored),
            "dead_letters": int(dead_letters),
            "gateway_at_end": None
            if status is None
            else {
                "outbox_depth": status.outbox_depth,
                "unconfirmed": status.unconfirmed,
                "dropped": status.dropped,
                "readings": status.readings,
                "cpu_s": status.cpu_s,
            },
            "events": stack.events.summary(),
            "analytics_resumed": [
                line.split(": ", 1)[-1]
                for line in stack.services["analytics"].log.read_text(errors="replace").splitlines()
                if "resumed" in line or "caught up" in line
            ],
        }


class _CatchUp:
    """When, after the fault, the database held about as many readings as were sent by its
    end (a count, not a match: for the backlog's drain time, not for the accounting)."""

    def __init__(self, stack: Stack, sent_by_end: int) -> None:
        self.stack = stack
        self.target = sent_by_end
        self.started = time.monotonic()
        self.after_s: float | None = None
        self._next = 0.0

    def poll(self) -> None:
        """At most once a second (a count of the whole table)."""
        if self.after_s is None and time.monotonic() >= self._next:
            self._next = time.monotonic() + 1.0
            stored = self.stack.stored()
            if stored is not None and stored >= self.target:
                self.after_s = round(time.monotonic() - self.started, 1)


class _Drained:
    """Every reading sent is stored (battery levels aside, which a connection also reads);
    or the gateway holds nothing more and nothing has been stored for a while."""

    def __init__(self, stack: Stack, sent: SentLog) -> None:
        self.stack = stack
        battery = metrics.BATTERY.name
        self.target = sum(n for key, n in sent.readings.items() if key[1] != battery)
        self._last = -1
        self._quiet_since = time.monotonic()

    def check(self) -> bool:
        try:
            stored = int(self.stack.query(_STORED)[0][0])
        except psycopg.OperationalError:
            return False
        if stored >= self.target:
            return True
        if stored != self._last:
            self._last, self._quiet_since = stored, time.monotonic()
        status = self.stack.gateway_status()
        idle = status is not None and status.outbox_depth == 0 and not status.unconfirmed
        return idle and time.monotonic() - self._quiet_since >= QUIET_S


def _alerts_settled(stack: Stack, expected: set[str]) -> bool:
    assert stack.desk is not None
    try:
        raised = stack.query("SELECT id, patient FROM alert")
        (pending,) = stack.query(
            "SELECT count(*) FROM notification WHERE state = 'pending' AND channel = 'webhook'"
        )[0]
    except psycopg.OperationalError:
        return False
    deliveries, _ = stack.desk.snapshot()
    delivered = {alert for alert, _ in deliveries}
    return (
        expected <= {p for _, p in raised}
        and all(i in delivered for i, _ in raised)
        and pending == 0
    )
