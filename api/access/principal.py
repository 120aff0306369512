"""Who a request acts as: one principal of one of four kinds, with its scopes.

- a **clinician** sees the patients of the care teams they belong to (``user/`` scopes);
- a **patient** sees their own record (``patient/`` scopes) and decides who else may;
- an **administrator** runs the deployment: every patient, the audit trail, the accounting;
- a **system** client (an EHR integration, a Prometheus scraper) sees only what it was
  explicitly granted, patients or whole teams (``system/`` scopes).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from api.access.scopes import Scope, grants, parse_scopes


class Kind(StrEnum):
    CLINICIAN = "clinician"
    PATIENT = "patient"
    ADMIN = "admin"
    SYSTEM = "system"


CONTEXT = {
    Kind.CLINICIAN: "user",
    Kind.PATIENT: "patient",
    Kind.ADMIN: "system",
    Kind.SYSTEM: "system",
}
"""The scope context a kind's scopes must be written in."""

DEFAULT_SCOPES = {
    Kind.CLINICIAN: "user/Patient.rs user/Observation.rs user/Flag.rus user/Communication.rs"
    " user/Device.rs user/Consent.rs user/Subscription.crds",
    Kind.PATIENT: "patient/Patient.rs patient/Observation.rs patient/Flag.rs"
    " patient/Communication.rs patient/Device.rs patient/Consent.crus patient/Subscription.crds",
    Kind.ADMIN: "system/*.rs system/Flag.rus system/Subscription.crds",
    Kind.SYSTEM: "",
}
"""What a token of each kind may do unless it was created with narrower scopes; a system
client gets nothing it was not given. Subscriptions are the principal's own (what they
may be told is still the policy's, per topic)."""

CEILING = {
    kind: parse_scopes(
        DEFAULT_SCOPES[kind] if kind is not Kind.SYSTEM else "system/*.rs system/Subscription.crds"
    )
    for kind in Kind
}
"""The most a kind may ever do, whatever scopes a token claims: a patient's ``patient/*.*``
does not let them resolve their own alert (and stop its escalation), an integration reads
and searches only."""


@dataclass(frozen=True, slots=True)
class Principal:
    name: str
    kind: Kind
    scopes: tuple[Scope, ...]
    patient: str | None = None
    """The patient a patient principal is."""

    def may(self, resource: str, permission: str) -> bool:
        """What its scopes allow, within what its kind ever may (:data:`CEILING`)."""
        context = CONTEXT[self.kind]
        return grants(self.scopes, context, resource, permission) and grants(
            CEILING[self.kind], context, resource, permission
        )


def principal_scopes(kind: Kind, text: str | None) -> tuple[Scope, ...]:
    """The scopes a principal holds: those given, else the kind's defaults; only those in
    the kind's own context count (a clinician's ``system/*.rs`` is no wider than none)."""
    scopes = parse_scopes(DEFAULT_SCOPES[kind] if text is None else text)
    return tuple(s for s in scopes if s.context == CONTEXT[kind])
