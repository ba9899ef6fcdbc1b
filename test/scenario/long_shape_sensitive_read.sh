#!/usr/bin/env bash
# test/scenario/long_shape_sensitive_read.sh — a fixed bug, kept as a regression
# test (run by CI).
#
# Bug (wrong result): in a long-shape guarded table (protect(..., tag_column,
# value_column)) the trigger encrypts the value of a sensitive tag, but the
# read path only adds the row gate (src/gate.c: "long shape (rows only)"):
# a consented read under a purpose returns the raw ciphertext ("pgt1:...")
# instead of the value.  Expected: the decrypted value, as for a wide table.
#
# Needs PGHOST/PGPORT/PGUSER of a running cluster with profile_guard
# preloaded (test/run_tests.sh provides them).
set -uo pipefail
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
DB=regress_long_sensitive
"$PGBIN/dropdb" --if-exists "$DB" >/dev/null 2>&1
trap '"$PGBIN/dropdb" --if-exists "$DB" >/dev/null 2>&1; "$PGBIN/psql" -X -q -d postgres -c "DROP ROLE IF EXISTS regress_long_app" >/dev/null 2>&1' EXIT
"$PGBIN/createdb" "$DB" || exit 1
"$PGBIN/psql" -X -q -d "$DB" -c 'CREATE EXTENSION profile_guard' >/dev/null || exit 1
out=$("$PGBIN/psql" -X -q -At -d "$DB" 2>&1 <<'SQL'
SET client_min_messages = warning;
SELECT profile_guard.define_tag('health.condition', 'medical_health') \gset
SELECT profile_guard.define_purpose('rec', 'r', ARRAY['health.condition']) \gset
DROP ROLE IF EXISTS regress_long_app;
CREATE ROLE regress_long_app;
SELECT profile_guard.allow_purpose('regress_long_app', 'rec') \gset
CREATE TABLE tags (uid bigint, tag text, value text);
GRANT SELECT ON tags TO regress_long_app;
SELECT profile_guard.protect('tags', 'uid', tag_column => 'tag', value_column => 'value') \gset
SELECT profile_guard.register_subject('1') \gset
SELECT profile_guard.grant_consent('1', 'rec', ARRAY['health.condition'], separate => true) \gset
INSERT INTO tags VALUES (1, 'health.condition', 'asthma');
SELECT 'stored encrypted: ' || (value LIKE 'pgt1:%') FROM tags;
SET ROLE regress_long_app;
SET profile_guard.purpose = 'rec';
SELECT 'consented read: ' || value FROM tags;
SQL
)
echo "$out"
grep -qx 'consented read: asthma' <<< "$out" && { echo "long_shape_sensitive_read: ok"; exit 0; }
echo "FAIL: a consented read of a sensitive long-shape value does not return the value"
exit 1
