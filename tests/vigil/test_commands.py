"""What every command shares: a wearable named for pairing or enrollment."""

from __future__ import annotations

import argparse

import pytest

from vigil.commands import pairing


def test_a_bluetooth_address_or_a_macos_uuid_pairs_upper_cased() -> None:
    assert pairing("c1:00:00:00:00:0a=p0001") == ("C1:00:00:00:00:0A", "p0001")
    uuid = "3f2a9c1e-0b7d-4e8a-9c2f-1a2b3c4d5e6f"
    assert pairing(f"{uuid}=p-2.a") == (uuid.upper(), "p-2.a")


@pytest.mark.parametrize(
    "text", ["C1:00:00:00:00:01", "C1:00:00:00:00:01=", "C1:00:00:00:00:01=p 1", "xyz=p1"]
)
def test_what_names_no_wearable_or_no_patient_is_refused(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="is not ADDRESS=PATIENT"):
        pairing(text)
