"""The one policy: what a principal may do to which patients' data.

Every route names what it needs (:class:`Need`: a FHIR resource type and an interaction)
and :func:`decide` answers with the principal's :class:`Compartment`, the patients it may
touch for that need, or refuses. A route then only ever asks ``compartment.holds(p)`` or
filters its query by ``compartment.limit()``; none decides for itself.

The compartment comes from the care relation, not from the scopes: a clinician reaches
the patients of the teams they belong to now (the paging roster or an access grant, each
within its period), a system client the teams and patients it was granted, a patient only
themselves, an administrator everyone. Then the patients' own word: the newest consent in
force for the actor (``CareTeam/T``, or ``Device/CLIENT`` for an integration) permits or
denies, so a patient can withdraw a team at once, or let a second team in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import psycopg

from api.access.principal import Kind, Principal

PERMISSION = {
    "read": "r",
    "search": "s",
    "subscribe": "s",
    "update": "u",
    "create": "c",
    "delete": "d",
}
_IN_FORCE = "{0}period_start <= now() AND ({0}period_end IS NULL OR {0}period_end > now())"
_GRANTS = (
    "SELECT g.{what} FROM access_grant g JOIN api_client c ON c.name = g.client"
    " WHERE g.client = %s AND c.role = %s AND c.revoked IS NULL"
    " AND (c.expires IS NULL OR c.expires > now()) AND g.{what} IS NOT NULL AND "
    + _IN_FORCE.format("g.")
)
"""A principal's grants, only while the registration that holds them is live and of the
principal's own kind (an identity provider's client named like a revoked Vigil client,
or like a client of another kind, inherits nothing)."""


class Forbidden(Exception):
    """The principal's kind or scopes do not reach this kind of data at all."""


@dataclass(frozen=True, slots=True)
class Need:
    resource: str
    """The FHIR type the route serves (the alerts JSON are Flags; the accounting, Devices)."""
    interaction: str
    fleet: bool = False
    """Deployment-wide data (gateways' accounting) rather than any patient's: for an
    administrator, or a system client given the scope."""

    @property
    def permission(self) -> str:
        return PERMISSION[self.interaction]


@dataclass(frozen=True, slots=True)
class Compartment:
    everyone: bool = False
    patients: frozenset[str] = frozenset()
    hidden: dict[str, str] = field(default_factory=dict)
    """Patients the care relation would reach but who withdrew it: patient -> why."""
    actors: frozenset[str] = frozenset()
    """Whom the principal acts as in consents (``CareTeam/T``, ``Device/CLIENT``)."""

    def holds(self, patient: str) -> bool:
        return self.everyone or patient in self.patients

    def limit(self) -> list[str] | None:
        """The patients to filter a query by; None: no filter (an administrator)."""
        return None if self.everyone else sorted(self.patients)


def decide(conn: psycopg.Connection, who: Principal, need: Need) -> Compartment:
    """The patients ``who`` may touch for ``need``; raises Forbidden when it may not at all."""
    if not who.may(need.resource, need.permission):
        raise Forbidden(f"the token's scopes do not allow {need.interaction} of {need.resource}")
    if need.resource == "AuditEvent" and who.kind is not Kind.ADMIN:
        raise Forbidden("the audit trail is for administrators")
    if need.fleet and who.kind not in (Kind.ADMIN, Kind.SYSTEM):
        raise Forbidden("deployment accounting is for administrators and system clients")
    if who.kind is Kind.ADMIN:
        return Compartment(everyone=True)
    if who.kind is Kind.PATIENT:
        return Compartment(patients=frozenset({who.patient} if who.patient else ()))
    return _cared_for(conn, who)


def _cared_for(conn: psycopg.Connection, who: Principal) -> Compartment:
    granted = {
        what: [v for (v,) in conn.execute(_GRANTS.format(what=what), (who.name, str(who.kind)))]
        for what in ("team", "patient")
    }
    if who.kind is Kind.CLINICIAN:
        roster = conn.execute(
            "SELECT team FROM care_team_member WHERE member = %s"
            " AND (period_start IS NULL OR period_start <= now())"
            " AND (period_end IS NULL OR period_end > now())",
            (who.name,),
        ).fetchall()
        teams = sorted({t for (t,) in roster} | set(granted["team"]))
        actors = [f"CareTeam/{t}" for t in teams]
        direct: list[str] = []
    else:
        teams = granted["team"]
        actors = [f"Device/{who.name}"]
        direct = granted["patient"]
    rows = conn.execute(
        "WITH reach (patient, actor) AS ("
        "  SELECT patient, CASE WHEN %(system)s THEN %(device)s ELSE 'CareTeam/' || team END"
        "  FROM patient_team WHERE team = ANY(%(teams)s)"
        "  UNION SELECT unnest(%(direct)s::text[]), %(device)s"
        "  UNION SELECT patient, actor FROM consent"
        f"  WHERE actor = ANY(%(actors)s) AND decision = 'permit' AND {_IN_FORCE.format('')})"
        " SELECT r.patient, r.actor, c.decision, c.recorded, c.id FROM reach r"
        " LEFT JOIN LATERAL (SELECT decision, recorded, id FROM consent k"
        "  WHERE k.patient = r.patient AND k.actor = r.actor"
        f"  AND {_IN_FORCE.format('k.')} ORDER BY k.recorded DESC, k.id DESC LIMIT 1) c ON true",
        {
            "system": who.kind is Kind.SYSTEM,
            "device": f"Device/{who.name}",
            "teams": teams,
            "direct": direct,
            "actors": actors,
        },
    ).fetchall()
    seen: set[str] = set()
    hidden: dict[str, str] = {}
    for patient, actor, decision, recorded, consent in rows:
        if decision == "deny":
            hidden[patient] = _withdrawn(actor, recorded, consent)
        else:
            seen.add(patient)
    return Compartment(
        patients=frozenset(seen),
        hidden={p: why for p, why in hidden.items() if p not in seen},
        actors=frozenset(actors),
    )


def _withdrawn(actor: str, recorded: datetime, consent: int) -> str:
    return (
        f"the patient withdrew {actor}'s access on {recorded:%Y-%m-%d %H:%M} UTC"
        f" (Consent/{consent})"
    )
