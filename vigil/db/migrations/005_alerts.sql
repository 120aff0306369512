-- Alerts: what the alerts service made of the analytics events, every change to them, and
-- the notifications it owes (an outbox written in the same transaction as the change).

CREATE TABLE alert (
    id            bigserial   PRIMARY KEY,
    patient       text        NOT NULL,
    rule          text        NOT NULL,
    -- The metrics whose condition holds now (a pulse rule watches the strap and the
    -- oximeter; check_sensor both devices); empty once all have cleared.
    active        text[]      NOT NULL,
    priority      text        NOT NULL CHECK (priority IN ('low', 'medium', 'high')),
    state         text        NOT NULL CHECK (state IN ('triggered', 'acknowledged', 'resolved')),
    -- Set while another open alert of the patient explains this one away (an SpO2 alert
    -- while the oximeter reports no contact): recorded, not notified.
    inhibited_by  bigint      REFERENCES alert (id),
    triggered_at  timestamptz NOT NULL,
    onset         timestamptz,
    -- When the condition cleared; null while it holds. Auto-resolution waits for it to
    -- stay clear.
    cleared_at    timestamptz,
    snoozed_until timestamptz,
    gateway       text,
    evidence      jsonb       NOT NULL,
    event_id      text        NOT NULL,
    updated       timestamptz NOT NULL DEFAULT now()
);
-- Deduplication: one open alert per (patient, rule).
CREATE UNIQUE INDEX alert_open ON alert (patient, rule) WHERE state <> 'resolved';
CREATE INDEX alert_patient ON alert (patient, triggered_at);

CREATE TABLE alert_change (
    id     bigserial   PRIMARY KEY,
    alert  bigint      NOT NULL REFERENCES alert (id),
    at     timestamptz NOT NULL DEFAULT now(),
    change text        NOT NULL,
    actor  text        NOT NULL,
    note   text        NOT NULL DEFAULT ''
);
CREATE INDEX alert_change_alert ON alert_change (alert, at);

-- Events already taken: a redelivered or republished event changes nothing.
CREATE TABLE alert_event_seen (
    event_id text        PRIMARY KEY,
    seen     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE notification (
    id              bigserial   PRIMARY KEY,
    alert           bigint      NOT NULL REFERENCES alert (id),
    channel         text        NOT NULL,
    target          text        NOT NULL,
    audience        text        NOT NULL CHECK (audience IN ('care_team', 'patient')),
    body            jsonb       NOT NULL,
    idempotency_key text        NOT NULL UNIQUE,
    state           text        NOT NULL DEFAULT 'pending'
                                CHECK (state IN ('pending', 'sent', 'failed')),
    attempts        integer     NOT NULL DEFAULT 0,
    next_attempt    timestamptz NOT NULL DEFAULT now(),
    last_error      text        NOT NULL DEFAULT '',
    created         timestamptz NOT NULL DEFAULT now(),
    sent            timestamptz
);
CREATE INDEX notification_due ON notification (next_attempt) WHERE state = 'pending';
