-- The gates in parallel plans: the wide shape's gates are parallel safe, so
-- a read may be split over workers.  Each worker must serve, mask and count
-- exactly what a serial read does, and the leader must keep the plan to
-- itself whenever something only it knows decides the answers (consent or
-- keys changed by its own transaction).  A worker runs no statement of its
-- own on a guarded table.
CREATE EXTENSION profile_guard;
SET jit = off;
SET client_min_messages = warning;
\set SHOW_CONTEXT never

DO $setup$ BEGIN
PERFORM profile_guard.define_tag('interest.sports', 'preference');
PERFORM profile_guard.define_tag('health.condition', 'medical_health');
PERFORM profile_guard.define_purpose('recommendation', 'recommend content',
	ARRAY['interest.sports', 'health.condition']);
END $setup$;
CREATE ROLE regress_par_app LOGIN;
SELECT profile_guard.allow_purpose('regress_par_app', 'recommendation');

-- 3,000 subjects: every third consents to nothing, every other third to
-- sports only, the rest to sports and health
CREATE TABLE people (id bigint, sports text, health text);
GRANT SELECT ON people TO regress_par_app;
DO $setup$ BEGIN
PERFORM profile_guard.protect('people', 'id');
PERFORM profile_guard.classify('people', 'sports', 'interest.sports');
PERFORM profile_guard.classify('people', 'health', 'health.condition');
PERFORM profile_guard.register_subject(s::text) FROM generate_series(1, 3000) s;
PERFORM profile_guard.grant_consent(s::text, 'recommendation', ARRAY['interest.sports'])
	FROM generate_series(1, 3000) s WHERE s % 3 <> 0;
PERFORM profile_guard.grant_consent(s::text, 'recommendation', ARRAY['health.condition'], separate => true)
	FROM generate_series(1, 3000) s WHERE s % 3 = 2;
END $setup$;
INSERT INTO people SELECT s, CASE WHEN s % 3 <> 0 THEN 'sport-' || s END,
	CASE WHEN s % 3 = 2 THEN 'cond-' || s END FROM generate_series(1, 3000) s;
VACUUM ANALYZE people;

-- the gates go to workers whenever the planner plans them (on by default)
SHOW profile_guard.parallel_gates;

-- which gates may run in a worker
SELECT proname, proparallel FROM pg_proc
WHERE pronamespace = 'profile_guard'::regnamespace AND proname ~ '^_.*(gate|mask)$'
ORDER BY proname;

-- A statement run parallel (workers forced) and serial, as the app role
-- under the purpose: its rows, and what the usage counters gained each time,
-- must be the same.
CREATE FUNCTION pg_temp.usage_now() RETURNS text LANGUAGE sql AS $$
	SELECT string_agg(format('%s:%s/%s/%s', tag, cells_served, cells_masked, rows_hidden), ' ' ORDER BY tag)
	FROM profile_guard.usage WHERE role = 'regress_par_app'
$$;
CREATE FUNCTION pg_temp.both_ways(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	par text; ser text; u0 text; u1 text; u2 text;
BEGIN
	PERFORM profile_guard.usage_reset();
	u0 := pg_temp.usage_now();
	SET LOCAL ROLE regress_par_app;
	SET LOCAL profile_guard.purpose = 'recommendation';
	SET LOCAL parallel_setup_cost = 0;
	SET LOCAL parallel_tuple_cost = 0;
	SET LOCAL min_parallel_table_scan_size = 0;
	SET LOCAL max_parallel_workers_per_gather = 2;
	EXECUTE 'SELECT string_agg(r::text, '' '' ORDER BY r::text) FROM (' || q || ') r' INTO par;
	RESET ROLE;
	u1 := pg_temp.usage_now();
	PERFORM profile_guard.usage_reset();
	SET LOCAL ROLE regress_par_app;
	SET LOCAL max_parallel_workers_per_gather = 0;
	EXECUTE 'SELECT string_agg(r::text, '' '' ORDER BY r::text) FROM (' || q || ') r' INTO ser;
	RESET ROLE;
	u2 := pg_temp.usage_now();
	IF par IS DISTINCT FROM ser THEN
		RAISE EXCEPTION 'parallel rows % <> serial rows %', par, ser;
	END IF;
	IF u1 IS DISTINCT FROM u2 THEN
		RAISE EXCEPTION 'parallel counts % <> serial counts %', u1, u2;
	END IF;
	RETURN coalesce(u1, 'nothing counted');
END $$;

-- The same for a statement that fails in the leader once the workers have
-- read every row (the final aggregate divides by zero): the failed
-- statement's counts, parallel or serial, hold every row and cell read.
CREATE FUNCTION pg_temp.failing_both_ways(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	u1 text; u2 text;
BEGIN
	PERFORM profile_guard.usage_reset();
	BEGIN
		SET LOCAL ROLE regress_par_app;
		SET LOCAL profile_guard.purpose = 'recommendation';
		SET LOCAL parallel_setup_cost = 0;
		SET LOCAL parallel_tuple_cost = 0;
		SET LOCAL min_parallel_table_scan_size = 0;
		SET LOCAL max_parallel_workers_per_gather = 2;
		EXECUTE q;
	EXCEPTION WHEN division_by_zero THEN
		NULL;
	END;
	u1 := pg_temp.usage_now();
	PERFORM profile_guard.usage_reset();
	BEGIN
		SET LOCAL ROLE regress_par_app;
		SET LOCAL profile_guard.purpose = 'recommendation';
		SET LOCAL max_parallel_workers_per_gather = 0;
		EXECUTE q;
	EXCEPTION WHEN division_by_zero THEN
		NULL;
	END;
	u2 := pg_temp.usage_now();
	IF u1 IS DISTINCT FROM u2 THEN
		RAISE EXCEPTION 'parallel counts % <> serial counts %', u1, u2;
	END IF;
	RETURN coalesce(u1, 'nothing counted');
END $$;

-- the plans: the scan is shared by the workers, each taking its rows' gates
SET ROLE regress_par_app;
SET profile_guard.purpose = 'recommendation';
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
EXPLAIN (COSTS OFF) SELECT count(sports), count(health) FROM people;
EXPLAIN (COSTS OFF) SELECT id, sports FROM people WHERE sports LIKE 'sport-1%';
SELECT count(*) AS rows_seen, count(sports) AS sports, count(health) AS health,
	sum(length(health)) AS health_chars FROM people;
RESET ROLE;

-- the same rows and counts, parallel or serial: aggregates, rows, a WHERE
-- probe on a masked column, a join, a sub-query
SELECT pg_temp.both_ways('SELECT count(*), count(sports), count(health), max(health) FROM people');
SELECT pg_temp.both_ways('SELECT id, sports, health FROM people WHERE id % 100 = 1');
SELECT pg_temp.both_ways('SELECT count(*) FROM people WHERE health LIKE ''cond-2%''');
SELECT pg_temp.both_ways('SELECT count(*) FROM people a JOIN people b ON a.id = b.id + 1 WHERE b.health IS NOT NULL');
SELECT pg_temp.both_ways('SELECT count(*) FROM people WHERE id IN (SELECT id FROM people WHERE sports IS NULL)');

SELECT pg_temp.failing_both_ways('SELECT 1 / (count(sports) - 2000) FROM people');
-- whichever the setting, the same rows and counts
SET profile_guard.parallel_gates = off;
SELECT pg_temp.both_ways('SELECT count(*), count(sports), count(health), max(health) FROM people');
SET profile_guard.parallel_gates = on;

-- an error in a worker: the statement fails as it would serially
SET ROLE regress_par_app;
SET profile_guard.purpose = 'recommendation';
SET force_parallel_mode = on;
SELECT count(health), sum(1 / (id - 1501)) FROM people;
RESET force_parallel_mode;

-- consent withdrawn by the transaction itself: the leader reads alone, and
-- the withdrawal counts at once (subjects 2 and 5 consented to health)
RESET ROLE;
BEGIN;
SELECT profile_guard.withdraw_consent('2', 'recommendation', ARRAY['health.condition']);
SELECT profile_guard.withdraw_consent('5', 'recommendation');
SET LOCAL ROLE regress_par_app;
SELECT count(health) AS health, count(sports) AS sports,
	count(*) FILTER (WHERE id IN (2, 5)) AS rows_2_5 FROM people;
ROLLBACK;
-- and after the rollback, parallel again, as before
SET ROLE regress_par_app;
SELECT count(health) AS health, count(sports) AS sports,
	count(*) FILTER (WHERE id IN (2, 5)) AS rows_2_5 FROM people;
RESET ROLE;

-- a data key made by the transaction itself: the new row's value is read
BEGIN;
SELECT profile_guard.register_subject('3001');
SELECT profile_guard.grant_consent('3001', 'recommendation', ARRAY['interest.sports', 'health.condition'], separate => true);
INSERT INTO people VALUES (3001, 'sport-3001', 'cond-3001');
SET LOCAL ROLE regress_par_app;
SELECT count(health) AS health, max(health) FILTER (WHERE id = 3001) AS new_value FROM people;
ROLLBACK;

-- a PARALLEL SAFE function that reads the guarded table, run by a worker:
-- refused (only a leader audits a statement); PARALLEL RESTRICTED, it runs
CREATE FUNCTION sports_of(bigint) RETURNS text LANGUAGE sql STABLE PARALLEL SAFE
	AS 'SELECT sports FROM people WHERE id = $1';
GRANT EXECUTE ON FUNCTION sports_of(bigint) TO regress_par_app;
SET ROLE regress_par_app;
SET force_parallel_mode = on;
SELECT sports_of(g) FROM generate_series(1, 2) g;
RESET ROLE;
ALTER FUNCTION sports_of(bigint) PARALLEL RESTRICTED;
SET ROLE regress_par_app;
SELECT sports_of(g) FROM generate_series(1, 2) g;
RESET force_parallel_mode;
RESET ROLE;

-- a cursor's plan may be parallel; it runs in the leader, with the same rows
SET ROLE regress_par_app;
BEGIN;
DECLARE c CURSOR FOR SELECT id, health FROM people WHERE id BETWEEN 1 AND 6 ORDER BY id;
FETCH 3 FROM c;
FETCH 3 FROM c;
COMMIT;
RESET ROLE;

RESET parallel_setup_cost;
RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;
RESET max_parallel_workers_per_gather;
RESET profile_guard.purpose;
DROP FUNCTION sports_of(bigint);
DROP TABLE people;
DROP EXTENSION profile_guard CASCADE;
DROP ROLE regress_par_app;
