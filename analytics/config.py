"""Per-patient rule configuration: the defaults, changed where a care team says so.

A JSON file maps patient ids to what differs from the defaults::

    {
      "p0001": {"scale": 2},
      "p0002": {"optional": ["novelty"],
                "thresholds": {"hr_news2_red_high": {"high_on": 140, "high_off": 130}}},
      "p0003": {"disabled": ["hr_off_baseline"]}
    }

``scale`` is the NEWS2 SpO2 scale (2 for hypercapnic respiratory failure); ``optional``
turns on rules that are off by default (``analytics.rules.OPTIONAL``); ``disabled`` turns
default rules off; ``thresholds`` replaces a rule's numbers, those its kind has
(``TUNABLE``: entry and clearing thresholds and persistence of a threshold rule, rise of a
rate of change, departure of a baseline rule). The file is validated as a whole when it is
read, every patient's rules made with their numbers, so a typo or a clearing threshold on
the wrong side is an error naming the patient and the field, not a rule silently left at
its default or a failure when the patient's first reading arrives.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator, model_validator

from analytics.rules import KIND_OF, OPTIONAL, RULE_NAMES, Rule, rules_for


class PatientRules(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    scale: Literal[1, 2] | None = None
    optional: tuple[str, ...] = ()
    disabled: tuple[str, ...] = ()
    thresholds: dict[str, dict[str, float]] = {}

    @field_validator("optional")
    @classmethod
    def _known_optional(cls, names: tuple[str, ...]) -> tuple[str, ...]:
        known = {r.name for r in OPTIONAL}
        for name in names:
            if name not in known:
                raise ValueError(f"{name!r} is not an optional rule ({', '.join(sorted(known))})")
        return names

    @field_validator("disabled")
    @classmethod
    def _known_rules(cls, names: tuple[str, ...]) -> tuple[str, ...]:
        for name in names:
            if name not in RULE_NAMES:
                raise ValueError(f"{name!r} is not a rule ({', '.join(RULE_NAMES)})")
        return names

    @field_validator("thresholds")
    @classmethod
    def _known_numbers(cls, rules: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
        for name, numbers in rules.items():
            kind = KIND_OF.get(name)
            if kind is None:
                raise ValueError(f"{name!r} is not a rule ({', '.join(KIND_OF)})")
            for field in numbers:
                if field not in kind.TUNABLE:
                    tunable = ", ".join(kind.TUNABLE) or "nothing"
                    raise ValueError(f"{name}: {field!r} is not tunable (tunable: {tunable})")
        return rules

    @model_validator(mode="after")
    def _consistent_numbers(self) -> PatientRules:
        every = tuple(r.name for r in OPTIONAL)
        for scale in (1, 2):  # a low_off below its low_on is refused here, not at the bedside
            self.rules(scale, every)
        return self

    def rules(self, scale: int, optional: tuple[str, ...]) -> tuple[Rule, ...]:
        """The defaults for ``scale`` with the ``optional`` rules, changed as this patient's
        care team said: their scale, optional and disabled rules, and numbers."""
        chosen = rules_for(self.scale or scale, {*optional, *self.optional})
        numbers: dict[str, dict[str, Any]] = dict(self.thresholds)
        return tuple(
            dataclasses.replace(rule, **numbers.get(rule.name, {}))
            for rule in chosen
            if rule.name not in self.disabled
        )


class ConfigError(ValueError):
    pass


def load_patient_rules(path: Path) -> dict[str, PatientRules]:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    except ValueError as exc:
        raise ConfigError(f"{path} is not JSON: {exc}") from None
    if not isinstance(document, dict):
        raise ConfigError(f"{path}: expected an object of patient ids")
    rules = {}
    for patient, entry in document.items():
        try:
            rules[patient] = PatientRules.model_validate(entry)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'entry'}: {e['msg']}" for e in exc.errors()
            )
            raise ConfigError(f"{path}: patient {patient}: {problems}") from None
    return rules
