"""The topics a client may subscribe to, and the one filter they take (``patient``).

R4 has no SubscriptionTopic resource: a topic is only its canonical URL, which the
Subscription's ``criteria`` names and the CapabilityStatement lists. Each topic says what
it is about (the FHIR type its events focus on, which is also what the policy is asked
about: subscribing to alerts needs what searching Flags needs) and where its events come
from (alert changes, or stored observations).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qsl

BASE = "https://vigil-rpm.org/fhir/SubscriptionTopic"
_PATIENT = re.compile(r"(?:Patient/)?(?P<id>[A-Za-z0-9\-.]{1,64})")


class TopicError(ValueError):
    """A criteria or filter Vigil cannot honour; the message says what to change."""


@dataclass(frozen=True, slots=True)
class Topic:
    url: str
    title: str
    resource: str
    """The type of the events' focus (Flag, Observation)."""
    source: str
    """Where events come from: ``alert_change`` or ``observation``."""
    changes: tuple[str, ...] = ()
    """For alert topics, the alert changes that are events."""
    patient_required: bool = False


NEW_ALERT = Topic(
    f"{BASE}/new-alert", "A new alert (Flag) is raised", "Flag", "alert_change", ("triggered",)
)
ALERT_CHANGED = Topic(
    f"{BASE}/alert-changed",
    "An alert (Flag) is acknowledged, snoozed, resolved, escalated, worsened or renewed",
    "Flag",
    "alert_change",
    ("acknowledged", "snoozed", "resolved", "escalated", "worsened", "renewed"),
)
NEW_OBSERVATION = Topic(
    f"{BASE}/new-observation",
    "A new Observation of one patient is stored",
    "Observation",
    "observation",
    patient_required=True,
)
"""A patient's observations arrive every second: a subscription to them names the patient,
so that finding its events reads that patient's newest rows only."""
TOPICS = {t.url: t for t in (NEW_ALERT, ALERT_CHANGED, NEW_OBSERVATION)}


def topic_of(criteria: str) -> Topic:
    topic = TOPICS.get(criteria)
    if topic is None:
        raise TopicError(
            f"criteria must be one of the topics this server offers: {', '.join(TOPICS)}"
        )
    return topic


def patient_filter(topic: Topic, filters: list[str]) -> str | None:
    """The patient of the filters (``[Type?]patient=Patient/ID``, at most one), or None;
    every other search parameter is refused rather than ignored, as searches do."""
    if len(filters) > 1:
        raise TopicError("give at most one filter criteria: patient=Patient/ID")
    patient = None
    for text in filters:
        resource, mark, query = text.partition("?")
        if not mark:
            resource, query = topic.resource, text
        if resource != topic.resource:
            raise TopicError(f"the filter of {topic.url} is on {topic.resource}, not {resource}")
        pairs = parse_qsl(query, keep_blank_values=True)
        if len(pairs) != 1 or pairs[0][0] not in ("patient", "subject"):
            raise TopicError("the only filter is patient=Patient/ID")
        match = _PATIENT.fullmatch(pairs[0][1])
        if match is None:
            raise TopicError("patient: expected Patient/{id} (letters, digits, '-', '.')")
        patient = match["id"]
    if patient is None and topic.patient_required:
        raise TopicError(f"{topic.url} needs a filter criteria patient=Patient/ID")
    return patient
