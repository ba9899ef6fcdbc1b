--
-- 59_recipient_use: what was provided to recipients, per person (rule 10a),
-- and the data sources of purposes (§6 b-c).  Under a purpose that names a
-- recipient, every cell served is counted for its subject, by every read
-- path, in parallel plans too; the counts reach recipient_use at commit,
-- under the subject's keyed hash, and subject_report() lists them without
-- values.  A read-only transaction cannot serve such a purpose.
--
CREATE EXTENSION profile_guard;
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
-- the cells recorded per subject (1..4) and purpose, in one line, once the
-- log is merged
CREATE FUNCTION pg_temp.used() RETURNS text LANGUAGE sql AS $$
	SELECT profile_guard._merge_recipient_use();
	SELECT coalesce(string_agg(format('%s:%s=%s', s, u.purpose, u.cells), ' ' ORDER BY s, u.purpose), '-')
	FROM generate_series(1, 4) s
	JOIN (SELECT subject_hash, purpose, sum(cells) AS cells FROM profile_guard.recipient_use
		  GROUP BY 1, 2) u ON u.subject_hash = profile_guard._subject_hash(s::text)
$$;

SELECT define_tag('interest.sports', 'preference');
SELECT define_tag('health.condition', 'medical_health');
SELECT define_recipient('acme', description => 'Acme Analytics, Shanghai');
SELECT define_purpose('share:acme', 'share interests with Acme', ARRAY['interest.*', 'health.condition'],
					  recipient => 'acme');
SELECT define_purpose('recommendation', 'recommend content', ARRAY['interest.*', 'health.condition']);
CREATE ROLE regress_use_app LOGIN;
SELECT allow_purpose('regress_use_app', p) FROM unnest(ARRAY['share:acme', 'recommendation']) p;
CREATE TABLE profiles (id int PRIMARY KEY, sports text, health text);
GRANT SELECT ON profiles TO regress_use_app;
SELECT protect('profiles', 'id');
SELECT classify('profiles', 'sports', 'interest.sports');
SELECT classify('profiles', 'health', 'health.condition');
SELECT register_subject(s::text) FROM generate_series(1, 4) s;
-- 1 and 2 consent to both tags for both purposes, 3 to sports only, 4 to
-- sports for recommendation only
SELECT grant_consent(s::text, p, ARRAY['interest.*', 'health.condition'], separate => true) > 0 AS granted
FROM generate_series(1, 2) s, unnest(ARRAY['share:acme', 'recommendation']) p;
SELECT grant_consent('3', p, ARRAY['interest.*']) > 0 AS granted
FROM unnest(ARRAY['share:acme', 'recommendation']) p;
SELECT grant_consent('4', 'recommendation', ARRAY['interest.*']) > 0 AS granted;
INSERT INTO profiles VALUES (1, 'golf', 'asthma'), (2, 'chess', 'flu'), (3, 'judo', NULL), (4, 'polo', NULL);
-- the record is the extension's: not readable by others, writable by nobody
SELECT has_table_privilege('regress_use_app', 'profile_guard.recipient_use', 'SELECT') AS app_reads,
	   has_table_privilege('profile_guard_admin', 'profile_guard.recipient_use', 'SELECT') AS admin_reads,
	   has_table_privilege('profile_guard_admin', 'profile_guard.recipient_use', 'INSERT') AS admin_writes;

-- 1. a purpose without a recipient records nothing
SET ROLE regress_use_app;
SET profile_guard.purpose = 'recommendation';
SELECT * FROM profiles ORDER BY id;
RESET ROLE;
SELECT pg_temp.used();

-- 2. a recipient's purpose: each cell served, per subject (4: none served)
SET ROLE regress_use_app;
SET profile_guard.purpose = 'share:acme';
SELECT * FROM profiles ORDER BY id;
RESET ROLE;
-- each statement appended one row to the log: the subjects and their cells
SELECT purpose, recipient, month = date_trunc('month', now() AT TIME ZONE 'UTC')::date AS this_month,
	   (SELECT string_agg(x.s || '=' || x.c, ' ' ORDER BY x.s) FROM unnest(subjects, cells) x(s, c)) AS cells
FROM recipient_use_log;
SELECT pg_temp.used();
SELECT count(*) AS log_rows_after_merge FROM recipient_use_log;
-- the record holds no identifier and no value, and the month in UTC
SELECT count(*) AS rows, count(*) FILTER (WHERE subject_hash ~ '^[0-9a-f]{64}$') AS hashed,
	   bool_and(month = date_trunc('month', now() AT TIME ZONE 'UTC')::date) AS this_month,
	   bool_and(recipient = 'acme') AS to_acme
FROM recipient_use;
SELECT count(*) AS names_a_subject_or_value FROM recipient_use u
WHERE u::text ~ '(golf|chess|judo|asthma|flu)' OR u.subject_hash IN ('1', '2', '3');
TRUNCATE recipient_use;
-- nobody but the extension reads the log, which names subjects
SELECT has_table_privilege('profile_guard_admin', 'profile_guard.recipient_use_log', 'SELECT') AS admin_reads_log;

-- 3. every read path is counted: 1 and 2 two cells each, 3 one (sports)
CREATE VIEW acme_view AS SELECT id, sports, health FROM profiles;
GRANT SELECT ON acme_view TO regress_use_app;
CREATE FUNCTION pg_temp.sql_read() RETURNS SETOF text LANGUAGE sql AS
	$$ SELECT sports || '/' || health FROM public.profiles $$;
CREATE FUNCTION pg_temp.plpgsql_read() RETURNS SETOF text LANGUAGE plpgsql AS
	$$ BEGIN RETURN QUERY SELECT sports || '/' || coalesce(health, '-') FROM public.profiles; END $$;
GRANT EXECUTE ON FUNCTION pg_temp.sql_read(), pg_temp.plpgsql_read() TO regress_use_app;
SET ROLE regress_use_app;
SELECT count(*) FROM acme_view WHERE sports IS NOT NULL OR health IS NOT NULL;
RESET ROLE;
SELECT pg_temp.used() AS "view";
SET ROLE regress_use_app;
WITH c AS (SELECT sports, health FROM profiles) SELECT count(sports) + count(health) AS cells FROM c;
SELECT count(*) FROM (SELECT sports, health FROM profiles) s WHERE s.sports IS NOT NULL;
RESET ROLE;
SELECT pg_temp.used() AS "cte, subquery";
SET ROLE regress_use_app;
SELECT count(*) FROM pg_temp.sql_read();
SELECT count(*) FROM pg_temp.plpgsql_read();
RESET ROLE;
SELECT pg_temp.used() AS "sql, plpgsql functions";
SET ROLE regress_use_app;
PREPARE p AS SELECT sports, health FROM profiles ORDER BY id;
EXECUTE p;
DEALLOCATE p;
BEGIN;
DECLARE c CURSOR FOR SELECT sports, health FROM profiles ORDER BY id;
FETCH 2 FROM c;
FETCH ALL FROM c;
COMMIT;
RESET ROLE;
SELECT pg_temp.used() AS "prepared, cursor";
SET ROLE regress_use_app;
SELECT row_to_json(t)::text FROM profiles t ORDER BY id;
SELECT t::text FROM profiles t ORDER BY id;
RESET ROLE;
SELECT pg_temp.used() AS "whole rows";
SET ROLE regress_use_app;
COPY profiles TO stdout;
COPY (SELECT id, health FROM profiles ORDER BY id) TO stdout;
RESET ROLE;
SELECT pg_temp.used() AS "copy";
SET ROLE regress_use_app;
CREATE TEMP TABLE copied AS SELECT id, sports, health FROM profiles;
INSERT INTO copied SELECT id, sports, health FROM profiles;
SELECT count(sports) AS sports, count(health) AS health FROM copied;
RESET ROLE;
SELECT pg_temp.used() AS "ctas, insert select";
-- a probe serves the cells it compares (1, 2, 3), not the masked one (4)
SET ROLE regress_use_app;
SELECT count(*) FROM profiles WHERE sports = 'polo';
RESET ROLE;
SELECT pg_temp.used() AS "probe";

-- 4. parallel plans: the wide shape's gates are parallel safe, but under a
-- purpose that records its cells the leader runs the plan alone, so every
-- cell is served in the backend that records it (the suite runs again
-- under force_parallel_mode = regress)
SELECT count(*) AS gates_parallel_safe FROM pg_proc
WHERE pronamespace = 'profile_guard'::regnamespace AND proname ~ '^_.*(gate|mask)$' AND proparallel = 's';

-- 5. transactions: counts add up within one; an abort keeps what was
-- served, written with the next commit; a savepoint rolled back too
TRUNCATE recipient_use;
SET ROLE regress_use_app;
BEGIN;
SELECT count(sports) FROM profiles;
SELECT count(sports) FROM profiles;
COMMIT;
BEGIN;
SELECT count(health) FROM profiles;
ROLLBACK;
RESET ROLE;
SELECT pg_temp.used() AS "after commit and rollback";
SET ROLE regress_use_app;
BEGIN;
SAVEPOINT s;
SELECT count(health) FROM profiles WHERE id = 3;
SELECT count(health) FROM profiles WHERE id = 1;
ROLLBACK TO SAVEPOINT s;
COMMIT;
RESET ROLE;
SELECT pg_temp.used() AS "after the next commit";
-- a transaction that served such cells cannot be prepared: its record
-- would be forgotten here while another session may roll it back
SET ROLE regress_use_app;
BEGIN;
SELECT count(sports) FROM profiles WHERE id = 1;
PREPARE TRANSACTION 'regress_recipient_use';
SELECT count(*) AS prepared FROM pg_prepared_xacts WHERE gid = 'regress_recipient_use';
BEGIN;
SELECT 1 AS next_commit;
COMMIT;
RESET ROLE;
SELECT pg_temp.used() AS "after the refused prepare and the next commit";

-- 6. a read-only transaction cannot serve such a purpose; others it can
SET ROLE regress_use_app;
BEGIN READ ONLY;
SELECT pg_temp.err($$SELECT sports FROM public.profiles$$);
ROLLBACK;
BEGIN READ ONLY;
SET LOCAL profile_guard.purpose = 'recommendation';
SELECT count(sports) FROM profiles;
ROLLBACK;
-- reading no tag serves no cell
BEGIN READ ONLY;
SELECT count(*) FROM profiles;
ROLLBACK;
-- a transaction made read-only after serving such cells cannot commit;
-- what it served is written with the next commit (RESET ROLE's)
RESET ROLE;
SELECT pg_temp.used() AS "before";
SET ROLE regress_use_app;
BEGIN;
SELECT sports FROM profiles WHERE id = 2;
SET TRANSACTION READ ONLY;
COMMIT;
RESET profile_guard.purpose;
RESET ROLE;
SELECT pg_temp.used() AS "after the next commit";

-- 7. subject_report lists the recipients, counts and months, no values
SELECT jsonb_pretty(jsonb_set(subject_report('1')->'provided_to', '{0,first_month}', '"(month)"')
					#- '{0,last_month}') AS provided_to;
SELECT (subject_report('1')->'provided_to'->0->>'first_month') = to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM') AS this_month;
SELECT subject_report('4')->'provided_to' AS subject_4;
-- what is not merged yet is reported too
SET ROLE regress_use_app;
SET profile_guard.purpose = 'share:acme';
SELECT sports FROM profiles WHERE id = 1;
RESET profile_guard.purpose;
RESET ROLE;
SELECT count(*) AS log_rows FROM recipient_use_log;
SELECT subject_report('1')->'provided_to'->0->'cells' AS cells_1;

-- the sweep merges the log; a forgotten person's record stays, by hash only
SELECT request_erasure('2') > 0 AS requested;
SELECT count(*) > 0 AS swept FROM sweep();
SELECT count(*) AS log_rows FROM recipient_use_log;
SELECT pg_temp.used() AS "after the sweep";
SELECT r->'forgotten' AS forgotten, r->'provided_to'->0->'cells' AS cells_2
FROM subject_report('2') r;

-- 8. data sources of a purpose (§6 b-c)
SELECT define_data_source('app_events', 'own_collection', NULL, DATE '2020-01-01');
SELECT define_data_source('vendor_x', 'purchase', 'contract 2024-17');
CREATE FUNCTION pg_temp.sources() RETURNS text LANGUAGE sql AS $$
	SELECT coalesce(string_agg(purpose || ':' || source, ' ' ORDER BY purpose, source), '-')
	FROM profile_guard.purpose_data_source
$$;
SELECT define_purpose('churn_model', 'predict churn', ARRAY['interest.*'], automated_decision => true);
SELECT clause, status, detail FROM assess() WHERE clause = '§6 (data sources)';
SELECT set_purpose_data_sources('churn_model', ARRAY['app_events', 'vendor_x', 'vendor_x']);
SELECT pg_temp.sources();
SELECT clause, status, detail FROM assess() WHERE clause = '§6 (data sources)';
SELECT set_purpose_data_sources('churn_model', ARRAY['app_events']);
SELECT pg_temp.sources();
SELECT clause, status FROM assess() WHERE clause = '§6 (data sources)';
-- bad input changes nothing
SELECT pg_temp.err($$SELECT profile_guard.set_purpose_data_sources(NULL, ARRAY['app_events'])$$);
SELECT pg_temp.err($$SELECT profile_guard.set_purpose_data_sources('nope', ARRAY['app_events'])$$);
SELECT pg_temp.err($$SELECT profile_guard.set_purpose_data_sources('churn_model', NULL)$$);
SELECT pg_temp.err($$SELECT profile_guard.set_purpose_data_sources('churn_model', ARRAY['app_events', NULL])$$);
SELECT pg_temp.err($$SELECT profile_guard.set_purpose_data_sources('churn_model', ARRAY['vendor_y', ''])$$);
SET ROLE regress_use_app;
SELECT pg_temp.err($$SELECT profile_guard.set_purpose_data_sources('churn_model', '{}')$$);
RESET ROLE;
SELECT pg_temp.sources();
-- the tables' own sources are checked by the same rules
SELECT pg_temp.err($$SELECT profile_guard.set_data_sources('profiles', ARRAY['vendor_y'])$$);
SELECT set_purpose_data_sources('churn_model', '{}');
SELECT pg_temp.sources();

-- an abort, then the session ends: written in a transaction of its own as
-- the session ends
SELECT profile_guard._merge_recipient_use() >= 0 AS merged;
SET ROLE regress_use_app;
SET profile_guard.purpose = 'share:acme';
BEGIN;
SELECT sports FROM profiles WHERE id = 3;
ROLLBACK;
\c
SET search_path = public, profile_guard;
SET client_min_messages = warning;
DO $$
BEGIN
	FOR i IN 1..300 LOOP
		EXIT WHEN EXISTS (SELECT 1 FROM profile_guard.recipient_use_log);
		PERFORM pg_sleep(0.1);
	END LOOP;
END $$;
SELECT purpose, subjects, cells FROM recipient_use_log;

DROP EXTENSION profile_guard CASCADE;
DROP VIEW acme_view;
DROP TABLE profiles;
DROP ROLE regress_use_app;
