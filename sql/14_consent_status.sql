--
-- 14_consent_status: the consent_status and consents_needing_renewal views,
-- one subject per reason of tag_state()
--
CREATE EXTENSION profile_guard;
-- A fresh installation's catalog tables carry statistics: never analysed,
-- each would be planned as if it held hundreds of rows, and a query of
-- consent_status would cost more than PostgreSQL's default jit_above_cost
-- (100000), to be JIT-compiled every time.
SELECT count(*) AS never_analysed FROM pg_class
 WHERE relnamespace = 'profile_guard'::regnamespace AND relkind = 'r' AND reltuples < 0;
CREATE FUNCTION pg_temp.plan_cost(q text) RETURNS float8 LANGUAGE plpgsql AS $$
DECLARE p json;
BEGIN
	EXECUTE 'EXPLAIN (FORMAT JSON) ' || q INTO p;
	RETURN (p->0->'Plan'->>'Total Cost')::float8;
END $$;
SELECT pg_temp.plan_cost('SELECT * FROM profile_guard.consent_status') < 100000 AS below_jit_above_cost;
-- the rule checks compare many subjects in large queries: JIT compiling
-- them costs seconds and tests nothing here
SET jit = off;
SET search_path = profile_guard, public;
\set SHOW_CONTEXT never
CREATE FUNCTION pg_temp.err(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE st text; m text;
BEGIN
	EXECUTE q;
	RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
	GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, m = MESSAGE_TEXT;
	RETURN st || ': ' || m;
END $$;

SELECT define_tag('interest.sports', 'preference');
SELECT define_tag('interest.music', 'preference');
SELECT define_tag('health.condition', 'medical_health');
SELECT define_tag('finance.income', 'financial_account');
SELECT define_tag('score.churn', 'derived', derived_from => ARRAY['interest.sports', 'interest.music']);

SELECT define_purpose('rec', 'Recommendations',
					  tags => ARRAY['interest.*', 'health.condition', 'score.churn']);
SELECT define_purpose('ads', 'Personalised marketing', tags => ARRAY['interest.*'], marketing => true);
SELECT define_purpose('credit', 'Automated credit decisions', tags => ARRAY['interest.sports'],
					  automated_decision => true);
SELECT define_purpose('survey', 'A survey, retired later', tags => ARRAY['interest.sports']);
SELECT define_purpose('feed', 'News feed, redefined later', tags => ARRAY['interest.sports']);

-- subjects, named after what happens to them
SELECT register_subject(s) FROM unnest(ARRAY['ok', 'withdrawn', 'notsep', 'blocked', 'outside',
	'expired', 'erased', 'optout', 'partial']) AS s;
SELECT register_subject('child', (current_date - interval '5 years')::date);
SELECT register_subject('child_ok', (current_date - interval '5 years')::date);
SELECT register_subject('teen', (current_date - interval '16 years')::date);
SELECT register_subject('adult', (current_date - interval '30 years')::date);

-- rec: everything effective
SELECT grant_consent('ok', 'rec', ARRAY['interest.*', 'score.churn']) > 0;
SELECT grant_consent('ok', 'rec', ARRAY['health.condition'], separate => true) > 0;
-- rec: withdrawn tag, and a model tag whose source is no longer visible
SELECT grant_consent('withdrawn', 'rec', ARRAY['interest.*', 'score.churn']) > 0;
SELECT withdraw_consent('withdrawn', 'rec', ARRAY['interest.music']) > 0;
-- rec: a sensitive tag without separate consent
SELECT grant_consent('notsep', 'rec', ARRAY['health.condition']) > 0;
-- rec: a blocked tag
SELECT grant_consent('blocked', 'rec', ARRAY['interest.*']) > 0;
SELECT block_tag('blocked', 'interest.sports');
-- rec: a consented tag the purpose does not list
SELECT grant_consent('outside', 'rec', ARRAY['finance.income', 'interest.sports'], separate => true) > 0;
-- rec: children under 14: every tag is sensitive and needs a guardian
SELECT grant_consent('child', 'rec', ARRAY['interest.sports'], separate => true) > 0;
SELECT grant_consent('child', 'rec', ARRAY['interest.music'], guardian => true) > 0;
SELECT grant_consent('child_ok', 'rec', ARRAY['interest.sports'], separate => true, guardian => true) > 0;
-- rec: erasure requested
SELECT grant_consent('erased', 'rec', ARRAY['interest.sports']) > 0;
SELECT request_erasure('erased') > 0;
-- rec: only part of the purpose consented
SELECT grant_consent('partial', 'rec', ARRAY['interest.sports']) > 0;
-- rec: an expired consent (expires 0.2 s after the grant; wait 0.5 s)
SELECT grant_consent('expired', 'rec', ARRAY['interest.sports'],
					 expires_at => now() + interval '200 milliseconds') > 0;
SELECT pg_sleep(0.5);

-- ads (marketing): opted out, minor, adult
SELECT grant_consent(s, 'ads', ARRAY['interest.sports']) > 0 FROM unnest(ARRAY['optout', 'teen', 'adult']) AS s;
SELECT opt_out('optout');
-- credit (automated decisions): no assessment yet
SELECT grant_consent('adult', 'credit', ARRAY['interest.sports']) > 0;
-- survey: retired
SELECT grant_consent('adult', 'survey', ARRAY['interest.sports']) > 0;
SELECT retire_purpose('survey');
-- feed: redefined after the consent
SELECT grant_consent('adult', 'feed', ARRAY['interest.sports']) > 0;
SELECT grant_consent('ok', 'feed', ARRAY['interest.sports'], expires_at => now() + interval '10 days') > 0;
SELECT grant_consent('partial', 'feed', ARRAY['interest.sports'], expires_at => now() + interval '5 days') > 0;
SELECT define_purpose('feed', 'News feed, now with music', tags => ARRAY['interest.*']);
SELECT grant_consent('ok', 'feed', ARRAY['interest.*'], expires_at => now() + interval '10 days') > 0;
SELECT grant_consent('optout', 'feed', ARRAY['interest.*'], expires_at => now() + interval '90 days') > 0;

SELECT purpose, subject, tag, effective, reason FROM consent_status ORDER BY purpose, subject, tag;
-- every reason of tag_state() appears (but "subject not registered": the
-- ledger's foreign key makes it impossible)
SELECT reason, count(*) FROM consent_status GROUP BY reason ORDER BY reason;

-- consents needing renewal: outdated version, expiring, expired; not for
-- retired purposes
SELECT subject, purpose, granted_version, current_version, expires_at IS NOT NULL AS expires, why
FROM consents_needing_renewal ORDER BY subject, purpose;

-- the assessment makes credit usable; renewal makes feed usable
SELECT record_assessment('credit', 'DPO', 'Acceptable');
SELECT grant_consent('adult', 'feed', ARRAY['interest.*']) > 0;
SELECT purpose, subject, tag, effective, reason FROM consent_status
WHERE purpose IN ('credit', 'feed') ORDER BY purpose, subject, tag;

-- renewed consents, full withdrawals and erasure requests need no renewal
SELECT request_erasure('partial') > 0;
SELECT grant_consent('withdrawn', 'feed', ARRAY['interest.*'], expires_at => now() + interval '1 day') > 0;
SELECT withdraw_consent('withdrawn', 'feed') > 0;
SELECT subject, purpose, granted_version, current_version, expires_at IS NOT NULL AS expires, why
FROM consents_needing_renewal ORDER BY subject, purpose;

-- who may read the views
CREATE ROLE regress_status_clerk IN ROLE profile_guard_consent;
CREATE ROLE regress_status_admin IN ROLE profile_guard_admin;
CREATE ROLE regress_status_app;
SET ROLE regress_status_clerk;
SELECT count(*) FROM profile_guard.consent_status WHERE effective;
SELECT count(*) FROM profile_guard.consents_needing_renewal;
SET ROLE regress_status_admin;
SELECT count(*) FROM profile_guard.consent_status WHERE effective;
SET ROLE regress_status_app;
SELECT pg_temp.err($$SELECT count(*) FROM profile_guard.consent_status$$);
SELECT pg_temp.err($$SELECT count(*) FROM profile_guard.consents_needing_renewal$$);
SELECT pg_temp.err($$SELECT count(*) FROM profile_guard.tag_state('rec')$$);
RESET ROLE;

RESET ROLE;
\i test/lib/rules_check.sql
SELECT * FROM pg_temp.rules_disagree();
SELECT * FROM pg_temp.bulk_differences();

DROP EXTENSION profile_guard CASCADE;
DROP ROLE regress_status_clerk, regress_status_admin, regress_status_app;
