"""Grouping a flush's readings by patient, metric and minute: pure numpy logic."""

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from ingest.rollup import minute_groups
from tests.builders import T0, batch
from vigil.wire.quality import Quality

MINUTE = T0 - T0 % 60_000


def test_groups_per_patient_metric_and_minute_without_invalid_readings() -> None:
    first = batch(
        seq=0,
        rows=[
            ("p2", "spo2", MINUTE + 1000, 95.0),
            ("p1", "spo2", MINUTE + 2000, 97.0),
            ("p2", "spo2", MINUTE + 59_999, 91.0),
            ("p2", "spo2", MINUTE + 60_000, 90.0),
        ],
    )
    second = batch(
        seq=1,
        rows=[("p2", "spo2", MINUTE + 3000, 99.0), ("p2", "heart_rate", MINUTE, 70.0)],
        flags=[int(Quality.INVALID), 0],
    )
    g = minute_groups([first, second])
    rows = sorted(
        zip(
            g.patient,
            g.metric.tolist(),
            g.bucket_ms.tolist(),
            g.min.tolist(),
            g.max.tolist(),
            g.sum.tolist(),
            g.count.tolist(),
            strict=True,
        )
    )
    assert rows == [
        ("p1", 2, MINUTE, 97.0, 97.0, 97.0, 1),
        ("p2", 1, MINUTE, 70.0, 70.0, 70.0, 1),
        ("p2", 2, MINUTE, 91.0, 95.0, 186.0, 2),
        ("p2", 2, MINUTE + 60_000, 90.0, 90.0, 90.0, 1),
    ]


def test_a_flush_of_only_invalid_readings_has_no_groups() -> None:
    flagged = batch(rows=[("p1", "spo2", T0, 40.0)], flags=[int(Quality.INVALID)])
    assert len(minute_groups([flagged])) == 0


def test_absent_readings_stay_out_of_the_statistics() -> None:
    """Their NaN would make a minute's min, max and sum NaN."""
    rows = [
        ("p1", "spo2", T0, 96.0),
        ("p1", "spo2", T0 + 1, np.nan),
        ("p1", "spo2", T0 + 2, np.nan),
    ]
    flags = [0, int(Quality.NOT_A_NUMBER), int(Quality.POSITIVE_INFINITY)]
    g = minute_groups([batch(rows=rows, flags=flags)])
    assert (g.min.tolist(), g.max.tolist(), g.sum.tolist(), g.count.tolist()) == (
        [96.0],
        [96.0],
        [96.0],
        [1],
    )


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["p1", "p2", "p3"]),
            st.sampled_from(["heart_rate", "spo2"]),
            st.integers(0, 10 * 60_000),
            st.floats(50, 100),
        ),
        min_size=1,
        max_size=60,
    )
)
def test_groups_agree_with_a_plain_python_grouping(rows: list) -> None:  # type: ignore[type-arg]
    rows = [(p, m, T0 + t, v) for p, m, t, v in rows]
    g = minute_groups([batch(rows=rows)])
    expected: dict[tuple[str, str, int], list[float]] = {}
    for p, m, t, v in rows:
        expected.setdefault((p, m, t - t % 60_000), []).append(v)
    assert len(g) == len(expected)
    assert int(g.count.sum()) == len(rows)
    names = {1: "heart_rate", 2: "spo2"}
    for i in range(len(g)):
        values = expected[(g.patient[i], names[int(g.metric[i])], int(g.bucket_ms[i]))]
        assert (g.min[i], g.max[i], int(g.count[i])) == (min(values), max(values), len(values))
        assert np.isclose(g.sum[i], sum(values))
