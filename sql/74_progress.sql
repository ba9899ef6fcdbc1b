-- The view profile_guard.progress: who may read it, what a command reports,
-- that a nested command does not replace the outer one, and that a command
-- is forgotten at its end, at its transaction's end and on error.  (The
-- isolation spec progress.spec watches classify, rotate_master_key and a
-- sweep from another session while they run.)
CREATE EXTENSION profile_guard;
SET client_min_messages = warning;

CREATE FUNCTION pg_temp.try(q text) RETURNS text LANGUAGE plpgsql AS $f$
BEGIN
	EXECUTE q;
	RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
	RETURN 'refused: ' || SQLSTATE;
END $f$;

CREATE ROLE regress_progress_nobody LOGIN;
CREATE ROLE regress_progress_monitor LOGIN IN ROLE pg_monitor;
CREATE ROLE regress_progress_admin LOGIN IN ROLE profile_guard_admin;

-- nothing runs: no row for this backend
SELECT count(*) FROM profile_guard.progress WHERE pid = pg_backend_pid();

-- a command, its relation and units done, its end (within one transaction:
-- a command reported from SQL ends with it)
CREATE TABLE progress_t (id int);
BEGIN;
SELECT profile_guard._progress_start('encrypt', 'progress_t'::regclass, 'encrypting column x', 40);
SELECT profile_guard._progress_update(NULL, 10);
SELECT datname = current_database() AS this_database, role = current_user AS own_role, command, relation, phase,
	   done, total, unit, percent
FROM profile_guard.progress WHERE pid = pg_backend_pid();
-- a nested command is not reported and does not replace the outer one
SELECT profile_guard._progress_start('sweep', NULL, 'erasing', NULL) AS nested_reported;
SELECT command, done FROM profile_guard.progress WHERE pid = pg_backend_pid();
SELECT profile_guard._progress_end();
SELECT count(*) FROM profile_guard.progress WHERE pid = pg_backend_pid();
COMMIT;

-- forgotten at the end of its transaction, committed or not
BEGIN;
SELECT profile_guard._progress_start('decrypt', NULL, NULL, NULL);
SELECT command, relation, phase, total, percent FROM profile_guard.progress WHERE pid = pg_backend_pid();
COMMIT;
SELECT count(*) FROM profile_guard.progress WHERE pid = pg_backend_pid();
BEGIN;
SELECT profile_guard._progress_start('consent_build', NULL, 'evaluating', 5);
SELECT 1 / 0;
ROLLBACK;
SELECT count(*) FROM profile_guard.progress WHERE pid = pg_backend_pid();

-- bad input changes nothing
SELECT pg_temp.try($$SELECT profile_guard._progress_start('vacuum', NULL, NULL, NULL)$$);
SELECT pg_temp.try($$SELECT profile_guard._progress_start(NULL, NULL, NULL, NULL)$$);
SELECT count(*) FROM profile_guard.progress WHERE pid = pg_backend_pid();

-- who may read it: profile_guard_admin and pg_monitor; nobody may report
SET ROLE regress_progress_nobody;
SELECT pg_temp.try($$SELECT * FROM profile_guard.progress$$);
SELECT pg_temp.try($$SELECT * FROM profile_guard._progress()$$);
SELECT pg_temp.try($$SELECT profile_guard._progress_start('sweep', NULL, NULL, NULL)$$);
SELECT pg_temp.try($$SELECT profile_guard._progress_end()$$);
SET ROLE regress_progress_monitor;
SELECT pg_temp.try($$SELECT * FROM profile_guard.progress$$);
SELECT pg_temp.try($$SELECT profile_guard._progress_update(NULL, 1)$$);
SET ROLE regress_progress_admin;
SELECT pg_temp.try($$SELECT * FROM profile_guard.progress$$);
RESET ROLE;

-- classify and a sweep leave nothing behind when they end
DO $setup$ BEGIN
PERFORM profile_guard.define_tag('health.progress', 'medical_health');
PERFORM profile_guard.define_purpose('progress_care', 'care', ARRAY['health.progress']);
PERFORM profile_guard.register_subject(s::text) FROM generate_series(1, 3) s;
PERFORM profile_guard.grant_consent(s::text, 'progress_care', ARRAY['health.progress'], separate => true)
	FROM generate_series(1, 3) s;
END $setup$;
CREATE TABLE progress_p (id int PRIMARY KEY, note text);
INSERT INTO progress_p SELECT s, 'note ' || s FROM generate_series(1, 3) s;
SELECT profile_guard.protect('progress_p', 'id');
SELECT profile_guard.classify('progress_p', 'note', 'health.progress');
SELECT count(*) FROM profile_guard.progress WHERE pid = pg_backend_pid();
SELECT count(*) > 0 AS swept FROM (SELECT profile_guard.request_erasure('3')) r, profile_guard.sweep();
SELECT count(*) FROM profile_guard.progress WHERE pid = pg_backend_pid();

DROP TABLE progress_t, progress_p;
DROP EXTENSION profile_guard CASCADE;
DROP ROLE regress_progress_nobody, regress_progress_monitor, regress_progress_admin;
