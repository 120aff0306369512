"""Replaying recorded readings: parsing with bad rows, and the CLI end to end."""

import json
from pathlib import Path

import psycopg
import pytest
from hypothesis import given
from hypothesis import strategies as st

from analytics.engine import Engine
from analytics.replay import ReplayError, parse_csv, replay
from ingest import writer
from tests.builders import batch
from tests.cli.test_main import vigil

GOOD_AND_BAD = """patient,time,metric,value,flags
p1,2026-01-01T10:00:00Z,spo2,96,0
p1,1767261601,spo2,85,
p1,2026-01-01T10:00:02+00:00,spo2,abc,0
p1,yesterday,spo2,85,0
p1,2026-01-01T10:00:03,spo2,85,0
p 1,2026-01-01T10:00:04Z,spo2,85,0
p1,2026-01-01T10:00:05Z,glucose,5,0
p1,2026-01-01T10:00:06Z,spo2,nan,0
p1,2026-01-01T10:00:07Z,spo2,85,x
p1,inf,spo2,85,0
"""


def test_bad_rows_are_reported_by_line_and_skipped() -> None:
    rows = parse_csv(GOOD_AND_BAD.splitlines(keepends=True))
    assert rows.time == [1_767_261_600_000, 1_767_261_601_000]
    assert [p.split(":")[0] for p in rows.problems] == [f"line {n}" for n in range(4, 12)]
    assert "value 'abc' is not a number" in rows.problems[0]
    assert "neither ISO 8601" in rows.problems[1]
    assert "has no UTC offset" in rows.problems[2]
    assert "not one of heart_rate" in rows.problems[4]
    assert "not a finite number" in rows.problems[5]
    assert "flags 'x'" in rows.problems[6]
    assert "not a finite number of seconds" in rows.problems[7]


def test_a_header_without_the_columns_is_refused() -> None:
    with pytest.raises(ReplayError, match="missing: metric, value"):
        parse_csv(["patient,time\n", "p1,0\n"])


def test_rows_out_of_order_are_scored_in_time_order() -> None:
    lines = ["patient,time,metric,value\n"]
    # 97, 94, 91 (< 92 at 2 s), 88, 85 (< 88 at 4 s), then 84
    values = [max(84, 97 - 3 * s) for s in range(40)]
    lines += [f"p1,{1767261600 + s},spo2,{values[s]}\n" for s in reversed(range(40))]
    events = [e.document() for e in replay(parse_csv(lines), Engine())]
    assert [(e["rule"], e["kind"], e["time"][11:19]) for e in events][:2] == [
        ("spo2_news2_red", "started", "10:00:02"),
        ("spo2_desaturation", "started", "10:00:04"),
    ]


def test_vigil_analytics_replay_writes_json_lines(tmp_path: Path) -> None:
    source = tmp_path / "week.csv"
    pulse = [min(150, 80 + 7 * max(0, s - 9)) for s in range(100)]  # 7 /min a second from 10 s
    rows = [f"p7,{1767261600 + s},heart_rate,{pulse[s]}" for s in range(100)]
    source.write_text("patient,time,metric,value\n" + "\n".join(rows) + "\nbroken\n")
    out = tmp_path / "events.jsonl"
    result = vigil("analytics", "replay", "--input", str(source), "--output", str(out))
    assert result.returncode == 0, result.stderr
    assert "skipped line 102:" in result.stderr
    assert json.loads(result.stdout.splitlines()[-1]) == {"rows": 100, "skipped": 1, "events": 2}
    events = [json.loads(line) for line in out.read_text().splitlines()]
    # above 130 from 17 s (136 /min), held 60 s
    assert [(e["rule"], e["kind"], e["time"][11:19]) for e in events] == [
        ("hr_news2_red_high", "started", "10:00:17"),
        ("hr_news2_red_high", "persisted", "10:01:17"),
    ]


def test_vigil_analytics_replay_explains_a_missing_file(tmp_path: Path) -> None:
    result = vigil("analytics", "replay", "--input", str(tmp_path / "no.csv"), "--output", "x")
    assert result.returncode == 2
    assert "cannot read" in result.stderr and "Traceback" not in result.stderr


@given(st.lists(st.text(max_size=40), max_size=20))
def test_any_rows_are_parsed_or_reported_never_crash(lines: list[str]) -> None:
    rows = parse_csv(["patient,time,metric,value,flags\n", *[line + "\n" for line in lines]])
    assert len(rows) + len(rows.problems) <= len(lines)


@pytest.mark.services
def test_vigil_analytics_replay_over_the_database(database_url: str, tmp_path: Path) -> None:
    t0 = 1_767_261_600_000  # 2026-01-01T10:00:00Z
    # 97 until 9 s, then down 3 points a second: 91 (< 92) at 11 s, 85 (< 88) at 13 s
    rows = [
        ("p3", "spo2", t0 + s * 1000, float(max(84, 97 - 3 * max(0, s - 9)))) for s in range(60)
    ]
    with psycopg.connect(database_url) as conn:
        writer.store(conn, [batch("gw-r", 0, rows[:30]), batch("gw-r", 1, rows[30:])])
        conn.commit()
    out = tmp_path / "events.jsonl"
    env = {"VIGIL_DATABASE_URL": database_url}
    result = vigil(
        "analytics",
        "replay",
        "--from",
        "2026-01-01T10:00:00Z",
        "--to",
        "2026-01-01T10:00:40Z",
        "--output",
        str(out),
        env=env,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.splitlines()[-1]) == {"rows": 40, "skipped": 0, "events": 3}
    events = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(e["patient"], e["rule"], e["kind"]) for e in events] == [
        ("p3", "spo2_news2_red", "started"),
        ("p3", "spo2_desaturation", "started"),
        ("p3", "spo2_desaturation", "persisted"),
    ]
    backwards = vigil(
        "analytics",
        "replay",
        "--from",
        "2026-01-02T00:00:00Z",
        "--to",
        "2026-01-01T00:00:00Z",
        "--output",
        str(out),
        env=env,
    )
    assert backwards.returncode == 2 and "--to must be later than --from" in backwards.stderr
