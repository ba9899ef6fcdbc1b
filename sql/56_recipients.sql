--
-- 56_recipients: recipients and cross-border purposes (§8, PIPL art.
-- 38-39).  A purpose's recipient is a defined recipient; one outside
-- profile_guard.home_country makes the purpose cross-border: unusable until
-- an assessment of its current version is recorded, and then only for the
-- tags each subject consented to separately.  A recipient's change of
-- country gives its purposes a new version; a change of the home country
-- takes effect for cached answers at once.  The C rules (both paths) agree
-- with tag_state() throughout.
--
CREATE EXTENSION profile_guard;
-- the rule checks compare many subjects in large queries: JIT compiling
-- them costs seconds and tests nothing here
SET jit = off;
SET search_path = public, profile_guard;
SET client_min_messages = warning;
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
CREATE FUNCTION pg_temp.state() RETURNS text LANGUAGE sql AS $$
	SELECT md5(concat_ws('|',
		(SELECT string_agg(r.recipient || r.country || coalesce(r.description, '-'), ';' ORDER BY 1) FROM recipient r),
		(SELECT string_agg(p::text, ';' ORDER BY purpose) FROM purpose p),
		(SELECT string_agg(p::text, ';' ORDER BY purpose, version) FROM purpose_history p)))
$$;
-- a backend reads its configuration again between statements: wait for
-- profile_guard.home_country = c with up to 100 short statements
CREATE FUNCTION pg_temp.await_home_step(c text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
	IF current_setting('profile_guard.home_country') <> c THEN
		PERFORM pg_sleep(0.1);
	END IF;
END $$;
SELECT current_setting('profile_guard.home_country') AS home_country, home_country();

SELECT define_tag('interest.sports', 'preference');
SELECT define_tag('interest.music', 'preference');
SELECT define_tag('health.condition', 'medical_health');

-- 1. recipients: defined, redefined (an identical call changes nothing)
SELECT define_recipient('acme', description => 'Acme Analytics, Shanghai');
SELECT define_recipient('globex', 'US', 'Globex Inc., Delaware');
SELECT define_recipient('globex', 'US', 'Globex Inc., Delaware');
SELECT recipient, country, description FROM recipient ORDER BY 1;
-- bad input changes nothing
SELECT pg_temp.state() AS before \gset
SELECT pg_temp.err($$SELECT profile_guard.define_recipient(NULL, 'CN')$$);
SELECT pg_temp.err($$SELECT profile_guard.define_recipient('x', NULL)$$);
SELECT pg_temp.err($$SELECT profile_guard.define_recipient('  ', 'CN')$$);
SELECT pg_temp.err($$SELECT profile_guard.define_recipient(repeat('x', 201), 'CN')$$);
SELECT pg_temp.err($$SELECT profile_guard.define_recipient('initech', 'us')$$);
SELECT pg_temp.err($$SELECT profile_guard.define_recipient('initech', 'USA')$$);
SELECT pg_temp.err($$SELECT profile_guard.define_recipient('globex', '')$$);
-- a purpose names a defined recipient only
SELECT pg_temp.err($$SELECT profile_guard.define_purpose('share:initech', 'share', ARRAY['interest.*'], recipient => 'initech')$$);
SELECT pg_temp.err($$INSERT INTO profile_guard.recipient VALUES ('initech', 'usa')$$) LIKE '23514:%' AS catalog_refuses;
-- only the administrators define recipients
CREATE ROLE regress_recip_app LOGIN;
SET ROLE regress_recip_app;
SELECT pg_temp.err($$SELECT profile_guard.define_recipient('initech', 'US')$$) LIKE '42501:%' AS refused;
RESET ROLE;
SELECT pg_temp.state() = :'before' AS unchanged;
-- the home country is two upper-case letters, set in the server's configuration
\set VERBOSITY sqlstate
ALTER SYSTEM SET profile_guard.home_country = 'cn';
ALTER SYSTEM SET profile_guard.home_country = 'CHN';
\set VERBOSITY default
SELECT pg_temp.err($$SET profile_guard.home_country = 'US'$$) LIKE '55P02:%' AS refused;

-- 2. purposes: share:acme (domestic), share:globex (abroad); a contract
-- purpose abroad reads only the tags its list names
SELECT define_purpose('share:acme', 'share interests with Acme', ARRAY['interest.*'], recipient => 'acme');
SELECT define_purpose('share:globex', 'share interests with Globex', ARRAY['interest.*', 'health.condition'],
					  recipient => 'globex');
SELECT define_purpose('support:globex', 'support desk run by Globex', ARRAY['interest.*', 'interest.music'],
					  recipient => 'globex', legal_basis => 'contract');
-- recommendation (in the service itself) is what the tags were collected for
SELECT define_purpose('recommendation', 'recommend content', ARRAY['interest.*', 'health.condition']);
SELECT allow_purpose('regress_recip_app', p) FROM unnest(ARRAY['share:acme', 'share:globex', 'support:globex']) p;
CREATE TABLE profiles (id int PRIMARY KEY, sports text, music text, health text);
GRANT SELECT ON profiles TO regress_recip_app;
SELECT protect('profiles', 'id');
SELECT classify('profiles', 'sports', 'interest.sports');
SELECT classify('profiles', 'music', 'interest.music');
SELECT classify('profiles', 'health', 'health.condition');
SELECT register_subject(s::text) FROM generate_series(1, 3) s;
SELECT grant_consent(s::text, 'recommendation', ARRAY['interest.*', 'health.condition'], separate => true) > 0 AS granted
FROM generate_series(1, 3) s;
-- 1 consents to share:globex, not separately; 2 separately; 3 to share:acme
SELECT grant_consent('1', 'share:globex', ARRAY['interest.*', 'health.condition']) > 0 AS granted;
SELECT grant_consent('2', 'share:globex', ARRAY['interest.*', 'health.condition'], separate => true) > 0 AS granted;
SELECT grant_consent('3', 'share:acme', ARRAY['interest.*']) > 0 AS granted;
INSERT INTO profiles VALUES (1, 'golf', 'jazz', 'asthma'), (2, 'chess', 'rock', 'flu'), (3, 'judo', 'folk', NULL);

CREATE FUNCTION pg_temp.wide(p text) RETURNS TABLE (id int, sports text, music text, health text)
LANGUAGE plpgsql AS $$
BEGIN
	PERFORM set_config('profile_guard.purpose', p, true);
	RETURN QUERY SELECT t.id, t.sports, t.music, t.health FROM public.profiles t ORDER BY t.id;
END $$;
GRANT EXECUTE ON FUNCTION pg_temp.wide(text) TO regress_recip_app;

-- a cross-border purpose is unusable until assessed
SET ROLE regress_recip_app;
SELECT * FROM pg_temp.wide('share:acme');
SELECT pg_temp.err($$SELECT * FROM pg_temp.wide('share:globex')$$);
SELECT pg_temp.err($$SELECT * FROM pg_temp.wide('support:globex')$$);
RESET ROLE;
SELECT subject, tag, effective, reason FROM tag_state('share:globex') ORDER BY 1, 2;
SELECT clause, status, detail FROM assess() WHERE clause IN ('§8 (cross-border)', '§9 a (recipients)');
\i test/lib/rules_check.sql
SELECT * FROM pg_temp.rules_disagree();
SELECT * FROM pg_temp.bulk_differences();

-- assessed: only separately consented tags are served
SELECT record_assessment('share:globex', 'DPO Alice', 'Standard contract filed; transfer assessed');
SELECT record_assessment('support:globex', 'DPO Alice', 'Standard contract filed; transfer assessed');
SET ROLE regress_recip_app;
SELECT * FROM pg_temp.wide('share:globex');
SELECT * FROM pg_temp.wide('support:globex');
RESET ROLE;
SELECT subject, tag, effective, reason FROM tag_state('share:globex') ORDER BY 1, 2;
SELECT subject, tag, effective, reason FROM tag_state('support:globex') ORDER BY 1, 2;
SELECT subject, purpose, tag, reason FROM consent_status WHERE NOT effective AND purpose = 'share:globex' ORDER BY 1, 3;
SELECT clause, status, detail FROM assess() WHERE clause IN ('§8 (cross-border)', '§9 a (recipients)');
SELECT * FROM pg_temp.rules_disagree();
SELECT * FROM pg_temp.bulk_differences();

-- 3. acme moves abroad: share:acme gets a new version, which needs an
-- assessment and a separate consent; cached answers follow at once
SET ROLE regress_recip_app;
SELECT * FROM pg_temp.wide('share:acme');
RESET ROLE;
SELECT define_recipient('acme', 'DE', 'Acme Analytics, Berlin');
SELECT purpose, version, recipient FROM purpose_history WHERE purpose = 'share:acme' ORDER BY version;
SET ROLE regress_recip_app;
SELECT pg_temp.err($$SELECT * FROM pg_temp.wide('share:acme')$$);
RESET ROLE;
SELECT record_assessment('share:acme', 'DPO Alice', 'Transfer to Germany assessed');
SET ROLE regress_recip_app;
SELECT * FROM pg_temp.wide('share:acme');
RESET ROLE;
SELECT grant_consent('3', 'share:acme', ARRAY['interest.sports']) > 0 AS granted;
SET ROLE regress_recip_app;
SELECT * FROM pg_temp.wide('share:acme');
RESET ROLE;
SELECT grant_consent('3', 'share:acme', ARRAY['interest.sports'], separate => true) > 0 AS granted;
SET ROLE regress_recip_app;
SELECT * FROM pg_temp.wide('share:acme');
RESET ROLE;
SELECT * FROM pg_temp.rules_disagree();
SELECT * FROM pg_temp.bulk_differences();

-- 4. the home country moves to US: Globex is at home, its purposes no
-- longer cross-border (subject 1's consent counts); Acme (DE) stays abroad
ALTER SYSTEM SET profile_guard.home_country = 'US';
SELECT pg_reload_conf();
\set ECHO none
\o /dev/null
SELECT format('SELECT pg_temp.await_home_step(%L)', 'US') FROM generate_series(1, 100) \gexec
\o
\set ECHO all
SELECT current_setting('profile_guard.home_country') AS home_country;
SET ROLE regress_recip_app;
SELECT * FROM pg_temp.wide('share:globex');
SELECT * FROM pg_temp.wide('share:acme');
RESET ROLE;
SELECT * FROM pg_temp.rules_disagree();
SELECT * FROM pg_temp.bulk_differences();
SELECT clause, status, detail FROM assess() WHERE clause IN ('§8 (cross-border)', '§9 a (recipients)');
ALTER SYSTEM RESET profile_guard.home_country;
SELECT pg_reload_conf();
\set ECHO none
\o /dev/null
SELECT format('SELECT pg_temp.await_home_step(%L)', 'CN') FROM generate_series(1, 100) \gexec
\o
\set ECHO all
SELECT current_setting('profile_guard.home_country') AS home_country;
SET ROLE regress_recip_app;
SELECT * FROM pg_temp.wide('share:globex');
RESET ROLE;

-- 5. the subject report lists the recipients of its purposes, without values
SELECT jsonb_pretty(subject_report('2')->'recipients');
SELECT jsonb_pretty(subject_report('3')->'recipients');

-- a recipient named by a purpose stays
SELECT pg_temp.err($$DELETE FROM profile_guard.recipient WHERE recipient = 'acme'$$) LIKE '23503:%' AS catalog_refuses;

RESET ROLE;
DROP FUNCTION pg_temp.wide(text);
DROP TABLE profiles;
DROP EXTENSION profile_guard;
DROP ROLE regress_recip_app;
