#!/usr/bin/env bash
# test/scenario/dump_restore.sh — pg_dump carries the policy: taxonomy,
# purposes (with history, assessments, roles), subjects, the consent ledger,
# blocks, guarded tables, classifications, collection stamps and lexicon
# exemptions survive a plain and a custom
# format dump and restore into fresh databases, and consent_status answers
# the same there.
#
# Needs PGHOST/PGPORT/PGUSER of a running cluster with profile_guard
# preloaded (test/run_tests.sh provides them).
set -euo pipefail

BIN=${PGBIN:-$(pg_config --bindir)}
SRC=regress_pg_dump_src
PLAIN=regress_pg_dump_plain
CUSTOM=regress_pg_dump_custom
WORK=$(mktemp -d /tmp/profile_guard_dump.XXXXXX)
chmod 755 "$WORK"

cleanup() {
	for db in $SRC $PLAIN $CUSTOM; do
		"$BIN/dropdb" --if-exists "$db" >/dev/null 2>&1 || true
	done
	psql -X -q -d postgres -c 'DROP ROLE IF EXISTS regress_dump_app' >/dev/null 2>&1 || true
	rm -rf "$WORK"
}
trap cleanup EXIT
cleanup_dbs_first() {
	for db in $SRC $PLAIN $CUSTOM; do
		"$BIN/dropdb" --if-exists "$db" >/dev/null 2>&1 || true
	done
}
cleanup_dbs_first

psql -X -q -v ON_ERROR_STOP=1 -d postgres -c 'SET client_min_messages = warning' -c 'DROP ROLE IF EXISTS regress_dump_app' \
	-c 'CREATE ROLE regress_dump_app'
"$BIN/createdb" "$SRC"
psql -X -q -v ON_ERROR_STOP=1 -d "$SRC" >/dev/null <<'SQL'
CREATE EXTENSION profile_guard;
SET search_path = profile_guard, public;
SELECT define_category('household', 'sensitive', 'Household composition');
SELECT add_prohibited_term('loot box', 'gambling');
-- a topic of the DBA's and its terms (prohibited_term refers to it)
SELECT add_prohibited_topic('pyramid_selling', 'Pyramid selling schemes');
SELECT add_prohibited_term('pyramid scheme', 'pyramid_selling');
SELECT add_prohibited_term('传销', 'pyramid_selling');
-- a topic exempted for a category (a shipped topic, a category of the DBA's)
SELECT exempt_prohibited_topic('disease', 'household');
SELECT define_tag('interest.sports', 'preference', description => 'Follows sports');
SELECT define_tag('interest.music', 'preference');
SELECT define_tag('health.condition', 'medical_health');
SELECT define_tag('household.size', 'household');
SELECT define_tag('score.churn', 'derived', derived_from => ARRAY['interest.sports', 'interest.music']);
SELECT define_tag('score.risk', 'derived', derived_from => ARRAY['score.churn', 'health.condition'],
				  layer => 'prediction');
SELECT define_purpose('rec', 'Recommendations', tags => ARRAY['interest.*', 'score.*', 'health.condition']);
SELECT define_purpose('rec', 'Recommendations v2', tags => ARRAY['interest.*', 'score.*', 'health.condition']);
SELECT define_purpose('ads', 'Marketing', tags => ARRAY['interest.*'], marketing => true,
					  retention => '180 days');
SELECT define_purpose('credit', 'Credit', tags => ARRAY['score.risk'], automated_decision => true);
SELECT record_assessment('credit', 'DPO', 'Acceptable');
SELECT define_purpose('old', 'Retired');
SELECT retire_purpose('old');
SELECT allow_purpose('regress_dump_app', 'rec');
SELECT register_subject('1', '1980-01-01');
SELECT register_subject('2', '2000-06-30');
SELECT register_subject('3');
SELECT grant_consent('1', 'rec', ARRAY['interest.*', 'score.*']);
SELECT grant_consent('1', 'rec', ARRAY['health.condition'], separate => true);
SELECT grant_consent('1', 'ads', ARRAY['interest.*']);
SELECT grant_consent('2', 'rec', ARRAY['interest.sports']);
SELECT withdraw_consent('2', 'rec', ARRAY['interest.sports']);
SELECT grant_consent('3', 'ads', ARRAY['interest.music'], expires_at => '2999-01-01');
SELECT block_tag('1', 'interest.music');
SELECT opt_out('3');
SELECT request_erasure('2');
CREATE TABLE public.profile (user_id text PRIMARY KEY, collected date, sports text, health text);
CREATE TABLE public.profile_long (uid bigint, tag text, value text);
SELECT protect('public.profile', 'user_id', 'collected');
SELECT classify('public.profile', 'sports', 'interest.sports');
SELECT classify('public.profile', 'health', 'health.condition');
SELECT protect('public.profile_long', 'uid', tag_column => 'tag', value_column => 'value',
			   on_erase => 'anonymise', stamp_collection => true);
-- a recipient abroad, its assessed purpose, a de-identified view for it,
-- and the data sources of the table
SELECT define_recipient('acme', 'DE', 'Acme GmbH');
SELECT define_purpose('share:acme', 'Share interests', tags => ARRAY['interest.*'], recipient => 'acme');
SELECT record_assessment('share:acme', 'DPO', 'Transfer assessed');
SELECT deidentified_view('public.profile', 'profile_for_acme', 'acme');
SELECT define_data_source('app', 'own_collection', 'privacy notice', '2024-01-15');
SELECT set_data_sources('public.profile', ARRAY['app']);
SELECT set_keep_columns('public.profile_long', '{}');
-- a table without a collected_at column, with collection stamps: the
-- choice and its stamps (set to a fixed time) survive, keyed by the
-- table's name
INSERT INTO public.profile_long VALUES (1, 'interest.sports', 'tennis'), (1, 'interest.sports', 'golf');
UPDATE collection_stamp SET collected_at = '2020-01-02 12:00:00+00' WHERE subject = '1';
SQL

# what must survive
snapshot() {
	psql -X -At -v ON_ERROR_STOP=1 -d "$1" <<'SQL'
SET search_path = profile_guard, public;
SELECT 'category', category, sensitivity, builtin, description FROM category ORDER BY category;
SELECT 'topic', topic, description, builtin FROM prohibited_topic ORDER BY topic;
SELECT 'term', term, topic, builtin FROM prohibited_term ORDER BY term;
SELECT 'exemption', topic, category FROM prohibited_topic_exemption ORDER BY 2, 3;
SELECT 'tag', tag, tag_id, category, sensitivity, declared_sensitivity, layer, derived_from,
	   all_sources, description FROM tag ORDER BY tag;
SELECT 'purpose', purpose, version, description, tags, retention, marketing, automated_decision,
	   recipient, retired_at IS NOT NULL FROM purpose ORDER BY purpose;
SELECT 'history', purpose, version, description, tags FROM purpose_history ORDER BY 2, 3;
SELECT 'assessment', purpose, purpose_version, assessor, conclusion FROM assessment ORDER BY 2, 3, 4;
SELECT 'role', role_name, purpose FROM purpose_role ORDER BY 2, 3;
SELECT 'subject', subject, birth_date, opted_out, erasure_requested_at IS NOT NULL FROM subject ORDER BY 2;
SELECT 'event', event_id, subject, event, tag FROM subject_event ORDER BY event_id;
SELECT 'block', subject, tag FROM tag_block ORDER BY 2, 3;
SELECT 'consent', consent_id, subject, purpose, purpose_version, action, tags, separate, guardian,
	   expires_at FROM consent ORDER BY consent_id;
SELECT 'erasure', request_id, subject, completed_at FROM erasure_request ORDER BY request_id;
SELECT 'guarded', relid, subject_column, collected_at_column, tag_column, value_column, on_erase,
	   stamp_collection
FROM guarded_table ORDER BY relid::text;
SELECT 'classified', relid, column_name, tag FROM classified_column ORDER BY relid::text, column_name;
SELECT 'recipient', recipient, country, description FROM recipient ORDER BY 2;
SELECT 'data_source', source, kind, licence_or_contract, reviewed_at FROM data_source ORDER BY 2;
SELECT 'table_data_source', relid, source FROM table_data_source ORDER BY 2, 3;
SELECT 'deidentified_view', view_relid, relid, recipient FROM deidentified_view ORDER BY view_relid::text;
SELECT 'keep', relid, anonymise_columns, keep_columns FROM guarded_table ORDER BY relid::text;
SELECT 'view', pg_get_viewdef('public.profile_for_acme'::regclass);
SELECT 'stamp', relid, subject, tag, collected_at FROM collection_stamp ORDER BY relid::text, subject, tag;
SELECT 'long_rows', count(*) FROM public.profile_long;
SELECT 'stats', attrelid::regclass, attname, attstattarget FROM pg_attribute
WHERE attrelid IN ('public.profile'::regclass, 'public.profile_long'::regclass)
  AND attnum > 0 AND NOT attisdropped ORDER BY 2, 3;
SELECT 'status', purpose, subject, tag, effective, reason FROM consent_status ORDER BY 2, 3, 4;
-- the sequences continue after the restored rows
SELECT 'next_tag_id', nextval('tag_id_seq') > (SELECT max(tag_id) FROM tag);
SELECT 'next_consent_id', nextval('consent_consent_id_seq') > (SELECT max(consent_id) FROM consent);
SQL
}

snapshot "$SRC" > "$WORK/src.txt"
grep -q '^classified|profile|health|health.condition$' "$WORK/src.txt" || {
	echo "error: the source snapshot lacks the classification" >&2; cat "$WORK/src.txt" >&2; exit 1; }
grep -q '^exemption|disease|household$' "$WORK/src.txt" || {
	echo "error: the source snapshot lacks the lexicon exemption" >&2; cat "$WORK/src.txt" >&2; exit 1; }
grep -q '^stamp|profile_long|1|interest.sports|2020-01-02' "$WORK/src.txt" || {
	echo "error: the source snapshot lacks the collection stamps" >&2; cat "$WORK/src.txt" >&2; exit 1; }

# plain format
"$BIN/pg_dump" -d "$SRC" -f "$WORK/dump.sql"
"$BIN/createdb" "$PLAIN"
psql -X -q -v ON_ERROR_STOP=1 -d "$PLAIN" -f "$WORK/dump.sql" > "$WORK/restore_plain.log" 2>&1 || {
	echo "error: restoring the plain dump failed" >&2; cat "$WORK/restore_plain.log" >&2; exit 1; }
snapshot "$PLAIN" > "$WORK/plain.txt"

# custom format
"$BIN/pg_dump" -Fc -d "$SRC" -f "$WORK/dump.custom"
"$BIN/createdb" "$CUSTOM"
"$BIN/pg_restore" --exit-on-error -d "$CUSTOM" "$WORK/dump.custom" > "$WORK/restore_custom.log" 2>&1 || {
	echo "error: restoring the custom dump failed" >&2; cat "$WORK/restore_custom.log" >&2; exit 1; }
snapshot "$CUSTOM" > "$WORK/custom.txt"

status=0
for f in plain custom; do
	if ! diff -u "$WORK/src.txt" "$WORK/$f.txt"; then
		echo "error: the $f-format dump does not restore the same policy" >&2
		status=1
	fi
done
# the restored consent ledger is still append-only
if psql -X -q -d "$CUSTOM" -c 'DELETE FROM profile_guard.consent' >/dev/null 2>&1; then
	echo "error: the restored consent ledger accepted a DELETE" >&2
	status=1
fi
[[ $status -eq 0 ]] && echo "dump_restore: $(wc -l < "$WORK/src.txt") catalog lines identical after plain and custom restore"
exit $status
