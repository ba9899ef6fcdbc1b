# t/060_sweep_worker.pl — the erasure worker: on a node of its own
# (profile_guard.database = postgres, sweep_interval = 1s, sweep_batch = 50)
# it
#   - logs once that the extension is missing and keeps waiting,
#   - erases due work by itself once there is some (awaited by a bounded
#     poll), in batches, logging it,
#   - follows a changed sweep_interval on SIGHUP (reload),
#   - ends on SIGTERM (pg_terminate_backend) and is started again.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use ProfileGuardTest;

my $node = pfg_node('worker', conf => [ "profile_guard.database = 'postgres'",
	'profile_guard.sweep_interval = 1', 'profile_guard.sweep_batch = 50' ]);
sub await_t { return pfg_await($node, 'postgres', @_); }
sub query { return $node->safe_psql('postgres', $_[0]); }

# the worker runs, and says once that the extension is missing
ok(await_t("SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'profile_guard erasure worker'", 10),
	'an erasure worker in pg_stat_activity');
sleep 3;		# three more intervals
my $n = () = slurp_file($node->logfile)
  =~ /extension profile_guard is not created in database "postgres"/g;
is($n, 1, 'the missing extension is logged once');

query(<<'SQL');
BEGIN;
CREATE EXTENSION profile_guard;
SET search_path = public, profile_guard;
SELECT define_tag('interest.sports', 'preference');
SELECT define_tag('interest.music', 'preference');
SELECT define_purpose('rec', 'recommendations', ARRAY['interest.*']);
SELECT register_subject(i::text) FROM generate_series(1, 300) i;
SELECT grant_consent(i::text, 'rec', ARRAY['interest.*']) FROM generate_series(1, 300) i;
-- wide rows (about 14 a block), so that the due rows span many blocks
CREATE TABLE profiles (id int PRIMARY KEY, sports text, music text, pad text);
SELECT protect('profiles', 'id');
SELECT classify('profiles', 'sports', 'interest.sports');
SELECT classify('profiles', 'music', 'interest.music');
INSERT INTO profiles SELECT i, 'sport ' || i, 'music ' || i, repeat('x', 500) FROM generate_series(1, 300) i;
COMMIT;
-- due work: 100 subjects withdraw music, 100 ask for erasure
SELECT withdraw_consent(i::text, 'rec', ARRAY['interest.music']) FROM generate_series(1, 100) i;
SELECT request_erasure(i::text) FROM generate_series(101, 200) i;
SQL

# the last batch commits before the sweep's closing transaction completes
# the requests: both are awaited
ok(await_t('SELECT count(*) = 200 AND count(music) = 100 FROM profiles', 30),
	'the worker erases the due work by itself')
  or diag(query('SELECT count(*), count(music) FROM profiles'));
ok(await_t('SELECT count(*) = 100 FROM profile_guard.erasure_request WHERE completed_at IS NOT NULL', 30),
	'the worker completes the erasure requests once their rows are erased')
  or diag(query('SELECT count(*) FILTER (WHERE completed_at IS NULL) FROM profile_guard.erasure_request'));
is(query(<<'SQL'),
SELECT string_agg(format('%s %s %s %s', tag, reason, action, total), ', ' ORDER BY tag, reason, action)
	FROM (SELECT tag, reason, action, sum(rows) AS total FROM profile_guard.erasure_log
		  WHERE relation = 'public.profiles' GROUP BY 1, 2, 3) x
SQL
	'interest.music request delete 100, interest.music withdrawn null_cell 100, interest.sports request delete 100',
	'the erasure log');
is(query('SELECT bool_and(id > 200 OR (id <= 100 AND music IS NULL AND sports IS NOT NULL)) FROM profiles'),
	't', 'the right rows were erased');
# a batch is a range of blocks holding about sweep_batch (50) rows, at least
# one block: the 200 rows over about 15 blocks take at least 4 transactions
my $xacts = query("SELECT count(DISTINCT xmin::text) FROM profile_guard.erasure_log WHERE relation = 'public.profiles'");
cmp_ok($xacts, '>=', 4, 'batches of 50 rows in their own transactions');

# SIGHUP: a long interval is followed (work stays undone), a short one again
query('ALTER SYSTEM SET profile_guard.sweep_interval = 3600');
query('SELECT pg_reload_conf()');
sleep 2;		# the reload wakes the worker; it sweeps once, then waits an hour
query("SELECT profile_guard.withdraw_consent('250', 'rec', ARRAY['interest.sports'])");
sleep 3;
is(query('SELECT sports IS NOT NULL FROM profiles WHERE id = 250'), 't',
	'the worker does not sweep when sweep_interval is reloaded as 1 hour');
query('ALTER SYSTEM SET profile_guard.sweep_interval = 1');
query('SELECT pg_reload_conf()');
ok(await_t('SELECT sports IS NULL FROM profiles WHERE id = 250', 15),
	'the worker sweeps after sweep_interval is reloaded as 1 second');

# SIGTERM ends it; the postmaster starts it again
my $pid = query("SELECT pid FROM pg_stat_activity WHERE backend_type = 'profile_guard erasure worker'");
query("SELECT pg_terminate_backend($pid)");
ok(await_t("SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = $pid", 5),
	'the worker ends on SIGTERM');
ok(await_t("SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'profile_guard erasure worker'", 20),
	'the worker is started again');

# the settings are what they say
is(query(<<'SQL'),
SELECT string_agg(name || '=' || context, ' ' ORDER BY name) FROM pg_settings
	WHERE name IN ('profile_guard.database', 'profile_guard.sweep_interval', 'profile_guard.sweep_batch')
SQL
	'profile_guard.database=postmaster profile_guard.sweep_batch=sighup profile_guard.sweep_interval=sighup',
	'setting contexts');

$node->stop;
done_testing();
