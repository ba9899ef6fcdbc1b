# t/070_crash_recovery.pl — the server crashes (a backend killed with
# SIGKILL in the middle of a gated read, then an immediate shutdown with
# transactions in flight) and recovers with the policy intact:
#
#   - after crash recovery, committed consents, withdrawals and encrypted
#     writes are there and uncommitted ones are not (no half-written data
#     key, no plaintext);
#   - the gate answers exactly as before the crash, sensitive values
#     decrypt, a read without purpose is refused;
#   - new writes are encrypted and new consents take effect.
use strict;
use warnings;
use IPC::Run;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);
use ProfileGuardTest;

# synchronous_commit = on: with it off the last commits may be lost in a
# crash, as PostgreSQL documents; fsync can stay off (the operating system
# does not crash here).  restart_after_crash: PostgreSQL::Test::Cluster
# turns it off; the backend crash below needs the postmaster to reinitialise.
my $node = pfg_node('crash',
	conf => [ 'synchronous_commit = on', 'restart_after_crash = on' ]);
my $db = 'regress_crash';
pfg_create_extension($node, $db);
my ($rc, $out) = pfg_psql($node, $db, '', '-v', 'ON_ERROR_STOP=1',
	'-f', pfg_root() . '/test/lib/ops_fixture.sql');
is($rc, 0, 'the fixture loads') or diag($out);

sub reads
{
	return pfg_psql($node, $db, <<'SQL', '-v', 'ON_ERROR_STOP=1', '-U', 'regress_ops_app');
SET profile_guard.purpose = 'rec';
SELECT id, name, sports, music, health FROM profiles ORDER BY id;
SET profile_guard.purpose = 'ads';
SELECT id, name, sports, music, health FROM profiles ORDER BY id;
SQL
}
sub query { return $node->safe_psql($db, @_); }
sub wait_up
{
	for (1 .. 300)
	{
		my ($rc) = pfg_psql($node, $db, 'SELECT 1');
		return 1 if $rc == 0;
		usleep(200_000);
	}
	return 0;
}
sub ready_count
{
	my $n = () = slurp_file($node->logfile)
	  =~ /database system is ready to accept connections/g;
	return $n;
}

my $before;
($rc, $before) = reads();
is($rc, 0, 'reads before the crash');
like($before, qr/SECRET-asthma-1/, 'reads before the crash are as expected');

# ---------- 1: SIGKILL a backend in the middle of a gated read
my $bg_out = '';
my $bg = IPC::Run::start(
	[ 'psql', '-X', '-q', '-d', $node->connstr($db), '-U', 'regress_ops_app',
	  '-c', "SET profile_guard.purpose = 'rec'",
	  '-c', 'SELECT count(health), pg_sleep(60) FROM profiles' ],
	'>&', \$bg_out);
my $pid = '';
for (1 .. 100)
{
	$pid = query("SELECT pid FROM pg_stat_activity WHERE query LIKE '%pg_sleep(60)%' AND pid <> pg_backend_pid()");
	last if $pid ne '';
	usleep(100_000);
}
isnt($pid, '', 'the long read started') or BAIL_OUT('no long read');
my $ready = ready_count();
kill 'KILL', $pid;
$bg->finish;
# the postmaster notices, terminates every backend and reinitialises: wait
# for it to be ready again (bounded), not for the old processes
for (1 .. 300)
{
	last if ready_count() > $ready;
	usleep(200_000);
}
cmp_ok(ready_count(), '>', $ready,
	'the server reinitialises within 60 s after the backend crash');
ok(wait_up(), 'the server is back');
like(slurp_file($node->logfile), qr/terminated by signal 9/, 'the killed backend is reported');
my $after;
($rc, $after) = reads();
is($rc, 0, 'reads after the backend crash');
is($after, $before, 'the gate answers as before after a backend crash');

# ---------- 2: immediate shutdown with transactions in flight
query(<<'SQL');
SELECT profile_guard.register_subject('7');
SELECT profile_guard.grant_consent('7', 'rec', ARRAY['interest.*', 'health.condition'], separate => true);
INSERT INTO profiles VALUES (7, 'gus', 'hockey', NULL, 'SECRET-committed-7');
SELECT profile_guard.withdraw_consent('2', 'rec');
SQL
# uncommitted at the crash: a consent, a new subject's data key, a write
my $u_in = <<'SQL';
BEGIN;
SELECT profile_guard.register_subject('8');
SELECT profile_guard.grant_consent('8', 'rec', ARRAY['health.condition'], separate => true);
INSERT INTO profiles VALUES (8, 'hal', NULL, NULL, 'SECRET-uncommitted-8');
SELECT profile_guard.withdraw_consent('1', 'rec');
\echo in-flight
SQL
my $u = pfg_session($node, $db);
$u->{in} = $u_in;
ok(pfg_pump_until($u, qr/^in-flight$/m), 'the in-flight transaction got going')
  or diag($u->{out});
$node->stop('immediate');
$u->{h}->kill_kill;
$node->start;
like(slurp_file($node->logfile),
	qr/database system was not properly shut down; automatic recovery in progress/,
	'crash recovery happened');
ok(wait_up(), 'the server is up after crash recovery');

my @expected;
my $added = 0;
for my $line (split /\n/, $before)
{
	next if $line eq '2|bob|tennis||' || $line eq '';
	push @expected, $line;
	if (!$added && $line =~ /^6\|fay/)
	{
		push @expected, '7|gus|hockey||SECRET-committed-7';
		$added = 1;
	}
}
($rc, $after) = reads();
is($rc, 0, 'reads after crash recovery');
is($after, join("\n", @expected), 'after crash recovery the gate answers as committed');
ok(query("SELECT count(*) FROM profile_guard.subject WHERE subject = '8'") eq '0'
	  && query("SELECT count(*) FROM profile_guard.subject_key WHERE subject = '8'") eq '0'
	  && query('SELECT count(*) FROM profiles WHERE id = 8') eq '0',
	'uncommitted work (subject 8, its data key or row) did not survive the crash');
is(query("SELECT count(*) FROM profiles WHERE health LIKE '%SECRET%'"), '0',
	'no plaintext sensitive values after crash recovery');

# ---------- 3: the recovered server keeps working
query(<<'SQL');
SELECT profile_guard.register_subject('8');
SELECT profile_guard.grant_consent('8', 'rec', ARRAY['health.condition'], separate => true);
INSERT INTO profiles VALUES (8, 'hal', NULL, NULL, 'SECRET-after-8');
SQL
is(query("SELECT health LIKE 'pgt2%' FROM profiles WHERE id = 8"), 't',
	'a write after recovery is encrypted');
is(scalar pfg_psql($node, $db, "SET profile_guard.purpose = 'rec';\nSELECT health FROM profiles WHERE id = 8",
	'-v', 'ON_ERROR_STOP=1', '-U', 'regress_ops_app'),
	'SECRET-after-8', 'a consent given after recovery takes effect');
like(scalar pfg_psql($node, $db, 'SELECT health FROM profiles', '-U', 'regress_ops_app'),
	qr/no purpose declared/, 'after recovery a read without purpose is refused');

$node->stop;
done_testing();
