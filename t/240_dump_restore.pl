# t/240_dump_restore.pl — pg_dump carries the policy: taxonomy,
# purposes (with history, assessments, roles), subjects, the consent ledger,
# blocks, guarded tables, classifications, collection stamps and lexicon
# exemptions survive a plain and a custom
# format dump and restore into fresh databases, and consent_status answers
# the same there.  On a node of its own (t/090_restore_cluster.pl restores
# into another cluster).
use strict;
use warnings;
use IPC::Run;
use PostgreSQL::Test::Utils;
use Test::More;
use ProfileGuardTest;

my $node = pfg_node('dump_restore');
my $dir = pfg_dir($node);
my ($src, $plain, $custom) = qw(regress_pg_dump_src regress_pg_dump_plain regress_pg_dump_custom);

$node->safe_psql('postgres', "SET client_min_messages = warning;\nCREATE ROLE regress_dump_app");
$node->safe_psql('postgres', "CREATE DATABASE $src");
$node->safe_psql($src, <<'SQL');
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
-- choice, its stamps (merged from the log as the sweep does, and set to a
-- fixed time) and the pairs logged since survive, keyed by the table's name
INSERT INTO public.profile_long VALUES (1, 'interest.sports', 'tennis'), (1, 'interest.sports', 'golf');
SELECT _merge_collection_stamps();
UPDATE collection_stamp SET collected_at = '2020-01-02 12:00:00+00' WHERE subject = '1';
INSERT INTO public.profile_long VALUES (1, 'interest.sports', 'squash');
SQL

# what must survive
sub snapshot
{
	my ($db) = @_;
	return $node->safe_psql($db, <<'SQL');
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
SELECT 'stamp_log', relid, tag, collected_at, subjects FROM collection_stamp_log ORDER BY relid::text, tag, subjects;
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

my $src_snap = snapshot($src);
like($src_snap, qr/^classified\|profile\|health\|health\.condition$/m,
	'the source snapshot has the classification');
like($src_snap, qr/^exemption\|disease\|household$/m, 'the source snapshot has the lexicon exemption');
like($src_snap, qr/^stamp\|profile_long\|1\|interest\.sports\|2020-01-02/m,
	'the source snapshot has the collection stamps');
like($src_snap, qr/^stamp_log\|profile_long\|interest\.sports\|[^|]*\|\{1\}$/m,
	'the source snapshot has the logged collection stamps');

# plain format
$node->command_ok([ 'pg_dump', '-d', $node->connstr($src), '-f', "$dir/dump.sql" ], 'plain dump');
$node->safe_psql('postgres', "CREATE DATABASE $plain");
my ($rc, $out) = pfg_psql($node, $plain, undef, '-v', 'ON_ERROR_STOP=1', '-f', "$dir/dump.sql");
is($rc, 0, 'the plain dump restores') or diag($out);
is(snapshot($plain), $src_snap, 'the plain-format dump restores the same policy');

# custom format
$node->command_ok([ 'pg_dump', '-Fc', '-d', $node->connstr($src), '-f', "$dir/dump.custom" ], 'custom dump');
$node->safe_psql('postgres', "CREATE DATABASE $custom");
$out = '';
my $ok = IPC::Run::run([ 'pg_restore', '--exit-on-error', '-d', $node->connstr($custom), "$dir/dump.custom" ],
	'>&', \$out);
ok($ok, 'the custom dump restores') or diag($out);
is(snapshot($custom), $src_snap, 'the custom-format dump restores the same policy');

# the restored consent ledger is still append-only
($rc) = pfg_psql($node, $custom, undef, '-c', 'DELETE FROM profile_guard.consent');
isnt($rc, 0, 'the restored consent ledger refuses a DELETE');

note(scalar(split /\n/, $src_snap) . ' catalog lines compared');
$node->stop;
done_testing();
