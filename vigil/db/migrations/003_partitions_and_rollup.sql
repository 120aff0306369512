-- Plain PostgreSQL (see 003_partitions_and_rollup.timescaledb.sql for TimescaleDB).
-- Observations partitioned by day (native range partitions): retention drops a day's
-- partition instead of deleting rows, and a day's index stays small. The ingest service
-- creates partitions ahead of time and on demand (vigil_ensure_day), and drops those past
-- the retention period. A one-minute rollup beside it is kept current by ingest in the
-- same transaction as the rows it summarizes.

-- Which storage this database has: 'partitions' here, 'timescaledb' in the variant.
CREATE FUNCTION vigil_storage() RETURNS text LANGUAGE sql IMMUTABLE AS $$ SELECT 'partitions' $$;

CREATE FUNCTION vigil_ensure_day(parent regclass, day date) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    name text := format('%s_%s', parent::text, to_char(day, 'YYYYMMDD'));
BEGIN
    -- Two ingest processes may want the same day at once: one makes it, the other waits
    -- here and then finds it.
    PERFORM pg_advisory_xact_lock(hashtext(name));
    IF to_regclass(name) IS NOT NULL THEN
        RETURN false;
    END IF;
    EXECUTE format(
        'CREATE TABLE %I PARTITION OF %s FOR VALUES FROM (%L) TO (%L)',
        name, parent,
        (day::timestamp AT TIME ZONE 'UTC'), ((day + 1)::timestamp AT TIME ZONE 'UTC')
    );
    RETURN true;
END
$$;

ALTER TABLE observation RENAME TO observation_before_partitions;
ALTER INDEX observation_pkey RENAME TO observation_before_partitions_pkey;

CREATE TABLE observation (
    patient   text             NOT NULL,
    metric    smallint         NOT NULL,
    effective timestamptz      NOT NULL,
    value     double precision NOT NULL,
    flags     integer          NOT NULL DEFAULT 0,
    device    text             NOT NULL,
    gateway   text             NOT NULL,
    seq       bigint           NOT NULL,
    received  timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (patient, metric, effective, device)
) PARTITION BY RANGE (effective);

-- Per patient, metric and minute: the statistics a trend chart and the analytics baseline
-- read instead of raw seconds. Readings the device flagged invalid are left out.
CREATE TABLE observation_1m (
    patient text             NOT NULL,
    metric  smallint         NOT NULL,
    bucket  timestamptz      NOT NULL,
    min     double precision NOT NULL,
    max     double precision NOT NULL,
    sum     double precision NOT NULL,
    count   integer          NOT NULL,
    PRIMARY KEY (patient, metric, bucket)
) PARTITION BY RANGE (bucket);

SELECT vigil_ensure_day('observation', day), vigil_ensure_day('observation_1m', day)
FROM (
    SELECT DISTINCT (effective AT TIME ZONE 'UTC')::date AS day
    FROM observation_before_partitions
) days;

INSERT INTO observation SELECT * FROM observation_before_partitions;
INSERT INTO observation_1m
SELECT patient, metric, date_bin('1 minute', effective, timestamptz 'epoch'),
       min(value), max(value), sum(value), count(*)
FROM observation_before_partitions
WHERE flags & 16 = 0
GROUP BY 1, 2, 3;
DROP TABLE observation_before_partitions;
