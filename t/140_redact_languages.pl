# t/140_redact_languages.pl — values of guarded tables stay out of error
# messages whatever the server's lc_messages: C, en_US, de_DE, fr_FR, es_ES,
# ru_RU, ja_JP, ko_KR, zh_CN and zh_TW (UTF-8).  Translations quote values
# their own way (»…«, « … », «…», "…"), so redaction must not depend on the
# English wording.
#
# For each language the superuser sets lc_messages in its session and
# provokes, on a guarded table: a cast of a tag column (class 22, the
# message quotes the value), a JSON cast of it (the detail and the context
# quote it), a unique violation (Key (...)=(...)), not-null
# and check violations (Failing row contains ...), a bad input value at
# parse time, one at run time (INSERT ... SELECT from an unguarded table)
# and one in COPY.  No secret value may appear in the client's output nor in
# the server log written under that setting.  psql's own "LINE n:" echo of
# the statement it sent is not part of the server's message and is left
# out of the client check.
#
# A language counts only if its translation was in effect: every error's
# primary message must differ from the English one, and the cast error must
# carry a known word of the language's catalogue.  A missing locale or
# message catalogue fails the test; it never passes silently.
# (test/lib/tap_prepare.sh, run by test/run_tests.sh as root, generates the
# locales and copies the catalogues where they are missing.)
use strict;
use warnings;
use IPC::Run;
use PostgreSQL::Test::Utils;
use Test::More;
use ProfileGuardTest;

my @langs = qw(C en_US de_DE fr_FR es_ES ru_RU ja_JP ko_KR zh_CN zh_TW);

# a word of each catalogue's "invalid input syntax for type %s: "%s""
my %marker = (
	de_DE => 'ungültige Eingabesyntax',
	fr_FR => 'syntaxe en entrée invalide',
	es_ES => 'sintaxis de entrada no es válida',
	ru_RU => 'неверный синтаксис',
	ja_JP => '入力構文が不正です',
	ko_KR => '잘못된 입력',
	zh_CN => '输入语法无效',
	zh_TW => '輸入語法無效');

# ---- locales of the operating system, the server's message catalogues ----
my %locales = map { lc($_) => 1 } split /\n/, `locale -a 2>/dev/null`;
my $localedir = `pg_config --localedir`;
chomp $localedir;
my ($major) = `pg_config --version` =~ /^PostgreSQL (\d+)/;
for my $l (@langs)
{
	next if $l eq 'C';
	ok($locales{ lc "$l.utf8" } || $locales{ lc "$l.utf-8" }, "locale $l.UTF-8 is there")
	  or BAIL_OUT("locale $l.UTF-8 missing (package locales; test/lib/tap_prepare.sh generates it as root)");
	next if $l eq 'en_US';
	my $dir = $l =~ /^zh_/ ? $l : substr($l, 0, 2);
	for my $domain ('postgres', 'plpgsql')
	{
		my $mo = "$localedir/$dir/LC_MESSAGES/$domain-$major.mo";
		ok(-f $mo, "message catalogue $mo")
		  or BAIL_OUT("no message catalogue $mo (test/lib/tap_prepare.sh copies it from the package)");
	}
}

my $node = pfg_node('redact_languages');
$ENV{LC_ALL} = 'C.UTF-8';		# psql's own strings ("LINE n:") in English

$node->safe_psql('postgres', <<'SQL');
SET client_min_messages = warning;
CREATE EXTENSION profile_guard;
SELECT profile_guard.define_tag('lifestyle.luxury', 'preference');
SELECT profile_guard.define_purpose('recommendation', 'recommend content',
	ARRAY['lifestyle.*']);
SELECT profile_guard.allow_purpose('postgres', 'recommendation');
CREATE TABLE profile (id int PRIMARY KEY, nick text NOT NULL, luxury text,
	visits int CHECK (visits < 1000));
CREATE UNIQUE INDEX profile_nick ON profile (nick);
CREATE TABLE staging (v text);
INSERT INTO staging VALUES ('SECRETSTAGE8');
SELECT profile_guard.protect('profile', 'id');
SELECT profile_guard.classify('profile', 'luxury', 'lifestyle.luxury');
SELECT profile_guard.register_subject(s::text) FROM generate_series(1, 9) s;
SELECT profile_guard.grant_consent(s::text, 'recommendation', ARRAY['lifestyle.*'])
	FROM generate_series(1, 9) s;
SET profile_guard.purpose = 'recommendation';
INSERT INTO profile VALUES (1, 'SECRETNICK1', 'SECRETLUX1', 11),
	(2, 'SECRETNICK2', 'SECRETLUX2', 22);
SQL

my @cases = qw(cast json unique notnull check input_parse input_run copy);
my %case_sql = (
	cast => "SELECT luxury::int FROM profile WHERE id = 1;\n",
	json => "SELECT luxury::jsonb FROM profile WHERE id = 1;\n",
	unique => "UPDATE profile SET nick = (SELECT nick FROM profile WHERE id = 1) WHERE id = 2;\n",
	notnull => "UPDATE profile SET nick = NULL WHERE id = 1;\n",
	check => "UPDATE profile SET visits = 5000 WHERE id = 1;\n",
	input_parse => "INSERT INTO profile (id, nick, visits) VALUES (7, 'n7', 'SECRETINPUT7');\n",
	input_run => "INSERT INTO profile (id, nick, visits) SELECT 8, 'n8', v::int FROM staging;\n",
	copy => "COPY profile (id, nick, visits) FROM STDIN;\n9\tn9\tSECRETCOPY9\n\\.\n");
my $secrets = qr/SECRET(NICK|LUX|STAGE|INPUT|COPY)[0-9]/;

my %english;
for my $l (@langs)
{
	my $loc = $l eq 'C' ? 'C' : "$l.UTF-8";
	my $before = -s $node->logfile;
	my %stderr;
	for my $c (@cases)
	{
		my ($stdout, $stderr) = ('', '');
		IPC::Run::run([ 'psql', '-X', '-q', '-d', $node->connstr('postgres') ],
			'<', \"SET lc_messages = '$loc';\nSET profile_guard.purpose = 'recommendation';\n$case_sql{$c}",
			'>', \$stdout, '2>', \$stderr);
		$stderr{$c} = $stderr;
		# the server's error line (severity and primary message), as psql prints it
		my ($line) = $stderr =~ /^([^ :]+:  .*)$/m;
		ok(defined $line, "$l $c: an error is raised") or diag($stderr);
		next unless defined $line;
		$english{$c} = $line if $l eq 'C';
		# psql's echo of the statement it sent: "LINE n: ..." and the caret
		my @leaks = grep { !/^LINE [0-9]+: |^ *\^ *$/ && /$secrets/ } split /\n/, $stderr;
		is(scalar @leaks, 0, "$l $c: no value reaches the client") or diag($stderr);
		isnt($line, $english{$c}, "$l $c: the message is translated")
		  if $l ne 'C' && $l ne 'en_US';
		note("$l $c: $line");
	}
	like($stderr{cast}, qr/\Q$marker{$l}\E/, "$l: the cast error is in the language's words")
	  if $marker{$l};
	my $log = substr(slurp_file($node->logfile), $before);
	my @leaks = grep { /$secrets/ } split /\n/, $log;
	is(scalar @leaks, 0, "$l: no value reaches the server log") or diag(join("\n", @leaks));
}

# nothing was written by the failing statements
is($node->safe_psql('postgres', "SELECT string_agg(id::text, ',' ORDER BY id) FROM profile"),
	'1,2', 'the failing statements changed nothing');

$node->stop;
done_testing();
