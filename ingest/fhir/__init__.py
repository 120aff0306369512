"""FHIR R4 rendering of stored rows and parsing of FHIR search parameters (pure code)."""
