"""Content negotiation: Vigil serves FHIR as JSON only, so a client that accepts only
something else (``Accept: application/fhir+xml``, ``_format=xml``) gets 406, not JSON it
did not ask for."""

from __future__ import annotations

from urllib.parse import parse_qsl

_JSON = frozenset(
    {
        "application/fhir+json",
        "application/json",
        "application/json+fhir",
        "application/*",
        "*/*",
        "json",
    }
)
NOT_ACCEPTABLE = "only JSON is served (Accept: application/fhir+json, or _format=json)"


def acceptable(accept: str | None, query: str) -> bool:
    """Whether the answer, JSON, is one the request accepts: by ``_format`` when the query
    gives one (FHIR lets it override Accept), else by each media range of ``Accept`` with
    a quality above zero."""
    formats = [v for k, v in parse_qsl(query, keep_blank_values=True) if k == "_format"]
    if formats:
        return all(f.split(";")[0].strip().lower() in _JSON for f in formats)
    if not accept or not accept.strip():
        return True
    for media_range in accept.split(","):
        kind, *params = (part.strip().lower() for part in media_range.split(";"))
        quality = next((p[2:] for p in params if p.startswith("q=")), "1")
        if kind in _JSON and quality not in ("0", "0.0", "0.00", "0.000"):
            return True
    return False
