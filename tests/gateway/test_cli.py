"""`vigil pair` and `vigil gateway` as a patient or an engineer meets them."""

from __future__ import annotations

from pathlib import Path

from tests.cli.test_main import vigil
from vigil.embedded.processes import free_port


def test_pair_list_when_nothing_is_paired(tmp_path: Path) -> None:
    result = vigil("pair", "--list", env={"VIGIL_GATEWAY_DATA_DIR": str(tmp_path)})
    assert result.returncode == 0
    assert "no paired devices; pair one with `vigil pair`" in result.stdout


def test_a_gateway_without_its_hci_controller_is_one_line() -> None:
    hci = f"tcp-client:127.0.0.1:{free_port()}"
    result = vigil("gateway", "--hci", hci, env={"VIGIL_MQTT_URL": "mqtt://127.0.0.1:1"})
    assert result.returncode == 2
    assert f"no Bluetooth controller on {hci}" in result.stderr
    assert "Traceback" not in result.stderr
