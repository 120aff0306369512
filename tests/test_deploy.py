"""The shipped deploy/ files: mosquitto.conf is a configuration Mosquitto accepts and serves
with, the passwords and ACL `vigil enroll` writes for it work there, and deploy/acl is what
`vigil enroll` writes."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from ingest import broker_files
from ingest.credentials import Account, Role, mosquitto_hash
from tests.mosquitto import CONF, accepted, shipped_broker
from vigil import mqtt as vigil_mqtt
from vigil.settings import Settings

EXAMPLE_ACL = CONF.parent / "acl"
EXAMPLE_ACCOUNTS: list[tuple[str, Role]] = [
    ("vigil-alerts", "alerts"),
    ("vigil-analytics", "analytics"),
    ("gw-home-0042", "gateway"),
    ("vigil-ingest", "ingest"),
    ("vigil-monitor", "monitor"),
]


def accounts(passwords: dict[str, str], roles: dict[str, Role]) -> list[Account]:
    issued = datetime.now(UTC)
    return [Account(u, roles[u], mosquitto_hash(p), issued) for u, p in passwords.items()]


def test_the_example_acl_is_what_vigil_enroll_writes() -> None:
    rendered = broker_files.acl_file(
        Account(u, role, "", datetime.now(UTC)) for u, role in EXAMPLE_ACCOUNTS
    )
    assert EXAMPLE_ACL.read_text().endswith(rendered), (
        "deploy/acl differs from what ingest/broker_files.py writes: write it again"
    )


def test_the_config_refuses_strangers_and_takes_usernames_as_client_ids() -> None:
    lines = CONF.read_text().splitlines()
    for setting in ("allow_anonymous false", "use_username_as_clientid true"):
        assert setting in lines
    assert "acl_file /etc/mosquitto/acl" in lines
    assert "password_file /etc/mosquitto/passwd" in lines


@pytest.mark.services
def test_the_deployment_config_serves_enrolled_accounts_their_rights_only(tmp_path: Path) -> None:
    passwords = {"vigil-ingest": "s3cret", "gw-1": "0ther"}
    enrolled = accounts(passwords, {"vigil-ingest": "ingest", "gw-1": "gateway"})
    broker_files.write(tmp_path / "passwd", broker_files.password_file(enrolled))
    broker_files.write(tmp_path / "acl", broker_files.acl_file(enrolled))
    with shipped_broker(tmp_path) as broker:
        good = Settings(mqtt_url=broker.url("vigil-ingest", "s3cret"))
        client = vigil_mqtt.connect(good, "vigil-ingest")
        try:
            own_status = accepted(client, "vigil/v1/svc/vigil-ingest/status", b"{}", retain=True)
            gateway_status = accepted(client, "vigil/v1/gw/gw-1/status", b"{}")
        finally:
            client.disconnect()
            client.loop_stop()
        for url in (broker.url("vigil-ingest", "wrong"), broker.url()):  # anonymous too
            with pytest.raises(vigil_mqtt.MqttUnavailable, match="refused"):
                vigil_mqtt.connect(Settings(mqtt_url=url), "vigil-ingest")
    assert own_status and not gateway_status
