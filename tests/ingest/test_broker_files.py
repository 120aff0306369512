"""Mosquitto's password and ACL files as `vigil enroll` writes them."""

from __future__ import annotations

import os
import stat
from datetime import UTC, datetime
from pathlib import Path

from ingest import broker_files
from ingest.credentials import Account, Role

ISSUED = datetime(2025, 1, 1, tzinfo=UTC)


def account(username: str, role: Role) -> Account:
    return Account(username, role, f"$7$101$salt-of-{username}$hash", ISSUED)


def test_a_gateway_writes_its_own_topics_and_reads_only_its_inbox_and_commitments() -> None:
    text = broker_files.acl_file([account("gw-a", "gateway")])
    assert text.startswith(broker_files.ACL_HEADER)
    assert text.endswith(
        "# gateway\n"
        "user gw-a\n"
        "topic write vigil/v1/gw/gw-a/readings\n"
        "topic write vigil/v1/gw/gw-a/status\n"
        "topic write vigil/v1/gw/gw-a/devices\n"
        "topic read vigil/v1/gw/gw-a/inbox\n"
        "topic read vigil/v1/gw/gw-a/committed\n"
    )


def test_each_service_gets_what_it_uses_and_its_own_status_topic() -> None:
    assert broker_files.rights("ingest", "vigil-ingest") == [
        ("read", "vigil/v1/gw/+/readings"),
        ("read", "vigil/v1/gw/+/status"),
        ("read", "vigil/v1/gw/+/devices"),
        ("write", "vigil/v1/gw/+/committed"),
        ("write", "vigil/v1/svc/vigil-ingest/status"),
    ]
    assert broker_files.rights("analytics", "vigil-analytics-1") == [
        ("read", "vigil/v1/gw/+/readings"),
        ("write", "vigil/v1/events/+"),
        ("write", "vigil/v1/svc/vigil-analytics-1/status"),
    ]
    assert broker_files.rights("alerts", "vigil-alerts") == [
        ("read", "vigil/v1/events/+"),
        ("write", "vigil/v1/gw/+/inbox"),
        ("write", "vigil/v1/svc/vigil-alerts/status"),
    ]
    assert broker_files.rights("monitor", "vigil-monitor") == [
        ("read", "vigil/v1/svc/+/status"),
        ("read", "vigil/v1/gw/+/status"),
        ("read", "vigil/v1/gw/+/devices"),
    ]


def test_the_password_file_has_one_line_per_account() -> None:
    text = broker_files.password_file([account("gw-a", "gateway"), account("ing", "ingest")])
    assert text == "gw-a:$7$101$salt-of-gw-a$hash\ning:$7$101$salt-of-ing$hash\n"


def test_a_new_file_is_owner_only_and_an_existing_one_keeps_its_mode(tmp_path: Path) -> None:
    before = os.umask(0o022)
    try:
        path = tmp_path / "acl"
        assert broker_files.write(path, "one\n") is True
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        os.chmod(path, 0o640)  # as an administrator set it for the broker's group
        assert broker_files.write(path, "two\n") is False
    finally:
        os.umask(before)
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert path.read_text() == "two\n"
    assert [p.name for p in tmp_path.iterdir()] == ["acl"]  # no temporary left behind
