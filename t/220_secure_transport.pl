# t/220_secure_transport.pl — profile_guard.secure_transport: on a node of
# its own that listens on 127.0.0.1 too (pg_hba.conf: initdb's trust for
# host), a statement that would serve a sensitive cell over plain TCP is
# refused with 28000, a DETAIL naming table, column and tag, and a HINT —
# by every way of reading (plain select, view, prepared statement, cursor,
# COPY (SELECT …) TO, COPY table TO, row_to_json(t), a SQL function,
# PL/pgSQL that catches the error gets no value, a long-shape value);
# general tags are still served, and a masked cell is not refused.  With
# 'all' general tags are refused too; with 'off' everything is served.
# Over the local socket, and over TCP with SSL (a self-signed certificate
# made here with openssl), the sensitive cell is served.  Applications
# cannot change the setting (42501).  assess() reports §8 (secure
# transport) from pg_hba.conf and ssl.  The sweep over plain TCP and the
# erasure worker still erase.
use strict;
use warnings;
use IPC::Run;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);
use ProfileGuardTest;

my $node = pfg_node('transport', conf => [ "listen_addresses = '127.0.0.1'",
	"profile_guard.database = 'postgres'", 'profile_guard.sweep_interval = 1' ]);
my $data = $node->data_dir;
my $tcp = 'host=127.0.0.1 port=' . $node->port . ' dbname=postgres';

# psql on a connection string: the output and errors, as pfg_psql gives them
sub psql_on
{
	my ($conn, $sql, @args) = @_;
	my $out = '';
	IPC::Run::run([ 'psql', '-X', '-q', '-At', @args, $conn ], '<', \$sql, '>&', \$out);
	$out =~ s/\n+\z//;
	return $out;
}
# as the application over plain TCP, the local socket, or SSL: the output,
# and the error with its SQLSTATE, DETAIL and HINT
sub app_tcp { return psql_on("$tcp user=regress_st_app sslmode=disable", $_[0], '-v', 'VERBOSITY=verbose'); }
sub app_ssl { return psql_on("$tcp user=regress_st_app sslmode=require", $_[0], '-v', 'VERBOSITY=verbose'); }
sub app_local
{
	return scalar pfg_psql($node, 'postgres', $_[0], '-U', 'regress_st_app', '-v', 'VERBOSITY=verbose');
}
# as the superuser over the local socket; dies on an error
sub su { return $node->safe_psql('postgres', $_[0]); }

su(<<'SQL');
SET client_min_messages = warning;
CREATE EXTENSION profile_guard;
SET search_path = public, profile_guard;
CREATE ROLE regress_st_app LOGIN;
SELECT define_tag('interest.sports', 'preference');
SELECT define_tag('health.condition', 'medical_health');
SELECT define_purpose('care', 'care', ARRAY['interest.sports', 'health.condition']);
SELECT allow_purpose('regress_st_app', 'care');
ALTER ROLE regress_st_app SET profile_guard.purpose = 'care';
SELECT register_subject(s) FROM unnest(ARRAY['1', '2', '3']) s;
SELECT grant_consent('1', 'care', ARRAY['interest.sports', 'health.condition'], separate => true);
SELECT grant_consent('3', 'care', ARRAY['interest.sports', 'health.condition'], separate => true);
CREATE TABLE profiles (uid text PRIMARY KEY, sports text, health text);
SELECT protect('profiles', 'uid');
SELECT classify('profiles', 'sports', 'interest.sports');
SELECT classify('profiles', 'health', 'health.condition');
INSERT INTO profiles VALUES ('1', 'tennis', 'SECRET-ASTHMA'), ('3', 'golf', 'SECRET-GOUT');
-- subject 2: its health cell is written, then only an ordinary consent remains
SELECT grant_consent('2', 'care', ARRAY['interest.sports', 'health.condition'], separate => true);
INSERT INTO profiles VALUES ('2', 'chess', 'SECRET-HIDDEN');
SELECT grant_consent('2', 'care', ARRAY['interest.sports', 'health.condition']);
CREATE TABLE tag_rows (uid text, tag text, value text);
SELECT protect('tag_rows', 'uid', tag_column => 'tag', value_column => 'value');
INSERT INTO tag_rows VALUES ('1', 'interest.sports', 'squash'), ('1', 'health.condition', 'SECRET-LONG');
CREATE VIEW profiles_view AS SELECT uid, health FROM profiles;
CREATE FUNCTION health_of(text) RETURNS text LANGUAGE sql STABLE AS 'SELECT health FROM profiles WHERE uid = $1';
GRANT SELECT ON profiles, tag_rows, profiles_view TO regress_st_app;
SQL

note('plain TCP, secure_transport = sensitive (the default)');
my $out = app_tcp("SELECT health FROM profiles WHERE uid = '1'");
like($out, qr/^ERROR:  28000: sensitive tag "health\.condition" is served only over a secure connection/m,
	'plain select over TCP refused');
like($out, qr/\QDETAIL:  The statement would serve sensitive tag "health.condition" of column "health" of table "profiles" over plain TCP without SSL, and profile_guard.secure_transport = sensitive.\E/,
	'the DETAIL names table, column and tag');
like($out, qr/HINT:  Connect with sslmode=require/, 'a HINT');

my @ways = (
	"SELECT health FROM profiles_view WHERE uid = '1'",
	"PREPARE p AS SELECT health FROM profiles ORDER BY uid; EXECUTE p",
	"BEGIN; DECLARE c CURSOR FOR SELECT * FROM profiles ORDER BY uid; FETCH ALL FROM c; COMMIT",
	"COPY (SELECT health FROM profiles) TO STDOUT",
	"COPY profiles TO STDOUT",
	"SELECT row_to_json(t) FROM profiles t",
	"SELECT t::text FROM profiles t",
	"SELECT health_of('1')",
	"SELECT count(*) FROM profiles WHERE health = 'SECRET-ASTHMA'",
	"SELECT value FROM tag_rows WHERE tag = 'health.condition'",
	"SELECT value FROM tag_rows",
	"SELECT t FROM tag_rows t");
for my $q (@ways)
{
	$out = app_tcp($q);
	like($out, qr/ERROR:  28000/, "refused over TCP: $q");
	unlike($out, qr/SECRET/, "no value served over TCP: $q");
}
$out = app_tcp(<<'SQL');
DO $$
DECLARE v text;
BEGIN
	BEGIN
		SELECT health INTO v FROM profiles WHERE uid = '1';
	EXCEPTION WHEN OTHERS THEN
		RAISE NOTICE 'caught: %, v = %', SQLSTATE, coalesce(v, 'none');
	END;
	RAISE NOTICE 'after: v = %', coalesce(v, 'none');
END $$
SQL
ok($out =~ /caught: 28000, v = none/ && $out =~ /after: v = none/,
	'PL/pgSQL catching the refusal gets no value') or diag($out);
unlike($out, qr/SECRET/, 'PL/pgSQL got no value');

is(app_tcp("SELECT string_agg(sports, ',' ORDER BY uid) FROM profiles"), 'tennis,chess,golf',
	'general tags over TCP');
is(app_tcp("SELECT coalesce(health, 'masked') FROM profiles WHERE uid = '2'"), 'masked',
	'a masked cell over TCP is not refused');
is(app_tcp("SELECT value FROM tag_rows WHERE tag = 'interest.sports'"), 'squash',
	'a general long-shape tag over TCP');

like(app_tcp("SET profile_guard.secure_transport = 'off'"), qr/ERROR:  42501/,
	'the application cannot change secure_transport');
like(app_tcp("SELECT set_config('profile_guard.secure_transport', 'off', false)"), qr/ERROR:  42501/,
	'... nor by set_config');
is(su("SELECT context FROM pg_settings WHERE name = 'profile_guard.secure_transport'"), 'superuser',
	'secure_transport is a superuser setting');

note('the local socket');
is(app_local("SELECT health FROM profiles WHERE uid = '1'"), 'SECRET-ASTHMA',
	'sensitive read over the local socket');

note('all, off');
su("ALTER ROLE regress_st_app SET profile_guard.secure_transport = 'all'");
$out = app_tcp("SELECT sports FROM profiles WHERE uid = '1'");
like($out, qr/ERROR:  28000: general tag "interest\.sports" is served only over a secure connection/,
	"'all' refuses a general tag");
like($out, qr/secure_transport = all/, 'the DETAIL names the setting');
is(app_tcp("SELECT count(*) FROM profiles"), '3', "'all': a read of no tag cell");
is(app_local("SELECT sports FROM profiles WHERE uid = '1'"), 'tennis', "'all' over the local socket");
su("ALTER ROLE regress_st_app SET profile_guard.secure_transport = 'off'");
is(app_tcp("SELECT health FROM profiles WHERE uid = '1'"), 'SECRET-ASTHMA', "'off' over TCP");
su("ALTER ROLE regress_st_app RESET profile_guard.secure_transport");

note('assess(): §8 (secure transport)');
my $row = su("SELECT status || ': ' || detail FROM profile_guard.assess() WHERE clause = '§8 (secure transport)'");
like($row, qr/^partly:.*\Qhost all all 127.0.0.1)\E/s, 'assess §8 with host lines and sensitive: partly');
$row = su("SET profile_guard.secure_transport = 'off';\n"
	. "SELECT status FROM profile_guard.assess() WHERE clause = '§8 (secure transport)'");
is($row, 'not_met', "assess §8 with 'off': not_met");

note('SSL: a self-signed certificate');
my ($ossl_out, $ossl_err);
ok(IPC::Run::run([ 'openssl', 'req', '-new', '-x509', '-days', '2', '-nodes', '-subj', '/CN=localhost',
	'-keyout', "$data/server.key", '-out', "$data/server.crt" ], '>', \$ossl_out, '2>', \$ossl_err),
	'openssl makes a certificate') or BAIL_OUT("openssl: $ossl_err");
chmod 0600, "$data/server.key";
su("ALTER SYSTEM SET ssl = on;\nSELECT pg_reload_conf()");
ok(pfg_await($node, 'postgres', "SELECT current_setting('ssl') = 'on'", 5), 'ssl is on');
is(app_ssl("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"), 't', 'an SSL connection');
is(app_ssl("SELECT health FROM profiles WHERE uid = '1'"), 'SECRET-ASTHMA', 'sensitive read over SSL');
is(app_ssl("COPY (SELECT health FROM profiles WHERE uid = '3') TO STDOUT"), 'SECRET-GOUT', 'COPY over SSL');
like(app_tcp("SELECT health FROM profiles WHERE uid = '1'"), qr/ERROR:  28000/,
	'plain TCP still refused once ssl is on');

# only hostssl lines: met
my $hba = slurp_file("$data/pg_hba.conf");
$hba =~ s/^host(\s)/hostssl$1/mg;
open my $fh, '>', "$data/pg_hba.conf" or die "pg_hba.conf: $!";
print $fh $hba;
close $fh;
su('SELECT pg_reload_conf()');
usleep(500_000);
is(su("SELECT status || ': ' || detail FROM profile_guard.assess() WHERE clause = '§8 (secure transport)'"),
	'met: no pg_hba.conf line lets a client in over plain TCP; profile_guard.secure_transport = sensitive, ssl = on',
	'assess §8 with hostssl lines only: met');

note('erasure over TCP (SSL now) by sweep(), and by the worker');
$out = psql_on("$tcp sslmode=require", <<'SQL', '-v', 'ON_ERROR_STOP=1');
SELECT profile_guard.request_erasure('3');
SELECT * FROM profile_guard.sweep();
SQL
unlike($out, qr/ERROR/, 'request_erasure() and sweep() over TCP run') or diag($out);
is(su("SELECT count(*) FROM profiles WHERE uid = '3'"), '0', 'sweep() over TCP erases');
su("SELECT profile_guard.request_erasure('1')");
ok(pfg_await($node, 'postgres', "SELECT count(*) = 0 FROM profiles WHERE uid = '1'", 30),
	'the erasure worker erases');

$node->stop;
done_testing();
