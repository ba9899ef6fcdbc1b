# t/040_shared_cache_limits.pl — the consent answers one backend publishes in
# shared memory, at the edges of profile_guard.shared_cache_size: too small
# to hold them (each backend keeps its own), large enough (a new connection
# reads the published ones), and 0 (sharing off); for integer subjects (a
# dense array) and text subjects (a hash table of their text).  Every variant
# must give the same rows, before and after a consent change.
#
# A node of its own (the setting is read at reload).
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);
use ProfileGuardTest;

my $node = pfg_node('shared_limits',
	conf => ["profile_guard.shared_cache_size = '1MB'"]);

my ($rc, $out) = pfg_psql($node, 'postgres',
	"CREATE ROLE regress_limits_app;\nCREATE DATABASE texts;", '-v', 'ON_ERROR_STOP=1');
is($rc, 0, 'roles and databases') or diag($out);

# the same data in both databases; subjects are "1".."100000" in postgres
# and "u1".."u100000" in texts
sub setup
{
	my ($db, $prefix) = @_;
	my ($rc, $out) = pfg_psql($node, $db, <<'SQL', '-v', 'ON_ERROR_STOP=1', '-v', "prefix=$prefix");
SET client_min_messages = warning;
CREATE EXTENSION profile_guard;
SELECT profile_guard.define_tag('interest.music', 'preference');
SELECT profile_guard.define_purpose('recommendation', 'recommend', ARRAY['interest.*']);
SELECT profile_guard.allow_purpose('regress_limits_app', 'recommendation');
-- 100,000 subjects: their published answers take 1.6 MB (integers) or
-- 8.6 MB (text)
INSERT INTO profile_guard.subject (subject) SELECT :'prefix' || i FROM generate_series(1, 100000) i;
INSERT INTO profile_guard.consent (subject, purpose, purpose_version, action, tags)
SELECT :'prefix' || i, 'recommendation', 1, 'grant', ARRAY['interest.*']
  FROM generate_series(1, 100000) i WHERE i % 4 <> 0;
SELECT profile_guard._policy_changed();
CREATE TABLE t (id text PRIMARY KEY, music text);
SELECT profile_guard.protect('t', 'id');
SELECT profile_guard.classify('t', 'music', 'interest.music');
INSERT INTO t SELECT :'prefix' || i, CASE WHEN i % 4 <> 0 THEN 'm' || i END FROM generate_series(1, 100000) i;
GRANT SELECT ON t TO regress_limits_app;
SQL
	is($rc, 0, "setup $db") or diag($out);
}
setup('postgres', '');
setup('texts', 'u');

# a new connection's scan: "rows cells private-contexts"
sub scan
{
	my ($db) = @_;
	my $out = pfg_psql($node, $db // 'postgres', <<'SQL', '-v', 'ON_ERROR_STOP=1', '-F', ' ');
SET ROLE regress_limits_app;
SET profile_guard.purpose = 'recommendation';
SELECT count(id), count(music) FROM t;
RESET ROLE;
SELECT count(*) FROM pg_backend_memory_contexts WHERE name = 'profile_guard subjects';
SQL
	return join(' ', split /\n/, $out);
}

# reload a setting and wait (bounded) until new connections see it
sub set_size
{
	my ($size) = @_;
	$node->safe_psql('postgres',
		"ALTER SYSTEM SET profile_guard.shared_cache_size = '$size'");
	$node->safe_psql('postgres', 'SELECT pg_reload_conf()');
	for (1 .. 50)
	{
		return if $node->safe_psql('postgres',
			'SHOW profile_guard.shared_cache_size') eq $size;
		usleep(100_000);
	}
	BAIL_OUT("setting $size not seen after reload");
}

# 1 MB: the answers do not fit; each backend keeps its own copy
is(scan(), '75000 75000 1', '1MB, first connection');
is(scan(), '75000 75000 1', '1MB, second connection loads its own');

# 64 MB: the first scan publishes, the next connection reads them in place
set_size('64MB');
is(scan(), '75000 75000 0', '64MB, first connection publishes');
is(scan(), '75000 75000 0', '64MB, second connection attaches');

# a withdrawal: the next connection must not read the answers published before it
($rc, $out) = pfg_psql($node, 'postgres',
	"SELECT profile_guard.withdraw_consent('1', 'recommendation')", '-v', 'ON_ERROR_STOP=1');
is($rc, 0, 'withdraw') or diag($out);
is(scan(), '74999 74999 0', '64MB, after a withdrawal');
is(scan(), '74999 74999 0', '64MB, after a withdrawal, attached');

# text subjects: published as a table of their text
is(scan('texts'), '75000 75000 0', '64MB, text subjects, first connection publishes');
is(scan('texts'), '75000 75000 0', '64MB, text subjects, second connection attaches');
sub points
{
	my $out = pfg_psql($node, 'texts', <<'SQL', '-v', 'ON_ERROR_STOP=1');
SET ROLE regress_limits_app;
SET profile_guard.purpose = 'recommendation';
SELECT count(music) FROM t;
SELECT string_agg(id || '=' || coalesce(music, '-'), ' ' ORDER BY id) FROM t WHERE id IN ('u1', 'u2', 'u4', 'u41', 'x', '1');
SQL
	return (split /\n/, $out)[-1];
}
is(points(), 'u1=m1 u2=m2 u41=m41', '64MB, text subjects, key look-ups');
($rc, $out) = pfg_psql($node, 'texts',
	"SELECT profile_guard.withdraw_consent('u2', 'recommendation')", '-v', 'ON_ERROR_STOP=1');
is($rc, 0, 'withdraw u2') or diag($out);
is(points(), 'u1=m1 u41=m41', '64MB, text subjects, after a withdrawal');
is(scan('texts'), '74999 74999 0', '64MB, text subjects, after a withdrawal, attached');

# 0: sharing off
set_size('0');
is(scan(), '74999 74999 1', '0, first connection');
is(scan(), '74999 74999 1', '0, second connection');
is(scan('texts'), '74999 74999 1', '0, text subjects');

$node->stop;
done_testing();
