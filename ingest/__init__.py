"""Ingest: MQTT readings batches -> validated rows -> PostgreSQL with binary COPY, plus
dead letters, schema migrations and the FHIR Observation API that reads the rows back."""
