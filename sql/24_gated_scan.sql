-- The gated scan: a sequential scan of a guarded table that takes the row
-- gate's and the cell gates' decisions itself (profile_guard.gated_scan).
-- It must serve, mask, count and refuse exactly what the gate functions
-- do, and step aside wherever it could not.
CREATE EXTENSION profile_guard;
SET jit = off;
SET client_min_messages = warning;

DO $setup$ BEGIN
PERFORM profile_guard.define_tag('interest.sports', 'preference');
PERFORM profile_guard.define_tag('interest.music', 'preference');
PERFORM profile_guard.define_tag('behavior.visits', 'behavior');
PERFORM profile_guard.define_tag('health.condition', 'medical_health');
PERFORM profile_guard.define_purpose('recommendation', 'recommend content',
	ARRAY['interest.*', 'behavior.visits', 'health.condition']);
PERFORM profile_guard.define_purpose('ads', 'personalised ads', ARRAY['interest.music']);
END $setup$;

CREATE ROLE regress_gs_app LOGIN;
CREATE ROLE regress_gs_bypass LOGIN BYPASSRLS;
SELECT profile_guard.allow_purpose('regress_gs_app', 'recommendation');
SELECT profile_guard.allow_purpose('regress_gs_app', 'ads');

-- a dropped column first; the subject is not the first column; subject 12
-- has two rows and one row has no subject at all (written before protect())
CREATE TABLE events (gone int, n int, subject bigint, sports text, music text,
	visits int, health text);
ALTER TABLE events DROP COLUMN gone;
INSERT INTO events VALUES
	(1, 10, 'football', 'jazz', 1, 'asthma'),
	(2, 11, 'tennis', NULL, 2, 'gout'),
	(3, 12, 'golf', 'pop', 3, NULL),
	(4, 12, NULL, 'folk', NULL, NULL),
	(5, 13, 'chess', 'soul', 5, NULL),
	(6, 14, 'rowing', 'punk', 6, NULL),
	(7, 15, 'sailing', 'blues', 7, NULL),
	(8, 16, 'diving', 'funk', 8, NULL),
	(9, 17, 'boxing', 'metal', 9, NULL),
	(10, NULL, 'judo', 'disco', 10, NULL);
GRANT SELECT ON events TO regress_gs_app, regress_gs_bypass;
GRANT UPDATE (n) ON events TO regress_gs_app;
DO $setup$ BEGIN
PERFORM profile_guard.protect('events', 'subject');
PERFORM profile_guard.classify('events', 'sports', 'interest.sports');
PERFORM profile_guard.classify('events', 'music', 'interest.music');
PERFORM profile_guard.classify('events', 'visits', 'behavior.visits');
PERFORM profile_guard.classify('events', 'health', 'health.condition');
PERFORM profile_guard.register_subject(s::text) FROM generate_series(10, 16) s;
-- 10, 11: everything; 12: sports and visits; 13: music, blocked later;
-- 14: interests, then opted out of marketing (recommendation still sees
-- them); 15: nothing; 16: everything but health; 17: unregistered
PERFORM profile_guard.grant_consent(s::text, 'recommendation', ARRAY['interest.*', 'behavior.visits'])
	FROM unnest(ARRAY[10, 11, 16]) s;
PERFORM profile_guard.grant_consent(s::text, 'recommendation', ARRAY['health.condition'], separate => true)
	FROM unnest(ARRAY[10, 11]) s;
PERFORM profile_guard.grant_consent('12', 'recommendation', ARRAY['interest.sports', 'behavior.visits']);
PERFORM profile_guard.grant_consent('13', 'recommendation', ARRAY['interest.music']);
PERFORM profile_guard.grant_consent('14', 'recommendation', ARRAY['interest.*']);
PERFORM profile_guard.opt_out('14');
PERFORM profile_guard.grant_consent(s::text, 'ads', ARRAY['interest.music'])
	FROM unnest(ARRAY[11, 12]) s;
END $setup$;
SELECT profile_guard.block_tag('13', 'interest.music');
VACUUM ANALYZE events;

-- The same statement, gated scan on and off: the rows (as text, sorted)
-- must be the same.  The statement runs as it is planned (a cursor loop),
-- under the caller's role and purpose.
CREATE FUNCTION rows_both_ways(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	r record;
	gated text[] := '{}';
	called text[] := '{}';
BEGIN
	PERFORM set_config('profile_guard.gated_scan', 'on', true);
	FOR r IN EXECUTE q LOOP gated := gated || r::text; END LOOP;
	PERFORM set_config('profile_guard.gated_scan', 'off', true);
	FOR r IN EXECUTE q LOOP called := called || r::text; END LOOP;
	PERFORM set_config('profile_guard.gated_scan', 'on', true);
	SELECT array_agg(x ORDER BY x) INTO gated FROM unnest(gated) x;
	SELECT array_agg(x ORDER BY x) INTO called FROM unnest(called) x;
	IF gated IS DISTINCT FROM called THEN
		RAISE EXCEPTION 'gated scan % <> gate functions %', gated, called;
	END IF;
	RETURN array_to_string(gated, ' ');
END $$;
GRANT EXECUTE ON FUNCTION rows_both_ways(text) TO regress_gs_app;
CREATE VIEW events_view AS SELECT n, subject, music FROM events;
GRANT SELECT ON events_view TO regress_gs_app;
CREATE FUNCTION music_rows() RETURNS TABLE (n int, music text) LANGUAGE sql STABLE
	AS 'SELECT n, music FROM events';
GRANT EXECUTE ON FUNCTION music_rows() TO regress_gs_app;

SHOW profile_guard.gated_scan;

SET ROLE regress_gs_app;
SET profile_guard.purpose = 'recommendation';
SET max_parallel_workers_per_gather = 0;

-- where it stands in: a plain aggregate over the scan, and a scan whose
-- own target list reads the tags
EXPLAIN (COSTS OFF) SELECT sum(visits), count(music) FROM events;
EXPLAIN (COSTS OFF) SELECT n, sports, music, health FROM events ORDER BY n;
-- the rows: each subject's consented tags (11 has no music stored, 12 has
-- two rows, 14 no visits consent); 13 (music blocked), 15, 17 and the row
-- without a subject are hidden; health (sensitive) is decrypted by its
-- own gate beside the gated scan
SELECT n, subject, sports, music, visits, health FROM events ORDER BY n;
SELECT sum(visits), count(music), count(sports), count(*) FROM events;
SET profile_guard.gated_scan = off;
SELECT n, subject, sports, music, visits, health FROM events ORDER BY n;
SELECT sum(visits), count(music), count(sports), count(*) FROM events;
RESET profile_guard.gated_scan;

-- where it steps aside: a filter (the gate functions stay); a tag read
-- twice (its cell gates stay calls, the row gate is the scan's); a whole
-- row, a system column, a row lock (the gate functions stay)
EXPLAIN (COSTS OFF) SELECT n FROM events WHERE music = 'jazz';
EXPLAIN (COSTS OFF) SELECT count(music), max(music) FROM events;
EXPLAIN (COSTS OFF) SELECT e FROM events e;
EXPLAIN (COSTS OFF) SELECT ctid, music FROM events;
EXPLAIN (COSTS OFF) SELECT n, music FROM events FOR SHARE;
-- the subject alone: the gate a read without tags gets (count(*))
EXPLAIN (COSTS OFF) SELECT count(*) FROM events;

-- every path a statement can take reads the same cells either way
SELECT rows_both_ways('SELECT n, sports, music, visits FROM events');
SELECT rows_both_ways('SELECT sum(visits) AS v, count(music) AS m, string_agg(sports, '','' ORDER BY sports) AS s FROM events');
SELECT rows_both_ways('SELECT music, count(*) FROM events GROUP BY music');
SELECT rows_both_ways('SELECT n FROM events WHERE music IS NULL');
SELECT rows_both_ways('SELECT * FROM events_view');
SELECT rows_both_ways('WITH c AS (SELECT n, music FROM events) SELECT * FROM c');
SELECT rows_both_ways('SELECT * FROM (SELECT n, music FROM events OFFSET 0) s');
SELECT rows_both_ways('SELECT * FROM music_rows()');
SELECT rows_both_ways('SELECT row_to_json(e) FROM events e');
SELECT rows_both_ways('SELECT e::text FROM events e');
SELECT rows_both_ways('SELECT a.n, b.music FROM events a JOIN events b ON a.n = b.n');
SELECT rows_both_ways('SELECT i, (SELECT count(music) FROM events WHERE i > 0) FROM generate_series(1, 3) i');
SELECT rows_both_ways('SELECT n, CASE WHEN n > 2 THEN music END AS m, coalesce(sports, music) AS c FROM events');
SELECT rows_both_ways('SELECT count(*) FILTER (WHERE n > 2) AS c, sum(visits) FILTER (WHERE music IS NULL) AS v, count(sports) AS s FROM events');
SELECT rows_both_ways('SELECT mode() WITHIN GROUP (ORDER BY music) AS m, percentile_disc(0.5) WITHIN GROUP (ORDER BY visits) AS v FROM events');
SELECT rows_both_ways('SELECT sum(visits) FROM events GROUP BY GROUPING SETS ((), (sports))');
SELECT rows_both_ways('SELECT n, sum(visits) OVER (), music FROM events');
SELECT rows_both_ways('SELECT DISTINCT ON (subject) subject, music FROM events ORDER BY subject, n');
SELECT rows_both_ways('SELECT n, music FROM events UNION SELECT n, sports FROM events');

-- a rescanned gated scan (the sub-select runs once per outer row)
EXPLAIN (COSTS OFF) SELECT i, (SELECT count(music) FROM events WHERE i > 0) FROM generate_series(1, 3) i;
SELECT i, (SELECT count(music) FROM events WHERE i > 0) FROM generate_series(1, 3) i;

-- a scrollable cursor read backwards
BEGIN;
DECLARE c SCROLL CURSOR FOR SELECT n, music FROM events;
FETCH 3 FROM c;
FETCH BACKWARD 2 FROM c;
FETCH ALL FROM c;
FETCH BACKWARD ALL FROM c;
COMMIT;

-- COPY, both forms
COPY events TO STDOUT;
COPY (SELECT n, music FROM events) TO STDOUT;

-- CREATE TABLE AS, INSERT … SELECT and a PL/pgSQL loop copy masked cells
CREATE TEMP TABLE music_copy AS SELECT n, music FROM events;
INSERT INTO music_copy SELECT n + 100, music FROM events;
SELECT n, music FROM music_copy ORDER BY n;
CREATE FUNCTION pg_temp.music_list() RETURNS text LANGUAGE plpgsql AS $$
DECLARE r record; acc text := '';
BEGIN
	FOR r IN SELECT n, music FROM events ORDER BY n LOOP
		acc := acc || r.n || '=' || coalesce(r.music, '-') || ' ';
	END LOOP;
	RETURN acc;
END $$;
SELECT pg_temp.music_list();
DROP FUNCTION pg_temp.music_list();
DROP TABLE music_copy;

-- a prepared statement follows consent and purpose changes
PREPARE counts AS SELECT count(sports), count(music) FROM events;
EXECUTE counts;
RESET ROLE;
SELECT profile_guard.withdraw_consent('16', 'recommendation', ARRAY['interest.sports']);
SET ROLE regress_gs_app;
EXECUTE counts;
SET profile_guard.purpose = 'ads';
EXECUTE counts;
SET profile_guard.purpose = 'recommendation';

-- the audit line is the same either way: rows seen and hidden, cells
-- served and masked per tag, in the same order
RESET ROLE;
SET profile_guard.audit = 'all';
SET client_min_messages = log;
SET ROLE regress_gs_app;
SELECT sum(visits), count(music) FROM events;
SELECT n, sports, music FROM events ORDER BY n;
SET profile_guard.gated_scan = off;
SELECT sum(visits), count(music) FROM events;
SELECT n, sports, music FROM events ORDER BY n;
RESET profile_guard.gated_scan;
-- a cell gate that the interpreter may skip (a CASE branch, COALESCE's
-- later arguments, AND and OR, an aggregate's FILTER) is called, and
-- counted, for some rows only: it stays a call, the scan masks the others
EXPLAIN (COSTS OFF) SELECT n, CASE WHEN n > 8 THEN music END AS music, sports FROM events;
EXPLAIN (COSTS OFF) SELECT count(*) FILTER (WHERE n > 2), sum(visits) FILTER (WHERE n > 2), count(sports) FROM events;
SELECT n, CASE WHEN n > 8 THEN music END AS music, sports FROM events ORDER BY n;
SELECT count(*) FILTER (WHERE n > 2), sum(visits) FILTER (WHERE n > 2), count(sports) FROM events;
SELECT n, coalesce(sports, music), n > 3 AND visits IS NULL AS late FROM events ORDER BY n;
SET profile_guard.gated_scan = off;
SELECT n, CASE WHEN n > 8 THEN music END AS music, sports FROM events ORDER BY n;
SELECT count(*) FILTER (WHERE n > 2), sum(visits) FILTER (WHERE n > 2), count(sports) FROM events;
SELECT n, coalesce(sports, music), n > 3 AND visits IS NULL AS late FROM events ORDER BY n;
RESET profile_guard.gated_scan;
RESET ROLE;
SET client_min_messages = warning;
RESET profile_guard.audit;

-- a hashed aggregate evaluates its aggregates' arguments for every row,
-- also for a row whose group it spills, and again when it reads the
-- spilled rows back; an aggregate of grouping sets evaluates them once for
-- each sort of its rows: the gate calls of their arguments are evaluated
-- in their input instead (the gated scan masks the general tag; the
-- sensitive gate is a call in the scan's output), so each cell is gated
-- and counted once.  The hashed aggregates below spill (spills() says so
-- from their EXPLAIN ANALYZE, run by the superuser that owns it: an
-- application role may not EXPLAIN ANALYZE a read of a guarded table);
-- each audit line counts 3,000 cells a tag.
CREATE TABLE visit_log (n int, subject bigint, visits int, health text);
INSERT INTO visit_log SELECT i, 10, i, 'condition ' || (i % 7) FROM generate_series(1, 3000) i;
GRANT SELECT ON visit_log TO regress_gs_app;
DO $setup$ BEGIN
PERFORM profile_guard.protect('visit_log', 'subject');
PERFORM profile_guard.classify('visit_log', 'visits', 'behavior.visits');
PERFORM profile_guard.classify('visit_log', 'health', 'health.condition');
END $setup$;
VACUUM ANALYZE visit_log;
-- the same rows in a partitioned table: the aggregate's input is an Append,
-- which cannot compute the gates, so a Result above it does
CREATE TABLE visit_parts (n int, subject bigint, visits int) PARTITION BY RANGE (n);
CREATE TABLE visit_parts_1 PARTITION OF visit_parts FOR VALUES FROM (1) TO (1501);
CREATE TABLE visit_parts_2 PARTITION OF visit_parts FOR VALUES FROM (1501) TO (3001);
INSERT INTO visit_parts SELECT n, subject, visits FROM visit_log;
GRANT SELECT ON visit_parts TO regress_gs_app;
DO $setup$ BEGIN
PERFORM profile_guard.protect('visit_parts', 'subject');
PERFORM profile_guard.classify('visit_parts', 'visits', 'behavior.visits');
END $setup$;
VACUUM ANALYZE visit_parts;
-- a set-returning function in GROUP BY puts a ProjectSet under the hashed
-- aggregate (12 has not consented to music)
CREATE TABLE srf_music (subject bigint, sports text, music text);
INSERT INTO srf_music VALUES (10, 'football', 'jazz'), (12, 'golf', 'pop');
GRANT SELECT ON srf_music TO regress_gs_app;
DO $setup$ BEGIN
PERFORM profile_guard.protect('srf_music', 'subject');
PERFORM profile_guard.classify('srf_music', 'sports', 'interest.sports');
PERFORM profile_guard.classify('srf_music', 'music', 'interest.music');
END $setup$;
VACUUM ANALYZE srf_music;
CREATE VIEW visit_sums AS SELECT n, sum(visits) AS s FROM visit_log GROUP BY n;
GRANT SELECT ON visit_sums TO regress_gs_app;
CREATE FUNCTION spills(q text) RETURNS boolean LANGUAGE plpgsql SECURITY DEFINER AS $$
DECLARE
	line text;
BEGIN
	FOR line IN EXECUTE 'EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) ' || q LOOP
		IF line ~ 'Batches: ([2-9]|[1-9][0-9]+)' THEN
			RETURN true;
		END IF;
	END LOOP;
	RETURN false;
END $$;
SET ROLE regress_gs_app;
SET work_mem = '64kB';
SET hash_mem_multiplier = 1;
SET enable_sort = off;
EXPLAIN (COSTS OFF) SELECT n, sum(visits), count(health) FROM visit_log GROUP BY n;
EXPLAIN (COSTS OFF) SELECT n, sum(visits) FROM visit_parts GROUP BY n;
EXPLAIN (VERBOSE, COSTS OFF) SELECT n, sum(visits) FILTER (WHERE n % 2 = 0) FROM visit_parts GROUP BY n;
EXPLAIN (COSTS OFF) SELECT n, sum(visits) FROM visit_log GROUP BY GROUPING SETS ((n), (-n));
SELECT spills('SELECT n, sum(visits), count(health) FROM visit_log GROUP BY n') AS log_spills,
	spills('SELECT n, sum(visits) FROM visit_parts GROUP BY n') AS parts_spill;
SELECT rows_both_ways('SELECT count(*), sum(s), sum(h) FROM (SELECT n, sum(visits) AS s, count(health) AS h FROM visit_log GROUP BY n) g');
-- an input that computes a set-returning function (ProjectSet) cannot
-- project either: the Result above it gates the input's output columns,
-- not the expressions it computed them from; the music of 12 (not
-- consented) stays masked, as in the sorted aggregate's plan, also under a
-- FILTER, and the cells of hidden rows stay out
EXPLAIN (VERBOSE, COSTS OFF) SELECT generate_series(10::bigint, 10) g, count(music) FROM events GROUP BY 1;
CREATE TEMP VIEW srf_groups AS
	SELECT g, (SELECT string_agg(m, ',' ORDER BY m) FROM unnest(a) m) AS music, c, f
	  FROM (SELECT generate_series(10::bigint, 11) g, array_agg(music) a, count(music) c,
				   count(music) FILTER (WHERE n > 1) f
			  FROM events GROUP BY 1) x;
CREATE TEMP VIEW srf_rows AS
	SELECT n, generate_series(10::bigint, 10) g, string_agg(music, ',') AS music
	  FROM events GROUP BY 1, 2;
SELECT * FROM srf_groups ORDER BY g;
SELECT * FROM srf_rows ORDER BY n;
SELECT generate_series(10::bigint, 10) g, string_agg(music, ',') FROM srf_music GROUP BY 1;
SET enable_sort = on;
SET enable_hashagg = off;
SELECT * FROM srf_groups ORDER BY g;
SELECT * FROM srf_rows ORDER BY n;
SELECT generate_series(10::bigint, 10) g, string_agg(music, ',') FROM srf_music GROUP BY 1;
RESET enable_hashagg;
SET enable_sort = off;
DROP VIEW srf_groups, srf_rows;
RESET ROLE;
SET profile_guard.audit = 'all';
SET client_min_messages = log;
SET ROLE regress_gs_app;
SELECT count(*), sum(s), sum(h) FROM (SELECT n, sum(visits) AS s, count(health) AS h FROM visit_log GROUP BY n) g;
SELECT count(*), sum(s) FROM (SELECT n, sum(visits) AS s FROM visit_parts GROUP BY n) g;
-- the same aggregate through a view, a CTE and a prepared statement
WITH g AS (SELECT * FROM visit_sums) SELECT count(*), sum(s) FROM g;
PREPARE visit_sums_q AS SELECT count(*), sum(s) FROM (SELECT n, sum(visits) AS s FROM visit_log GROUP BY n) g;
EXECUTE visit_sums_q;
DEALLOCATE visit_sums_q;
-- under a FILTER: the input computes CASE WHEN filter THEN gate END (1,500
-- cells); a FILTER that reads a tag column gates it for every row, its
-- aggregate's arguments stay as they are (count(*) has none)
SELECT count(*), sum(s) FROM (SELECT n, sum(visits) FILTER (WHERE n % 2 = 0) AS s FROM visit_log GROUP BY n) g;
SELECT count(*), sum(s) FROM (SELECT n, count(*) FILTER (WHERE visits > 1000) AS s FROM visit_log GROUP BY n) g;
-- grouping sets: the rows are sorted and aggregated twice
SELECT count(*), sum(s) FROM (SELECT n, sum(visits) AS s FROM visit_log GROUP BY GROUPING SETS ((n), (-n))) g;
-- a window aggregate over a moving frame: each row enters and leaves it
SELECT count(*), sum(w) FROM (SELECT sum(visits) OVER (ORDER BY n ROWS BETWEEN 2 PRECEDING AND 2 FOLLOWING) AS w FROM visit_log) x;
SELECT count(*), sum(w) FROM (SELECT max(visits) OVER (ORDER BY n ROWS BETWEEN 2 PRECEDING AND 2 FOLLOWING) AS w FROM visit_log) x;
SELECT count(*), sum(w) FROM (SELECT sum(visits) FILTER (WHERE n % 2 = 0) OVER (ORDER BY n ROWS BETWEEN 2 PRECEDING AND 2 FOLLOWING) AS w FROM visit_log) x;
SET profile_guard.gated_scan = off;
SELECT count(*), sum(s), sum(h) FROM (SELECT n, sum(visits) AS s, count(health) AS h FROM visit_log GROUP BY n) g;
RESET profile_guard.gated_scan;
RESET ROLE;
SET client_min_messages = warning;
RESET profile_guard.audit;
RESET work_mem;
RESET hash_mem_multiplier;
RESET enable_sort;
DROP VIEW visit_sums;
DROP TABLE visit_parts, srf_music;
DROP FUNCTION spills(text);

-- JIT-compiled expressions read the gated scan's (virtual) tuples alike
SET ROLE regress_gs_app;
SET jit = on;
SET jit_above_cost = 0;
SET jit_inline_above_cost = 0;
SET jit_optimize_above_cost = 0;
SELECT rows_both_ways('SELECT n, subject, sports, music, visits, health FROM events');
SELECT rows_both_ways('SELECT sum(visits) AS v, count(music) AS m, count(sports) AS s FROM events');
RESET jit_above_cost;
RESET jit_inline_above_cost;
RESET jit_optimize_above_cost;
SET jit = off;
RESET ROLE;

-- a role that bypasses the gates gets the plain scan and the stored values
SET ROLE regress_gs_bypass;
EXPLAIN (COSTS OFF) SELECT sum(visits), count(music) FROM events;
SELECT count(music), count(health) FROM events;
RESET ROLE;

-- with parallel plans allowed the gated scan is shared by the workers
-- (the parallel gated scan; the aggregate's cell gates run above it)
SET ROLE regress_gs_app;
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
EXPLAIN (COSTS OFF) SELECT sum(visits), count(music) FROM events;
SELECT sum(visits), count(music) FROM events;
RESET ROLE;

-- the gate functions are looked up once a backend (until a function or a
-- schema changes), and the reader's USAGE right on the extension's schema
-- is still checked at every statement that gets gates
SET ROLE regress_gs_app;
SELECT count(sports) FROM events;
RESET ROLE;
REVOKE USAGE ON SCHEMA profile_guard FROM PUBLIC;
SET ROLE regress_gs_app;
SELECT count(sports) FROM events;
RESET ROLE;
GRANT USAGE ON SCHEMA profile_guard TO PUBLIC;
-- a function made in the schema drops the memo; the gates still answer
CREATE FUNCTION profile_guard.regress_scratch() RETURNS int LANGUAGE sql AS 'SELECT 1';
SET ROLE regress_gs_app;
SELECT count(sports) FROM events;
RESET ROLE;
DROP FUNCTION profile_guard.regress_scratch();

-- what the gates allocate for a row is freed with the row: a subject of a
-- type without a text form of its own (numeric) is printed for each
-- look-up, and a scan of 50,000 rows, all but two hidden, keeps the
-- executor's memory where it was after the first row
CREATE TABLE numbered (subject numeric, sports text);
INSERT INTO numbered SELECT s, 'golf' FROM generate_series(100001, 150000) s;
GRANT SELECT ON numbered TO regress_gs_app;
DO $setup$ BEGIN
PERFORM profile_guard.protect('numbered', 'subject');
PERFORM profile_guard.classify('numbered', 'sports', 'interest.sports');
PERFORM profile_guard.register_subject(s) FROM unnest(ARRAY['100001', '150000']) s;
PERFORM profile_guard.grant_consent(s, 'recommendation', ARRAY['interest.sports'])
	FROM unnest(ARRAY['100001', '150000']) s;
END $setup$;
BEGIN;
SET ROLE regress_gs_app;
SET profile_guard.purpose = 'recommendation';
EXPLAIN (COSTS OFF) SELECT subject, sports FROM numbered;
DECLARE numbered_rows CURSOR FOR SELECT subject, sports FROM numbered;
FETCH 1 FROM numbered_rows;
RESET ROLE;
CREATE TEMP TABLE executor_memory AS
	SELECT sum(total_bytes) AS bytes FROM pg_backend_memory_contexts WHERE name = 'ExecutorState';
SET ROLE regress_gs_app;
FETCH ALL FROM numbered_rows;
RESET ROLE;
SELECT sum(total_bytes) - (SELECT bytes FROM executor_memory) < 1000000 AS memory_kept
FROM pg_backend_memory_contexts WHERE name = 'ExecutorState';
COMMIT;
DROP TABLE numbered;

DROP FUNCTION rows_both_ways(text);
DROP FUNCTION music_rows();
DROP VIEW events_view;
DROP TABLE events;
DROP TABLE visit_log;
DROP EXTENSION profile_guard CASCADE;
DROP ROLE regress_gs_app;
DROP ROLE regress_gs_bypass;
