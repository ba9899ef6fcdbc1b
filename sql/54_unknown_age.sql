--
-- 54_unknown_age: a registered subject without a birth date is treated by
-- the minors' rules as profile_guard.unknown_age says: adult (the
-- default), minor (no marketing purpose sees it) or child (under 14:
-- every tag needs a guardian's separate consent).  The C rules and
-- tag_state() agree under each setting, a change of the setting reaches
-- answers already cached, and ages do not depend on the session's
-- TimeZone.  Also: only superusers set it, nor profile_guard.secure_transport.
--
CREATE EXTENSION profile_guard;
SET search_path = public, profile_guard;
SET client_min_messages = warning;
\set SHOW_CONTEXT never
-- the rule checks below compare every subject and purpose in large
-- queries: compiling them with JIT costs seconds and tests nothing here
SET jit = off;
CREATE FUNCTION pg_temp.err(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE st text; m text; d text; h text;
BEGIN
	EXECUTE q;
	RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
	GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, m = MESSAGE_TEXT,
		d = PG_EXCEPTION_DETAIL, h = PG_EXCEPTION_HINT;
	RETURN st || ': ' || m || E'\n  DETAIL: ' || coalesce(nullif(d, ''), '-')
		|| E'\n  HINT: ' || coalesce(nullif(h, ''), '-');
END $$;

-- the settings: defaults, values, and superusers only
SHOW profile_guard.unknown_age;
SHOW profile_guard.secure_transport;
SELECT unknown_age();
SELECT pg_temp.err($$SET profile_guard.unknown_age = 'teenager'$$) ~ '^22023' AS bad_value_refused;
CREATE ROLE regress_ua_app;
SET ROLE regress_ua_app;
SELECT pg_temp.err($$SET profile_guard.unknown_age = 'child'$$) ~ '^42501' AS app_cannot_set_unknown_age;
SELECT pg_temp.err($$SET profile_guard.secure_transport = 'off'$$) ~ '^42501' AS app_cannot_set_secure_transport;
SHOW profile_guard.unknown_age;
SHOW profile_guard.secure_transport;
RESET ROLE;

SELECT define_tag('interest.sports', 'preference');
SELECT define_tag('health.condition', 'medical_health');
SELECT define_purpose('ads', 'Personalised ads', ARRAY['interest.*'], interval '90 days', marketing => true);
SELECT define_purpose('rec', 'Recommendations', ARRAY['interest.sports', 'health.condition'], interval '1 year');
SELECT allow_purpose('regress_ua_app', p) FROM unnest(ARRAY['ads', 'rec']) p;

CREATE TABLE ua_profile (uid text PRIMARY KEY, sports text, health text);
SELECT protect('ua_profile', 'uid');
SELECT classify('ua_profile', 'sports', 'interest.sports');
SELECT classify('ua_profile', 'health', 'health.condition');
GRANT SELECT ON ua_profile TO regress_ua_app;

-- an adult, a child of ten (birth dates relative to today), one without a
-- birth date; each consents to both purposes, separately, without a guardian
SELECT register_subject('adult', (age_today() - interval '40 years')::date);
SELECT register_subject('kid', (age_today() - interval '10 years')::date);
SELECT register_subject('unknown');
SELECT grant_consent(s, 'ads', ARRAY['interest.*'], separate => true) > 0,
	   grant_consent(s, 'rec', ARRAY['interest.sports', 'health.condition'], separate => true) > 0
FROM unnest(ARRAY['adult', 'kid', 'unknown']) s;
SET profile_guard.purpose = '';
ALTER TABLE ua_profile DISABLE TRIGGER profile_guard_collect;
INSERT INTO ua_profile VALUES ('adult', 'tennis', 'asthma'), ('kid', 'football', 'none'),
							  ('unknown', 'chess', 'gout');
ALTER TABLE ua_profile ENABLE ALWAYS TRIGGER profile_guard_collect;

\i test/lib/rules_check.sql

-- read by the application under both purposes, the same prepared statement
-- throughout (its answers cached between settings)
PREPARE ua_read(text) AS SELECT uid, sports, health FROM ua_profile ORDER BY uid;
CREATE FUNCTION pg_temp.reads() RETURNS TABLE (purpose text, uid text, sports text, health text)
LANGUAGE plpgsql AS $$
DECLARE p text;
BEGIN
	FOREACH p IN ARRAY ARRAY['ads', 'rec'] LOOP
		PERFORM set_config('profile_guard.purpose', p, true);
		RETURN QUERY SELECT p, r.uid, r.sports, r.health FROM ua_profile r ORDER BY r.uid;
	END LOOP;
END $$;

-- adult (the default): the subject without a birth date is served as an adult
SET ROLE regress_ua_app;
SELECT * FROM pg_temp.reads();
RESET ROLE;
SELECT subject, tag, effective, reason FROM tag_state('ads', 'unknown');
SELECT * FROM pg_temp.rules_disagree();
SELECT * FROM pg_temp.bulk_differences();
SELECT clause, status, detail FROM assess() WHERE clause = '§9 i';

-- minor: marketing no longer sees it; the other purpose still does
SET profile_guard.unknown_age = 'minor';
SELECT unknown_age();
SET ROLE regress_ua_app;
SELECT * FROM pg_temp.reads();
SET profile_guard.purpose = 'ads';
EXECUTE ua_read('x');
RESET profile_guard.purpose;
RESET ROLE;
SELECT subject, tag, effective, reason FROM tag_state('ads', 'unknown');
SELECT * FROM pg_temp.rules_disagree();
SELECT * FROM pg_temp.bulk_differences();
SELECT clause, status, detail FROM assess() WHERE clause = '§9 i';

-- child: every tag needs a guardian's separate consent, which was not given
SET profile_guard.unknown_age = 'child';
SET ROLE regress_ua_app;
SELECT * FROM pg_temp.reads();
RESET ROLE;
SELECT subject, tag, effective, reason FROM tag_state('rec', 'unknown') ORDER BY tag;
SELECT * FROM pg_temp.rules_disagree();
SELECT * FROM pg_temp.bulk_differences();
-- writes follow the same rule: nothing may be collected for it now
SELECT pg_temp.err($$UPDATE ua_profile SET sports = 'go' WHERE uid = 'unknown'$$) AS collect_without_guardian;
-- a guardian's consent makes it usable again, except for marketing
SELECT grant_consent('unknown', 'rec', ARRAY['interest.sports', 'health.condition'],
					 separate => true, guardian => true) > 0;
SET ROLE regress_ua_app;
SELECT * FROM pg_temp.reads();
RESET ROLE;
SELECT * FROM pg_temp.rules_disagree();
SELECT * FROM pg_temp.bulk_differences();
SELECT pg_temp.err($$UPDATE ua_profile SET sports = 'go' WHERE uid = 'unknown'$$) AS collect_with_guardian;

-- back to adult: the cached answers follow at once
RESET profile_guard.unknown_age;
SET ROLE regress_ua_app;
SET profile_guard.purpose = 'ads';
EXECUTE ua_read('x');
RESET profile_guard.purpose;
RESET ROLE;

-- a recorded birth date wins over the setting
SET profile_guard.unknown_age = 'child';
SELECT register_subject('unknown', (age_today() - interval '30 years')::date);
SELECT subject, tag, effective, reason FROM tag_state('ads', 'unknown');
SELECT * FROM pg_temp.rules_disagree();
RESET profile_guard.unknown_age;

-- ages are computed in profile_guard.age_time_zone, whatever the
-- session's TimeZone: the same day from UTC-11 to UTC+14 (at any hour, one
-- of the two has another local date than UTC)
SHOW profile_guard.age_time_zone;
SET TimeZone = 'Pacific/Pago_Pago';
SELECT age_today() = (now() AT TIME ZONE 'UTC')::date AS today_is_utc_from_utc_minus_11;
SET TimeZone = 'Pacific/Kiritimati';
SELECT age_today() = (now() AT TIME ZONE 'UTC')::date AS today_is_utc_from_utc_plus_14;
RESET TimeZone;

DEALLOCATE ua_read;
DROP TABLE ua_profile;
DROP EXTENSION profile_guard CASCADE;
DROP ROLE regress_ua_app;
