"""Episodes: what makes one alert of many conditions.

A desaturation crosses the hard limit and then stays in the NEWS2 band; a sleep apnoea dips
twenty times an hour; a tachycardia trips three pulse rules on two devices. To a clinician
each is one thing happening to one patient, so conditions on the same vital sign of the
same patient (a *family* of rules) form one alert, an episode, for as long as it is open:

- the first condition opens it; another rule of the family, or the same one on the other
  device, joins it;
- a condition coming back after all had ended is a *repetition*: counted, not told again;
  but one coming back after the episode has been clear as long as would resolve it (a high
  priority left latched, nobody having acknowledged it) *renews* it: everyone is told again;
- a condition of a higher priority than the episode's *worsens* it: the episode takes the
  priority, is unacknowledged again, and everyone is told again, once;
- when every condition has ended the episode is *cleared*; medium and low priority resolve
  by themselves once clear for a while (a recurrence within that while is the same
  episode), high priority latches until a person acknowledges it (IEC 60601-1-8: an alarm
  condition that ends by itself must not take its signal with it).

This is the pure logic; :mod:`alerts.store` keeps episodes as alert rows, and the benchmark
of alert quality runs the same functions in memory.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

from alerts.model import Priority

FAMILIES = {
    "spo2": (
        "spo2_desaturation",
        "spo2_news2_red",
        "spo2_below_baseline",
    ),
    "pulse": (
        "hr_extreme_high",
        "hr_extreme_low",
        "hr_news2_red_high",
        "hr_news2_red_low",
        "hr_rising",
        "hr_off_baseline",
    ),
}
_FAMILY_OF = {rule: family for family, rules in FAMILIES.items() for rule in rules}
_RANK = {Priority.LOW: 0, Priority.MEDIUM: 1, Priority.HIGH: 2}


def family_of(rule: str) -> str:
    """The vital sign a rule watches; a rule of its own kind (sensor, no data, novelty, a
    newer analytics' rule) is a family of one."""
    return _FAMILY_OF.get(rule, rule)


class Step(StrEnum):
    OPENED = "opened"
    JOINED = "joined"
    """Another condition of an episode that holds; nothing to tell."""
    REPEATED = "repeated"
    RENEWED = "renewed"
    """Back after the episode was clear long enough to resolve, had it not latched."""
    WORSENED = "worsened"


@dataclass(frozen=True, slots=True)
class Episode:
    family: str
    priority: Priority
    rules: tuple[str, ...]
    """Every rule that has held in it, the first first."""
    active: tuple[str, ...]
    """The conditions holding now, as ``rule:metric``."""
    cleared_at: datetime | None
    """When the last condition ended; None while one holds."""
    acknowledged: bool
    repetitions: int


def condition(rule: str, metric: str) -> str:
    return f"{rule}:{metric}"


def persisted(
    episode: Episode | None,
    rule: str,
    metric: str,
    priority: Priority,
    at: datetime,
    clear_for_s: float,
) -> tuple[Episode, Step]:
    """A condition has held long enough to be told, at ``at``: the open episode of its
    family with it, or a new one; and what that is to the people told."""
    held = condition(rule, metric)
    if episode is None:
        return Episode(family_of(rule), priority, (rule,), (held,), None, False, 0), Step.OPENED
    clear_since = episode.cleared_at
    again = clear_since is not None
    renewed = clear_since is not None and (at - clear_since).total_seconds() >= clear_for_s
    worse = _RANK[priority] > _RANK[episode.priority]
    after = replace(
        episode,
        priority=priority if worse else episode.priority,
        rules=episode.rules if rule in episode.rules else (*episode.rules, rule),
        active=episode.active if held in episode.active else (*episode.active, held),
        cleared_at=None,
        acknowledged=episode.acknowledged and not worse,
        repetitions=episode.repetitions + again,
    )
    if worse:
        return after, Step.WORSENED
    return after, Step.RENEWED if renewed else Step.REPEATED if again else Step.JOINED


def cleared(episode: Episode, rule: str, metric: str, at: datetime) -> Episode:
    """A condition has ended; with the last of them, the episode is clear from ``at``."""
    active = tuple(c for c in episode.active if c != condition(rule, metric))
    if active or episode.cleared_at is not None:
        return replace(episode, active=active)
    return replace(episode, active=active, cleared_at=at)


def resolves(episode: Episode, at: datetime, clear_for_s: float) -> bool:
    """Whether the episode resolves by itself at ``at``: clear for ``clear_for_s``, and not
    a high priority nobody has acknowledged."""
    if episode.cleared_at is None or (at - episode.cleared_at).total_seconds() < clear_for_s:
        return False
    return episode.priority != Priority.HIGH or episode.acknowledged
