#!/usr/bin/env bash
# test/scenario/coexist.sh — profile_guard next to pg_stat_statements and
# pgaudit in shared_preload_libraries, in both orders:
#
#   - the gate enforces the same: the same gated rows and cells under a
#     purpose (sensitive values decrypted where consented), refusal without a
#     purpose, raw ciphertext for a superuser; through plain queries, a
#     prepared statement, a cursor and COPY TO;
#   - pg_stat_statements (track = all, track_utility = on) never holds a
#     sensitive plaintext value or the master key in its query texts, after
#     sensitive values were written (INSERT, UPDATE, prepared INSERT, COPY FROM,
#     classify() of a column holding plaintext) and read.
#
# Starts its own clusters (the library list is fixed at server start); needs
# the PostgreSQL installation of PGBIN with profile_guard installed and
# pgaudit available (test/lib/ops.sh copies it from postgresql-15-pgaudit).
set -euo pipefail
cd "$(dirname "$0")/../.."
. test/lib/ops.sh
trap ops_stop_all EXIT

ops_install_pgaudit
DB=regress_coexist

# what the application sees, whatever the library order (see ops_fixture.sql)
EXPECTED_REC="1|ann|football|jazz|SECRET-asthma-1
2|bob|tennis||
3|cat||pop|
6|fay|chess|folk|SECRET-diabetes-6
7|gus|hockey||SECRET-gout-7
8|hal|||SECRET-flu-8
9|ida|||SECRET-copy-9"
EXPECTED_ADS="5|eve|golf|soul|"

app_reads() {
	# one session as the application role; each block prints a marker line
	qa -d "$DB" -U regress_ops_app <<'SQL'
\echo -- rec
SET profile_guard.purpose = 'rec';
SELECT id, name, sports, music, health FROM profiles ORDER BY id;
\echo -- filter
SELECT count(*) FROM profiles WHERE health LIKE 'SECRET-%';
SELECT count(*) FROM profiles WHERE health = 'SECRET-flu-8';
\echo -- prepared
PREPARE p(int) AS SELECT health FROM profiles WHERE id = $1;
EXECUTE p(1);
EXECUTE p(2);
\echo -- cursor
BEGIN;
DECLARE c CURSOR FOR SELECT id, health FROM profiles ORDER BY id;
FETCH 2 FROM c;
COMMIT;
\echo -- copy
COPY profiles TO STDOUT;
\echo -- ads
SET profile_guard.purpose = 'ads';
SELECT id, name, sports, music, health FROM profiles ORDER BY id;
EXECUTE p(1);
SQL
}

expected_app_reads() {
	cat <<EOF
-- rec
$EXPECTED_REC
-- filter
5
1
-- prepared
SECRET-asthma-1

-- cursor
1|SECRET-asthma-1
2|
-- copy
$(tr '|' '\t' <<< "$EXPECTED_REC" | sed 's/\t\t/\t\\N\t/g; s/\t\t/\t\\N\t/g; s/\t$/\t\\N/')
-- ads
$EXPECTED_ADS

EOF
}

run_order() {
	local order=$1 label=$2 out err key
	echo "== shared_preload_libraries = '$order'"
	PG_PRELOAD=$order ops_start C "coexist_$label" \
		"pg_stat_statements.track = all" "pg_stat_statements.track_utility = on" \
		"pgaudit.log = 'all'" "pgaudit.log_relation = on" "pgaudit.log_catalog = on"
	export PGHOST=$C_HOST PGPORT=$C_PORT
	key=$(cat "$C_KEY")

	"$PGBIN/createdb" "$DB"
	q -d "$DB" -c 'CREATE EXTENSION pg_stat_statements' -c 'CREATE EXTENSION pgaudit' >/dev/null
	# its own session: see test/pending/stale_cache_after_create_extension.sh
	q -d "$DB" -c 'CREATE EXTENSION profile_guard' >/dev/null
	q -d "$DB" -f test/lib/ops_fixture.sql >/dev/null || fail "$label: loading the fixture failed"
	[[ $(qa -d "$DB" -c "SELECT string_agg(extname, ',' ORDER BY extname) FROM pg_extension") == pg_stat_statements,pgaudit,plpgsql,profile_guard ]] ||
		fail "$label: the three extensions are not all created"

	# more sensitive writes, through every path that carries a value
	q -d "$DB" >/dev/null <<'SQL'
SET client_min_messages = warning;
SELECT profile_guard.register_subject(s::text) FROM generate_series(7, 9) s;
SELECT profile_guard.grant_consent(s::text, 'rec', ARRAY['interest.sports', 'health.condition'], separate => true)
FROM generate_series(7, 9) s;
INSERT INTO profiles VALUES (7, 'gus', 'hockey', NULL, 'SECRET-gout-7');
PREPARE ins(int, text, text) AS INSERT INTO profiles (id, name, health) VALUES ($1, $2, $3);
EXECUTE ins(8, 'hal', 'SECRET-wrong-8');
UPDATE profiles SET health = 'SECRET-flu-8' WHERE id = 8;
COPY profiles (id, name, health) FROM STDIN;
9	ida	SECRET-copy-9
\.
-- classify() encrypting plaintext already in a column
CREATE TABLE later (uid int, note text);
INSERT INTO later VALUES (1, 'SECRET-late-1'), (6, 'SECRET-late-6');
SELECT profile_guard.classify('later', 'note', 'health.condition')
FROM (SELECT profile_guard.protect('later', 'uid')) p;
SQL
	qa -d "$DB" -c "GRANT SELECT ON later TO regress_ops_app" >/dev/null

	# no purpose: refused, with the documented SQLSTATE
	err=$("$PGBIN/psql" -X -q -d "$DB" -U regress_ops_app -v VERBOSITY=verbose \
		-c 'SELECT health FROM profiles' 2>&1 >/dev/null || true)
	grep -q '42501' <<< "$err" && grep -q 'no purpose declared' <<< "$err" ||
		fail "$label: a read without purpose was not refused with 42501: $err"

	out=$(app_reads 2>&1) || fail "$label: the application's reads failed: $out"
	if ! diff -u <(expected_app_reads) <(echo "$out"; echo); then
		fail "$label: gated results differ from the expected ones (diff above)"
	fi
	[[ $(qa -d "$DB" -U regress_ops_app -c "SET profile_guard.purpose = 'rec'" \
		-c 'SELECT uid, note FROM later ORDER BY uid') == $'1|SECRET-late-1\n6|SECRET-late-6' ]] ||
		fail "$label: the column classified with plaintext in it does not decrypt"

	# the superuser reads raw stored values: ciphertext
	[[ $(qa -d "$DB" -c "SELECT count(*) FROM profiles WHERE health LIKE 'pgt1:%'") == 5 &&
	   $(qa -d "$DB" -c "SELECT count(*) FROM profiles WHERE health LIKE '%SECRET%'") == 0 ]] ||
		fail "$label: stored sensitive values are not all ciphertext"
	[[ $(qa -d "$DB" -c "SELECT count(*) FROM later WHERE note LIKE '%SECRET%'") == 0 ]] ||
		fail "$label: classify() left plaintext in the column"

	# the key settings are hidden from the application
	"$PGBIN/psql" -X -q -d "$DB" -U regress_ops_app -c 'SHOW profile_guard.master_key_file' >/dev/null 2>&1 &&
		fail "$label: the application can read profile_guard.master_key_file"

	# pg_stat_statements: statements were tracked, none holds a value or the key
	local n leaks
	n=$(qa -d "$DB" -c "SELECT count(*) FROM pg_stat_statements")
	[[ $n -gt 20 ]] || fail "$label: pg_stat_statements tracked only $n statements"
	qa -d "$DB" -c "SELECT count(*) FROM pg_stat_statements WHERE query LIKE '%profile_guard%classify%'" |
		grep -qv '^0$' || fail "$label: pg_stat_statements did not track the API calls"
	# fetched and searched here, so that the key never enters a statement
	qa -d "$DB" -c "SELECT query FROM pg_stat_statements" > "$C_DIR/pgss.txt"
	leaks=$(grep -iE "SECRET-(asthma|diabetes|gout|wrong|flu|copy|late)|$key" "$C_DIR/pgss.txt" || true)
	[[ -z $leaks ]] || fail "$label: pg_stat_statements holds a sensitive value or the key:
$leaks"
	# pgaudit did log, and did not log the key
	grep -q 'AUDIT: SESSION' "$C_DIR/server.log" || fail "$label: pgaudit logged nothing"
	grep -qi "$key" "$C_DIR/server.log" && fail "$label: the master key appears in the server log"

	ops_check_alive "$C_HOST" "$C_PORT" "$C_DIR/server.log" "$label server"
	echo "$label: gate results as expected; pg_stat_statements: $n statements, no value, no key"
	ops_stop_all
}

run_order 'profile_guard,pg_stat_statements,pgaudit' guard_first
run_order 'pgaudit,pg_stat_statements,profile_guard' guard_last
echo "coexist: both library orders enforce the same and leak nothing into pg_stat_statements"
