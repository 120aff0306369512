"""FHIR R4 validation on the official StructureDefinitions (npm's @medplum packages), for
tests of what the API renders."""
