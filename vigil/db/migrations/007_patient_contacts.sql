-- A patient's own channels for the messages meant for them (an apprise URL each: an SMS
-- gateway, ntfy, e-mail ...), besides their gateway's inbox.
CREATE TABLE patient_contact (
    patient text NOT NULL,
    contact text NOT NULL,
    PRIMARY KEY (patient, contact)
);
