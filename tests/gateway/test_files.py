"""The gateway's files (outbox with its -wal and -shm, inbox, pairings) are created 0600
whatever the umask, and files an earlier version left 0644 are tightened."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.files import replace_private
from gateway.outbox import Outbox
from gateway.pairing import Pairing, Registry
from gateway.readings import Reading
from gateway.service import GatewayService
from vigil.settings import Settings
from vigil.wire.messages import PatientMessage


@pytest.fixture(autouse=True)
def lax_umask() -> Iterator[None]:
    """The usual umask, which would leave new files readable by everyone (0644)."""
    before = os.umask(0o022)
    yield
    os.umask(before)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_outbox_and_its_wal_and_shm_are_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "data" / "gw-1.sqlite"
    box = Outbox(path, "gw-1")
    box.append([Reading("C1:00:00:00:00:01", "p0001", 1, 1000, 60.0, 0)])
    box.seal(5)
    try:
        files = [path, Path(f"{path}-wal"), Path(f"{path}-shm")]
        assert [mode(f) for f in files] == [0o600] * 3
    finally:
        box.close()


def test_an_outbox_left_0644_is_tightened(tmp_path: Path) -> None:
    path = tmp_path / "gw-1.sqlite"
    Outbox(path, "gw-1").close()
    os.chmod(path, 0o644)
    Outbox(path, "gw-1").close()
    assert mode(path) == 0o600


def test_pairings_are_owner_only(tmp_path: Path) -> None:
    registry = Registry(tmp_path / "pairings.json")
    registry.add(Pairing("C1:00:00:00:00:01", "p0001", "pulse-oximeter", "Ox", "2025-01-01", False))
    assert mode(registry.path) == 0o600
    assert registry.pairings() == {"C1:00:00:00:00:01": "p0001"}
    assert not registry.path.with_suffix(".tmp").exists()


def test_the_inbox_is_owner_only_also_when_an_earlier_version_made_it(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox.jsonl"
    inbox.write_text("")
    os.chmod(inbox, 0o644)
    service = GatewayService(Settings(gateway_id="gw-unit", gateway_data_dir=tmp_path), {})
    message = PatientMessage("p0001", (1,), "Please check your oximeter.", "k-1")
    try:
        service._on_inbox(message.encode())
        service._on_inbox(message.encode())
    finally:
        service.outbox.close()
    assert mode(inbox) == 0o600
    assert len(inbox.read_text().splitlines()) == 2


def test_a_replaced_file_never_writes_through_a_leftover_or_a_link(tmp_path: Path) -> None:
    target = tmp_path / "pairings.json"
    elsewhere = tmp_path / "elsewhere.txt"
    elsewhere.write_text("keep me")
    (tmp_path / "pairings.tmp").symlink_to(elsewhere)  # planted where the temporary goes
    replace_private(target, "{}")
    assert target.read_text() == "{}" and mode(target) == 0o600
    assert elsewhere.read_text() == "keep me"
