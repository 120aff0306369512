"""Real oximetry recordings as the evaluation reads them: one loader per file format.

The recordings (and the judging ones, from other devices) come as the devices' own exports:
a ring's CSV with ``- -`` for no value, a sleep oximeter's 12-hour-clock CSV, a decoded
CMS50 session with empty cells, ICU monitor numerics at one a minute where 0 means the
parameter was absent, PhysioZoo text with a YAML header. Each loader turns a file into a
:class:`Recording`: times in epoch milliseconds, SpO2 and pulse with NaN where the device
had no value. A missing value becomes no reading at all, as the gateway drops the 'no value'
of a Bluetooth oximeter; the gap is then what the rules see. Local times without a zone are
read as UTC: the rules look at intervals, not at the time of day.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import numpy.typing as npt


class RecordingError(ValueError):
    """A file that is not a recording any loader reads; the message says why."""


@dataclass(frozen=True)
class Recording:
    """One patient's night (or day) as a device recorded it."""

    name: str
    source: str
    """Which format it came in."""
    time: npt.NDArray[np.int64]
    spo2: npt.NDArray[np.float64]
    pulse: npt.NDArray[np.float64]
    """NaN throughout where the device has no pulse channel."""

    @property
    def hours(self) -> float:
        return float(self.time[-1] - self.time[0]) / 3_600_000 if len(self.time) > 1 else 0.0

    @property
    def interval_s(self) -> float:
        return float(np.median(np.diff(self.time))) / 1000 if len(self.time) > 1 else 0.0


def _number(text: str | None, absent: tuple[float, ...] = ()) -> float:
    """A value, or NaN for what the device wrote when it had none (blank, ``- -``, ``0``
    where 0 means absent)."""
    try:
        value = float((text or "").strip())
    except ValueError:
        return float("nan")
    return float("nan") if value in absent or not np.isfinite(value) else value


def _ms(moment: datetime) -> int:
    """Epoch milliseconds; a time without a zone is taken as UTC, one with its offset kept."""
    zoned = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return round(zoned.timestamp() * 1000)


def _table(
    name: str,
    source: str,
    rows: list[tuple[int, float, float]],
) -> Recording:
    if not rows:
        raise RecordingError(f"{name}: no readings")
    rows.sort()
    time, spo2, pulse = (np.asarray(c) for c in zip(*rows, strict=True))
    return Recording(name, source, time.astype(np.int64), spo2.astype(float), pulse.astype(float))


def _checkme(name: str, lines: list[str]) -> Recording:
    """Wellue Checkme O2 (ViHealth export): ``Time,Oxygen Level,Pulse Rate,Motion``, times
    like ``21:58:53 11/07/2026``, ``- -`` where there is no value."""
    rows = []
    for row in csv.DictReader(lines):
        at = datetime.strptime(row["Time"].strip(), "%H:%M:%S %d/%m/%Y")
        rows.append((_ms(at), _number(row["Oxygen Level"]), _number(row["Pulse Rate"])))
    return _table(name, "checkme", rows)


def _emay(name: str, lines: list[str]) -> Recording:
    """EMAY-style sleep oximeter export: ``Date,Time,SpO2(%),PR(bpm)``, ``10/29/2024`` and
    ``11:00:21 PM``, blank cells where there is no value."""
    rows = []
    for row in csv.DictReader(lines):
        at = datetime.strptime(f"{row['Date']} {row['Time']}".strip(), "%m/%d/%Y %I:%M:%S %p")
        rows.append((_ms(at), _number(row["SpO2(%)"]), _number(row["PR(bpm)"])))
    return _table(name, "emay", rows)


def _contec(name: str, lines: list[str]) -> Recording:
    """A decoded CMS50-family session: ``time,spo2_pct,pulse_bpm``, ISO-like local times,
    empty where the device said 'no finger'."""
    rows = []
    for row in csv.DictReader(lines):
        at = datetime.fromisoformat(row["time"].strip())
        rows.append((_ms(at), _number(row["spo2_pct"]), _number(row["pulse_bpm"])))
    return _table(name, "contec", rows)


def _numerics(name: str, lines: list[str]) -> Recording:
    """Bedside-monitor numerics decoded from WFDB (MIMIC): one row a minute, ``minute`` then
    one column per parameter; 0 means the parameter was absent, empty that it was missing.
    The oximeter's pulse is the pulse; the ECG heart rate stands in where it is absent."""
    rows = []
    for row in csv.DictReader(lines):
        minute = int(float(row["minute"]))
        pulse = _number(row.get("PULSE(bpm)"), absent=(0.0,))
        if np.isnan(pulse):
            pulse = _number(row.get("HR(bpm)"), absent=(0.0,))
        rows.append((minute * 60_000, _number(row.get("SpO2(%)"), absent=(0.0,)), pulse))
    return _table(name, "numerics", rows)


def _physiozoo(name: str, lines: list[str]) -> Recording:
    """PhysioZoo text: a YAML header between ``---`` lines naming ``Fs``, then one SpO2 value
    per line; 0 is a dropout."""
    fences = [i for i, line in enumerate(lines) if line.strip() == "---"]
    if len(fences) < 2:
        raise RecordingError(f"{name}: a PhysioZoo file has a header between two --- lines")
    header = "".join(lines[fences[0] + 1 : fences[1]])
    rate = re.search(r"^\s*Fs:\s*([0-9.]+)", header, flags=re.M)
    if rate is None or float(rate[1]) <= 0:
        raise RecordingError(f"{name}: the header names no sampling rate (Fs)")
    step_ms = 1000 / float(rate[1])
    values = [_number(line, absent=(0.0,)) for line in lines[fences[1] + 1 :] if line.strip()]
    rows = [(round(i * step_ms), v, float("nan")) for i, v in enumerate(values)]
    return _table(name, "physiozoo", rows)


_BY_HEADER: list[tuple[re.Pattern[str], Callable[[str, list[str]], Recording]]] = [
    (re.compile(r"^Time,Oxygen Level,Pulse Rate"), _checkme),
    (re.compile(r"^Date,Time,SpO2\(%\),PR\(bpm\)"), _emay),
    (re.compile(r"^time,spo2_pct,pulse_bpm"), _contec),
    (re.compile(r"^minute,.*SpO2\(%\)"), _numerics),
    (re.compile(r"^---\s*$"), _physiozoo),
]


def load(path: Path) -> Recording:
    """The recording in ``path``, by the format its first line shows."""
    try:
        text = path.read_text(encoding="utf-8-sig")  # a byte-order mark is no part of it
    except (OSError, UnicodeDecodeError) as exc:
        raise RecordingError(f"{path.name}: cannot be read ({exc})") from None
    lines = io.StringIO(text).readlines()
    first = lines[0] if lines else ""
    for header, loader in _BY_HEADER:
        if header.match(first):
            try:
                return loader(path.stem, lines)
            except (KeyError, ValueError) as exc:
                if isinstance(exc, RecordingError):
                    raise
                raise RecordingError(
                    f"{path.name}: not a {loader.__name__[1:]} file ({exc})"
                ) from None
    raise RecordingError(f"{path.name}: no loader knows a file that starts {first[:40]!r}")


_NOT_RECORDINGS = re.compile(r"^(readme|provenance|licen[cs]e|records)", re.I)
"""What sits beside recordings to describe them."""


def load_folder(folder: Path) -> tuple[list[Recording], list[str]]:
    """Every recording under ``folder``, named by its path there (what no loader knows is
    reported, not fatal)."""
    recordings, skipped = [], []
    paths = (p for p in folder.rglob("*") if p.suffix in (".csv", ".txt"))
    for path in sorted(p for p in paths if not _NOT_RECORDINGS.match(p.name)):
        try:
            recording = load(path)
        except RecordingError as exc:
            skipped.append(str(exc))
            continue
        recordings.append(
            replace(recording, name=path.relative_to(folder).with_suffix("").as_posix())
        )
    return recordings, skipped
