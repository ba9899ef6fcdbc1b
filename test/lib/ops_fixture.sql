-- test/lib/ops_fixture.sql — the policy and data the operational scenarios
-- (coexist, standby, pooler) read: a wide guarded table with general and
-- sensitive tags and subjects in every consent state.  Run as a superuser in
-- a fresh database of a cluster that preloads profile_guard.
--
-- Sensitive values all contain the marker "SECRET-" so that a scenario can
-- grep for plaintext where it must not be.
--
-- Run it in a session of its own, after CREATE EXTENSION profile_guard in
-- another session: a session that created the extension while a
-- ddl_command_end event trigger exists (pgaudit has one) keeps a stale
-- guard cache (t/020_stale_cache_after_create_extension.pl).
SET client_min_messages = warning;

DO $setup$ BEGIN
PERFORM profile_guard.define_tag('interest.sports', 'preference');
PERFORM profile_guard.define_tag('interest.music', 'preference');
PERFORM profile_guard.define_tag('health.condition', 'medical_health');
PERFORM profile_guard.define_purpose('rec', 'recommendations',
	ARRAY['interest.*', 'health.condition']);
PERFORM profile_guard.define_purpose('ads', 'personalised ads', ARRAY['interest.*'], marketing => true);
END $setup$;

CREATE ROLE regress_ops_app LOGIN;
CREATE ROLE regress_ops_other LOGIN;
SELECT profile_guard.allow_purpose('regress_ops_app', 'rec');
SELECT profile_guard.allow_purpose('regress_ops_app', 'ads');

CREATE TABLE profiles (id int PRIMARY KEY, name text, sports text, music text, health text);
GRANT SELECT, INSERT, UPDATE, DELETE ON profiles TO regress_ops_app, regress_ops_other;
SELECT profile_guard.protect('profiles', 'id');
SELECT profile_guard.classify('profiles', 'sports', 'interest.sports');
SELECT profile_guard.classify('profiles', 'music', 'interest.music');
SELECT profile_guard.classify('profiles', 'health', 'health.condition');

-- 1: everything, health with separate consent
-- 2: sports; health consented but not separately (so never served)
-- 3: music only
-- 4: registered, no consent
-- 5: marketing only
-- 6: rec everything, withdrawn later by the scenarios that need it
SELECT profile_guard.register_subject(s::text) FROM generate_series(1, 6) s;
SELECT profile_guard.grant_consent('1', 'rec', ARRAY['interest.*']);
SELECT profile_guard.grant_consent('1', 'rec', ARRAY['health.condition'], separate => true);
SELECT profile_guard.grant_consent('2', 'rec', ARRAY['interest.sports', 'health.condition']);
SELECT profile_guard.grant_consent('3', 'rec', ARRAY['interest.music']);
SELECT profile_guard.grant_consent('5', 'ads', ARRAY['interest.*']);
SELECT profile_guard.grant_consent('6', 'rec', ARRAY['interest.*']);
SELECT profile_guard.grant_consent('6', 'rec', ARRAY['health.condition'], separate => true);

-- collected only where consented (the trigger refuses anything else)
INSERT INTO profiles VALUES
	(1, 'ann', 'football', 'jazz', 'SECRET-asthma-1'),
	(2, 'bob', 'tennis', NULL, NULL),
	(3, 'cat', NULL, 'pop', NULL),
	(4, 'dan', NULL, NULL, NULL),
	(5, 'eve', 'golf', 'soul', NULL),
	(6, 'fay', 'chess', 'folk', 'SECRET-diabetes-6');
