"""Episodes, the pure logic: conditions of one vital sign become one alert whose priority
rises with the worst of them, a recurrence is counted, a high priority latches."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from alerts.episodes import Episode, Step, cleared, family_of, persisted, resolves
from alerts.model import Priority

T = datetime(2026, 1, 1, 3, 0, tzinfo=UTC)
HOUR_S = 3600


def held(
    episode: Episode | None, rule: str, metric: str, priority: Priority, at: datetime = T
) -> tuple[Episode, Step]:
    return persisted(episode, rule, metric, priority, at, HOUR_S)


def test_three_rules_of_one_vital_sign_are_one_episode_told_once() -> None:
    episode, step = held(None, "spo2_desaturation", "spo2", Priority.HIGH)
    assert step == Step.OPENED and episode.family == "spo2"
    for rule, priority in (
        ("spo2_news2_red", Priority.MEDIUM),
        ("spo2_below_baseline", Priority.LOW),
    ):
        episode, step = held(episode, rule, "spo2", priority)
        assert step == Step.JOINED
    assert episode.priority == Priority.HIGH and len(episode.rules) == 3


def test_a_higher_priority_worsens_the_episode_and_wants_a_new_acknowledgement() -> None:
    episode, _ = held(None, "hr_news2_red_high", "heart_rate", Priority.MEDIUM)
    episode = replace(episode, acknowledged=True)
    worse, step = held(episode, "hr_extreme_high", "pulse_rate", Priority.HIGH)
    assert step == Step.WORSENED and worse.priority == Priority.HIGH and not worse.acknowledged
    assert worse.active == ("hr_news2_red_high:heart_rate", "hr_extreme_high:pulse_rate")


def test_a_condition_back_after_all_had_ended_is_a_repetition() -> None:
    episode, _ = held(None, "spo2_news2_red", "spo2", Priority.MEDIUM)
    for n in range(1, 4):
        episode = cleared(episode, "spo2_news2_red", "spo2", T)
        assert episode.cleared_at == T and episode.active == ()
        episode, step = held(episode, "spo2_news2_red", "spo2", Priority.MEDIUM)
        assert step == Step.REPEATED and episode.repetitions == n and episode.cleared_at is None


def test_an_episode_is_clear_only_when_every_condition_is() -> None:
    episode, _ = held(None, "hr_extreme_low", "heart_rate", Priority.HIGH)
    episode, _ = held(episode, "hr_extreme_low", "pulse_rate", Priority.HIGH)
    episode = cleared(episode, "hr_extreme_low", "heart_rate", T)
    assert episode.cleared_at is None and episode.active == ("hr_extreme_low:pulse_rate",)
    later = cleared(episode, "hr_extreme_low", "pulse_rate", T + timedelta(seconds=5))
    assert later.cleared_at == T + timedelta(seconds=5)


def test_medium_resolves_once_clear_long_enough_high_only_once_acknowledged() -> None:
    medium, _ = held(None, "spo2_news2_red", "spo2", Priority.MEDIUM)
    medium = cleared(medium, "spo2_news2_red", "spo2", T)
    assert not resolves(medium, T + timedelta(minutes=59), 3600)
    assert resolves(medium, T + timedelta(minutes=60), 3600)
    high, _ = held(None, "spo2_desaturation", "spo2", Priority.HIGH)
    high = cleared(high, "spo2_desaturation", "spo2", T)
    assert not resolves(high, T + timedelta(days=2), 3600)  # cleared, unacknowledged
    assert resolves(replace(high, acknowledged=True), T + timedelta(hours=1), 3600)


def test_a_rule_of_its_own_kind_is_a_family_of_one() -> None:
    assert family_of("hr_rising") == "pulse" and family_of("check_sensor") == "check_sensor"
    assert family_of("a_rule_of_a_newer_analytics") == "a_rule_of_a_newer_analytics"


def test_a_latched_episode_whose_condition_comes_back_after_an_hour_is_told_again() -> None:
    high, _ = held(None, "spo2_desaturation", "spo2", Priority.HIGH)
    high = cleared(high, "spo2_desaturation", "spo2", T)  # nobody acknowledged: it latches
    soon, step = held(high, "spo2_desaturation", "spo2", Priority.HIGH, T + timedelta(minutes=5))
    assert step == Step.REPEATED
    later = cleared(soon, "spo2_desaturation", "spo2", T + timedelta(minutes=6))
    again, step = held(later, "spo2_desaturation", "spo2", Priority.HIGH, T + timedelta(hours=3))
    assert step == Step.RENEWED and again.repetitions == 2
