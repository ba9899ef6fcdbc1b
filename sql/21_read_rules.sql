-- Read path: the consent rules row by row, and the long (one row per tag) shape.
CREATE EXTENSION profile_guard;
-- the rule checks compare many subjects in large queries: JIT compiling
-- them costs seconds and tests nothing here
SET jit = off;
SET client_min_messages = warning;
CREATE ROLE regress_app LOGIN;

DO $setup$ BEGIN
PERFORM profile_guard.define_tag('interest.sports', 'preference');
PERFORM profile_guard.define_tag('interest.music', 'preference');
PERFORM profile_guard.define_tag('location.city', 'behavior');
PERFORM profile_guard.define_purpose('recommendation', 'recommend content', ARRAY['interest.*']);
PERFORM profile_guard.define_purpose('marketing', 'personalised ads', ARRAY['interest.*'], marketing => true);
PERFORM profile_guard.define_purpose('analytics', 'city statistics', ARRAY['location.*']);
PERFORM profile_guard.define_purpose('credit_scoring', 'automated decisions', ARRAY['interest.*'], automated_decision => true);
PERFORM profile_guard.allow_purpose('regress_app', p) FROM unnest(ARRAY['recommendation', 'marketing', 'credit_scoring']) p;
END $setup$;

-- long shape: one row per subject and tag
CREATE TABLE tag_rows (subject text, tag text, value text, PRIMARY KEY (subject, tag));
GRANT SELECT ON tag_rows TO regress_app;
SELECT profile_guard.protect('tag_rows', 'subject', tag_column => 'tag', value_column => 'value');

-- subjects: adult, minor (16), child (10), adult who asks for erasure
DO $setup$ BEGIN
PERFORM profile_guard.register_subject('adult', (current_date - interval '30 years')::date);
PERFORM profile_guard.register_subject('minor', (current_date - interval '16 years')::date);
PERFORM profile_guard.register_subject('child', (current_date - interval '10 years')::date);
PERFORM profile_guard.register_subject('leaver');
PERFORM profile_guard.grant_consent(s, 'recommendation', ARRAY['interest.*']) FROM unnest(ARRAY['adult', 'minor', 'leaver']) s;
PERFORM profile_guard.grant_consent(s, 'marketing', ARRAY['interest.*']) FROM unnest(ARRAY['adult', 'minor']) s;
PERFORM profile_guard.grant_consent(s, 'credit_scoring', ARRAY['interest.*']) FROM unnest(ARRAY['adult']) s;
PERFORM profile_guard.grant_consent('adult', 'analytics', ARRAY['location.city']);
-- a child's consent counts only when separate and given by a guardian
PERFORM profile_guard.grant_consent('child', 'recommendation', ARRAY['interest.sports'], separate => true);
PERFORM profile_guard.grant_consent('child', 'recommendation', ARRAY['interest.music'], separate => true, guardian => true);
END $setup$;

INSERT INTO tag_rows VALUES
	('adult', 'interest.sports', 'football'), ('adult', 'interest.music', 'jazz'),
	('adult', 'location.city', 'beijing'),
	('minor', 'interest.sports', 'tennis'), ('minor', 'interest.music', 'rock'),
	('child', 'interest.music', 'pop'),
	('leaver', 'interest.music', 'folk');
-- a child's tag without guardian consent cannot even be collected
INSERT INTO tag_rows VALUES ('child', 'interest.sports', 'golf');

SET ROLE regress_app;
SELECT * FROM tag_rows;
-- every row is a tag: the subject column alone is a tag read too
SELECT subject FROM tag_rows;
SET profile_guard.purpose = 'recommendation';
-- location.city is outside the purpose
SELECT * FROM tag_rows ORDER BY subject, tag;
SELECT tag_rows FROM tag_rows WHERE value = 'beijing';
SELECT count(*) FROM tag_rows WHERE tag = 'interest.sports' AND value = 'golf';
-- marketing never sees minors (profile_guard.minor_age, default 18)
SET profile_guard.purpose = 'marketing';
SELECT * FROM tag_rows ORDER BY subject, tag;

-- erasure requested: use stops at once
RESET ROLE;
SELECT profile_guard.request_erasure('leaver') > 0;
SET ROLE regress_app;
SET profile_guard.purpose = 'recommendation';
SELECT * FROM tag_rows WHERE subject = 'leaver';

-- redefining a purpose bumps its version: older consents stop counting
RESET ROLE;
SELECT profile_guard.define_purpose('recommendation', 'recommend content and products', ARRAY['interest.*']);
SET ROLE regress_app;
SELECT * FROM tag_rows ORDER BY subject, tag;
RESET ROLE;
SELECT profile_guard.grant_consent('adult', 'recommendation', ARRAY['interest.music']) > 0;
SET ROLE regress_app;
SELECT * FROM tag_rows ORDER BY subject, tag;

-- automated decisions work once assessed (count(*) of tag rows reads tags)
SET profile_guard.purpose = 'credit_scoring';
SELECT count(*) FROM tag_rows;
RESET ROLE;
SELECT profile_guard.record_assessment('credit_scoring', 'dpo@example.com', 'risks mitigated');
SET ROLE regress_app;
SELECT * FROM tag_rows ORDER BY subject, tag;

-- a retired purpose cannot be used
RESET ROLE;
SELECT profile_guard.retire_purpose('marketing');
SET ROLE regress_app;
SET profile_guard.purpose = 'marketing';
SELECT * FROM tag_rows;

-- a purpose given as a role default
RESET ROLE;
ALTER ROLE regress_app SET profile_guard.purpose = 'recommendation';
\c - regress_app
SHOW profile_guard.purpose;
SELECT count(*) FROM tag_rows WHERE value IS NOT NULL;
\c - postgres
ALTER ROLE regress_app RESET profile_guard.purpose;

-- superusers see everything
SELECT count(*) FROM tag_rows;

-- ages are computed in profile_guard.age_time_zone (UTC by default), never
-- in the session's TimeZone.  'eve' turns 18 and 'kid' 14 on today's date
-- in UTC+14, which is always a later date than today in UTC-12.
SELECT profile_guard.define_purpose('promo', 'promotions', ARRAY['interest.*'], marketing => true) AS promo;
SELECT profile_guard.register_subject('eve', (CAST(timezone('Etc/GMT-14', now()) AS date) - interval '18 years')::date);
SELECT profile_guard.register_subject('kid', (CAST(timezone('Etc/GMT-14', now()) AS date) - interval '14 years')::date);
SELECT profile_guard.grant_consent('eve', 'promo', ARRAY['interest.*']) > 0 AS granted;
SELECT profile_guard.grant_consent('eve', 'recommendation', ARRAY['interest.*']) > 0 AS granted;
SELECT profile_guard.grant_consent('kid', 'recommendation', ARRAY['interest.*']) > 0 AS granted;
SELECT profile_guard.allow_purpose('regress_app', 'promo');
INSERT INTO tag_rows VALUES ('eve', 'interest.music', 'soul');
CREATE TEMP TABLE ages (age_zone text, session_zone text, subject text, purpose text, effective boolean, reason text);
CREATE FUNCTION pg_temp.note_ages() RETURNS void LANGUAGE sql AS $$
	INSERT INTO ages
	SELECT current_setting('profile_guard.age_time_zone'), current_setting('TimeZone'),
		   subject, purpose, bool_and(effective), min(reason)
	FROM profile_guard.consent_status
	WHERE (subject, purpose) IN (('eve', 'promo'), ('kid', 'recommendation'))
	GROUP BY subject, purpose
$$;
-- in UTC+14 both have their birthday today; in UTC-12 neither has yet
SET profile_guard.age_time_zone = 'Etc/GMT-14';
SET TimeZone = 'Etc/GMT+12';
SELECT pg_temp.note_ages();
SET ROLE regress_app;
SET profile_guard.purpose = 'promo';
SELECT subject, value FROM tag_rows WHERE subject = 'eve';
RESET ROLE;
SET TimeZone = 'Etc/GMT-14';
SELECT pg_temp.note_ages();
SET profile_guard.age_time_zone = 'Etc/GMT+12';
SELECT pg_temp.note_ages();
SET ROLE regress_app;
SELECT subject, value FROM tag_rows WHERE subject = 'eve';
RESET ROLE;
SET TimeZone = 'Etc/GMT+12';
SELECT pg_temp.note_ages();
SELECT age_zone, subject, purpose, effective, reason, count(*) AS session_zones
FROM ages GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2;
-- by default UTC, whatever the session's zone: the same answers in both
TRUNCATE ages;
RESET profile_guard.age_time_zone;
SELECT pg_temp.note_ages();
SET TimeZone = 'Etc/GMT-14';
SELECT pg_temp.note_ages();
SELECT count(DISTINCT (subject, purpose, effective, reason)) AS answers, count(*) AS rows FROM ages;
RESET TimeZone;
RESET profile_guard.purpose;
-- the setting names a known zone, and only a superuser may change it
SET profile_guard.age_time_zone = 'Mars/Olympus';
SET profile_guard.age_time_zone = '';
SET ROLE regress_app;
SET profile_guard.age_time_zone = 'UTC';
RESET ROLE;
DROP TABLE ages;

DROP TABLE tag_rows;
RESET ROLE;
\i test/lib/rules_check.sql
SELECT * FROM pg_temp.rules_disagree();
SELECT * FROM pg_temp.bulk_differences();

DROP EXTENSION profile_guard CASCADE;
DROP ROLE regress_app;
