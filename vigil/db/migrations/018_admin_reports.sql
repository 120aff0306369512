-- The administrators' channel (issue 17): a care team nobody of which could be told of an
-- alert is reported to the deployment's administrators, through the outbox like any
-- notification (audience 'admin'), once per telling of the alert.
ALTER TABLE notification DROP CONSTRAINT notification_audience_check;
ALTER TABLE notification ADD CONSTRAINT notification_audience_check
    CHECK (audience IN ('care_team', 'patient', 'admin'));
-- The revision of the alert whose telling reached nobody of its care team; NULL: none. Set
-- in the transaction that owes the report, so the report is owed once, even when the
-- escalation pass that finds it runs again after a crash.
ALTER TABLE alert ADD COLUMN unreachable_revision integer;
