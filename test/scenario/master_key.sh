#!/usr/bin/env bash
# test/scenario/master_key.sh — the master key across restarts, on a cluster
# of its own: a wrong key or a missing key file gives a clear error and
# changes no stored byte; a new subject's data key is never wrapped by a
# wrong key; with the right key back everything decrypts; rotation to a new
# key (previous_master_key_file + rotate_master_key()) re-wraps every data
# key without touching a row, and the old key can then be dropped.
set -euo pipefail
cd "$(dirname "$0")/../.."
. test/lib/cluster.sh
unset PGHOST PGPORT PGDATA_DIR CLUSTER_DIR PG_MASTER_KEY_FILE
pg_cluster_start master_key >/dev/null
trap pg_cluster_stop EXIT
PSQL=("$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -d postgres)

fail() { echo "FAILED: $*" >&2; exit 1; }
restart() { pg_as_owner "$PGBIN/pg_ctl" -D "$PGDATA_DIR" -l "$CLUSTER_DIR/server.log" -w -m fast restart >/dev/null; }
new_key_file() {	# $1 = path
	pg_as_owner bash -c "head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > '$1' && chmod 600 '$1'"
}
# the stored bytes of the guarded table and of the data keys
stored() { "${PSQL[@]}" -At -c "SELECT md5(string_agg(health, ',' ORDER BY id)) FROM records" \
	-c "SELECT md5(string_agg(coalesce(encode(wrapped_key, 'hex'), '-'), ',' ORDER BY subject)) FROM profile_guard.subject_key"; }
# run SQL as the application under the purpose; prints output, or the error
as_app() { "$PGBIN/psql" -X -q -At -d postgres -c "SET ROLE regress_key_app" \
	-c "SET profile_guard.purpose = 'care'" -c "$1" 2>&1 || true; }

"${PSQL[@]}" >/dev/null <<'SQL'
SET client_min_messages = warning;
CREATE EXTENSION profile_guard;
CREATE ROLE regress_key_app;
SELECT profile_guard.define_tag('health.condition', 'medical_health');
SELECT profile_guard.define_purpose('care', 'care plans', ARRAY['health.condition']);
SELECT profile_guard.allow_purpose('regress_key_app', 'care');
SELECT profile_guard.register_subject(s::text) FROM generate_series(1, 4) s;
SELECT profile_guard.grant_consent(s::text, 'care', ARRAY['health.condition'], separate => true)
FROM generate_series(1, 4) s;
CREATE TABLE records (id int PRIMARY KEY, health text);
SELECT profile_guard.protect('records', 'id');
SELECT profile_guard.classify('records', 'health', 'health.condition');
GRANT SELECT, INSERT ON records TO regress_key_app;
INSERT INTO records VALUES (1, 'asthma'), (2, 'diabetes');
SQL
[[ $(as_app "SELECT string_agg(health, ',' ORDER BY id) FROM records") == "asthma,diabetes" ]] ||
	fail "reads under the right key"
before=$(stored)
RIGHT_KEY=$PG_MASTER_KEY_FILE

echo "1. wrong key"
WRONG_KEY=$CLUSTER_DIR/wrong.key
new_key_file "$WRONG_KEY"
"${PSQL[@]}" -c "ALTER SYSTEM SET profile_guard.master_key_file = '$WRONG_KEY'"
restart
out=$(as_app "SELECT health FROM records WHERE id = 1")
[[ $out == *"master key does not match the key that wrapped the data keys"* ]] || fail "wrong key read: $out"
[[ $out != *asthma* ]] || fail "wrong key read returned plaintext"
out=$(as_app "INSERT INTO records VALUES (3, 'flu')")
[[ $out == *"master key does not match"* ]] || fail "wrong key insert for a subject without a data key: $out"
out=$(as_app "INSERT INTO records VALUES (10, 'x')")
[[ $out == *ERROR* ]] || fail "insert for a subject without consent was not refused: $out"
[[ $(stored) == "$before" ]] || fail "a wrong key changed stored bytes"
out=$("${PSQL[@]}" -At -c "SELECT profile_guard.rotate_master_key()" 2>&1 || true)
[[ $out == *"master key does not match"* || $out == *ERROR* ]] || fail "rotation under a wrong key: $out"
[[ $(stored) == "$before" ]] || fail "rotation under a wrong key changed stored bytes"

echo "2. missing key file"
"${PSQL[@]}" -c "ALTER SYSTEM SET profile_guard.master_key_file = '$CLUSTER_DIR/no-such.key'"
restart
out=$(as_app "SELECT health FROM records WHERE id = 1")
[[ $out == *"could not open master key file"* ]] || fail "missing key file: $out"
[[ $(stored) == "$before" ]] || fail "a missing key changed stored bytes"
# non-sensitive work goes on
[[ $(as_app "SELECT count(*) FROM records") == 2 ]] || fail "non-tag reads need no key"

echo "3. the right key again"
"${PSQL[@]}" -c "ALTER SYSTEM SET profile_guard.master_key_file = '$RIGHT_KEY'"
restart
[[ $(as_app "SELECT string_agg(health, ',' ORDER BY id) FROM records") == "asthma,diabetes" ]] ||
	fail "reads after the right key came back"
as_app "INSERT INTO records VALUES (3, 'flu')" >/dev/null
[[ $(as_app "SELECT health FROM records WHERE id = 3") == flu ]] || fail "insert after the right key came back"

echo "4. rotation"
before=$(stored)
NEW_KEY=$CLUSTER_DIR/new.key
new_key_file "$NEW_KEY"
"${PSQL[@]}" -c "ALTER SYSTEM SET profile_guard.master_key_file = '$NEW_KEY'" \
	-c "ALTER SYSTEM SET profile_guard.previous_master_key_file = '$RIGHT_KEY'"
restart
# before rotating, keys wrapped by the previous key still unwrap
[[ $(as_app "SELECT health FROM records WHERE id = 1") == asthma ]] || fail "read during rotation"
rotated=$("${PSQL[@]}" -At -c "SELECT profile_guard.rotate_master_key()")
[[ $rotated == 3 ]] || fail "rotate_master_key() re-wrapped $rotated keys, expected 3"
after=$(stored)
[[ ${after%%$'\n'*} == "${before%%$'\n'*}" ]] || fail "rotation touched the rows"
[[ ${after##*$'\n'} != "${before##*$'\n'}" ]] || fail "rotation did not re-wrap the data keys"
"${PSQL[@]}" -c "ALTER SYSTEM RESET profile_guard.previous_master_key_file"
restart
[[ $(as_app "SELECT string_agg(health, ',' ORDER BY id) FROM records") == "asthma,diabetes,flu" ]] ||
	fail "reads under the new key alone"
as_app "INSERT INTO records VALUES (4, 'gout')" >/dev/null
[[ $(as_app "SELECT health FROM records WHERE id = 4") == gout ]] || fail "insert under the new key"
grep -q "terminated by signal" "$CLUSTER_DIR/server.log" && fail "a backend crashed"
echo "master key scenario ok"
