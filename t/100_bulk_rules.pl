# t/100_bulk_rules.pl — the rules in C for every subject at once
# (pfg_rules_evaluate_all, through _bulk_answers(), what the consent cache
# loads in bulk) answer exactly as tag_state() and as the one-subject path,
# on a catalog built to be awkward: consents written directly (subjects with
# no subject row, NULL, empty and two-dimensional tag lists, NULL elements,
# patterns that match nothing, '*', '.*', 'prefix.*'), consent ids out of
# heap order, runs of one subject's events, more than 64 tags, derived tags
# with a source that is no tag, blocks, children, minors, opt-outs,
# erasure requests, retired, versioned, marketing and unassessed purposes.
# Also: an empty catalog and an unknown purpose answer nothing.
#
# BULK_SEEDS overrides the seeds (default "0.1 0.6"), BULK_SUBJECTS the size
# (default 2000).
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use ProfileGuardTest;

my $db = 'regress_bulk_rules';
my $subjects = $ENV{BULK_SUBJECTS} // 2000;
my $node = pfg_node('bulk_rules');

# an empty catalog, an unknown purpose
pfg_create_extension($node, $db);
is($node->safe_psql($db, "SELECT count(*) FROM profile_guard._bulk_answers(NULL);
SELECT count(*) FROM profile_guard._bulk_answers('nosuch')"), "0\n0", 'empty catalog');

for my $seed (split ' ', $ENV{BULK_SEEDS} // '0.1 0.6')
{
	$node->safe_psql('postgres', "DROP DATABASE $db");
	$node->safe_psql('postgres', "CREATE DATABASE $db");
	my ($rc, $out) = pfg_psql($node, $db, <<'SQL', '-v', 'ON_ERROR_STOP=1',
SET client_min_messages = warning;
CREATE EXTENSION profile_guard;
SELECT setseed(:seed);
SELECT profile_guard.define_tag('interest.sports', 'preference');
SELECT profile_guard.define_tag('interest.music', 'preference');
SELECT profile_guard.define_tag('behavior.visits', 'behavior');
SELECT profile_guard.define_tag('health.condition', 'medical_health');
SELECT profile_guard.define_tag('score.churn', 'behavior', NULL,
	ARRAY['interest.sports', 'behavior.visits'], layer => 'model');
SELECT profile_guard.define_tag('score.health', 'behavior', NULL, ARRAY['health.condition'], layer => 'model');
SELECT profile_guard.define_tag('bulk.t' || i, CASE WHEN i % 7 = 0 THEN 'medical_health' ELSE 'preference' END)
FROM generate_series(1, 70) i;
INSERT INTO profile_guard.tag (tag, category, sensitivity, layer, derived_from, all_sources)
VALUES ('score.lost', 'behavior', 'general', 'model', '{nosuch.tag}', '{nosuch.tag}'),
	   ('score.nullsrc', 'behavior', 'general', 'model', '{}', ARRAY[NULL, 'interest.music']::text[]);
SELECT profile_guard.define_purpose(p, p, ARRAY['interest.*'], marketing => p = 'ads',
	automated_decision => p IN ('auto', 'auto2'))
FROM unnest(ARRAY['rec', 'all', 'none', 'ads', 'auto', 'auto2', 'old', 'v2']) p;
SELECT profile_guard.record_assessment('auto2', 'assessor', 'ok');
UPDATE profile_guard.purpose SET tags = CASE purpose
	WHEN 'rec' THEN ARRAY['interest.*', 'behavior.visits', 'health.condition', 'score.*', 'bulk.*']
	WHEN 'all' THEN NULL WHEN 'none' THEN '{}' WHEN 'ads' THEN '{*}'
	WHEN 'auto2' THEN ARRAY['interest.*', 'bulk.*'] WHEN 'old' THEN ARRAY['bulk.t3', NULL, 'interest.music']
	WHEN 'v2' THEN ARRAY['interest.*', 'health.*', 'score.*'] ELSE tags END,
	version = CASE WHEN purpose = 'v2' THEN 2 ELSE version END;
INSERT INTO profile_guard.subject (subject, birth_date, opted_out, erasure_requested_at)
SELECT 's' || i,
	   CASE (random() * 10)::int WHEN 0 THEN NULL WHEN 1 THEN current_date - 10 * 365
			WHEN 2 THEN current_date - 16 * 365
			WHEN 3 THEN current_date - (14 * 365 + 3) + (random() * 8)::int
			WHEN 4 THEN current_date - (18 * 365 + 4) + (random() * 10)::int
			WHEN 5 THEN '2008-02-29'::date WHEN 6 THEN current_date - 14 * 365 - 4
			ELSE current_date - (20 + (random() * 50)::int) * 365 END,
	   random() < 0.1, CASE WHEN random() < 0.05 THEN now() END
FROM generate_series(1, :n) i WHERE random() < 0.9;
-- what the API would refuse: consents of unregistered subjects, odd rows
ALTER TABLE profile_guard.consent DROP CONSTRAINT consent_check, DROP CONSTRAINT consent_check1;
SET session_replication_role = replica;
CREATE TEMP TABLE lists (n int, tags text[]);
INSERT INTO lists VALUES (1, NULL), (2, '{}'), (3, '{*}'), (4, '{interest.*}'), (5, '{bulk.*}'),
	(6, '{nosuch}'), (7, '{NULL}'), (8, '{interest.music,NULL}'), (9, '{.*}'), (10, '{*.*}'),
	(11, '{interest.sports,health.condition}'),
	(12, '{{interest.sports,behavior.visits},{score.churn,bulk.t2}}'),
	(13, '{bulk.t1,bulk.t65,bulk.t70,bulk.t7}'), (14, '{score.*,interest.*,behavior.visits}'),
	(15, '{health.*}'), (16, '{interest.}'), (17, '{interest}'),
	(18, '{score.churn,score.health,health.condition}'), (19, '{bulk.t1*}'), (20, '{*,interest.music}');
INSERT INTO profile_guard.consent (consent_id, subject, purpose, purpose_version, action, tags,
								   separate, guardian, expires_at)
SELECT 1000000 - k * 7 % 999983,	-- ids out of heap order
	   's' || (1 + (random() * (:n * 1.05))::int), p.purpose,
	   CASE WHEN random() < 0.8 THEN 1 ELSE 2 END,
	   CASE WHEN random() < 0.8 THEN 'grant' ELSE 'withdraw' END,
	   (SELECT l.tags FROM lists l WHERE l.n = r.n), random() < 0.5, random() < 0.3,
	   CASE (random() * 4)::int WHEN 0 THEN now() - interval '1 day'
			WHEN 1 THEN now() + (random() * 100) * interval '1 day' END
FROM generate_series(1, :n * 5 / 2) k,
	 LATERAL (SELECT (ARRAY['rec','all','none','ads','auto','auto2','old','v2'])[1 + (random() * 7)::int + k * 0] AS purpose) p,
	 LATERAL (SELECT 1 + (random() * 19)::int + k * 0 AS n) r;
-- runs of consecutive events of one subject, ids in both orders
INSERT INTO profile_guard.consent (consent_id, subject, purpose, purpose_version, action, tags,
								   separate, guardian, expires_at)
SELECT 2000000 + k * 3 + CASE WHEN k % 2 = 0 THEN j ELSE 2 - j END,
	   's' || (1 + (k * 37) % :n), (ARRAY['rec','all','ads','v2'])[1 + k % 4],
	   1, CASE WHEN (k + j) % 3 = 0 THEN 'withdraw' ELSE 'grant' END,
	   (ARRAY['{interest.*}', '{interest.music}', '{*}', NULL, '{bulk.*,health.condition}'])[1 + (k * 7 + j) % 5]::text[],
	   (k + j) % 2 = 0, j = 1, CASE WHEN j = 2 AND k % 3 = 0 THEN now() + interval '3 days' END
FROM generate_series(1, :n / 4) k, generate_series(0, 2) j
ORDER BY k, j;
UPDATE profile_guard.consent SET separate = false, guardian = false, expires_at = NULL
WHERE action = 'withdraw' AND random() < 0.7;
INSERT INTO profile_guard.tag_block (subject, tag)
SELECT DISTINCT 's' || (1 + (random() * :n)::int), t.tag
FROM generate_series(1, :n / 3) k,
	 LATERAL (SELECT tag FROM profile_guard.tag ORDER BY random() + k * 0 LIMIT 1) t
ON CONFLICT DO NOTHING;
RESET session_replication_role;
SELECT profile_guard.retire_purpose('old');
SQL
		'-v', "seed=$seed", '-v', "n=$subjects");
	is($rc, 0, "seed $seed: the catalog") or diag($out);
	# every purpose and NULL: the bulk answers are tag_state()'s, both ways,
	# and the one-subject path's
	my $rules_check = pfg_root() . '/test/lib/rules_check.sql';
	$out = $node->safe_psql($db, <<"SQL");
\\i $rules_check
SELECT string_agg(coalesce(purpose, '(collect)') || ':' || subjects || ':' || only_tag_state || ':' || only_bulk, ' ')
FROM pg_temp.bulk_differences();
SELECT count(*) FROM (SELECT p.purpose, b.*
	FROM (SELECT purpose FROM profile_guard.purpose UNION ALL SELECT NULL) p,
	LATERAL profile_guard._bulk_answers(p.purpose) b) x,
	LATERAL profile_guard._subject_answer(x.purpose, x.subject) s
WHERE s.tag_ids IS DISTINCT FROM x.tag_ids OR s.valid_until IS DISTINCT FROM x.valid_until;
SELECT count(*) FROM (SELECT DISTINCT tag_ids FROM profile_guard._bulk_answers(NULL)) d;
SQL
	my ($counts, $paths, $sets) = split /\n/, $out;
	note("seed $seed: $counts; one-subject differences $paths; distinct tag sets $sets");
	for my $c (split ' ', $counts)
	{
		my ($p, $n, $only_tag_state, $only_bulk) = split /:/, $c;
		ok($only_tag_state eq '0' && $only_bulk eq '0',
			"seed $seed, purpose $p: the same answers in tag_state and in bulk")
		  or diag("$only_tag_state answers only in tag_state, $only_bulk only in bulk");
		cmp_ok($n, '>', 0, "seed $seed, purpose $p: subjects answered");
	}
	is($paths, '0', "seed $seed: no answer differs between the bulk and the one-subject path");
	cmp_ok($sets, '>', 10, "seed $seed: more than 10 distinct answers (the data tests enough)");
}

$node->stop;
done_testing();
