#!/usr/bin/env bash
# test/scenario/audit_log.sh — the server log of a workload run with
# profile_guard.audit = all (and audit_destination = log: the trail in the
# server log; test/scenario/audit_file.sh tests the files) names the tags
# used and holds none of the
# values: not in audit lines, not in error messages (unique, check,
# not-null, foreign-key and input errors are provoked with known values),
# not in STATEMENT lines.  A bypass-role read is logged with audit = off.
# Every audit line is one JSON object.  The usage counters overflow into one
# entry beyond profile_guard.usage_max.
#
# Starts its own throw-away cluster (test/lib/cluster.sh; PGBIN as given to
# test/run_tests.sh) so that its server log holds this workload only.
set -euo pipefail
cd "$(dirname "$0")/../.."
# the log of the runner's cluster, where sql/71_redact.sql ran (if it did)
RUNNER_LOG=${CLUSTER_DIR:+$CLUSTER_DIR/server.log}
. test/lib/cluster.sh

pg_cluster_start audit_log \
	"profile_guard.audit = 'all'" \
	"profile_guard.audit_destination = 'log'" \
	"profile_guard.usage_max = 100" || exit 1
trap 'pg_cluster_stop' EXIT
LOG=$CLUSTER_DIR/server.log
PSQL=("$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -d postgres)

fail=0
check() {		# check DESCRIPTION COMMAND...
	local what=$1; shift
	if "$@"; then echo "ok: $what"; else echo "FAILED: $what"; fail=1; fi
}

"${PSQL[@]}" >/dev/null <<'SQL'
SET client_min_messages = warning;
CREATE EXTENSION profile_guard;
SELECT profile_guard.define_tag('interest.sports', 'preference');
SELECT profile_guard.define_tag('behavior.visits', 'behavior');
SELECT profile_guard.define_tag('health.condition', 'medical_health');
SELECT profile_guard.define_purpose('recommendation', 'recommend content',
	ARRAY['interest.*', 'behavior.visits', 'health.condition']);
CREATE ROLE regress_app LOGIN;
CREATE ROLE regress_root LOGIN BYPASSRLS;
SELECT profile_guard.allow_purpose('regress_app', 'recommendation');
CREATE TABLE profiles (id int PRIMARY KEY, email text UNIQUE, nick text NOT NULL,
	sports text, visits int CHECK (visits < 1000), health text);
CREATE TABLE orders (order_id int PRIMARY KEY, profile_id int REFERENCES profiles);
GRANT SELECT, INSERT, UPDATE, DELETE ON profiles, orders TO regress_app;
GRANT SELECT ON profiles TO regress_root;
SELECT profile_guard.protect('profiles', 'id');
SELECT profile_guard.classify('profiles', 'sports', 'interest.sports');
SELECT profile_guard.classify('profiles', 'visits', 'behavior.visits');
SELECT profile_guard.classify('profiles', 'health', 'health.condition');
SELECT profile_guard.register_subject(s::text) FROM generate_series(1, 10) s;
SELECT profile_guard.grant_consent(s::text, 'recommendation', ARRAY['interest.*', 'behavior.visits'])
	FROM generate_series(1, 7) s;
SELECT profile_guard.grant_consent(s::text, 'recommendation', ARRAY['health.condition'], separate => true)
	FROM generate_series(1, 3) s;
SQL

# the values: general (GENVAL), sensitive (SENSVAL), in errors (ERRVAL)
"$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -d postgres -U regress_app >/dev/null <<'SQL'
SET profile_guard.purpose = 'recommendation';
INSERT INTO profiles
SELECT s, 'GENVALMAIL' || s, 'GENVALNICK' || s, 'GENVALSPORT' || s, 100 + s,
	   CASE WHEN s <= 3 THEN 'SENSVALHEALTH' || s END
FROM generate_series(1, 7) s;
INSERT INTO orders VALUES (1, 1);
SELECT * FROM profiles ORDER BY id;
SELECT sports, health FROM profiles WHERE id = 2;
SELECT p FROM profiles p;
UPDATE profiles SET visits = visits + 1 WHERE sports LIKE 'GENVALSPORT%';
BEGIN;
DECLARE c CURSOR FOR SELECT sports FROM profiles;
FETCH 3 FROM c;
CLOSE c;
COMMIT;
SQL

# errors, each quoting a value of a guarded table
"$PGBIN/psql" -X -q -d postgres -U regress_app >/dev/null 2>"$CLUSTER_DIR/client_errors.txt" <<'SQL'
SET profile_guard.purpose = 'recommendation';
INSERT INTO profiles (id, email, nick) VALUES (1, 'ERRVALMAIL1', 'ERRVALNICK1');
INSERT INTO profiles (id, email, nick) VALUES (8, 'GENVALMAIL2', 'ERRVALNICK8');
UPDATE profiles SET visits = 5000 WHERE id = 1;
UPDATE profiles SET nick = NULL WHERE id = 2;
DELETE FROM profiles WHERE id = 1;
INSERT INTO orders VALUES (2, 77777);
INSERT INTO profiles (id, nick, visits) VALUES (9, 'ERRVALNICK9', 'ERRVALVISITS9');
UPDATE profiles SET visits = nick::int WHERE id = 3;
INSERT INTO profiles (id, nick, sports) VALUES (9, 'ERRVALNICK9', 'ERRVALSPORT9');
COPY profiles (id, nick, visits) FROM STDIN;
9	ERRVALNICK9	ERRVALCOPY9
\.
SELECT sports FROM profiles WHERE id = 1 AND nick = 'x' || 1/0;
SELECT sports, 1 / (id - 3) FROM profiles;
RESET profile_guard.purpose;
SELECT sports FROM profiles;
SQL

# a session that ends with a cursor open in its transaction
"$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -d postgres -U regress_app >/dev/null <<'SQL'
SET profile_guard.purpose = 'recommendation';
BEGIN;
DECLARE c CURSOR FOR SELECT sports, health FROM profiles;
FETCH 4 FROM c;
SQL

# a bypass role reads, with the audit switched off
"$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -d postgres -U regress_root >/dev/null <<'SQL'
SELECT id, sports, health FROM profiles WHERE id = 1;
SQL
"$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -d postgres >/dev/null <<'SQL'
SET profile_guard.audit = off;
SET ROLE regress_root;
SELECT sports FROM profiles WHERE id = 3;
RESET ROLE;
COPY profiles (id, health) TO STDOUT;
SQL
# pg_dump reads with COPY TO, as a superuser
"$PGBIN/pg_dump" -d postgres -t profiles >/dev/null

# more (role, purpose, tag) combinations than profile_guard.usage_max
"${PSQL[@]}" >/dev/null <<'SQL'
SET client_min_messages = warning;
SELECT profile_guard.define_tag('many.t' || i, 'preference') FROM generate_series(1, 110) i;
CREATE TABLE wide (id int PRIMARY KEY);
SELECT format('ALTER TABLE wide ADD COLUMN c%s text', i) FROM generate_series(1, 110) i \gexec
SELECT profile_guard.protect('wide', 'id');
SELECT profile_guard.classify('wide', 'c' || i, 'many.t' || i) FROM generate_series(1, 110) i;
SELECT * FROM wide;
SQL

overflow=$("$PGBIN/psql" -X -At -d postgres -c \
	"SELECT count(*) FILTER (WHERE tag = '*overflow*' AND role IS NULL AND statements > 0) || ' ' || count(*) FROM profile_guard.usage")
check "usage overflows into one entry beyond usage_max (overflow, entries: $overflow)" \
	test "${overflow%% *}" = 1 -a "${overflow##* }" -le 101

sleep 0.2		# the log is written by the server processes; they have returned

audit_lines() { grep -o 'profile_guard audit: {.*' "$LOG" | sed 's/^profile_guard audit: //'; }
check "audit lines for reads name the tags" \
	bash -c "grep -q '\"event\":\"read\".*\"tag\":\"interest.sports\"' '$LOG' && grep -q '\"tag\":\"health.condition\"' '$LOG' && grep -q '\"tag\":\"behavior.visits\"' '$LOG'"
check "a read line counts 7 rows seen and none hidden" \
	grep -q '"command":"SELECT","level":0,"relations":\[{"relation":"public.profiles","rows_seen":7,"rows_hidden":0}\]' "$LOG"
check "a cursor is one line with what was fetched" \
	grep -q '"rows_processed":3,"completed":true}' "$LOG"
check "a statement ended by an error is logged, not completed" \
	grep -q '"completed":false}' "$LOG"
check "a cursor left open by a session that ends is logged" \
	grep -q '"rows_processed":4,"completed":false}' "$LOG"
check "denials are logged (collection and no purpose)" \
	bash -c "grep -q '\"reason\":\"collection_refused\"' '$LOG' && grep -q '\"reason\":\"no_purpose\"' '$LOG'"
check "the bypass read with audit = off is logged" \
	bash -c "grep -c '\"event\":\"bypass_read\",\"user\":\"regress_root\"' '$LOG' | grep -qx 2"
check "a superuser's COPY TO and pg_dump's are logged" \
	bash -c "grep -c '\"event\":\"bypass_read\",\"user\":\"postgres\",.*\"command\":\"COPY\",.*\"tag\":\"health.condition\"' '$LOG' | grep -qx 2"
# (errors on the guarded table itself quote no value at all: row-level
# security is enabled on it; the others are redacted on emission)
check "the client saw the errors, redacted" \
	bash -c "grep -q 'invalid input syntax for type integer: (redacted)' '$CLUSTER_DIR/client_errors.txt' && grep -q 'Key (profile_id)=(redacted) is not present' '$CLUSTER_DIR/client_errors.txt'"
# (psql's "LINE 1: ..." quotes the client's own statement, not the server)
check "no value in the client's error messages" \
	bash -c "! grep -v '^LINE [0-9]*:' '$CLUSTER_DIR/client_errors.txt' | grep -E 'GENVAL|SENSVAL|ERRVAL|77777'"
check "the log has the errors, without values" \
	bash -c "grep -q 'violates unique constraint \"profiles_email_key\"' '$LOG' && grep -q 'violates check constraint \"profiles_visits_check\"' '$LOG' && ! grep -q 'Failing row contains' '$LOG' && grep -q 'invalid input syntax for type integer: (redacted)' '$LOG' && grep -q 'Key (profile_id)=(redacted) is not present' '$LOG'"
check "no value anywhere in the server log" \
	bash -c "! grep -nE 'GENVAL|SENSVAL|ERRVAL|pgt1:|77777' '$LOG'"
# every audit line is one JSON object (parsed by the server itself)
audit_lines > "$CLUSTER_DIR/audit.jsonl"
parsed=$("$PGBIN/psql" -X -q -At -d postgres <<SQL
CREATE TEMP TABLE l (line text);
\copy l FROM '$CLUSTER_DIR/audit.jsonl' WITH (FORMAT csv, QUOTE e'\x01', DELIMITER e'\x02')
SELECT count(*) || ' ' || count(*) FILTER (WHERE line::jsonb ?& ARRAY['event', 'user', 'purpose', 'relations', 'tags']) FROM l;
SQL
)
check "every audit line parses as JSON with its keys ($parsed)" \
	bash -c "[[ '$parsed' =~ ^([0-9]+)\ ([0-9]+)$ && \${BASH_REMATCH[1]} -gt 10 && \${BASH_REMATCH[1]} == \${BASH_REMATCH[2]} ]]"

# the regression suite 71_redact provokes each error with values spelled SECRET…
if [[ -n $RUNNER_LOG && -r $RUNNER_LOG ]] && grep -q 'profiles_booked_excl' "$RUNNER_LOG"; then
	check "71_redact: its errors are in the runner's log, redacted" \
		bash -c "! grep 'Failing row contains' '$RUNNER_LOG' | grep -vq 'Failing row contains (redacted)\\.\$' && grep -q 'COPY FROM not supported with row-level security' '$RUNNER_LOG' && grep -q 'JSON data (redacted)' '$RUNNER_LOG'"
	check "71_redact: none of its values in the runner's log" \
		bash -c "! grep -n 'SECRET' '$RUNNER_LOG'"
fi

if [[ $fail -ne 0 ]]; then
	echo "--- server log (audit and errors) ---"
	grep -E 'audit|ERROR|DETAIL|CONTEXT|STATEMENT' "$LOG" | cut -c1-300 | tail -60
	exit 1
fi
echo "audit_log: $(audit_lines | wc -l) audit lines, no values in the log"
