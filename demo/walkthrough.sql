-- demo/walkthrough.sql: taxonomy -> purposes -> consent -> gated reads, on
-- synthetic data.  Run it with psql -q: set-up steps are DO blocks and print
-- nothing, so what appears is what each step shows.
\set ON_ERROR_STOP 1
\set SHOW_CONTEXT never
\pset footer off
CREATE EXTENSION profile_guard;

\echo '== 1. The taxonomy: five tags; a tag''s sensitivity follows its category'
DO $$
BEGIN
	PERFORM profile_guard.define_tag('interest.sports', 'preference', description => 'favourite sport');
	PERFORM profile_guard.define_tag('interest.music', 'preference', description => 'favourite genre');
	PERFORM profile_guard.define_tag('behavior.visits', 'behavior', description => 'visits per month');
	PERFORM profile_guard.define_tag('health.condition', 'medical_health', description => 'declared condition');
	PERFORM profile_guard.define_tag('score.churn_risk', 'derived',
									 derived_from => ARRAY['behavior.visits', 'interest.sports']);
END $$;
SELECT tag, category, sensitivity, layer, derived_from FROM profile_guard.tag ORDER BY tag;

\echo '== 2. A tag that describes a prohibited topic is refused'
\set ON_ERROR_STOP 0
SELECT profile_guard.define_tag('interest.gambling', 'preference');
\set ON_ERROR_STOP 1
\echo

\echo '== 3. Two purposes, each with the tags it may use; the application role may declare both'
DO $$
BEGIN
	PERFORM profile_guard.define_purpose('recommendation', 'recommend content',
		ARRAY['interest.*', 'behavior.visits', 'score.churn_risk', 'health.condition'],
		retention => interval '1 year');
	PERFORM profile_guard.define_purpose('marketing', 'personalised ads', ARRAY['interest.*'],
		marketing => true, retention => interval '6 months');
END $$;
CREATE ROLE demo_app LOGIN;
DO $$
BEGIN
	PERFORM profile_guard.allow_purpose('demo_app', 'recommendation');
	PERFORM profile_guard.allow_purpose('demo_app', 'marketing');
END $$;
SELECT purpose, version, tags, retention, marketing, personalised FROM profile_guard.purpose ORDER BY purpose;

\echo '== 4. An ordinary table, one column per tag, put under guard'
CREATE TABLE profiles (user_id bigint PRIMARY KEY, nickname text,
	sports text, music text, visits int, health text, churn numeric);
GRANT SELECT, INSERT, UPDATE ON profiles TO demo_app;
DO $$
BEGIN
	PERFORM profile_guard.protect('profiles', 'user_id');
	PERFORM profile_guard.classify('profiles', c, t)
	FROM (VALUES ('sports', 'interest.sports'), ('music', 'interest.music'),
				 ('visits', 'behavior.visits'), ('health', 'health.condition'),
				 ('churn', 'score.churn_risk')) v(c, t);
END $$;
SELECT column_name, tag FROM profile_guard.classified_column ORDER BY column_name;

\echo '== 5. 1,000 people: 75% consent to recommendation, 10% also to their health tag,'
\echo '      half to marketing; every 20th is 15 years old; every 50th opts out; person 1 blocks music'
DO $$
BEGIN
	PERFORM profile_guard.register_subject(i::text,
		CASE WHEN i % 20 = 0 THEN current_date - 15 * 365 ELSE current_date - 30 * 365 END)
	FROM generate_series(1, 1000) i;
	PERFORM profile_guard.grant_consent(i::text, 'recommendation',
		ARRAY['interest.*', 'behavior.visits', 'score.churn_risk'])
	FROM generate_series(1, 1000) i WHERE i % 4 <> 0;
	PERFORM profile_guard.grant_consent(i::text, 'recommendation', ARRAY['health.condition'], separate => true)
	FROM generate_series(1, 1000) i WHERE i % 10 = 1;
	PERFORM profile_guard.grant_consent(i::text, 'marketing', ARRAY['interest.*'])
	FROM generate_series(1, 1000) i WHERE i % 2 = 0;
	PERFORM profile_guard.opt_out(i::text) FROM generate_series(1, 1000) i WHERE i % 50 = 0;
END $$;
INSERT INTO profiles
SELECT i, 'user' || i, (ARRAY['football','tennis','golf'])[1 + i % 3], (ARRAY['jazz','rock','pop'])[1 + i % 3],
	i % 40, CASE WHEN i % 10 = 1 THEN (ARRAY['asthma','diabetes'])[1 + i % 2] END, (i % 100) / 100.0
FROM generate_series(1, 1000) i WHERE i % 4 <> 0;
DO $$ BEGIN PERFORM profile_guard.block_tag('1', 'interest.music'); END $$;
SELECT count(*) AS subjects,
	count(*) FILTER (WHERE opted_out) AS opted_out,
	(SELECT count(*) FROM profiles) AS profile_rows
FROM profile_guard.subject;

\echo '== 6. Why person 1 and person 4 see what they see: consent_status'
SELECT subject, purpose, tag, effective, reason FROM profile_guard.consent_status
WHERE subject IN ('1', '4') ORDER BY subject, purpose, tag;

\echo '== 7. The application reads without declaring a purpose: refused'
SET ROLE demo_app;
\set ON_ERROR_STOP 0
SELECT sports FROM profiles LIMIT 1;
\set ON_ERROR_STOP 1
\echo

\echo '== 8. Under recommendation: consented rows and cells only; health decrypted where consented separately'
SET profile_guard.purpose = 'recommendation';
SELECT user_id, sports, music, visits, health, churn FROM profiles ORDER BY user_id LIMIT 6;
SELECT count(*) AS rows_visible, count(health) AS health_visible FROM profiles;

\echo '== 9. Under marketing: minors and people who opted out are gone, and visits is outside the purpose'
SET profile_guard.purpose = 'marketing';
SELECT count(*) AS rows_visible, count(sports) AS sports_visible, count(visits) AS visits_visible FROM profiles;

\echo '== 10. What is stored: a superuser sees ciphertext for the sensitive tag'
RESET ROLE;
SELECT user_id, health LIKE 'pgt2%' AS stored_as_ciphertext, length(health) AS stored_length,
	position('asthma' IN health) + position('diabetes' IN health) AS plaintext_at
FROM profiles WHERE health IS NOT NULL ORDER BY user_id LIMIT 2;

\echo '== 11. Person 2 withdraws consent: the next statement no longer sees them'
SELECT profile_guard.withdraw_consent('2', 'recommendation') > 0 AS withdrawn;
SET ROLE demo_app;
SET profile_guard.purpose = 'recommendation';
SELECT user_id, sports FROM profiles WHERE user_id IN (1, 2, 3) ORDER BY user_id;
RESET ROLE;

\echo '== 12. Person 3 asks for erasure; the sweep makes that and the withdrawal physical'
SELECT profile_guard.request_erasure('3') IS NOT NULL AS requested;
SELECT relation, tag, reason, action, rows FROM profile_guard.sweep() ORDER BY relation, tag, reason;
SELECT user_id, sports IS NOT NULL AS has_sports, visits IS NOT NULL AS has_visits
FROM profiles WHERE user_id IN (1, 2, 3) ORDER BY user_id;

\echo '== 13. The erasure ledger names no one: the subject is a keyed hash'
SELECT relation, tag, reason, action, rows, left(subject_hash, 12) || '…' AS subject_hash
FROM profile_guard.erasure_log ORDER BY log_id LIMIT 6;

\echo '== 14. What person 1 is entitled to see about themselves: subject_report (tags only)'
SELECT t->>'tag' AS tag, t->>'sensitivity' AS sensitivity, t->>'stored' AS stored, t->>'value' AS value
FROM profile_guard.subject_report('1') r, jsonb_array_elements(r->'tags') t ORDER BY 1;

\echo '== 15. The usage counters: per role, purpose and tag'
SELECT role, purpose, tag, statements, cells_served, cells_masked, rows_hidden
FROM profile_guard.usage WHERE role = 'demo_app' AND purpose IS NOT NULL ORDER BY purpose, tag;

\echo '== 16. The self-assessment: the clauses this database does not meet on its own'
SELECT clause, status, left(detail, 90) AS detail FROM profile_guard.assess()
WHERE status <> 'met' ORDER BY clause;
