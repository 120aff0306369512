-- Gateways speak only for their own patients (issue 14).

-- Who may log in to the broker, as what. `vigil enroll` issues the password, prints it once
-- and keeps only Mosquitto's hash of it (PBKDF2-SHA512, `$7$101$salt$hash`, the form
-- mosquitto_passwd writes), so the broker's password_file and acl_file can be written again
-- from here at any time (`vigil enroll --write-broker-files`). A gateway's username is its
-- id; a service's is its MQTT client id, since the broker uses the username as the client id
-- (use_username_as_clientid): one name per connection.
CREATE TABLE broker_account (
    username      text        PRIMARY KEY,
    role          text        NOT NULL
                              CHECK (role IN ('gateway', 'ingest', 'analytics', 'alerts', 'monitor')),
    password_hash text        NOT NULL CHECK (password_hash LIKE '$7$%'),
    issued        timestamptz NOT NULL DEFAULT now()
);

-- A wearable is assigned to a patient on one gateway: ingest stores a reading only when its
-- (gateway, device, patient) is assigned, so a gateway cannot speak for another gateway's
-- patient, even by naming that patient's device. A device assigned before this migration
-- is put on the enrolled gateway that last brought its patient's readings from it, so an
-- upgrade keeps storing (and scoring) what it stored before; one no enrolled gateway ever
-- brought is refused until assigned again (`vigil enroll GW --device A=P`). Withdrawing a
-- gateway withdraws its devices.
ALTER TABLE device_assignment
    ADD COLUMN gateway text REFERENCES gateway (id) ON DELETE CASCADE;
UPDATE device_assignment d SET gateway = (
    SELECT o.gateway FROM observation o JOIN gateway g ON g.id = o.gateway
    WHERE o.patient = d.patient AND o.device = d.device
    ORDER BY o.effective DESC LIMIT 1
);

-- A batch is known by (gateway, seq, digest), the digest being the SHA-256 of its payload as
-- received: a redelivery (the gateway republishes the very bytes it stored) is recognized,
-- and a different batch under a seq already seen is a conflict, stored and counted, never
-- taken for a redelivery and dropped. Batches received before have an empty digest.
ALTER TABLE ingest_batch ADD COLUMN digest bytea NOT NULL DEFAULT '\x';
ALTER TABLE ingest_batch ALTER COLUMN digest DROP DEFAULT;
ALTER TABLE ingest_batch DROP CONSTRAINT ingest_batch_pkey;
ALTER TABLE ingest_batch ADD PRIMARY KEY (gateway, seq, digest);

-- Batch accounting older than the retention period is pruned per gateway up to a seq;
-- gaps are then counted from the seq after it, not from 0.
CREATE TABLE ingest_pruned (
    gateway     text   PRIMARY KEY,
    through_seq bigint NOT NULL
);

-- Dead letters hold raw payloads (patient data): beyond a size only a prefix is kept, with
-- the whole payload's length and SHA-256, and they are pruned with the retention period.
ALTER TABLE dead_letter ADD COLUMN payload_size integer;
ALTER TABLE dead_letter ADD COLUMN payload_sha256 bytea;
UPDATE dead_letter SET payload_size = length(payload), payload_sha256 = sha256(payload);
ALTER TABLE dead_letter ALTER COLUMN payload_size SET NOT NULL;
ALTER TABLE dead_letter ALTER COLUMN payload_sha256 SET NOT NULL;
