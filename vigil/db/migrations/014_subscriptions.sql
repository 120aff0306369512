-- FHIR Subscriptions (the R5 backport for R4, api/subscriptions/): who subscribed to which
-- topic for which patient, the events each subscription has been given (numbered from 1,
-- kept so that a client can ask for what it missed), where delivery stands, and where the
-- finder of events has read up to. All of it survives a restart.

CREATE TABLE subscription (
    id            text        PRIMARY KEY,
    -- The principal that created it, as it was then; deliveries ask the policy again.
    owner         text        NOT NULL,
    owner_kind    text        NOT NULL CHECK (owner_kind IN ('clinician', 'patient', 'admin', 'system')),
    owner_scopes  text        NOT NULL,
    owner_patient text,
    topic         text        NOT NULL,
    -- The patient filter; NULL: every patient the owner may see (alert topics only).
    patient       text,
    channel       text        NOT NULL CHECK (channel IN ('rest-hook', 'websocket')),
    endpoint      text,
    headers       text[]      NOT NULL DEFAULT '{}',
    content       text        NOT NULL CHECK (content IN ('empty', 'id-only', 'full-resource')),
    -- The HMAC-SHA256 key of the X-Vigil-Signature header, shown once at creation.
    secret        text        NOT NULL,
    reason        text        NOT NULL,
    status        text        NOT NULL CHECK (status IN ('requested', 'active', 'error', 'off')),
    error         text        NOT NULL DEFAULT '',
    timeout_s     integer     NOT NULL,
    max_count     integer     NOT NULL,
    ends          timestamptz,
    created       timestamptz NOT NULL DEFAULT now(),
    deleted       timestamptz,
    -- rest-hook: the handshake went through; every event up to `delivered` was accepted.
    handshaken    boolean     NOT NULL DEFAULT false,
    delivered     bigint      NOT NULL DEFAULT 0,
    attempts      integer     NOT NULL DEFAULT 0,
    next_attempt  timestamptz NOT NULL DEFAULT now(),
    CHECK ((channel = 'rest-hook') = (endpoint IS NOT NULL))
);
CREATE INDEX subscription_owner ON subscription (owner, created);
CREATE INDEX subscription_live ON subscription (topic) WHERE deleted IS NULL AND status <> 'off';

CREATE TABLE subscription_event (
    subscription text        NOT NULL REFERENCES subscription (id) ON DELETE CASCADE,
    number       bigint      NOT NULL,
    at           timestamptz NOT NULL,
    patient      text        NOT NULL,
    -- Flag/ID or Observation/ID; the resource as it was when the event happened.
    focus        text        NOT NULL,
    resource     jsonb       NOT NULL,
    -- The event made its focus (a new alert, a new Observation) rather than changed it.
    new          boolean     NOT NULL,
    PRIMARY KEY (subscription, number)
);

-- Websocket binding tokens ($get-ws-binding-token): only their SHA-256 is kept.
CREATE TABLE subscription_ws_token (
    digest       text        PRIMARY KEY,
    subscription text        NOT NULL REFERENCES subscription (id) ON DELETE CASCADE,
    expires      timestamptz NOT NULL
);

-- Where the finder has read each source up to (exclusive): alert changes by `at`,
-- observations by `received`, both the start time of the transaction that wrote the row.
CREATE TABLE subscription_cursor (
    source   text        PRIMARY KEY CHECK (source IN ('alert_change', 'observation')),
    position timestamptz NOT NULL
);
INSERT INTO subscription_cursor VALUES ('alert_change', now()), ('observation', now());

-- The finder reads alert changes and observations by time written. A BRIN index is a few
-- pages per partition and costs the COPY path next to nothing (a B-tree on observation
-- cost ingest a third of its rate); it lets the finder read only the newest blocks.
CREATE INDEX alert_change_at ON alert_change (at);
-- No autosummarize: its work item per filled block range cost ingest a fifth of its rate
-- (`vigil bench ingest`, 0.44 of raw COPY with it, 0.56-0.65 without). The ranges not yet
-- summarized are the newest, which a BRIN scan reads anyway, and those the finder wants;
-- autovacuum summarizes the rest.
CREATE INDEX observation_received ON observation USING brin (received);
