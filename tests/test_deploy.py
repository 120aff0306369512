"""The shipped deploy/mosquitto.conf is a configuration Mosquitto accepts and serves with."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from vigil import mqtt as vigil_mqtt
from vigil.embedded.broker import find_mosquitto
from vigil.embedded.processes import free_port, spawn, stop, wait_for_port
from vigil.settings import Settings

CONF = Path(__file__).parent.parent / "deploy" / "mosquitto.conf"
pytestmark = pytest.mark.services


def local_copy(folder: Path, port: int) -> Path:
    """The shipped file with this machine's paths; the TLS listener is left out (it needs
    certificates), every other line is kept as shipped."""
    text = CONF.read_text()
    text = re.sub(r"^(listener 8883|certfile|keyfile|cafile|tls_version).*\n", "", text, flags=re.M)
    text = text.replace("listener 1883 127.0.0.1", f"listener {port} 127.0.0.1")
    text = text.replace("/etc/mosquitto/passwd", str(folder / "passwd"))
    text = text.replace("/etc/mosquitto/acl", str(folder / "acl"))
    text = text.replace("/var/lib/mosquitto/", f"{folder}/")
    text = text.replace("log_dest syslog", f"log_dest file {folder / 'mosquitto.log'}")
    return _write(folder / "mosquitto.conf", text + "user root\n")


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_the_deployment_config_starts_and_refuses_a_wrong_password(tmp_path: Path) -> None:
    mosquitto = find_mosquitto()
    if mosquitto is None:
        pytest.skip("Mosquitto is not installed; `.ci/run` installs it")
    mosquitto_passwd = shutil.which("mosquitto_passwd")
    if mosquitto_passwd is None:
        pytest.skip("mosquitto_passwd is not installed (it comes with Mosquitto's clients)")
    passwd = _write(tmp_path / "passwd", "")
    subprocess.run([mosquitto_passwd, "-b", str(passwd), "ingest", "s3cret"], check=True)
    _write(tmp_path / "acl", "user ingest\ntopic readwrite vigil/v1/#\n")
    port = free_port()
    broker = spawn([mosquitto, "-c", str(local_copy(tmp_path, port))], log=tmp_path / "out")
    try:
        assert wait_for_port(port, 10, broker), (tmp_path / "out").read_text()
        good = Settings(mqtt_url=f"mqtt://ingest:s3cret@127.0.0.1:{port}")
        client = vigil_mqtt.connect(good, "deploy-check")
        info = client.publish("vigil/v1/gw/gw-1/status", b"{}", qos=1)
        info.wait_for_publish(5)
        client.disconnect()
        client.loop_stop()
        with pytest.raises(vigil_mqtt.MqttUnavailable, match="refused"):
            vigil_mqtt.connect(
                Settings(mqtt_url=f"mqtt://ingest:wrong@127.0.0.1:{port}"), "deploy-check-2"
            )
    finally:
        stop(broker)
    assert info.is_published()
