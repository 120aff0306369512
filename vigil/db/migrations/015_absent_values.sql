-- A reading the device sent without a value (IEEE 11073 NaN, NRes, +/-INFINITY) is kept, so
-- that a clinician sees the sensor was there but could not measure: its value is NULL, its
-- flags say why (one of the bits 128, 256, 512, 1024: vigil.wire.quality.Quality.ABSENT)
-- and carry the invalid bit (16) as well, which both rollups, the TimescaleDB continuous
-- aggregate among them, already leave out. NULL and not PostgreSQL's 'NaN': NaN sorts
-- above every number, so max(value) or value > 150 would take it for a very high one; every
-- aggregate skips a NULL and no comparison matches it. The same statements serve a
-- hypertable, so this migration has no TimescaleDB variant.
ALTER TABLE observation ALTER COLUMN value DROP NOT NULL;

-- A NULL value comes with its reason and the invalid bit. Rows stored before this
-- migration all have a value, so the check cannot refuse one of them: NOT VALID spares a
-- big table the scan (and ingest the wait) that would only say so; new rows are checked.
ALTER TABLE observation ADD CONSTRAINT observation_value_or_reason
    CHECK (value IS NOT NULL OR (flags & 1920 <> 0 AND flags & 16 <> 0)) NOT VALID;
