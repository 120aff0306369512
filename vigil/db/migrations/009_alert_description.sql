-- What the rule that raised an alert says, in the words of the scale the patient was judged
-- on (NEWS2 SpO2 scale 1 or 2): taken from the analytics event, shown as the Flag's text.
ALTER TABLE alert ADD COLUMN description text NOT NULL DEFAULT '';
UPDATE alert SET description = coalesce(evidence ->> 'description', '');
