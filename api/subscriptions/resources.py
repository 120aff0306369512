"""Subscription as the R4 profile of the backport has it, the part of a posted one Vigil
reads, and the notification Bundles (history, a Parameters with the subscription's status
first, then the events' resources as the subscription's content asks).

R4 carries what R5 has as elements in extensions: the filter on ``_criteria``
(backport-filter-criteria), the content on ``channel._payload`` (backport-payload-content),
the timeout and the largest number of events per notification on ``channel``
(backport-timeout, backport-max-count). The signing secret is Vigil's own extension on
``channel``, in the answer to the create only: the server makes it, and nobody is shown it
again (a read or a search leaves it out).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from api.subscriptions.topics import TOPICS, Topic
from vigil.wire.times import iso

IG = "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition"
FILTER = f"{IG}/backport-filter-criteria"
CONTENT = f"{IG}/backport-payload-content"
TIMEOUT = f"{IG}/backport-timeout"
MAX_COUNT = f"{IG}/backport-max-count"
SUBSCRIPTION_PROFILE = f"{IG}/backport-subscription"
NOTIFICATION_PROFILE = f"{IG}/backport-subscription-notification-r4"
STATUS_PROFILE = f"{IG}/backport-subscription-status-r4"
TOPIC_CANONICAL = f"{IG}/capabilitystatement-subscriptiontopic-canonical"
SECRET = "https://vigil-rpm.org/fhir/StructureDefinition/subscription-signing-secret"
"""On ``channel`` in the answer to a create: the key of the X-Vigil-Signature HMAC."""
FHIR_JSON = "application/fhir+json"
_LOOPBACK = ("localhost", "127.0.0.1", "::1")
_HEADER = re.compile(
    r"(?P<name>[A-Za-z0-9!#$%&'*+.^_`|~-]{1,64}):[ \t]*(?P<value>[^\r\n\x00]{0,1000})"
)
_RESERVED = {"content-type", "content-length", "host", "x-vigil-signature", "idempotency-key"}
Content = Literal["empty", "id-only", "full-resource"]


class _Extension(BaseModel):
    model_config = ConfigDict(extra="ignore")
    url: str = Field(max_length=300)
    valueString: str | None = Field(None, max_length=300)
    valueCode: str | None = Field(None, max_length=64)
    valueUnsignedInt: int | None = Field(None, ge=0, le=2**31 - 1)
    valuePositiveInt: int | None = Field(None, ge=1, le=2**31 - 1)


class _Extended(BaseModel):
    model_config = ConfigDict(extra="ignore")
    extension: list[_Extension] = Field(default_factory=list, max_length=20)

    def values(self, url: str) -> list[_Extension]:
        return [e for e in self.extension if e.url == url]


class _Channel(_Extended):
    type: Literal["rest-hook", "websocket"]
    endpoint: str | None = Field(None, max_length=2000, pattern=r"^[^\x00]*$")
    payload: Literal["application/fhir+json"] = "application/fhir+json"
    payload_ext: _Extended = Field(default_factory=_Extended, alias="_payload")
    header: list[str] = Field(default_factory=list, max_length=10)

    @field_validator("header")
    @classmethod
    def _headers(cls, headers: list[str]) -> list[str]:
        for header in headers:
            match = _HEADER.fullmatch(header)
            if match is None:
                raise ValueError("each header is 'Name: value' on one line")
            if match["name"].lower() in _RESERVED:
                raise ValueError(f"{match['name']} is set by the server")
        return headers


EXAMPLE = {
    "resourceType": "Subscription",
    "status": "requested",
    "reason": "an example patient's new alerts, over a websocket",
    "criteria": "https://vigil-rpm.org/fhir/SubscriptionTopic/new-alert",
    "_criteria": {"extension": [{"url": FILTER, "valueString": "Flag?patient=Patient/example"}]},
    "channel": {"type": "websocket", "payload": "application/fhir+json"},
}
"""What the OpenAPI document shows a client (and the fuzzer) of a posted Subscription."""


class PostedSubscription(BaseModel):
    """What Vigil reads of a posted Subscription; the rest is the server's to set."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)
    resourceType: Literal["Subscription"]
    status: Literal["requested", "active"]
    reason: str = Field(min_length=1, max_length=500, pattern=r"^[^\x00]*$")
    criteria: Literal[
        "https://vigil-rpm.org/fhir/SubscriptionTopic/new-alert",
        "https://vigil-rpm.org/fhir/SubscriptionTopic/alert-changed",
        "https://vigil-rpm.org/fhir/SubscriptionTopic/new-observation",
    ]
    """One of :data:`~api.subscriptions.topics.TOPICS` (spelled out: the OpenAPI document
    then tells clients, and the fuzzer, which topics there are)."""
    criteria_ext: _Extended = Field(default_factory=_Extended, alias="_criteria")
    end: AwareDatetime | None = None
    channel: _Channel

    @field_validator("end")
    @classmethod
    def _future(cls, end: datetime | None) -> datetime | None:
        try:
            if end is not None and end.astimezone(UTC) <= datetime.now(UTC):
                raise ValueError("end is in the past")
        except OverflowError:
            raise ValueError("a time from year 0001 to 9999 in UTC") from None
        return end

    def filters(self) -> list[str]:
        return [e.valueString or "" for e in self.criteria_ext.values(FILTER)]

    def content(self) -> Content:
        codes = [e.valueCode for e in self.channel.payload_ext.values(CONTENT)]
        code = codes[0] if codes else "id-only"
        if len(codes) > 1 or code not in ("empty", "id-only", "full-resource"):
            raise ValueError("payload content is one of empty, id-only, full-resource")
        return code  # type: ignore[return-value]

    def number(self, url: str, default: int, low: int, high: int) -> int:
        """A whole-number channel extension (timeout, max count), within what Vigil allows."""
        found = self.channel.values(url)
        value = found[0].valueUnsignedInt or found[0].valuePositiveInt if found else None
        return default if value is None else max(low, min(high, value))

    def endpoint(self) -> str | None:
        """The rest-hook endpoint: https, or http to this machine only (anyone on the path
        of a plain http URL could read what is posted, patients' data)."""
        url = self.channel.endpoint
        if self.channel.type == "websocket":
            if url is not None:
                raise ValueError("a websocket subscription has no endpoint: the client connects")
            return None
        if url is None:
            raise ValueError("a rest-hook subscription needs channel.endpoint")
        try:
            parts = urlsplit(url)
            host = parts.hostname
        except ValueError:
            raise ValueError("channel.endpoint is not a URL") from None
        if not host or parts.username or parts.password:
            raise ValueError("channel.endpoint needs a host and no credentials in the URL")
        if parts.scheme != "https" and not (parts.scheme == "http" and host in _LOOPBACK):
            raise ValueError("channel.endpoint must be https:// (http:// only to loopback)")
        return url


@dataclass(frozen=True, slots=True)
class Subscription:
    id: str
    owner: str
    owner_kind: str
    owner_scopes: str
    owner_patient: str | None
    topic: str
    patient: str | None
    channel: str
    endpoint: str | None
    headers: list[str]
    content: str
    secret: str
    reason: str
    status: str
    error: str
    timeout_s: int
    max_count: int
    ends: datetime | None
    created: datetime
    deleted: datetime | None
    events: int
    handshaken: bool
    delivered: int
    attempts: int


@dataclass(frozen=True, slots=True)
class Event:
    number: int
    at: datetime
    patient: str
    focus: str
    """``Flag/ID`` or ``Observation/ID``."""
    resource: dict[str, Any]
    new: bool
    """The focus was created by the event (a new alert, a new Observation), not changed."""


def render_subscription(sub: Subscription, show_secret: bool = False) -> dict[str, Any]:
    channel: dict[str, Any] = {
        "extension": [
            {"url": TIMEOUT, "valueUnsignedInt": sub.timeout_s},
            {"url": MAX_COUNT, "valuePositiveInt": sub.max_count},
        ],
        "type": sub.channel,
        "payload": FHIR_JSON,
        "_payload": {"extension": [{"url": CONTENT, "valueCode": sub.content}]},
    }
    if show_secret:
        channel["extension"].append({"url": SECRET, "valueString": sub.secret})
    if sub.endpoint is not None:
        channel["endpoint"] = sub.endpoint
    if sub.headers:  # credentials for the endpoint: their values only in the create's answer
        channel["header"] = (
            sub.headers
            if show_secret
            else [f"{h.partition(':')[0]}: (not shown)" for h in sub.headers]
        )
    resource: dict[str, Any] = {
        "resourceType": "Subscription",
        "id": sub.id,
        "meta": {"profile": [SUBSCRIPTION_PROFILE]},
        "status": sub.status,
        "reason": sub.reason,
        "criteria": sub.topic,
        "channel": channel,
    }
    if sub.patient is not None:
        filtered = f"{TOPICS[sub.topic].resource}?patient=Patient/{sub.patient}"
        resource["_criteria"] = {"extension": [{"url": FILTER, "valueString": filtered}]}
    if sub.ends is not None:
        resource["end"] = iso(sub.ends)
    if sub.error:
        resource["error"] = sub.error
    return resource


def status_parameters(
    sub: Subscription, base: str, kind: str, events: Sequence[Event], hidden: frozenset[int]
) -> dict[str, Any]:
    """The backport's SubscriptionStatus as R4 Parameters. ``hidden``: numbers of events
    whose patient the subscriber may no longer see: their number and time only, so the
    count stays whole and nothing of the patient leaves."""
    empty = sub.content == "empty"
    parameters: list[dict[str, Any]] = [
        {"name": "subscription", "valueReference": {"reference": f"{base}/Subscription/{sub.id}"}}
    ]
    if not empty:
        parameters.append({"name": "topic", "valueCanonical": sub.topic})
    parameters += [
        {"name": "status", "valueCode": sub.status},
        {"name": "type", "valueCode": kind},
        {"name": "events-since-subscription-start", "valueString": str(sub.events)},
    ]
    for event in events:
        parts: list[dict[str, Any]] = [
            {"name": "event-number", "valueString": str(event.number)},
            {"name": "timestamp", "valueInstant": iso(event.at)},
        ]
        if not empty and event.number not in hidden:
            parts.append({"name": "focus", "valueReference": {"reference": event.focus}})
        parameters.append({"name": "notification-event", "part": parts})
    return {
        "resourceType": "Parameters",
        "id": str(uuid.uuid4()),
        "meta": {"profile": [STATUS_PROFILE]},
        "parameter": parameters,
    }


def notification(
    sub: Subscription,
    base: str,
    kind: str,
    events: Sequence[Event] = (),
    hidden: frozenset[int] = frozenset(),
) -> dict[str, Any]:
    """A notification Bundle (``kind``: handshake, heartbeat, event-notification, or
    query-event for ``$events``)."""
    status = status_parameters(sub, base, kind, events, hidden)
    entries: list[dict[str, Any]] = [
        {
            "fullUrl": f"urn:uuid:{status['id']}",
            "resource": status,
            "request": {"method": "GET", "url": f"Subscription/{sub.id}/$status"},
            "response": {"status": "200"},
        }
    ]
    if sub.content != "empty":
        for event in events:
            if event.number in hidden:
                continue
            entry: dict[str, Any] = {"fullUrl": f"{base}/{event.focus}"}
            if sub.content == "full-resource":
                entry["resource"] = event.resource
            if event.new:
                entry["request"] = {"method": "POST", "url": event.focus.split("/")[0]}
                entry["response"] = {"status": "201"}
            else:
                entry["request"] = {"method": "PUT", "url": event.focus}
                entry["response"] = {"status": "200"}
            entries.append(entry)
    return {
        "resourceType": "Bundle",
        "id": str(uuid.uuid4()),
        "meta": {"profile": [NOTIFICATION_PROFILE]},
        "type": "history",
        "timestamp": iso(datetime.now(UTC)),
        "entry": entries,
    }


def topic_extensions(topics: list[Topic]) -> list[dict[str, Any]]:
    """What the CapabilityStatement's Subscription entry carries to list the topics."""
    return [{"url": TOPIC_CANONICAL, "valueCanonical": t.url} for t in topics]
