# t/110_coexist.pl — profile_guard next to pg_stat_statements and pgaudit in
# shared_preload_libraries, in both orders:
#
#   - the gate enforces the same: the same gated rows and cells under a
#     purpose (sensitive values decrypted where consented), refusal without a
#     purpose, raw ciphertext for a superuser; through plain queries, a
#     prepared statement, a cursor and COPY TO;
#   - pg_stat_statements (track = all, track_utility = on) never holds a
#     sensitive plaintext value or the master key in its query texts, after
#     sensitive values were written (INSERT, UPDATE, prepared INSERT, COPY FROM,
#     classify() of a column holding plaintext) and read.
#
# Nodes of its own (the library list is fixed at server start); needs pgaudit
# in the installation (test/run_tests.sh copies it from postgresql-15-pgaudit,
# test/lib/tap_prepare.sh's tap_install_pgaudit).
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use ProfileGuardTest;

my $db = 'regress_coexist';

# what the application sees, whatever the library order (see ops_fixture.sql)
my @expected_rec = ('1|ann|football|jazz|SECRET-asthma-1', '2|bob|tennis||', '3|cat||pop|',
	'6|fay|chess|folk|SECRET-diabetes-6', '7|gus|hockey||SECRET-gout-7', '8|hal|||SECRET-flu-8',
	'9|ida|||SECRET-copy-9');
my $expected_ads = '5|eve|golf|soul|';
my $expected_app_reads = join("\n", '-- rec', @expected_rec,
	'-- filter', '5', '1',
	'-- prepared', 'SECRET-asthma-1', '',
	'-- cursor', '1|SECRET-asthma-1', '2|',
	'-- copy', (map { join("\t", map { $_ eq '' ? '\N' : $_ } split /\|/, $_, -1) } @expected_rec),
	'-- ads', $expected_ads);

# one session as the application role; each block prints a marker line
my $app_reads = <<'SQL';
\echo -- rec
SET profile_guard.purpose = 'rec';
SELECT id, name, sports, music, health FROM profiles ORDER BY id;
\echo -- filter
SELECT count(*) FROM profiles WHERE health LIKE 'SECRET-%';
SELECT count(*) FROM profiles WHERE health = 'SECRET-flu-8';
\echo -- prepared
PREPARE p(int) AS SELECT health FROM profiles WHERE id = $1;
EXECUTE p(1);
EXECUTE p(2);
\echo -- cursor
BEGIN;
DECLARE c CURSOR FOR SELECT id, health FROM profiles ORDER BY id;
FETCH 2 FROM c;
COMMIT;
\echo -- copy
COPY profiles TO STDOUT;
\echo -- ads
SET profile_guard.purpose = 'ads';
SELECT id, name, sports, music, health FROM profiles ORDER BY id;
EXECUTE p(1);
SQL

sub run_order
{
	my ($order, $label) = @_;
	note("shared_preload_libraries = '$order'");
	my $node = pfg_node("coexist_$label", preload => $order,
		conf => [ 'pg_stat_statements.track = all', 'pg_stat_statements.track_utility = on',
			"pgaudit.log = 'all'", 'pgaudit.log_relation = on', 'pgaudit.log_catalog = on' ]);
	my $key = slurp_file(pfg_key_file($node));
	my $q = sub { return $node->safe_psql($db, $_[0]); };

	$node->safe_psql('postgres', "CREATE DATABASE $db");
	$q->('CREATE EXTENSION pg_stat_statements; CREATE EXTENSION pgaudit');
	# its own session: see t/020_stale_cache_after_create_extension.pl
	$q->('CREATE EXTENSION profile_guard');
	my ($rc, $out) = pfg_psql($node, $db, '', '-v', 'ON_ERROR_STOP=1',
		'-f', pfg_root() . '/test/lib/ops_fixture.sql');
	is($rc, 0, "$label: the fixture loads") or diag($out);
	is($q->("SELECT string_agg(extname, ',' ORDER BY extname) FROM pg_extension"),
		'pg_stat_statements,pgaudit,plpgsql,profile_guard', "$label: the three extensions are created");

	# more sensitive writes, through every path that carries a value
	($rc, $out) = pfg_psql($node, $db, <<'SQL', '-v', 'ON_ERROR_STOP=1');
SET client_min_messages = warning;
SELECT profile_guard.register_subject(s::text) FROM generate_series(7, 9) s;
SELECT profile_guard.grant_consent(s::text, 'rec', ARRAY['interest.sports', 'health.condition'], separate => true)
FROM generate_series(7, 9) s;
INSERT INTO profiles VALUES (7, 'gus', 'hockey', NULL, 'SECRET-gout-7');
PREPARE ins(int, text, text) AS INSERT INTO profiles (id, name, health) VALUES ($1, $2, $3);
EXECUTE ins(8, 'hal', 'SECRET-wrong-8');
UPDATE profiles SET health = 'SECRET-flu-8' WHERE id = 8;
COPY profiles (id, name, health) FROM STDIN;
9	ida	SECRET-copy-9
\.
-- classify() encrypting plaintext already in a column
CREATE TABLE later (uid int, note text);
INSERT INTO later VALUES (1, 'SECRET-late-1'), (6, 'SECRET-late-6');
SELECT profile_guard.classify('later', 'note', 'health.condition')
FROM (SELECT profile_guard.protect('later', 'uid')) p;
SQL
	is($rc, 0, "$label: sensitive writes") or diag($out);
	$q->('GRANT SELECT ON later TO regress_ops_app');

	# no purpose: refused, with the documented SQLSTATE
	my $err = pfg_psql($node, $db, 'SELECT health FROM profiles',
		'-U', 'regress_ops_app', '-v', 'VERBOSITY=verbose');
	ok($err =~ /42501/ && $err =~ /no purpose declared/,
		"$label: a read without purpose is refused with 42501") or diag($err);

	($rc, $out) = pfg_psql($node, $db, $app_reads, '-v', 'ON_ERROR_STOP=1', '-U', 'regress_ops_app');
	is($rc, 0, "$label: the application's reads run") or diag($out);
	is($out, $expected_app_reads, "$label: gated results as expected");
	is(scalar pfg_psql($node, $db, "SET profile_guard.purpose = 'rec';\nSELECT uid, note FROM later ORDER BY uid",
			'-v', 'ON_ERROR_STOP=1', '-U', 'regress_ops_app'),
		"1|SECRET-late-1\n6|SECRET-late-6", "$label: the column classified with plaintext in it decrypts");

	# the superuser reads raw stored values: ciphertext
	ok($q->("SELECT count(*) FROM profiles WHERE health LIKE 'pgt2%'") eq '5'
		  && $q->("SELECT count(*) FROM profiles WHERE health LIKE '%SECRET%'") eq '0',
		"$label: stored sensitive values are all ciphertext");
	is($q->("SELECT count(*) FROM later WHERE note LIKE '%SECRET%'"), '0',
		"$label: classify() left no plaintext in the column");

	# the key settings are hidden from the application
	($rc) = pfg_psql($node, $db, 'SHOW profile_guard.master_key_file',
		'-v', 'ON_ERROR_STOP=1', '-U', 'regress_ops_app');
	isnt($rc, 0, "$label: the application cannot read profile_guard.master_key_file");

	# pg_stat_statements: statements were tracked, none holds a value or the key
	my $n = $q->('SELECT count(*) FROM pg_stat_statements');
	cmp_ok($n, '>', 20, "$label: pg_stat_statements tracked more than 20 statements");
	isnt($q->("SELECT count(*) FROM pg_stat_statements WHERE query LIKE '%profile_guard%classify%'"), '0',
		"$label: pg_stat_statements tracked the API calls");
	# fetched and searched here, so that the key never enters a statement
	my @leaks = grep { /SECRET-(asthma|diabetes|gout|wrong|flu|copy|late)|\Q$key\E/i }
	  split /\n/, $q->('SELECT query FROM pg_stat_statements');
	is(scalar @leaks, 0, "$label: pg_stat_statements holds no sensitive value and not the key")
	  or diag(join("\n", @leaks));
	# pgaudit did log, and did not log the key
	my $log = slurp_file($node->logfile);
	like($log, qr/AUDIT: SESSION/, "$label: pgaudit logged");
	unlike($log, qr/\Q$key\E/i, "$label: the master key is not in the server log");

	pfg_check_alive($node, "$label server");
	$node->stop;
}

run_order('profile_guard,pg_stat_statements,pgaudit', 'guard_first');
run_order('pgaudit,pg_stat_statements,profile_guard', 'guard_last');
done_testing();
