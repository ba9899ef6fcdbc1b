-- Audit trail: one server-log line per statement that uses tags
-- (profile_guard.audit = all), refusals (denials), and reads by roles that
-- bypass the gates (always).  The test runner sends the trail to the
-- server log (profile_guard.audit_destination = log), where the lines are
-- LOG messages; this suite shows them to the client with
-- client_min_messages = log.  t/230_audit_file.pl tests the files.
CREATE EXTENSION profile_guard;
SET client_min_messages = warning;

DO $setup$ BEGIN
PERFORM profile_guard.define_tag('interest.sports', 'preference');
PERFORM profile_guard.define_tag('interest.music', 'preference');
PERFORM profile_guard.define_tag('health.condition', 'medical_health');
PERFORM profile_guard.define_purpose('recommendation', 'recommend content',
	ARRAY['interest.*', 'health.condition']);
PERFORM profile_guard.define_purpose('recommendation', 'recommend content, version 2',
	ARRAY['interest.*', 'health.condition']);
PERFORM profile_guard.define_purpose('ads', 'personalised ads', ARRAY['interest.*']);
END $setup$;

CREATE ROLE regress_app LOGIN;
CREATE ROLE regress_root LOGIN BYPASSRLS;
SELECT profile_guard.allow_purpose('regress_app', 'recommendation');

-- 10 subjects: for recommendation, 1-5 consent to sports and music, 6-7 to
-- sports only, 8-10 to nothing (rows hidden: 3), 1-2 also to health
-- (separately); 6-10 consent to ads, which regress_app may not use (and
-- which lets their music be collected)
CREATE TABLE profiles (id int PRIMARY KEY, name text, sports text, music text, health text);
GRANT SELECT, INSERT, UPDATE ON profiles TO regress_app;
GRANT SELECT ON profiles TO regress_root;
DO $setup$ BEGIN
PERFORM profile_guard.protect('profiles', 'id');
PERFORM profile_guard.classify('profiles', 'sports', 'interest.sports');
PERFORM profile_guard.classify('profiles', 'music', 'interest.music');
PERFORM profile_guard.classify('profiles', 'health', 'health.condition');
PERFORM profile_guard.register_subject(s::text) FROM generate_series(1, 11) s;
PERFORM profile_guard.grant_consent(s::text, 'recommendation', ARRAY['interest.*'])
	FROM generate_series(1, 5) s;
PERFORM profile_guard.grant_consent(s::text, 'recommendation', ARRAY['interest.sports'])
	FROM generate_series(6, 7) s;
PERFORM profile_guard.grant_consent(s::text, 'recommendation', ARRAY['health.condition'], separate => true)
	FROM generate_series(1, 2) s;
PERFORM profile_guard.grant_consent(s::text, 'ads', ARRAY['interest.*'])
	FROM generate_series(6, 10) s;
END $setup$;
INSERT INTO profiles
SELECT s, 'name' || s, 'sport' || s, 'music' || s,
	   CASE WHEN s <= 2 THEN 'cond' || s END
FROM generate_series(1, 10) s;

CREATE FUNCTION music_of(i int) RETURNS text LANGUAGE plpgsql STABLE
	AS $$ BEGIN RETURN (SELECT music FROM profiles WHERE id = i); END $$;
CREATE FUNCTION try_music(i int) RETURNS text LANGUAGE plpgsql
	AS $$ BEGIN RETURN (SELECT music FROM profiles WHERE id = i);
		  EXCEPTION WHEN insufficient_privilege THEN RETURN 'refused'; END $$;
CREATE PROCEDURE read_across_transactions() LANGUAGE plpgsql AS $$
BEGIN
	PERFORM sports FROM profiles WHERE id = 1;
	COMMIT;
	PERFORM sports FROM profiles WHERE id IN (2, 8);
	ROLLBACK;
	PERFORM sports FROM profiles WHERE id IN (3, 8, 9);
END $$;
GRANT EXECUTE ON FUNCTION music_of(int), try_music(int) TO regress_app;

-- the settings
SHOW profile_guard.audit;
SHOW profile_guard.audit_destination;
SET ROLE regress_app;
SET profile_guard.audit = 'all';		-- superuser only
RESET ROLE;

SET profile_guard.audit = 'off';
SET client_min_messages = log;
SET ROLE regress_app;
SET profile_guard.purpose = 'recommendation';
-- off: no line
SELECT count(sports) FROM profiles;
RESET ROLE;

SET profile_guard.audit = 'all';
SET ROLE regress_app;
-- all: 10 rows seen, 3 hidden; sports served 7; music served 5, masked 2
-- (subjects 6 and 7); health served 2, masked 0 (NULL cells do not count)
SELECT id, sports, music, health FROM profiles ORDER BY id;
-- non-tag columns use no tag: no line (rows still gated under the purpose)
SELECT count(*) FROM profiles;
-- a key look-up: one row seen
SELECT music FROM profiles WHERE id = 6;
-- a filter on a tag column gates it too
SELECT id FROM profiles WHERE music LIKE 'music%' ORDER BY id;
-- whole-row reference: every tag column through the row mask
SELECT p FROM profiles p WHERE id IN (1, 6, 9) ORDER BY id;
-- UPDATE that reads a tag
UPDATE profiles SET name = name WHERE sports IS NOT NULL;
-- nested: the statement inside the function has its own line, level 1;
-- the outer statement reads no guarded table and has none
SELECT music_of(1), music_of(6), music_of(9);
-- a cursor: one line when it ends, with every row fetched
BEGIN;
DECLARE c CURSOR FOR SELECT id, sports FROM profiles ORDER BY id;
FETCH 2 FROM c;
FETCH ALL FROM c;
CLOSE c;
COMMIT;
-- a procedure that commits and rolls back: a line per statement
CALL read_across_transactions();
-- an error mid-statement: its line (completed false, with what it read
-- before the error) comes at the next statement, whose counts are its own
SELECT id, sports, 1 / (id - 4) FROM profiles ORDER BY id;
SELECT sports FROM profiles WHERE id = 4;
-- a cursor in a transaction that fails: likewise
BEGIN;
DECLARE c CURSOR FOR SELECT id, sports FROM profiles ORDER BY id;
FETCH 2 FROM c;
SELECT 1 / 0;
ROLLBACK;
SELECT sports FROM profiles WHERE id = 5;
RESET ROLE;

-- denials: only refusals
SET profile_guard.audit = 'denials';
SET ROLE regress_app;
SELECT sports FROM profiles WHERE id = 1;
RESET profile_guard.purpose;
SELECT sports FROM profiles WHERE id = 1;
SET profile_guard.purpose = 'ads';
SELECT music FROM profiles WHERE id = 1;
SET profile_guard.purpose = 'nonesuch';
SELECT music FROM profiles WHERE id = 1;
-- collection without consent (subject 11 consented to nothing)
INSERT INTO profiles (id, name, sports) VALUES (11, 'x', 'sport11');
-- a refusal inside a function is noted once
SET profile_guard.purpose = 'ads';
SELECT music_of(1);
-- a refusal caught by the function is noted all the same
SELECT try_music(1);
RESET profile_guard.purpose;
RESET ROLE;

-- bypass roles: always logged, even with audit = off; no gates, no counts
SET profile_guard.audit = 'off';
SET ROLE regress_root;
SELECT id, length(sports) FROM profiles WHERE id = 1;
SELECT count(*) FROM profiles;		-- no tag read: no line
RESET ROLE;
SELECT id, sports FROM profiles WHERE id = 2;
-- EXPLAIN without ANALYZE runs nothing
SET ROLE regress_root;
EXPLAIN (COSTS OFF) SELECT sports FROM profiles;
RESET ROLE;

-- long shape: per tag, the tag rows served and hidden
SET client_min_messages = warning;
CREATE TABLE tag_rows (uid int, tag text, value text);
GRANT SELECT ON tag_rows TO regress_app;
SELECT profile_guard.protect('tag_rows', 'uid', tag_column => 'tag', value_column => 'value');
INSERT INTO tag_rows SELECT s, 'interest.sports', 'sport' || s FROM generate_series(1, 10) s;
INSERT INTO tag_rows SELECT s, 'interest.music', 'music' || s FROM generate_series(1, 10) s;
SET profile_guard.audit = 'all';
SET client_min_messages = log;
SET ROLE regress_app;
SET profile_guard.purpose = 'recommendation';
-- sports: 7 served, 3 hidden; music: 5 served, 5 hidden; 20 rows seen
SELECT count(*) FILTER (WHERE tag = 'interest.sports') AS sports,
	   count(*) FILTER (WHERE tag = 'interest.music') AS music
FROM tag_rows;
RESET ROLE;

-- a line names the relation by its name at the time: renamed, moved to
-- another schema, that schema renamed
SET client_min_messages = warning;
ALTER TABLE tag_rows RENAME TO tag_rows_renamed;
CREATE SCHEMA audit_named;
GRANT USAGE ON SCHEMA audit_named TO regress_app;
ALTER TABLE tag_rows_renamed SET SCHEMA audit_named;
SET client_min_messages = log;
SET ROLE regress_app;
SELECT count(*) FROM audit_named.tag_rows_renamed WHERE uid = 1;
RESET ROLE;
SET client_min_messages = warning;
ALTER SCHEMA audit_named RENAME TO audit_renamed;
SET client_min_messages = log;
SET ROLE regress_app;
SELECT count(*) FROM audit_renamed.tag_rows_renamed WHERE uid = 1;
RESET ROLE;

-- a statement's audit state and its purpose check are freed when it ends,
-- also where it starts in memory that lasts for the whole of the query
-- that runs it: a SQL function's (not inlined: it has a FROM), called for
-- each of 20,000 rows keeps as much memory after the last row as after
-- the 1,000th
SET client_min_messages = warning;
RESET profile_guard.audit;
CREATE FUNCTION sports_of(i int) RETURNS text LANGUAGE sql STABLE
	AS 'SELECT sports FROM profiles WHERE id = i';
CREATE FUNCTION sql_function_memory() RETURNS bigint LANGUAGE sql SECURITY DEFINER
	SET search_path = pg_catalog
	AS $$SELECT coalesce(sum(total_bytes), 0) FROM pg_backend_memory_contexts WHERE name = 'SQL function'$$;
GRANT EXECUTE ON FUNCTION sports_of(int), sql_function_memory() TO regress_app;
SET ROLE regress_app;
SET profile_guard.purpose = 'recommendation';
SELECT count(s) AS sports_served,
	   max(m) FILTER (WHERE i = 20000) - max(m) FILTER (WHERE i = 1000) < 200000 AS memory_kept
FROM (SELECT i, sports_of(i % 10 + 1) AS s,
			 CASE WHEN i IN (1000, 20000) THEN sql_function_memory() END AS m
	  FROM generate_series(1, 20000) i) q;
RESET profile_guard.purpose;
RESET ROLE;
DROP FUNCTION sports_of(int), sql_function_memory();

SET client_min_messages = warning;
DROP FUNCTION music_of(int), try_music(int);
DROP PROCEDURE read_across_transactions();
DROP TABLE profiles, audit_renamed.tag_rows_renamed;
DROP SCHEMA audit_renamed;
DROP EXTENSION profile_guard CASCADE;
DROP ROLE regress_app, regress_root;
