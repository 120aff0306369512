"""The `vigil` command as a user meets it: every sub-command's expected failures are one
line and exit status 2, never a traceback; settings that are wrong are named."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from vigil.embedded.processes import vigil_command


def vigil(
    *args: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("VIGIL_")}
    return subprocess.run(
        [*vigil_command(), *args],
        capture_output=True,
        text=True,
        env={**clean, **(env or {})},
        timeout=timeout,
    )


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["demo", "--duration", "3x"], "is not a duration; use a number with a unit"),
        (["demo", "--patients", "0"], "is not a whole number of at least 1"),
        (["demo", "--api-port", "70000"], "is not a TCP port"),
        (["gateway", "--simulate", "2", "--pair", "C1:00:00:00:00:01=p1"], "not allowed with"),
        (["gateway", "--pair", "nonsense"], "is not ADDRESS=PATIENT"),
        (["ingest"], "no database: set VIGIL_DATABASE_URL"),
        (["migrate"], "no database: set VIGIL_DATABASE_URL"),
        (["gateway", "--simulate", "1"], "no broker: set VIGIL_MQTT_URL"),
        (["pair", "--device", "C1:00:00:00:00:01"], "--device needs --patient"),
        (["pair", "--patient", "p1"], "--patient goes with --device ADDRESS"),
        (["pair", "--remove", "C1:00:00:00:00:09"], "is not paired (see `vigil pair --list`)"),
        (["pair", "--list", "--remove", "x"], "not allowed with argument"),
        (["bench", "gateway", "--devices", "3"], "--devices 3: use an even number"),
        (["simulate"], "one of the arguments --trace --patients is required"),
        (["simulate", "--patients", "1", "--hci", "carrier-pigeon:x"], "cannot serve on"),
    ],
)
def test_bad_arguments_say_what_is_wrong(args: list[str], words: str) -> None:
    result = vigil(*args)
    assert result.returncode == 2
    assert words in result.stderr
    assert "Traceback" not in result.stderr


def test_invalid_setting_is_reported() -> None:
    result = vigil("migrate", env={"VIGIL_API_PORT": "many"})
    assert result.returncode == 2
    assert "vigil: VIGIL_API_PORT: Input should be a valid integer" in result.stderr
    assert "(got 'many')" in result.stderr


def test_a_command_whose_libraries_are_not_installed_names_the_extra() -> None:
    """As on a gateway installed with the gateway extra alone (no database driver)."""
    run = (
        "import sys; sys.modules['psycopg'] = None; from cli.main import main;"
        " raise SystemExit(main(['ingest', 'stats']))"
    )
    result = subprocess.run(
        [sys.executable, "-c", run],
        capture_output=True,
        text=True,
        env={**os.environ, "VIGIL_DATABASE_URL": "postgresql://127.0.0.1:1/x"},
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "lacks the Python package 'psycopg'" in result.stderr
    assert "pip install 'vigil-rpm[platform]'" in result.stderr


def test_a_process_logging_in_under_another_name_is_refused() -> None:
    env = {"VIGIL_MQTT_URL": "mqtt://gw-other:secret@127.0.0.1:1", "VIGIL_GATEWAY_ID": "gw-home"}
    result = vigil("gateway", "--simulate", "1", env=env)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "logs in as 'gw-other', but this process is 'gw-home'" in result.stderr
