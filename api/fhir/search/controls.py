"""What every search shares: the result parameters (``_count``, ``_sort``, ``_total``,
``_summary``, ``_elements``, ``_include``, ``_revinclude``, ``_format``), the page cursor,
and strict or lenient handling of parameters the server does not know.

Strict handling (the default) refuses an unknown parameter: a clinician's query that
quietly drops a filter returns the wrong patient data. A client that asks for
``Prefer: handling=lenient`` gets the search without it, and the Bundle says what was
left out.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from api.fhir.capability import RESULT_PARAMS, Interaction, SearchParam
from api.fhir.search.values import SearchError, whole_number

DEFAULT_COUNT = 100
MAX_COUNT = 1000
FORMATS = frozenset({"json", "application/json", "application/fhir+json", "application/json+fhir"})
_TOTALS = ("none", "estimate", "accurate")
_SUMMARIES = ("true", "false", "data", "count")
_ELEMENT = re.compile(r"[a-z][A-Za-z0-9]{0,63}")
SUBSETTED = {
    "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
    "code": "SUBSETTED",
    "display": "subsetted",
}
_MANDATORY = {
    "Observation": {"status", "code"},
    "Flag": {"status", "code", "subject"},
    "Communication": {"status"},
}
"""The elements of R4's base resources with a minimum of one, of the types Vigil subsets."""
CURSOR = "_cursor"
"""The page position a ``next`` link carries; opaque to clients."""


@dataclass
class Controls:
    count: int = DEFAULT_COUNT
    sort: str | None = None
    """The ``_sort`` given (e.g. '-date'), None for the resource's default."""
    total: str = "none"
    """Counting every match costs as much as reading them: a total only when asked."""
    summary: str = "false"
    elements: tuple[str, ...] = ()
    include: tuple[str, ...] = ()
    revinclude: tuple[str, ...] = ()
    cursor: str | None = None
    ignored: list[tuple[str, str, str]] = field(default_factory=list)
    """(name, value, why) of the parameters lenient handling left out."""


@dataclass(frozen=True, slots=True)
class Searchable:
    """What one resource type's search accepts beside the result parameters."""

    params: tuple[SearchParam, ...]
    sorts: tuple[str, ...] = ()
    includes: tuple[str, ...] = ()
    revincludes: tuple[str, ...] = ()
    paged: bool = True
    """False: every match on one page (a patient's devices), so ``_count`` means nothing."""
    counts: bool = False
    """Whether it counts every match (``_total=accurate``, ``_summary=count``)."""

    def interaction(self, resource: str, profiles: tuple[str, ...] = ()) -> Interaction:
        """The search's declaration for the CapabilityStatement."""
        return Interaction(
            resource, "search-type", self.params, profiles, None, self.includes, self.revincludes
        )

    @property
    def names(self) -> tuple[str, ...]:
        extra = [*([CURSOR] if self.paged else []), *(["_sort"] if self.sorts else [])]
        extra += [
            n
            for n, given in (("_include", self.includes), ("_revinclude", self.revincludes))
            if given
        ]
        results = {p.name for p in RESULT_PARAMS} - (set() if self.paged else {"_count"})
        return tuple(sorted({p.name for p in self.params} | results | set(extra)))

    def parse(
        self, params: Iterable[tuple[str, str]], lenient: bool
    ) -> tuple[list[tuple[str, str]], Controls]:
        """The resource's own parameters, in order, and the controls. Under lenient
        handling an unknown parameter, or a known one with a value the server cannot
        use, is left out and named in ``controls.ignored``."""
        own = {p.name for p in self.params}
        controls = Controls()
        filters: list[tuple[str, str]] = []
        for name, value in params:
            try:
                if name in own:
                    filters.append((name, value))
                elif name.startswith("_") and name in self.names:
                    _control(self, controls, name, value)
                else:
                    raise SearchError(
                        f"search parameter '{name[:40]}' is not supported here "
                        f"(supported: {', '.join(self.names)})"
                    )
            except SearchError as exc:
                if not lenient:
                    raise
                controls.ignored.append((name, value, str(exc)))
        return filters, controls


def _control(searchable: Searchable, controls: Controls, name: str, value: str) -> None:
    if name == "_count":
        controls.count = whole_number(name, value, 0, MAX_COUNT)
    elif name == "_sort":
        if value not in searchable.sorts:
            raise SearchError(f"_sort: one of {', '.join(searchable.sorts)}, got {value[:40]!r}")
        controls.sort = value
    elif name == "_total":
        controls.total = _one_of(name, value, _TOTALS if searchable.counts else ("none",))
    elif name == "_summary":
        offered = _SUMMARIES if searchable.counts else tuple(s for s in _SUMMARIES if s != "count")
        controls.summary = _one_of(name, value, offered)
    elif name == "_elements":
        names = tuple(e.strip() for e in value.split(",") if e.strip())
        if not names or not all(_ELEMENT.fullmatch(e) for e in names):
            raise SearchError("_elements: comma-separated element names, e.g. code,valueQuantity")
        controls.elements += names
    elif name == "_format":
        pass  # negotiated before any route (api.fhir.negotiation): here it is JSON
    elif name == "_include":
        controls.include += (_one_of(name, value, searchable.includes),)
    elif name == "_revinclude":
        controls.revinclude += (_one_of(name, value, searchable.revincludes),)
    elif name == CURSOR:
        controls.cursor = value


def _one_of(name: str, value: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise SearchError(f"{name}: one of {', '.join(allowed)}, got {value[:60]!r}")
    return value


def lenient(prefer: str | None) -> bool:
    """Whether the ``Prefer`` header asks for lenient handling (strict is the default)."""
    if not prefer:
        return False
    wishes = {w.strip().lower() for part in prefer.split(",") for w in part.split(";")}
    return "handling=lenient" in wishes


def shape(resource: dict[str, Any], controls: Controls, summary: frozenset[str]) -> dict[str, Any]:
    """The resource as ``_elements`` or ``_summary=true`` asks (``summary``: its elements
    that are not in the summary), marked SUBSETTED when something was left out. The
    elements the base resource requires stay; a profile's claim goes, as a part of a
    resource no longer meets the profile."""
    if controls.elements:
        kept = set(controls.elements) | {"resourceType", "id", "meta"}
        kept |= _MANDATORY.get(resource["resourceType"], set())
        cut = {k: v for k, v in resource.items() if k in kept}
    elif controls.summary == "true":
        cut = {k: v for k, v in resource.items() if k not in summary}
    else:
        return resource
    if len(cut) == len(resource):
        return resource
    meta = {k: v for k, v in cut.get("meta", {}).items() if k != "profile"}
    meta["tag"] = [*meta.get("tag", []), SUBSETTED]
    cut["meta"] = meta
    return cut
