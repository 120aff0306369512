-- Gateways allowed to send readings, when ingest is told to accept only those
-- (VIGIL_INGEST_KNOWN_GATEWAYS_ONLY); `vigil enroll` manages the list.
CREATE TABLE gateway (
    id       text        PRIMARY KEY,
    enrolled timestamptz NOT NULL DEFAULT now(),
    note     text        NOT NULL DEFAULT ''
);

-- Which patient each wearable is assigned to on the platform's side. A patient pairs
-- devices at home; with VIGIL_INGEST_ENROLLED_ONLY a reading whose device is not assigned
-- to the patient the gateway names is refused: readings under the wrong patient are a
-- safety problem, not a data-quality one.
CREATE TABLE device_assignment (
    device   text        PRIMARY KEY,
    patient  text        NOT NULL,
    assigned timestamptz NOT NULL DEFAULT now()
);
