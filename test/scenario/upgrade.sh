#!/usr/bin/env bash
# test/scenario/upgrade.sh — the extension upgrade path.  A database created
# at the previous version, with policy, consent and encrypted data in it, is
# updated with ALTER EXTENSION … UPDATE; afterwards
#   - its data is intact and enforced exactly as before, and
#   - its extension objects are identical to a fresh install of the current
#     version (functions with bodies, settings and privileges; tables,
#     columns, constraints, indexes, triggers, views; pg_dump registrations).
#
# Needs PGHOST/PGPORT/PGUSER of a running cluster with profile_guard
# preloaded (test/run_tests.sh provides them).
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${PGBIN:-$(pg_config --bindir)}
OLD=$(sed -n "s/^# previous version: *\([0-9.]*\).*/\1/p" profile_guard.control)
NEW=$(sed -n "s/^default_version = '\(.*\)'/\1/p" profile_guard.control)
UPGRADED=regress_upgrade_old
FRESH=regress_upgrade_new
WORK=$(mktemp -d /tmp/profile_guard_upgrade.XXXXXX)
fail() { echo "FAILED: $*" >&2; exit 1; }
cleanup() {
	for db in $UPGRADED $FRESH; do "$BIN/dropdb" --if-exists "$db" >/dev/null 2>&1 || true; done
	"$BIN/psql" -X -q -d postgres -c 'DROP ROLE IF EXISTS regress_upgrade_app' >/dev/null 2>&1 || true
	rm -rf "$WORK"
}
trap cleanup EXIT
cleanup
mkdir -p "$WORK"
[[ -n $OLD && -n $NEW ]] || fail "profile_guard.control names no previous version"
echo "upgrade $OLD -> $NEW"
"$BIN/psql" -X -q -d postgres -c 'CREATE ROLE regress_upgrade_app'
"$BIN/createdb" $UPGRADED
"$BIN/createdb" $FRESH

"$BIN/psql" -X -q -v ON_ERROR_STOP=1 -d $UPGRADED >/dev/null <<SQL
SET client_min_messages = warning;
CREATE EXTENSION profile_guard VERSION '$OLD';
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
# what the application sees, before and after
read_as_app() {
	"$BIN/psql" -X -q -At -d $UPGRADED -c "SET ROLE regress_upgrade_app" \
		-c "SET profile_guard.purpose = 'rec'" -c "SELECT id, music, health FROM ONLY public.profiles ORDER BY id"
}
before=$(read_as_app)
[[ $before == $'1|jazz|asthma\n2|rock|' ]] || fail "reads at $OLD: $before"
ledger_before=$("$BIN/psql" -X -At -d $UPGRADED -c "SELECT md5(string_agg((c.consent_id, c.subject, c.purpose, c.purpose_version, c.action, c.tags, c.separate, c.guardian, c.expires_at, c.recorded_at, c.recorded_by)::text, ',' ORDER BY consent_id)) FROM profile_guard.consent c")

"$BIN/psql" -X -q -v ON_ERROR_STOP=1 -d $UPGRADED -c "ALTER EXTENSION profile_guard UPDATE TO '$NEW'"
"$BIN/psql" -X -q -v ON_ERROR_STOP=1 -d $FRESH -c "CREATE EXTENSION profile_guard"
[[ $("$BIN/psql" -X -At -d $UPGRADED -c "SELECT extversion FROM pg_extension WHERE extname = 'profile_guard'") == "$NEW" ]] ||
	fail "extension version after update"
after=$(read_as_app)
[[ $after == "$before" ]] || fail "reads after the update: $after"
[[ $("$BIN/psql" -X -At -d $UPGRADED -c "SELECT md5(string_agg((c.consent_id, c.subject, c.purpose, c.purpose_version, c.action, c.tags, c.separate, c.guardian, c.expires_at, c.recorded_at, c.recorded_by)::text, ',' ORDER BY consent_id)) FROM profile_guard.consent c") == "$ledger_before" ]] ||
	fail "the consent ledger changed"
# contact and consumption are sensitive: their tags (and what derives from
# them) too, their plaintext encrypted in both shapes
[[ $("$BIN/psql" -X -At -d $UPGRADED -c "SELECT string_agg(tag || ':' || sensitivity, ',' ORDER BY tag) FROM profile_guard.tag WHERE tag IN ('contact.phone', 'consumption.item', 'score.spend', 'interest.music')") == "consumption.item:sensitive,contact.phone:sensitive,interest.music:general,score.spend:sensitive" ]] ||
	fail "tag sensitivity after the update"
[[ $("$BIN/psql" -X -At -d $UPGRADED -c "SELECT (SELECT phone LIKE 'pgt1:%' FROM public.contacts) AND (SELECT value LIKE 'pgt1:%' FROM public.buys)") == t ]] ||
	fail "the plaintext of tags that became sensitive was not encrypted by the update"
# a marketing purpose of 1.1 is personalised (opt_out() keeps its meaning)
[[ $("$BIN/psql" -X -At -d $UPGRADED -c "SELECT string_agg(purpose || ':' || personalised, ',' ORDER BY purpose) FROM profile_guard.purpose") == "ads:true,crm:false,rec:false" ]] ||
	fail "personalised after the update"
[[ $("$BIN/psql" -X -At -d $UPGRADED -c "SELECT bool_and(personalised = marketing) FROM profile_guard.purpose_history") == t ]] ||
	fail "personalised of the purpose history after the update"
# collection stamps are chosen per table, off by default: the tables
# protected at the previous version take none
[[ $("$BIN/psql" -X -At -d $UPGRADED -c "SELECT (SELECT count(*) FROM profile_guard.guarded_table WHERE stamp_collection) + (SELECT count(*) FROM profile_guard.collection_stamp)") == 0 ]] ||
	fail "the update switched on collection stamps or stamped tables"
out=$("$BIN/psql" -X -q -At -d $UPGRADED -c "SET ROLE regress_upgrade_app" -c "SELECT music FROM public.profiles" 2>&1 || true)
[[ $out == *"no purpose declared"* ]] || fail "no-purpose read after the update: $out"
# the inheritance child: its plaintext encrypted, its writes checked
[[ $("$BIN/psql" -X -At -d $UPGRADED -c "SELECT health LIKE 'pgt1:%' FROM ONLY public.profiles_kid") == t ]] ||
	fail "the sensitive plaintext of an inheritance child was not encrypted by the update"
out=$("$BIN/psql" -X -q -At -d $UPGRADED -c "INSERT INTO public.profiles_kid VALUES (2, NULL, 'flu')" 2>&1 || true)
[[ $out == *"no consent to collect"* ]] || fail "a write into an inheritance child after the update: $out"

# the extension's objects, described the same way in both databases
describe() {
	"$BIN/psql" -X -At -v ON_ERROR_STOP=1 -d "$1" <<'SQL'
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
}
describe $UPGRADED > "$WORK/upgraded.txt" || fail "describing the updated database"
describe $FRESH > "$WORK/fresh.txt" || fail "describing the fresh database"
[[ $(wc -l < "$WORK/fresh.txt") -gt 100 ]] || fail "too few objects described"
if ! diff -u "$WORK/fresh.txt" "$WORK/upgraded.txt" > "$WORK/diff.txt"; then
	cat "$WORK/diff.txt" | head -60
	fail "the updated extension differs from a fresh install of $NEW (lines: - fresh, + updated)"
fi
echo "upgrade $OLD -> $NEW ok ($(wc -l < "$WORK/fresh.txt") objects compared)"
