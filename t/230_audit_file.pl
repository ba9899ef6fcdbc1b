# t/230_audit_file.pl — the audit trail in its own files
# (profile_guard.audit_destination = file, the default):
#
#   a. concurrent sessions: every line of the file is one whole JSON object
#      with "ts", "pid" and "database" (none interleaved with another), and
#      the file holds exactly the read and denial lines the sessions made,
#      including a statement whose nested lines pass the buffer's size;
#      The lines reach the file through the audit writer's shared buffer;
#      the checks wait until the files stop growing;
#   b. a backend killed with SIGKILL while the audit writer is held stopped
#      (SIGSTOP), so that the lines are still in the shared buffer when the
#      server crashes: the writer, let go, writes them as it quits, and the
#      lines of the statements the backend had finished (one committed, one
#      in its open transaction) are in the file;
#   c. rotation: a new audit_filename, after a reload, takes the new lines
#      (with audit_fsync = on),
#      in new sessions and in a session that was open before;
#   d. fall-back: while the file cannot be opened, the lines go to the server
#      log with a WARNING naming the file; the next statement writes to the
#      file again once it can;
#   e. one formatting: a relation whose name needs escaping, read through
#      the audit writer, by a backend writing its own line (audit_fsync =
#      on) and to the server log, gives the same line each time.
#
# Matches only the extension's own JSON keys, SQLSTATEs and paths, never a
# server message's wording (any lc_messages), and finds files by pattern
# (any date).  A node of its own, so that its server log holds this
# workload only.
use strict;
use warnings;
use IPC::Run;
use JSON::PP;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);
use ProfileGuardTest;

# %e: the SQLSTATE of each server-log line, to find the WARNING by code;
# the server restarts after the crash of part b (PostgreSQL::Test::Cluster
# turns restart_after_crash off)
my $node = pfg_node('audit_file', conf => [ "profile_guard.audit = 'all'",
	"log_line_prefix = '%m [%p] %e '", 'restart_after_crash = on' ]);
my $data = $node->data_dir;
my $dir = "$data/profile_guard_audit";
my $base = pfg_dir($node);
my $log = $node->logfile;

sub files { return sort glob($_[0]); }
sub all_lines
{
	my $n = 0;
	for my $f (@_)
	{
		open my $fh, '<', $f or next;
		$n++ while <$fh>;
		close $fh;
	}
	return $n;
}
# settle: wait until the audit writer has written what it holds (the lines
# in every audit file are the same five times in a row, 0.2 s apart; at
# most 30 s)
sub settle
{
	my ($last, $same) = (-1, 0);
	for (1 .. 150)
	{
		my $now = all_lines(files("$dir/*.jsonl"), files("$data/blocked_audit/*.jsonl"));
		if ($now == $last)
		{
			return if ++$same >= 5;
		}
		else
		{
			$same = 0;
		}
		$last = $now;
		usleep(200_000);
	}
	return;
}
# summary(TEXTS...): every line parsed as one JSON object; (lines, bad,
# [ "EVENT USER LEVEL PID" per audit line ]); bad: lines that are not a
# whole object with ts, pid, database, event, or a text not ending in a
# newline
sub summary
{
	my ($lines, $bad, @rows) = (0, 0);
	for my $all (@_)
	{
		next if $all eq '';
		$bad++ unless substr($all, -1) eq "\n";
		for my $l (split /\n/, $all)
		{
			$lines++;
			my $o = eval { JSON::PP->new->decode($l) };
			if (ref $o ne 'HASH' || !defined $o->{event} || ($o->{pid} // '') !~ /^[0-9]+$/
				|| ($o->{ts} // '') !~ /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/
				|| !exists $o->{database})
			{
				$bad++;
				next;
			}
			push @rows, sprintf('%s %s %s %s', $o->{event}, $o->{user} // '-', $o->{level} // '-', $o->{pid});
		}
	}
	return ($lines, $bad, \@rows);
}
sub summary_of_files { return summary(map { slurp_file($_) } @_); }
sub count { my ($re, $rows) = @_; return scalar grep { /$re/ } @$rows; }
# psql as the application over the local socket (no error stops it)
sub app
{
	my ($sql) = @_;
	return scalar pfg_psql($node, 'postgres', $sql, '-U', 'regress_app');
}
sub su { return $node->safe_psql('postgres', $_[0]); }

su(<<'SQL');
SET client_min_messages = warning;
CREATE EXTENSION profile_guard;
SELECT profile_guard.define_tag('interest.sports', 'preference');
SELECT profile_guard.define_tag('interest.music', 'preference');
SELECT profile_guard.define_purpose('recommendation', 'recommend content', ARRAY['interest.*']);
CREATE ROLE regress_app LOGIN;
SELECT profile_guard.allow_purpose('regress_app', 'recommendation');
CREATE TABLE profiles (id int PRIMARY KEY, sports text, music text);
GRANT SELECT ON profiles TO regress_app;
SELECT profile_guard.protect('profiles', 'id');
SELECT profile_guard.classify('profiles', 'sports', 'interest.sports');
SELECT profile_guard.classify('profiles', 'music', 'interest.music');
SELECT profile_guard.register_subject(s::text) FROM generate_series(1, 10) s;
SELECT profile_guard.grant_consent(s::text, 'recommendation', ARRAY['interest.*'])
	FROM generate_series(1, 8) s;
INSERT INTO profiles SELECT s, 'SECRETSPORT' || s, 'SECRETMUSIC' || s FROM generate_series(1, 8) s;
CREATE FUNCTION music_of(i int) RETURNS text LANGUAGE plpgsql STABLE
	AS $$ BEGIN RETURN (SELECT music FROM profiles WHERE id = i); END $$;
GRANT EXECUTE ON FUNCTION music_of(int) TO regress_app;
SQL

note('a: concurrent sessions');
my ($sessions, $reads, $denials, $nested) = (4, 150, 20, 200);
my $script = "SET profile_guard.purpose = 'recommendation';\n";
$script .= 'SELECT sports, music FROM profiles WHERE id = ' . ($_ % 10 + 1) . ";\n" for 1 .. $reads;
# one statement whose nested lines (level 1) pass the 64 kB buffer
$script .= "SELECT count(music_of(i % 10 + 1)) FROM generate_series(1, $nested) i;\n";
# refused: no purpose
$script .= "RESET profile_guard.purpose;\n";
$script .= "SELECT sports FROM profiles WHERE id = $_;\n" for 1 .. $denials;
open my $sfh, '>', "$base/session.sql" or die "session.sql: $!";
print $sfh $script;
close $sfh;
my @runs;
for (1 .. $sessions)
{
	push @runs, IPC::Run::start([ 'psql', '-X', '-q', '-d', $node->connstr('postgres'), '-U', 'regress_app',
		'-f', "$base/session.sql" ], '<', '/dev/null', '>', '/dev/null', '2>', '/dev/null');
}
$_->finish for @runs;
settle();

# the writer has no database, so it is not in pg_stat_activity: found
# among the postmaster's children by its process title
my ($postmaster) = split /\n/, slurp_file("$data/postmaster.pid");
my $writer = '';
IPC::Run::run([ 'pgrep', '-P', $postmaster, '-f', 'profile_guard audit writer' ], '>', \$writer);
chomp $writer;
ok($writer ne '', "the audit writer runs (pid $writer)");
my @afiles = files("$dir/audit-*.jsonl");
ok(-d $dir && (stat $dir)[2] % 010000 == 0700 && @afiles
	&& !grep({ (stat $_)[2] % 010000 != 0600 } @afiles),
	'the audit directory was made, mode 0700, its file mode 0600');
my ($lines, $bad, $rows) = summary_of_files(@afiles);
is($bad, 0, 'every line is one whole JSON object with ts, pid, database');
is(count(qr/^read regress_app 0 /, $rows), $sessions * $reads, "read lines of the sessions' statements (level 0)");
is(count(qr/^read regress_app 1 /, $rows), $sessions * $nested, 'read lines of the nested statements (level 1)');
is(count(qr/^denial regress_app 0 /, $rows), $sessions * $denials, 'denial lines');
my %per_pid;
$per_pid{ (split / /)[3] }++ for grep { / regress_app / } @$rows;
is(join(' ', map { $per_pid{$_} } sort keys %per_pid),
	join(' ', ($reads + $nested + $denials) x $sessions), 'lines per session');
my $afile_text = join('', map { slurp_file($_) } @afiles);
like($afile_text, qr/"database":"postgres"/, 'the lines name the database');
unlike($afile_text, qr/SECRET/, 'no value in the audit file');
unlike(slurp_file($log), qr/profile_guard audit:/, 'no audit line in the server log');

note('b: a backend killed with SIGKILL, its lines still in the buffer');
kill 'STOP', $writer if $writer ne '';
# (from a file: IPC::Run feeds a string only while it is pumped)
open my $kfh, '>', "$base/killed.sql" or die "killed.sql: $!";
print $kfh <<'SQL';
SET profile_guard.purpose = 'recommendation';
SELECT sports FROM profiles WHERE id = 1;
BEGIN;
SELECT music FROM profiles WHERE id = 2;
SELECT sports, pg_sleep(60) FROM profiles WHERE id = 3;
SQL
close $kfh;
my $bg = IPC::Run::start([ 'psql', '-X', '-q', '-d', $node->connstr('postgres'), '-U', 'regress_app',
	'-f', "$base/killed.sql" ], '<', '/dev/null', '>', '/dev/null', '2>', '/dev/null');
my $pid = '';
for (1 .. 100)
{
	$pid = su("SELECT pid FROM pg_stat_activity WHERE usename = 'regress_app' AND wait_event = 'PgSleep'");
	last if $pid ne '';
	usleep(100_000);
}
ok($pid ne '', "the session to kill is sleeping (pid $pid)");
if ($pid ne '')
{
	(undef, undef, $rows) = summary_of_files(files("$dir/audit-*.jsonl"));
	is(count(qr/^read regress_app 0 $pid$/, $rows), 0,
		'while the writer is stopped, the lines stay in the buffer');
	kill 'KILL', $pid;
	# the postmaster tells every process to quit (SIGQUIT): the writer
	# gets it once let go, and kills what is left after 5 s
	usleep(500_000);
	kill 'CONT', $writer if $writer ne '';
	$bg->finish;
	# the postmaster restarts every backend; wait until it is back
	for (1 .. 300)
	{
		my ($rc) = pfg_psql($node, 'postgres', 'SELECT 1');
		last if $rc == 0;
		usleep(200_000);
	}
	settle();
	(undef, $bad, $rows) = summary_of_files(files("$dir/audit-*.jsonl"));
	is(count(qr/^read regress_app 0 $pid$/, $rows), 2,
		"the killed backend's finished statements are in the file (committed, and in its open transaction)");
	is($bad, 0, 'still one whole JSON object a line');
}
else
{
	kill 'CONT', $writer if $writer ne '';
	$bg->kill_kill;
}

note('c: rotation by a new audit_filename');
settle();
my $before = all_lines(files("$dir/audit-*.jsonl"));
my ($host, $port) = ($node->host, $node->port);
my $c_out = app(<<"SQL");
SET profile_guard.purpose = 'recommendation';
SELECT sports FROM profiles WHERE id = 1;
\\! psql -X -q -h '$host' -p $port -d postgres -c "ALTER SYSTEM SET profile_guard.audit_filename = 'rotated-%Y%m%d-%H.jsonl'" -c "ALTER SYSTEM SET profile_guard.audit_fsync = on" -c "SELECT pg_reload_conf()" >/dev/null
\\! sleep 1
SELECT 1;
SELECT 'now: ' || current_setting('profile_guard.audit_filename');
SELECT sports FROM profiles WHERE id = 2;
SQL
like($c_out, qr/now: rotated-%Y%m%d-%H\.jsonl/, 'the open session took the new setting');
pfg_await($node, 'postgres', "SELECT current_setting('profile_guard.audit_filename') LIKE 'rotated-%'", 5);
app(<<'SQL');
SET profile_guard.purpose = 'recommendation';
SELECT sports FROM profiles WHERE id = 3;
SELECT music FROM profiles WHERE id = 4;
SQL
settle();
is(all_lines(files("$dir/audit-*.jsonl")), $before + 1, 'the old file got the line before the reload only');
my @rotated = files("$dir/rotated-*.jsonl");
if (@rotated)
{
	(undef, $bad, $rows) = summary_of_files(@rotated);
	is(count(qr/^read regress_app 0 /, $rows), 3, 'the new file has the three lines after the reload');
	is($bad, 0, 'the new file: one whole JSON object a line');
}
else
{
	fail('a file named by the new pattern exists');
}

note('d: the file cannot be opened: the server log, then the file again');
# (a regular file where the directory should be: unlike permissions, this
# stops root too)
su("ALTER SYSTEM SET profile_guard.audit_directory = 'blocked_audit';\n"
	. "ALTER SYSTEM RESET profile_guard.audit_filename;\nSELECT pg_reload_conf()");
open my $blk, '>', "$data/blocked_audit" or die "blocked_audit: $!";
close $blk;
pfg_await($node, 'postgres', "SELECT current_setting('profile_guard.audit_directory') = 'blocked_audit'", 5);
app(<<"SQL");
SET profile_guard.purpose = 'recommendation';
SELECT sports FROM profiles WHERE id = 5;
SELECT music FROM profiles WHERE id = 6;
\\! rm -f '$data/blocked_audit'
SELECT sports FROM profiles WHERE id = 7;
SQL
settle();
my $server_log = slurp_file($log);
my $log_json = join('', map { "$_\n" } ($server_log =~ /profile_guard audit: (\{.*)/g));
(undef, $bad, $rows) = summary($log_json);
is(count(qr/^read regress_app 0 /, $rows), 2, 'the two lines written while blocked are in the server log');
is($bad, 0, 'in the server log, with the keys of the file');
# ENOTDIR: SQLSTATE 42809 (errcode_for_file_access), with the file's path
is(scalar(() = $server_log =~ / 42809 .*"blocked_audit\/audit-[^"]*\.jsonl"/g), 2,
	'one WARNING per failed write, naming the file');
my @unblocked = files("$data/blocked_audit/audit-*.jsonl");
if (@unblocked)
{
	(undef, undef, $rows) = summary_of_files(@unblocked);
	is(count(qr/^read regress_app 0 /, $rows), 1,
		'once it can, the next statement writes to the file (directory made)');
}
else
{
	fail('once it can, the next statement writes to the file (directory made)');
}

note('e: every path formats the same line');
# a relation whose name needs escaping in JSON (a quote, a backslash, a tab,
# a control character), read through the audit writer, by the backend
# itself (audit_fsync = on, still set from part c) and to the server log:
# the lines are the same but for the keys only the file has
su(<<'SQL');
SET client_min_messages = warning;
DO $$ BEGIN
EXECUTE format('CREATE TABLE %I (id int PRIMARY KEY, sports text)', E'odd"\\\t\x01');
EXECUTE format('GRANT SELECT ON %I TO regress_app', E'odd"\\\t\x01');
PERFORM profile_guard.protect(quote_ident(E'odd"\\\t\x01')::regclass, 'id');
PERFORM profile_guard.classify(quote_ident(E'odd"\\\t\x01')::regclass, 'sports', 'interest.sports');
EXECUTE format('INSERT INTO %I VALUES (1, ''SECRETSPORT1'')', E'odd"\\\t\x01');
END $$;
SQL
my $odd_read = "SET profile_guard.purpose = 'recommendation';\n"
  . "SELECT sports FROM \"odd\"\"\\\t\x01\" WHERE id = 1;\n";
app($odd_read);
su("ALTER SYSTEM SET profile_guard.audit_fsync = off;\nSELECT pg_reload_conf()");
pfg_await($node, 'postgres', "SELECT current_setting('profile_guard.audit_fsync') = 'off'", 5);
app($odd_read);
su("ALTER SYSTEM SET profile_guard.audit_destination = 'log';\nSELECT pg_reload_conf()");
pfg_await($node, 'postgres', "SELECT current_setting('profile_guard.audit_destination') = 'log'", 5);
app($odd_read);
settle();
my @odd_file = grep { /odd/ } split /\n/, join('', map { slurp_file($_) } files("$data/blocked_audit/*.jsonl"));
my @odd_log = grep { /odd/ } (slurp_file($log) =~ /profile_guard audit: (\{.*)/g);
is(scalar(@odd_file) . ' ' . scalar(@odd_log), '2 1', 'two lines in the file, one in the server log');
my @rests = ((map { /^\{"ts":"[^"]*","pid":\d+,"database":"postgres",(.*)$/ ? "{$1" : "no keys: $_" } @odd_file), @odd_log);
is($rests[0], $rests[1], 'the backend and the audit writer write the same line');
is($rests[0], $rests[2], 'the server log has the same object');
my $odd = eval { decode_json($rests[2]) } // {};
is($odd->{relations}[0]{relation} // '', "public.\"odd\"\"\\\t\x01\"", 'the name escaped, and read back whole');

if (!Test::More->builder->is_passing)
{
	diag('--- audit files ---');
	diag(join("\n", files("$dir/*"), files("$data/blocked_audit/*")));
	diag('--- server log (tail) ---');
	my @l = split /\n/, slurp_file($log);
	diag(substr($_, 0, 300)) for @l[ ($#l > 39 ? $#l - 39 : 0) .. $#l ];
}
my @all_files = files("$dir/*");
note('audit files: ' . all_lines(files("$dir/*.jsonl")) . ' lines in ' . scalar(@all_files) . ' files');

$node->stop;
done_testing();
