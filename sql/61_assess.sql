--
-- 61_assess: the database checked against the guideline, clause by clause.
-- First an empty database, then a deliberately non-compliant one (each
-- fault reported, naming the objects at fault), then the same database
-- made compliant (met for everything that can be checked).
--
CREATE EXTENSION profile_guard;
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

-- §8 (secure transport) reads pg_hba.conf and ssl, which are the test
-- server's own: its status and detail are checked by
-- t/220_secure_transport.pl, and shown here as a placeholder
CREATE FUNCTION pg_temp.assessed() RETURNS TABLE (clause text, requirement text, status text, detail text)
LANGUAGE sql AS $$
	SELECT a.clause, a.requirement,
		   CASE WHEN a.clause = '§8 (secure transport)' THEN '(server)' ELSE a.status END,
		   CASE WHEN a.clause = '§8 (secure transport)' THEN '(depends on pg_hba.conf and ssl)' ELSE a.detail END
	FROM profile_guard.assess() AS a
$$;

-- the clauses and their requirements, on a database with nothing guarded
SELECT clause, requirement, status FROM pg_temp.assessed();
SELECT clause, detail FROM assess() WHERE status = 'not_met';

--
-- A non-compliant database
--
CREATE ROLE regress_as_app;
CREATE ROLE regress_as_gone;
CREATE ROLE regress_as_bypass BYPASSRLS;
CREATE ROLE regress_as_super SUPERUSER;

SELECT define_tag('interest.sports', 'preference');
SELECT define_tag('interest.poker', 'preference', description => 'card games');
SELECT define_tag('health.condition', 'medical_health');
SELECT define_tag('contact.mobile', 'contact');
SELECT define_tag('misc.note', 'basic');
-- rec: no tag list, no retention
SELECT define_purpose('rec', 'Recommendations');
SELECT define_purpose('ads', 'Personalised ads', ARRAY['interest.*'], interval '90 days', marketing => true);
-- credit: automated decisions, never assessed
SELECT define_purpose('credit', 'Credit scoring', ARRAY['interest.sports'], interval '1 year',
					  automated_decision => true);
SELECT define_purpose('feed', 'News feed', ARRAY['interest.sports'], interval '30 days');
SELECT define_recipient('Acme Ltd');
SELECT define_purpose('share:acme', 'Segments for a partner', ARRAY['interest.sports'], interval '30 days',
					  recipient => 'Acme Ltd');
SELECT allow_purpose('regress_as_app', 'rec');
SELECT allow_purpose('regress_as_gone', 'ads');
DROP ROLE regress_as_gone;
-- the lexicon grows after interest.poker was defined
SELECT add_prohibited_term('poker', 'gambling');

CREATE TABLE public.as_profile (uid text PRIMARY KEY, sports text, health text,
								diagnosis text, mobile text, religion text,
								collected_at timestamptz NOT NULL DEFAULT now());
SELECT protect('public.as_profile', 'uid', 'collected_at');
SELECT classify('public.as_profile', 'sports', 'interest.sports');
SELECT classify('public.as_profile', 'health', 'health.condition');
SELECT classify('public.as_profile', 'diagnosis', 'misc.note');		-- sensitive, classified general
CREATE TABLE public.as_rows (subject text, tag text, value text,
							 collected_at timestamptz NOT NULL DEFAULT now());
SELECT protect('public.as_rows', 'subject', 'collected_at', tag_column => 'tag', value_column => 'value');

SELECT register_subject('s1', '1990-01-01');
SELECT register_subject('s2');											-- no birth date
SELECT register_subject('s3', '1980-01-01');
SELECT register_subject('s4', '1975-01-01');
SELECT grant_consent(s, 'rec', ARRAY['interest.*', 'health.condition', 'misc.note'], separate => true) > 0
FROM unnest(ARRAY['s1', 's2', 's3', 's4']) s;
SELECT grant_consent(s, 'feed', ARRAY['interest.sports']) > 0 FROM unnest(ARRAY['s1', 's2']) s;
-- feed changes after the consents were given
SELECT define_purpose('feed', 'News feed, now with friends'' activity', ARRAY['interest.sports'], interval '30 days');

INSERT INTO public.as_profile (uid, sports, health) VALUES ('s1', 'football', 'diabetes');
INSERT INTO public.as_rows VALUES ('s1', 'health.condition', 'asthma'), ('s3', 'health.condition', 'gout');
SELECT _encrypt('s4', 'health.condition', 'warm-up') IS NOT NULL AS s4_has_key;
-- plaintext of a sensitive tag written with the trigger disabled
ALTER TABLE public.as_profile DISABLE TRIGGER profile_guard_collect;
INSERT INTO public.as_profile (uid, health) VALUES ('s2', 'plain diagnosis');
ALTER TABLE public.as_profile ENABLE ALWAYS TRIGGER profile_guard_collect;
ALTER TABLE public.as_rows DISABLE TRIGGER profile_guard_collect;
INSERT INTO public.as_rows VALUES ('s2', 'health.condition', 'plain flu');
-- ciphertext copied from another subject
UPDATE public.as_rows SET value = (SELECT value FROM public.as_rows WHERE subject = 's1')
WHERE subject = 's3';
-- the long table stays without its trigger, and an application role owns it
ALTER TABLE public.as_rows OWNER TO regress_as_app;
-- statistics would show values
ALTER TABLE public.as_profile ALTER COLUMN sports SET STATISTICS 100;
-- statement logging would print values
SET log_statement = 'mod';
SET log_min_duration_statement = 0;
ALTER ROLE regress_as_app SET log_statement = 'all';
-- the catalog written around the API; the ledger made mutable
GRANT INSERT ON profile_guard.consent TO regress_as_app;
ALTER TABLE profile_guard.consent DISABLE TRIGGER consent_append_only;
-- minors recognised too late
SET profile_guard.minor_age = 16;
-- an erasure request left pending for 20 days (the guideline sets no
-- deadline, and none is checked); one completed without
-- destroying the data key
SELECT request_erasure('s3') > 0;
SELECT request_erasure('s4') > 0;
UPDATE erasure_request SET requested_at = now() - interval '20 days' WHERE subject = 's3';
UPDATE erasure_request SET completed_at = now() WHERE subject = 's4';

SELECT clause, status, detail FROM pg_temp.assessed();

--
-- The same database made compliant
--
SELECT define_purpose('rec', 'Recommendations', ARRAY['interest.*', 'health.condition', 'contact.mobile'],
					  interval '1 year');
SELECT record_assessment('credit', 'dpo@example.com', 'risks mitigated');
-- the credit model's training data traced to a reviewed source (§6 b-c)
SELECT define_data_source('bureau_2025', 'purchase', 'contract B-2025-3', DATE '2025-01-15');
SELECT set_purpose_data_sources('credit', ARRAY['bureau_2025']);
SELECT allow_purpose('regress_as_app', p) FROM unnest(ARRAY['ads', 'credit', 'feed', 'share:acme']) p;
CREATE ROLE regress_as_gone;
SELECT disallow_purpose('regress_as_gone', 'ads');
DROP ROLE regress_as_gone;
SELECT drop_tag('interest.poker');
-- consents renewed for the new versions
SELECT grant_consent(s, 'rec', ARRAY['interest.*', 'health.condition', 'contact.mobile'], separate => true) > 0
FROM unnest(ARRAY['s1', 's2']) s;
SELECT grant_consent(s, 'feed', ARRAY['interest.sports']) > 0 FROM unnest(ARRAY['s1', 's2']) s;
SELECT register_subject('s2', '1995-06-01');
-- columns classified correctly, plaintext gone
SELECT classify('public.as_profile', 'mobile', 'contact.mobile');
SELECT declassify('public.as_profile', 'diagnosis');
ALTER TABLE public.as_profile DROP COLUMN diagnosis, DROP COLUMN religion;
DELETE FROM public.as_profile WHERE uid = 's2';
DELETE FROM public.as_rows WHERE subject IN ('s2', 's3');
ALTER TABLE public.as_profile ALTER COLUMN sports SET STATISTICS 0;
ALTER TABLE public.as_rows ENABLE ALWAYS TRIGGER profile_guard_collect;
ALTER TABLE public.as_rows OWNER TO CURRENT_USER;
RESET log_statement;
RESET log_min_duration_statement;
ALTER ROLE regress_as_app RESET log_statement;
REVOKE INSERT ON profile_guard.consent FROM regress_as_app;
ALTER TABLE profile_guard.consent ENABLE TRIGGER consent_append_only;
RESET profile_guard.minor_age;
DROP ROLE regress_as_bypass, regress_as_super;
-- erasures carried out: the data keys are destroyed
SELECT _destroy_subject_key(s) FROM unnest(ARRAY['s3', 's4']) s;
UPDATE erasure_request SET completed_at = now() WHERE subject = 's3';
-- someone answers access requests
CREATE ROLE regress_as_clerk IN ROLE profile_guard_consent;

SELECT clause, status, detail FROM pg_temp.assessed();
SELECT status, count(*) FROM pg_temp.assessed() GROUP BY status ORDER BY status;

-- a guarded table dropped without unprotect() leaves a catalog row behind
CREATE TABLE public.as_gone (uid text, email text);
SELECT protect('public.as_gone', 'uid');
DROP TABLE public.as_gone;
SELECT clause, status, regexp_replace(detail, '[0-9]{4,}', '<oid>', 'g') AS detail
FROM assess() WHERE clause IN ('§5 f', '§7.1');
DELETE FROM guarded_table g WHERE NOT EXISTS (SELECT 1 FROM pg_class c WHERE c.oid = g.relid);

-- §7.4: retention is applied to the rows' collected_at column or, in a
-- table protected without one, to its collection stamps unless it opted
-- out of them (they are on by default): without either its tags never
-- expire
CREATE TABLE public.as_nostamp (uid text, sports text);
SELECT protect('public.as_nostamp', 'uid', stamp_collection => false);
SELECT clause, status, detail FROM assess() WHERE clause = '§7.4';
SELECT set_collection_stamps('public.as_nostamp', true);
SELECT clause, status, detail FROM assess() WHERE clause = '§7.4';
SELECT unprotect('public.as_nostamp');
DROP TABLE public.as_nostamp;
SELECT clause, status, detail FROM assess() WHERE clause = '§7.4';

-- who may run it: administrators; read-only (it changed nothing)
CREATE ROLE regress_as_admin IN ROLE profile_guard_admin;
SET ROLE regress_as_admin;
SELECT count(*) AS clauses FROM profile_guard.assess();
SET ROLE regress_as_clerk;
SELECT pg_temp.err($$SELECT * FROM profile_guard.assess()$$);
SET ROLE regress_as_app;
SELECT pg_temp.err($$SELECT * FROM profile_guard.assess()$$);
RESET ROLE;

DROP TABLE public.as_profile, public.as_rows;
DROP EXTENSION profile_guard CASCADE;
DROP ROLE regress_as_app, regress_as_clerk, regress_as_admin;
