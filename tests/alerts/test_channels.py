"""Webhook signatures as a receiver checks them."""

from __future__ import annotations

import hmac

import pytest

from alerts.channels import sign, verify

BODY = b'{"patient": "p1", "alerts": []}'


def test_a_genuine_signature_is_accepted_and_anything_else_refused() -> None:
    genuine = sign("s3cret", BODY)
    assert genuine.startswith("sha256=") and verify("s3cret", BODY, genuine)
    assert not verify("s3cret", BODY + b" ", genuine)  # the body changed
    assert not verify("other", BODY, genuine)  # signed with another secret
    assert not verify("s3cret", BODY, genuine.removeprefix("sha256="))
    assert not verify("s3cret", BODY, None)  # no signature header at all


def test_signatures_are_compared_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    compared: list[tuple[str, str]] = []
    real = hmac.compare_digest

    def recording(a: str, b: str) -> bool:
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", recording)
    assert verify("s3cret", BODY, sign("s3cret", BODY))
    assert compared == [(sign("s3cret", BODY), sign("s3cret", BODY))]
