-- Gateways allowed to send readings, when ingest is told to accept only those
-- (VIGIL_INGEST_KNOWN_GATEWAYS_ONLY); `vigil enroll` manages the list.
CREATE TABLE gateway (
    id       text        PRIMARY KEY,
    enrolled timestamptz NOT NULL DEFAULT now(),
    note     text        NOT NULL DEFAULT ''
);
