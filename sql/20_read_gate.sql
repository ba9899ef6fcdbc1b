-- Read path: purpose declaration, consent-gated rows and cells (wide shape).
CREATE EXTENSION profile_guard;
-- the rule checks compare many subjects in large queries: JIT compiling
-- them costs seconds and tests nothing here
SET jit = off;
SET client_min_messages = warning;

DO $setup$ BEGIN
PERFORM profile_guard.define_tag('interest.sports', 'preference');
PERFORM profile_guard.define_tag('interest.music', 'preference');
PERFORM profile_guard.define_tag('behavior.visits', 'behavior');
PERFORM profile_guard.define_tag('score.churn_risk', 'derived', derived_from => ARRAY['behavior.visits', 'interest.sports']);
PERFORM profile_guard.define_purpose('recommendation', 'recommend content',
	ARRAY['interest.*', 'behavior.visits', 'score.churn_risk']);
PERFORM profile_guard.define_purpose('marketing', 'personalised ads',
	ARRAY['interest.*'], marketing => true);
PERFORM profile_guard.define_purpose('credit_scoring', 'automated credit decisions',
	ARRAY['score.churn_risk'], automated_decision => true);

END $setup$;

CREATE ROLE regress_app LOGIN;
CREATE ROLE regress_other LOGIN;
CREATE ROLE regress_bypass LOGIN BYPASSRLS;
DO $setup$ BEGIN
PERFORM profile_guard.allow_purpose('regress_app', 'recommendation');
PERFORM profile_guard.allow_purpose('regress_app', 'marketing');
PERFORM profile_guard.allow_purpose('regress_app', 'credit_scoring');
END $setup$;

-- a dropped column before the tag columns shifts nothing
CREATE TABLE profiles (id int PRIMARY KEY, gone int, name text,
	sports text, music text, visits int, churn numeric);
ALTER TABLE profiles DROP COLUMN gone;
INSERT INTO profiles VALUES
	(1, 'ann', 'football', 'jazz', 10, 0.1),
	(2, 'bob', 'tennis', 'rock', 20, 0.2),
	(3, 'cat', 'golf', 'pop', 30, 0.3),
	(4, 'dan', 'chess', 'folk', 40, 0.4),
	(5, 'eve', 'swimming', 'soul', 50, 0.5);
-- a view created before protect() is gated too
CREATE VIEW early_view AS SELECT id, name, music FROM profiles;
GRANT SELECT, UPDATE, DELETE ON profiles TO regress_app;
GRANT SELECT ON early_view TO regress_app;

DO $setup$ BEGIN
PERFORM profile_guard.protect('profiles', 'id');
PERFORM profile_guard.classify('profiles', 'sports', 'interest.sports');
PERFORM profile_guard.classify('profiles', 'music', 'interest.music');
PERFORM profile_guard.classify('profiles', 'visits', 'behavior.visits');
PERFORM profile_guard.classify('profiles', 'churn', 'score.churn_risk');

PERFORM profile_guard.register_subject(s) FROM unnest(ARRAY['1','2','3','4']) s;
-- 1: everything; 2: sports only; 3: music, then blocks it; 4: opted out; 5: unregistered
PERFORM profile_guard.grant_consent('1', 'recommendation', ARRAY['interest.*', 'behavior.visits', 'score.churn_risk']);
PERFORM profile_guard.grant_consent('2', 'recommendation', ARRAY['interest.sports']);
PERFORM profile_guard.grant_consent('3', 'recommendation', ARRAY['interest.music', 'score.churn_risk']);
PERFORM profile_guard.block_tag('3', 'interest.music');
PERFORM profile_guard.grant_consent('1', 'marketing', ARRAY['interest.*']);
PERFORM profile_guard.grant_consent('4', 'marketing', ARRAY['interest.*']);
PERFORM profile_guard.opt_out('4');

END $setup$;

-- functions, as a DBA would write them (invoker's rights: gated as the caller)
CREATE FUNCTION f_inlined() RETURNS SETOF profiles LANGUAGE sql STABLE
	AS 'SELECT * FROM profiles';
CREATE FUNCTION f_scalar(i int) RETURNS text LANGUAGE sql STABLE
	AS 'SELECT music FROM profiles WHERE id = i';
CREATE FUNCTION f_plpgsql(i int) RETURNS text LANGUAGE plpgsql STABLE
	AS $$ BEGIN RETURN (SELECT music FROM profiles WHERE id = i); END $$;
CREATE FUNCTION f_dynamic(i int) RETURNS text LANGUAGE plpgsql STABLE
	AS $$ DECLARE r text; BEGIN EXECUTE 'SELECT music FROM profiles WHERE id = $1' INTO r USING i; RETURN r; END $$;
CREATE SCHEMA regress_scratch AUTHORIZATION regress_app;

SET ROLE regress_app;

-- rule 1: no purpose, no tags
SELECT * FROM profiles;
SELECT music FROM early_view;
SELECT count(*) FROM profiles WHERE sports IS NOT NULL;
-- non-tag columns need no purpose
SELECT id, name FROM profiles ORDER BY id;
SELECT count(*) FROM profiles;

-- unknown, unallowed purposes fail at the first statement that reads tags
SET profile_guard.purpose = 'no_such_purpose';
SELECT music FROM profiles;
SET profile_guard.purpose = 'Bad Name';
RESET ROLE;
SELECT profile_guard.define_purpose('analytics', 'internal analytics', ARRAY['interest.*']);
SET ROLE regress_app;
SET profile_guard.purpose = 'analytics';
SELECT music FROM profiles;
-- automated decisions need an impact assessment of the current version
SET profile_guard.purpose = 'credit_scoring';
SELECT churn FROM profiles;

SET profile_guard.purpose = 'recommendation';
-- rows: only subjects with an effective consent; cells: only consented tags;
-- churn (derived) only where both sources are visible
SELECT * FROM profiles ORDER BY id;
SELECT * FROM early_view ORDER BY id;

-- WHERE probes on masked cells find nothing
SELECT id FROM profiles WHERE music = 'rock';
SELECT id FROM profiles WHERE music IS NOT NULL ORDER BY id;
SELECT count(*) FROM profiles WHERE visits > 0;
-- JOIN, GROUP BY, HAVING, ORDER BY, window functions
SELECT a.id, b.music FROM profiles a JOIN profiles b ON a.music = b.music ORDER BY 1;
SELECT music, count(*) FROM profiles GROUP BY music ORDER BY music NULLS FIRST;
SELECT sports FROM profiles GROUP BY sports HAVING max(music) IS NOT NULL;
SELECT id FROM profiles ORDER BY music NULLS LAST, id;
SELECT id, first_value(music) OVER (ORDER BY id DESC) FROM profiles ORDER BY id;
-- sub-queries, CTEs, LATERAL, EXISTS, IN, UNION
SELECT * FROM (SELECT id, music FROM profiles) s ORDER BY id;
WITH c AS (SELECT id, music FROM profiles) SELECT * FROM c ORDER BY id;
WITH c AS MATERIALIZED (SELECT id, music FROM profiles) SELECT * FROM c ORDER BY id;
SELECT (SELECT music FROM profiles x WHERE x.id = 2) AS scalar_subquery;
SELECT g.i, l.music FROM generate_series(1, 3) g(i),
	LATERAL (SELECT music FROM profiles p WHERE p.id = g.i) l ORDER BY 1;
SELECT EXISTS (SELECT 1 FROM profiles WHERE music = 'rock') AS probe;
SELECT 'rock' IN (SELECT music FROM profiles) AS probe;
SELECT music FROM profiles UNION SELECT sports FROM profiles ORDER BY 1;
-- whole-row references
SELECT p FROM profiles p ORDER BY id;
SELECT p::text FROM profiles p ORDER BY id;
SELECT row_to_json(p) FROM profiles p ORDER BY id;
SELECT to_jsonb(p) ->> 'music' FROM profiles p ORDER BY id;
SELECT (p).music FROM profiles p ORDER BY id;
SELECT x FROM (SELECT * FROM profiles) x ORDER BY id;

-- SQL and PL/pgSQL functions, inlined or not, and the function's own view
CREATE FUNCTION regress_scratch.f_own() RETURNS SETOF profiles LANGUAGE sql
	AS 'SELECT * FROM profiles';
SELECT id, music FROM regress_scratch.f_own() ORDER BY id;
SELECT id, music FROM f_inlined() ORDER BY id;
SELECT f_scalar(2), f_plpgsql(2), f_dynamic(2), f_scalar(1);
SELECT count(*) FROM f_inlined() WHERE music = 'rock';

-- UPDATE / DELETE cannot use unconsented values in WHERE
BEGIN;
UPDATE profiles SET name = 'probed' WHERE music = 'rock';
DELETE FROM profiles WHERE music = 'pop';
UPDATE profiles SET name = upper(name) WHERE music = 'jazz' RETURNING id, name, music, sports;
ROLLBACK;

-- prepared statements and cursors follow purpose and consent changes
PREPARE q AS SELECT id, music FROM profiles ORDER BY id;
EXECUTE q;
RESET ROLE;
SELECT profile_guard.grant_consent('2', 'recommendation', ARRAY['interest.music']) > 0;
SET ROLE regress_app;
EXECUTE q;
RESET ROLE;
SELECT profile_guard.withdraw_consent('2', 'recommendation', ARRAY['interest.music']);
SET ROLE regress_app;
EXECUTE q;
SET profile_guard.purpose = 'marketing';
EXECUTE q;
RESET profile_guard.purpose;
EXECUTE q;
SET profile_guard.purpose = 'recommendation';
BEGIN;
DECLARE c CURSOR FOR SELECT id, sports, music FROM profiles ORDER BY id;
FETCH 2 FROM c;
FETCH ALL FROM c;
COMMIT;

-- copies out of the table are gated: INSERT … SELECT, CTAS, COPY
CREATE TABLE regress_scratch.copy1 AS SELECT * FROM profiles;
SELECT id, music FROM regress_scratch.copy1 ORDER BY id;
CREATE TABLE regress_scratch.copy2 (id int, music text);
INSERT INTO regress_scratch.copy2 SELECT id, music FROM profiles;
SELECT * FROM regress_scratch.copy2 ORDER BY id;
COPY profiles TO STDOUT;
COPY profiles (id, music) TO STDOUT;
COPY (SELECT id, music FROM profiles WHERE music IS NOT NULL) TO STDOUT;
SELECT music FROM ONLY profiles ORDER BY id;

-- marketing: opted-out subject 4 is hidden; only subject 1 remains
SET profile_guard.purpose = 'marketing';
SELECT id, sports, music FROM profiles ORDER BY id;
-- opting back in shows subject 4 at once
RESET ROLE;
SELECT profile_guard.opt_in('4');
SET ROLE regress_app;
SELECT id, sports, music FROM profiles ORDER BY id;

-- SET LOCAL ends with the transaction (the pooler pattern)
RESET profile_guard.purpose;
BEGIN;
SET LOCAL profile_guard.purpose = 'recommendation';
SELECT count(music) FROM profiles;
COMMIT;
SELECT count(music) FROM profiles;

-- a role not allowed the purpose cannot declare it
RESET ROLE;
GRANT SELECT ON profiles TO regress_other;
SET ROLE regress_other;
SET profile_guard.purpose = 'recommendation';
SELECT music FROM profiles;
-- a plan cached for one role is not reused for another (SET ROLE)
RESET ROLE;
GRANT SELECT ON profiles TO regress_bypass;
SET ROLE regress_app;
PREPARE r AS SELECT id, music FROM profiles ORDER BY id;
EXECUTE r;
RESET ROLE;
SET ROLE regress_bypass;
EXECUTE r;
-- bypass: BYPASSRLS roles and superusers read raw values
SELECT id, music FROM profiles ORDER BY id;
RESET ROLE;
SET ROLE regress_app;
EXECUTE r;
RESET ROLE;
SELECT id, music FROM profiles ORDER BY id;

-- declassify: the column is plain data again (the table is still guarded:
-- under a purpose, its rows are those of eligible subjects)
SELECT profile_guard.declassify('profiles', 'music');
SET ROLE regress_app;
SELECT id, music FROM profiles ORDER BY id;
RESET ROLE;

DROP FUNCTION f_inlined(), f_scalar(int), f_plpgsql(int), f_dynamic(int);
DROP SCHEMA regress_scratch CASCADE;
DROP VIEW early_view;
DROP TABLE profiles;
RESET ROLE;
\i test/lib/rules_check.sql
SELECT * FROM pg_temp.rules_disagree();
SELECT * FROM pg_temp.bulk_differences();

DROP EXTENSION profile_guard CASCADE;
DROP ROLE regress_app;
DROP ROLE regress_other;
DROP ROLE regress_bypass;
