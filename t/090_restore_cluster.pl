# t/090_restore_cluster.pl — a dump of a database with guarded tables,
# sensitive ciphertext and a consent history restores into a FRESH cluster
# that has the same master key, and enforces and decrypts exactly as before
# (t/240_dump_restore.pl checks the policy catalog within one
# cluster; this one checks data, ciphertext and keys across clusters):
#
#   - plain (psql) and custom (pg_restore) formats; the guarded tables sit in
#     schema "a_app", which pg_dump emits before schema profile_guard, so the
#     rows arrive before the consents (the collection check must not refuse
#     the restore);
#   - the stored ciphertext is byte for byte the source's (nothing encrypted
#     twice), the consent ledger is identical, the gated reads give the same
#     results, and sensitive values decrypt;
#   - a cluster with a different master key restores, but refuses to decrypt.
use strict;
use warnings;
use File::Copy;
use IPC::Run;
use PostgreSQL::Test::Utils;
use Test::More;
use ProfileGuardTest;

my $db = 'regress_restore';
my $src = pfg_node('restore_source');
pfg_create_extension($src, $db);
# the fixture's table, moved to a schema that sorts before profile_guard
my ($rc, $out) = pfg_psql($src, $db, '', '-v', 'ON_ERROR_STOP=1',
	'-f', pfg_root() . '/test/lib/ops_fixture.sql');
is($rc, 0, 'the fixture loads') or diag($out);
($rc, $out) = pfg_psql($src, $db, <<'SQL', '-v', 'ON_ERROR_STOP=1');
SET client_min_messages = warning;
CREATE SCHEMA a_app;
GRANT USAGE ON SCHEMA a_app TO regress_ops_app;
ALTER TABLE profiles SET SCHEMA a_app;
-- a long-shape table and a bytea column too
CREATE TABLE a_app.tags (uid bigint, tag text, value text);
SELECT profile_guard.protect('a_app.tags', 'uid', tag_column => 'tag', value_column => 'value');
INSERT INTO a_app.tags VALUES (1, 'interest.sports', 'football'), (1, 'health.condition', 'SECRET-long-1'),
	(6, 'health.condition', 'SECRET-long-6');
CREATE TABLE a_app.blobs (uid text, blob bytea);
SELECT profile_guard.protect('a_app.blobs', 'uid');
SELECT profile_guard.classify('a_app.blobs', 'blob', 'health.condition');
INSERT INTO a_app.blobs VALUES ('1', convert_to('SECRET-blob-1', 'UTF8'));
GRANT SELECT ON a_app.tags, a_app.blobs TO regress_ops_app;
-- history: a withdrawal and a renewed consent
SELECT profile_guard.withdraw_consent('6', 'rec', ARRAY['health.condition']);
SELECT profile_guard.grant_consent('6', 'rec', ARRAY['health.condition'], separate => true);
SELECT profile_guard.withdraw_consent('3', 'rec');
SQL
is($rc, 0, 'the extra set-up') or diag($out);

# what must be identical: raw stored values (as the superuser: ciphertext),
# the ledger, and what the application reads under each purpose
sub raw
{
	return pfg_psql($_[0], $db, <<'SQL', '-v', 'ON_ERROR_STOP=1');
SELECT 'row', id, name, sports, music, health FROM a_app.profiles ORDER BY id;
SELECT 'long', uid, tag, value FROM a_app.tags ORDER BY 2, 3;
SELECT 'blob', uid, blob FROM a_app.blobs ORDER BY 2;
SELECT 'consent', consent_id, subject, purpose, purpose_version, action, tags, separate, guardian,
	   expires_at, recorded_at, recorded_by FROM profile_guard.consent ORDER BY consent_id;
SELECT 'key', subject, wrapped_key, master_fingerprint, created_at FROM profile_guard.subject_key ORDER BY 2;
SQL
}
sub gated
{
	return pfg_psql($_[0], $db, <<'SQL', '-v', 'ON_ERROR_STOP=1', '-U', 'regress_ops_app');
SET profile_guard.purpose = 'rec';
SELECT 'rec', id, name, sports, music, health FROM a_app.profiles ORDER BY id;
SELECT 'rec-long', uid, tag, value FROM a_app.tags ORDER BY 2, 3;
SELECT 'rec-blob', uid, convert_from(blob, 'UTF8') FROM a_app.blobs ORDER BY 2;
SET profile_guard.purpose = 'ads';
SELECT 'ads', id, name, sports, music, health FROM a_app.profiles ORDER BY id;
SQL
}
my $raw = scalar raw($src);
my $gated = scalar gated($src);
ok($gated =~ /^rec\|6\|fay\|chess\|folk\|SECRET-diabetes-6$/m
	  && $gated =~ /^rec-long\|1\|interest\.sports\|football$/m
	  && $gated =~ /^rec-blob\|1\|SECRET-blob-1$/m,
	'the source reads as expected') or diag($gated);
unlike($raw, qr/SECRET/, 'the source stores no sensitive value as plaintext');

my $dir = pfg_dir($src);
$src->command_ok([ 'pg_dump', '-d', $src->connstr($db), '-f', "$dir/dump.sql" ], 'plain dump');
$src->command_ok([ 'pg_dump', '-d', $src->connstr($db), '-Fc', '-f', "$dir/dump.custom" ], 'custom dump');
$src->command_ok([ 'pg_dumpall', '-d', $src->connstr('postgres'), '--globals-only', '-f', "$dir/globals.sql" ],
	'globals');
# the rows of a_app come before the consents in the dump
my @dump = split /\n/, slurp_file("$dir/dump.sql");
my ($a_line) = grep { $dump[$_] =~ /^COPY a_app\.profiles/ } 0 .. $#dump;
my ($c_line) = grep { $dump[$_] =~ /^COPY profile_guard\.consent / } 0 .. $#dump;
ok(defined $a_line && defined $c_line && $a_line < $c_line,
	'the dump puts the guarded rows before the consents (else the test would not test the order)');

# the same key; another key
for my $target ('same', 'other')
{
	my $t = pfg_node("restore_$target", start => 0);
	copy(pfg_key_file($src), pfg_key_file($t)) or die "copy: $!" if $target eq 'same';
	$t->start;
	# the roles (CREATE ROLE postgres fails: it exists)
	pfg_psql($t, 'postgres', '', '-f', "$dir/globals.sql");
	for my $format ('plain', 'custom')
	{
		my $what = "$target key, $format";
		$t->safe_psql('postgres', "CREATE DATABASE $db");
		if ($format eq 'plain')
		{
			($rc, $out) = pfg_psql($t, $db, '', '-v', 'ON_ERROR_STOP=1', '-f', "$dir/dump.sql");
		}
		else
		{
			IPC::Run::run([ 'pg_restore', '-d', $t->connstr($db), '--exit-on-error', "$dir/dump.custom" ],
				'>&', \$out);
			$rc = $? >> 8;
		}
		is($rc, 0, "$what: the restore") or diag($out);
		is(scalar raw($t), $raw, "$what: stored values, ledger and keys are the source's (nothing re-encrypted)");
		if ($target eq 'same')
		{
			my ($grc, $gout) = gated($t);
			is($grc, 0, "$what: the gated reads run") or diag($gout);
			is($gout, $gated, "$what: the gated reads are the source's");
			# writes keep working: the collection check and encryption after the restore
			$t->safe_psql($db, "UPDATE a_app.profiles SET health = 'SECRET-new-1' WHERE id = 1");
			is($t->safe_psql($db, "SELECT health LIKE 'pgt2%' FROM a_app.profiles WHERE id = 1"), 't',
				"$what: a value written after the restore is encrypted");
		}
		else
		{
			my $err = pfg_psql($t, $db,
				"SET profile_guard.purpose = 'rec';\nSELECT health FROM a_app.profiles WHERE id = 1",
				'-v', 'ON_ERROR_STOP=1', '-U', 'regress_ops_app');
			unlike($err, qr/SECRET/, "$what: no value is decrypted");
			like($err, qr/master key does not match/, "$what: a master key error");
		}
		$t->safe_psql('postgres', "DROP DATABASE $db");
	}
	pfg_check_alive($t, "restore target ($target key)");
	$t->stop;
}

$src->stop;
done_testing();
