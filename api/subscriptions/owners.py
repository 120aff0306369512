"""Whom a subscription's events may reach now: its owner, asked about again through the one
policy before events are recorded and before each delivery.

A subscription outlives the request that made it, so the owner is rebuilt from what is
known now: a Vigil client from its ``api_client`` row (revoked or expired: its access has
ended; its scopes as they are now), a principal of the identity provider from what its
token said at creation (its compartment still comes from the care relation of today).
"""

from __future__ import annotations

import psycopg

from api.access.policy import Compartment, Forbidden, Need, decide
from api.access.principal import Kind, Principal, principal_scopes
from api.subscriptions.resources import Subscription
from api.subscriptions.topics import TOPICS


def owner_of(conn: psycopg.Connection, sub: Subscription) -> Principal | None:
    """The owner as it stands; None when its token was revoked or has expired."""
    kind = Kind(sub.owner_kind)
    row = conn.execute(
        "SELECT role, patient, scopes, revoked IS NULL AND (expires IS NULL OR expires > now())"
        " FROM api_client WHERE name = %s",
        (sub.owner,),
    ).fetchone()
    if row is not None and row[0] == sub.owner_kind:
        if not row[3]:
            return None
        return Principal(sub.owner, kind, principal_scopes(kind, row[2]), row[1])
    return Principal(sub.owner, kind, principal_scopes(kind, sub.owner_scopes), sub.owner_patient)


def reach(conn: psycopg.Connection, sub: Subscription) -> Compartment | None:
    """The patients the owner may be told about on this subscription's topic; None when it
    may not be told anything any more."""
    who = owner_of(conn, sub)
    if who is None:
        return None
    try:
        return decide(conn, who, Need(TOPICS[sub.topic].resource, "subscribe"))
    except Forbidden:
        return None


def may_see(compartment: Compartment | None, sub: Subscription, patient: str) -> bool:
    return compartment is not None and compartment.holds(patient) and sub.patient in (None, patient)
