# t/200_beside_citus.pl — profile_guard beside Citus 13.2 in
# shared_preload_libraries = 'citus,profile_guard'.
#
# A backend has ten relcache callback slots in all (MAX_RELCACHE_CALLBACKS);
# Citus takes several, so profile_guard may take one.  With more, every new
# connection fails with "out of relcache_callback_list slots".  Checks that
# both extensions can be created, that several fresh connections work, and
# that a gated read under a purpose gives the expected rows and cells.
#
# Citus is built from the vendored source in ../shared/vendor (beside the
# repository; see its README.md) into the installation, as root, by
# test/lib/tap_prepare.sh (test/run_tests.sh runs it).  Without the vendored
# source the test is skipped; with it but without citus.so, it fails.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use ProfileGuardTest;

my $vendor = pfg_root() . '/../shared/vendor';
my $pkglibdir = `pg_config --pkglibdir`;
chomp $pkglibdir;
if (!-f "$pkglibdir/citus.so")
{
	# a clone without the vendored tree beside it: reported, not counted
	plan skip_all => "vendored Citus source not found ($vendor)"
	  unless -f "$vendor/citus-13.2.2.tar.gz" && -f "$vendor/citus-13.2.2-pg15.20.patch";
	BAIL_OUT("citus.so not installed in $pkglibdir (test/lib/tap_prepare.sh builds it, as root)");
}

my $node = pfg_node('citus', preload => 'citus,profile_guard');
my $db = 'regress_citus';
$node->safe_psql('postgres', "CREATE DATABASE $db");
my ($rc, $out) = pfg_psql($node, $db, <<'SQL', '-v', 'ON_ERROR_STOP=1');
SET client_min_messages = warning;
CREATE EXTENSION citus;
CREATE EXTENSION profile_guard;
CREATE ROLE regress_citus_app LOGIN;
CREATE TABLE profiles (id int PRIMARY KEY, nickname text, music text, sports text);
GRANT SELECT ON profiles TO regress_citus_app;
SELECT profile_guard.define_tag('interest.music', 'preference') \gset
SELECT profile_guard.define_tag('interest.sports', 'preference') \gset
SELECT profile_guard.define_purpose('rec', 'recommend', ARRAY['interest.*']) \gset
SELECT profile_guard.allow_purpose('regress_citus_app', 'rec') \gset
SELECT profile_guard.protect('profiles', 'id') \gset
SELECT profile_guard.classify('profiles', 'music', 'interest.music') \gset
SELECT profile_guard.classify('profiles', 'sports', 'interest.sports') \gset
SELECT count(profile_guard.register_subject(i::text)) FROM generate_series(1, 3) i \gset
SELECT profile_guard.grant_consent('1', 'rec', ARRAY['interest.*']) \gset
SELECT profile_guard.grant_consent('2', 'rec', ARRAY['interest.*']) \gset
INSERT INTO profiles VALUES (1, 'ann', 'jazz', 'golf'), (2, 'bob', 'rock', 'chess'), (3, 'cat', NULL, NULL);
-- collected with consent, then no longer to be used: masked
SELECT profile_guard.block_tag('2', 'interest.sports') \gset
SELECT extname FROM pg_extension WHERE extname IN ('citus', 'profile_guard') ORDER BY 1;
SQL
is($rc, 0, 'setup') or diag($out);
is($out, "citus\nprofile_guard", 'both extensions are created');

# fresh connections, as superuser and as the application role
for my $i (1 .. 5)
{
	($rc, $out) = pfg_psql($node, $db, undef, '-v', 'ON_ERROR_STOP=1', '-c', "SELECT $i");
	ok($rc == 0 && $out eq $i, "connection $i") or diag($out);
	($rc, $out) = pfg_psql($node, $db, undef, '-v', 'ON_ERROR_STOP=1', '-U', 'regress_citus_app',
		'-c', 'SELECT 1');
	is($rc, 0, "application connection $i") or diag($out);
}

# the gate beside Citus: a purpose is required, and consent decides rows
# (subject 3 has none) and cells (subject 2's sports tag is blocked)
($rc, $out) = pfg_psql($node, $db, undef, '-v', 'ON_ERROR_STOP=1', '-U', 'regress_citus_app',
	'-c', 'SELECT music FROM profiles');
isnt($rc, 0, 'a tag column is not read without a purpose');
like($out, qr/no purpose declared/, 'the refusal says no purpose was declared');
($rc, $out) = pfg_psql($node, $db, <<'SQL', '-v', 'ON_ERROR_STOP=1', '-U', 'regress_citus_app');
SET profile_guard.purpose = 'rec';
SELECT id, nickname, music, sports FROM profiles ORDER BY id;
SQL
is($rc, 0, 'the gated read runs') or diag($out);
is($out, "1|ann|jazz|golf\n2|bob|rock|", 'the gated read gives the expected rows and cells');

pfg_check_alive($node);
$node->stop;
done_testing();
