# t/250_upgrade.pl — the extension upgrade path.  A database created at
# the previous version, with policy, consent and encrypted data in it, is
# updated with ALTER EXTENSION … UPDATE; afterwards
#   - its data is intact and enforced exactly as before, and
#   - its extension objects are identical to a fresh install of the current
#     version (functions with bodies, settings and privileges; tables,
#     columns, constraints, indexes, triggers, views; pg_dump registrations).
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use ProfileGuardTest;

my $control = slurp_file(pfg_root() . '/profile_guard.control');
my ($old) = $control =~ /^# previous version: *([0-9.]*)/m;
my ($new) = $control =~ /^default_version = '(.*)'/m;
BAIL_OUT('profile_guard.control names no previous version') unless $old && $new;
note("upgrade $old -> $new");

my $node = pfg_node('upgrade');
my ($upgraded, $fresh) = qw(regress_upgrade_old regress_upgrade_new);
$node->safe_psql('postgres', "CREATE ROLE regress_upgrade_app;\nCREATE DATABASE $upgraded;\nCREATE DATABASE $fresh");

my $setup = <<'SQL';
SET client_min_messages = warning;
CREATE EXTENSION profile_guard VERSION '@OLD@';
SET search_path = profile_guard, public;
SELECT define_tag('interest.music', 'preference');
SELECT define_tag('health.condition', 'medical_health');
SELECT define_purpose('rec', 'recommend', ARRAY['interest.*', 'health.condition']);
SELECT define_purpose('ads', 'targeted ads', ARRAY['interest.*'], marketing => true);
SELECT allow_purpose('regress_upgrade_app', 'rec');
SELECT register_subject(s::text) FROM generate_series(1, 3) s;
SELECT grant_consent('1', 'rec', ARRAY['interest.*', 'health.condition'], separate => true);
SELECT grant_consent('2', 'rec', ARRAY['interest.*']);
CREATE TABLE public.profiles (id int PRIMARY KEY, music text, health text);
SELECT protect('public.profiles', 'id');
SELECT classify('public.profiles', 'music', 'interest.music');
SELECT classify('public.profiles', 'health', 'health.condition');
INSERT INTO public.profiles VALUES (1, 'jazz', 'asthma'), (2, 'rock', NULL);
GRANT SELECT ON public.profiles TO regress_upgrade_app;
-- an inheritance child, written straight into (no collection trigger yet)
CREATE TABLE public.profiles_kid () INHERITS (public.profiles);
INSERT INTO public.profiles_kid VALUES (1, 'swing', 'gout');
-- tags of categories that become sensitive in 1.2 (contact, consumption),
-- held as plaintext in both shapes
SELECT define_tag('contact.phone', 'contact');
SELECT define_tag('consumption.item', 'consumption');
SELECT define_tag('score.spend', 'derived', derived_from => ARRAY['consumption.item']);
SELECT define_purpose('crm', 'customer care');
SELECT grant_consent('1', 'crm', ARRAY['contact.phone', 'consumption.item']);
CREATE TABLE public.contacts (id int PRIMARY KEY, phone text);
SELECT protect('public.contacts', 'id');
SELECT classify('public.contacts', 'phone', 'contact.phone');
INSERT INTO public.contacts VALUES (1, '13800000000');
CREATE TABLE public.buys (uid int, tag text, value text);
SELECT protect('public.buys', 'uid', tag_column => 'tag', value_column => 'value');
INSERT INTO public.buys VALUES (1, 'consumption.item', 'a sofa');
SQL
$setup =~ s/\@OLD\@/$old/;
$node->safe_psql($upgraded, $setup);
# the sensitive text value as the library of 1.1 wrote it: "pgt1:" and the
# padded base64 of the binary envelope, the form bytea columns still store
# (the library installed here writes the shorter form of 1.2)
$node->safe_psql($upgraded, <<'SQL');
ALTER TABLE public.profiles DISABLE TRIGGER profile_guard_collect;
UPDATE ONLY public.profiles
   SET health = 'pgt1:' || translate(encode(profile_guard._encrypt(id::text, 'health.condition',
											convert_to('asthma', 'UTF8')), 'base64'), E'\n', '')
 WHERE id = 1;
ALTER TABLE public.profiles ENABLE ALWAYS TRIGGER profile_guard_collect;
SQL

sub q_up { return $node->safe_psql($upgraded, $_[0]); }
# what the application sees, before and after
sub read_as_app
{
	return scalar pfg_psql($node, $upgraded, undef, '-c', 'SET ROLE regress_upgrade_app',
		'-c', "SET profile_guard.purpose = 'rec'",
		'-c', 'SELECT id, music, health FROM ONLY public.profiles ORDER BY id');
}
my $ledger = "SELECT md5(string_agg((c.consent_id, c.subject, c.purpose, c.purpose_version, c.action, c.tags, c.separate, c.guardian, c.expires_at, c.recorded_at, c.recorded_by)::text, ',' ORDER BY consent_id)) FROM profile_guard.consent c";
my $before = read_as_app();
is($before, "1|jazz|asthma\n2|rock|", "reads at $old");
is($node->safe_psql($upgraded, 'SELECT health FROM ONLY public.profiles WHERE id = 1') =~ /^pgt1:[A-Za-z0-9+\/]{51}=$/ ? 1 : 0,
	1, "the value is stored in the text format of $old");
my $ledger_before = q_up($ledger);

q_up("ALTER EXTENSION profile_guard UPDATE TO '$new'");
$node->safe_psql($fresh, 'CREATE EXTENSION profile_guard');
is(q_up("SELECT extversion FROM pg_extension WHERE extname = 'profile_guard'"), $new,
	'extension version after the update');
is(read_as_app(), $before, 'reads after the update');
is(q_up($ledger), $ledger_before, 'the consent ledger is unchanged');
# contact and consumption are sensitive: their tags (and what derives from
# them) too, their plaintext encrypted in both shapes
is(q_up("SELECT string_agg(tag || ':' || sensitivity, ',' ORDER BY tag) FROM profile_guard.tag WHERE tag IN ('contact.phone', 'consumption.item', 'score.spend', 'interest.music')"),
	'consumption.item:sensitive,contact.phone:sensitive,interest.music:general,score.spend:sensitive',
	'tag sensitivity after the update');
is(q_up("SELECT (SELECT phone LIKE 'pgt2%' FROM public.contacts) AND (SELECT value LIKE 'pgt2%' FROM public.buys)"),
	't', 'the plaintext of tags that became sensitive is encrypted by the update');
# a marketing purpose of 1.1 is personalised (opt_out() keeps its meaning)
is(q_up("SELECT string_agg(purpose || ':' || personalised, ',' ORDER BY purpose) FROM profile_guard.purpose"),
	'ads:true,crm:false,rec:false', 'personalised after the update');
is(q_up('SELECT bool_and(personalised = marketing) FROM profile_guard.purpose_history'), 't',
	'personalised of the purpose history after the update');
# collection stamps are on by default: the tables protected at the
# previous version without a collected_at column take them, and what they
# hold (an inheritance child's rows included) is stamped by the update
is(q_up("SELECT string_agg(relid::text || ':' || stamp_collection, ',' ORDER BY relid::text) FROM profile_guard.guarded_table"),
	'buys:true,contacts:true,profiles:true',
	'the update switches collection stamps on');
is(q_up("SELECT string_agg(format('%s/%s/%s', relid, subject, tag), ',' ORDER BY relid::text, subject, tag) FROM profile_guard.collection_stamp"),
	'buys/1/consumption.item,contacts/1/contact.phone,profiles/1/health.condition,profiles/1/interest.music,profiles/2/interest.music',
	'the update stamps what the tables hold');
is(q_up('SELECT count(*) FROM profile_guard.collection_stamp_log'), '0', 'the update logs no stamp');
is(q_up("SELECT count(*) FROM pg_class WHERE relnamespace = 'profile_guard'::regnamespace AND relkind = 'r' AND reltuples < 0"),
	'0', 'the update leaves no catalog table without statistics');
like(scalar pfg_psql($node, $upgraded, undef, '-c', 'SET ROLE regress_upgrade_app',
		'-c', 'SELECT music FROM public.profiles'),
	qr/no purpose declared/, 'a no-purpose read after the update is refused');
# the inheritance child: its plaintext encrypted, its writes checked
is(q_up("SELECT health LIKE 'pgt2%' FROM ONLY public.profiles_kid"), 't',
	'the sensitive plaintext of an inheritance child is encrypted by the update');
like(scalar pfg_psql($node, $upgraded, undef, '-c', "INSERT INTO public.profiles_kid VALUES (2, NULL, 'flu')"),
	qr/no consent to collect/, 'a write into an inheritance child after the update is checked');

# the format of 1.1 reads after the update, and after a dump of it is
# restored; reencrypt() rewrites it in the format of 1.2, which reads the
# same and restores too
my $dumps = PostgreSQL::Test::Utils::tempdir();
sub restored_read
{
	my ($name, $db) = @_;
	$node->command_ok([ 'pg_dump', '-d', $node->connstr($upgraded), '-Fc', '-f', "$dumps/$db.dump" ],
		"dump ($name)");
	$node->safe_psql('postgres', "CREATE DATABASE $db");
	$node->command_ok([ 'pg_restore', '-d', $node->connstr($db), '--exit-on-error', "$dumps/$db.dump" ],
		"restore ($name)");
	return scalar pfg_psql($node, $db, undef, '-c', 'SET ROLE regress_upgrade_app',
		'-c', "SET profile_guard.purpose = 'rec'",
		'-c', 'SELECT id, music, health FROM ONLY public.profiles ORDER BY id');
}
my $stored = "SELECT left(health, 5) FROM ONLY public.profiles WHERE id = 1";
is(q_up($stored), 'pgt1:', 'the update leaves the stored format alone');
is(restored_read("format of $old", 'regress_upgrade_restored_v1'), $before,
	"a dump of values in the format of $old restores and reads the same");
is(q_up('SELECT profile_guard.reencrypt()'), '1', 'reencrypt() rewrites the one value of the older format');
like(q_up($stored), qr/^pgt2/, 'the value is stored in the format of 1.2');
is(read_as_app(), $before, 'reads the same after reencrypt()');
is(q_up('SELECT profile_guard.reencrypt()'), '0', 'a second reencrypt() finds nothing');
is(restored_read('format of 1.2', 'regress_upgrade_restored_v2'), $before,
	'a dump of values in the format of 1.2 restores and reads the same');

# the extension's objects, described the same way in both databases
my $describe = <<'SQL';
SELECT 'function ' || p.oid::regprocedure || ' ' || md5(pg_get_functiondef(p.oid))
	   || ' ' || coalesce(array_to_string(p.proconfig, ','), '-')
	   || ' ' || coalesce(p.proacl::text, '-')
FROM pg_proc p WHERE p.pronamespace = 'profile_guard'::regnamespace AND p.prokind <> 'a'
UNION ALL
SELECT 'aggregate ' || p.oid::regprocedure FROM pg_proc p
WHERE p.pronamespace = 'profile_guard'::regnamespace AND p.prokind = 'a'
UNION ALL
SELECT 'relation ' || c.relname || ' ' || c.relkind::text || ' ' || coalesce(c.relacl::text, '-')
	   || ' ' || coalesce(md5(pg_get_viewdef(c.oid)), '-')
FROM pg_class c WHERE c.relnamespace = 'profile_guard'::regnamespace AND c.relkind <> 'i'
UNION ALL
SELECT 'column ' || c.relname || '.' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
	   || ' ' || a.attnotnull || ' ' || coalesce(pg_get_expr(d.adbin, d.adrelid), '-')
FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE c.relnamespace = 'profile_guard'::regnamespace AND a.attnum > 0 AND NOT a.attisdropped
  AND c.relkind IN ('r', 'p', 'v')
UNION ALL
SELECT 'index ' || regexp_replace(pg_get_indexdef(i.indexrelid), ' ON ', ' on ')
FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid
WHERE c.relnamespace = 'profile_guard'::regnamespace
UNION ALL
SELECT 'constraint ' || c.relname || ' ' || con.conname || ' ' || pg_get_constraintdef(con.oid)
FROM pg_constraint con JOIN pg_class c ON c.oid = con.conrelid
WHERE c.relnamespace = 'profile_guard'::regnamespace
UNION ALL
SELECT 'trigger ' || pg_get_triggerdef(t.oid) || ' ' || t.tgenabled::text
FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
WHERE c.relnamespace = 'profile_guard'::regnamespace AND NOT t.tgisinternal
UNION ALL
SELECT 'dumped ' || x.relname || ' ' || coalesce(u.cond, '')
FROM pg_extension e,
	 unnest(e.extconfig, e.extcondition) AS u(oid, cond)
	 JOIN pg_class x ON x.oid = u.oid
WHERE e.extname = 'profile_guard'
UNION ALL
SELECT 'member ' || pg_describe_object(d.classid, d.objid, d.objsubid)
FROM pg_depend d JOIN pg_extension e ON d.refobjid = e.oid AND d.refclassid = 'pg_extension'::regclass
WHERE e.extname = 'profile_guard' AND d.deptype = 'e'
ORDER BY 1;
SQL
my $up_desc = $node->safe_psql($upgraded, $describe);
my $fresh_desc = $node->safe_psql($fresh, $describe);
my @fresh_lines = split /\n/, $fresh_desc;
my @up_lines = split /\n/, $up_desc;
cmp_ok(scalar @fresh_lines, '>', 100, 'more than 100 objects described');
my (%in_fresh, %in_up);
$in_fresh{$_}++ for @fresh_lines;
$in_up{$_}++ for @up_lines;
ok($up_desc eq $fresh_desc, "the updated extension equals a fresh install of $new")
  or diag(join("\n", '(lines: - fresh, + updated)',
	grep { defined } (map { "- $_" } grep { !$in_up{$_} } @fresh_lines)[0 .. 29],
	(map { "+ $_" } grep { !$in_fresh{$_} } @up_lines)[0 .. 29]));
note(scalar(@fresh_lines) . ' objects compared');

$node->stop;
done_testing();
