--
-- 55_privacy_notice: privacy_notice(purpose) states, from the catalog the
-- gates enforce, what the notice must say about each purpose (§5 d,
-- §7.1 a, §9 a): its tags expanded from its patterns, their categories and
-- sensitivity, retention, recipient, separate consent, and how a person
-- withdraws, opts out, blocks or erases tags and requests erasure.
--
CREATE EXTENSION profile_guard;
SET search_path = public, profile_guard;
\set SHOW_CONTEXT never
CREATE FUNCTION pg_temp.err(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE st text; m text; d text; h text;
BEGIN
	EXECUTE q;
	RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
	GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, m = MESSAGE_TEXT,
		d = PG_EXCEPTION_DETAIL, h = PG_EXCEPTION_HINT;
	RETURN st || ': ' || m || E'\n  DETAIL: ' || coalesce(nullif(d, ''), '-')
		|| E'\n  HINT: ' || coalesce(nullif(h, ''), '-');
END $$;

-- nothing defined yet: no purposes
SELECT privacy_notice();

SELECT define_tag('interest.sports', 'preference', description => 'sports the person follows');
SELECT define_tag('interest.music', 'preference');
SELECT define_tag('health.condition', 'medical_health');
SELECT define_tag('score.churn', 'derived', derived_from => ARRAY['interest.sports'], layer => 'model');
SELECT define_purpose('ads', 'Personalised ads', ARRAY['interest.*'], interval '90 days', marketing => true);
SELECT define_recipient('Clinic Partner', 'CN', 'the clinic that runs the care programme');
SELECT define_purpose('care', 'Care recommendations', ARRAY['interest.sports', 'health.condition'],
					  interval '1 year', recipient => 'Clinic Partner');
SELECT define_purpose('billing', 'Billing', ARRAY['score.churn'], legal_basis => 'contract');
SELECT define_purpose('old', 'An old purpose', ARRAY['interest.music']);
SELECT retire_purpose('old');

-- one purpose: patterns expanded to the defined tags
SELECT jsonb_pretty(privacy_notice('ads'));
-- a sensitive tag: separate consent needed; a recipient
SELECT n->'tags' AS tags, n->'separate_consent_needed' AS separate, n->'separate_consent_tags' AS separate_tags,
	   n->>'recipient' AS recipient, n->>'retention' AS retention, n->'how_to'->>'withdraw' AS withdraw,
	   n->'how_to'->>'opt_out' AS opt_out
FROM jsonb_array_elements(privacy_notice('care')->'purposes') n;
-- the recipient's country, and whether it makes the purpose cross-border
SELECT n->>'recipient' AS recipient, n->>'recipient_country' AS country, n->'cross_border' AS cross_border
FROM jsonb_array_elements(privacy_notice('care')->'purposes') n;
-- another lawful basis: no consent to withdraw
SELECT n->>'legal_basis' AS basis, n->'consent_needed' AS consent_needed, n->'how_to'->'withdraw' AS withdraw
FROM jsonb_array_elements(privacy_notice('billing')->'purposes') n;
-- every active purpose: the retired one is left out
SELECT n->>'purpose' AS purpose, n->>'status' AS status, n->>'version' AS version
FROM jsonb_array_elements(privacy_notice()->'purposes') n;
-- a retired purpose named: it says so
SELECT n->>'status' AS status, n->>'note' AS note
FROM jsonb_array_elements(privacy_notice('old')->'purposes') n;
-- a redefined purpose: the notice follows its new version and tags
SELECT define_purpose('ads', 'Personalised ads', ARRAY['interest.sports'], interval '90 days', marketing => true);
SELECT n->>'version' AS version, n->'tags' AS tags
FROM jsonb_array_elements(privacy_notice('ads')->'purposes') n;

-- unknown purposes
SELECT pg_temp.err($$SELECT profile_guard.privacy_notice('nope')$$);
SELECT pg_temp.err($$SELECT profile_guard.privacy_notice('')$$);

-- granted as subject_report() is: the admin and consent desks, not PUBLIC
CREATE ROLE regress_pn_app;
CREATE ROLE regress_pn_desk IN ROLE profile_guard_consent;
SET ROLE regress_pn_app;
SELECT pg_temp.err($$SELECT profile_guard.privacy_notice()$$) ~ '^42501' AS app_refused;
SET ROLE regress_pn_desk;
SELECT jsonb_array_length(profile_guard.privacy_notice()->'purposes') AS desk_sees_purposes;
RESET ROLE;

DROP EXTENSION profile_guard CASCADE;
DROP ROLE regress_pn_app, regress_pn_desk;
