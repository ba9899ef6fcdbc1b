#!/usr/bin/env bash
# test/scenario/restore_cluster.sh — a dump of a database with guarded tables,
# sensitive ciphertext and a consent history restores into a FRESH cluster
# that has the same master key, and enforces and decrypts exactly as before
# (test/scenario/dump_restore.sh checks the policy catalog within one
# cluster; this one checks data, ciphertext and keys across clusters):
#
#   - plain (psql) and custom (pg_restore) formats; the guarded tables sit in
#     schema "a_app", which pg_dump emits before schema profile_guard, so the
#     rows arrive before the consents (the collection check must not refuse
#     the restore);
#   - the stored ciphertext is byte for byte the source's (nothing encrypted
#     twice), the consent ledger is identical, the gated reads give the same
#     results, and sensitive values decrypt;
#   - a cluster with a different master key restores, but refuses to decrypt.
#
# Starts its own clusters.  Needs the PostgreSQL installation of PGBIN with
# profile_guard installed.
set -euo pipefail
cd "$(dirname "$0")/../.."
. test/lib/ops.sh
trap ops_stop_all EXIT

DB=regress_restore
ops_start A restore_source
export PGHOST=$A_HOST PGPORT=$A_PORT
"$PGBIN/createdb" "$DB"
q -d "$DB" -c 'CREATE EXTENSION profile_guard' >/dev/null
# the fixture's table, moved to a schema that sorts before profile_guard
q -d "$DB" -f test/lib/ops_fixture.sql >/dev/null || fail "loading the fixture failed"
q -d "$DB" >/dev/null <<'SQL' || fail "the extra set-up failed"
SET client_min_messages = warning;
CREATE SCHEMA a_app;
GRANT USAGE ON SCHEMA a_app TO regress_ops_app;
ALTER TABLE profiles SET SCHEMA a_app;
-- a long-shape table and a bytea column too
CREATE TABLE a_app.tags (uid bigint, tag text, value text);
SELECT profile_guard.protect('a_app.tags', 'uid', tag_column => 'tag', value_column => 'value');
INSERT INTO a_app.tags VALUES (1, 'interest.sports', 'football'), (1, 'health.condition', 'SECRET-long-1'),
	(6, 'health.condition', 'SECRET-long-6');
CREATE TABLE a_app.blobs (uid text, blob bytea);
SELECT profile_guard.protect('a_app.blobs', 'uid');
SELECT profile_guard.classify('a_app.blobs', 'blob', 'health.condition');
INSERT INTO a_app.blobs VALUES ('1', convert_to('SECRET-blob-1', 'UTF8'));
GRANT SELECT ON a_app.tags, a_app.blobs TO regress_ops_app;
-- history: a withdrawal and a renewed consent
SELECT profile_guard.withdraw_consent('6', 'rec', ARRAY['health.condition']);
SELECT profile_guard.grant_consent('6', 'rec', ARRAY['health.condition'], separate => true);
SELECT profile_guard.withdraw_consent('3', 'rec');
SQL

# what must be identical: raw stored values (as the superuser: ciphertext),
# the ledger, and what the application reads under each purpose
raw() {
	qa -h "$1" -p "$2" -d "$DB" <<'SQL'
SELECT 'row', id, name, sports, music, health FROM a_app.profiles ORDER BY id;
SELECT 'long', uid, tag, value FROM a_app.tags ORDER BY 2, 3;
SELECT 'blob', uid, blob FROM a_app.blobs ORDER BY 2;
SELECT 'consent', consent_id, subject, purpose, purpose_version, action, tags, separate, guardian,
	   expires_at, recorded_at, recorded_by FROM profile_guard.consent ORDER BY consent_id;
SELECT 'key', subject, wrapped_key, master_fingerprint, created_at FROM profile_guard.subject_key ORDER BY 2;
SQL
}
gated() {
	qa -h "$1" -p "$2" -d "$DB" -U regress_ops_app <<'SQL'
SET profile_guard.purpose = 'rec';
SELECT 'rec', id, name, sports, music, health FROM a_app.profiles ORDER BY id;
SELECT 'rec-long', uid, tag, value FROM a_app.tags ORDER BY 2, 3;
SELECT 'rec-blob', uid, convert_from(blob, 'UTF8') FROM a_app.blobs ORDER BY 2;
SET profile_guard.purpose = 'ads';
SELECT 'ads', id, name, sports, music, health FROM a_app.profiles ORDER BY id;
SQL
}
raw "$A_HOST" "$A_PORT" > "$A_DIR/raw.txt"
gated "$A_HOST" "$A_PORT" > "$A_DIR/gated.txt"
# (long-shape sensitive values are not decrypted on read yet:
# test/pending/long_shape_sensitive_read.sh; compared as they are)
grep -q '^rec|6|fay|chess|folk|SECRET-diabetes-6$' "$A_DIR/gated.txt" &&
	grep -q '^rec-long|1|interest.sports|football$' "$A_DIR/gated.txt" &&
	grep -q '^rec-blob|1|SECRET-blob-1$' "$A_DIR/gated.txt" || fail "the source does not read as expected: $(cat "$A_DIR/gated.txt")"
grep -q SECRET "$A_DIR/raw.txt" && fail "the source stores a sensitive value as plaintext"

pg_as_owner "$PGBIN/pg_dump" -h "$A_HOST" -p "$A_PORT" -U postgres -d "$DB" -f "$A_DIR/dump.sql"
pg_as_owner "$PGBIN/pg_dump" -h "$A_HOST" -p "$A_PORT" -U postgres -d "$DB" -Fc -f "$A_DIR/dump.custom"
pg_as_owner "$PGBIN/pg_dumpall" -h "$A_HOST" -p "$A_PORT" -U postgres --globals-only -f "$A_DIR/globals.sql"
# the rows of a_app come before the consents in the dump
a_line=$(grep -n '^COPY a_app.profiles' "$A_DIR/dump.sql" | cut -d: -f1)
c_line=$(grep -n '^COPY profile_guard.consent ' "$A_DIR/dump.sql" | cut -d: -f1)
[[ -n $a_line && -n $c_line && $a_line -lt $c_line ]] ||
	fail "the dump does not put the guarded rows before the consents (lines $a_line, $c_line): the test would not test the order"

# B: the same key; C: another key
for target in same other; do
	ops_start T "restore_$target"
	if [[ $target == same ]]; then
		pg_as_owner cp "$A_KEY" "$T_KEY"
		pg_as_owner "$PGBIN/pg_ctl" -D "$T_DATA" -m fast -w restart -l "$T_DIR/server.log" >/dev/null
	fi
	# the roles (CREATE ROLE postgres fails: it exists)
	"$PGBIN/psql" -X -q -h "$T_HOST" -p "$T_PORT" -d postgres -f "$A_DIR/globals.sql" >/dev/null 2>&1 || true
	for format in plain custom; do
		"$PGBIN/createdb" -h "$T_HOST" -p "$T_PORT" "$DB"
		if [[ $format == plain ]]; then
			q -h "$T_HOST" -p "$T_PORT" -d "$DB" -f "$A_DIR/dump.sql" > "$T_DIR/restore_$format.log" 2>&1 ||
				{ tail -n 20 "$T_DIR/restore_$format.log" >&2; fail "$target key, $format: the restore failed"; }
		else
			pg_as_owner "$PGBIN/pg_restore" -h "$T_HOST" -p "$T_PORT" -U postgres --exit-on-error -d "$DB" \
				"$A_DIR/dump.custom" > "$T_DIR/restore_$format.log" 2>&1 ||
				{ tail -n 20 "$T_DIR/restore_$format.log" >&2; fail "$target key, $format: the restore failed"; }
		fi
		raw "$T_HOST" "$T_PORT" > "$T_DIR/raw_$format.txt"
		diff -u "$A_DIR/raw.txt" "$T_DIR/raw_$format.txt" >&2 ||
			fail "$target key, $format: stored values, ledger or keys differ from the source (re-encrypted?)"
		if [[ $target == same ]]; then
			gated "$T_HOST" "$T_PORT" > "$T_DIR/gated_$format.txt" 2>&1 ||
				{ cat "$T_DIR/gated_$format.txt" >&2; fail "$target key, $format: the gated reads failed"; }
			diff -u "$A_DIR/gated.txt" "$T_DIR/gated_$format.txt" >&2 ||
				fail "$target key, $format: the gated reads differ from the source's"
			# writes keep working: the collection check and encryption after the restore
			q -h "$T_HOST" -p "$T_PORT" -d "$DB" -c "UPDATE a_app.profiles SET health = 'SECRET-new-1' WHERE id = 1" >/dev/null
			[[ $(qa -h "$T_HOST" -p "$T_PORT" -d "$DB" -c "SELECT health LIKE 'pgt1:%' FROM a_app.profiles WHERE id = 1") == t ]] ||
				fail "$target key, $format: a value written after the restore is not encrypted"
			echo "same key, $format: restored as is (ciphertext, ledger, keys identical), gated reads identical, sensitive values decrypt"
		else
			err=$(qa -h "$T_HOST" -p "$T_PORT" -d "$DB" -U regress_ops_app -c "SET profile_guard.purpose = 'rec'" \
				-c 'SELECT health FROM a_app.profiles WHERE id = 1' 2>&1 || true)
			grep -q SECRET <<< "$err" && fail "another key, $format: a value was decrypted"
			grep -q 'master key does not match' <<< "$err" || fail "another key, $format: no master key error: $err"
			echo "another key, $format: restored as is, decryption refused (master key does not match)"
		fi
		"$PGBIN/dropdb" -h "$T_HOST" -p "$T_PORT" "$DB"
	done
	ops_check_alive "$T_HOST" "$T_PORT" "$T_DIR/server.log" "restore target ($target key)"
done
echo "restore_cluster: plain and custom dumps restore into fresh clusters; same key enforces and decrypts as before"
