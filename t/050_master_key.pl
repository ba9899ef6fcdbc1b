# t/050_master_key.pl — the master key across restarts, on a node of its
# own: a wrong key or a missing key file gives a clear error and changes no
# stored byte; a new subject's data key is never wrapped by a wrong key; with
# the right key back everything decrypts; rotation to a new key
# (previous_master_key_file + rotate_master_key()) re-wraps every data key
# without touching a row, and the old key can then be dropped.
use strict;
use File::Copy;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use ProfileGuardTest;

my $node = pfg_node('master_key');
my $dir = pfg_dir($node);

# the stored bytes of the guarded table and of the data keys
sub stored
{
	return $node->safe_psql('postgres', <<'SQL');
SELECT md5(string_agg(health, ',' ORDER BY id)) FROM records;
SELECT md5(string_agg(coalesce(encode(wrapped_key, 'hex'), '-'), ',' ORDER BY subject)) FROM profile_guard.subject_key;
SQL
}
# run SQL as the application under the purpose; the output, or the error
sub as_app
{
	my ($sql) = @_;
	return scalar pfg_psql($node, 'postgres',
		"SET ROLE regress_key_app;\nSET profile_guard.purpose = 'care';\n$sql\n");
}
sub set_conf
{
	$node->safe_psql('postgres', $_) for @_;
	$node->restart;
}

$node->safe_psql('postgres', <<'SQL');
SET client_min_messages = warning;
CREATE EXTENSION profile_guard;
CREATE ROLE regress_key_app;
SELECT profile_guard.define_tag('health.condition', 'medical_health');
SELECT profile_guard.define_purpose('care', 'care plans', ARRAY['health.condition']);
SELECT profile_guard.allow_purpose('regress_key_app', 'care');
SELECT profile_guard.register_subject(s::text) FROM generate_series(1, 4) s;
SELECT profile_guard.grant_consent(s::text, 'care', ARRAY['health.condition'], separate => true)
FROM generate_series(1, 4) s;
CREATE TABLE records (id int PRIMARY KEY, health text);
SELECT profile_guard.protect('records', 'id');
SELECT profile_guard.classify('records', 'health', 'health.condition');
GRANT SELECT, INSERT ON records TO regress_key_app;
INSERT INTO records VALUES (1, 'asthma'), (2, 'diabetes');
-- 3 and 4 have no data key yet, as subjects registered before
-- registration made keys: their first values make them
DELETE FROM profile_guard.subject_key WHERE subject IN ('3', '4');
SQL
is(as_app("SELECT string_agg(health, ',' ORDER BY id) FROM records"),
	'asthma,diabetes', 'reads under the right key');
my $before = stored();
my $right_key = pfg_key_file($node);

note('1. wrong key');
my $wrong_key = pfg_new_key_file("$dir/wrong.key");
set_conf("ALTER SYSTEM SET profile_guard.master_key_file = '$wrong_key'");
my $out = as_app('SELECT health FROM records WHERE id = 1');
like($out, qr/master key does not match the key that wrapped the data keys/,
	'wrong key read: a clear error');
unlike($out, qr/asthma/, 'wrong key read returns no plaintext');
$out = as_app("INSERT INTO records VALUES (3, 'flu')");
like($out, qr/master key does not match/,
	'wrong key insert for a subject without a data key: refused');
$out = as_app("INSERT INTO records VALUES (10, 'x')");
like($out, qr/ERROR/, 'an insert for a subject without consent is refused');
$out = pfg_psql($node, 'postgres', "SELECT profile_guard.register_subject('5')");
like($out, qr/master key does not match/,
	'wrong key registration: refused, no data key wrapped by it');
is(stored(), $before, 'a wrong key changes no stored byte');
is($node->safe_psql('postgres', "SELECT count(*) FROM profile_guard.subject WHERE subject = '5'"),
	'0', 'the refused registration left nothing');
$out = pfg_psql($node, 'postgres', 'SELECT profile_guard.rotate_master_key()');
like($out, qr/master key does not match|ERROR/, 'rotation under a wrong key is refused');
is(stored(), $before, 'rotation under a wrong key changes no stored byte');

note('2. missing key file');
set_conf("ALTER SYSTEM SET profile_guard.master_key_file = '$dir/no-such.key'");
$out = as_app('SELECT health FROM records WHERE id = 1');
like($out, qr/could not open master key file/, 'missing key file: a clear error');
is(stored(), $before, 'a missing key changes no stored byte');
# non-sensitive work goes on
is(as_app('SELECT count(*) FROM records'), '2', 'non-tag reads need no key');

note('2b. a key file others may read or write');
my $open_key = "$dir/open.key";
File::Copy::copy($right_key, $open_key) or die "copy: $!";
chmod 0644, $open_key;
set_conf("ALTER SYSTEM SET profile_guard.master_key_file = '$open_key'");
$out = as_app('SELECT health FROM records WHERE id = 1');
like($out, qr/master key file ".*open\.key" has group or world access/,
	'a key file with group or world access: refused, with a clear error');
unlike($out, qr/asthma/, '... and no plaintext');
chmod 0600, $open_key;
set_conf('SELECT 1');
is(as_app('SELECT health FROM records WHERE id = 1'), 'asthma', 'the same file at 0600 serves');

note('3. the right key again');
set_conf("ALTER SYSTEM SET profile_guard.master_key_file = '$right_key'");
is(as_app("SELECT string_agg(health, ',' ORDER BY id) FROM records"),
	'asthma,diabetes', 'reads after the right key came back');
as_app("INSERT INTO records VALUES (3, 'flu')");
is(as_app('SELECT health FROM records WHERE id = 3'), 'flu',
	'insert after the right key came back');

note('4. rotation');
$before = stored();
my $new_key = pfg_new_key_file("$dir/new.key");
set_conf("ALTER SYSTEM SET profile_guard.master_key_file = '$new_key'",
	"ALTER SYSTEM SET profile_guard.previous_master_key_file = '$right_key'");
# before rotating, keys wrapped by the previous key still unwrap
is(as_app('SELECT health FROM records WHERE id = 1'), 'asthma', 'read during rotation');
is($node->safe_psql('postgres', 'SELECT profile_guard.rotate_master_key()'), '3',
	'rotate_master_key() re-wraps the 3 data keys');
my $after = stored();
my ($rows_before, $keys_before) = split /\n/, $before;
my ($rows_after, $keys_after) = split /\n/, $after;
is($rows_after, $rows_before, 'rotation does not touch the rows');
isnt($keys_after, $keys_before, 'rotation re-wraps the data keys');
set_conf('ALTER SYSTEM RESET profile_guard.previous_master_key_file');
is(as_app("SELECT string_agg(health, ',' ORDER BY id) FROM records"),
	'asthma,diabetes,flu', 'reads under the new key alone');
as_app("INSERT INTO records VALUES (4, 'gout')");
is(as_app('SELECT health FROM records WHERE id = 4'), 'gout', 'insert under the new key');
unlike(slurp_file($node->logfile), qr/terminated by signal/, 'no backend crashed');

$node->stop;
done_testing();
