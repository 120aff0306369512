-- TimescaleDB: the one-minute rollup is compressed too, once its chunks are as old as the
-- raw ones are when theirs are (7 days), and segmented as they are: by patient and metric,
-- so a patient's $stats over a month decompresses that patient's series alone (the
-- extension's default would order one stream of every patient by bucket). Kept raw, a
-- patient-day of rollup (0.4 MB) weighs 40 % of that day's compressed readings (1.0 MB);
-- compressed, 0.01 MB (docs/storage.md).
-- A chunk is compressed once it ends before the refresh policy's 7-day window, so a refresh
-- never writes into a compressed one. Native partitions keep a plain rollup: nothing to do
-- there, hence one file that asks, not a variant (a variant is chosen by whether the
-- extension can be created, which says nothing of how this database's observations were
-- stored).
DO $$
BEGIN
    IF vigil_storage() = 'timescaledb' THEN
        ALTER MATERIALIZED VIEW observation_1m SET (
            timescaledb.compress = true,
            timescaledb.compress_segmentby = 'patient, metric',
            timescaledb.compress_orderby = 'bucket'
        );
        PERFORM add_compression_policy('observation_1m', INTERVAL '7 days');
    END IF;
END
$$;
