-- Care teams: who hears of a patient's alerts, in which order. Tier 1 is told first; a
-- high-priority alert nobody acknowledges in time goes to tier 2, and so on. A member's
-- contact is an apprise URL (mailto://, ntfy://, slack://, json://, ...).

CREATE TABLE care_team (
    id          text PRIMARY KEY,
    name        text NOT NULL DEFAULT '',
    -- Low-priority notifications wait while the team's local time is in [quiet_from,
    -- quiet_until) (e.g. 22:00-07:00); NULL: no quiet hours.
    timezone    text NOT NULL DEFAULT 'UTC',
    quiet_from  time,
    quiet_until time
);

CREATE TABLE care_team_member (
    team    text    NOT NULL REFERENCES care_team (id) ON DELETE CASCADE,
    member  text    NOT NULL,
    tier    integer NOT NULL CHECK (tier >= 1),
    contact text    NOT NULL,
    PRIMARY KEY (team, member)
);

CREATE TABLE patient_team (
    patient text PRIMARY KEY,
    team    text NOT NULL REFERENCES care_team (id)
);

-- The tier told so far, and when the next one is due if nobody acknowledges.
ALTER TABLE alert ADD COLUMN tier integer NOT NULL DEFAULT 0;
ALTER TABLE alert ADD COLUMN escalate_at timestamptz;
CREATE INDEX alert_escalation ON alert (escalate_at) WHERE escalate_at IS NOT NULL;

-- When the quiet hours that hold `at` end (NULL when `at` is not in them). The window may
-- run over midnight (22:00-07:00); times are the team's local ones.
CREATE FUNCTION vigil_quiet_until(at timestamptz, tz text, q_from time, q_until time)
RETURNS timestamptz LANGUAGE sql STABLE AS $$
    SELECT CASE
        WHEN q_from IS NULL OR q_until IS NULL OR q_from = q_until THEN NULL
        WHEN q_from < q_until THEN
            CASE WHEN (at AT TIME ZONE tz)::time >= q_from
                  AND (at AT TIME ZONE tz)::time < q_until
                 THEN (date_trunc('day', at AT TIME ZONE tz) + q_until) AT TIME ZONE tz
            END
        ELSE
            CASE WHEN (at AT TIME ZONE tz)::time >= q_from
                 THEN (date_trunc('day', at AT TIME ZONE tz) + interval '1 day' + q_until)
                      AT TIME ZONE tz
                 WHEN (at AT TIME ZONE tz)::time < q_until
                 THEN (date_trunc('day', at AT TIME ZONE tz) + q_until) AT TIME ZONE tz
            END
    END
$$;
