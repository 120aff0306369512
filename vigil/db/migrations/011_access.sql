-- Who may see whom (api/access/): four kinds of principal, SMART scopes, expiry; grants of
-- teams or patients to clients; time-bounded team membership; the patients' consents; and
-- an audit trail that the API can only append to.

ALTER TABLE api_client DROP CONSTRAINT api_client_role_check;
ALTER TABLE api_client ADD CONSTRAINT api_client_role_check
    CHECK (role IN ('clinician', 'patient', 'admin', 'system'));
-- A patient's token is for their own record only; NULL scopes: the kind's defaults.
ALTER TABLE api_client ADD COLUMN patient text;
ALTER TABLE api_client ADD COLUMN scopes text;
ALTER TABLE api_client ADD COLUMN expires timestamptz;
ALTER TABLE api_client ADD CONSTRAINT api_client_patient
    CHECK ((role = 'patient') = (patient IS NOT NULL));
-- Tokens made before expiry existed get the lifetime new ones have by default (90 days)
-- rather than living for ever.
UPDATE api_client SET expires = now() + interval '90 days'
    WHERE expires IS NULL AND revoked IS NULL;

-- A clinician's membership of a team for access (beside the paging roster, which also
-- counts), or a system client's grant of a team's patients or of one patient.
CREATE TABLE access_grant (
    id           bigserial   PRIMARY KEY,
    client       text        NOT NULL REFERENCES api_client (name) ON DELETE CASCADE,
    team         text        REFERENCES care_team (id) ON DELETE CASCADE,
    patient      text,
    period_start timestamptz NOT NULL DEFAULT now(),
    period_end   timestamptz,
    CHECK ((team IS NULL) <> (patient IS NULL))
);
CREATE INDEX access_grant_client ON access_grant (client);

-- Roster entries may be bounded in time too (a locum for a month).
ALTER TABLE care_team_member ADD COLUMN period_start timestamptz;
ALTER TABLE care_team_member ADD COLUMN period_end timestamptz;

-- A patient's decision about one actor (CareTeam/ID or Device/CLIENT): the newest active
-- record for (patient, actor) is the one in force while its period holds.
CREATE TABLE consent (
    id           bigserial   PRIMARY KEY,
    patient      text        NOT NULL,
    actor        text        NOT NULL,
    decision     text        NOT NULL CHECK (decision IN ('permit', 'deny')),
    period_start timestamptz NOT NULL DEFAULT now(),
    period_end   timestamptz,
    recorded     timestamptz NOT NULL DEFAULT now(),
    recorded_by  text        NOT NULL
);
CREATE INDEX consent_patient ON consent (patient, actor, recorded);

-- The audit trail: who (kind too), the HTTP status, and the refusals and failures.
ALTER TABLE audit_event ADD COLUMN principal_kind text;
ALTER TABLE audit_event ADD COLUMN status integer;
ALTER TABLE audit_event DROP CONSTRAINT audit_event_outcome;
ALTER TABLE audit_event ADD CONSTRAINT audit_event_outcome
    CHECK (outcome IN ('success', 'invalid', 'denied', 'forbidden', 'not-found', 'conflict',
                       'too-large', 'too-many', 'error')) NOT VALID;
CREATE INDEX audit_event_patients ON audit_event USING gin (patients);
CREATE INDEX audit_event_actor ON audit_event (actor, at);

-- Evidence is never rewritten: whatever role runs the API's statements can add rows and
-- nothing else (removing the triggers takes the table's owner, which the API need not be).
CREATE FUNCTION vigil_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_event is append-only (% refused)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER audit_event_append_only BEFORE UPDATE OR DELETE ON audit_event
    FOR EACH ROW EXECUTE FUNCTION vigil_audit_append_only();
CREATE TRIGGER audit_event_no_truncate BEFORE TRUNCATE ON audit_event
    FOR EACH STATEMENT EXECUTE FUNCTION vigil_audit_append_only();
