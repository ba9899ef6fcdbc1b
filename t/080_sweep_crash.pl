# t/080_sweep_crash.pl — a crash in the middle of a large sweep loses
# nothing and counts nothing twice.  On a node of its own, the erasure
# worker sweeps 200,000 rows (about 150,000 due: retention expired, and one
# subject who asked for erasure) in batches of 500; the server is stopped
# with "pg_ctl stop -m immediate" part-way, restarted, and the worker
# finishes.  At every moment rows left + rows logged = rows at the start;
# at the end exactly the due rows are gone, the other rows are all there, and
# the log counts each erased row (and the key destruction, the tombstones,
# the forgetting) exactly once; the subject who asked is forgotten in the
# transaction that completes the request.  ROWS overrides the row count.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);
use ProfileGuardTest;

my $rows = $ENV{ROWS} // 200000;
my $node = pfg_node('sweep_crash', conf => [ "profile_guard.database = 'postgres'",
	'profile_guard.sweep_interval = 1', 'profile_guard.sweep_batch = 500' ]);
sub query { return $node->safe_psql('postgres', $_[0]); }
sub await_t { return pfg_await($node, 'postgres', $_[0], $_[1] // 60); }

# everything in one transaction: the worker sees all of it or nothing
query(<<SQL);
BEGIN;
CREATE EXTENSION profile_guard;
SET search_path = public, profile_guard;
SELECT define_tag('behavior.visit', 'behavior');
SELECT define_tag('interest.sports', 'preference');
SELECT define_purpose('ads', 'advertising', ARRAY['behavior.*', 'interest.*'], retention => '30 days');
SELECT register_subject(i::text) FROM generate_series(1, 1000) i;
SELECT grant_consent(i::text, 'ads', ARRAY['behavior.*', 'interest.*']) FROM generate_series(1, 1000) i;
CREATE TABLE events (uid int NOT NULL, tag text NOT NULL, value text, collected timestamptz NOT NULL);
-- 3 of 4 rows are older than the retention
INSERT INTO events
SELECT 1 + i % 1000, CASE WHEN i % 5 = 0 THEN 'interest.sports' ELSE 'behavior.visit' END,
	   'v' || i, CASE WHEN i % 4 = 0 THEN now() ELSE now() - interval '60 days' END
FROM generate_series(1, $rows) i;
SELECT protect('events', 'uid', 'collected', 'tag', 'value');
SELECT request_erasure('7');
CREATE TABLE expected AS
SELECT count(*) AS total,
	   count(*) FILTER (WHERE collected < now() - interval '30 days' OR uid = 7) AS due
FROM events;
COMMIT;
SQL
my ($total, $due) = split /\|/, query('SELECT total, due FROM expected');
note("$total rows, $due due");

my $logged_q = "SELECT coalesce(sum(rows), 0) FROM profile_guard.erasure_log WHERE relation = 'public.events'";
# the invariant, in one snapshot: rows left + rows logged = rows at the start
my $invariant_q = "SELECT (SELECT count(*) FROM events) + ($logged_q) = (SELECT total FROM expected)";

# wait until the worker is part-way, watching its progress report
my $seen_progress = 0;
my $n = 0;
for (1 .. 1200)
{
	$n = query($logged_q);
	$seen_progress = 1
	  if !$seen_progress
	  && query("SELECT query FROM pg_stat_activity WHERE backend_type = 'profile_guard erasure worker'")
	  =~ /^profile_guard sweep: public\.events, batch/m;
	last if $n >= $due / 10;
	usleep(50_000);
}
cmp_ok($n, '<', $due, "the sweep has not finished before the crash ($n of $due logged)");
cmp_ok($n, '>', 0, 'the sweep started');
$node->stop('immediate');
note("immediate stop after about $n of $due rows");
ok($seen_progress, "pg_stat_activity showed the sweep's progress");

$node->start;
is(query($invariant_q), 't', 'after the crash, rows left + rows logged = rows at the start');
note('after restart: rows left, rows logged: '
	  . query("SELECT (SELECT count(*) FROM events), ($logged_q)"));

# the worker picks up where the crash left it
ok(await_t("SELECT count(*) = 0 FROM events WHERE collected < now() - interval '30 days' OR uid = 7", 120),
	'the restarted worker finishes')
  or diag(query("SELECT count(*) FROM events WHERE collected < now() - interval '30 days' OR uid = 7")
	  . ' due rows left');
ok(await_t("SELECT completed_at IS NOT NULL FROM profile_guard.erasure_request
	   WHERE subject_hash = profile_guard._subject_hash('7')", 30),
	'the erasure request is completed');
# completed and forgotten in one transaction: the request keeps only the
# hash, and no table of the catalog names subject 7 any more (the log of
# changed subjects until the next sweep at most)
is(query("SELECT subject IS NULL AND forgotten_by IS NOT NULL OR subject IS NULL AND forgotten_by IS NULL
		FROM profile_guard.erasure_request"), 't',
	'the completed request no longer names its subject');
is(query("SELECT NOT EXISTS (SELECT 1 FROM profile_guard.subject WHERE subject = '7')
		AND NOT EXISTS (SELECT 1 FROM profile_guard.consent WHERE subject = '7')
		AND NOT EXISTS (SELECT 1 FROM profile_guard.subject_event WHERE subject = '7')
		AND NOT EXISTS (SELECT 1 FROM profile_guard.subject_key WHERE subject = '7')
		AND NOT EXISTS (SELECT 1 FROM profile_guard.tag_block WHERE subject = '7')"), 't',
	'the catalog no longer holds subject 7 after its erasure was completed');
is(query("SELECT count(*) = 1 FROM profile_guard.erasure_log WHERE action = 'forget'
		AND subject_hash = profile_guard._subject_hash('7')"), 't',
	'the forgetting is logged once');

is(query($invariant_q), 't', 'rows left + rows logged = rows at the start');
is(query('SELECT count(*) = (SELECT total - due FROM expected) FROM events'), 't',
	'no row that was not due is missing')
  or diag(query('SELECT count(*) FROM events'));
is(query("SELECT ($logged_q) = (SELECT due FROM expected)"), 't',
	"the log counts the $due due rows")
  or diag(query($logged_q) . ' rows logged');
is(query("SELECT sum(rows) FILTER (WHERE reason = 'request') = (SELECT count(*) FROM generate_series(1, $total) i WHERE 1 + i % 1000 = 7)
		FROM profile_guard.erasure_log WHERE relation = 'public.events'"), 't',
	"the requested subject's rows are all logged as request");
is(query("SELECT count(*) FILTER (WHERE action = 'destroy_key') = 1 AND count(*) FILTER (WHERE action = 'tombstone') = 1
		FROM profile_guard.erasure_log"), 't',
	'key destruction and tombstones are logged once');
# a manual sweep now has nothing left to do
is(query('SELECT count(*) = 0 FROM profile_guard.sweep()'), 't',
	'a sweep after the worker finds no work');
# and by now a later sweep has pruned the log of changed subjects too
is(query("SELECT NOT EXISTS (SELECT 1 FROM profile_guard.subject_change WHERE subject = '7')"), 't',
	'the log of changed subjects no longer names subject 7');
# retention alone (the request is done): the per-tag DELETE path of sweep();
# the worker is parked first (a reload wakes it for one more sweep, then it
# waits an hour)
query('ALTER SYSTEM SET profile_guard.sweep_interval = 3600');
query('SELECT pg_reload_conf()');
await_t("SELECT state = 'idle' FROM pg_stat_activity WHERE backend_type = 'profile_guard erasure worker'", 30);
sleep 1;
await_t("SELECT state = 'idle' FROM pg_stat_activity WHERE backend_type = 'profile_guard erasure worker'", 30);
query("INSERT INTO events SELECT 1 + i % 1000, 'behavior.visit', 'late', now() - interval '90 days'
	FROM generate_series(1, 1000) i WHERE 1 + i % 1000 <> 7");
is(query("SELECT string_agg(format('%s %s %s %s', relation, tag, reason, action) || ' ' || rows, ', ')
	FROM profile_guard.sweep()"), 'public.events behavior.visit retention delete 999',
	'retention-only sweep');
is(query("SELECT count(*) = 0 FROM events WHERE value = 'late'"), 't', 'no late rows left');

$node->stop;
done_testing();
