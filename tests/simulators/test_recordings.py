"""The loaders of real recordings, on small excerpts made here with the real files' quirks."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from simulators.recordings import RecordingError, load, load_folder


def write(folder: Path, name: str, text: str, bom: bool = False) -> Path:
    path = folder / name
    path.write_bytes(("\ufeff" if bom else "").encode() + text.encode())
    return path


def nan_list(values: np.ndarray) -> list[float | None]:
    return [None if math.isnan(v) else float(v) for v in values]


def test_a_ring_export_with_a_byte_order_mark_and_no_values(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "ring.csv",
        "Time,Oxygen Level,Pulse Rate,Motion\n"
        "23:59:58 11/07/2024,95,61,0\n"
        "00:00:00 12/07/2024,- -,- -,3\n"  # past midnight, the date moves on
        "00:00:02 12/07/2024,94,60,0\n",
        bom=True,
    )
    r = load(path)
    assert r.source == "checkme" and r.interval_s == 2.0
    assert nan_list(r.spo2) == [95, None, 94] and nan_list(r.pulse) == [61, None, 60]


def test_a_sleep_oximeter_with_a_twelve_hour_clock_and_blank_cells(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "night.csv",
        "Date,Time,SpO2(%),PR(bpm)\n"
        "10/29/2024,11:59:59 PM,96,58\n"
        "10/30/2024,12:00:00 AM,,\n"
        "10/30/2024,12:00:01 AM,95,\n",
    )
    r = load(path)
    assert r.source == "emay" and np.diff(r.time).tolist() == [1000, 1000]
    assert nan_list(r.spo2) == [96, None, 95] and nan_list(r.pulse) == [58, None, None]


def test_monitor_numerics_a_row_a_minute_where_zero_is_absent(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "icu_decoded.csv",
        "minute,HR(bpm),PULSE(bpm),SpO2(%),RESP(rpm)\n"
        "0,80,79,97,14\n"
        "1,81,0,0,15\n"  # no oximeter pulse: the ECG's rate stands in; SpO2 absent
        "2,82,,,16\n",
    )
    r = load(path)
    assert r.source == "numerics" and r.interval_s == 60.0
    assert nan_list(r.spo2) == [97, None, None] and nan_list(r.pulse) == [79, 81, 82]


def test_a_physiozoo_file_with_a_yaml_header(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "304.txt",
        "---\nMammal: human\nFs: 1\nChannels:\n  - type: SpO2\n---\n97\n0\n\n88\n",
    )
    r = load(path)
    assert r.source == "physiozoo" and r.time.tolist() == [0, 1000, 2000]
    assert nan_list(r.spo2) == [97, None, 88] and all(math.isnan(p) for p in r.pulse)


def test_a_decoded_cms50_session_with_empty_cells_and_a_zone_kept(tmp_path: Path) -> None:
    text = (
        "time,spo2_pct,pulse_bpm\n2024-03-31T00:59:59+00:00,97,44\n"
        "2024-03-31T02:00:00+01:00,,\n"  # the clocks went forward: one second later
    )
    r = load(write(tmp_path, "session_decoded.csv", text))
    assert r.source == "contec" and nan_list(r.spo2) == [97, None]
    assert np.diff(r.time).tolist() == [1000]


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("hello,world\n1,2\n", "no loader knows a file that starts 'hello,world"),
        ("---\nMammal: human\n---\n97\n", "no sampling rate"),
        ("Date,Time,SpO2(%),PR(bpm)\nyesterday,noon,96,58\n", "not a emay file"),
        ("Time,Oxygen Level,Pulse Rate,Motion\n", "no readings"),
    ],
)
def test_what_no_loader_reads_is_named(tmp_path: Path, text: str, words: str) -> None:
    with pytest.raises(RecordingError, match=words):
        load(write(tmp_path, "x.csv", text))


def test_a_folder_skips_its_descriptions_and_reports_what_it_cannot_read(tmp_path: Path) -> None:
    write(tmp_path, "README.txt", "Real recordings\n")
    write(tmp_path, "PROVENANCE.txt", "from somewhere\n")
    write(tmp_path, "odd.csv", "a,b\n1,2\n")
    for night in ("a", "b"):  # two nights of the same name, in folders of their own
        (tmp_path / night).mkdir()
        write(tmp_path / night, "304.txt", "---\nFs: 1\n---\n97\n96\n")
    recordings, skipped = load_folder(tmp_path)
    assert [r.name for r in recordings] == ["a/304", "b/304"]
    assert len(skipped) == 1 and skipped[0].startswith("odd.csv")
