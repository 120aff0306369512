"""The API's routes, one module per group: FHIR resources, alerts, the alert stream, the
ingest accounting."""
