-- The TimescaleDB variant of 003_partitions_and_rollup.sql, applied instead of it when
-- `CREATE EXTENSION timescaledb` works (vigil/db/migrate.py). The same tables and columns
-- serve both: `observation` becomes a hypertable of one-day chunks, compressed after 7
-- days (segmented by patient and metric, so a patient's series decompresses alone), and
-- `observation_1m` a continuous aggregate with real-time aggregation, so readers see the
-- rows not yet materialized. Retention is a policy that ingest sets from
-- VIGIL_RETENTION_DAYS (ingest/partitions.py).

CREATE FUNCTION vigil_storage() RETURNS text LANGUAGE sql IMMUTABLE AS $$ SELECT 'timescaledb' $$;

SELECT create_hypertable(
    'observation', 'effective', chunk_time_interval => INTERVAL '1 day', migrate_data => true
);
ALTER TABLE observation SET (
    timescaledb.compress,
    timescaledb.compress_segmentby = 'patient, metric',
    timescaledb.compress_orderby = 'effective, device'
);
SELECT add_compression_policy('observation', INTERVAL '7 days');

-- Readings the device flagged invalid (flags bit 16) are left out, as in the plain rollup.
CREATE MATERIALIZED VIEW observation_1m
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT patient, metric, time_bucket(INTERVAL '1 minute', effective) AS bucket,
       min(value) AS min, max(value) AS max, sum(value) AS sum, count(*)::integer AS count
FROM observation
WHERE flags & 16 = 0
GROUP BY patient, metric, bucket
WITH NO DATA;
-- A gateway's backlog can be days old: refresh the last 7 days, which the invalidation log
-- keeps track of; older late rows are still seen through real-time aggregation.
SELECT add_continuous_aggregate_policy(
    'observation_1m',
    start_offset => INTERVAL '7 days',
    end_offset => INTERVAL '1 minute',
    schedule_interval => INTERVAL '1 minute'
);
