"""What every request passes through: security headers, links from the configured address
(never the Host header), size limits, NUL bytes refused, failures as OperationOutcome, and
an audit row for each, written before the answer, or no answer."""

from __future__ import annotations

import socket
from concurrent.futures import ThreadPoolExecutor

import httpx
import psycopg
import pytest

from tests.api.access.ward import ward

pytestmark = [pytest.mark.slow, pytest.mark.services]


def last_audit(url: str) -> tuple[str, str, str, int, str | None]:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT actor, resource, outcome, status, query FROM audit_event ORDER BY id DESC"
        ).fetchone()
    assert row is not None
    return row  # type: ignore[return-value]


def test_every_answer_carries_the_security_headers_and_https_adds_hsts(database_url: str) -> None:
    with ward(database_url, api_base_url="https://rpm.example") as w:
        for path, auth, status in [
            ("/fhir/Observation?patient=pn1", w.auth("dr-north"), 200),
            ("/fhir/Observation?patient=pn1", {}, 401),
            ("/no/such/page", w.auth("dr-north"), 404),
            ("/fhir/metadata", {}, 200),
        ]:
            answer = httpx.get(w.base + path, headers=auth)
            assert answer.status_code == status
            assert answer.headers["cache-control"] == "no-store"
            assert answer.headers["x-content-type-options"] == "nosniff"
            assert answer.headers["x-frame-options"] == "DENY"
            assert "frame-ancestors 'none'" in answer.headers["content-security-policy"]
            assert answer.headers["strict-transport-security"].startswith("max-age=")
            if status >= 400:
                assert answer.json()["resourceType"] == "OperationOutcome"
    with ward(database_url) as w:  # an http:// address: no HSTS
        answer = httpx.get(w.base + "/fhir/metadata")
        assert "strict-transport-security" not in answer.headers


def test_links_come_from_the_configured_address_not_the_host_header(database_url: str) -> None:
    with ward(database_url, api_base_url="https://rpm.example/") as w:
        headers = {**w.auth("dr-north"), "Host": "evil.example"}
        bundle = httpx.get(f"{w.base}/fhir/Observation?patient=pn1", headers=headers).json()
        statement = httpx.get(f"{w.base}/fhir/metadata", headers={"Host": "evil.example"}).json()
        slash = httpx.get(f"{w.base}/fhir/Observation/", headers=headers)
    assert slash.status_code == 404 and "location" not in slash.headers
    links = [link["url"] for link in bundle["link"]] + [e["fullUrl"] for e in bundle["entry"]]
    links.append(statement["implementation"]["url"])
    assert links and all(u.startswith("https://rpm.example/fhir/") for u in links[:-1])
    assert links[-1] == "https://rpm.example/fhir"
    assert "evil" not in str(bundle) + str(statement)


def test_oversized_bodies_are_refused_and_audited(database_url: str) -> None:
    with ward(database_url, api_max_body_bytes=2048) as w:
        url = f"{w.base}/alerts/{w.alerts['pn1']}/acknowledge"
        big = {"note": "x" * 4000}
        declared = httpx.post(url, headers=w.auth("dr-north"), json=big)
        assert declared.status_code == 413
        assert declared.json()["issue"][0]["code"] == "too-costly"

        def chunks():  # type: ignore[no-untyped-def]
            yield b'{"note": "'
            for _ in range(10):
                yield b"y" * 1000
            yield b'"}'

        chunked = httpx.post(
            url,
            headers={**w.auth("dr-north"), "Content-Type": "application/json"},
            content=chunks(),
        )
        assert chunked.status_code == 413
        assert last_audit(w.url)[2:4] == ("too-large", 413)
        with psycopg.connect(w.url) as conn:
            state = conn.execute("SELECT state FROM alert WHERE id = %s", (w.alerts["pn1"],))
            assert state.fetchone() == ("triggered",)


def test_nul_bytes_are_refused_before_any_route_and_audited(database_url: str) -> None:
    with ward(database_url) as w:
        for query in ("patient=pn1%00", "patient=pn1&date=%002026", "code=%00"):
            answer = httpx.get(f"{w.base}/fhir/Observation?{query}", headers=w.auth("dr-north"))
            assert answer.status_code == 400 and "NUL" in answer.text
            assert last_audit(w.url)[2:4] == ("invalid", 400)
        with socket.create_connection(w.base.removeprefix("http://").split(":")) as raw:
            raw.sendall(b"GET /fhir/Flag%00?patient=pn1 HTTP/1.1\r\nHost: x\r\n\r\n")
            assert raw.recv(64).startswith(b"HTTP/1.1 400")


def test_a_failure_is_an_audited_operation_outcome_500(database_url: str) -> None:
    with ward(database_url) as w:
        with psycopg.connect(w.url, autocommit=True) as conn:
            conn.execute("ALTER TABLE consent RENAME TO consent_away")
        answer = httpx.get(f"{w.base}/fhir/Consent?patient=pn1", headers=w.auth("pn1"))
        assert answer.status_code == 500
        assert answer.json()["resourceType"] == "OperationOutcome"
        assert "consent" not in answer.text.lower().replace("/fhir/consent", "")
        assert last_audit(w.url)[:4] == ("pn1-self", "/fhir/Consent", "error", 500)


def test_no_audit_row_no_answer(database_url: str) -> None:
    """The audit row is written before the answer leaves: when it cannot be, the data
    does not leave either."""
    with ward(database_url) as w:
        with psycopg.connect(w.url, autocommit=True) as conn:
            conn.execute(
                "ALTER TABLE audit_event ADD CONSTRAINT not_north CHECK (actor <> 'dr-north')"
                " NOT VALID"
            )
        answer = httpx.get(f"{w.base}/fhir/Observation?patient=pn1", headers=w.auth("dr-north"))
        assert answer.status_code == 503
        assert "pn1" not in answer.text and answer.json()["resourceType"] == "OperationOutcome"
        assert httpx.get(f"{w.base}/access", headers=w.auth("pn1")).status_code == 200
        # a change and its audit row are one transaction: no row, no change
        url = f"{w.base}/alerts/{w.alerts['pn1']}/resolve"
        assert httpx.post(url, headers=w.auth("dr-north")).status_code == 503
        with psycopg.connect(w.url) as conn:
            state = conn.execute("SELECT state FROM alert WHERE id = %s", (w.alerts["pn1"],))
            assert state.fetchone() == ("triggered",)


def test_the_trail_cannot_be_rewritten_and_anonymous_noise_is_bounded(database_url: str) -> None:
    with ward(database_url) as w:
        noise = "x=" + "a" * 12_000  # about what a request line may carry through uvicorn
        assert httpx.get(f"{w.base}/fhir/Observation?{noise}").status_code == 401
        kept = last_audit(w.url)[4]
        assert kept is not None and len(kept) < 400
        with psycopg.connect(w.url, autocommit=True) as conn:
            for statement in (
                "UPDATE audit_event SET actor = 'nobody'",
                "DELETE FROM audit_event",
                "TRUNCATE audit_event",
            ):
                with pytest.raises(psycopg.errors.InsufficientPrivilege):
                    conn.execute(statement)


def test_requests_without_a_token_cannot_starve_the_pool(database_url: str) -> None:
    """Each request holds at most one connection at a time (none before its token is
    known): many anonymous requests at once leave everyone else answered."""
    with ward(database_url) as w:

        def ask(i: int) -> int:
            auth = w.auth("dr-north") if i % 4 == 0 else {}
            return httpx.get(f"{w.base}/alerts", headers=auth, timeout=20).status_code

        with ThreadPoolExecutor(48) as pool:
            statuses = list(pool.map(ask, range(96)))
    assert statuses.count(200) == 24 and statuses.count(401) == 72


def test_a_body_cut_off_at_the_limit_is_never_acted_on(database_url: str) -> None:
    with ward(database_url, api_max_body_bytes=1024) as w:
        valid = (
            b'{"resourceType": "Consent", "status": "active", "patient": {"reference":'
            b' "Patient/pn1"}, "provision": {"type": "deny", "actor": [{"reference":'
            b' {"reference": "CareTeam/t-north"}}]}}'
        )

        def chunks():  # type: ignore[no-untyped-def]
            yield valid
            yield b" " * 4000  # JSON allows trailing whitespace: the prefix alone parses

        answer = httpx.post(
            f"{w.base}/fhir/Consent",
            headers={**w.auth("pn1"), "Content-Type": "application/fhir+json"},
            content=chunks(),
        )
        assert answer.status_code == 413 and answer.json()["resourceType"] == "OperationOutcome"
        with psycopg.connect(w.url) as conn:
            denied = conn.execute("SELECT count(*) FROM consent WHERE decision = 'deny'")
            assert denied.fetchone() == (0,)
