# t/190_walkthrough.pl — the README's main job, demo/walkthrough.sql, runs
# clean and reads like a story: every numbered section appears in order, no
# step prints an empty result set from a set-up function or a bare command
# tag, and the sections show what they announce (the refusals, the gated
# counts, the ciphertext, the ledger without raw subjects).
use strict;
use warnings;
use IPC::Run;
use PostgreSQL::Test::Utils;
use Test::More;
use ProfileGuardTest;

my $node = pfg_node('walkthrough');
$node->safe_psql('postgres', 'CREATE DATABASE demo');
# from the source tree, so that psql names the file as the README does
chdir pfg_root() or die "chdir: $!";
my $out = '';
IPC::Run::run([ 'psql', '-X', '-q', '-d', $node->connstr('demo'), '-f', 'demo/walkthrough.sql' ],
	'<', '/dev/null', '>&', \$out);
is($? >> 8, 0, 'the walkthrough exits 0');
my @lines = split /\n/, $out;

# the sections, in order
my $sections = join(' ', map { /^== ([0-9]*)\./ ? ($1) : () } @lines);
is($sections, join(' ', 1 .. 16), 'sections 1 to 16 in order');

# an empty result set: a one-column header, its rule, then an empty value
my $empty = 0;
for my $i (2 .. $#lines)
{
	$empty = 1
	  if $lines[ $i - 2 ] =~ /^ [a-z_]+ $/ && $lines[ $i - 1 ] =~ /^-+$/ && $lines[$i] =~ /^ *$/;
}
ok(!$empty, 'no step prints an empty result of a set-up function');
ok(!(grep { /^(SET|RESET|DO|CREATE [A-Z]+|GRANT|INSERT 0 [0-9]+)$/ } @lines),
	'no bare command tags (SET, RESET, DO, CREATE, GRANT, INSERT)');

# what the sections announce
sub section		# the output of section N
{
	my ($n) = @_;
	my $cur = 0;
	return grep { $cur = $1 + 0 if /^== ([0-9]+)\./; $cur == $n } @lines;
}
sub shows		# section N has a line matching REGEX
{
	my ($n, $re) = @_;
	return scalar grep { /$re/ } section($n);
}
my $refusal = qr/^psql:demo\/walkthrough\.sql:[0-9]+: /;
is(scalar(grep { /$refusal/ } @lines), 2, 'exactly two refusals (sections 2 and 7), no other error');
ok(shows(2, $refusal), '2: the prohibited tag is refused');
ok(shows(7, $refusal), '7: a read without a purpose is refused');
ok(shows(8, qr/^ +750 \| +100$/), '8: 750 rows and 100 health cells under recommendation');
ok(shows(9, qr/^ +240 \| +240 \| +0$/), '9: 240 rows, 240 sports cells, no visits under marketing');
is(shows(10, qr/^ +[0-9]+ \| t +\| +[0-9]+ \| +0$/), 2,
	'10: the sensitive tag is stored as ciphertext, without the plaintext');
ok(!shows(11, qr/^ +2 \|/), '11: the person who withdrew is not seen by the next statement');
ok(shows(11, qr/^ +1 \| tennis/), '11: the others still are');
ok(shows(13, qr/\| [0-9a-f]{12}…$/), '13: the ledger shows keyed hashes, not subjects');
ok(shows(14, qr/health.condition +\| sensitive +\| encrypted +\| diabetes/),
	"14: the report shows the person's own health value, decrypted");

diag("--- walkthrough output\n$out") unless Test::More->builder->is_passing;

$node->stop;
done_testing();
