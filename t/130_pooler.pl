# t/130_pooler.pl — the purpose on a pooled connection.  A pooler in
# transaction mode hands one server session to many clients in turn, so a
# purpose declared for one transaction must not leak into the next.  One
# psql session plays the pooled connection:
#
#   - SET LOCAL profile_guard.purpose (and set_config(..., true)) lasts until
#     COMMIT, ROLLBACK, or the end of an aborted transaction; the next
#     transaction on the same connection has no purpose and is refused;
#   - ROLLBACK TO SAVEPOINT restores the purpose of the savepoint;
#   - SET LOCAL outside a transaction block changes nothing;
#   - a session-level SET is replaced by SET LOCAL inside a transaction only,
#     and is back after it; a plain SET inside a committed transaction does
#     persist (which is why poolers need SET LOCAL), inside a rolled-back one
#     it does not;
#   - RESET and DISCARD ALL (pgbouncer's server_reset_query) clear it;
#   - a statement prepared under one transaction's purpose is gated by the
#     purpose in force when it is executed.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use ProfileGuardTest;

my $db = 'regress_pooler';
my $node = pfg_node('pooler');
pfg_create_extension($node, $db);
my ($rc, $out) = pfg_psql($node, $db, '', '-v', 'ON_ERROR_STOP=1',
	'-f', pfg_root() . '/test/lib/ops_fixture.sql');
is($rc, 0, 'the fixture loads') or diag($out);

# Each probe prints the purpose in force and what a tag read gives:
# "purpose=<p> rows=<n>" or the error.  health is read so that the sensitive
# path (decryption) is exercised too.
my $script = <<'SQL';
\set VERBOSITY terse
\set probe 'SELECT ''purpose='' || current_setting(''profile_guard.purpose'') || '' rows='' || count(*) || '' health='' || count(health) FROM profiles WHERE sports IS NOT NULL OR music IS NOT NULL OR health IS NOT NULL;'
\echo == 1 SET LOCAL, COMMIT
BEGIN;
SET LOCAL profile_guard.purpose = 'rec';
:probe
COMMIT;
SHOW profile_guard.purpose;
:probe
\echo == 2 SET LOCAL, ROLLBACK
BEGIN;
SET LOCAL profile_guard.purpose = 'ads';
:probe
ROLLBACK;
:probe
\echo == 3 SET LOCAL, error, ROLLBACK
BEGIN;
SET LOCAL profile_guard.purpose = 'rec';
SELECT 1 / 0;
ROLLBACK;
:probe
\echo == 4 set_config(is_local => true), COMMIT
BEGIN;
SELECT set_config('profile_guard.purpose', 'rec', true);
:probe
COMMIT;
:probe
\echo == 5 savepoints
BEGIN;
SET LOCAL profile_guard.purpose = 'rec';
SAVEPOINT s1;
SET LOCAL profile_guard.purpose = 'ads';
:probe
ROLLBACK TO SAVEPOINT s1;
:probe
RELEASE SAVEPOINT s1;
COMMIT;
:probe
\echo == 6 SET LOCAL outside a transaction block
SET LOCAL profile_guard.purpose = 'rec';
:probe
\echo == 7 session SET, replaced by SET LOCAL inside a transaction only
SET profile_guard.purpose = 'ads';
:probe
BEGIN;
SET LOCAL profile_guard.purpose = 'rec';
:probe
COMMIT;
:probe
BEGIN;
SET LOCAL profile_guard.purpose = 'rec';
ROLLBACK;
:probe
\echo == 8 RESET
RESET profile_guard.purpose;
:probe
\echo == 9 plain SET inside a transaction: kept after COMMIT, undone by ROLLBACK
BEGIN;
SET profile_guard.purpose = 'rec';
ROLLBACK;
:probe
BEGIN;
SET profile_guard.purpose = 'rec';
COMMIT;
:probe
\echo == 10 DISCARD ALL
DISCARD ALL;
:probe
\echo == 11 prepared under one purpose, executed under another
BEGIN;
SET LOCAL profile_guard.purpose = 'rec';
PREPARE p AS SELECT count(health) FROM profiles;
EXECUTE p;
COMMIT;
EXECUTE p;
BEGIN;
SET LOCAL profile_guard.purpose = 'ads';
EXECUTE p;
COMMIT;
\echo == 12 an invalid purpose name in SET LOCAL aborts only its transaction
BEGIN;
SET LOCAL profile_guard.purpose = 'rec''; DROP TABLE profiles; --';
ROLLBACK;
:probe
\echo == 13 a WITH HOLD cursor is filled at COMMIT, under the purpose of its transaction
BEGIN;
SET LOCAL profile_guard.purpose = 'rec';
DECLARE hc CURSOR WITH HOLD FOR SELECT id, health FROM profiles WHERE health IS NOT NULL ORDER BY id;
COMMIT;
SHOW profile_guard.purpose;
FETCH ALL FROM hc;
CLOSE hc;
:probe
SQL

my $expected = <<'OUT';
== 1 SET LOCAL, COMMIT
purpose=rec rows=4 health=2

ERROR:  no purpose declared for reading profile tags
== 2 SET LOCAL, ROLLBACK
purpose=ads rows=1 health=0
ERROR:  no purpose declared for reading profile tags
== 3 SET LOCAL, error, ROLLBACK
ERROR:  division by zero
ERROR:  no purpose declared for reading profile tags
== 4 set_config(is_local => true), COMMIT
rec
purpose=rec rows=4 health=2
ERROR:  no purpose declared for reading profile tags
== 5 savepoints
purpose=ads rows=1 health=0
purpose=rec rows=4 health=2
ERROR:  no purpose declared for reading profile tags
== 6 SET LOCAL outside a transaction block
WARNING:  SET LOCAL can only be used in transaction blocks
ERROR:  no purpose declared for reading profile tags
== 7 session SET, replaced by SET LOCAL inside a transaction only
purpose=ads rows=1 health=0
purpose=rec rows=4 health=2
purpose=ads rows=1 health=0
purpose=ads rows=1 health=0
== 8 RESET
ERROR:  no purpose declared for reading profile tags
== 9 plain SET inside a transaction: kept after COMMIT, undone by ROLLBACK
ERROR:  no purpose declared for reading profile tags
purpose=rec rows=4 health=2
== 10 DISCARD ALL
ERROR:  no purpose declared for reading profile tags
== 11 prepared under one purpose, executed under another
2
ERROR:  no purpose declared for reading profile tags
0
== 12 an invalid purpose name in SET LOCAL aborts only its transaction
ERROR:  invalid value for parameter (redacted)
ERROR:  no purpose declared for reading profile tags
== 13 a WITH HOLD cursor is filled at COMMIT, under the purpose of its transaction

1|SECRET-asthma-1
6|SECRET-diabetes-6
ERROR:  no purpose declared for reading profile tags
OUT
chomp $expected;

$out = pfg_psql($node, $db, $script, '-U', 'regress_ops_app');
$out =~ s/^psql:<stdin>:[0-9]+: //mg;
is($out, $expected, 'the purpose on one connection behaves as expected');
# the table survived the injection attempt in step 12
is($node->safe_psql($db, 'SELECT count(*) FROM profiles'), '6', 'profiles lost no rows');
pfg_check_alive($node);

$node->stop;
done_testing();
