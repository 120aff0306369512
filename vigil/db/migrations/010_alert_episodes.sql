-- Episodes: one alert per patient and vital sign (its *family*: every SpO2 rule, every pulse
-- rule; a rule of its own kind is a family of one), whatever rules join it, instead of one
-- per rule (alerts/episodes.py).

-- The family; `rule` is from now on the rule that set the episode's priority (its headline).
ALTER TABLE alert ADD COLUMN family text;
-- Every rule that has held in the episode, the first first.
ALTER TABLE alert ADD COLUMN rules text[] NOT NULL DEFAULT '{}';
-- How often its conditions came back after all had ended (a sleep apnoea's dips).
ALTER TABLE alert ADD COLUMN repetitions integer NOT NULL DEFAULT 0;
-- How often people were told anew because it worsened (0: told once, when it opened).
ALTER TABLE alert ADD COLUMN revision integer NOT NULL DEFAULT 0;
-- Which telling a notification belongs to.
ALTER TABLE notification ADD COLUMN revision integer NOT NULL DEFAULT 0;

-- The conditions holding now were metrics of the alert's one rule; they are now
-- 'rule:metric', as several rules may hold in one episode.
UPDATE alert SET rules = ARRAY[rule],
                 active = ARRAY(SELECT rule || ':' || m FROM unnest(active) AS m);

-- Families as the default rules had them when this migration was written. Of a patient's
-- open alerts of one family the oldest becomes the episode; any others stay families of
-- their own until they resolve (two open episodes of one family would break the index).
WITH mapped AS (
    SELECT id, patient, rule, state, triggered_at, CASE
        WHEN rule IN ('spo2_desaturation', 'spo2_news2_red', 'spo2_below_baseline') THEN 'spo2'
        WHEN rule IN ('hr_extreme_high', 'hr_extreme_low', 'hr_news2_red_high',
                      'hr_news2_red_low', 'hr_rising', 'hr_off_baseline') THEN 'pulse'
        ELSE rule END AS family
    FROM alert
), ranked AS (
    SELECT id, rule, state, family, row_number() OVER (
        PARTITION BY patient, family, state = 'resolved' ORDER BY triggered_at, id) AS nth
    FROM mapped
)
UPDATE alert SET family = CASE
        WHEN ranked.state = 'resolved' OR ranked.nth = 1 THEN ranked.family
        ELSE ranked.rule END
FROM ranked WHERE ranked.id = alert.id;
ALTER TABLE alert ALTER COLUMN family SET NOT NULL;

DROP INDEX alert_open;
CREATE UNIQUE INDEX alert_open_episode ON alert (patient, family) WHERE state <> 'resolved';
