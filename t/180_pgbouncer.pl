# t/180_pgbouncer.pl — the purpose through a real pooler.  pgbouncer
# (Debian's package) in transaction mode shares two server connections among
# six concurrent clients: two declare 'rec', two 'ads' and two nothing, each
# with SET LOCAL in every transaction.  Checked:
#
#   - every transaction starts with no purpose, whichever client used its
#     server connection before (nothing of one client's purpose survives);
#   - every read returns what the client's own purpose allows, and a client
#     without a purpose is refused every time (42501);
#   - the server connections really were shared across purposes;
#   - a consent withdrawn on a direct connection is honoured by the next
#     transaction on every pooled server connection (no cached answer of
#     before serves anybody after);
#   - a statement prepared by one client (SQL PREPARE, which lives on the
#     server connection) and executed by another is gated by the executing
#     transaction's purpose, never the preparer's.
#
# pgbouncer 1.18 (Debian 12) has no max_prepared_statements (1.21 added it),
# so protocol-level prepared statements through the pooler are tested only
# where the installed pgbouncer has it; the test says which it ran.
#
# pgbouncer is Debian's package (test/install_dependencies.sh installs it).
use strict;
use warnings;
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);
use ProfileGuardTest;

my ($pgbouncer) = grep { -x $_ } (map { "$_/pgbouncer" } split /:/, $ENV{PATH}),
  '/usr/sbin/pgbouncer', '/usr/bin/pgbouncer';
BAIL_OUT('pgbouncer is not installed (run bash test/install_dependencies.sh)') unless $pgbouncer;
my ($version) = `$pgbouncer --version` =~ /^[Pp]g[Bb]ouncer ([0-9.]+)/m;

my $db = 'regress_pgbouncer';
my $node = pfg_node('pgbouncer');
pfg_create_extension($node, $db);
my ($rc, $out) = pfg_psql($node, $db, '', '-v', 'ON_ERROR_STOP=1',
	'-f', pfg_root() . '/test/lib/ops_fixture.sql');
is($rc, 0, 'the fixture loads') or diag($out);

# ---- pgbouncer: transaction pooling, two server connections ----
my $dir = pfg_dir($node);
my $host = $node->host;
my $port = $node->port;
my $pgb_port = PostgreSQL::Test::Cluster::get_free_port();
open my $ini, '>', "$dir/pgbouncer.ini" or die "$dir/pgbouncer.ini: $!";
print $ini <<INI;
[databases]
$db = host=$host port=$port dbname=$db pool_size=2

[pgbouncer]
listen_addr =
listen_port = $pgb_port
unix_socket_dir = $host
auth_type = trust
auth_file = $dir/userlist.txt
pool_mode = transaction
default_pool_size = 2
max_client_conn = 50
ignore_startup_parameters = extra_float_digits
logfile = $dir/pgbouncer.log
pidfile = $dir/pgbouncer.pid
INI
close $ini;
open my $users, '>', "$dir/userlist.txt" or die "$dir/userlist.txt: $!";
print $users qq{"regress_ops_app" ""\n"postgres" ""\n};
close $users;
# as a daemon (its pid file lets the clean-up stop it), logging to its file only
system($pgbouncer, '-d', '-q', "$dir/pgbouncer.ini") == 0 or BAIL_OUT('pgbouncer did not start');
END
{
	if ($dir && -s "$dir/pgbouncer.pid")
	{
		my $pid = slurp_file("$dir/pgbouncer.pid");
		chomp $pid;
		kill 'TERM', $pid if $pid =~ /^\d+$/;
	}
}
my $up = 0;
for (1 .. 50)
{
	last if ($up = system('pg_isready', '-q', '-h', $host, '-p', $pgb_port, '-d', $db) == 0);
	usleep(200_000);
}
ok($up, "pgbouncer $version started, transaction pooling, 2 server connections")
  or BAIL_OUT("pgbouncer did not start ($dir/pgbouncer.log)");

my @pooled = ('psql', '-X', '-q', '-At', '-h', $host, '-p', $pgb_port, '-d', $db, '-U', 'regress_ops_app');

# one client: N transactions; each reports the purpose it started with, then
# reads under its own purpose (none: no SET LOCAL at all)
sub client_script
{
	my ($name, $purpose, $n) = @_;
	my $s = "\\set VERBOSITY sqlstate\n";
	for (1 .. $n)
	{
		$s .= "BEGIN;\n";
		$s .= "SELECT 'T|$name|' || coalesce(current_setting('profile_guard.purpose', true), '') || '|' || pg_backend_pid();\n";
		$s .= "SET LOCAL profile_guard.purpose = '$purpose';\n" if $purpose ne 'none';
		$s .= "SELECT 'R|$name|' || current_setting('profile_guard.purpose') || '|' || count(*) || '|' || count(health) || '|' || pg_backend_pid() FROM profiles WHERE sports IS NOT NULL OR music IS NOT NULL OR health IS NOT NULL;\n";
		$s .= "COMMIT;\nSELECT pg_sleep(0.002);\n";
	}
	return $s;
}

my @clients = ([ rec1 => 'rec' ], [ rec2 => 'rec' ], [ ads1 => 'ads' ], [ ads2 => 'ads' ],
	[ none1 => 'none' ], [ none2 => 'none' ]);
# six concurrent clients; their output (errors too) by name
sub run_clients
{
	my ($n) = @_;
	my (%out, %in, @h);
	for my $c (@clients)
	{
		my ($name, $purpose) = @$c;
		$in{$name} = client_script($name, $purpose, $n);
		$out{$name} = '';
		push @h, IPC::Run::start(\@pooled, '<', \$in{$name}, '>&', \$out{$name});
	}
	$_->finish for @h;
	return \%out;
}
sub lines { return grep { /$_[1]/ } split /\n/, $_[0]; }

# every read matches its client's purpose
sub check_reads
{
	my ($round, $r, $rec, $ads, $n) = @_;
	for my $c (qw(rec1 rec2 ads1 ads2))
	{
		my $purpose = substr($c, 0, 3);
		my $want = $purpose eq 'rec' ? $rec : $ads;
		my %got;
		$got{ join('|', (split /\|/)[ 2 .. 4 ]) }++ for lines($r->{$c}, qr/^R\|/);
		is(join(', ', map { "$got{$_} $_" } sort keys %got), "$n $purpose|$want",
			"$round: client $c read $n x $purpose|$want");
	}
	for my $c (qw(none1 none2))
	{
		is(scalar(lines($r->{$c}, qr/^R\|/)), 0, "$round: client $c without a purpose read no rows");
		is(scalar(lines($r->{$c}, qr/ERROR: +42501$/)), $n, "$round: client $c was refused $n times");
	}
}

# ---- round 1: six clients, 40 transactions each ----
my $r1 = run_clients(40);
my $all = join("\n", map { $r1->{ $_->[0] } } @clients);
my @t = lines($all, qr/^T\|/);
my @bad = grep { (split /\|/, $_, -1)[2] ne '' } @t;
is(scalar @bad, 0, "no transaction started with another's purpose") or diag(join("\n", @bad[ 0 .. 2 ]));
is(scalar @t, 240, 'every transaction ran (240)');
check_reads('r1', $r1, '4|2', '1|0', 40);

my %pids;
$pids{ (split /\|/)[-1] } = 1 for lines($all, qr/^[TR]\|/);
cmp_ok(scalar keys %pids, '<=', 2, 'the pool of 2 server connections served the clients');
my %purposes_of;
$purposes_of{ (split /\|/)[-1] }{ (split /\|/)[2] } = 1 for lines($all, qr/^R\|/);
my $shared = grep { keys %{ $purposes_of{$_} } > 1 } keys %purposes_of;
cmp_ok($shared, '>=', 1, "$shared server connections served two purposes: the pool was shared");

# ---- round 2: a withdrawal on a direct connection, then the pooled reads ----
$node->safe_psql($db, "SELECT profile_guard.withdraw_consent('1', 'rec')");
my $r2 = run_clients(20);
check_reads('r2', $r2, '3|1', '1|0', 20);

# ---- a statement prepared by one client, executed by others ----
my $prep = '';
IPC::Run::run(\@pooled, '<', \<<'SQL', '>&', \$prep);
\set VERBOSITY sqlstate
BEGIN;
SET LOCAL profile_guard.purpose = 'rec';
PREPARE pgb_health AS SELECT 'P|' || current_setting('profile_guard.purpose', true) || '|' || count(health) FROM profiles;
EXECUTE pgb_health;
COMMIT;
SQL
like($prep, qr/^P\|rec\|1$/m, 'the preparing client reads its own result');
my %prep;
for my $purpose ('ads', 'none')
{
	my $s = "\\set VERBOSITY sqlstate\n";
	for (1 .. 20)
	{
		$s .= "BEGIN;\n";
		$s .= "SET LOCAL profile_guard.purpose = '$purpose';\n" if $purpose ne 'none';
		$s .= "EXECUTE pgb_health;\nCOMMIT;\n";
	}
	$prep{$purpose} = '';
	IPC::Run::run(\@pooled, '<', \$s, '>&', \$prep{$purpose});
}
# on the connection that holds it: gated by the executing purpose; on the
# other: it does not exist there (26000)
is(scalar(grep { $_ ne 'P|ads|0' } lines($prep{ads}, qr/^P\|/)), 0,
	"another client's prepared statement serves ads no health cell");
is(scalar(lines($prep{none}, qr/^P\|/)), 0,
	"a client without a purpose reads nothing through another's prepared statement");
is(scalar(grep { !/ERROR: +26000$/ } lines($prep{ads}, qr/ERROR/)), 0, 'no unexpected error under ads');
is(scalar(grep { !/ERROR: +(26000|42501)$/ } lines($prep{none}, qr/ERROR/)), 0,
	'no unexpected error without purpose');
note('executed by others, the prepared statement served ads ' . scalar(lines($prep{ads}, qr/^P\|/))
	  . ' times with no health cell and no purpose never');

# ---- protocol-level prepared statements: pgbouncer 1.21 and later ----
my @v = split /\./, $version;
my $has_prepared = $v[0] > 1 || ($v[0] == 1 && $v[1] >= 21);
ok(!$has_prepared, "pgbouncer $version has no max_prepared_statements (1.21 added it; else extend this test)");
note("pgbouncer $version: protocol-level prepared statements through the pooler are not tested here")
  unless $has_prepared;

pfg_check_alive($node);
$node->stop;
done_testing();
