"""Search results as a FHIR ``searchset`` Bundle, the same for every resource."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from vigil.wire.times import iso


def searchset(
    resources: list[dict[str, Any]],
    base: str,
    self_url: str,
    total: int | None = None,
    next_url: str | None = None,
    outcome: dict[str, Any] | None = None,
    included: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """``base`` is the FHIR base URL (``.../fhir``); each entry's ``fullUrl`` is
    ``{base}/{type}/{id}``; ``total`` is left out when not known; ``outcome``, an
    OperationOutcome, tells the client something about the search itself (why it is empty,
    what it left out); ``included``: resources an ``_include`` or ``_revinclude`` brought."""
    links = [{"relation": "self", "url": self_url}]
    if next_url is not None:
        links.append({"relation": "next", "url": next_url})
    notes = [{"resource": outcome, "search": {"mode": "outcome"}}] if outcome else []
    bundle: dict[str, Any] = {
        "resourceType": "Bundle",
        "type": "searchset",
        "timestamp": iso(datetime.now(UTC)),
        "link": links,
        "entry": [_entry(base, r, "match") for r in resources]
        + [_entry(base, r, "include") for r in included or []]
        + notes,
    }
    if total is not None:
        bundle["total"] = total
    return bundle


def _entry(base: str, resource: dict[str, Any], mode: str) -> dict[str, Any]:
    return {
        "fullUrl": f"{base}/{resource['resourceType']}/{resource['id']}",
        "resource": resource,
        "search": {"mode": mode},
    }
