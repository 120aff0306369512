-- How far each gateway's batches are committed, for the end-to-end acknowledgement
-- (vigil.wire.commitment): `through` is the highest seq with every lower one committed or
-- given up by the gateway (its status's oldest_seq), `latest` the highest committed. A row
-- exists once the gateway has said its life and oldest_seq, which gateways that release on
-- the broker's PUBACK never do: they cost nothing here.
CREATE TABLE ingest_commitment (
    gateway text   PRIMARY KEY,
    life    bigint NOT NULL,
    through bigint NOT NULL,
    latest  bigint NOT NULL,
    -- Set when the gateway started a new life (its outbox was wiped and its seq started
    -- over): only batches delivered since count, not the previous life's under the same seq.
    since   timestamptz
);

-- When a batch was last delivered: a redelivery after a new life began counts for it.
ALTER TABLE ingest_batch ADD COLUMN last_delivered timestamptz;
