#!/usr/bin/env bash
# test/scenario/sensitive_cell_gate_decrypt_oracle.sh — a fixed bug, kept as a regression test (run by
# CI).
#
# Bug (gate bypass for sensitive tags): profile_guard._sensitive_cell_gate(
# subject, tag_id, tag, value) is executable by PUBLIC.  It checks the
# visibility of tag_id but decrypts with the tag named by its third argument.
# A role with any consented tag of a subject under an allowed purpose can
# therefore decrypt ciphertext of any other tag of that subject (for example a
# sensitive tag whose separate consent was withdrawn), given the ciphertext
# from a backup, a dump, a replica or a DBA's raw read.  Expected: refused, or
# NULL (the tag given must be the one tag_id names, or the function must not
# be callable outside the gated queries).
#
# Needs PGHOST/PGPORT/PGUSER of a running cluster with profile_guard
# preloaded (test/run_tests.sh provides them).
set -uo pipefail
cd "$(dirname "$0")/../.."
PGBIN=${PGBIN:-$(pg_config --bindir)}
DB=regress_decrypt_oracle
psql() { "$PGBIN/psql" -X -q -At "$@"; }
cleanup() {
	"$PGBIN/dropdb" --if-exists "$DB" >/dev/null 2>&1
	psql -d postgres -c 'DROP ROLE IF EXISTS regress_ops_app' -c 'DROP ROLE IF EXISTS regress_ops_other' >/dev/null 2>&1
}
cleanup
trap cleanup EXIT
"$PGBIN/createdb" "$DB" || exit 1
psql -d "$DB" -c 'CREATE EXTENSION profile_guard' >/dev/null || exit 1
psql -v ON_ERROR_STOP=1 -d "$DB" -f test/lib/ops_fixture.sql >/dev/null || exit 1

# the raw ciphertext, as a DBA, a dump or a backup holds it
ct=$(psql -d "$DB" -c 'SELECT health FROM profiles WHERE id = 6')
tid=$(psql -d "$DB" -c "SELECT tag_id FROM profile_guard.tag WHERE tag = 'interest.sports'")
# subject 6 withdraws the separate consent to health.condition
psql -d "$DB" -c "SELECT profile_guard.withdraw_consent('6', 'rec', ARRAY['health.condition'])" >/dev/null

out=$(psql -d "$DB" -U regress_ops_app 2>&1 <<SQL
SET profile_guard.purpose = 'rec';
SELECT 'gated read: ' || coalesce(health, '<masked>') FROM profiles WHERE id = 6;
SELECT 'oracle: ' || coalesce(profile_guard._sensitive_cell_gate(6, $tid, 'health.condition', '$ct'::text), '<null>');
SQL
)
echo "$out"
if grep -q 'oracle: SECRET' <<< "$out"; then
	echo "FAIL: _sensitive_cell_gate decrypted a sensitive value whose consent was withdrawn"
	exit 1
fi
echo "sensitive_cell_gate_decrypt_oracle: ok"
