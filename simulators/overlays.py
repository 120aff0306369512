"""Labelled episodes laid over real recordings, the real noise kept.

A real night has what no simulator gets quite right: its device's quantisation and
dropouts, the motion of a sleeper, the dips of sleep. To know whether a rule catches a
desaturation on such a night, one is laid over it: the night's own level (its running
median over two minutes) is moved by the shape of a desaturation (a ramp of 10-25 s to a
nadir of 75-87.5 %, held, and back), and the night's short-term wobble, quantisation and
gaps stay on top of it. A tachycardia or bradycardia moves the night's pulse level towards
135-165 or 30-37 /min the same way, its beat-to-beat variation scaled with it. Depth, length
and shape are drawn from physiology, as the simulator's are (:mod:`simulators.scenarios`);
a recording of one value a minute gets episodes long enough for it to show (three of its
intervals at least).

The label is where the *clean* episode (the level moved by the shape) is past the line:
the time a clinician would say it began and ended.
"""

from __future__ import annotations

import warnings
from dataclasses import replace

import numpy as np
import numpy.typing as npt

from simulators.recordings import Recording
from simulators.scenarios import Episode, trapezoid

KINDS = ("desaturation", "tachycardia", "bradycardia")
PER_DAY = {"desaturation": (4, 9), "tachycardia": (2, 5), "bradycardia": (2, 5)}
"""How many episodes of each kind a day holds (drawn between the two)."""
APART_MS = 600_000
"""Episodes are at least ten minutes apart, and from the ends of the recording."""
BEFORE_MS = 300_000
"""The level an episode starts from: the night's median over the five minutes before."""


def overlay(
    recording: Recording, kind: str, seed: int, avoid: tuple[tuple[int, int], ...] = ()
) -> tuple[Recording, list[Episode]]:
    """The recording with episodes of ``kind`` laid over it, and their labels, ten minutes
    from each other and from the spans to ``avoid`` (the night's own events: an alert of
    theirs must not pass for one of the laid episodes). A recording without the channel (no
    pulse) gets none."""
    if kind not in KINDS:
        raise ValueError(f"{kind!r} is not one of {', '.join(KINDS)}")
    channel = recording.spo2 if kind == "desaturation" else recording.pulse
    if np.isnan(channel).all() or len(recording.time) < 2:
        return recording, []
    rng = np.random.default_rng(seed)
    low, high = PER_DAY[kind]
    wanted = max(1, round(rng.uniform(low, high) * recording.hours / 24))
    values = channel.copy()
    running = _running_median(channel, recording.time)
    taken: list[tuple[int, int]] = list(avoid)
    episodes: list[Episode] = []
    for _ in range(wanted * 20):
        if len(episodes) == wanted:
            break
        laid = _lay(recording, values, running, kind, rng, taken)
        if laid is not None:
            episodes.append(laid)
    if kind == "desaturation":
        return replace(recording, spo2=values), sorted(episodes, key=lambda e: e.start)
    return replace(recording, pulse=values), sorted(episodes, key=lambda e: e.start)


def _lay(
    recording: Recording,
    values: npt.NDArray[np.float64],
    running: npt.NDArray[np.float64],
    kind: str,
    rng: np.random.Generator,
    taken: list[tuple[int, int]],
) -> Episode | None:
    """One episode at a free place, laid over ``values`` (changed in place) around the
    night's ``running`` level."""
    step_s = max(recording.interval_s, 1.0)
    if kind == "desaturation":
        past_s = rng.uniform(max(30, 3 * step_s), max(180, 10 * step_s))
        target = rng.uniform(75, 87.5)
        ramp_s = max(rng.uniform(10, 25), step_s)
    else:
        past_s = rng.uniform(max(60, 3 * step_s), max(600, 10 * step_s))
        target = rng.uniform(135, 165) if kind == "tachycardia" else rng.uniform(30, 37)
        ramp_s = max(30.0, step_s)
    t = recording.time
    first, last = int(t[0]) + APART_MS, int(t[-1]) - APART_MS
    length_ms = round((past_s + 2 * ramp_s) * 1000)
    if last - first < length_ms:
        return None
    start = int(rng.integers(first, last - length_ms))
    if any(start < b + APART_MS and start + length_ms > a - APART_MS for a, b in taken):
        return None
    before = values[(t >= start - BEFORE_MS) & (t < start)]
    before = before[~np.isnan(before)]
    if len(before) < 3:
        return None
    level = float(np.median(before))
    line = {"desaturation": 88.0, "tachycardia": 130.0, "bradycardia": 40.0}[kind]
    already = level >= line if kind == "tachycardia" else level <= line
    if already:
        return None  # the night is past the line here: no episode to lay
    # The plateau lasts what the ramps leave of the time past the line.
    ramp_past = (line - target) / (level - target)
    plateau_s = max(past_s - 2 * ramp_s * ramp_past, 1.0)
    seconds = (t - start) / 1000
    shape = trapezoid(seconds, ramp_s, ramp_s + plateau_s, ramp_s)
    clean = running + (target - running) * shape
    if kind == "desaturation":
        values += clean - running
        np.clip(values, 50, 100, out=values)
    else:
        values *= clean / running
    past = (clean < line) if kind != "tachycardia" else (clean > line)
    inside = np.flatnonzero(past)
    if not len(inside):
        return None
    episode = Episode(kind, int(t[inside[0]]), int(t[inside[-1]]))
    taken.append((start, start + length_ms))
    return episode


LEVEL_MS = 120_000
"""The running median that is the night's level under an episode."""


def _running_median(
    values: npt.NDArray[np.float64], t: npt.NDArray[np.int64]
) -> npt.NDArray[np.float64]:
    """The median of the readings within a minute either side of each (NaN-skipping; the
    night's own value where there are none)."""
    step_ms = max(float(np.median(np.diff(t))), 1.0)
    half = max(int(LEVEL_MS / 2 / step_ms), 1)
    padded = np.pad(values, half, mode="edge")
    windows = np.lib.stride_tricks.sliding_window_view(padded, 2 * half + 1)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN windows (dropouts)
        level = np.nanmedian(windows, axis=1)
    return np.where(np.isnan(level), values, level)
