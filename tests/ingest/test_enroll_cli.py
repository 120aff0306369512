"""`vigil enroll` as an administrator meets it: gateways, devices and services enrolled,
passwords shown once, the broker's files written and reloaded."""

from __future__ import annotations

import re
import stat
from pathlib import Path

import psycopg
import pytest

from tests.cli.test_main import vigil
from tests.e2e.harness import wait_for
from tests.mosquitto import shipped_broker
from vigil import mqtt as vigil_mqtt
from vigil.settings import Settings

pytestmark = pytest.mark.services
PASSWORD = re.compile(r"broker password of .*:\n  (\S+)\n")


def files_env(database_url: str, folder: Path) -> dict[str, str]:
    return {
        "VIGIL_DATABASE_URL": database_url,
        "VIGIL_BROKER_PASSWORD_FILE": str(folder / "passwd"),
        "VIGIL_BROKER_ACL_FILE": str(folder / "acl"),
    }


def test_a_gateway_gets_its_password_once_and_its_rights_in_the_files(
    database_url: str, tmp_path: Path
) -> None:
    env = files_env(database_url, tmp_path)
    first = vigil("enroll", "gw-a", "--device", "C1:00:00:00:00:01=p0001", env=env)
    again = vigil("enroll", "gw-a", "--device", "C1:00:00:00:00:02=p0001", env=env)
    assert first.returncode == again.returncode == 0, first.stderr + again.stderr
    passwords = PASSWORD.findall(first.stdout)
    assert len(passwords) == 1 and "only its hash is kept" in first.stdout
    assert PASSWORD.search(again.stdout) is None, "a second enrollment keeps the password"
    passwd, acl = (tmp_path / "passwd").read_text(), (tmp_path / "acl").read_text()
    assert passwd.startswith("gw-a:$7$101$") and passwords[0] not in passwd
    assert "user gw-a\ntopic write vigil/v1/gw/gw-a/readings\n" in acl
    assert stat.S_IMODE((tmp_path / "passwd").stat().st_mode) == 0o600
    with psycopg.connect(database_url) as conn:
        devices = conn.execute(
            "SELECT device, gateway, patient FROM device_assignment ORDER BY device"
        ).fetchall()
    assert devices == [
        ("C1:00:00:00:00:01", "gw-a", "p0001"),
        ("C1:00:00:00:00:02", "gw-a", "p0001"),
    ]

    removed = vigil("enroll", "--remove", "gw-a", env=env)
    assert removed.returncode == 0, removed.stderr
    assert "gw-a" not in (tmp_path / "passwd").read_text() + (tmp_path / "acl").read_text()
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM device_assignment").fetchone() == (0,)


def test_services_have_their_client_id_as_username(database_url: str, tmp_path: Path) -> None:
    env = files_env(database_url, tmp_path)
    ingest = vigil("enroll", "--service", "ingest", env=env)
    shard = vigil("enroll", "--service", "analytics", "--username", "vigil-analytics-1", env=env)
    twice = vigil("enroll", "--service", "ingest", env=env)
    renewed = vigil("enroll", "--service", "ingest", "--new-password", env=env)
    assert ingest.returncode == shard.returncode == renewed.returncode == 0, ingest.stderr
    assert "its client id must be vigil-ingest" in ingest.stdout
    assert twice.returncode == 2 and "--new-password issues another" in twice.stderr
    assert PASSWORD.findall(ingest.stdout) != PASSWORD.findall(renewed.stdout)
    acl = (tmp_path / "acl").read_text()
    assert "user vigil-analytics-1\n" in acl
    assert "topic write vigil/v1/svc/vigil-analytics-1/status\n" in acl
    listing = vigil("enroll", "--list", env=env).stdout
    assert re.search(r"broker +vigil-ingest .* ingest", listing)


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["gw-a", "gw-b", "--device", "C1:00:00:00:00:01=p1"], "--device needs the one gateway"),
        (["--write-broker-files"], "nowhere to write the broker's files: set VIGIL_BROKER_"),
        (["gw/a"], "is not a valid id"),
        (["gw-a", "--username", "x"], "--username goes with --service ROLE"),
        (["--list", "--service", "ingest"], "give gateway ids"),
    ],
)
def test_what_does_not_go_together_is_refused(
    database_url: str, args: list[str], words: str
) -> None:
    result = vigil("enroll", *args, env={"VIGIL_DATABASE_URL": database_url})
    assert result.returncode == 2 and words in result.stderr, result.stderr


def test_without_file_settings_it_says_how_to_set_them(database_url: str) -> None:
    result = vigil("enroll", "gw-a", env={"VIGIL_DATABASE_URL": database_url})
    assert result.returncode == 0, result.stderr
    assert "the broker's files are not written: set VIGIL_BROKER_PASSWORD_FILE" in result.stdout


@pytest.mark.slow
def test_a_running_broker_takes_a_new_gateway_once_told_to_reload(
    database_url: str, tmp_path: Path
) -> None:
    env = files_env(database_url, tmp_path)
    assert vigil("enroll", "--service", "monitor", env=env).returncode == 0
    with shipped_broker(tmp_path) as broker:
        enrolled = vigil("enroll", "gw-new", "--reload-broker", str(broker.pid), env=env)
        assert enrolled.returncode == 0, enrolled.stderr
        (password,) = PASSWORD.findall(enrolled.stdout)
        settings = Settings(mqtt_url=broker.url("gw-new", password))
        assert wait_for(lambda: logs_in(settings, "gw-new"), 5)  # the signal is handled soon


def logs_in(settings: Settings, client_id: str) -> bool:
    try:
        client = vigil_mqtt.connect(settings, client_id)
    except vigil_mqtt.MqttUnavailable:
        return False
    client.disconnect()
    client.loop_stop()
    return True
