"""Subscriptions for the ward (tests/api/access/ward.py): one per patient, each owned by a
principal the access matrix expects to reach it, so its routes are in the matrix."""

from __future__ import annotations

import psycopg

from api.access.principal import Kind, Principal, principal_scopes
from api.subscriptions import store
from api.subscriptions.topics import NEW_ALERT

OWNERS = {
    "pn1": ("pn1-self", Kind.PATIENT, None),
    "pn2": ("dr-north", Kind.CLINICIAN, None),
    "ps1": ("ehr-link", Kind.SYSTEM, "system/Flag.rs"),
    "ps2": ("dr-south", Kind.CLINICIAN, None),
}
"""patient -> (owner, kind, scopes): the owner the matrix reads each patient's as."""


def seed_subscriptions(conn: psycopg.Connection) -> dict[str, str]:
    """patient -> the id of a websocket subscription to their new alerts."""
    made = {}
    for patient, (name, kind, scopes) in OWNERS.items():
        owner = Principal(
            name,
            kind,
            principal_scopes(kind, scopes),
            patient if kind is Kind.PATIENT else None,
        )
        sub = store.create(
            conn,
            owner,
            topic=NEW_ALERT.url,
            patient=patient,
            channel="websocket",
            endpoint=None,
            headers=[],
            content="id-only",
            reason="the ward's",
            timeout_s=10,
            max_count=20,
            ends=None,
        )
        made[patient] = sub.id
    return made
