# t/160_owner_code_rights.pl — code of a guarded table's owner never runs
# with the extension's rights.  The owner (a non-superuser member of
# profile_guard_admin) plants code that makes itself superuser when run by
# one, and records who ran it; then, as non-superusers,
#   - sweep() deletes and nulls due rows (AFTER DELETE, BEFORE UPDATE triggers),
#   - the erasure worker deletes a due row (second database),
#   - sweep() deletes expired rows of a long table (AFTER DELETE trigger),
#     and stops, erasing nothing, where a BEFORE DELETE trigger or a rule
#     skips one, or a DO INSTEAD rule deletes as many rows elsewhere (third
#     database),
#   - classify, declassify and unprotect rewrite a column (BEFORE UPDATE trigger),
#   - subject_report and assess read a table turned into a view by a _RETURN
#     rule, a subject column of an enum with a cast to text, and a tag column
#     of an enum with a cast to json,
#   - protect refuses a subject column of a type that is not built in.
# Each: the owner is not superuser afterwards and its code ran as itself
# (or not at all); and the legitimate work was done.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);
use ProfileGuardTest;

my $node = pfg_node('owner_rights', conf => [ "profile_guard.database = 'workerdb'",
	'profile_guard.sweep_interval = 1' ]);
$node->safe_psql('postgres', 'CREATE DATABASE workerdb');

# script(DB, USER, SQL): a script, stop at the first error; true if it ran
sub script
{
	my ($db, $user, $sql) = @_;
	my ($rc, $out) = pfg_psql($node, $db, $sql, '-v', 'ON_ERROR_STOP=1', '-U', $user);
	diag($out) if $rc != 0;
	return $rc == 0;
}
# one(DB, USER, SQL): one psql -c, errors shown, never stops the test
sub one
{
	my ($db, $user, $sql) = @_;
	return scalar pfg_psql($node, $db, undef, '-U', $user, '-c', $sql);
}

# the owner is not superuser, else make it ordinary again for the next check
sub check_owner
{
	my ($db, $what, $want_run) = @_;
	if (one($db, 'postgres', "SELECT rolsuper FROM pg_roles WHERE rolname = 'regress_owner'") eq 't')
	{
		fail("$what: the owner's code ran as superuser and made the owner superuser");
		one($db, 'postgres', 'ALTER ROLE regress_owner NOSUPERUSER');
	}
	else
	{
		pass("$what: the owner did not become superuser");
	}
	my $runs = one($db, 'postgres', "SELECT count(*) FROM public.ran_as WHERE what = '$what'");
	my $bad = one($db, 'postgres',
		"SELECT count(*) FROM public.ran_as WHERE what = '$what' AND (who <> 'regress_owner' OR super)");
	if ($bad ne '0')
	{
		fail("$what: the owner's code ran as "
			  . one($db, 'postgres', "SELECT string_agg(DISTINCT who || CASE WHEN super THEN ' (superuser)' ELSE '' END, ', ') FROM public.ran_as WHERE what = '$what'"));
	}
	elsif ($want_run eq 'yes' && $runs eq '0')
	{
		fail("$what: the owner's code did not run");
	}
	elsif ($want_run eq 'yes')
	{
		pass("$what: the owner's code ran $runs times, as the owner");
	}
	else
	{
		pass("$what: the owner's code never ran with the extension's rights");
	}
	return;
}

sub setup
{
	my ($db) = @_;
	ok(script($db, 'postgres', <<'SQL'), "$db: the policy");
CREATE EXTENSION IF NOT EXISTS profile_guard;
DO $$ BEGIN
	IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'regress_owner') THEN
		CREATE ROLE regress_owner LOGIN IN ROLE profile_guard_admin;
		CREATE ROLE regress_admin LOGIN IN ROLE profile_guard_admin;
		CREATE ROLE regress_clerk LOGIN IN ROLE profile_guard_consent;
	END IF;
END $$;
GRANT CREATE ON SCHEMA public TO regress_owner;
CREATE TABLE public.ran_as (what text, who name, super boolean);
GRANT SELECT, INSERT ON public.ran_as TO PUBLIC;
SELECT profile_guard.define_tag('interest.sports', 'preference');
SELECT profile_guard.define_tag('interest.music', 'preference');
SELECT profile_guard.define_tag('health.condition', 'medical_health');
SELECT profile_guard.define_purpose('rec', 'recommendations', ARRAY['interest.*', 'health.*']);
SELECT profile_guard.register_subject(i::text) FROM generate_series(1, 3) i;
SELECT profile_guard.grant_consent(i::text, 'rec', ARRAY['interest.*', 'health.*'], separate => true)
FROM generate_series(1, 3) i;
SQL
	# the owner's code: records who runs it, and tries to become superuser
	ok(script($db, 'regress_owner', <<'SQL'), "$db: the owner's code");
CREATE FUNCTION public.owner_code(what text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO public.ran_as
	SELECT what, current_user, r.rolsuper FROM pg_roles r WHERE r.rolname = current_user;
	BEGIN
		ALTER ROLE regress_owner SUPERUSER;
	EXCEPTION WHEN insufficient_privilege THEN
		NULL;
	END;
END $$;
CREATE FUNCTION public.owner_trigger() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	PERFORM public.owner_code(TG_ARGV[0]);
	RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
END $$;
SQL
}
setup('postgres');
setup('workerdb');

note('the sweep, SQL sweep()');
ok(script('postgres', 'regress_owner', <<'SQL'), 'setting up the sweep table');
CREATE TABLE public.swept (id int PRIMARY KEY, sports text, music text);
SELECT profile_guard.protect('public.swept', 'id');
SELECT profile_guard.classify('public.swept', 'sports', 'interest.sports');
SELECT profile_guard.classify('public.swept', 'music', 'interest.music');
INSERT INTO public.swept SELECT i, 'sport ' || i, 'music ' || i FROM generate_series(1, 3) i;
CREATE TRIGGER owner_after_delete AFTER DELETE ON public.swept
	FOR EACH ROW EXECUTE FUNCTION public.owner_trigger('sweep');
CREATE TRIGGER owner_before_update BEFORE UPDATE ON public.swept
	FOR EACH ROW EXECUTE FUNCTION public.owner_trigger('sweep');
SQL
ok(script('postgres', 'regress_clerk', <<'SQL'), 'withdrawing consent');
SELECT profile_guard.withdraw_consent('1', 'rec');
SELECT profile_guard.withdraw_consent('2', 'rec', ARRAY['interest.music']);
SQL
note('sweep: ' . one('postgres', 'regress_admin', "SELECT string_agg(format('%s %s %s %s', tag, reason, action, rows), ', ' ORDER BY tag, action) FROM profile_guard.sweep() WHERE relation = 'public.swept'"));
check_owner('postgres', 'sweep', 'yes');
is(one('postgres', 'postgres', "SELECT string_agg(format('%s:%s:%s', id, sports, coalesce(music, '-')), ' ' ORDER BY id) FROM public.swept"),
	'2:sport 2:- 3:sport 3:music 3', 'sweep erased what was due');

note("the sweep's own writes alone skip the collection checks");
# the owner's AFTER DELETE trigger writes into another guarded table while
# the sweep runs: that write is checked and encrypted like any other
ok(script('postgres', 'regress_owner', <<'SQL'), 'setting up the side tables');
CREATE TABLE public.side (id int, health text);
SELECT profile_guard.protect('public.side', 'id');
SELECT profile_guard.classify('public.side', 'health', 'health.condition');
CREATE FUNCTION public.side_writer() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO public.side VALUES (3, 'plain-secret-3');
	BEGIN
		INSERT INTO public.side VALUES (1, 'plain-secret-1');	-- 1 withdrew every consent
	EXCEPTION WHEN insufficient_privilege THEN
		NULL;
	END;
	RETURN OLD;
END $$;
CREATE TABLE public.swept_side (id int PRIMARY KEY, sports text);
SELECT profile_guard.protect('public.swept_side', 'id');
SELECT profile_guard.classify('public.swept_side', 'sports', 'interest.sports');
-- 1's row was collected before its withdrawal (the check is off meanwhile)
ALTER TABLE public.swept_side DISABLE TRIGGER profile_guard_collect;
INSERT INTO public.swept_side VALUES (1, 'sport 1');
ALTER TABLE public.swept_side ENABLE ALWAYS TRIGGER profile_guard_collect;
CREATE TRIGGER side_after_delete AFTER DELETE ON public.swept_side
	FOR EACH ROW EXECUTE FUNCTION public.side_writer();
SQL
one('postgres', 'regress_admin', 'SELECT count(*) FROM profile_guard.sweep()');
is(one('postgres', 'postgres', 'SELECT count(*) FROM public.swept_side'), '0', "the sweep erased 1's row");
is(one('postgres', 'postgres', "SELECT string_agg(format('%s:%s', id, CASE WHEN health LIKE 'pgt2%' THEN 'encrypted' ELSE health END), ' ' ORDER BY id) FROM public.side"),
	'3:encrypted', "a write by the owner's trigger during the sweep was checked and encrypted");

note('the sweep, background worker');
ok(script('workerdb', 'regress_owner', <<'SQL'), "setting up the worker's table");
CREATE TABLE public.swept (id int PRIMARY KEY, sports text);
SELECT profile_guard.protect('public.swept', 'id');
SELECT profile_guard.classify('public.swept', 'sports', 'interest.sports');
INSERT INTO public.swept SELECT i, 'sport ' || i FROM generate_series(1, 3) i;
CREATE TRIGGER owner_after_delete AFTER DELETE ON public.swept
	FOR EACH ROW EXECUTE FUNCTION public.owner_trigger('worker');
SQL
one('workerdb', 'regress_clerk', "SELECT profile_guard.withdraw_consent('1', 'rec')");
for (1 .. 300)
{
	last if one('workerdb', 'postgres', "SELECT count(*) FROM public.ran_as WHERE what = 'worker'") ne '0'
	  || one('workerdb', 'postgres', 'SELECT count(*) FROM public.swept WHERE id = 1') eq '0';
	usleep(100_000);
}
sleep 1;
check_owner('workerdb', 'worker', 'yes');
is(one('workerdb', 'postgres', "SELECT string_agg(id::text, ' ' ORDER BY id) FROM public.swept"), '2 3',
	'the worker erased what was due');

note('the sweep, plain retention in a long table');
# only the rows' own columns decide (a database where nothing else is due):
# the sweep reads them without the row lock and the owner's DELETE tests
# them again; a trigger or rule that skips a row still stops the sweep, and
# nothing is erased or logged
$node->safe_psql('postgres', 'CREATE DATABASE retentiondb');
setup('retentiondb');
ok(script('retentiondb', 'postgres', <<'SQL'), 'a purpose with retention');
SELECT profile_guard.define_tag('behavior.visit', 'behavior');
SELECT profile_guard.define_purpose('visits', 'visit history', ARRAY['behavior.*'],
								   retention => '30 days');
SQL
ok(script('retentiondb', 'regress_owner', <<'SQL'), 'setting up the retention table');
CREATE TABLE public.visits (id int, tag text, value text, collected timestamptz);
SELECT profile_guard.protect('public.visits', 'id', 'collected', 'tag', 'value');
ALTER TABLE public.visits DISABLE TRIGGER profile_guard_collect;
INSERT INTO public.visits
SELECT i % 3 + 1, 'behavior.visit', 'page ' || i, now() - interval '60 days'
FROM generate_series(1, 6) i;
INSERT INTO public.visits VALUES (1, 'behavior.visit', 'page 7', now());
ALTER TABLE public.visits ENABLE ALWAYS TRIGGER profile_guard_collect;
CREATE TRIGGER owner_after_delete AFTER DELETE ON public.visits
	FOR EACH ROW EXECUTE FUNCTION public.owner_trigger('retention');
CREATE TABLE public.skip (rows_of int);
INSERT INTO public.skip VALUES (2);
CREATE FUNCTION public.skipper() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	RETURN CASE WHEN OLD.id IN (SELECT rows_of FROM public.skip) THEN NULL ELSE OLD END;
END $$;
CREATE TRIGGER owner_before_delete BEFORE DELETE ON public.visits
	FOR EACH ROW EXECUTE FUNCTION public.skipper();
SQL
my $visits = "SELECT string_agg(value, ' ' ORDER BY value) FROM public.visits";
my $visits_log = "SELECT coalesce(string_agg(format('%s %s %s %s', tag, reason, action, rows), ', '), 'none')"
  . " FROM profile_guard.erasure_log WHERE relation = 'public.visits'";
like(scalar pfg_psql($node, 'retentiondb', 'SELECT count(*) FROM profile_guard.sweep()', '-U', 'regress_admin'),
	qr/could not erase every due row of table "public\.visits"/,
	"a BEFORE DELETE trigger that skips a due row stops the sweep");
is(one('retentiondb', 'postgres', $visits), 'page 1 page 2 page 3 page 4 page 5 page 6 page 7',
	'... which erased nothing');
is(one('retentiondb', 'postgres', $visits_log), 'none', '... and logged nothing');

ok(script('retentiondb', 'regress_owner', <<'SQL'), 'a rule instead of the trigger');
TRUNCATE public.skip;
CREATE RULE skip_rule AS ON DELETE TO public.visits WHERE old.id = 3 DO INSTEAD NOTHING;
SQL
like(scalar pfg_psql($node, 'retentiondb', 'SELECT count(*) FROM profile_guard.sweep()', '-U', 'regress_admin'),
	qr/could not erase every due row of table "public\.visits"/,
	'a rule that skips a due row stops the sweep');
is(one('retentiondb', 'postgres', $visits), 'page 1 page 2 page 3 page 4 page 5 page 6 page 7',
	'... which erased nothing');

ok(script('retentiondb', 'regress_owner', <<'SQL'), 'a rule that deletes as many rows elsewhere');
DROP RULE skip_rule ON public.visits;
CREATE TABLE public.decoy (value text);
INSERT INTO public.decoy SELECT 'page ' || i FROM generate_series(1, 7) i;
CREATE RULE redirect_rule AS ON DELETE TO public.visits
	DO INSTEAD DELETE FROM public.decoy d WHERE d.value = old.value;
SQL
like(scalar pfg_psql($node, 'retentiondb', 'SELECT count(*) FROM profile_guard.sweep()', '-U', 'regress_admin'),
	qr/could not erase every due row of table "public\.visits".*DO INSTEAD rule on DELETE/s,
	'a rule that redirects the deletes stops the sweep, though as many rows would go');
is(one('retentiondb', 'postgres', $visits), 'page 1 page 2 page 3 page 4 page 5 page 6 page 7',
	'... which erased nothing');
is(one('retentiondb', 'postgres', 'SELECT count(*) FROM public.decoy'), '7', '... not even elsewhere');
is(one('retentiondb', 'postgres', $visits_log), 'none', '... and logged nothing');

ok(script('retentiondb', 'regress_owner', <<'SQL'), 'a trigger that raises instead of the rule');
DROP RULE redirect_rule ON public.visits;
CREATE TABLE public.refuse (rows_of int);
INSERT INTO public.refuse VALUES (3);
CREATE FUNCTION public.refuser() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF OLD.id IN (SELECT rows_of FROM public.refuse) THEN
		RAISE EXCEPTION 'the owner refuses';
	END IF;
	RETURN OLD;
END $$;
CREATE TRIGGER owner_refuses BEFORE DELETE ON public.visits
	FOR EACH ROW EXECUTE FUNCTION public.refuser();
SQL
like(scalar pfg_psql($node, 'retentiondb', <<'SQL', '-U', 'regress_admin'),
BEGIN;
DO $$
BEGIN
	PERFORM count(*) FROM profile_guard.sweep();
EXCEPTION WHEN raise_exception THEN
	RAISE NOTICE 'caught';
END $$;
SELECT 'went on';
COMMIT;
SQL
	qr/caught\nwent on\z/, "the owner's error in the sweep is caught by its caller's handler");
is(one('retentiondb', 'postgres', $visits), 'page 1 page 2 page 3 page 4 page 5 page 6 page 7',
	'... which erased nothing');
ok(script('retentiondb', 'regress_owner', 'DROP TRIGGER owner_refuses ON public.visits'), 'dropping that trigger');
one('retentiondb', 'regress_admin', 'SELECT count(*) FROM profile_guard.sweep()');
check_owner('retentiondb', 'retention', 'yes');
is(one('retentiondb', 'postgres', $visits), 'page 7', 'the sweep erased the expired rows');
is(one('retentiondb', 'postgres', $visits_log), 'behavior.visit retention delete 6',
	'... and logged them');

# a plain SET in the owner's trigger ends with the owner's statement: it
# must not steer the sweep's next read (in the extension's context) to an
# operator of the owner's, nor outlive the sweep in the caller's session
ok(script('retentiondb', 'postgres', <<'SQL'), 'a second tag of the retention table');
SELECT profile_guard.define_tag('behavior.click', 'behavior');
SQL
ok(script('retentiondb', 'regress_owner', <<'SQL'), "an owner's trigger that sets search_path to its own operator");
CREATE FUNCTION public.texteq(a text, b text) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
	PERFORM public.owner_code('search_path');
	RETURN pg_catalog.texteq(a, b);
END $$;
CREATE OPERATOR public.= (LEFTARG = text, RIGHTARG = text, FUNCTION = public.texteq);
CREATE FUNCTION public.set_path() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	PERFORM pg_catalog.set_config('search_path', 'public, pg_catalog', false);
	RETURN OLD;
END $$;
CREATE TRIGGER owner_sets_path BEFORE DELETE ON public.visits
	FOR EACH ROW EXECUTE FUNCTION public.set_path();
ALTER TABLE public.visits DISABLE TRIGGER profile_guard_collect;
INSERT INTO public.visits
SELECT i % 3 + 1, CASE WHEN i % 2 = 0 THEN 'behavior.click' ELSE 'behavior.visit' END,
	   'more ' || i, now() - interval '60 days'
FROM generate_series(1, 4) i;
ALTER TABLE public.visits ENABLE ALWAYS TRIGGER profile_guard_collect;
SQL
is(scalar pfg_psql($node, 'retentiondb', <<'SQL', '-U', 'regress_admin'),
SELECT count(*) FROM profile_guard.sweep();
SHOW search_path;
SQL
	qq{2
"\$user", public}, "the sweep ran, and the caller's search_path is its own after it");
check_owner('retentiondb', 'search_path', 'no');
is(one('retentiondb', 'postgres', $visits), 'page 7', 'the sweep erased the expired rows of both tags');
ok(script('retentiondb', 'regress_owner', <<'SQL'), 'dropping that trigger and operator');
DROP TRIGGER owner_sets_path ON public.visits;
DROP OPERATOR public.= (text, text);
SQL

note('classify, declassify, unprotect');
ok(script('postgres', 'regress_owner', <<'SQL'), 'setting up the classified table');
CREATE TABLE public.health (id int PRIMARY KEY, cond text);
SELECT profile_guard.protect('public.health', 'id');
INSERT INTO public.health SELECT i, 'condition ' || i FROM generate_series(1, 3) i;
CREATE TRIGGER owner_before_update BEFORE UPDATE ON public.health
	FOR EACH ROW EXECUTE FUNCTION public.owner_trigger('classify');
SQL
note('classify: ' . one('postgres', 'regress_owner', "SELECT profile_guard.classify('public.health', 'cond', 'health.condition')"));
check_owner('postgres', 'classify', 'yes');
is(one('postgres', 'postgres', "SELECT count(*) FROM public.health WHERE profile_guard._ciphertext_kind(id::text, 'health.condition', cond) = 'ours'"),
	'3', 'classify encrypted every row');
one('postgres', 'regress_owner', "DROP TRIGGER owner_before_update ON public.health;
	CREATE TRIGGER owner_before_update BEFORE UPDATE ON public.health
	FOR EACH ROW EXECUTE FUNCTION public.owner_trigger('declassify')");
note(one('postgres', 'regress_owner', "SELECT profile_guard.declassify('public.health', 'cond')"));
check_owner('postgres', 'declassify', 'yes');
is(one('postgres', 'postgres', "SELECT string_agg(cond, ',' ORDER BY id) FROM public.health"),
	'condition 1,condition 2,condition 3', 'declassify decrypted every row');
one('postgres', 'regress_owner', "SELECT profile_guard.classify('public.health', 'cond', 'health.condition');
	DROP TRIGGER owner_before_update ON public.health;
	CREATE TRIGGER owner_before_update BEFORE UPDATE ON public.health
	FOR EACH ROW EXECUTE FUNCTION public.owner_trigger('unprotect')");
note(one('postgres', 'regress_owner', "SELECT profile_guard.unprotect('public.health')"));
check_owner('postgres', 'unprotect', 'yes');
is(one('postgres', 'postgres', "SELECT string_agg(cond, ',' ORDER BY id) FROM public.health"),
	'condition 1,condition 2,condition 3', 'unprotect decrypted every row');

note('subject_report and assess');
ok(script('postgres', 'regress_owner', <<'SQL'), 'setting up the report tables');
-- a guarded table turned into a view whose rule runs the owner's code
CREATE TABLE public.viewed (id int, sports text, cond text);
SELECT profile_guard.protect('public.viewed', 'id');
SELECT profile_guard.classify('public.viewed', 'sports', 'interest.sports');
SELECT profile_guard.classify('public.viewed', 'cond', 'health.condition');
DROP TRIGGER profile_guard_collect ON public.viewed;
-- (a table with row-level security cannot become a view: the owner drops
-- the extension's policy and then disables it)
DROP POLICY profile_guard_values ON public.viewed;
ALTER TABLE public.viewed DISABLE ROW LEVEL SECURITY;
VACUUM public.viewed;		-- clears relhastriggers
CREATE FUNCTION public.owner_rows() RETURNS TABLE (id int, sports text, cond text)
LANGUAGE plpgsql AS $$
BEGIN
	PERFORM public.owner_code('view');
	RETURN QUERY SELECT 1, 'x'::text, 'y'::text;
END $$;
CREATE RULE "_RETURN" AS ON SELECT TO public.viewed DO INSTEAD SELECT * FROM public.owner_rows();
-- a subject column of an enum with a cast to text, a tag column of an
-- enum with a cast to json
CREATE TYPE public.level AS ENUM ('low', 'high');
CREATE FUNCTION public.level_json(public.level) RETURNS json LANGUAGE plpgsql AS $$
BEGIN
	PERFORM public.owner_code('cast');
	RETURN to_json($1::text);
END $$;
CREATE CAST (public.level AS json) WITH FUNCTION public.level_json(public.level);
CREATE TABLE public.casted (id text, sports public.level);
SELECT profile_guard.protect('public.casted', 'id');
SELECT profile_guard.classify('public.casted', 'sports', 'interest.sports');
INSERT INTO public.casted VALUES ('2', 'high');
CREATE TYPE public.subj AS ENUM ('1', '2', '3');
CREATE FUNCTION public.subj_text(public.subj) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
	PERFORM public.owner_code('cast');
	RETURN 'x';
END $$;
CREATE CAST (public.subj AS text) WITH FUNCTION public.subj_text(public.subj);
CREATE TABLE public.retyped (id text, music text);
SELECT profile_guard.protect('public.retyped', 'id');
SELECT profile_guard.classify('public.retyped', 'music', 'interest.sports');
INSERT INTO public.retyped VALUES ('2', 'music 2');
DROP TRIGGER profile_guard_collect ON public.retyped;
ALTER TABLE public.retyped ALTER COLUMN id TYPE public.subj USING id::public.subj;
SQL
my $report = one('postgres', 'regress_clerk', "SELECT profile_guard.subject_report('2')");
check_owner('postgres', 'view', 'no');
check_owner('postgres', 'cast', 'no');
like($report, qr/"table": "public\.viewed".*not readable/, 'subject_report: the view is not readable');
like($report, qr/"table": "public\.retyped".*not readable/, 'subject_report: the enum subject is not readable');
ok($report =~ /"value": "sport 2"/ && $report =~ /"value": "high"/,
	"subject_report shows the subject's values") or diag($report);
one('postgres', 'regress_admin', 'SELECT count(*) FROM profile_guard.assess()');
check_owner('postgres', 'view', 'no');
check_owner('postgres', 'cast', 'no');
like(one('postgres', 'regress_admin', "SELECT detail FROM profile_guard.assess() WHERE clause = '§7.2'"),
	qr/public\.viewed.*no longer a table/, 'assess reports the view as not checked');

note('protect refuses a subject of a type that is not built in');
pfg_psql($node, 'postgres', <<'SQL', '-v', 'ON_ERROR_STOP=1', '-U', 'regress_owner');
CREATE TABLE public.enum_subject (id public.subj, sports text);
SQL
like(one('postgres', 'regress_owner', "SELECT profile_guard.protect('public.enum_subject', 'id')"),
	qr/must be of a built-in type/, 'protect refuses an enum subject column');

note('expressions that planning a read evaluates: index, statistics, check constraint');
# an immutable function without arguments is evaluated whenever a read of
# the table is planned (PostgreSQL simplifies the expressions it loads)
ok(script('postgres', 'regress_owner', <<'SQL'), 'the immutable code');
CREATE FUNCTION public.owner_constant() RETURNS int LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
	PERFORM public.owner_code('planned');
	RETURN 0;
END $$;
CREATE TABLE public.indexed (id int, sports text);
CREATE INDEX indexed_planned ON public.indexed ((id + public.owner_constant()));
SQL
like(one('postgres', 'regress_owner', "SELECT profile_guard.protect('public.indexed', 'id')"),
	qr/guarded table "public\.indexed" has index "indexed_planned" that calls function public\.owner_constant\(\), which is not built in/,
	'protect refuses a table whose index calls code of its owner');
check_owner('postgres', 'planned', 'no');
# a guarded table that gets such an index, statistics or constraint later:
# the reads of the sweep, subject_report and assess skip it
ok(script('postgres', 'regress_owner', <<'SQL'), 'guarded tables that get such expressions');
CREATE TABLE public.planned_index (id int, sports text);
CREATE TABLE public.planned_stats (id int, sports text);
CREATE TABLE public.planned_check (id int, sports text);
SELECT profile_guard.protect(t, 'id'), profile_guard.classify(t, 'sports', 'interest.sports')
  FROM unnest(ARRAY['public.planned_index', 'public.planned_stats', 'public.planned_check']::regclass[]) t;
INSERT INTO public.planned_index VALUES (2, 'sport 2');
INSERT INTO public.planned_stats VALUES (2, 'sport 2');
INSERT INTO public.planned_check VALUES (2, 'sport 2');
CREATE INDEX planned_index_expr ON public.planned_index ((id + public.owner_constant()));
CREATE STATISTICS planned_stats_expr ON (id + public.owner_constant()), (id * 2) FROM public.planned_stats;
ALTER TABLE public.planned_check ADD CONSTRAINT planned_check_expr CHECK (id + public.owner_constant() >= 0);
SQL
$report = one('postgres', 'regress_clerk', "SELECT profile_guard.subject_report('2')");
check_owner('postgres', 'planned', 'no');
for my $t ('planned_index', 'planned_stats', 'planned_check')
{
	like($report, qr/"table": "public\.$t".*not readable/, "subject_report: $t is not readable");
}
one('postgres', 'regress_admin', 'SELECT count(*) FROM profile_guard.assess()');
check_owner('postgres', 'planned', 'no');
ok(script('postgres', 'regress_clerk', "SELECT profile_guard.withdraw_consent('2', 'rec')"),
	"withdrawing 2's consent");
my ($rc, $out, $err) = $node->psql('postgres', 'SELECT count(*) FROM profile_guard.sweep()',
	extra_params => [ '-U', 'regress_admin' ]);
like($err, qr/guarded table "public\.planned_index" has index "planned_index_expr" that calls function public\.owner_constant\(\)/,
	'the sweep skips the table with a warning');
check_owner('postgres', 'planned', 'no');
is(one('postgres', 'postgres', 'SELECT count(*) FROM public.planned_index'), '1',
	"... and erases nothing of it");

# a sweep that skipped a table is not complete: the erasure request it
# served stays pending (the subject is not forgotten) until a sweep reaches
# every table
my $completed = "SELECT count(*) FROM profile_guard.erasure_request WHERE completed_at IS NOT NULL";
ok(script('postgres', 'regress_clerk', "SELECT profile_guard.request_erasure('2')"),
	"2 asks for erasure");
($rc, $out, $err) = $node->psql('postgres', 'SELECT count(*) FROM profile_guard.sweep()',
	extra_params => [ '-U', 'regress_admin' ]);
like($err, qr/planned_index/, 'the sweep skips the table again');
is(one('postgres', 'postgres', 'SELECT count(*) FROM public.planned_index'), '1',
	"... its row of 2 stays");
is(one('postgres', 'postgres', $completed), '0', '... and the request is not complete');
is(one('postgres', 'postgres', "SELECT count(*) FROM profile_guard.subject WHERE subject = '2'"), '1',
	'... nor is the subject forgotten');
ok(script('postgres', 'regress_owner', <<'SQL'), 'the owner drops the expressions, and the tables no longer usable');
DROP VIEW public.viewed;
DROP TABLE public.retyped;
DROP INDEX public.planned_index_expr;
DROP STATISTICS public.planned_stats_expr;
ALTER TABLE public.planned_check DROP CONSTRAINT planned_check_expr;
SQL
($rc, $out, $err) = $node->psql('postgres', 'SELECT count(*) FROM profile_guard.sweep()',
	extra_params => [ '-U', 'regress_admin' ]);
is($err, '', 'the next sweep skips nothing');
is(one('postgres', 'postgres', 'SELECT count(*) FROM public.planned_index'), '0',
	"... erases the row of 2");
is(one('postgres', 'postgres', $completed), '1', '... and completes the request');

$node->stop;
done_testing();
