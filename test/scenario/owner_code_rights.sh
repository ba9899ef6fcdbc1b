#!/usr/bin/env bash
# test/scenario/owner_code_rights.sh — code of a guarded table's owner never
# runs with the extension's rights.  The owner (a non-superuser member of
# profile_guard_admin) plants code that makes itself superuser when run by
# one, and records who ran it; then, as non-superusers,
#   - sweep() deletes and nulls due rows (AFTER DELETE, BEFORE UPDATE triggers),
#   - the erasure worker deletes a due row (second database),
#   - classify, declassify and unprotect rewrite a column (BEFORE UPDATE trigger),
#   - subject_report and assess read a table turned into a view by a _RETURN
#     rule, a subject column of an enum with a cast to text, and a tag column
#     of an enum with a cast to json,
#   - protect refuses a subject column of a type that is not built in.
# Each: the owner is not superuser afterwards and its code ran as itself
# (or not at all); and the legitimate work was done.
# Uses test/lib/cluster.sh with PGBIN from the environment.
set -uo pipefail
cd "$(dirname "$0")/../.."
unset PGTEST_PORT
. test/lib/cluster.sh

failures=0
fail() { echo "FAILED: $*"; failures=$((failures + 1)); }
ok() { echo "ok: $*"; }

pg_cluster_start owner_rights "profile_guard.database = 'workerdb'" \
	"profile_guard.sweep_interval = 1" || exit 1
trap 'pg_cluster_stop' EXIT
"$PGBIN/psql" -X -q -c "CREATE DATABASE workerdb" postgres || exit 1

# psql DB USER: a script on stdin, stop at the first error
q() { "$PGBIN/psql" -X -q -At -v ON_ERROR_STOP=1 -d "$1" -U "$2"; }
# psql DB USER SQL: one query, errors shown, never stops the script
v() { "$PGBIN/psql" -X -q -At -d "$1" -U "$2" -c "$3" 2>&1; }

# the owner is not superuser, else make it ordinary again for the next check
check_owner() {
	local db=$1 what=$2 want_run=$3
	if [[ $(v "$db" postgres "SELECT rolsuper FROM pg_roles WHERE rolname = 'regress_owner'") == t ]]; then
		fail "$what: the owner's code ran as superuser and made the owner superuser"
		v "$db" postgres "ALTER ROLE regress_owner NOSUPERUSER" >/dev/null
	else
		ok "$what: the owner did not become superuser"
	fi
	local runs bad
	runs=$(v "$db" postgres "SELECT count(*) FROM public.ran_as WHERE what = '$what'")
	bad=$(v "$db" postgres "SELECT count(*) FROM public.ran_as WHERE what = '$what' AND (who <> 'regress_owner' OR super)")
	if [[ $bad != 0 ]]; then
		fail "$what: the owner's code ran as $(v "$db" postgres "SELECT string_agg(DISTINCT who || CASE WHEN super THEN ' (superuser)' ELSE '' END, ', ') FROM public.ran_as WHERE what = '$what'")"
	elif [[ $want_run == yes && $runs == 0 ]]; then
		fail "$what: the owner's code did not run"
	elif [[ $want_run == yes ]]; then
		ok "$what: the owner's code ran $runs times, as the owner"
	else
		ok "$what: the owner's code never ran with the extension's rights"
	fi
}

setup() {
	q "$1" postgres <<'SQL'
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
	q "$1" regress_owner <<'SQL'
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
setup postgres
setup workerdb

echo "== the sweep, SQL sweep()"
q postgres regress_owner <<'SQL' || fail "setting up the sweep table"
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
q postgres regress_clerk <<'SQL' || fail "withdrawing consent"
SELECT profile_guard.withdraw_consent('1', 'rec');
SELECT profile_guard.withdraw_consent('2', 'rec', ARRAY['interest.music']);
SQL
out=$(v postgres regress_admin "SELECT string_agg(format('%s %s %s %s', tag, reason, action, rows), ', ' ORDER BY tag, action) FROM profile_guard.sweep() WHERE relation = 'public.swept'")
echo "sweep: $out"
check_owner postgres sweep yes
got=$(v postgres postgres "SELECT string_agg(format('%s:%s:%s', id, sports, coalesce(music, '-')), ' ' ORDER BY id) FROM public.swept")
[[ $got == "2:sport 2:- 3:sport 3:music 3" ]] && ok "sweep erased what was due" || fail "sweep left: $got"

echo "== the sweep's own writes alone skip the collection checks"
# the owner's AFTER DELETE trigger writes into another guarded table while
# the sweep runs: that write is checked and encrypted like any other
q postgres regress_owner <<'SQL' || fail "setting up the side tables"
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
v postgres regress_admin "SELECT count(*) FROM profile_guard.sweep()" >/dev/null
got=$(v postgres postgres "SELECT string_agg(format('%s:%s', id, CASE WHEN health LIKE 'pgt1:%' THEN 'encrypted' ELSE health END), ' ' ORDER BY id) FROM public.side")
[[ $(v postgres postgres "SELECT count(*) FROM public.swept_side") == 0 ]] || fail "the sweep left 1's row"
[[ $got == "3:encrypted" ]] && ok "a write by the owner's trigger during the sweep was checked and encrypted" ||
	fail "the owner's trigger wrote during the sweep: $got"

echo "== the sweep, background worker"
q workerdb regress_owner <<'SQL' || fail "setting up the worker's table"
CREATE TABLE public.swept (id int PRIMARY KEY, sports text);
SELECT profile_guard.protect('public.swept', 'id');
SELECT profile_guard.classify('public.swept', 'sports', 'interest.sports');
INSERT INTO public.swept SELECT i, 'sport ' || i FROM generate_series(1, 3) i;
CREATE TRIGGER owner_after_delete AFTER DELETE ON public.swept
	FOR EACH ROW EXECUTE FUNCTION public.owner_trigger('worker');
SQL
v workerdb regress_clerk "SELECT profile_guard.withdraw_consent('1', 'rec')" >/dev/null
for ((i = 0; i < 300; i++)); do
	[[ $(v workerdb postgres "SELECT count(*) FROM public.ran_as WHERE what = 'worker'") != 0 ||
		$(v workerdb postgres "SELECT count(*) FROM public.swept WHERE id = 1") == 0 ]] && break
	sleep 0.1
done
sleep 1
check_owner workerdb worker yes
[[ $(v workerdb postgres "SELECT string_agg(id::text, ' ' ORDER BY id) FROM public.swept") == "2 3" ]] &&
	ok "the worker erased what was due" || fail "the worker left: $(v workerdb postgres "SELECT string_agg(id::text, ' ' ORDER BY id) FROM public.swept")"

echo "== classify, declassify, unprotect"
q postgres regress_owner <<'SQL' || fail "setting up the classified table"
CREATE TABLE public.health (id int PRIMARY KEY, cond text);
SELECT profile_guard.protect('public.health', 'id');
INSERT INTO public.health SELECT i, 'condition ' || i FROM generate_series(1, 3) i;
CREATE TRIGGER owner_before_update BEFORE UPDATE ON public.health
	FOR EACH ROW EXECUTE FUNCTION public.owner_trigger('classify');
SQL
echo "classify: $(v postgres regress_owner "SELECT profile_guard.classify('public.health', 'cond', 'health.condition')")"
check_owner postgres classify yes
n=$(v postgres postgres "SELECT count(*) FROM public.health WHERE profile_guard._ciphertext_kind(id::text, 'health.condition', cond) = 'ours'")
[[ $n == 3 ]] && ok "classify encrypted every row" || fail "classify encrypted $n of 3 rows"
v postgres regress_owner "DROP TRIGGER owner_before_update ON public.health;
	CREATE TRIGGER owner_before_update BEFORE UPDATE ON public.health
	FOR EACH ROW EXECUTE FUNCTION public.owner_trigger('declassify')" >/dev/null
v postgres regress_owner "SELECT profile_guard.declassify('public.health', 'cond')"
check_owner postgres declassify yes
got=$(v postgres postgres "SELECT string_agg(cond, ',' ORDER BY id) FROM public.health")
[[ $got == "condition 1,condition 2,condition 3" ]] && ok "declassify decrypted every row" || fail "declassify left: $got"
v postgres regress_owner "SELECT profile_guard.classify('public.health', 'cond', 'health.condition');
	DROP TRIGGER owner_before_update ON public.health;
	CREATE TRIGGER owner_before_update BEFORE UPDATE ON public.health
	FOR EACH ROW EXECUTE FUNCTION public.owner_trigger('unprotect')" >/dev/null
v postgres regress_owner "SELECT profile_guard.unprotect('public.health')"
check_owner postgres unprotect yes
got=$(v postgres postgres "SELECT string_agg(cond, ',' ORDER BY id) FROM public.health")
[[ $got == "condition 1,condition 2,condition 3" ]] && ok "unprotect decrypted every row" || fail "unprotect left: $got"

echo "== subject_report and assess"
q postgres regress_owner <<'SQL' || fail "setting up the report tables"
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
report=$(v postgres regress_clerk "SELECT profile_guard.subject_report('2')")
check_owner postgres view no
check_owner postgres cast no
grep -q '"table": "public.viewed".*not readable' <<<"$report" && ok "subject_report: the view is not readable" ||
	fail "subject_report does not report the view as not readable: $report"
grep -q '"table": "public.retyped".*not readable' <<<"$report" && ok "subject_report: the enum subject is not readable" ||
	fail "subject_report does not report the enum subject as not readable"
grep -q '"value": "sport 2"' <<<"$report" && grep -q '"value": "high"' <<<"$report" &&
	ok "subject_report shows the subject's values" || fail "subject_report misses values: $report"
v postgres regress_admin "SELECT count(*) FROM profile_guard.assess()" >/dev/null
check_owner postgres view no
check_owner postgres cast no
got=$(v postgres regress_admin "SELECT detail FROM profile_guard.assess() WHERE clause = '§7.2'")
grep -q 'public.viewed.*no longer a table' <<<"$got" && ok "assess reports the view as not checked" ||
	fail "assess does not report the view: $got"

echo "== protect refuses a subject of a type that is not built in"
q postgres regress_owner <<'SQL' >/dev/null 2>&1 || true
CREATE TABLE public.enum_subject (id public.subj, sports text);
SQL
err=$(v postgres regress_owner "SELECT profile_guard.protect('public.enum_subject', 'id')")
grep -q 'must be of a built-in type' <<<"$err" && ok "protect refuses an enum subject column" ||
	fail "protect accepted an enum subject column: $err"

if [[ $failures -gt 0 ]]; then
	echo "$failures checks failed"
	exit 1
fi
echo "all checks passed"
