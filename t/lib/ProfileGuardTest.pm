# t/lib/ProfileGuardTest.pm — what every TAP test of profile_guard needs: a
# node (PostgreSQL::Test::Cluster) that preloads the extension with a master
# key of its own (the settings test/lib/cluster.sh's pg_cluster_start gives
# its clusters), creating the extension in a database, psql with its
# output and errors in one string, in order, as a shell script's
# "$(psql ... 2>&1)" sees them, and psql sessions kept open in the
# background while a test works around them.
package ProfileGuardTest;

use strict;
use warnings;
use Exporter 'import';
use File::Spec;
use IPC::Run;
use Time::HiRes qw(usleep);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

our @EXPORT = qw(pfg_node pfg_dir pfg_key_file pfg_new_key_file pfg_create_extension
  pfg_psql pfg_await pfg_check_alive pfg_root pfg_session pfg_pump_until);

# the source tree (the tests run from it: prove t/...)
sub pfg_root
{
	return $ENV{PFG_ROOT} // '.';
}

# a 256-bit master key in hex, readable by its owner only
sub pfg_new_key_file
{
	my ($path) = @_;
	open my $rnd, '<:raw', '/dev/urandom' or die "/dev/urandom: $!";
	read($rnd, my $bytes, 32) == 32 or die "short read from /dev/urandom";
	close $rnd;
	open my $fh, '>', $path or die "$path: $!";
	print $fh unpack('H*', $bytes);
	close $fh;
	chmod 0600, $path or die "chmod $path: $!";
	return $path;
}

# a node's directory as an absolute path, for files the server reads
# (PostgreSQL::Test::Cluster's is relative when TESTDIR is not set)
sub pfg_dir
{
	my ($node) = @_;
	return File::Spec->rel2abs($node->basedir);
}

# the master key file pfg_node gave a node
sub pfg_key_file
{
	my ($node) = @_;
	return pfg_dir($node) . '/master.key';
}

# pfg_node(NAME, conf => [lines], preload => 'libraries', start => 0|1):
# initdb (UTF8, C locale), a master key, profile_guard preloaded, the
# settings of test/lib/cluster.sh's clusters, started.
sub pfg_node
{
	my ($name, %opt) = @_;
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init(extra => [ '-E', 'UTF8', '--locale=C' ], %{ $opt{init} // {} });
	my $key = pfg_new_key_file(pfg_key_file($node));
	my $preload = $opt{preload} // 'profile_guard';
	$node->append_conf('postgresql.conf', join("\n",
		"shared_preload_libraries = '$preload'",
		"profile_guard.master_key_file = '$key'",
		"max_prepared_transactions = 10",
		"log_line_prefix = '%m [%p] %u\@%d '",
		# PostgreSQL::Test::Cluster logs every statement: the values in
		# them would be in the log that tests search for leaked values
		"log_statement = none",
		@{ $opt{conf} // [] }) . "\n");
	$node->start unless defined $opt{start} && !$opt{start};
	return $node;
}

# CREATE EXTENSION profile_guard in DB (created first unless it is postgres)
sub pfg_create_extension
{
	my ($node, $db) = @_;
	$db //= 'postgres';
	$node->safe_psql('postgres', "CREATE DATABASE $db") if $db ne 'postgres';
	$node->safe_psql($db, 'CREATE EXTENSION profile_guard');
	return;
}

# pfg_psql(NODE, DB, SQL, psql options...): runs SQL (on standard input;
# undef: none, for options such as -c) with psql -X -q -At; in list context
# (exit code, output), else the output: standard output and errors
# together, in the order psql wrote them, without the trailing newlines.
# As with psql -f, the exit code is 0 after an SQL error unless the options
# include -v ON_ERROR_STOP=1.
sub pfg_psql
{
	my ($node, $db, $sql, @args) = @_;
	my $out = '';
	IPC::Run::run([ 'psql', '-X', '-q', '-At', '-d', $node->connstr($db), @args ],
		'<', (defined $sql ? \$sql : '/dev/null'), '>&', \$out);
	my $rc = $? >> 8;
	$out =~ s/\n+\z//;		# as "$(...)" does
	return wantarray ? ($rc, $out) : $out;
}

# pfg_await(NODE, DB, QUERY, SECONDS): true once QUERY prints "t", false
# after SECONDS (a bounded poll, every 0.1 s)
sub pfg_await
{
	my ($node, $db, $query, $seconds) = @_;
	for (1 .. ($seconds // 30) * 10)
	{
		my ($rc, $out) = pfg_psql($node, $db, $query);
		return 1 if $rc == 0 && $out eq 't';
		usleep(100_000);
	}
	return 0;
}

# pfg_session(NODE, DB, psql options...): a psql -X -q -At session left
# running in the background, as a hash: the harness (h), what it is fed
# (in: append SQL to it) and what it wrote, output and errors together
# (out).  pfg_pump_until waits for its answers.
sub pfg_session
{
	my ($node, $db, @args) = @_;
	my $s = { in => '', out => '', timer => IPC::Run::timer(30) };
	$s->{h} = IPC::Run::start([ 'psql', '-X', '-q', '-At', '-d', $node->connstr($db), @args ],
		'<', \$s->{in}, '>&', \$s->{out}, $s->{timer});
	return $s;
}

# pfg_pump_until(SESSION, REGEX, SECONDS): feeds the session what was
# appended to its input and reads what it writes until its output matches
# REGEX, for at most SECONDS (30); true if it matched
sub pfg_pump_until
{
	my ($s, $re, $seconds) = @_;
	$s->{timer}->start($seconds // 30);
	$s->{h}->pump until $s->{out} =~ $re || $s->{timer}->is_expired;
	return $s->{out} =~ $re;
}

# pfg_check_alive(NODE, WHAT): two checks, that the server answers and that
# its log shows no crashed backend (as the shell scenarios' ops_check_alive did)
sub pfg_check_alive
{
	my ($node, $what) = @_;
	$what //= 'server';
	my ($rc) = pfg_psql($node, 'postgres', 'SELECT 1');
	is($rc, 0, "$what is up");
	my @crashes = grep {
		/terminated by signal|was terminated by exception|server process .* exited with exit code [^0]|PANIC/
	} split /\n/, slurp_file($node->logfile);
	is(scalar @crashes, 0, "$what log shows no crashed backend")
	  or diag(join("\n", @crashes));
	return;
}

1;
