--
-- 16_definer_functions: every SECURITY DEFINER function of the extension
-- pins its search_path with the caller's temporary schema last, so no
-- temporary table, view or sequence of the caller's can stand in for one of
-- the catalog's.
--
CREATE EXTENSION profile_guard;
SET client_min_messages = warning;

-- the settings of every function that runs with the extension's rights
SELECT count(*) > 20 AS many_definer_functions
FROM pg_proc p
WHERE p.pronamespace = 'profile_guard'::regnamespace AND p.prosecdef;
SELECT p.oid::regprocedure AS function, p.proconfig
FROM pg_proc p
WHERE p.pronamespace = 'profile_guard'::regnamespace AND p.prosecdef
  AND (p.proconfig IS NULL
	   OR p.proconfig[1] IS DISTINCT FROM 'search_path=pg_catalog, profile_guard, pg_temp'
	   OR EXISTS (SELECT 1 FROM unnest(p.proconfig[2:]) c WHERE c LIKE 'search\_path=%'))
ORDER BY 1;
-- functions without SECURITY DEFINER that set a path set the same one
SELECT p.oid::regprocedure AS function, p.proconfig
FROM pg_proc p
WHERE p.pronamespace = 'profile_guard'::regnamespace AND NOT p.prosecdef
  AND EXISTS (SELECT 1 FROM unnest(p.proconfig) c
			  WHERE c LIKE 'search\_path=%' AND c <> 'search_path=pg_catalog, profile_guard, pg_temp')
ORDER BY 1;

-- the shadowing attack: a consent clerk's temporary tables named like the
-- catalog's receive nothing, and the catalog receives what it should
CREATE ROLE regress_shadow_clerk IN ROLE profile_guard_consent;
SELECT profile_guard.define_tag('interest.music', 'preference');
SELECT profile_guard.define_purpose('rec', 'recommendations', ARRAY['interest.*']);
SET ROLE regress_shadow_clerk;
CREATE TEMP TABLE subject_event (event_id bigserial, subject text, event text, tag text, recorded_at timestamptz DEFAULT now(), recorded_by name DEFAULT current_user);
CREATE TEMP TABLE subject (LIKE profile_guard.subject INCLUDING DEFAULTS);
CREATE TEMP TABLE consent (LIKE profile_guard.consent INCLUDING DEFAULTS);
CREATE TEMP TABLE tag_block (LIKE profile_guard.tag_block INCLUDING DEFAULTS);
SELECT profile_guard.register_subject('42', '1970-01-01');
SELECT profile_guard.register_subject('42', '1971-02-02');
SELECT profile_guard.grant_consent('42', 'rec', ARRAY['interest.*']) > 0 AS granted;
SELECT profile_guard.block_tag('42', 'interest.music');
SELECT profile_guard.opt_out('42');
SELECT (SELECT count(*) FROM pg_temp.subject_event) AS temp_events,
	   (SELECT count(*) FROM pg_temp.subject) AS temp_subjects,
	   (SELECT count(*) FROM pg_temp.consent) AS temp_consents,
	   (SELECT count(*) FROM pg_temp.tag_block) AS temp_blocks;
RESET ROLE;
SELECT subject, birth_date, opted_out FROM profile_guard.subject;
SELECT subject, event FROM profile_guard.subject_event ORDER BY event_id;
SELECT subject, purpose, action, tags FROM profile_guard.consent;
SELECT subject, tag FROM profile_guard.tag_block;
DROP TABLE pg_temp.subject_event, pg_temp.subject, pg_temp.consent, pg_temp.tag_block;

DROP EXTENSION profile_guard CASCADE;
DROP ROLE regress_shadow_clerk;
