# t/150_audit_log.pl — the server log of a workload run with
# profile_guard.audit = all (and audit_destination = log: the trail in the
# server log; t/230_audit_file.pl tests the files) names the tags
# used and holds none of the values: not in audit lines, not in error
# messages (unique, check, not-null, foreign-key and input errors are
# provoked with known values), not in STATEMENT lines.  A bypass-role read
# is logged with audit = off.  Every audit line is one JSON object.  The
# usage counters overflow into one entry beyond profile_guard.usage_max.
#
# A node of its own, so that its server log holds this workload only.
# PFG_RUNNER_LOG (test/run_tests.sh sets it): the log of the runner's
# cluster, where sql/71_redact.sql ran (if it did), is checked too.
use strict;
use warnings;
use IPC::Run;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);
use ProfileGuardTest;

my $node = pfg_node('audit_log', conf => [ "profile_guard.audit = 'all'",
	"profile_guard.audit_destination = 'log'", 'profile_guard.usage_max = 100' ]);
my $dir = pfg_dir($node);
my ($rc, $out);

$node->safe_psql('postgres', <<'SQL');
SET client_min_messages = warning;
CREATE EXTENSION profile_guard;
SELECT profile_guard.define_tag('interest.sports', 'preference');
SELECT profile_guard.define_tag('behavior.visits', 'behavior');
SELECT profile_guard.define_tag('health.condition', 'medical_health');
SELECT profile_guard.define_purpose('recommendation', 'recommend content',
	ARRAY['interest.*', 'behavior.visits', 'health.condition']);
CREATE ROLE regress_app LOGIN;
CREATE ROLE regress_root LOGIN BYPASSRLS;
SELECT profile_guard.allow_purpose('regress_app', 'recommendation');
CREATE TABLE profiles (id int PRIMARY KEY, email text UNIQUE, nick text NOT NULL,
	sports text, visits int, health text, score int CHECK (score < 1000));
CREATE TABLE orders (order_id int PRIMARY KEY, profile_id int REFERENCES profiles);
GRANT SELECT, INSERT, UPDATE, DELETE ON profiles, orders TO regress_app;
GRANT SELECT ON profiles TO regress_root;
SELECT profile_guard.protect('profiles', 'id');
SELECT profile_guard.classify('profiles', 'sports', 'interest.sports');
SELECT profile_guard.classify('profiles', 'visits', 'behavior.visits');
SELECT profile_guard.classify('profiles', 'health', 'health.condition');
SELECT profile_guard.register_subject(s::text) FROM generate_series(1, 10) s;
SELECT profile_guard.grant_consent(s::text, 'recommendation', ARRAY['interest.*', 'behavior.visits'])
	FROM generate_series(1, 7) s;
SELECT profile_guard.grant_consent(s::text, 'recommendation', ARRAY['health.condition'], separate => true)
	FROM generate_series(1, 3) s;
SQL

# the values: general (GENVAL), sensitive (SENSVAL), in errors (ERRVAL)
($rc, $out) = pfg_psql($node, 'postgres', <<'SQL', '-v', 'ON_ERROR_STOP=1', '-U', 'regress_app');
SET profile_guard.purpose = 'recommendation';
INSERT INTO profiles
SELECT s, 'GENVALMAIL' || s, 'GENVALNICK' || s, 'GENVALSPORT' || s, 100 + s,
	   CASE WHEN s <= 3 THEN 'SENSVALHEALTH' || s END
FROM generate_series(1, 7) s;
INSERT INTO orders VALUES (1, 1);
SELECT * FROM profiles ORDER BY id;
SELECT sports, health FROM profiles WHERE id = 2;
SELECT p FROM profiles p;
UPDATE profiles SET visits = visits + 1 WHERE sports LIKE 'GENVALSPORT%';
BEGIN;
DECLARE c CURSOR FOR SELECT sports FROM profiles;
FETCH 3 FROM c;
CLOSE c;
COMMIT;
SQL
is($rc, 0, 'the workload runs') or diag($out);

# errors, each quoting a value of a guarded table (the client's errors alone)
my ($stdout, $client_errors) = ('', '');
IPC::Run::run([ 'psql', '-X', '-q', '-d', $node->connstr('postgres'), '-U', 'regress_app' ],
	'<', \<<'SQL', '>', \$stdout, '2>', \$client_errors);
SET profile_guard.purpose = 'recommendation';
INSERT INTO profiles (id, email, nick) VALUES (1, 'ERRVALMAIL1', 'ERRVALNICK1');
INSERT INTO profiles (id, email, nick) VALUES (8, 'GENVALMAIL2', 'ERRVALNICK8');
UPDATE profiles SET score = 5000 WHERE id = 1;
UPDATE profiles SET nick = NULL WHERE id = 2;
DELETE FROM profiles WHERE id = 1;
INSERT INTO orders VALUES (2, 77777);
INSERT INTO profiles (id, nick, visits) VALUES (9, 'ERRVALNICK9', 'ERRVALVISITS9');
UPDATE profiles SET visits = nick::int WHERE id = 3;
INSERT INTO profiles (id, nick, sports) VALUES (9, 'ERRVALNICK9', 'ERRVALSPORT9');
COPY profiles (id, nick, visits) FROM STDIN;
9	ERRVALNICK9	ERRVALCOPY9
\.
SELECT sports FROM profiles WHERE id = 1 AND nick = 'x' || 1/0;
SELECT sports, 1 / (id - 3) FROM profiles;
RESET profile_guard.purpose;
SELECT sports FROM profiles;
SQL

# a session that ends with a cursor open in its transaction
($rc, $out) = pfg_psql($node, 'postgres', <<'SQL', '-v', 'ON_ERROR_STOP=1', '-U', 'regress_app');
SET profile_guard.purpose = 'recommendation';
BEGIN;
DECLARE c CURSOR FOR SELECT sports, health FROM profiles;
FETCH 4 FROM c;
SQL
is($rc, 0, 'a session ends with a cursor open') or diag($out);

# a bypass role reads, with the audit switched off
($rc, $out) = pfg_psql($node, 'postgres', <<'SQL', '-v', 'ON_ERROR_STOP=1', '-U', 'regress_root');
SELECT id, sports, health FROM profiles WHERE id = 1;
SQL
is($rc, 0, 'a bypass role reads') or diag($out);
($rc, $out) = pfg_psql($node, 'postgres', <<'SQL', '-v', 'ON_ERROR_STOP=1');
SET profile_guard.audit = off;
SET ROLE regress_root;
SELECT sports FROM profiles WHERE id = 3;
RESET ROLE;
COPY profiles (id, health) TO STDOUT;
SQL
is($rc, 0, 'a bypass role reads with the audit off, a superuser copies') or diag($out);
# pg_dump reads with COPY TO, as a superuser
$node->command_ok([ 'pg_dump', '-d', $node->connstr('postgres'), '-t', 'profiles', '-f', '/dev/null' ],
	'pg_dump of the guarded table');

# more (role, purpose, tag) combinations than profile_guard.usage_max
($rc, $out) = pfg_psql($node, 'postgres', <<'SQL', '-v', 'ON_ERROR_STOP=1');
SET client_min_messages = warning;
SELECT profile_guard.define_tag('many.t' || i, 'preference') FROM generate_series(1, 110) i;
CREATE TABLE wide (id int PRIMARY KEY);
SELECT format('ALTER TABLE wide ADD COLUMN c%s text', i) FROM generate_series(1, 110) i \gexec
SELECT profile_guard.protect('wide', 'id');
SELECT profile_guard.classify('wide', 'c' || i, 'many.t' || i) FROM generate_series(1, 110) i;
SELECT * FROM wide;
SQL
is($rc, 0, 'more combinations than usage_max') or diag($out);

my ($overflow, $entries) = split / /, $node->safe_psql('postgres',
	"SELECT count(*) FILTER (WHERE tag = '*overflow*' AND role IS NULL AND statements > 0) || ' ' || count(*) FROM profile_guard.usage");
ok($overflow == 1 && $entries <= 101,
	"usage overflows into one entry beyond usage_max (overflow, entries: $overflow $entries)");

usleep(200_000);		# the log is written by the server processes; they have returned

my $log = slurp_file($node->logfile);
my @audit_lines = map { /profile_guard audit: (\{.*)/ ? ($1) : () } split /\n/, $log;
ok($log =~ /"event":"read".*"tag":"interest\.sports"/ && $log =~ /"tag":"health\.condition"/
	  && $log =~ /"tag":"behavior\.visits"/, 'audit lines for reads name the tags');
like($log, qr/"command":"SELECT","level":0,"relations":\[\{"relation":"public\.profiles","rows_seen":7,"rows_hidden":0\}\]/,
	'a read line counts 7 rows seen and none hidden');
like($log, qr/"rows_processed":3,"completed":true\}/, 'a cursor is one line with what was fetched');
like($log, qr/"completed":false\}/, 'a statement ended by an error is logged, not completed');
like($log, qr/"rows_processed":4,"completed":false\}/, 'a cursor left open by a session that ends is logged');
ok($log =~ /"reason":"collection_refused"/ && $log =~ /"reason":"no_purpose"/,
	'denials are logged (collection and no purpose)');
is(scalar(grep { /"event":"bypass_read","user":"regress_root"/ } split /\n/, $log), 2,
	'the bypass read with audit = off is logged');
is(scalar(grep { /"event":"bypass_read","user":"postgres",.*"command":"COPY",.*"tag":"health\.condition"/ } split /\n/, $log), 2,
	"a superuser's COPY TO and pg_dump's are logged");
# (errors on the guarded table itself quote no value at all: row-level
# security is enabled on it; the others are redacted on emission)
ok($client_errors =~ /invalid input syntax for type integer: \(redacted\)/
	  && $client_errors =~ /Key \(profile_id\)=\(redacted\) is not present/,
	'the client saw the errors, redacted') or diag($client_errors);
# (psql's "LINE 1: ..." quotes the client's own statement, not the server)
my @client_leaks = grep { !/^LINE [0-9]*:/ && /GENVAL|SENSVAL|ERRVAL|77777/ } split /\n/, $client_errors;
is(scalar @client_leaks, 0, "no value in the client's error messages") or diag(join("\n", @client_leaks));
ok($log =~ /violates unique constraint "profiles_email_key"/
	  && $log =~ /violates check constraint "profiles_score_check"/
	  && $log !~ /Failing row contains/
	  && $log =~ /invalid input syntax for type integer: \(redacted\)/
	  && $log =~ /Key \(profile_id\)=\(redacted\) is not present/,
	'the log has the errors, without values');
my @log_leaks = grep { /GENVAL|SENSVAL|ERRVAL|pgt1:|pgt2|77777/ } split /\n/, $log;
is(scalar @log_leaks, 0, 'no value anywhere in the server log') or diag(join("\n", @log_leaks));
# every audit line is one JSON object (parsed by the server itself)
open my $fh, '>', "$dir/audit.jsonl" or die "$dir/audit.jsonl: $!";
print $fh map { "$_\n" } @audit_lines;
close $fh;
my ($lines, $parsed) = split / /, $node->safe_psql('postgres', <<SQL);
CREATE TEMP TABLE l (line text);
\\copy l FROM '$dir/audit.jsonl' WITH (FORMAT csv, QUOTE e'\\x01', DELIMITER e'\\x02')
SELECT count(*) || ' ' || count(*) FILTER (WHERE line::jsonb ?& ARRAY['event', 'user', 'purpose', 'relations', 'tags']) FROM l;
SQL
ok($lines > 10 && $lines == $parsed, "every audit line parses as JSON with its keys ($lines $parsed)");

# the regression suite 71_redact provokes each error with values spelled SECRET…
my $runner_log = $ENV{PFG_RUNNER_LOG};
if ($runner_log && -r $runner_log && slurp_file($runner_log) =~ /profiles_booked_excl/)
{
	my $rlog = slurp_file($runner_log);
	ok(!(grep { /Failing row contains/ && !/Failing row contains \(redacted\)\.$/ } split /\n/, $rlog)
		  && $rlog =~ /COPY FROM not supported with row-level security/
		  && $rlog =~ /JSON data \(redacted\)/,
		"71_redact: its errors are in the runner's log, redacted");
	unlike($rlog, qr/SECRET/, "71_redact: none of its values in the runner's log");
}

if (!Test::More->builder->is_passing)
{
	diag('--- server log (audit and errors) ---');
	my @lines = grep { /audit|ERROR|DETAIL|CONTEXT|STATEMENT/ } split /\n/, $log;
	diag(substr($_, 0, 300)) for @lines[ ($#lines > 59 ? $#lines - 59 : 0) .. $#lines ];
}
note(scalar(@audit_lines) . ' audit lines');

$node->stop;
done_testing();
