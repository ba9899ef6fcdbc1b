# t/170_standby.pl — a streaming hot standby enforces what the primary
# enforces.  A primary and a standby made with pg_basebackup (streaming),
# both preloading profile_guard with the same master key (a copy of the key
# file):
#
#   - reads under a purpose give the same result sets on both (gated rows,
#     masked cells, sensitive values decrypted where consented);
#   - without a purpose the standby refuses (42501), as the primary does;
#   - a consent withdrawn and a tag blocked on the primary take effect on the
#     standby once replayed (bounded wait for the replay LSN), for new
#     sessions and for a session that was open (and had its consent cache
#     loaded) before the change;
#   - answers built on the standby are published in its shared memory and
#     patched, subject by subject, as replay applies consent changes;
#   - data keys loaded in bulk are shared between backends on the primary,
#     never on the standby (it replays destructions unseen);
#   - a standby with a different master key refuses to decrypt instead of
#     serving garbage.
use strict;
use warnings;
use File::Copy;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);
use ProfileGuardTest;

my $db = 'regress_standby';

# ---------- primary
my $primary = pfg_node('standby_primary', init => { allows_streaming => 1 },
	conf => ['hot_standby = on']);
pfg_create_extension($primary, $db);
my ($rc, $out) = pfg_psql($primary, $db, '', '-v', 'ON_ERROR_STOP=1',
	'-f', pfg_root() . '/test/lib/ops_fixture.sql');
is($rc, 0, 'the fixture loads on the primary') or diag($out);

# ---------- standby: base backup, its own port and socket, the same key
$primary->backup('base');
my $standby = PostgreSQL::Test::Cluster->new('standby_replica');
$standby->init_from_backup($primary, 'base', has_streaming => 1);
my $standby_key = pfg_key_file($standby);
copy(pfg_key_file($primary), $standby_key) or die "copy: $!";
chmod 0600, $standby_key;
$standby->append_conf('postgresql.conf', "profile_guard.master_key_file = '$standby_key'\n");
$standby->start;
is($standby->safe_psql($db, 'SELECT pg_is_in_recovery()'), 't', 'the standby is in recovery');

# wait (bounded) until the standby replayed everything the primary wrote so
# far: the insert position, since with synchronous_commit = off a commit
# record may not be written out yet when its COMMIT returns
sub wait_replay
{
	my $lsn = $primary->safe_psql('postgres', 'SELECT pg_current_wal_insert_lsn()');
	for (1 .. 300)
	{
		return if $standby->safe_psql('postgres',
			"SELECT pg_last_wal_replay_lsn() >= '$lsn'::pg_lsn") eq 't';
		usleep(100_000);
	}
	BAIL_OUT("the standby did not replay $lsn within 30 s");
}

# the application's reads, as one string
sub reads
{
	my ($node) = @_;
	my ($rc1, $app) = pfg_psql($node, $db, <<'SQL', '-v', 'ON_ERROR_STOP=1', '-U', 'regress_ops_app');
\echo -- rec
SET profile_guard.purpose = 'rec';
SELECT id, name, sports, music, health FROM profiles ORDER BY id;
SELECT count(*) FROM profiles WHERE health IS NOT NULL;
\echo -- ads
SET profile_guard.purpose = 'ads';
SELECT id, name, sports, music, health FROM profiles ORDER BY id;
SQL
	# what the catalog says (as the superuser)
	my ($rc2, $status) = pfg_psql($node, $db, <<'SQL', '-v', 'ON_ERROR_STOP=1');
\echo -- status
SELECT purpose, subject, tag, effective FROM profile_guard.consent_status
WHERE subject IN ('1', '6') ORDER BY 1, 2, 3;
SQL
	return wantarray ? ($rc1 || $rc2, "$app\n$status") : "$app\n$status";
}

sub compare
{
	my ($what, $expect) = @_;
	my ($prc, $on_primary) = reads($primary);
	my ($src, $on_standby) = reads($standby);
	is($prc, 0, "$what: reads on the primary") or diag($on_primary);
	is($src, 0, "$what: reads on the standby") or diag($on_standby);
	is($on_standby, $on_primary, "$what: the standby's results are the primary's");
	like($on_standby, qr/^\Q$expect\E$/m, "$what: row \"$expect\" on the standby");
}

wait_replay();
compare('before the withdrawal', '6|fay|chess|folk|SECRET-diabetes-6');
like(scalar reads($standby), qr/SECRET-asthma-1/, 'the standby decrypts');

# no purpose: refused on the standby, with the documented SQLSTATE
like(scalar pfg_psql($standby, $db, 'SELECT health FROM profiles', '-U', 'regress_ops_app',
		'-v', 'VERBOSITY=verbose'),
	qr/42501/, 'a read without purpose on the standby is refused with 42501');
# non-tag columns need no purpose on the standby either
is(scalar pfg_psql($standby, $db, 'SELECT count(name) FROM profiles', '-v', 'ON_ERROR_STOP=1',
		'-U', 'regress_ops_app'),
	'6', 'non-tag columns are readable on the standby');

# ---------- a session on the standby that stays open across the change
sub open_session { return pfg_session($standby, $db, '-U', 'regress_ops_app'); }
# send SQL, return its output up to a marker
sub session
{
	my ($s, $sql) = @_;
	$s->{in} .= "$sql\n\\echo __done__\n";
	pfg_pump_until($s, qr/^__done__$/m);
	BAIL_OUT('the open standby session did not answer') unless $s->{out} =~ s/^(.*?)__done__\n//s;
	my $got = $1;
	$got =~ s/\n\z//;
	return $got;
}
my $s = open_session();
session($s, "SET profile_guard.purpose = 'rec';");
is(session($s, 'SELECT id, music FROM profiles ORDER BY id;'), "1|jazz\n2|\n3|pop\n6|folk",
	'open standby session, before the change');

# ---------- the change on the primary
$primary->safe_psql($db, <<'SQL');
SELECT profile_guard.withdraw_consent('6', 'rec');
SELECT profile_guard.block_tag('1', 'interest.music');
SQL
wait_replay();
compare('after the withdrawal', '1|ann|football||SECRET-asthma-1');
unlike(scalar reads($standby), qr/^6\|/m, 'subject 6 is no longer visible on the standby after the withdrawal');
is(session($s, 'SELECT id, music FROM profiles ORDER BY id;'), "1|\n2|\n3|pop",
	'the open standby session sees the withdrawal and the block after replay');
$s->{h}->kill_kill;

# ---------- answers shared on the standby follow replay subject by subject
$primary->safe_psql($db, <<'SQL');
SET client_min_messages = warning;
INSERT INTO profile_guard.subject (subject) SELECT i::text FROM generate_series(1001, 4000) i;
INSERT INTO profile_guard.consent (subject, purpose, purpose_version, action, tags)
SELECT i::text, 'rec', p.version, 'grant', ARRAY['interest.*']
  FROM generate_series(1001, 4000) i, profile_guard.purpose p WHERE p.purpose = 'rec' AND i % 4 <> 0;
SELECT profile_guard._policy_changed();
CREATE TABLE many (id int PRIMARY KEY, music text);
INSERT INTO many SELECT i, 'm' || i FROM generate_series(1001, 4000) i;
SELECT profile_guard.protect('many', 'id');
SELECT profile_guard.classify('many', 'music', 'interest.music');
GRANT SELECT ON many TO regress_ops_app;
SQL
wait_replay();
$s = open_session();
session($s, "SET profile_guard.purpose = 'rec';");
is(session($s, 'SELECT count(music) FROM many;'), '2250',
	'standby: the gated scan of 3,000 subjects sees 2,250');
my $shared_q = "SELECT generation || '/' || state FROM profile_guard.shared_answers() WHERE purpose = 'rec'";
my $shared_before = $standby->safe_psql($db, $shared_q);
like($shared_before, qr{/published$}, "standby: the answers are published in shared memory ($shared_before)");
$primary->safe_psql($db, "SELECT profile_guard.withdraw_consent('1001', 'rec')");
wait_replay();
# replayed; the open session reads it from its next statement (bounded
# polling: a busy standby may cancel a statement in a recovery conflict)
my $seen = '';
for (1 .. 50)
{
	$seen = session($s, 'SELECT count(music) FROM many;');
	last if $seen eq '2249';
	usleep(200_000);
}
is($seen, '2249', 'standby: the open session follows the withdrawal');
is(scalar pfg_psql($standby, $db, "SET profile_guard.purpose = 'rec';\nSELECT count(music) FROM many",
		'-v', 'ON_ERROR_STOP=1', '-U', 'regress_ops_app'),
	'2249', 'standby: a new session follows the withdrawal');
is($standby->safe_psql($db, $shared_q), $shared_before,
	'standby: the shared answers were patched, not rebuilt');
$s->{h}->kill_kill;

# ---------- data keys are shared between backends on the primary only: a
# standby replays key destructions without the extension seeing them
$primary->safe_psql($db, <<'SQL');
CREATE TABLE cipher AS
SELECT i::text AS subject, profile_guard._encrypt(i::text, 'health.condition', 'v' || i) AS v
  FROM generate_series(1001, 1400) i;
SQL
wait_replay();
my $decrypt_all = "SELECT count(profile_guard._decrypt(subject, 'health.condition', v)) FROM cipher";
my $key_sets = 'SELECT count(*) FROM profile_guard.shared_data_keys()';
is($primary->safe_psql($db, $decrypt_all), '400', 'primary: 400 values decrypted');
is($primary->safe_psql($db, $key_sets), '1', 'primary: the data keys loaded in bulk are shared');
is($standby->safe_psql($db, $decrypt_all), '400', 'standby: 400 values decrypted');
is($standby->safe_psql($db, $decrypt_all), '400', 'standby: and again in a new session');
is($standby->safe_psql($db, $key_sets), '0', 'standby: no data keys are shared');

# ---------- a standby with another master key refuses, it does not serve garbage
$standby->stop;
pfg_new_key_file($standby_key);
$standby->start;
my $err = pfg_psql($standby, $db, "SET profile_guard.purpose = 'rec';\nSELECT health FROM profiles WHERE id = 1",
	'-v', 'ON_ERROR_STOP=1', '-U', 'regress_ops_app', '-v', 'VERBOSITY=verbose');
unlike($err, qr/SECRET/, 'a standby with another master key decrypts no value');
like($err, qr/master key|ERROR/i, 'a standby with another master key reports an error');

pfg_check_alive($primary, 'primary');
pfg_check_alive($standby, 'standby');
$standby->stop;
$primary->stop;
done_testing();
