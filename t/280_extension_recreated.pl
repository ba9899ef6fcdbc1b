# t/280_extension_recreated.pl — the extension dropped and created again in
# one transaction, committed while another session waits to read its
# catalog.
#
# At the start of each statement a session reads what the extension's
# catalog says when its copy was invalidated (the names of guarded relations,
# for redaction; the map of guarded relations, for the gate).  Here the
# reader's copy was just invalidated; its next statement finds the catalog
# tables by name, then waits to lock them, since the admin holds them in a
# transaction that drops the extension and creates it again.  When the admin
# commits, the tables found are gone: the reader must read the new ones, not
# fail with "could not open relation with OID".  The new extension guards
# nothing, so the table the old one guarded reads in full.
#
# A node of its own; the lock is watched from database postgres, which has
# no extension (a statement in the admin's database would wait as well).
use strict;
use warnings;
use IPC::Run;
use PostgreSQL::Test::Utils;
use Test::More;
use ProfileGuardTest;

my $node = pfg_node('recreated');
pfg_create_extension($node, 'regress_recreated');
my ($rc, $out) = pfg_psql($node, 'regress_recreated', <<'SQL', '-v', 'ON_ERROR_STOP=1');
SET client_min_messages = warning;
CREATE TABLE notes (id int PRIMARY KEY, music text);
SELECT profile_guard.define_tag('interest.music', 'preference');
SELECT profile_guard.protect('notes', 'id');
SELECT profile_guard.classify('notes', 'music', 'interest.music');
INSERT INTO notes VALUES (1, NULL), (2, NULL);
SQL
is($rc, 0, 'set-up') or diag($out);

my $timer = IPC::Run::timeout(120);
sub session
{
	my ($in, $out) = @_;
	return IPC::Run::start([ 'psql', '-X', '-At', '-d', $node->connstr('regress_recreated') ],
		'<', $in, '>&', $out, $timer);
}
sub pump_until
{
	my ($h, $out, $re) = @_;
	$h->pump until $$out =~ $re || $timer->is_expired;
	return $$out =~ $re;
}

# the reader, its caches loaded
my ($rin, $rout) = ('', '');
my $reader = session(\$rin, \$rout);
$rin .= "SELECT 'warm', count(*) FROM notes;\n";
ok(pump_until($reader, \$rout, qr/warm\|2/), 'the reader reads the guarded table') or diag($rout);

# the admin invalidates every session's copy, then holds the extension's
# tables while it drops and creates it
my ($ain, $aout) = ('', '');
my $admin = session(\$ain, \$aout);
$ain .= "SELECT profile_guard._policy_changed() IS NULL AS touched;\n"
  . "BEGIN;\nSET client_min_messages = warning;\nDROP EXTENSION profile_guard CASCADE;\n"
  . "CREATE EXTENSION profile_guard;\nSELECT 'held';\n";
ok(pump_until($admin, \$aout, qr/held/), 'the admin holds the drop and create') or diag($aout);

# the reader's next statement, which names no table (so that it waits for
# the catalog, not for the guarded table the drop locks too), waits for
# the admin's locks; the one after it reads the table
$rin .= "SELECT 'after';\nSELECT 'full', count(*) FROM notes;\n";
$reader->pump_nb;
ok(pfg_await($node, 'postgres',
	"SELECT count(*) > 0 FROM pg_locks l JOIN pg_database d ON d.oid = l.database
	  WHERE d.datname = 'regress_recreated' AND NOT l.granted", 60),
	'the reader waits to lock the extension\'s catalog');

$ain .= "COMMIT;\nSELECT 'committed';\n";
ok(pump_until($admin, \$aout, qr/committed/), 'the admin commits') or diag($aout);
ok(pump_until($reader, \$rout, qr/full\|2|ERROR/), 'the reader\'s statements end');
like($rout, qr/after\nfull\|2/, 'both run; the table reads in full, under the new extension');
unlike($rout, qr/ERROR/, 'without an error (no relation that vanished is opened)')
  or diag($rout);

$rin .= "\\q\n";
$ain .= "\\q\n";
$reader->finish;
$admin->finish;
pfg_check_alive($node);
$node->stop;
done_testing();
