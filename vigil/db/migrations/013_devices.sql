-- The registry the FHIR API serves Patient and Device from: every patient the platform
-- knows of, every sensor (what it says it is, whose it is, which gateway reads it) and every
-- gateway's presence. Ingest keeps it current from the readings it commits and from the
-- gateways' retained `devices` and `status` reports (ingest/registry.py); `vigil enroll`
-- through the trigger on device_assignment below.

CREATE TABLE patient (
    id         text        PRIMARY KEY,   -- the wire's patient id
    name       text,                      -- a display name, when someone recorded one
    active     boolean     NOT NULL DEFAULT true,
    first_seen timestamptz NOT NULL DEFAULT now(),
    updated    timestamptz NOT NULL DEFAULT now()
);

-- A device's id is its address as the wire first carried it (Observation.device names it
-- so); Bluetooth stacks differ in the case they report, so a device is one row whatever the
-- case (`device_key`), and lookups compare upper(id), as vigil/db/enrollment.py does.
CREATE TABLE device (
    id           text        PRIMARY KEY,
    kind         text        NOT NULL DEFAULT 'unknown',  -- heart-rate-strap, pulse-oximeter
    manufacturer text,
    model        text,
    serial       text,
    firmware     text,
    location     text,                    -- body sensor location, as a strap reports it
    gateway      text,                    -- the gateway it was last reported by or read through
    patient      text,                    -- whose it is now; NULL: nobody's
    state        text,                    -- the latest connection state reported
    battery      smallint,                -- the latest battery level reported, %
    version      integer     NOT NULL DEFAULT 1,
    updated      timestamptz NOT NULL DEFAULT now(),  -- when the current version began
    seen         timestamptz NOT NULL DEFAULT now()   -- its last report or reading
);
CREATE UNIQUE INDEX device_key ON device (upper(id));
CREATE INDEX device_patient ON device (patient);
-- Ingest finds a device's assignment whatever the case it was written in, per reading flush.
CREATE INDEX device_assignment_key ON device_assignment (upper(device));

-- Every version of a device's identity and assignment, the current one open
-- (valid_until NULL): which device was whose, through which gateway, when. FHIR R4 has no
-- DeviceAssociation, so the API serves these as the Device's versions (meta.versionId,
-- _history), each period from valid_from to valid_until.
CREATE TABLE device_version (
    device       text        NOT NULL REFERENCES device (id) ON DELETE CASCADE,
    version      integer     NOT NULL,
    kind         text        NOT NULL,
    manufacturer text,
    model        text,
    serial       text,
    firmware     text,
    location     text,
    gateway      text,
    patient      text,
    valid_from   timestamptz NOT NULL,
    valid_until  timestamptz,
    PRIMARY KEY (device, version)
);
CREATE INDEX device_version_patient ON device_version (patient, valid_from);

-- Every gateway that ever reported (enrolled or not: the enrolled ones are in `gateway`),
-- with its presence from its retained status ('unknown' until one arrives).
CREATE TABLE gateway_state (
    gateway  text        PRIMARY KEY,
    state    text        NOT NULL,
    software text,                         -- the version its status reports
    seen     timestamptz NOT NULL DEFAULT now()
);

-- Versioning lives in the table, so that every writer (ingest, enrollment, an operator's
-- UPDATE) makes the same history: a change of what the device is or whose it is (kind,
-- manufacturer, model, serial, firmware, location, gateway, patient) starts a version;
-- battery, state and seen are the device's condition, not its identity, and change in place.
-- Writers choose neither the version nor when it began.
CREATE FUNCTION vigil_device_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        NEW.version := 1;
        RETURN NEW;
    END IF;
    IF (NEW.kind, NEW.manufacturer, NEW.model, NEW.serial, NEW.firmware, NEW.location,
        NEW.gateway, NEW.patient)
       IS DISTINCT FROM
       (OLD.kind, OLD.manufacturer, OLD.model, OLD.serial, OLD.firmware, OLD.location,
        OLD.gateway, OLD.patient)
    THEN
        NEW.version := OLD.version + 1;
        -- the moment of the change, not its transaction's start: a version begun by a
        -- transaction that started earlier would otherwise start in the past (or last 0 s)
        NEW.updated := greatest(clock_timestamp(), OLD.updated);  -- never backwards
    ELSE
        NEW.version := OLD.version;
        NEW.updated := OLD.updated;
    END IF;
    RETURN NEW;
END
$$;

-- Closes the previous version where the new one begins, so the periods meet.
CREATE FUNCTION vigil_device_history() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        UPDATE device_version SET valid_until = NEW.updated
        WHERE device = NEW.id AND version = OLD.version;
    END IF;
    INSERT INTO device_version (device, version, kind, manufacturer, model, serial, firmware,
                                location, gateway, patient, valid_from)
    VALUES (NEW.id, NEW.version, NEW.kind, NEW.manufacturer, NEW.model, NEW.serial,
            NEW.firmware, NEW.location, NEW.gateway, NEW.patient, NEW.updated);
    RETURN NULL;
END
$$;

CREATE TRIGGER device_versioned BEFORE INSERT OR UPDATE ON device
    FOR EACH ROW EXECUTE FUNCTION vigil_device_version();
CREATE TRIGGER device_created AFTER INSERT ON device
    FOR EACH ROW EXECUTE FUNCTION vigil_device_history();
-- The WHEN spares the once-a-minute `seen` refreshes a function call.
CREATE TRIGGER device_changed AFTER UPDATE ON device
    FOR EACH ROW WHEN (NEW.version <> OLD.version) EXECUTE FUNCTION vigil_device_history();

-- The platform's assignment is the truth of whose a device is: any writer of
-- device_assignment (`vigil enroll GW --device A=P`, a withdrawal, a gateway's withdrawal
-- cascading to its devices) moves the device with it, and registers the patient.
CREATE FUNCTION vigil_device_assigned() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        UPDATE device SET patient = NULL
        WHERE upper(id) = upper(OLD.device) AND patient = OLD.patient;
        RETURN NULL;
    END IF;
    INSERT INTO patient (id) VALUES (NEW.patient) ON CONFLICT (id) DO NOTHING;
    INSERT INTO device AS d (id, patient, gateway) VALUES (NEW.device, NEW.patient, NEW.gateway)
    ON CONFLICT ((upper(id))) DO UPDATE
        SET patient = excluded.patient, gateway = coalesce(excluded.gateway, d.gateway);
    RETURN NULL;
END
$$;
CREATE TRIGGER device_assignment_registered AFTER INSERT OR UPDATE OR DELETE ON device_assignment
    FOR EACH ROW EXECUTE FUNCTION vigil_device_assigned();

-- A patient put on a care team before any reading is a patient all the same.
CREATE FUNCTION vigil_patient_registered() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO patient (id) VALUES (NEW.patient) ON CONFLICT (id) DO NOTHING;
    RETURN NULL;
END
$$;
CREATE TRIGGER patient_team_registered AFTER INSERT OR UPDATE ON patient_team
    FOR EACH ROW EXECUTE FUNCTION vigil_patient_registered();

-- Backfill: what the platform knew before this migration. Which devices brought whose
-- readings through which gateway, and when first and last, is one pass over observation:
-- a sequential scan of every day partition (or every chunk, decompressing the compressed
-- ones) into a hash aggregate whose memory is one entry per (device, patient, gateway),
-- not per row: no sort of the table. Its cost is the scan's, linear in the rows retained
-- (measured on 2 cores, a parallel scan: 5 million rows in 0.5 s; 100 patients sending
-- three readings a second store 26 million a day, so a month retained is about 80 s, more
-- on compressed chunks); the migration holds its lock that long, and every service waits
-- for it at start. History starts here: each device gets one version, its current one.
CREATE TEMP TABLE observed ON COMMIT DROP AS
    SELECT device, patient, gateway, min(effective) AS first, max(effective) AS last
    FROM observation
    GROUP BY device, patient, gateway;

INSERT INTO patient (id, first_seen)
SELECT patient, min(since)
FROM (
    SELECT patient, first FROM observed
    UNION ALL SELECT patient, assigned FROM device_assignment
    UNION ALL SELECT patient, now() FROM patient_team
) AS known (patient, since)
GROUP BY patient;

-- A device is whose its assignment says, where it has one, else whose readings it last
-- brought; its gateway the one it was last read through. Its current version began when the
-- latest of the two began.
INSERT INTO device (id, patient, gateway, updated, seen)
SELECT coalesce(o.device, a.device),
       coalesce(a.patient, o.patient),
       coalesce(o.gateway, a.gateway),
       coalesce(greatest(o.first, a.assigned), now()),
       coalesce(o.last, a.assigned, now())
FROM (
    SELECT DISTINCT ON (upper(device)) * FROM observed ORDER BY upper(device), last DESC
) AS o
FULL JOIN (
    SELECT DISTINCT ON (upper(device)) * FROM device_assignment
    ORDER BY upper(device), assigned DESC
) AS a ON upper(a.device) = upper(o.device);

INSERT INTO gateway_state (gateway, state, seen)
SELECT gateway, 'unknown', max(since)
FROM (
    SELECT id, enrolled FROM gateway
    UNION ALL SELECT gateway, last FROM observed
) AS known (gateway, since)
GROUP BY gateway;
