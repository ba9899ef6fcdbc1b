-- Read path: the consent cache's own ways in.  Its catalog queries run with
-- the extension owner's rights, so a caller's search_path must not be able
-- to put the caller's operators in their way; and the integer fast path
-- (a dense array built after a bulk load) must match subjects exactly.
CREATE EXTENSION profile_guard;
SET client_min_messages = warning;

DO $setup$ BEGIN
PERFORM profile_guard.define_tag('interest.sports', 'preference');
PERFORM profile_guard.define_purpose('recommendation', 'recommend content', ARRAY['interest.*']);
END $setup$;
CREATE ROLE regress_cache_app LOGIN;
SELECT profile_guard.allow_purpose('regress_cache_app', 'recommendation');

-- 3000 subjects; every one but 42 consents
CREATE TABLE wide (id bigint PRIMARY KEY, sports text);
INSERT INTO wide SELECT i, 'sport ' || i FROM generate_series(1, 3000) i;
GRANT SELECT ON wide TO regress_cache_app;
SELECT profile_guard.protect('wide', 'id');
SELECT profile_guard.classify('wide', 'sports', 'interest.sports');
INSERT INTO profile_guard.subject (subject) SELECT i::text FROM generate_series(1, 3000) i;
INSERT INTO profile_guard.consent (subject, purpose, purpose_version, action, tags)
SELECT s, 'recommendation', 1, 'grant', ARRAY['interest.*']
FROM (SELECT i::text FROM generate_series(1, 3000) i WHERE i <> 42) AS x(s);
SELECT profile_guard._policy_changed();

-- the attacker's operator: would announce itself if it ever ran
CREATE SCHEMA regress_evil AUTHORIZATION regress_cache_app;
SET ROLE regress_cache_app;
CREATE FUNCTION regress_evil.spy_texteq(a text, b text) RETURNS boolean
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
	RAISE WARNING 'spy operator ran as %', current_user;
	RETURN a OPERATOR(pg_catalog.=) b;
END $$;
CREATE OPERATOR regress_evil.= (LEFTARG = text, RIGHTARG = text,
	FUNCTION = regress_evil.spy_texteq);
SET search_path = regress_evil, pg_catalog, public;
SET profile_guard.purpose = 'recommendation';

-- one-subject reads, then a scan that loads every subject in bulk: no
-- warning from the spy, and 42 stays hidden
SELECT id, sports FROM wide WHERE id = 1;
SELECT id, sports FROM wide WHERE id = 42;
SELECT count(*) AS rows_seen, count(sports) AS cells_seen,
	   bool_or(id = 42) AS saw_42 FROM wide;
-- after the bulk load, key look-ups use the dense array
SELECT id, sports FROM wide WHERE id IN (41, 42, 43, 3000, 3001, 0, -1) ORDER BY id;

-- a withdrawal reaches the answers through the next reload; '042' is a
-- subject of its own, not the canonical text of 42, so it must not make 42
-- visible (with it, the subjects are no longer all integers: no dense array)
RESET ROLE;
SELECT profile_guard.withdraw_consent('41', 'recommendation');
SELECT profile_guard.register_subject('042');
SELECT profile_guard.grant_consent('042', 'recommendation', ARRAY['interest.*']);
SET ROLE regress_cache_app;
SELECT id, sports FROM wide WHERE id IN (40, 41) ORDER BY id;
SELECT count(*) AS rows_seen, count(sports) AS cells_seen,
	   bool_or(id = 42) AS saw_42 FROM wide;
SELECT id, sports FROM wide WHERE id IN (41, 42, 43) ORDER BY id;
-- system columns are not tags: a ctid next to a tag column is fine
SELECT ctid IS NOT NULL AS has_ctid, sports FROM wide WHERE id = 40;
-- a statement that reads no tag column is row-gated too under a purpose (rule 2)
SELECT count(*) AS rows_untouched FROM wide;

RESET ROLE;
RESET search_path;

-- the age of majority is part of every answer: changing it (a superuser's
-- setting, kept across SET ROLE) drops the answers cached under the old one.
-- Subject 7 is 15; everybody but 42 consents to marketing.
DO $setup$ BEGIN
PERFORM profile_guard.define_purpose('marketing', 'personalised ads', ARRAY['interest.*'], marketing => true);
END $setup$;
SELECT profile_guard.allow_purpose('regress_cache_app', 'marketing');
UPDATE profile_guard.subject SET birth_date = current_date - interval '15 years 1 month'
 WHERE subject = '7';
INSERT INTO profile_guard.consent (subject, purpose, purpose_version, action, tags)
SELECT i::text, 'marketing', 1, 'grant', ARRAY['interest.*']
  FROM generate_series(1, 3000) i WHERE i <> 42;
SELECT profile_guard._policy_changed();
SET ROLE regress_cache_app;
SET profile_guard.purpose = 'marketing';
SELECT count(*) AS rows_seen, bool_or(id = 7) AS saw_minor FROM wide WHERE sports IS NOT NULL;
SELECT id, sports FROM wide WHERE id IN (6, 7) ORDER BY id;
RESET ROLE;
SET profile_guard.minor_age = 14;
SET ROLE regress_cache_app;
SELECT count(*) AS rows_seen, bool_or(id = 7) AS saw_minor FROM wide WHERE sports IS NOT NULL;
SELECT id, sports FROM wide WHERE id IN (6, 7) ORDER BY id;
RESET ROLE;
RESET profile_guard.minor_age;
SET ROLE regress_cache_app;
SELECT id, sports FROM wide WHERE id IN (6, 7) ORDER BY id;


-- a plan's shape never makes a statement fail: a gate that starts a bulk
-- load of consent answers inside a parallel plan (a large unguarded table
-- joined with the guarded one) keeps the answers to itself
RESET ROLE;
CREATE TABLE big_events (id bigint, user_id bigint);
INSERT INTO big_events SELECT i, (i % 3000) + 1 FROM generate_series(1, 60000) i;
ANALYZE big_events;
ANALYZE wide;
GRANT SELECT ON big_events TO regress_cache_app;
SELECT profile_guard._policy_changed();		-- published answers are stale now
\c - regress_cache_app
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
SET profile_guard.purpose = 'recommendation';
CREATE FUNCTION pg_temp.plan_is_parallel(q text) RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE plan json;
BEGIN
	EXECUTE 'EXPLAIN (FORMAT JSON, COSTS OFF) ' || q INTO plan;
	RETURN plan::text LIKE '%"Gather%';
END $$;
SELECT pg_temp.plan_is_parallel('SELECT count(w.sports) FROM big_events e JOIN wide w ON w.id = e.user_id') AS parallel_plan;
-- subject 42 never consented: its 20 events are hidden with its row
SELECT count(*) AS events, count(w.sports) AS sports_seen, bool_or(w.id = 42) AS saw_42
FROM big_events e JOIN wide w ON w.id = e.user_id;
\c - postgres


RESET ROLE;
DROP SCHEMA regress_evil CASCADE;
DROP TABLE wide, big_events;
DROP EXTENSION profile_guard CASCADE;
DROP ROLE regress_cache_app;
