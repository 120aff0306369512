"""The ``fhir_validator`` fixture, shared by every test through ``tests/conftest.py``."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fhir_validator.validator import FhirValidator, ValidatorUnavailable, install


@pytest.fixture(scope="session")
def fhir_validator() -> Iterator[FhirValidator]:
    """One validator process for the whole session. A machine without Node.js or npm, or
    one that never reached the npm registry, skips the tests that need it, saying which."""
    try:
        validator = FhirValidator(install())
    except ValidatorUnavailable as missing:
        pytest.skip(f"FHIR validator unavailable: {missing}")
    try:
        yield validator
    finally:
        validator.close()
