import contextlib
import itertools

import pytest
from bumble.profiles.heart_rate_service import HeartRateService
from hypothesis import given
from hypothesis import strategies as st

from gateway.gatt import GattParseError, parse_heart_rate_measurement
from simulators.gatt.encoders import encode_heart_rate_measurement


def test_eight_bit_value_without_contact_support() -> None:
    m = parse_heart_rate_measurement(bytes([0x00, 72]))
    assert (m.bpm, m.contact, m.energy_expended_kj, m.rr_intervals_ms) == (72, None, None, ())


def test_sixteen_bit_value_contact_detected_energy_and_rr() -> None:
    data = bytes([0x1F, 0x2C, 0x01, 0x10, 0x00, 0x00, 0x04, 0x00, 0x02])
    m = parse_heart_rate_measurement(data)
    assert m.bpm == 300
    assert m.contact is True
    assert m.energy_expended_kj == 16
    assert m.rr_intervals_ms == (1000.0, 500.0)


def test_contact_supported_but_not_detected() -> None:
    assert parse_heart_rate_measurement(bytes([0x04, 60])).contact is False


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"", "empty"),
        (bytes([0x00]), "truncated in 8-bit"),
        (bytes([0x01, 0x48]), "truncated in 16-bit"),
        (bytes([0x08, 60, 1]), "truncated in energy"),
        (bytes([0x10, 60]), "RR interval field has 0 bytes"),
        (bytes([0x10, 60, 1, 2, 3]), "RR interval field has 3 bytes"),
        (bytes([0x00, 60, 9]), "1 unexpected bytes"),
    ],
)
def test_bad_payloads_raise_the_parser_error(data: bytes, words: str) -> None:
    with pytest.raises(GattParseError, match=words):
        parse_heart_rate_measurement(data)


@given(st.binary(max_size=40))
def test_arbitrary_bytes_raise_only_the_parser_error(data: bytes) -> None:
    with contextlib.suppress(GattParseError):
        parse_heart_rate_measurement(data)


@pytest.mark.parametrize(
    ("wide", "contact", "energy", "rr"),
    list(
        itertools.product(
            [False, True], [None, False, True], [None, 1234], [(), (812.5,), (700.0, 1200.0, 950.0)]
        )
    ),
)
def test_round_trip_for_every_flag_combination(
    wide: bool, contact: bool | None, energy: int | None, rr: tuple[float, ...]
) -> None:
    bpm = 290 if wide else 71
    data = encode_heart_rate_measurement(
        bpm, contact=contact, energy_expended_kj=energy, rr_intervals_ms=rr
    )
    assert bool(data[0] & 0x01) == wide
    m = parse_heart_rate_measurement(data)
    assert (m.bpm, m.contact, m.energy_expended_kj) == (bpm, contact, energy)
    assert m.rr_intervals_ms == pytest.approx(rr, abs=1000 / 1024)


@given(
    bpm=st.integers(0, 0xFFFF),
    contact=st.sampled_from([None, False, True]),
    energy=st.one_of(st.none(), st.integers(0, 0xFFFF)),
    rr=st.lists(st.integers(1, 0xFFFF), min_size=1, max_size=8),
)
def test_agrees_with_bumbles_independent_codec(
    bpm: int, contact: bool | None, energy: int | None, rr: list[int]
) -> None:
    measurement = HeartRateService.HeartRateMeasurement(
        heart_rate=bpm,
        sensor_contact_detected=contact,
        energy_expended=energy,
        rr_intervals=[r / 1024 for r in rr],
    )
    ours = parse_heart_rate_measurement(bytes(measurement))
    assert (ours.bpm, ours.contact, ours.energy_expended_kj) == (bpm, contact, energy)
    assert ours.rr_intervals_ms == pytest.approx([r * 1000 / 1024 for r in rr])
    theirs = HeartRateService.HeartRateMeasurement.from_bytes(
        encode_heart_rate_measurement(
            bpm,
            contact=contact,
            energy_expended_kj=energy,
            rr_intervals_ms=[r * 1000 / 1024 for r in rr],
        )
    )
    assert (theirs.heart_rate, theirs.sensor_contact_detected, theirs.energy_expended) == (
        bpm,
        contact,
        energy,
    )
    assert list(theirs.rr_intervals or []) == pytest.approx([r / 1024 for r in rr])
