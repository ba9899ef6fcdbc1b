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


# the reader, its caches loaded
my $reader = pfg_session($node, 'regress_recreated');
$reader->{in} .= "SELECT 'warm', count(*) FROM notes;\n";
ok(pfg_pump_until($reader, qr/warm\|2/, 120), 'the reader reads the guarded table')
  or diag($reader->{out});

# the admin invalidates every session's copy, then holds the extension's
# tables while it drops and creates it
my $admin = pfg_session($node, 'regress_recreated');
$admin->{in} .= "SELECT profile_guard._policy_changed() IS NULL AS touched;\n"
  . "BEGIN;\nSET client_min_messages = warning;\nDROP EXTENSION profile_guard CASCADE;\n"
  . "CREATE EXTENSION profile_guard;\nSELECT 'held';\n";
ok(pfg_pump_until($admin, qr/held/, 120), 'the admin holds the drop and create')
  or diag($admin->{out});

# the reader's next statement, which names no table (so that it waits for
# the catalog, not for the guarded table the drop locks too), waits for
# the admin's locks; the one after it reads the table
$reader->{in} .= "SELECT 'after';\nSELECT 'full', count(*) FROM notes;\n";
$reader->{h}->pump_nb;
ok(pfg_await($node, 'postgres',
	"SELECT count(*) > 0 FROM pg_locks l JOIN pg_database d ON d.oid = l.database
	  WHERE d.datname = 'regress_recreated' AND NOT l.granted", 60),
	'the reader waits to lock the extension\'s catalog');

$admin->{in} .= "COMMIT;\nSELECT 'committed';\n";
ok(pfg_pump_until($admin, qr/committed/, 120), 'the admin commits') or diag($admin->{out});
ok(pfg_pump_until($reader, qr/full\|2|ERROR/, 120), 'the reader\'s statements end');
like($reader->{out}, qr/after\nfull\|2/, 'both run; the table reads in full, under the new extension');
unlike($reader->{out}, qr/ERROR/, 'without an error (no relation that vanished is opened)')
  or diag($reader->{out});

$_->{in} .= "\\q\n" for $reader, $admin;
$_->{h}->finish for $reader, $admin;
pfg_check_alive($node);
$node->stop;
done_testing();
