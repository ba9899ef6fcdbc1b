# t/210_admin_protects_foreign_table.pl — a fixed bug, kept as a regression
# test.
#
# Bug (privilege escalation): protect(), classify(), declassify() and
# unprotect() are SECURITY DEFINER (they run as the extension's owner, a
# superuser) and never checked that the caller owns the table.  A member of
# profile_guard_admin without any privilege on a table could install a
# trigger on it, rewrite its column (encrypt or decrypt every value) and make
# every later INSERT/UPDATE of the table's owner fail the collection check.
# Expected: refused unless the caller owns the table (or is a superuser);
# likewise set_anonymise_columns() on a table the owner protected.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use ProfileGuardTest;

my $node = pfg_node('admin_foreign');
pfg_create_extension($node, 'regress_admin_foreign');

my $out = pfg_psql($node, 'regress_admin_foreign', <<'SQL');
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
note($out);

unlike($out, qr/^protect: /m,
	'a profile_guard_admin member cannot protect a table it has no privilege on');
unlike($out, qr/^stored: pgt[12]/m, '... nor rewrite its column through classify()');
unlike($out, qr/^anonymise columns: /m, '... nor set its anonymised columns');
like($out, qr/must be owner of table public\.payroll/, 'an ownership error');
like($out, qr/^anonymise_columns now: \{\}/m, 'anonymise_columns unchanged');

$node->stop;
done_testing();
