-- Compact observation rows; FHIR resources are rendered from them on read. A reading is
-- identified by who, what, when and which device: two devices of one patient may report
-- the same metric in the same millisecond (battery levels do), and neither may be lost.
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
);
-- Accounting per batch: which stored rows came from which delivery.
CREATE INDEX observation_batch ON observation (gateway, seq);

-- One row per (gateway, seq) ever received; a redelivery bumps `deliveries`.
CREATE TABLE ingest_batch (
    gateway    text        NOT NULL,
    seq        bigint      NOT NULL,
    readings   integer     NOT NULL,
    deliveries integer     NOT NULL DEFAULT 1,
    received   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (gateway, seq)
);

CREATE TABLE dead_letter (
    id       bigserial   PRIMARY KEY,
    received timestamptz NOT NULL DEFAULT now(),
    topic    text        NOT NULL,
    gateway  text,
    payload  bytea       NOT NULL,
    reason   text        NOT NULL
);
CREATE INDEX dead_letter_received ON dead_letter (received);

-- API clients authenticate with a bearer token; only its SHA-256 is stored.
CREATE TABLE api_client (
    id           serial      PRIMARY KEY,
    name         text        NOT NULL UNIQUE,
    role         text        NOT NULL CHECK (role IN ('clinician', 'admin')),
    token_sha256 text        NOT NULL UNIQUE,
    created      timestamptz NOT NULL DEFAULT now(),
    revoked      timestamptz
);

-- Every read of patient data through the API, successful or refused.
CREATE TABLE audit_event (
    id       bigserial   PRIMARY KEY,
    at       timestamptz NOT NULL DEFAULT now(),
    actor    text        NOT NULL,
    action   text        NOT NULL,
    resource text        NOT NULL,
    query    text,
    outcome  text        NOT NULL,
    patients text[]      NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_event_at ON audit_event (at);
