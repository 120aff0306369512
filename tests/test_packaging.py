"""Packaging as a deployer meets it: every third-party package the code imports is declared,
in the extra of the layer that imports it, so `pip install "vigil-rpm[gateway]"` on a
Raspberry Pi gets all the gateway needs and none of the platform; one version; a licence."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

import vigil

ROOT = Path(__file__).parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
OURS = {"vigil", "gateway", "ingest", "analytics", "alerts", "api", "simulators", "bench", "demo"}
OURS |= {"cli", "tests"}

EXTRAS_OF = {
    # folder (or module path prefix): the extras it may need besides the base dependencies
    "gateway": ("gateway",),
    "vigil/db": ("platform",),
    "vigil/embedded": ("demo",),
    "vigil": (),
    "ingest": ("platform",),
    "analytics": ("platform",),
    "alerts": ("platform",),
    "api": ("platform",),
    "simulators": ("gateway", "demo"),
    "bench": ("gateway", "platform", "demo"),
    "demo": ("gateway", "platform", "demo"),
    "cli": ("gateway", "platform", "demo"),
    "tests": ("gateway", "platform", "demo", "dev"),
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
