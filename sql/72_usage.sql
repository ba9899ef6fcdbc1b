-- The usage view: shared-memory counters per role, purpose and tag
-- (statements, cells served, cells masked, rows hidden, denials, last use).
CREATE EXTENSION profile_guard;
SET client_min_messages = warning;

DO $setup$ BEGIN
PERFORM profile_guard.define_tag('interest.sports', 'preference');
PERFORM profile_guard.define_tag('interest.music', 'preference');
PERFORM profile_guard.define_purpose('recommendation', 'recommend content', ARRAY['interest.*']);
PERFORM profile_guard.define_purpose('ads', 'personalised ads', ARRAY['interest.*']);
END $setup$;

CREATE ROLE regress_app LOGIN;
CREATE ROLE regress_usage_admin LOGIN IN ROLE profile_guard_admin;
CREATE ROLE regress_root LOGIN BYPASSRLS;
SELECT profile_guard.allow_purpose('regress_app', 'recommendation');

-- 10 subjects: 1-5 consent to sports and music, 6-7 to sports only, 8-10
-- to nothing for recommendation (their tags were collected for ads)
CREATE TABLE profiles (id int PRIMARY KEY, name text, sports text, music text);
GRANT SELECT ON profiles TO regress_app, regress_root;
DO $setup$ BEGIN
PERFORM profile_guard.protect('profiles', 'id');
PERFORM profile_guard.classify('profiles', 'sports', 'interest.sports');
PERFORM profile_guard.classify('profiles', 'music', 'interest.music');
PERFORM profile_guard.register_subject(s::text) FROM generate_series(1, 10) s;
PERFORM profile_guard.grant_consent(s::text, 'recommendation', ARRAY['interest.*'])
	FROM generate_series(1, 5) s;
PERFORM profile_guard.grant_consent(s::text, 'recommendation', ARRAY['interest.sports'])
	FROM generate_series(6, 7) s;
PERFORM profile_guard.grant_consent(s::text, 'ads', ARRAY['interest.*'])
	FROM generate_series(6, 10) s;
END $setup$;
INSERT INTO profiles SELECT s, 'name' || s, 'sport' || s, 'music' || s
FROM generate_series(1, 10) s;

-- start from nothing: the counters are shared by every session
SELECT profile_guard.usage_reset();
SELECT count(*) FROM profile_guard.usage;

SET ROLE regress_app;
SET profile_guard.purpose = 'recommendation';
SELECT id, sports, music FROM profiles ORDER BY id;	-- 10 seen, 3 hidden, music masked for 6, 7
SELECT sports FROM profiles WHERE id = 9;			-- 1 hidden
SELECT count(*) FROM profiles;						-- reads no tag: row-gated, not counted
SELECT music FROM profiles WHERE id IN (1, 6);		-- 1 served, 1 masked
RESET profile_guard.purpose;
SELECT music FROM profiles WHERE id = 1;			-- a denial: no purpose
SET profile_guard.purpose = 'ads';
SELECT music FROM profiles WHERE id = 1;			-- a denial: not allowed
RESET profile_guard.purpose;
-- the counters are not for applications
SELECT * FROM profile_guard.usage;
SELECT profile_guard.usage_reset();
RESET ROLE;

-- a bypassing role: counted under no purpose, with no cell counts
SET ROLE regress_root;
SELECT id, sports FROM profiles WHERE id = 1;
RESET ROLE;

-- the counters outlive the session
\c -
SET ROLE regress_usage_admin;
SELECT role, purpose, tag, statements, cells_served, cells_masked, rows_hidden,
	   denials, last_used > now() - interval '1 hour' AS recent
FROM profile_guard.usage
ORDER BY role, purpose NULLS FIRST, tag;

-- an error mid-statement counts what was read before it
SET ROLE regress_app;
SET profile_guard.purpose = 'recommendation';
SELECT sports, 1 / (id - 1) FROM profiles;
SELECT sports FROM profiles WHERE id = 2;
RESET ROLE;
SELECT tag, statements, cells_served, cells_masked, rows_hidden, denials
FROM profile_guard.usage WHERE role = 'regress_app' AND purpose = 'recommendation'
ORDER BY tag;

-- an administrator may reset
SET ROLE regress_usage_admin;
SELECT profile_guard.usage_reset();
SELECT count(*) FROM profile_guard.usage;
RESET ROLE;

DROP TABLE profiles;
DROP EXTENSION profile_guard CASCADE;
DROP ROLE regress_app, regress_usage_admin, regress_root;
