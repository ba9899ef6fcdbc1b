--
-- 12_guarded: protect, classify, declassify, unprotect
--
CREATE EXTENSION profile_guard;
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
CREATE FUNCTION pg_temp.guarded() RETURNS text LANGUAGE sql AS $$
	SELECT (SELECT count(*) FROM guarded_table) || ' tables, '
		|| (SELECT count(*) FROM classified_column) || ' columns, '
		|| coalesce((SELECT string_agg(format('%s.%s=%s', attrelid::regclass, attname, attstattarget),
									   ' ' ORDER BY attrelid::regclass::text, attname)
					 FROM pg_attribute
					 WHERE attrelid IN (SELECT oid FROM pg_class
										WHERE relnamespace = 'public'::regnamespace
										  AND relname IN ('profile', 'profile_long'))
					   AND attnum > 0 AND NOT attisdropped AND attstattarget <> -1), 'all default')
$$;

SELECT define_tag('interest.sports', 'preference');
SELECT define_tag('interest.music', 'preference');
SELECT define_tag('health.condition', 'medical_health');
SELECT define_tag('finance.income', 'financial_account');

CREATE TABLE public.profile (
	user_id		text PRIMARY KEY,
	collected	date,
	gone		text,
	sports		text,
	music		integer,
	health		text,
	income		bytea,
	score		numeric,
	note		varchar
);
ALTER TABLE public.profile DROP COLUMN gone;
CREATE TABLE public.profile_long (
	uid			bigint,
	tag			text,
	value		text,
	at			timestamptz,
	kind		integer
);
CREATE VIEW public.profile_view AS SELECT * FROM public.profile;
CREATE SEQUENCE public.some_seq;
CREATE TEMP TABLE tmp_profile (user_id text, sports text);

-- protect: validation, none of which writes anything
SELECT pg_temp.guarded() AS before \gset
SELECT pg_temp.err($$SELECT profile_guard.protect(NULL, 'user_id')$$);
SELECT pg_temp.err($$SELECT profile_guard.protect('public.profile', NULL)$$);
SELECT pg_temp.err($$SELECT profile_guard.protect('public.profile', 'user_id', on_erase => NULL)$$);
SELECT pg_temp.err($$SELECT profile_guard.protect('public.nope', 'user_id')$$);
SELECT pg_temp.err($$SELECT profile_guard.protect('public.profile_view', 'user_id')$$);
SELECT pg_temp.err($$SELECT profile_guard.protect('public.some_seq', 'last_value')$$);
SELECT pg_temp.err($$SELECT profile_guard.protect('profile_guard.subject', 'subject')$$);
SELECT pg_temp.err($$SELECT profile_guard.protect('pg_catalog.pg_class', 'relname')$$);
SELECT pg_temp.err($$SELECT profile_guard.protect('tmp_profile', 'user_id')$$);
SELECT pg_temp.err($$SELECT profile_guard.protect('public.profile', 'uid')$$);
SELECT pg_temp.err($$SELECT profile_guard.protect('public.profile', 'gone')$$);
SELECT pg_temp.err($$SELECT profile_guard.protect('public.profile', 'user_id', 'score')$$);
SELECT pg_temp.err($$SELECT profile_guard.protect('public.profile', 'user_id', 'nope')$$);
SELECT pg_temp.err($$SELECT profile_guard.protect('public.profile', 'user_id', on_erase => 'shred')$$);
SELECT pg_temp.err($$SELECT profile_guard.protect('public.profile', 'user_id', 'user_id')$$);
SELECT pg_temp.err($$SELECT profile_guard.protect('public.profile_long', 'uid', tag_column => 'tag')$$);
SELECT pg_temp.err($$SELECT profile_guard.protect('public.profile_long', 'uid', value_column => 'value')$$);
SELECT pg_temp.err($$SELECT profile_guard.protect('public.profile_long', 'uid', tag_column => 'kind', value_column => 'value')$$);
SELECT pg_temp.err($$SELECT profile_guard.protect('public.profile_long', 'uid', tag_column => 'tag', value_column => 'nope')$$);
SELECT pg_temp.err($$SELECT profile_guard.protect('public.profile_long', 'uid', tag_column => 'tag', value_column => 'tag')$$);
-- a subject column whose text is not the same on every path: character(n)
-- (the cast to text drops its padding), a date (DateStyle), a float
SELECT pg_temp.err($$SELECT profile_guard.protect('public.profile_long', 'at')$$);
CREATE TABLE public.padded (id char(3), code float8, sports text);
SELECT pg_temp.err($$SELECT profile_guard.protect('public.padded', 'id')$$);
SELECT pg_temp.err($$SELECT profile_guard.protect('public.padded', 'code')$$);
DROP TABLE public.padded;
SELECT pg_temp.guarded() = :'before' AS unchanged;

-- wide and long shapes
SELECT protect('public.profile', 'user_id', 'collected');
SELECT protect('public.profile_long', 'uid', 'at', 'tag', 'value', on_erase => 'anonymise',
			   keep_columns => ARRAY['kind']);
SELECT relid, subject_column, collected_at_column, tag_column, value_column, on_erase,
	   anonymise_columns
FROM guarded_table ORDER BY relid::text;
-- the long shape's value column keeps no statistics
SELECT pg_temp.guarded();
SELECT pg_temp.err($$SELECT profile_guard.protect('public.profile', 'user_id')$$);

-- classify: tag columns keep no statistics, and those already gathered go
INSERT INTO public.profile (user_id, sports, music, health)
SELECT g::text, 'football', g % 3, 'flu' FROM generate_series(1, 50) g;
ANALYZE public.profile;
SELECT attname FROM pg_stats WHERE schemaname = 'public' AND tablename = 'profile'
  AND attname IN ('sports', 'music', 'health') ORDER BY 1;
SELECT classify('public.profile', 'sports', 'interest.sports');
SELECT classify('public.profile', 'music', 'interest.music');
-- sensitive tags need text or bytea
SELECT classify('public.profile', 'health', 'health.condition');
SELECT classify('public.profile', 'income', 'finance.income');
SELECT relid, column_name, tag FROM classified_column ORDER BY relid::text, column_name;
SELECT pg_temp.guarded();
SELECT attname FROM pg_stats WHERE schemaname = 'public' AND tablename = 'profile'
  AND attname IN ('sports', 'music', 'health') ORDER BY 1;
ANALYZE public.profile;
SELECT attname FROM pg_stats WHERE schemaname = 'public' AND tablename = 'profile'
  AND attname IN ('sports', 'music', 'health') ORDER BY 1;

-- classify: validation, none of which writes anything
SELECT pg_temp.guarded() AS before \gset
SELECT pg_temp.err($$SELECT profile_guard.classify(NULL, 'sports', 'interest.sports')$$);
SELECT pg_temp.err($$SELECT profile_guard.classify('public.profile', NULL, 'interest.sports')$$);
SELECT pg_temp.err($$SELECT profile_guard.classify('public.profile', 'note', NULL)$$);
SELECT pg_temp.err($$SELECT profile_guard.classify('public.profile_view', 'sports', 'interest.sports')$$);
SELECT pg_temp.err($$SELECT profile_guard.classify('public.profile_long', 'value', 'interest.sports')$$);
SELECT pg_temp.err($$SELECT profile_guard.classify('public.profile', 'nope', 'interest.sports')$$);
SELECT pg_temp.err($$SELECT profile_guard.classify('public.profile', 'gone', 'interest.sports')$$);
SELECT pg_temp.err($$SELECT profile_guard.classify('public.profile', 'user_id', 'interest.sports')$$);
SELECT pg_temp.err($$SELECT profile_guard.classify('public.profile', 'collected', 'interest.sports')$$);
SELECT pg_temp.err($$SELECT profile_guard.classify('public.profile', 'note', 'interest.golf')$$);
SELECT pg_temp.err($$SELECT profile_guard.classify('public.profile', 'sports', 'interest.music')$$);
SELECT pg_temp.err($$SELECT profile_guard.classify('public.profile', 'score', 'health.condition')$$);
SELECT pg_temp.err($$SELECT profile_guard.classify('public.profile', 'note', 'health.condition')$$);
SELECT pg_temp.guarded() = :'before' AS unchanged;

-- a classified tag cannot be dropped, nor change sensitivity
SELECT pg_temp.err($$SELECT profile_guard.drop_tag('interest.music')$$);
SELECT pg_temp.err($$SELECT profile_guard.define_tag('interest.music', 'preference', sensitivity => 'sensitive')$$);
SELECT define_tag('score.taste', 'derived', derived_from => ARRAY['interest.sports']);
SELECT classify('public.profile', 'score', 'score.taste');
SELECT pg_temp.err($$SELECT profile_guard.define_tag('interest.sports', 'preference', sensitivity => 'sensitive')$$);
SELECT tag, sensitivity FROM tag WHERE tag IN ('interest.sports', 'score.taste') ORDER BY tag;

-- declassify
SELECT declassify('public.profile', 'music');
SELECT relid, column_name, tag FROM classified_column ORDER BY relid::text, column_name;
SELECT pg_temp.guarded();
SELECT pg_temp.guarded() AS before \gset
SELECT pg_temp.err($$SELECT profile_guard.declassify('public.profile', 'music')$$);
SELECT pg_temp.err($$SELECT profile_guard.declassify('public.profile', NULL)$$);
SELECT pg_temp.err($$SELECT profile_guard.declassify('public.profile_view', 'sports')$$);
SELECT pg_temp.guarded() = :'before' AS unchanged;
-- now unused, the tag may change and go
SELECT define_tag('interest.music', 'preference', sensitivity => 'sensitive');
SELECT drop_tag('interest.music');

-- unprotect removes the classifications and restores statistics
SELECT unprotect('public.profile');
SELECT unprotect('public.profile_long');
SELECT pg_temp.guarded();
SELECT pg_temp.err($$SELECT profile_guard.unprotect('public.profile')$$);
SELECT pg_temp.err($$SELECT profile_guard.unprotect(NULL)$$);
-- and the table can be protected again
SELECT protect('public.profile', 'user_id');
SELECT classify('public.profile', 'sports', 'interest.sports');
SELECT pg_temp.guarded();

-- partitioned tables, quoted names
CREATE TABLE public."Odd Profile" (
	"User Id"	text,
	"Sports Fan" text
) PARTITION BY LIST ("User Id");
CREATE TABLE public."Odd Profile a" PARTITION OF public."Odd Profile" FOR VALUES IN ('a');
CREATE TABLE public."Odd Profile b" PARTITION OF public."Odd Profile" FOR VALUES IN ('b');
INSERT INTO public."Odd Profile" SELECT 'a', 'yes' FROM generate_series(1, 10);
ANALYZE public."Odd Profile";
SELECT count(*) > 0 AS has_stats FROM pg_stats WHERE attname = 'Sports Fan';
SELECT protect('public."Odd Profile"', 'User Id');
SELECT classify('public."Odd Profile"', 'Sports Fan', 'interest.sports');
SELECT attrelid::regclass, attname, attstattarget FROM pg_attribute
WHERE attname = 'Sports Fan' ORDER BY attrelid::regclass::text;
SELECT count(*) AS stats FROM pg_stats WHERE attname = 'Sports Fan';
SELECT declassify('public."Odd Profile"', 'Sports Fan');
SELECT attrelid::regclass, attname, attstattarget FROM pg_attribute
WHERE attname = 'Sports Fan' ORDER BY attrelid::regclass::text;
SELECT unprotect('public."Odd Profile"');

-- privileges
CREATE ROLE regress_guard_admin IN ROLE profile_guard_admin;
CREATE ROLE regress_guard_clerk IN ROLE profile_guard_consent;
SET ROLE regress_guard_clerk;
SELECT pg_temp.err($$SELECT profile_guard.declassify('public.profile', 'sports')$$);
SELECT pg_temp.err($$SELECT profile_guard.unprotect('public.profile')$$);
-- a policy administrator must still own the table it changes
RESET ROLE;
CREATE TABLE public.not_theirs (id int, music text);
SET ROLE regress_guard_admin;
SELECT pg_temp.err($$SELECT profile_guard.declassify('public.profile', 'sports')$$);
SELECT pg_temp.err($$SELECT profile_guard.unprotect('public.profile')$$);
SELECT pg_temp.err($$SELECT profile_guard.classify('public.profile', 'music', 'interest.music')$$);
SELECT pg_temp.err($$SELECT profile_guard.protect('public.not_theirs', 'id')$$);
RESET ROLE;
SELECT count(*) FROM guarded_table;
-- ... and the owner may
ALTER TABLE public.profile OWNER TO regress_guard_admin;
SET ROLE regress_guard_admin;
SELECT profile_guard.declassify('public.profile', 'sports');
SELECT profile_guard.unprotect('public.profile');
RESET ROLE;
SELECT count(*) FROM guarded_table;
DROP TABLE public.not_theirs;

-- a tag stored only as rows of a long-shape table keeps its sensitivity
-- while the table holds it: declared general, new values would be stored
-- as plaintext and old ones served as ciphertext
SELECT define_tag('health.allergy', 'medical_health');
SELECT define_purpose('allergy_care', 'allergy care', ARRAY['health.allergy']);
SELECT register_subject('501');
SELECT grant_consent('501', 'allergy_care', ARRAY['health.allergy'], separate => true) > 0 AS granted;
CREATE TABLE public.allergies (uid int, tag text, value text);
SELECT protect('public.allergies', 'uid', tag_column => 'tag', value_column => 'value');
INSERT INTO public.allergies VALUES (501, 'health.allergy', 'peanuts');
SELECT value LIKE 'pgt2%' AS encrypted FROM public.allergies;
SELECT pg_temp.err($$SELECT profile_guard.define_tag('health.allergy', 'preference', 'general')$$);
SELECT pg_temp.err($$SELECT profile_guard.drop_tag('health.allergy')$$);
SELECT sensitivity FROM tag WHERE tag = 'health.allergy';
-- once no row holds it, it may change
DELETE FROM public.allergies;
SELECT pg_temp.err($$SELECT profile_guard.define_tag('health.allergy', 'preference', 'general')$$);
SELECT sensitivity FROM tag WHERE tag = 'health.allergy';
DROP TABLE public.allergies;

DROP EXTENSION profile_guard CASCADE;
DROP TABLE public.profile, public.profile_long, public."Odd Profile" CASCADE;
DROP SEQUENCE public.some_seq;
DROP ROLE regress_guard_admin, regress_guard_clerk;
