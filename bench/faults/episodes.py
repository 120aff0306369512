"""The desaturations a fault run injects, and which of them the default rules must alert on.

Three patients of each run desaturate, each once (an alert is a patient's episode, so a
second one within the auto-resolve hour would join the first): one soon after the
wearables connect (its alert is settled before the fault), one timed so that its alert is
due while the fault acts, and one once the fault is over (the pipeline has recovered). The
desaturations are deep and short (75 % for 10 s), so a run stays short and each is far past
the rule's threshold.

What counts as expected is judged from the wearables' own sent log, not from the plan:
readings a wearable did not send (its gateway was down, it was not subscribed) are not
there, and an episode they cut short may not be one the rule must catch. Each sent SpO2
reading stands for one tick of the ward; the deficit below the rule's limit is integrated
the way the rule does (leaking above the limit, reset at ``clear_at``), and an episode is
expected when it reaches twice the rule's SatSeconds: the gateway stamps readings when they
arrive, and a burst of late notifications spans less time than the ticks that made them.
An episode between one and two times the threshold is reported as marginal, expected of
neither outcome.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from analytics.detectors.depth import DepthRule
from analytics.rules import SCALE_1
from simulators.ble.ward import patient_id

RULE = next(r for r in SCALE_1 if r.name == "spo2_desaturation")
"""The rule whose alerts the bench counts (scale 1, the default)."""
TARGET = 75.0
RAMP_S = 2.0
HOLD_S = 10.0
MARGIN = 2.0
"""Times the rule's SatSeconds an episode must reach in the sent log to be expected."""
ALERT_DUE_S = 6.0
"""About when after its start an episode's alert is due (the ramp, the saturation's lag
behind it, and the deficit building to SatSeconds)."""


@dataclass(frozen=True, slots=True)
class Episode:
    patient: str
    start_s: float
    """Seconds after the wearables start (the ward's clock)."""
    why: str

    @property
    def end_s(self) -> float:
        return self.start_s + 2 * RAMP_S + HOLD_S

    def script(self) -> dict[str, float | str]:
        """As `vigil simulate --scripted FILE` takes it."""
        return {
            "vital": "spo2",
            "target": TARGET,
            "start_s": self.start_s,
            "hold_s": HOLD_S,
            "ramp_s": RAMP_S,
        }


def plan(
    patients: int, connected_s: float, fault_s: float, across_s: float, over_s: float
) -> list[Episode]:
    """The run's episodes on three patients (of at least three) spread over the ward:
    ``connected_s`` when the wearables are expected to stream, ``fault_s`` when the fault
    starts, ``across_s`` the start of the episode whose alert falls in the fault, ``over_s``
    when the fault is expected to be over."""
    chosen = [patient_id(i * patients // 3) for i in range(3)]
    return [
        Episode(chosen[0], connected_s + 1.0, "before"),
        Episode(chosen[1], max(connected_s + 1.0, across_s), "across"),
        Episode(chosen[2], max(fault_s, over_s) + 3.0, "after"),
    ]


def write_scripts(episodes: Iterable[Episode], path: Path) -> None:
    path.write_text(json.dumps({e.patient: [e.script()] for e in episodes}))


def deficit_pct_s(spo2: Iterable[float], tick_s: float, rule: DepthRule = RULE) -> float:
    """The largest deficit (%·s) the rule's leaky integral reaches over these readings,
    each standing for one tick."""
    area = peak = 0.0
    for value in spo2:
        area = 0.0 if value >= rule.clear_at else max(0.0, area + (rule.limit - value) * tick_s)
        peak = max(peak, area)
    return peak


def judged(
    episodes: Iterable[Episode], spo2_sent: dict[str, list[float]], tick_s: float
) -> dict[str, dict[str, float | str]]:
    """Per episode's patient: its deficit in the sent log and the verdict (expected,
    marginal, or not: the readings did not show enough of it)."""
    threshold = RULE.sat_seconds or 0.0
    verdicts: dict[str, dict[str, float | str]] = {}
    for episode in episodes:
        deficit = deficit_pct_s(spo2_sent.get(episode.patient, []), tick_s)
        if deficit >= MARGIN * threshold:
            verdict = "expected"
        elif deficit >= threshold:
            verdict = "marginal"
        else:
            verdict = "not sent"
        verdicts[episode.patient] = {
            "why": episode.why,
            "start_s": round(episode.start_s, 1),
            "deficit_pct_s": round(deficit, 1),
            "verdict": verdict,
        }
    return verdicts
