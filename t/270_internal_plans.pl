# t/270_internal_plans.pl — the extension's own queries are never
# JIT-compiled where they cannot gain from it.  Look-ups by key plan with
# enable_seqscan and enable_bitmapscan off (so that a kept plan uses the
# index however small the table was when it was planned); a query that can
# only scan, run under such an access (the definitions the consent rules
# read once, when a subject is evaluated after a policy change), is costed
# from disable_cost up, far past jit_above_cost, and would be compiled with
# inlining and optimisation at every execution: most of a second each.
# The sweep runs its statements without JIT whatever the session's costs:
# once each, over a planner's guess of many rows, they cost seconds of
# compiling for milliseconds of work.  So does subject_report(), whose
# statements the planner's guess for tables never analysed put past
# jit_above_cost.
#
# auto_explain logs every plan, nested ones included, with its JIT summary.
# After consent changes and writes in the same transaction (the writer's
# own answers), a policy change, a subject report, reads of single
# subjects, and a sweep in a session that sets jit_above_cost = 0, no plan
# the extension ran may show JIT; a user's query made to use it does (the
# control: the log shows JIT when it happens).
#
# A node of its own; skipped where the server has no JIT provider.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use ProfileGuardTest;

my $node = pfg_node('plans', conf => [ "session_preload_libraries = 'auto_explain'",
	'auto_explain.log_min_duration = 0', 'auto_explain.log_nested_statements = on',
	'jit = on' ]);
if ($node->safe_psql('postgres', 'SELECT pg_jit_available()') ne 't')
{
	$node->stop;
	plan skip_all => 'this server has no JIT provider (llvmjit)';
}

my ($rc, $out) = pfg_psql($node, 'postgres', <<'SQL', '-v', 'ON_ERROR_STOP=1');
SET client_min_messages = warning;
CREATE EXTENSION profile_guard;
SELECT profile_guard.define_tag('interest.music', 'preference');
SELECT profile_guard.define_tag('health.condition', 'medical_health');
SELECT profile_guard.define_purpose('care', 'care', ARRAY['interest.music', 'health.condition']);
SELECT profile_guard.register_subject(i::text) FROM generate_series(1, 20) i;
SELECT profile_guard.grant_consent(i::text, 'care', ARRAY['interest.music', 'health.condition'],
	separate => true) FROM generate_series(1, 10) i;
CREATE TABLE notes (id int PRIMARY KEY, music text, health text);
SELECT profile_guard.protect('notes', 'id');
SELECT profile_guard.classify('notes', 'music', 'interest.music');
SELECT profile_guard.classify('notes', 'health', 'health.condition');
INSERT INTO notes SELECT i, 'jazz', 'asthma' FROM generate_series(1, 10) i;
SQL
is($rc, 0, 'set-up') or diag($out);

# the log from here on
my $from = -s $node->logfile;

($rc, $out) = pfg_psql($node, 'postgres', <<'SQL', '-v', 'ON_ERROR_STOP=1');
SET client_min_messages = warning;
-- a consent and a write of the same subject in one transaction: the
-- write path evaluates the subject as the transaction sees it
BEGIN;
SELECT profile_guard.grant_consent('11', 'care', ARRAY['interest.music', 'health.condition'],
	separate => true);
INSERT INTO notes VALUES (11, 'blues', 'flu');
COMMIT;
-- a policy change, then single subjects evaluated again
SELECT profile_guard.define_purpose('care', 'care, revised', ARRAY['interest.music', 'health.condition']);
SELECT profile_guard.grant_consent('12', 'care', ARRAY['interest.music', 'health.condition'],
	separate => true);
BEGIN;
SELECT profile_guard.grant_consent('13', 'care', ARRAY['interest.music']);
INSERT INTO notes (id, music) VALUES (13, 'swing');
COMMIT;
BEGIN;
SELECT profile_guard.withdraw_consent('3', 'care', ARRAY['health.condition']);
UPDATE notes SET health = NULL WHERE id = 3;
COMMIT;
-- a subject's access request, under the default costs of tables never
-- analysed
SELECT profile_guard.subject_report('4') IS NOT NULL AS reported;
SET profile_guard.purpose = 'care';
SELECT count(health) FROM notes WHERE id = 4;
SELECT count(music) FROM notes;
RESET profile_guard.purpose;
-- the sweep, with due work (a withdrawal, an erasure request), in a
-- session that asks for JIT at any cost: the sweep's statements, and the
-- table owner's code it fires, run without (the sweep's call itself is the
-- session's own statement)
SELECT profile_guard.withdraw_consent('5', 'care', ARRAY['interest.music']);
SELECT profile_guard.request_erasure('6');
SET jit_above_cost = 0;
SELECT /* the session's */ count(*) FROM profile_guard.sweep();
-- the control: a user's query made to use JIT
SELECT /* jit control */ count(*) FROM generate_series(1, 10);
SQL
is($rc, 0, 'consent changes, writes, a policy change and reads') or diag($out);

my $log = substr(slurp_file($node->logfile), $from);
# one entry per plan: "duration: ... plan:" up to the next log line
my @plans = $log =~ /LOG:  duration: [0-9.]+ ms  plan:\n(.*?)(?=\n\S|\n?\z)/sg;
cmp_ok(scalar @plans, '>', 20, 'auto_explain logged the plans, nested ones included')
  or diag(scalar @plans);
my @jit = grep { /\n\s*JIT:/ } @plans;
my @control = grep { m{/\* jit control \*/} } @jit;
is(scalar @control, 1, 'the control: the JIT summary is in the log when a query is compiled');
my @others = grep { !m{/\* (jit control|the session's) \*/} } @jit;
is(scalar @others, 0, 'no other plan is JIT-compiled, none of the extension\'s own queries')
  or diag(join("\n----\n", map { substr($_, 0, 600) } @others[ 0 .. ($#others > 2 ? 2 : $#others) ]));

$node->stop;
done_testing();
