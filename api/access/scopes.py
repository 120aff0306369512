"""SMART on FHIR scopes (v2, with v1's ``.read``/``.write`` understood), parsed and matched.

A scope is ``context/resource.permissions``: the context says whose data (``patient``: the
token's own patient; ``user``: the patients the user may see; ``system``: the patients a
client was granted), the resource a FHIR type or ``*``, the permissions a subset of
``cruds`` (create, read, update, delete, search) in that order. What a scope reaches is
always cut down to the principal's compartment by the policy: a scope never widens it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

PERMISSIONS = "cruds"
_SCOPE = re.compile(
    r"(?P<context>patient|user|system)/(?P<resource>\*|[A-Z][A-Za-z]{1,63})"
    r"\.(?P<perms>[cruds]{1,5}|read|write|\*)"
)
_V1 = {"read": "rs", "write": "cud", "*": "cruds"}


class ScopeError(ValueError):
    """A scope that is not SMART syntax; the message quotes it."""


@dataclass(frozen=True, slots=True)
class Scope:
    context: str
    resource: str
    permissions: str

    def __str__(self) -> str:
        return f"{self.context}/{self.resource}.{self.permissions}"

    def allows(self, context: str, resource: str, permission: str) -> bool:
        return (
            self.context == context
            and self.resource in ("*", resource)
            and permission in self.permissions
        )


def parse_scope(text: str) -> Scope:
    match = _SCOPE.fullmatch(text)
    if match is None:
        raise ScopeError(
            f"{text!r} is not a SMART scope (context/Resource.perms, e.g. user/Observation.rs)"
        )
    perms = _V1.get(match["perms"], match["perms"])
    if "".join(p for p in PERMISSIONS if p in perms) != perms:
        raise ScopeError(f"{text!r}: permissions go in the order c, r, u, d, s")
    return Scope(match["context"], match["resource"], perms)


def parse_scopes(text: str, strict: bool = False) -> tuple[Scope, ...]:
    """The resource scopes of a space-separated list. ``strict`` (a scope an operator
    types): every word must be a SMART resource scope Vigil can honour. Otherwise (an
    identity provider's token) what gives no access here is passed over: openid, fhirUser,
    launch/patient, offline_access, operations such as ``system/Patient.$export``, and
    granular scopes (``...rs?category=laboratory``), which Vigil cannot narrow to their
    query and so must not read as the whole resource."""
    found = []
    for word in text.split():
        try:
            if "?" in word:
                raise ScopeError(f"{word!r}: granular scopes (with ?) are not supported")
            found.append(parse_scope(word))
        except ScopeError:
            if strict:
                raise
    return tuple(found)


def grants(scopes: tuple[Scope, ...], context: str, resource: str, permission: str) -> bool:
    return any(s.allows(context, resource, permission) for s in scopes)
