-- demo/walkthrough.sql: taxonomy -> purposes -> consent -> gated reads, on synthetic data.
\set ON_ERROR_STOP 1
\pset footer off
\echo '== 1. taxonomy: tags, their category and sensitivity (derived from the category)'
CREATE EXTENSION profile_guard;
SELECT profile_guard.define_tag('interest.sports', 'preference', description => 'favourite sport');
SELECT profile_guard.define_tag('interest.music', 'preference', description => 'favourite genre');
SELECT profile_guard.define_tag('behavior.visits', 'behavior', description => 'visits per month');
SELECT profile_guard.define_tag('health.condition', 'medical_health', description => 'declared condition');
SELECT profile_guard.define_tag('score.churn_risk', 'derived', derived_from => ARRAY['behavior.visits', 'interest.sports']);
SELECT tag, category, sensitivity, layer, derived_from FROM profile_guard.tag ORDER BY tag;

\echo '== 2. a prohibited description is refused'
\set ON_ERROR_STOP 0
SELECT profile_guard.define_tag('interest.gambling', 'preference');
\set ON_ERROR_STOP 1

\echo '== 3. purposes, versioned, and the roles allowed to declare them'
SELECT profile_guard.define_purpose('recommendation', 'recommend content',
	ARRAY['interest.*', 'behavior.visits', 'score.churn_risk', 'health.condition'], retention => interval '1 year');
SELECT profile_guard.define_purpose('marketing', 'personalised ads', ARRAY['interest.*'], marketing => true);
CREATE ROLE demo_app LOGIN;
SELECT profile_guard.allow_purpose('demo_app', 'recommendation');
SELECT profile_guard.allow_purpose('demo_app', 'marketing');

\echo '== 4. a guarded table with one column per tag'
CREATE TABLE profiles (user_id bigint PRIMARY KEY, nickname text,
	sports text, music text, visits int, health text, churn numeric);
GRANT SELECT, INSERT, UPDATE ON profiles TO demo_app;
SELECT profile_guard.protect('profiles', 'user_id');
SELECT profile_guard.classify('profiles', c, t) FROM (VALUES ('sports', 'interest.sports'),
	('music', 'interest.music'), ('visits', 'behavior.visits'),
	('health', 'health.condition'), ('churn', 'score.churn_risk')) v(c, t);

\echo '== 5. 1000 synthetic subjects: 75% consent to recommendation, 5% minors, 2% opted out of marketing'
SELECT count(profile_guard.register_subject(i::text,
	CASE WHEN i % 20 = 0 THEN current_date - 15 * 365 ELSE current_date - 30 * 365 END))
FROM generate_series(1, 1000) i;
SELECT count(profile_guard.grant_consent(i::text, 'recommendation',
	ARRAY['interest.*', 'behavior.visits', 'score.churn_risk'])) FROM generate_series(1, 1000) i WHERE i % 4 <> 0;
SELECT count(profile_guard.grant_consent(i::text, 'recommendation', ARRAY['health.condition'], separate => true))
FROM generate_series(1, 1000) i WHERE i % 10 = 1;
SELECT count(profile_guard.grant_consent(i::text, 'marketing', ARRAY['interest.*'])) FROM generate_series(1, 1000) i WHERE i % 2 = 0;
SELECT count(profile_guard.opt_out(i::text)) FROM generate_series(1, 1000) i WHERE i % 50 = 0;
INSERT INTO profiles
SELECT i, 'user' || i, (ARRAY['football','tennis','golf'])[1 + i % 3], (ARRAY['jazz','rock','pop'])[1 + i % 3],
	i % 40, CASE WHEN i % 10 = 1 THEN (ARRAY['asthma','diabetes'])[1 + i % 2] END, (i % 100) / 100.0
FROM generate_series(1, 1000) i WHERE i % 4 <> 0;

SELECT profile_guard.block_tag('1', 'interest.music');

\echo '== 6. what consent_status says about subject 1 and 4'
SELECT subject, purpose, tag, effective, reason FROM profile_guard.consent_status
WHERE subject IN ('1', '4') ORDER BY subject, purpose, tag;

\echo '== 7. the application: no purpose, no tags'
SET ROLE demo_app;
\set ON_ERROR_STOP 0
SELECT sports FROM profiles LIMIT 1;
\set ON_ERROR_STOP 1
\echo '== 8. under recommendation: consented rows and cells only; health decrypted for separate consent'
SET profile_guard.purpose = 'recommendation';
SELECT user_id, sports, music, visits, health, churn FROM profiles ORDER BY user_id LIMIT 6;
SELECT count(*) AS rows_visible, count(health) AS health_visible FROM profiles;
\echo '== 9. under marketing: opted-out subjects and minors are gone'
SET profile_guard.purpose = 'marketing';
SELECT count(*) AS rows_visible, count(sports) AS sports_visible, count(visits) AS visits_visible FROM profiles;
\echo '== 10. a superuser sees what is stored: sensitive values are ciphertext'
RESET ROLE;
SELECT user_id, health LIKE 'pgt1:%' AS stored_as_ciphertext, length(health) AS stored_length,
	position('asthma' IN health) + position('diabetes' IN health) AS plaintext_at
FROM profiles WHERE health IS NOT NULL ORDER BY user_id LIMIT 2;
\echo '== 11. withdrawal takes effect at once'
SELECT profile_guard.withdraw_consent('2', 'recommendation');
SET ROLE demo_app;
SET profile_guard.purpose = 'recommendation';
SELECT user_id, sports FROM profiles WHERE user_id IN (1, 2, 3) ORDER BY user_id;
RESET ROLE;

\echo '== 12. the sweep makes the withdrawal (and an erasure request) physical; the ledger names no one'
SELECT profile_guard.request_erasure('3');
SELECT * FROM profile_guard.sweep() ORDER BY relation, tag, reason;
SELECT user_id, sports IS NOT NULL AS has_sports FROM profiles WHERE user_id IN (1, 2, 3) ORDER BY user_id;
SELECT relation, tag, reason, action, rows, left(subject_hash, 12) || '…' AS subject_hash
FROM profile_guard.erasure_log ORDER BY log_id LIMIT 6;

\echo '== 13. what the person is entitled to see: subject_report (excerpt)'
SELECT jsonb_pretty(jsonb_build_object(
	'subject', r->'subject', 'tags', r->'tags', 'opted_out', r->'opted_out'))
FROM profile_guard.subject_report('1') r;

\echo '== 14. usage counters (per role, purpose, tag)'
SELECT role, purpose, tag, statements, cells_served, cells_masked, rows_hidden
FROM profile_guard.usage ORDER BY role, purpose, tag;

\echo '== 15. the self-assessment against the guideline (what is not met)'
SELECT clause, status, left(detail, 90) AS detail FROM profile_guard.assess()
WHERE status <> 'met' ORDER BY clause;
