#!/usr/bin/env bash
# test/scenario/admin_protects_foreign_table.sh — a fixed bug, kept as a regression test (run by CI
# (move to test/scenario/ once fixed).
#
# Bug (privilege escalation): protect(), classify(), declassify() and
# unprotect() are SECURITY DEFINER (they run as the extension's owner, a
# superuser) and never check that the caller owns the table.  A member of
# profile_guard_admin without any privilege on a table can install a trigger
# on it, rewrite its column (encrypt or decrypt every value) and make every
# later INSERT/UPDATE of the table's owner fail the collection check.
# Expected: refused unless the caller owns the table (or is a superuser).
#
# Needs PGHOST/PGPORT/PGUSER of a running cluster with profile_guard
# preloaded (test/run_tests.sh provides them).
set -uo pipefail
PGBIN=${PGBIN:-$(pg_config --bindir)}
DB=regress_admin_foreign
cleanup() {
	"$PGBIN/dropdb" --if-exists "$DB" >/dev/null 2>&1
	"$PGBIN/psql" -X -q -d postgres -c 'DROP ROLE IF EXISTS regress_policy_admin' >/dev/null 2>&1
}
cleanup
trap cleanup EXIT
"$PGBIN/createdb" "$DB" || exit 1
"$PGBIN/psql" -X -q -d "$DB" -c 'CREATE EXTENSION profile_guard' >/dev/null || exit 1
out=$("$PGBIN/psql" -X -q -At -d "$DB" 2>&1 <<'SQL'
SET client_min_messages = warning;
SELECT profile_guard.define_tag('health.condition', 'medical_health');
CREATE ROLE regress_policy_admin IN ROLE profile_guard_admin;
CREATE TABLE payroll (emp text PRIMARY KEY, salary text);   -- another team's table
INSERT INTO payroll VALUES ('e1', '100000');
SET ROLE regress_policy_admin;
SELECT 'admin may read: ' || count(*) FROM payroll;             -- permission denied: no privilege
SELECT 'protect: ' || profile_guard.protect('payroll', 'emp')::text;
SELECT 'classify: ' || profile_guard.classify('payroll', 'salary', 'health.condition')::text;
RESET ROLE;
SELECT 'stored: ' || left(salary, 5) FROM payroll;
-- the owner protects it; the administrator still may not change how it is anonymised
SELECT profile_guard.protect('payroll', 'emp', on_erase => 'anonymise', keep_columns => ARRAY['salary']) IS NULL;
SET ROLE regress_policy_admin;
SELECT 'anonymise columns: ' || profile_guard.set_anonymise_columns('payroll', ARRAY['salary'])::text;
RESET ROLE;
SELECT 'anonymise_columns now: ' || anonymise_columns::text FROM profile_guard.guarded_table;
SQL
)
echo "$out"
status=0
grep -q '^protect: ' <<< "$out" && { echo "FAIL: a profile_guard_admin member protected a table it has no privilege on"; status=1; }
grep -q '^stored: pgt1:' <<< "$out" && { echo "FAIL: ... and rewrote its column through classify()"; status=1; }
grep -q '^anonymise columns: ' <<< "$out" && { echo "FAIL: ... and set its anonymised columns"; status=1; }
grep -q 'must be owner of table public.payroll' <<< "$out" || { echo "FAIL: no ownership error"; status=1; }
grep -q '^anonymise_columns now: {}' <<< "$out" || { echo "FAIL: anonymise_columns changed"; status=1; }
[[ $status -eq 0 ]] && echo "admin_protects_foreign_table: ok"
exit $status
