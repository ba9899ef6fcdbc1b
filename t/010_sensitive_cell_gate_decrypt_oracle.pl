# t/010_sensitive_cell_gate_decrypt_oracle.pl — a fixed bug, kept as a
# regression test.
#
# Bug (gate bypass for sensitive tags): profile_guard._sensitive_cell_gate(
# subject, tag_id, tag, value) is executable by PUBLIC.  It checks the
# visibility of tag_id but decrypts with the tag named by its third argument.
# A role with any consented tag of a subject under an allowed purpose can
# therefore decrypt ciphertext of any other tag of that subject (for example a
# sensitive tag whose separate consent was withdrawn), given the ciphertext
# from a backup, a dump, a replica or a DBA's raw read.  Expected: refused, or
# NULL (the tag given must be the one tag_id names, or the function must not
# be callable outside the gated queries).
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use ProfileGuardTest;

my $node = pfg_node('decrypt_oracle');
my $db = 'regress_decrypt_oracle';
pfg_create_extension($node, $db);
my ($rc, $out) = pfg_psql($node, $db, '', '-v', 'ON_ERROR_STOP=1',
	'-f', pfg_root() . '/test/lib/ops_fixture.sql');
is($rc, 0, 'the fixture loads') or diag($out);

# the raw ciphertext, as a DBA, a dump or a backup holds it
my $ct = $node->safe_psql($db, 'SELECT health FROM profiles WHERE id = 6');
my $tid = $node->safe_psql($db,
	"SELECT tag_id FROM profile_guard.tag WHERE tag = 'interest.sports'");
# subject 6 withdraws the separate consent to health.condition
$node->safe_psql($db,
	"SELECT profile_guard.withdraw_consent('6', 'rec', ARRAY['health.condition'])");

$out = pfg_psql($node, $db, <<SQL, '-U', 'regress_ops_app');
SET profile_guard.purpose = 'rec';
SELECT 'gated read: ' || coalesce(health, '<masked>') FROM profiles WHERE id = 6;
SELECT 'oracle: ' || coalesce(profile_guard._sensitive_cell_gate(6, $tid, 'health.condition', '$ct'::text), '<null>');
SQL
note($out);
unlike($out, qr/oracle: SECRET/,
	'_sensitive_cell_gate does not decrypt a sensitive value whose consent was withdrawn');

$node->stop;
done_testing();
