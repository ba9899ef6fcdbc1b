--
-- 11_purpose: define_purpose (versions, history), record_assessment,
-- retire_purpose, allow_purpose, disallow_purpose
--
CREATE EXTENSION profile_guard;
SET search_path = profile_guard, public;
\set SHOW_CONTEXT never
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
CREATE FUNCTION pg_temp.purposes() RETURNS text LANGUAGE sql AS $$
	SELECT (SELECT count(*) FROM purpose) || ' purposes, '
		|| (SELECT count(*) FROM purpose_history) || ' versions, '
		|| (SELECT count(*) FROM assessment) || ' assessments, '
		|| (SELECT count(*) FROM purpose_role) || ' roles, '
		|| (SELECT md5(string_agg(p::text, ';' ORDER BY purpose)) FROM purpose p)
$$;

SELECT define_tag('interest.sports', 'preference');
SELECT define_tag('interest.music', 'preference');
SELECT define_tag('health.condition', 'medical_health');

-- a new purpose is version 1, with a history row
SELECT define_purpose('recommendation', 'Recommend content from interests',
					  tags => ARRAY['interest.*', 'interest.sports', 'interest.*']);
-- a recipient is defined before a purpose names it (56_recipients)
SELECT define_recipient('ACME Ltd');
SELECT define_purpose('share:acme', 'Share segments with ACME', recipient => 'ACME Ltd');
SELECT purpose, version, description, tags, retention, marketing, automated_decision,
	   recipient, retired_at IS NULL AS active
FROM purpose ORDER BY purpose;
SELECT purpose, version, description, tags FROM purpose_history ORDER BY purpose, version;

-- an identical redefinition returns the same version and changes nothing
-- (tag lists compare as sets)
SELECT pg_temp.purposes() AS before \gset
SELECT define_purpose('recommendation', 'Recommend content from interests',
					  tags => ARRAY['interest.sports', 'interest.*']);
SELECT pg_temp.purposes() = :'before' AS unchanged;

-- any change bumps the version and adds a history row
SELECT define_purpose('recommendation', 'Recommend content from interests and health',
					  tags => ARRAY['interest.*', 'interest.sports']);
SELECT define_purpose('recommendation', 'Recommend content from interests and health',
					  tags => ARRAY['interest.*', 'health.condition']);
SELECT define_purpose('recommendation', 'Recommend content from interests and health',
					  tags => ARRAY['interest.*', 'health.condition'], retention => '90 days');
SELECT define_purpose('recommendation', 'Recommend content from interests and health',
					  tags => ARRAY['interest.*', 'health.condition'], retention => '90 days',
					  marketing => true);
SELECT define_purpose('recommendation', 'Recommend content from interests and health',
					  tags => ARRAY['interest.*', 'health.condition'], retention => '90 days',
					  marketing => true, automated_decision => true);
SELECT define_purpose('recommendation', 'Recommend content from interests and health',
					  tags => ARRAY['interest.*', 'health.condition'], retention => '90 days',
					  marketing => true, automated_decision => true, recipient => 'ACME Ltd');
-- back to no tag list (NULL: all tags) is a change too
SELECT define_purpose('recommendation', 'Recommend content from interests and health',
					  retention => '90 days', marketing => true, automated_decision => true,
					  recipient => 'ACME Ltd');
SELECT purpose, version, description, tags, retention, marketing AS mkt,
	   automated_decision AS auto, recipient
FROM purpose_history WHERE purpose = 'recommendation' ORDER BY version;
SELECT purpose, version FROM purpose WHERE purpose = 'recommendation';

-- define_purpose errors change nothing
SELECT pg_temp.purposes() AS before \gset
SELECT pg_temp.err($$SELECT profile_guard.define_purpose(NULL, 'x')$$);
SELECT pg_temp.err($$SELECT profile_guard.define_purpose('ads', NULL)$$);
SELECT pg_temp.err($$SELECT profile_guard.define_purpose('ads', 'Ads', marketing => NULL)$$);
SELECT pg_temp.err($$SELECT profile_guard.define_purpose('Ads', 'Ads')$$);
SELECT pg_temp.err($$SELECT profile_guard.define_purpose('1ads', 'Ads')$$);
SELECT pg_temp.err($$SELECT profile_guard.define_purpose('ads for all', 'Ads')$$);
SELECT pg_temp.err(format('SELECT profile_guard.define_purpose(%L, %L)', repeat('a', 101), 'Ads'));
SELECT pg_temp.err($$SELECT profile_guard.define_purpose('ads', '  ')$$);
SELECT pg_temp.err($$SELECT profile_guard.define_purpose('ads', 'Ads', tags => '{}')$$);
SELECT pg_temp.err($$SELECT profile_guard.define_purpose('ads', 'Ads', tags => ARRAY[NULL::text])$$);
SELECT pg_temp.err($$SELECT profile_guard.define_purpose('ads', 'Ads', tags => ARRAY['interest'])$$);
SELECT pg_temp.err($$SELECT profile_guard.define_purpose('ads', 'Ads', tags => ARRAY['*'])$$);
SELECT pg_temp.err($$SELECT profile_guard.define_purpose('ads', 'Ads', tags => ARRAY['interest.sports*'])$$);
SELECT pg_temp.err($$SELECT profile_guard.define_purpose('ads', 'Ads', tags => ARRAY['interest.golf'])$$);
SELECT pg_temp.err($$SELECT profile_guard.define_purpose('ads', 'Ads', tags => ARRAY['hobby.*'])$$);
SELECT pg_temp.err($$SELECT profile_guard.define_purpose('ads', 'Ads', retention => '-1 day')$$);
SELECT pg_temp.err($$SELECT profile_guard.define_purpose('ads', 'Ads', retention => '0')$$);
-- positive in every part, whatever the month; short enough to subtract
SELECT pg_temp.err($$SELECT profile_guard.define_purpose('ads', 'Ads', retention => '-1 mon 31 days')$$);
SELECT pg_temp.err($$SELECT profile_guard.define_purpose('ads', 'Ads', retention => '1 mon -29 days')$$);
SELECT pg_temp.err($$SELECT profile_guard.define_purpose('ads', 'Ads', retention => '1 day -1 hour')$$);
SELECT pg_temp.err($$SELECT profile_guard.define_purpose('ads', 'Ads', retention => '200000 years')$$);
SELECT pg_temp.purposes() = :'before' AS unchanged;
-- valid names: the alphabet of profile_guard.purpose, up to 100 characters
SELECT define_purpose('a.b:c-d_9', 'Odd but valid');
SELECT define_purpose(repeat('a', 100), 'Long but valid');

-- record_assessment: for the current version
SELECT record_assessment('recommendation', 'DPO Alice', 'Risks acceptable with separate consent');
SELECT purpose, purpose_version, assessor, conclusion FROM assessment ORDER BY assessment_id;
SELECT define_purpose('recommendation', 'Recommend content (v9)',
					  retention => '90 days', marketing => true, automated_decision => true,
					  recipient => 'ACME Ltd');
SELECT record_assessment('recommendation', 'DPO Bob', 'Reviewed v9');
SELECT purpose, purpose_version, assessor, conclusion FROM assessment ORDER BY assessment_id;
SELECT pg_temp.purposes() AS before \gset
SELECT pg_temp.err($$SELECT profile_guard.record_assessment('nope', 'x', 'y')$$);
SELECT pg_temp.err($$SELECT profile_guard.record_assessment(NULL, 'x', 'y')$$);
SELECT pg_temp.err($$SELECT profile_guard.record_assessment('recommendation', NULL, 'y')$$);
SELECT pg_temp.err($$SELECT profile_guard.record_assessment('recommendation', 'x', '')$$);
SELECT pg_temp.purposes() = :'before' AS unchanged;

-- allow_purpose / disallow_purpose store role names
CREATE ROLE regress_app;
CREATE ROLE "Regress Mixed";
SELECT allow_purpose('regress_app', 'recommendation');
SELECT allow_purpose('regress_app', 'recommendation');	-- no-op
SELECT allow_purpose('"Regress Mixed"', 'share:acme');
SELECT role_name, purpose FROM purpose_role ORDER BY 1, 2;
SELECT pg_temp.purposes() AS before \gset
SELECT pg_temp.err($$SELECT profile_guard.allow_purpose('regress_nobody', 'recommendation')$$);
SELECT pg_temp.err($$SELECT profile_guard.allow_purpose(NULL, 'recommendation')$$);
SELECT pg_temp.err($$SELECT profile_guard.allow_purpose(0::oid::regrole, 'recommendation')$$);
SELECT pg_temp.err($$SELECT profile_guard.allow_purpose('regress_app', 'nope')$$);
SELECT pg_temp.err($$SELECT profile_guard.disallow_purpose('regress_app', 'share:acme')$$);
SELECT pg_temp.err($$SELECT profile_guard.disallow_purpose('regress_app', 'nope')$$);
SELECT pg_temp.purposes() = :'before' AS unchanged;
SELECT disallow_purpose('"Regress Mixed"', 'share:acme');
SELECT role_name, purpose FROM purpose_role ORDER BY 1, 2;

-- retire_purpose
SELECT retire_purpose('share:acme');
SELECT left(purpose, 20) AS purpose, version, retired_at IS NOT NULL AS retired FROM purpose ORDER BY purpose;
SELECT pg_temp.purposes() AS before \gset
SELECT pg_temp.err($$SELECT profile_guard.retire_purpose('share:acme')$$);
SELECT pg_temp.err($$SELECT profile_guard.define_purpose('share:acme', 'Share segments with ACME', recipient => 'ACME Ltd')$$);
SELECT pg_temp.err($$SELECT profile_guard.record_assessment('share:acme', 'x', 'y')$$);
SELECT pg_temp.err($$SELECT profile_guard.allow_purpose('regress_app', 'share:acme')$$);
SELECT pg_temp.err($$SELECT profile_guard.retire_purpose('nope')$$);
SELECT pg_temp.err($$SELECT profile_guard.retire_purpose(NULL)$$);
SELECT pg_temp.purposes() = :'before' AS unchanged;

-- privileges
CREATE ROLE regress_purpose_admin IN ROLE profile_guard_admin;
CREATE ROLE regress_consent_clerk IN ROLE profile_guard_consent;
SET ROLE regress_purpose_admin;
SELECT profile_guard.define_purpose('support', 'Customer support');
SET ROLE regress_consent_clerk;
SELECT pg_temp.err($$SELECT profile_guard.define_purpose('support2', 'Customer support')$$);
SELECT pg_temp.err($$SELECT profile_guard.retire_purpose('support')$$);
SELECT count(*) FROM profile_guard.purpose;
RESET ROLE;

DROP EXTENSION profile_guard CASCADE;
DROP ROLE regress_app, "Regress Mixed", regress_purpose_admin, regress_consent_clerk;
