"""Pairing through the real bleak path to simulated wearables, and the registry."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from gateway.pairing import Pairing, PairingError, Registry, interactive, scan
from gateway.service import Backends, GatewayService
from simulators.ble import VirtualRadio, Ward
from vigil.settings import Settings


def pairing(address: str, patient: str) -> Pairing:
    return Pairing(address, patient, "heart-rate-strap", "HRM", "2026-11-25T10:00:00+00:00", False)


def test_registry_adds_replaces_and_removes(tmp_path: Path) -> None:
    registry = Registry(tmp_path / "pairings.json")
    assert registry.load() == []
    registry.add(pairing("C1:00:00:00:00:01", "p0001"))
    registry.add(pairing("C2:00:00:00:00:01", "p0001"))
    registry.add(pairing("C1:00:00:00:00:01", "p0002"))  # the strap moved to another patient
    assert registry.pairings() == {"C1:00:00:00:00:01": "p0002", "C2:00:00:00:00:01": "p0001"}
    assert registry.remove("c2:00:00:00:00:01").patient == "p0001"
    assert registry.pairings() == {"C1:00:00:00:00:01": "p0002"}
    with pytest.raises(PairingError, match="is not paired"):
        registry.remove("C2:00:00:00:00:01")
    assert not (tmp_path / "pairings.tmp").exists()


def test_a_damaged_registry_is_reported(tmp_path: Path) -> None:
    (tmp_path / "pairings.json").write_text("{not json")
    with pytest.raises(PairingError, match="damaged"):
        Registry(tmp_path / "pairings.json").load()


@pytest.mark.slow
def test_interactive_pairing_records_only_what_the_patient_chose(tmp_path: Path) -> None:
    registry = Registry(tmp_path / "pairings.json")
    said: list[str] = []

    async def run() -> list[Pairing]:
        ward = Ward(2)
        central = await ward.start()
        backends = Backends(*central.backends())
        found = await scan(backends, seconds=1.0)
        assert {n.kind for n in found} == {"heart-rate-strap", "pulse-oximeter"}
        assert len(found) == 4
        strap = next(i for i, n in enumerate(found, 1) if n.address == "C1:00:00:00:00:01")
        answers = iter(["9", "x", str(strap), "bad id!", str(strap), "p0042", ""])
        try:
            return await interactive(
                backends, registry, lambda _prompt: next(answers), said.append, seconds=1.0
            )
        finally:
            await ward.stop()

    paired = asyncio.run(run())
    assert [(p.address, p.patient, p.kind) for p in paired] == [
        ("C1:00:00:00:00:01", "p0042", "heart-rate-strap")
    ]
    assert paired[0].bonded  # the simulated strap accepts 'just works' bonding
    assert registry.pairings() == {"C1:00:00:00:00:01": "p0042"}  # nothing else recorded
    assert sum("Please type a number from 1 to 4" in line for line in said) == 2
    assert any("patient id 'bad id!' must be" in line for line in said)
    assert any(line.startswith("Paired HRM p0002 (C1:00:00:00:00:01) to p0042") for line in said)


@pytest.mark.slow
def test_nothing_nearby_says_what_to_do(tmp_path: Path) -> None:
    async def run() -> None:
        central = VirtualRadio().central()  # an empty room
        await central.power_on()
        await interactive(
            Backends(*central.backends()),
            Registry(tmp_path / "p.json"),
            lambda _p: "",
            lambda _s: None,
            seconds=0.5,
        )

    with pytest.raises(PairingError, match="nothing found: wake the device"):
        asyncio.run(run())


def test_a_running_gateway_follows_the_registry(tmp_path: Path) -> None:
    registry = Registry(tmp_path / "pairings.json")
    registry.add(pairing("C1:00:00:00:00:01", "p0001"))
    settings = Settings(
        mqtt_url="mqtt://127.0.0.1:9", gateway_id="gw-reg", gateway_data_dir=tmp_path
    )
    service = GatewayService(settings, registry.pairings)
    assert service.pairings == {"C1:00:00:00:00:01": "p0001"}
    registry.add(pairing("C2:00:00:00:00:01", "p0001"))
    registry.remove("C1:00:00:00:00:01")
    service._refresh_pairings()
    assert service.pairings == {"C2:00:00:00:00:01": "p0001"}
    service.outbox.close()
