# t/290_parallel_workers.pl — a gated read starts at most one parallel
# worker fewer than the CPUs its backend may run on.  Its work is the
# cipher's, bound by the CPU: a worker beyond them would take its time from
# the leader.  The postmaster's CPU affinity is narrowed with taskset (new
# backends inherit it); the postmaster logs each worker it starts (DEBUG1,
# "starting background worker process "parallel worker for PID n"").
#
# With one CPU the gated read runs in its leader alone, while a bypassing
# role's read of the same table, planned the same way, starts workers (the
# control: the setting up would start them); with two CPUs the gated read
# starts one worker where the planner planned three, and its rows and cells
# are those of the serial read; with profile_guard.parallel_gates = off,
# none.  The part with two CPUs is skipped where the server has one.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use ProfileGuardTest;

my $node = pfg_node('workers', conf => [ 'log_min_messages = debug1',
	'max_worker_processes = 16', 'max_parallel_workers = 8' ]);

my ($rc, $out) = pfg_psql($node, 'postgres', <<'SQL', '-v', 'ON_ERROR_STOP=1');
SET client_min_messages = warning;
CREATE EXTENSION profile_guard;
SELECT profile_guard.define_tag('interest.music', 'preference');
SELECT profile_guard.define_tag('health.condition', 'medical_health');
SELECT profile_guard.define_purpose('care', 'care', ARRAY['interest.music', 'health.condition']);
SELECT count(profile_guard.register_subject(i::text)) FROM generate_series(1, 4000) i;
SELECT count(profile_guard.grant_consent(i::text, 'care', ARRAY['interest.music', 'health.condition'],
	separate => true)) FROM generate_series(1, 4000) i WHERE i % 2 = 0;
CREATE TABLE notes (id int, music text, health text);
SELECT profile_guard.protect('notes', 'id');
SELECT profile_guard.classify('notes', 'music', 'interest.music');
SELECT profile_guard.classify('notes', 'health', 'health.condition');
SET profile_guard.purpose = 'care';
INSERT INTO notes SELECT i, CASE WHEN i % 2 = 0 THEN 'jazz' END,
	CASE WHEN i % 2 = 0 THEN 'asthma-' || i END FROM generate_series(1, 4000) i;
SELECT count(profile_guard.withdraw_consent(i::text, 'care', ARRAY['health.condition']))
	FROM generate_series(1, 4000) i WHERE i % 4 = 0;
VACUUM ANALYZE notes;
CREATE ROLE app;
GRANT SELECT ON notes TO app;
SELECT profile_guard.allow_purpose('app', 'care');
SQL
is($rc, 0, 'set-up') or diag($out);

my $postmaster = (split /\n/, slurp_file($node->data_dir . '/postmaster.pid'))[0];

# the statement's settings: a parallel plan of three workers whatever the
# table's size
my $parallel = join(' ', 'SET parallel_setup_cost = 0;', 'SET parallel_tuple_cost = 0;',
	'SET min_parallel_table_scan_size = 0;', 'SET max_parallel_workers_per_gather = 3;',
	"SET profile_guard.purpose = 'care';");
my $query = 'SELECT pg_backend_pid(), count(*), count(music), count(health), '
  . 'sum(length(health)) FROM notes';

# the workers started for one run of the query by ROLE (under SETTINGS), and
# what it returned (without the pid)
sub run_counting_workers
{
	my ($role, $settings) = @_;
	my $from = -s $node->logfile;
	my $res = $node->safe_psql('postgres',
		"$parallel $settings SET ROLE $role; $query");
	my ($pid, $rows) = split /\|/, $res, 2;
	my $log = slurp_file($node->logfile, $from);
	my $started = () = $log =~ /starting background worker process "parallel worker for PID $pid"/g;
	return ($started, $rows);
}

# the CPUs the postmaster may run on as it started (Cpus_allowed_list:
# "0-3,6")
my @cpus;
foreach my $part (split /,/, (slurp_file("/proc/$postmaster/status") =~ /^Cpus_allowed_list:\s*(\S+)/m)[0])
{
	my ($lo, $hi) = split /-/, $part;
	push @cpus, $lo .. ($hi // $lo);
}

sub set_cpus
{
	my ($cpus) = @_;
	system("taskset -p -c $cpus $postmaster >/dev/null") == 0
	  or BAIL_OUT("taskset -p -c $cpus $postmaster failed");
	return;
}

my ($started, $serial);
(undef, $serial) = run_counting_workers('app', 'SET max_parallel_workers_per_gather = 0;');
is($serial, '2000|2000|1000|10723', 'the serial read: the consenting subjects\' rows, the cells still consented to');

set_cpus($cpus[0]);
($started, $out) = run_counting_workers('postgres', '');
cmp_ok($started, '>=', 1, "one CPU: a bypassing role's read starts workers ($started)");
($started, $out) = run_counting_workers('app', '');
is($started, 0, 'one CPU: the gated read starts none');
is($out, $serial, 'one CPU: the same rows and cells');

SKIP:
{
	skip "the server may run on one CPU only", 4 if @cpus < 2;
	set_cpus("$cpus[0],$cpus[1]");
	($started, $out) = run_counting_workers('app', '');
	is($started, 1, 'two CPUs: the gated read starts one worker of the three planned');
	is($out, $serial, 'two CPUs: the same rows and cells');
	($started, $out) = run_counting_workers('app', 'SET profile_guard.parallel_gates = off;');
	is($started, 0, 'two CPUs, parallel_gates off: none');
	is($out, $serial, 'parallel_gates off: the same rows and cells');
}

$node->stop;
done_testing();
