--
-- 60_subject_report: everything held about one person (guideline §5 d, §11),
-- for the person's own access request: tags from wide and long tables with
-- sensitive values decrypted, consents and their state, blocks, opt-out,
-- erasure requests; who may ask; unknown subjects.
--
CREATE EXTENSION profile_guard;
-- the rule checks compare many subjects in large queries: JIT compiling
-- them costs seconds and tests nothing here
SET jit = off;
SET search_path = profile_guard, public;
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

SELECT define_tag('interest.sports', 'preference');
SELECT define_tag('interest.music', 'preference');
SELECT define_tag('health.condition', 'medical_health');
SELECT define_purpose('rec', 'Recommendations', tags => ARRAY['interest.*', 'health.condition'],
					  retention => interval '1 year');
SELECT define_purpose('ads', 'Personalised ads', tags => ARRAY['interest.*'], marketing => true);

-- wide shape: one column per tag, subject column bigint
CREATE TABLE public.profiles (user_id bigint PRIMARY KEY, sports text, health text, nickname text);
SELECT protect('profiles', 'user_id');
SELECT classify('profiles', 'sports', 'interest.sports');
SELECT classify('profiles', 'health', 'health.condition');
-- long shape: one row per subject and tag
CREATE TABLE public.tag_rows (subject text, tag text, value text, collected date,
					   PRIMARY KEY (subject, tag));
SELECT protect('tag_rows', 'subject', collected_at_column => 'collected',
			   tag_column => 'tag', value_column => 'value');

SELECT register_subject('42', '1990-05-01');
SELECT register_subject('7', '1985-01-01');
SELECT register_subject('042');		-- a different person from 42
SELECT register_subject('9', '1970-01-01');
SELECT grant_consent(s, 'rec', ARRAY['interest.*']) > 0 FROM unnest(ARRAY['42', '7', '9']) s;
SELECT grant_consent(s, 'rec', ARRAY['health.condition'], separate => true) > 0
FROM unnest(ARRAY['42', '7', '9']) s;
SELECT grant_consent('42', 'ads', ARRAY['interest.*']) > 0;

INSERT INTO profiles VALUES (42, 'football', 'diabetes', 'kim'), (7, 'tennis', 'asthma', 'lee'),
							(9, 'golf', 'gout', 'ann');
INSERT INTO tag_rows VALUES
	('42', 'interest.music', 'jazz', '2024-03-01'),
	('42', 'health.condition', 'hay fever', '2024-03-02'),
	('7', 'interest.music', 'rock', '2024-03-01');

-- sensitive values are ciphertext at rest (the report must decrypt them)
SELECT user_id, left(health, 4) AS stored_prefix, position('diabetes' in health) = 0 AS hidden
FROM profiles WHERE user_id = 42;
SELECT left(value, 4) AS stored_prefix FROM tag_rows WHERE subject = '42' AND tag = 'health.condition';

-- what the person did since: withdrew ads, blocked a tag, opted out
SELECT withdraw_consent('42', 'ads') > 0;
SELECT block_tag('42', 'interest.music');
SELECT opt_out('42');

CREATE TEMP TABLE rep AS SELECT subject_report('42') AS r;

-- the report's sections
SELECT k FROM rep, jsonb_object_keys(r) AS k ORDER BY k;
SELECT r->>'subject' AS subject, r->>'birth_date' AS birth_date, r->'opted_out' AS opted_out,
	   r->'erasure_requested_at' AS erasure_requested_at, r->'data_key_destroyed' AS key_destroyed
FROM rep;

-- tags held: wide and long tables, sensitive values decrypted; the nickname
-- column is not a tag and the other subjects' rows are not there
SELECT x."table", x."column", x.tag, x.sensitivity, x.value, x.stored, x.collected_at
FROM rep, jsonb_to_recordset(r->'tags')
	AS x("table" text, "column" text, tag text, sensitivity text, value jsonb, stored text, collected_at text)
ORDER BY 1, 3;

-- consents with versions, the ledger and what it means now (tag_state)
SELECT x.purpose, x.current_version, x.retired, x.marketing, x.retention
FROM rep, jsonb_to_recordset(r->'consents')
	AS x(purpose text, current_version int, retired boolean, marketing boolean, retention text)
ORDER BY 1;
SELECT c->>'purpose' AS purpose, l.action, l.purpose_version, l.tags, l.separate, l.guardian
FROM rep, jsonb_array_elements(r->'consents') AS c,
	 jsonb_to_recordset(c->'ledger')
	 AS l(consent_id bigint, action text, purpose_version int, tags jsonb, separate boolean, guardian boolean)
ORDER BY 1, l.consent_id;
SELECT c->>'purpose' AS purpose, s.tag, s.effective, s.reason
FROM rep, jsonb_array_elements(r->'consents') AS c,
	 jsonb_to_recordset(c->'tag_state') AS s(tag text, effective boolean, reason text)
ORDER BY 1, 2;
-- the same states as the consent_status view (the rules live in one place)
SELECT count(*) AS differences FROM (
	SELECT c->>'purpose', s.tag, s.effective, s.reason
	FROM rep, jsonb_array_elements(r->'consents') AS c,
		 jsonb_to_recordset(c->'tag_state') AS s(tag text, effective boolean, reason text)
	EXCEPT
	SELECT purpose, tag, effective, reason FROM consent_status WHERE subject = '42') AS d;

-- blocks and the subject's own events
SELECT b->>'tag' AS blocked_tag, (b->>'blocked_at')::timestamptz IS NOT NULL AS has_time
FROM rep, jsonb_array_elements(r->'blocks') AS b;
SELECT e->>'event' AS event, e->>'tag' AS tag FROM rep, jsonb_array_elements(r->'events') AS e;

-- erasures: none requested; erasures done come from the erasure engine's
-- log when it is installed (null with a note otherwise)
SELECT jsonb_array_length(r->'erasure_requests') AS requests,
	   coalesce(jsonb_array_length(nullif(r->'erasures_done', 'null')), 0) AS erasures_done,
	   (r->'erasures_done' = 'null') = (r ? 'erasures_done_note') AS note_only_without_log
FROM rep;

-- an erasure request shows as pending, and use stops at once
SELECT request_erasure('7') > 0;
SELECT r->'erasure_requested_at' <> 'null' AS requested,
	   (SELECT array_agg(q->>'status') FROM jsonb_array_elements(r->'erasure_requests') q) AS requests,
	   (SELECT array_agg(DISTINCT s->>'reason') FROM jsonb_array_elements(r->'consents') c,
			   jsonb_array_elements(c->'tag_state') s) AS reasons,
	   (SELECT array_agg(t->>'value' ORDER BY t->>'tag') FROM jsonb_array_elements(r->'tags') t) AS still_held
FROM (SELECT subject_report('7') AS r) AS x;

-- erasures done come from the erasure engine's ledger, matched by the keyed
-- subject hash; where the engine is not installed, a stand-in with the same
-- contract (profile_guard.erasure_log.subject_hash, _subject_hash(text))
DO $$
BEGIN
	IF to_regclass('profile_guard.erasure_log') IS NULL THEN
		CREATE TABLE profile_guard.erasure_log (logged_at timestamptz, relation text, tag text,
												reason text, action text, row_count bigint,
												subject_hash text);
		CREATE FUNCTION profile_guard._subject_hash(s text) RETURNS text
			LANGUAGE sql IMMUTABLE AS 'SELECT md5(''regress key'' || s)';
		INSERT INTO profile_guard.erasure_log VALUES
			(now(), 'public.profiles', 'interest.sports', 'withdrawn', 'delete', 1, profile_guard._subject_hash('7')),
			(now(), 'public.profiles', 'interest.sports', 'withdrawn', 'delete', 1, profile_guard._subject_hash('8'));
	END IF;
END
$$;
SELECT jsonb_typeof(r->'erasures_done') AS erasures_done,
	   r ? 'erasures_done_note' AS has_note,
	   jsonb_array_length(r->'erasures_done')
		 = (SELECT count(*) FROM profile_guard.erasure_log l
			WHERE l.subject_hash = profile_guard._subject_hash('7')) AS all_of_this_subject,
	   NOT EXISTS (SELECT 1 FROM jsonb_array_elements(r->'erasures_done') e
				   WHERE e ? 'subject_hash') AS hash_not_shown
FROM (SELECT subject_report('7') AS r) AS x;
DO $$
BEGIN
	IF NOT EXISTS (SELECT 1 FROM pg_depend d
				   WHERE d.classid = 'pg_class'::regclass
					 AND d.objid = 'profile_guard.erasure_log'::regclass AND d.deptype = 'e') THEN
		DROP TABLE profile_guard.erasure_log;
		DROP FUNCTION profile_guard._subject_hash(text);
	END IF;
END
$$;

-- '042' is another registered person: the bigint row 42 is not theirs
SELECT jsonb_array_length(r->'tags') AS tags, jsonb_array_length(r->'consents') AS consents
FROM (SELECT subject_report('042') AS r) AS x;

-- a crypto-shredded subject: values can no longer be decrypted, and say so
SELECT _destroy_subject_key('9');
SELECT r->'data_key_destroyed' AS key_destroyed,
	   (SELECT jsonb_agg(jsonb_build_object('tag', t->>'tag', 'value', t->'value', 'stored', t->>'stored')
						 ORDER BY t->>'tag')
		FROM jsonb_array_elements(r->'tags') t) AS tags
FROM (SELECT subject_report('9') AS r) AS x;

-- bad input
SELECT pg_temp.err($$SELECT subject_report('nobody')$$);
SELECT pg_temp.err($$SELECT subject_report(NULL)$$);
SELECT pg_temp.err($$SELECT subject_report('')$$);
SELECT left(pg_temp.err($$SELECT subject_report(repeat('x', 5000))$$), 40) AS huge;
SELECT pg_temp.err($$SELECT subject_report('x''); DROP TABLE profiles; --')$$);
SELECT count(*) FROM profiles;

-- who may ask: the consent desk and the administrators; an application
-- role cannot use it to get around the read gate
CREATE ROLE regress_sr_clerk IN ROLE profile_guard_consent;
CREATE ROLE regress_sr_admin IN ROLE profile_guard_admin;
CREATE ROLE regress_sr_app;
GRANT SELECT ON profiles TO regress_sr_app;
SELECT has_function_privilege('public', 'profile_guard.subject_report(text)', 'EXECUTE') AS public_may;
SET ROLE regress_sr_clerk;
SELECT r->'tags' @> '[{"tag": "health.condition", "value": "diabetes"}]' AS clerk_sees_decrypted
FROM (SELECT profile_guard.subject_report('42') AS r) AS x;
SET ROLE regress_sr_admin;
SELECT jsonb_array_length(profile_guard.subject_report('42')->'tags') AS admin_tags;
SET ROLE regress_sr_app;
SELECT pg_temp.err($$SELECT profile_guard.subject_report('42')$$);
SELECT pg_temp.err($$SELECT health FROM profiles$$);
RESET ROLE;

DROP TABLE profiles, tag_rows;
DROP EXTENSION profile_guard CASCADE;
DROP ROLE regress_sr_clerk, regress_sr_admin, regress_sr_app;
