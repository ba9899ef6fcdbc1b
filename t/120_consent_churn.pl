# t/120_consent_churn.pl — hundreds of consent changes of every kind
# (grant, withdraw, block, unblock, opt-out, opt-in, sign-up, birth date,
# erasure request), each in its own transaction from one session, while
# long-lived sessions keep reading with warm answers (one after every change,
# one now and then, one in a transaction of its own).  After each change,
# the gated reads under two purposes are compared with the oracle:
# tag_state(), the SQL statement of the rules.
#
# A node of its own.  CHURN_CHANGES=N (default 400), CHURN_SEED=S.
use strict;
use warnings;
use IPC::Open2;
use PostgreSQL::Test::Utils;
use Test::More;
use ProfileGuardTest;

my $node = pfg_node('churn');
my ($rc, $out) = pfg_psql($node, 'postgres', <<'SQL', '-v', 'ON_ERROR_STOP=1');
SET client_min_messages = warning;
CREATE ROLE regress_churn_app;
CREATE EXTENSION profile_guard;
SELECT profile_guard.define_tag('interest.music', 'preference');
SELECT profile_guard.define_tag('interest.sports', 'preference');
SELECT profile_guard.define_tag('health.condition', 'medical_health');
SELECT profile_guard.define_purpose('recommendation', 'recommend',
	ARRAY['interest.*', 'health.condition']);
SELECT profile_guard.define_purpose('ads', 'personalised ads', ARRAY['interest.*'],
	marketing => true);
SELECT profile_guard.allow_purpose('regress_churn_app', 'recommendation');
SELECT profile_guard.allow_purpose('regress_churn_app', 'ads');
-- 3,000 subjects; one in ten a minor, one in fifty under 14
SELECT profile_guard.register_subject(i::text,
	current_date - CASE WHEN i % 50 = 0 THEN 3000 WHEN i % 10 = 0 THEN 5000 ELSE 12000 END)
  FROM generate_series(1, 3000) i;
SELECT profile_guard.grant_consent(i::text, 'recommendation',
	CASE WHEN i % 3 = 0 THEN ARRAY['interest.*', 'health.condition'] ELSE ARRAY['interest.music'] END,
	separate => i % 3 = 0, guardian => i % 50 = 0)
  FROM generate_series(1, 3000) i WHERE i % 4 <> 0;
SELECT profile_guard.grant_consent(i::text, 'ads', ARRAY['interest.*'], guardian => i % 50 = 0)
  FROM generate_series(1, 3000) i WHERE i % 2 = 0;
CREATE TABLE t (id int PRIMARY KEY, music text, sports text, health text);
-- every row has values: those of subjects without consent (and of the 300
-- that sign up later) were there before the table was protected
INSERT INTO t SELECT i, 'm' || i, 's' || i, 'h' || i FROM generate_series(1, 3300) i;
SELECT profile_guard.protect('t', 'id');
SELECT profile_guard.classify('t', 'music', 'interest.music');
SELECT profile_guard.classify('t', 'sports', 'interest.sports');
SELECT profile_guard.classify('t', 'health', 'health.condition');
GRANT SELECT ON t TO regress_churn_app;
SQL
is($rc, 0, 'setup') or diag($out);

my $changes = $ENV{CHURN_CHANGES} // 400;
my $seed = $ENV{CHURN_SEED} // int(rand(32768));
note("seed $seed, $changes changes");
srand($seed);
my $marker = 0;
my $connstr = $node->connstr('postgres');

sub session
{
	my ($out, $in);
	# errors too: a change that fails shows ERROR
	open2($out, $in, qq{psql -X -q -At -v ON_ERROR_STOP=0 -d "$connstr" 2>&1});
	return { out => $out, in => $in };
}

# run SQL in a session; its output lines, up to a marker
sub run
{
	my ($s, $sql) = @_;
	$marker++;
	my $in = $s->{in};
	print $in "$sql\n\\echo __done_$marker\n";
	$in->flush;
	my @lines;
	my $out = $s->{out};
	while (my $line = <$out>)
	{
		chomp $line;
		last if $line eq "__done_$marker";
		push @lines, $line;
	}
	return join("\n", @lines);
}

my $admin = session();
my @readers = map { session() } 1 .. 3;
run($_, "SET ROLE regress_churn_app;") for @readers;

my $gated = "SELECT count(music) || '/' || count(sports) || '/' || count(health) || '/'"
  . " || coalesce(sum(id) FILTER (WHERE music IS NOT NULL), 0) || '/'"
  . " || coalesce(sum(id) FILTER (WHERE sports IS NOT NULL), 0) FROM t;";
sub oracle
{
	my ($purpose) = @_;
	return run($admin, "SELECT count(*) FILTER (WHERE tag = 'interest.music') || '/'"
		  . " || count(*) FILTER (WHERE tag = 'interest.sports') || '/'"
		  . " || count(*) FILTER (WHERE tag = 'health.condition' AND h.health IS NOT NULL) || '/'"
		  . " || coalesce(sum(h.id) FILTER (WHERE tag = 'interest.music'), 0) || '/'"
		  . " || coalesce(sum(h.id) FILTER (WHERE tag = 'interest.sports'), 0)"
		  . " FROM profile_guard.tag_state('$purpose', NULL, false) s"
		  . " JOIN t h ON h.id::text = s.subject WHERE s.effective;");
}
sub read_as
{
	my ($s, $purpose) = @_;
	return run($s, "SET profile_guard.purpose = '$purpose'; $gated");
}

my $next_subject = 3001;
my @tags = ('interest.music', 'interest.sports', 'health.condition');
my %kinds;
my $agreed = 1;
CHANGE: for my $n (1 .. $changes)
{
	my $subject = 1 + int(rand(3000));
	my $tag = $tags[int(rand(@tags))];
	my $purpose = rand() < 0.6 ? 'recommendation' : 'ads';
	my $r = rand();
	my ($kind, $sql);
	if ($r < 0.25)
	{
		my $list = rand() < 0.5 ? "ARRAY['interest.*', 'health.condition']" : "ARRAY['$tag']";
		$list = "ARRAY['interest.*']" if $purpose eq 'ads';
		my $separate = rand() < 0.5 ? 'true' : 'false';
		my $guardian = rand() < 0.3 ? 'true' : 'false';
		($kind, $sql) = ('grant', "SELECT profile_guard.grant_consent('$subject', '$purpose', $list, separate => $separate, guardian => $guardian);");
	}
	elsif ($r < 0.45)
	{
		my $list = rand() < 0.5 ? 'NULL' : "ARRAY['$tag']";
		($kind, $sql) = ('withdraw', "SELECT profile_guard.withdraw_consent('$subject', '$purpose', $list);");
	}
	elsif ($r < 0.55) { ($kind, $sql) = ('block', "SELECT profile_guard.block_tag('$subject', '$tag');"); }
	elsif ($r < 0.65) { ($kind, $sql) = ('unblock', "SELECT profile_guard.unblock_tag('$subject', '$tag');"); }
	elsif ($r < 0.72) { ($kind, $sql) = ('opt_out', "SELECT profile_guard.opt_out('$subject');"); }
	elsif ($r < 0.79) { ($kind, $sql) = ('opt_in', "SELECT profile_guard.opt_in('$subject');"); }
	elsif ($r < 0.87)
	{
		my $days = (3000, 5000, 12000)[int(rand(3))];
		($kind, $sql) = ('birth_date', "SELECT profile_guard.register_subject('$subject', current_date - $days);");
	}
	elsif ($r < 0.97 && $next_subject <= 3300)
	{
		my $s = $next_subject++;
		($kind, $sql) = ('sign_up', "SELECT profile_guard.register_subject('$s'),"
			  . " profile_guard.grant_consent('$s', 'recommendation', ARRAY['interest.*']);");
	}
	else { ($kind, $sql) = ('erasure', "SELECT profile_guard.request_erasure('$subject');"); }
	$kinds{$kind}++;
	my $res = run($admin, $sql);
	if ($res =~ /ERROR/)
	{
		fail("change $n ($kind) failed");
		diag($res);
		$agreed = 0;
		last;
	}

	# reader 0 after every change; reader 1 every tenth; reader 2 inside
	# a repeatable-read transaction that spans ten changes
	my @now = (0);
	push @now, 1 if $n % 10 == 0;
	run($readers[2], "BEGIN ISOLATION LEVEL REPEATABLE READ;") if $n % 10 == 1;
	push @now, 2;
	for my $p ('recommendation', 'ads')
	{
		my $want = oracle($p);
		for my $i (@now)
		{
			my $got = read_as($readers[$i], $p);
			next if $got eq $want;
			is($got, $want, "change $n ($kind: $sql) under $p: reader $i reads what the oracle says");
			$agreed = 0;
			last CHANGE;
		}
	}
	run($readers[2], "COMMIT;") if $n % 10 == 0;
}
note(join(', ', map { "$_ $kinds{$_}" } sort keys %kinds));
ok($agreed, 'every read after every change agreed with the oracle');

# A reader catching up with 3,000 subjects changed by one transaction reads
# each apart: its memory at its peak (VmHWM) grows by little, where keeping
# every subject's query results to the end of the catch-up took several
# kilobytes a subject (about 60 MB here).
read_as($readers[1], 'recommendation');
my $hwm = "RESET ROLE; SELECT (regexp_match(pg_read_file('/proc/' || pg_backend_pid() || '/status'),"
  . " 'VmHWM:\\s+(\\d+)'))[1]; SET ROLE regress_churn_app;";
my $before = run($readers[1], $hwm);
# (a subject the changes above asked to erase may refuse a consent)
my $res = run($admin, "DO \$\$ BEGIN FOR i IN 1 .. 3000 LOOP BEGIN"
	  . " PERFORM profile_guard.grant_consent(i::text, 'recommendation', ARRAY['interest.music']);"
	  . " EXCEPTION WHEN OTHERS THEN NULL; END; END LOOP; END \$\$;");
unlike($res, qr/ERROR/, 'one transaction grants 3,000 consents') or diag($res);
is(read_as($readers[1], 'recommendation'), oracle('recommendation'),
	'the reader catches up with 3,000 changed subjects');
my $after = run($readers[1], $hwm);
like("$before $after", qr/^\d+ \d+$/, 'the reader\'s peak memory is read');
cmp_ok($after - $before, '<', 20_000, "catching up with 3,000 subjects: peak memory $before kB, then $after kB");
close $_->{in} for $admin, @readers;

$node->stop;
done_testing();
