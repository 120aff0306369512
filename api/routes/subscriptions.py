"""FHIR Subscription (topic-based, the R5 backport for R4): create, read, search, delete,
``$status``, ``$events`` and ``$get-ws-binding-token``, and the websocket they bind.

A subscription belongs to the principal that made it: only it (and an administrator) may
read, delete or bind it; anyone else is told it does not exist. Making one asks the policy
twice: may the principal manage Subscriptions (``Subscription.c``), and may it be told of
the topic's resources for the patient it names (what searching them needs); a patient out
of reach is "does not exist", 404, as everywhere.
"""

from __future__ import annotations

import dataclasses
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Request, WebSocket
from fastapi.responses import Response

from api.access import audit
from api.access.policy import Forbidden, Need, decide
from api.deps import Access, Connection, require
from api.fhir.capability import Interaction, SearchParam
from api.fhir.outcome import FhirError
from api.fhir.response import FhirJSON, fhir_base, here
from api.subscriptions import store
from api.subscriptions.endpoints import check_endpoint
from api.subscriptions.owners import may_see, reach
from api.subscriptions.resources import (
    EXAMPLE,
    MAX_COUNT,
    TIMEOUT,
    PostedSubscription,
    Subscription,
    notification,
    render_subscription,
    status_parameters,
    topic_extensions,
)
from api.subscriptions.topics import TOPICS, TopicError, patient_filter, topic_of
from api.subscriptions.websocket import Sockets
from vigil.wire.times import iso

router = APIRouter(prefix="/fhir")
_OP = "http://hl7.org/fhir/uv/subscriptions-backport/OperationDefinition/"
CREATE = Interaction("Subscription", "create")
READ = Interaction("Subscription", "read")
DELETE = Interaction("Subscription", "delete")
SEARCH = Interaction(
    "Subscription",
    "search-type",
    (SearchParam("status", "token", "requested, active, error or off; the caller's own"),),
)
STATUS = Interaction(
    "Subscription", "operation", operation=("status", _OP + "backport-subscription-status")
)
EVENTS = Interaction(
    "Subscription",
    "operation",
    (
        SearchParam("eventsSinceNumber", "string", "the first event number (inclusive)"),
        SearchParam("eventsUntilNumber", "string", "the last event number (inclusive)"),
        SearchParam("content", "token", "empty, id-only or full-resource"),
    ),
    operation=("events", _OP + "backport-subscription-events"),
)
BINDING = Interaction(
    "Subscription",
    "operation",
    operation=("get-ws-binding-token", _OP + "backport-subscription-get-ws-binding-token"),
)
WEBSOCKET_PATH = "/fhir/websocket"
BINDING_LIFETIME_S = 300
EVENTS_PAGE = 100
SEARCH_LIMIT = 500
_STATUSES = ("requested", "active", "error", "off")
_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")


def _declared_search() -> dict[str, Any]:
    """The search's declaration carries the topics, which the CapabilityStatement lists on
    its Subscription entry (R4 has no SubscriptionTopic resource to find them by)."""
    extra = SEARCH.declared()
    extra["x-fhir-interaction"]["extension"] = topic_extensions(list(TOPICS.values()))
    return extra


@router.post(
    "/Subscription",
    response_class=FhirJSON,
    status_code=201,
    openapi_extra=CREATE.declared()
    | {"requestBody": {"content": {"application/json": {"example": EXAMPLE}}}},
)
def create_subscription(
    request: Request,
    subscription: PostedSubscription,
    access: Annotated[Access, require("Subscription", "create")],
    conn: Connection,
) -> FhirJSON:
    try:
        topic = topic_of(subscription.criteria)
        patient = patient_filter(topic, subscription.filters())
        content = subscription.content()
        endpoint = subscription.endpoint()
    except (TopicError, ValueError) as exc:
        raise FhirError(400, "invalid", str(exc)) from None
    most = request.app.state.subscriptions_per_principal
    if store.count_live(conn, access.who) >= most:
        raise FhirError(
            429, "throttled", f"{most} live Subscriptions at most per principal: delete one first"
        )
    access.touch([patient])
    try:
        reachable = decide(conn, access.who, Need(topic.resource, "subscribe"))
    except Forbidden as exc:
        raise FhirError(403, "forbidden", str(exc)) from None
    if patient is not None and not reachable.holds(patient):
        raise FhirError(404, "not-found", "no such Patient")
    try:
        if endpoint is not None:  # after the policy: a stranger learns nothing of the network
            check_endpoint(endpoint, request.app.state.local_hooks)
    except ValueError as exc:
        raise FhirError(400, "invalid", str(exc)) from None
    with conn.transaction():
        made = store.create(
            conn,
            access.who,
            topic=topic.url,
            patient=patient,
            channel=subscription.channel.type,
            endpoint=endpoint,
            headers=subscription.channel.header,
            content=content,
            reason=subscription.reason,
            timeout_s=subscription.number(TIMEOUT, 10, 1, 60),
            max_count=subscription.number(MAX_COUNT, 20, 1, 100),
            ends=subscription.end,
        )
        audit.add(conn, access.record, 201)
    location = f"{fhir_base(request)}/Subscription/{made.id}"
    return FhirJSON(
        render_subscription(made, show_secret=True), status_code=201, headers={"Location": location}
    )


@router.get("/Subscription", response_class=FhirJSON, openapi_extra=_declared_search())
def search_subscriptions(
    request: Request,
    access: Annotated[Access, require("Subscription", "search")],
    conn: Connection,
    status: str | None = None,
) -> FhirJSON:
    statuses = status.split(",") if status else None
    if statuses is not None and not set(statuses) <= set(_STATUSES):
        raise FhirError(400, "invalid", f"status: one or more of {', '.join(_STATUSES)}")
    owner = None if access.compartment.everyone else access.who.name
    found = [
        s
        for s in store.owned(conn, owner, statuses, SEARCH_LIMIT)
        if access.compartment.everyone or s.owner_kind == str(access.who.kind)
    ]
    access.touch(s.patient for s in found)
    base = fhir_base(request)
    return FhirJSON(
        _searchset(
            request, [(f"{base}/Subscription/{s.id}", render_subscription(s)) for s in found]
        )
    )


@router.get(
    "/Subscription/{subscription_id}", response_class=FhirJSON, openapi_extra=READ.declared()
)
def read_subscription(
    subscription_id: str,
    access: Annotated[Access, require("Subscription", "read")],
    conn: Connection,
) -> FhirJSON:
    sub = _own(conn, access, subscription_id)
    if sub.deleted is not None:
        raise FhirError(410, "deleted", "the Subscription was deleted")
    return FhirJSON(render_subscription(sub))


@router.get(
    "/Subscription/{subscription_id}/$status",
    response_class=FhirJSON,
    openapi_extra=STATUS.declared(),
)
def subscription_status(
    request: Request,
    subscription_id: str,
    access: Annotated[Access, require("Subscription", "read")],
    conn: Connection,
) -> FhirJSON:
    sub = _own(conn, access, subscription_id)
    status = status_parameters(sub, fhir_base(request), "query-status", [], frozenset())
    return FhirJSON(_searchset(request, [(f"urn:uuid:{status['id']}", status)]))


@router.get(
    "/Subscription/{subscription_id}/$events",
    response_class=FhirJSON,
    openapi_extra=EVENTS.declared(),
)
def subscription_events(
    request: Request,
    subscription_id: str,
    access: Annotated[Access, require("Subscription", "read")],
    conn: Connection,
    eventsSinceNumber: str | None = None,  # the operation's own parameter names
    eventsUntilNumber: str | None = None,
    content: str | None = None,
) -> FhirJSON:
    """What the subscription was given, by number: how a client that was away catches up.
    At most :data:`EVENTS_PAGE` a call; the Parameters say how many there are in all."""
    sub = _own(conn, access, subscription_id)
    since = _number("eventsSinceNumber", eventsSinceNumber, 1)
    until = _number("eventsUntilNumber", eventsUntilNumber, sub.events)
    if content is not None:
        if content not in ("empty", "id-only", "full-resource"):
            raise FhirError(400, "invalid", "content: empty, id-only or full-resource")
        sub = dataclasses.replace(sub, content=content)
    events = store.events(conn, sub.id, since - 1, until, EVENTS_PAGE)
    compartment = reach(conn, sub)
    hidden = frozenset(e.number for e in events if not may_see(compartment, sub, e.patient))
    access.touch(e.patient for e in events if e.number not in hidden)
    return FhirJSON(notification(sub, fhir_base(request), "query-event", events, hidden))


@router.post(
    "/Subscription/{subscription_id}/$get-ws-binding-token",
    response_class=FhirJSON,
    openapi_extra=BINDING.declared(),
)
def websocket_binding_token(
    request: Request,
    subscription_id: str,
    access: Annotated[Access, require("Subscription", "read")],
    conn: Connection,
) -> FhirJSON:
    sub = _own(conn, access, subscription_id)
    if sub.channel != "websocket" or sub.deleted is not None or sub.status == "off":
        raise FhirError(400, "invalid", "only a live websocket Subscription takes a binding token")
    expires = datetime.now(UTC) + timedelta(seconds=BINDING_LIFETIME_S)
    with conn.transaction():
        token = store.issue_binding_token(conn, sub.id, expires)
    base = request.app.state.base_url
    scheme, _, rest = base.partition(":")
    socket_url = ("wss:" if scheme == "https" else "ws:") + rest
    return FhirJSON(
        {
            "resourceType": "Parameters",
            "parameter": [
                {"name": "token", "valueString": token},
                {"name": "expiration", "valueDateTime": iso(expires)},
                {"name": "subscription", "valueString": sub.id},
                {"name": "websocket-url", "valueUrl": socket_url + WEBSOCKET_PATH},
            ],
        }
    )


@router.delete("/Subscription/{subscription_id}", status_code=204, openapi_extra=DELETE.declared())
def delete_subscription(
    subscription_id: str,
    access: Annotated[Access, require("Subscription", "delete")],
    conn: Connection,
) -> Response:
    """Deleting one already deleted changes nothing and says so the same way, as FHIR asks."""
    sub = _own(conn, access, subscription_id)
    with conn.transaction():
        store.delete(conn, sub.id)
    return Response(status_code=204)


@router.websocket(WEBSOCKET_PATH.removeprefix("/fhir"))
async def subscription_websocket(websocket: WebSocket) -> None:
    """Authenticated by the binding tokens it is sent, not by a header (browsers cannot set
    one on a websocket)."""
    sockets: Sockets = websocket.app.state.sockets
    await sockets.serve(websocket)


def _own(conn: Connection, access: Access, subscription_id: str) -> Subscription:
    """The caller's own subscription (an administrator's: anyone's); else not found."""
    sub = store.read(conn, subscription_id) if _ID.fullmatch(subscription_id) else None
    mine = sub is not None and (
        access.compartment.everyone
        or (sub.owner == access.who.name and sub.owner_kind == str(access.who.kind))
    )
    if sub is None or not mine:
        raise FhirError(404, "not-found", "no such Subscription")
    access.touch([sub.patient])
    return sub


def _number(name: str, value: str | None, default: int) -> int:
    if value is None:
        return default
    if not (value.isascii() and value.isdigit() and len(value) <= 18):
        raise FhirError(400, "invalid", f"{name}: a whole number")
    return int(value)


def _searchset(request: Request, entries: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "id": str(uuid.uuid4()),
        "type": "searchset",
        "timestamp": iso(datetime.now(UTC)),
        "total": len(entries),
        "link": [{"relation": "self", "url": here(request)}],
        "entry": [
            {"fullUrl": url, "resource": resource, "search": {"mode": "match"}}
            for url, resource in entries
        ],
    }
