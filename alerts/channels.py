"""The ways a notification reaches someone: a signed webhook, any apprise URL, or (through
the service's broker session) the patient's gateway inbox.

Webhooks are POSTs of the JSON body with ``Idempotency-Key`` and
``X-Vigil-Signature: sha256=<HMAC-SHA256 of the body with the shared secret>``; a receiver
recomputes the HMAC (:func:`verify`) to know the sender. The POST is the standard
library's: signing a body needs no HTTP client beyond it. Care-team members and patients'
own channels are apprise URLs (mailto://, ntfy://, slack://, json:// ...).
"""

from __future__ import annotations

import hashlib
import hmac
import urllib.error
import urllib.request
from typing import Any

import apprise

SIGNATURE_HEADER = "X-Vigil-Signature"
PRIORITIES = ("low", "medium", "high")


class DeliveryError(Exception):
    """A delivery that did not get through; the message says why (it names no patient)."""


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, signature: str | None) -> bool:
    """Whether ``signature`` (the header's value) is the sender's for ``body``. Compared in
    constant time, so a forger learns nothing from how long a refusal takes."""
    return signature is not None and hmac.compare_digest(sign(secret, body), signature)


def post_webhook(url: str, body: bytes, key: str, secret: str, timeout: float = 5.0) -> None:
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "Idempotency-Key": key,
            SIGNATURE_HEADER: sign(secret, body),
            "User-Agent": "vigil-alerts",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            answer.read()
    except urllib.error.HTTPError as exc:
        raise DeliveryError(f"HTTP {exc.code}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise DeliveryError(str(getattr(exc, "reason", exc))) from None


def highest(bodies: list[dict[str, Any]]) -> str:
    """The highest priority of some alerts' bodies."""
    return max((b.get("priority", "medium") for b in bodies), key=PRIORITIES.index)


def send_apprise(url: str, patient: str, bodies: list[dict[str, Any]]) -> None:
    """One care-team member's contact, told in lines a phone's lock screen can show."""
    priority = highest(bodies)
    what = bodies[0]["rule"] if len(bodies) == 1 else f"{len(bodies)} alerts"
    title = f"Vigil {priority.upper()}: {what} ({patient})"
    text = "\n".join(
        f"{'worse, ' if b.get('revision') else ''}{b['rule']}: {b['metric']} {b['value']} at"
        f" {b['time']} (alert {b['alert']}: "
        f"`vigil alerts ack {b['alert']} --by NAME`)"
        for b in bodies
    )
    kind = apprise.NotifyType.FAILURE if priority == "high" else apprise.NotifyType.WARNING
    send_apprise_text(url, title, text, kind)


def send_apprise_text(
    url: str, title: str, text: str, kind: apprise.NotifyType = apprise.NotifyType.INFO
) -> None:
    notifier = apprise.Apprise()
    if not notifier.add(url):
        raise DeliveryError("not a contact apprise can use")
    if not notifier.notify(title=title, body=text, notify_type=kind):
        raise DeliveryError("apprise could not deliver it")
