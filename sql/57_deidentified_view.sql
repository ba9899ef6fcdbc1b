--
-- 57_deidentified_view: de-identified views for training or sharing (§4 a,
-- §6) and data sources (§6 b–c).  A view serves the consented tags under
-- the reader's purpose, through the read gate on every path (no purpose, a
-- purpose without consent, prepared statements, cursors, CTEs, WHERE
-- probes, whole-row references, COPY, CREATE TABLE AS, functions); the
-- subject becomes a pseudonym keyed per recipient; identifiers and untagged
-- columns are left out.
--
CREATE EXTENSION profile_guard;
SET search_path = public, profile_guard;
SET client_min_messages = warning;
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
CREATE FUNCTION pg_temp.state() RETURNS text LANGUAGE sql AS $$
	SELECT md5(concat_ws('|',
		(SELECT string_agg(d::text, ';' ORDER BY view_relid::text) FROM deidentified_view d),
		(SELECT string_agg(s::text, ';' ORDER BY source) FROM data_source s),
		(SELECT string_agg(s::text, ';' ORDER BY relid::text, source) FROM table_data_source s),
		(SELECT string_agg(c.relname, ';' ORDER BY c.relname) FROM pg_class c
		 WHERE c.relnamespace = 'public'::regnamespace)))
$$;

SELECT define_tag('interest.sports', 'preference');
SELECT define_tag('interest.music', 'preference');
SELECT define_tag('contact.email', 'contact');
SELECT define_tag('health.condition', 'medical_health');
SELECT define_recipient('lab', 'CN', 'model training lab');
SELECT define_recipient('acme', 'CN', 'partner');
SELECT define_purpose('training', 'train the recommendation model',
					  ARRAY['interest.*', 'contact.email', 'health.condition'], recipient => 'lab');
SELECT define_purpose('other', 'something else for the lab', ARRAY['interest.*'], recipient => 'lab');
SELECT define_purpose('local', 'kept in house', ARRAY['interest.*']);
CREATE ROLE regress_dv_app LOGIN;
SELECT allow_purpose('regress_dv_app', 'training');
SELECT allow_purpose('regress_dv_app', 'other');
SELECT allow_purpose('regress_dv_app', 'local');
SELECT register_subject(s::text) FROM generate_series(1, 3) s;
-- 1: everything; 2: sports only; 3: nothing for training
SELECT grant_consent('1', 'training', ARRAY['interest.*', 'contact.email', 'health.condition'], separate => true) > 0;
SELECT grant_consent('2', 'training', ARRAY['interest.sports']) > 0;
SELECT grant_consent('3', 'other', ARRAY['interest.*']) > 0;

CREATE TABLE people (id int PRIMARY KEY, name text, email text, sports text, music text, health text);
SELECT protect('people', 'id');
SELECT classify('people', 'email', 'contact.email');
SELECT classify('people', 'sports', 'interest.sports');
SELECT classify('people', 'music', 'interest.music');
SELECT classify('people', 'health', 'health.condition');
INSERT INTO people VALUES (1, 'Ann', 'ann@example.org', 'tennis', 'jazz', 'asthma'),
	(2, 'Bob', NULL, 'golf', NULL, NULL), (3, 'Cat', NULL, 'judo', 'folk', NULL);
CREATE TABLE facts (uid text, tag text, value text);
SELECT protect('facts', 'uid', tag_column => 'tag', value_column => 'value');
INSERT INTO facts VALUES ('1', 'interest.music', 'jazz'), ('1', 'contact.email', 'ann@example.org'),
	('2', 'interest.sports', 'golf');
GRANT SELECT ON people, facts TO regress_dv_app;

-- 1. bad input changes nothing
SELECT pg_temp.state() AS before \gset
SELECT pg_temp.err($$SELECT profile_guard.deidentified_view(NULL, 'v', 'lab')$$);
SELECT pg_temp.err($$SELECT profile_guard.deidentified_view('people', NULL, 'lab')$$);
SELECT pg_temp.err($$SELECT profile_guard.deidentified_view('pg_class', 'v', 'lab')$$);
SELECT pg_temp.err($$SELECT profile_guard.deidentified_view('people', 'v', 'nobody')$$);
SELECT pg_temp.err($$SELECT profile_guard.deidentified_view('people', 'facts', 'lab')$$);
SET ROLE regress_dv_app;
SELECT pg_temp.err($$SELECT profile_guard.deidentified_view('people', 'v', 'lab')$$) LIKE '42501:%' AS refused;
RESET ROLE;
SELECT pg_temp.state() = :'before' AS unchanged;

-- 2. the views: pseudonym, tags of non-identifying categories; no name, no email
SELECT deidentified_view('people', 'people_for_lab', 'lab');
SELECT deidentified_view('people', 'people_for_acme', 'acme');
SELECT deidentified_view('facts', 'facts_for_lab', 'lab');
SELECT attname FROM pg_attribute WHERE attrelid = 'people_for_lab'::regclass AND attnum > 0 ORDER BY attnum;
SELECT c.relname, pg_get_userbyid(c.relowner) = current_user AS owned_by_table_owner, c.reloptions
FROM pg_class c WHERE c.relname IN ('people_for_lab', 'facts_for_lab') ORDER BY 1;
SELECT view_relid, relid, recipient FROM deidentified_view ORDER BY view_relid::text;
GRANT SELECT ON people_for_lab, people_for_acme, facts_for_lab TO regress_dv_app;

SET ROLE regress_dv_app;
-- the gate applies: without a purpose, tags cannot be read
SELECT pg_temp.err($$SELECT * FROM public.people_for_lab$$);
SELECT pg_temp.err($$SELECT count(*) FROM public.facts_for_lab$$);
-- under training: 1 (all but the identifying email), 2 (sports only)
SET profile_guard.purpose = 'training';
SELECT subject_pseudonym = profile_guard._pseudonym('1', 'lab') AS is_1, sports, music, health
FROM people_for_lab ORDER BY sports;
SELECT count(*) FROM people_for_lab;
-- long shape: the email row is left out
SELECT subject_pseudonym = profile_guard._pseudonym('1', 'lab') AS is_1, tag, value
FROM facts_for_lab ORDER BY tag;
-- a recipient's view is read only under a purpose that provides its data
-- to that recipient (its cells are counted for it): not acme's under
-- training (lab's), nor lab's under a purpose with no recipient
SELECT pg_temp.err($$SELECT count(*) FROM people_for_acme$$);
PREPARE lab_count AS SELECT count(*) FROM people_for_lab;
EXECUTE lab_count;
SET profile_guard.purpose = 'local';
SELECT pg_temp.err($$SELECT count(*) FROM people_for_lab$$);
SELECT pg_temp.err($$SELECT count(*) FROM facts_for_lab$$);
-- nor by any other way: a statement prepared under training, a cursor, a
-- CTE, functions, a view over it, the pseudonym alone, COPY, CREATE TABLE AS
SELECT pg_temp.err($$EXECUTE lab_count$$);
DEALLOCATE lab_count;
BEGIN;
DECLARE lab_cursor CURSOR FOR SELECT subject_pseudonym FROM people_for_lab;
SELECT pg_temp.err($$FETCH ALL lab_cursor$$);
ROLLBACK;
SELECT pg_temp.err($$WITH v AS (SELECT * FROM people_for_lab) SELECT count(*) FROM v$$);
CREATE FUNCTION pg_temp.lab_count_sql() RETURNS bigint LANGUAGE sql
AS $$ SELECT count(*) FROM public.people_for_lab $$;
CREATE FUNCTION pg_temp.lab_count_plpgsql() RETURNS bigint LANGUAGE plpgsql
AS $$ BEGIN RETURN (SELECT count(*) FROM public.facts_for_lab); END $$;
SELECT pg_temp.err($$SELECT pg_temp.lab_count_sql()$$);
SELECT pg_temp.err($$SELECT pg_temp.lab_count_plpgsql()$$);
CREATE TEMP VIEW lab_again AS SELECT * FROM public.people_for_lab;
SELECT pg_temp.err($$SELECT count(*) FROM lab_again$$);
SELECT pg_temp.err($$SELECT subject_pseudonym FROM people_for_lab$$);
COPY (SELECT subject_pseudonym FROM people_for_lab) TO STDOUT;
SELECT pg_temp.err($$CREATE TEMP TABLE lab_copy AS SELECT subject_pseudonym FROM facts_for_lab$$);
DROP VIEW lab_again;
DROP FUNCTION pg_temp.lab_count_sql(), pg_temp.lab_count_plpgsql();
SET profile_guard.purpose = 'training';
-- the recipients' pseudonyms differ: their copies cannot be joined
SELECT count(*) AS same_pseudonym FROM generate_series(1, 3) i
WHERE profile_guard._pseudonym(i::text, 'lab') = profile_guard._pseudonym(i::text, 'acme');
SELECT length(subject_pseudonym) AS length FROM people_for_lab LIMIT 1;
-- under other (also for the lab): 3 has no sports consent for training,
-- but its consent to other covers interest.*: the view serves what the
-- purpose allows
SET profile_guard.purpose = 'other';
SELECT sports, music FROM people_for_lab ORDER BY sports;
-- every path goes through the gate
SET profile_guard.purpose = 'training';
PREPARE q AS SELECT sports, music, health FROM people_for_lab ORDER BY sports;
EXECUTE q;
SET profile_guard.purpose = 'other';
EXECUTE q;
SET profile_guard.purpose = 'training';
SELECT (row_to_json(v)::jsonb - 'subject_pseudonym') AS row FROM people_for_lab v ORDER BY v.sports;
COPY (SELECT sports, music, health FROM people_for_lab ORDER BY sports) TO STDOUT;
CREATE TEMP TABLE copied AS SELECT sports, music, health FROM people_for_lab;
SELECT * FROM copied ORDER BY sports;
CREATE FUNCTION pg_temp.through_function() RETURNS SETOF text LANGUAGE sql AS
	$$ SELECT coalesce(music, '-') FROM public.people_for_lab ORDER BY sports $$;
SELECT * FROM pg_temp.through_function();
SET profile_guard.purpose = 'other';
SELECT * FROM pg_temp.through_function();
RESET profile_guard.purpose;
SELECT pg_temp.err($$SELECT * FROM pg_temp.through_function()$$);
-- a cursor, a CTE and a WHERE probe on a cell the purpose may not see
SET profile_guard.purpose = 'other';
BEGIN;
DECLARE c CURSOR FOR SELECT sports, music, health FROM people_for_lab ORDER BY sports;
FETCH ALL FROM c;
COMMIT;
WITH w AS (SELECT health FROM people_for_lab) SELECT count(health) AS health_cells FROM w;
SELECT count(*) AS asthma_rows FROM people_for_lab WHERE health = 'asthma';
SET profile_guard.purpose = 'training';
SELECT count(*) AS asthma_rows FROM people_for_lab WHERE health = 'asthma';
DROP TABLE copied;
DROP FUNCTION pg_temp.through_function();
RESET ROLE;
-- the view reads with its reader's rights: without SELECT on the table, nothing
CREATE ROLE regress_dv_other LOGIN;
SELECT allow_purpose('regress_dv_other', 'training');
GRANT SELECT ON people_for_lab TO regress_dv_other;
SET ROLE regress_dv_other;
SET profile_guard.purpose = 'training';
SELECT pg_temp.err($$SELECT count(*) FROM public.people_for_lab$$) LIKE '42501:%' AS refused;
RESET profile_guard.purpose;
RESET ROLE;

-- a recipient's pseudonyms are computed only for roles that may read the
-- identifiers they replace: anyone else could compute the pseudonym of
-- every identifier they can guess and so reverse the recipient's copy
SET ROLE regress_dv_other;
SELECT pg_temp.err($$SELECT profile_guard._pseudonym('1', 'lab')$$);
SELECT pg_temp.err($$SELECT profile_guard._pseudonym(i::text, 'lab') FROM generate_series(1, 3) i$$) LIKE '42501:%' AS refused;
RESET ROLE;
-- the tag columns alone are not enough: the subject column is what counts
GRANT SELECT (sports, music) ON people TO regress_dv_other;
SET ROLE regress_dv_other;
SELECT pg_temp.err($$SELECT profile_guard._pseudonym('1', 'lab')$$) LIKE '42501:%' AS refused;
RESET ROLE;
REVOKE SELECT (sports, music) ON people FROM regress_dv_other;
-- a recipient without a view has no pseudonyms, even for the table's owner
SELECT pg_temp.err($$SELECT profile_guard._pseudonym('1', 'nobody')$$) LIKE '42501:%' AS refused;
-- a reader of the table computes them (it reads the identifiers anyway):
-- the pseudonym its view shows for subject 1
SET ROLE regress_dv_app;
SET profile_guard.purpose = 'training';
SELECT profile_guard._pseudonym('1', 'lab') = (SELECT subject_pseudonym FROM people_for_lab
	WHERE sports = 'tennis') AS same_as_view;
RESET profile_guard.purpose;
RESET ROLE;

-- a de-identified view is not replaced or altered (its definition is what
-- deidentified_view() chose), by its owner either
SELECT pg_temp.err($$CREATE OR REPLACE VIEW public.people_for_lab WITH (security_invoker = true) AS
	SELECT id::text AS subject_pseudonym, sports, music, health FROM public.people$$);
SELECT pg_temp.err($$ALTER VIEW public.people_for_lab SET (security_invoker = false)$$);
SELECT pg_get_viewdef('people_for_lab'::regclass) LIKE '%_pseudonym%' AS still_pseudonymised;

-- 3. data sources and assess() §6 (data sources)
SELECT clause, status, detail FROM assess() WHERE clause = '§6 (data sources)';
SELECT pg_temp.state() AS before \gset
SELECT pg_temp.err($$SELECT profile_guard.define_data_source(NULL, 'purchase')$$);
SELECT pg_temp.err($$SELECT profile_guard.define_data_source('vendor', 'stolen')$$);
SELECT pg_temp.err($$SELECT profile_guard.define_data_source('  ', 'purchase')$$);
SELECT pg_temp.err($$SELECT profile_guard.define_data_source('vendor', 'purchase', 'contract 7', current_date + 1)$$);
SELECT pg_temp.err($$SELECT profile_guard.set_data_sources('people', ARRAY['nope'])$$);
SELECT pg_temp.err($$SELECT profile_guard.set_data_sources('people', NULL)$$);
SELECT pg_temp.err($$SELECT profile_guard.set_data_sources('pg_class', ARRAY[]::text[])$$);
SELECT pg_temp.state() = :'before' AS unchanged;
SELECT define_data_source('app', 'own_collection', 'privacy notice v3', '2024-01-15');
SELECT define_data_source('vendor', 'purchase', 'contract 7');
SELECT set_data_sources('people', ARRAY['app', 'vendor']);
SELECT set_data_sources('facts', ARRAY['app']);
SELECT clause, status, detail FROM assess() WHERE clause = '§6 (data sources)';
SELECT define_data_source('vendor', 'purchase', 'contract 7', '2024-02-01');
SELECT clause, status, detail FROM assess() WHERE clause = '§6 (data sources)';

DROP VIEW people_for_lab, people_for_acme, facts_for_lab;
DROP TABLE people, facts;
DROP EXTENSION profile_guard;
DROP ROLE regress_dv_app;
DROP ROLE regress_dv_other;
