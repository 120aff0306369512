"""Packaging as a deployer meets it: every third-party package the code imports is declared,
in the extra of the layer that imports it, so `pip install "vigil-rpm[gateway]"` on a
Raspberry Pi gets all the gateway needs and none of the platform; one version; a licence."""

from __future__ import annotations

import ast
import json
import re
import shutil
import subprocess
import sys
import time
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

import vigil
from vigil.mqtt import connect
from vigil.settings import Settings
from vigil.wire.batch import Batch
from vigil.wire.topics import Topics

ROOT = Path(__file__).parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
OURS = {"vigil", "gateway", "ingest", "analytics", "alerts", "api", "simulators", "bench", "demo"}
OURS |= {"cli", "tests"}

EXTRAS_OF = {
    # folder (or module path prefix): the extras it may need besides the base dependencies
    "gateway": ("gateway",),
    "vigil/db": ("platform",),
    "vigil/embedded": ("demo", "browser"),
    "vigil": (),
    "ingest": ("platform",),
    "analytics": ("platform",),
    "alerts": ("platform",),
    "api": ("platform",),
    "simulators": ("gateway", "demo"),
    "bench": ("gateway", "platform", "demo", "browser"),
    "demo": ("gateway", "platform", "demo"),
    "cli": ("gateway", "platform", "demo"),
    "tests": ("gateway", "platform", "demo", "browser", "dev"),
}


def normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def declared(extras: tuple[str, ...]) -> set[str]:
    """Distribution names in the base dependencies and ``extras`` (extras that name the
    project itself, like demo's ``vigil-rpm[gateway,platform]``, followed)."""
    project = PYPROJECT["project"]
    wanted, names, seen = list(extras), set(), set()
    requirements = list(project["dependencies"])
    while wanted:
        extra = wanted.pop()
        if extra in seen:
            continue
        seen.add(extra)
        for requirement in project["optional-dependencies"][extra]:
            own = re.fullmatch(r"vigil-rpm\[(.+)\]", requirement)
            if own:
                wanted += own[1].split(",")
            else:
                requirements.append(requirement)
    for requirement in requirements:
        match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement)
        assert match is not None, requirement
        names.add(normalized(match[0]))
    return names


def imported_top_levels(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found - OURS - set(sys.stdlib_module_names) - {"__future__"}


def allowed_extras(path: Path) -> tuple[str, ...]:
    relative = path.relative_to(ROOT).as_posix()
    for prefix in sorted(EXTRAS_OF, key=len, reverse=True):
        if relative.startswith(prefix + "/"):
            return EXTRAS_OF[prefix]
    raise AssertionError(f"{relative}: in no package this test knows; add it to EXTRAS_OF")


def test_every_imported_package_is_declared_in_its_layers_extra() -> None:
    providers = packages_distributions()
    problems = []
    sources = [p for folder in sorted(OURS) for p in (ROOT / folder).rglob("*.py")]
    assert len(sources) > 100
    for path in sources:
        allowed = declared(allowed_extras(path))
        for module in sorted(imported_top_levels(path)):
            distributions = {normalized(d) for d in providers.get(module, [])}
            if not distributions & allowed:
                problems.append(f"{path.relative_to(ROOT)} imports {module} ({distributions})")
    assert problems == []


def test_the_version_is_read_from_one_place() -> None:
    assert "version" in PYPROJECT["project"]["dynamic"]
    assert PYPROJECT["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "vigil.__version__"}
    assert re.fullmatch(r"\d+\.\d+\.\d+", vigil.__version__)


def test_the_licence_file_is_the_declared_licence() -> None:
    assert PYPROJECT["project"]["license"] == "Apache-2.0"
    text = (ROOT / "LICENSE").read_text()
    assert "Apache License" in text and "Version 2.0, January 2004" in text


@pytest.fixture(scope="module")
def gateway_install(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtual environment with `pip install "vigil-rpm[gateway]"` from this checkout,
    as a Raspberry Pi gets it; the `vigil` it installs."""
    folder = tmp_path_factory.mktemp("gateway-install")
    source = folder / "source"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(".*", "build", "*.egg-info"))
    subprocess.run([sys.executable, "-m", "venv", str(folder / "venv")], check=True)
    pip = [str(folder / "venv" / "bin" / "python"), "-m", "pip", "install", "--quiet"]
    done = subprocess.run([*pip, f"{source}[gateway]"], capture_output=True, text=True)
    if done.returncode and re.search(r"No matching distribution|connection|resolve", done.stderr):
        pytest.skip(f"no package index reachable for a fresh install: {done.stderr[-300:]}")
    assert done.returncode == 0, done.stderr
    return folder / "venv" / "bin" / "vigil"


def installed(vigil: Path) -> set[str]:
    listed = subprocess.run(
        [str(vigil.parent / "python"), "-m", "pip", "list", "--format=json"],
        capture_output=True,
        text=True,
        check=True,
    )
    return {normalized(p["name"]) for p in json.loads(listed.stdout)}


@pytest.mark.slow
def test_a_gateway_install_has_the_gateway_and_none_of_the_platform(gateway_install: Path) -> None:
    have = installed(gateway_install)
    assert {"bleak", "bumble", "paho-mqtt", "numpy"} <= have
    platform = declared(("platform", "demo")) - declared(("gateway",))
    assert have & platform == set()


@pytest.mark.slow
def test_on_a_gateway_install_the_platforms_commands_say_which_extra_they_need(
    gateway_install: Path, tmp_path: Path
) -> None:
    env = {"PATH": "/usr/bin:/bin", "VIGIL_GATEWAY_DATA_DIR": str(tmp_path)}
    paired = subprocess.run(
        [str(gateway_install), "pair", "--list"], capture_output=True, text=True, env=env
    )
    assert paired.returncode == 0 and "no paired devices" in paired.stdout, paired.stderr
    stats = subprocess.run(
        [str(gateway_install), "ingest", "stats"],
        capture_output=True,
        text=True,
        env={**env, "VIGIL_DATABASE_URL": "postgresql://127.0.0.1:1/x"},
    )
    assert stats.returncode == 2 and "Traceback" not in stats.stderr
    assert "lacks the Python package 'psycopg'" in stats.stderr
    assert "vigil-rpm[platform]" in stats.stderr


@pytest.mark.slow
@pytest.mark.services
def test_a_gateway_install_streams_simulated_patients(
    gateway_install: Path, mqtt_url: str, tmp_path: Path
) -> None:
    settings = Settings(mqtt_url=mqtt_url)
    topic = Topics("gw-pi").readings
    got: list[Batch] = []
    client = connect(
        settings,
        f"pi-{time.time_ns()}",
        on_message=lambda *m: got.append(Batch.decode(m[2].payload)),
    )
    client.subscribe(topic, qos=1)
    env = {
        "PATH": "/usr/bin:/bin",
        "VIGIL_MQTT_URL": mqtt_url,
        "VIGIL_GATEWAY_ID": "gw-pi",
        "VIGIL_GATEWAY_DATA_DIR": str(tmp_path),
    }
    gateway = subprocess.Popen(
        [str(gateway_install), "gateway", "--simulate", "1"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while not got and time.monotonic() < deadline and gateway.poll() is None:
            time.sleep(0.2)
    finally:
        gateway.terminate()
        _, err = gateway.communicate(timeout=30)
        client.disconnect()
        client.loop_stop()
    assert got, err.decode()[-2000:]
    assert {p for b in got for p in b.patient} == {"p0001"}
