-- Audit outcomes from one vocabulary (api/audit.py, Outcome). Rows written before keep the
-- spellings they were written with ('ok', 'not found', 'refused'): an audit trail is
-- evidence, and its rows are never rewritten, so the check holds from now on (NOT VALID).
ALTER TABLE audit_event ADD CONSTRAINT audit_event_outcome
    CHECK (outcome IN ('success', 'invalid', 'denied', 'not-found', 'conflict')) NOT VALID;
