-- Read path: the row gate whatever a statement names (rule 2), one purpose
-- per statement, and gate functions that answer only where the planner
-- placed them.
CREATE EXTENSION profile_guard;
SET client_min_messages = warning;
CREATE ROLE regress_gr_app LOGIN;

DO $setup$ BEGIN
PERFORM profile_guard.define_tag('interest.sports', 'preference');
PERFORM profile_guard.define_purpose('recommendation', 'recommend content', ARRAY['interest.*']);
PERFORM profile_guard.define_purpose('ads', 'targeted ads', ARRAY['interest.*']);
PERFORM profile_guard.allow_purpose('regress_gr_app', p) FROM unnest(ARRAY['recommendation', 'ads']) p;
PERFORM profile_guard.register_subject(s) FROM unnest(ARRAY['1', '2', '3']) s;
-- 1 and 2 consent to recommendation, only 3 to ads
PERFORM profile_guard.grant_consent(s, 'recommendation', ARRAY['interest.*']) FROM unnest(ARRAY['1', '2']) s;
PERFORM profile_guard.grant_consent('3', 'ads', ARRAY['interest.*']);
END $setup$;

-- wide shape
CREATE TABLE wide (user_id int PRIMARY KEY, nickname text, sports text);
SELECT profile_guard.protect('wide', 'user_id');
SELECT profile_guard.classify('wide', 'sports', 'interest.sports');
INSERT INTO wide VALUES (1, 'ann', 'golf'), (2, 'bob', 'judo'), (3, 'cy', 'polo');
CREATE VIEW wide_names AS SELECT user_id, nickname FROM wide;
-- long shape
CREATE TABLE tags (user_id text, tag text, value text, collected_at date DEFAULT '2024-01-01');
SELECT profile_guard.protect('tags', 'user_id', tag_column => 'tag', value_column => 'value');
INSERT INTO tags (user_id, tag, value) VALUES ('1', 'interest.sports', 'golf'),
	('2', 'interest.sports', 'judo'), ('3', 'interest.sports', 'polo');
GRANT SELECT, UPDATE, DELETE ON wide, tags TO regress_gr_app;
GRANT SELECT ON wide_names TO regress_gr_app;

SET ROLE regress_gr_app;

-- 1. wide shape, no purpose: non-tag columns stay readable
SELECT count(*) FROM wide;
SELECT user_id, nickname FROM wide ORDER BY 1;
-- under a purpose, every read sees only the subjects eligible for it
SET profile_guard.purpose = 'recommendation';
SELECT count(*) FROM wide;
SELECT user_id FROM wide ORDER BY 1;
SELECT nickname FROM wide_names ORDER BY 1;
SELECT (SELECT count(*) FROM wide) AS sub, (SELECT max(user_id) FROM wide) AS top;
WITH w AS (SELECT user_id FROM wide) SELECT count(*) FROM w;
SELECT EXISTS (SELECT 1 FROM wide WHERE user_id = 3) AS sees_3;
-- prepared statements decide when they run
PREPARE wide_count AS SELECT count(*) FROM wide;
EXECUTE wide_count;
SET profile_guard.purpose = 'ads';
EXECUTE wide_count;
RESET profile_guard.purpose;
EXECUTE wide_count;
-- cursors
SET profile_guard.purpose = 'ads';
BEGIN;
DECLARE c CURSOR FOR SELECT user_id FROM wide ORDER BY 1;
FETCH ALL FROM c;
COMMIT;
-- UPDATE and DELETE reach only eligible subjects
UPDATE wide SET nickname = nickname || '!' RETURNING user_id;
BEGIN;
DELETE FROM wide WHERE user_id IN (1, 3) RETURNING user_id;
ROLLBACK;
RESET profile_guard.purpose;
SELECT user_id, nickname FROM wide ORDER BY 1;

-- long shape: any read is a tag read, purpose required
SELECT user_id, count(*) FROM tags GROUP BY 1 ORDER BY 1;
SELECT user_id, collected_at FROM tags ORDER BY 1;
SELECT count(*) FROM tags;
SELECT 1 FROM tags LIMIT 1;
DELETE FROM tags WHERE user_id = '1';
UPDATE tags SET collected_at = '2024-02-02';
SET profile_guard.purpose = 'recommendation';
SELECT user_id, count(*) FROM tags GROUP BY 1 ORDER BY 1;
SELECT user_id, collected_at FROM tags ORDER BY 1;
SELECT count(*) FROM tags;
PREPARE tags_count AS SELECT count(*) FROM tags;
EXECUTE tags_count;
SET profile_guard.purpose = 'ads';
EXECUTE tags_count;
UPDATE tags SET collected_at = '2024-03-03' RETURNING user_id;
RESET profile_guard.purpose;
EXECUTE tags_count;

-- 2. one purpose per statement: a change made during the statement counts
-- from the next statement on
SET profile_guard.purpose = 'recommendation';
SELECT user_id, sports FROM wide
 WHERE set_config('profile_guard.purpose', 'ads', false) IS NOT NULL ORDER BY 1;
SHOW profile_guard.purpose;
SELECT user_id, sports FROM wide ORDER BY 1;
SET profile_guard.purpose = 'recommendation';
SELECT user_id, value FROM tags
 WHERE set_config('profile_guard.purpose', 'ads', false) IS NOT NULL ORDER BY 1;
SELECT user_id, value FROM tags ORDER BY 1;
-- a cursor keeps the purpose it was opened under
SET profile_guard.purpose = 'recommendation';
BEGIN;
DECLARE c2 CURSOR FOR SELECT user_id, sports FROM wide ORDER BY 1;
FETCH 1 FROM c2;
SET LOCAL profile_guard.purpose = 'ads';
FETCH ALL FROM c2;
COMMIT;

-- 3. gate functions answer only where the planner placed them
RESET ROLE;
SELECT profile_guard.usage_reset();
SELECT profile_guard._row_gate(1, 'wide'::regclass);
SELECT profile_guard._purpose_row_gate(1, 'wide'::regclass);
SELECT profile_guard._tag_row_gate('1'::text, 'interest.sports', 'tags'::regclass);
SET ROLE regress_gr_app;
SET profile_guard.purpose = 'recommendation';
SELECT profile_guard._row_gate(42, 'wide'::regclass);
SELECT profile_guard._tag_row_gate('42'::text, 'interest.sports', 'tags'::regclass);
SELECT profile_guard._cell_gate(1, 1, 'x'::text);
SELECT profile_guard._sensitive_cell_gate(1, 1, 'interest.sports', 'x'::text);
SELECT profile_guard._long_value_gate('1'::text, 'interest.sports', 'x'::text);
SELECT profile_guard._row_mask(ROW(1, 'ann', 'golf')::wide, 'wide'::regclass);
-- in a query on the table, or through a view or an SQL function, too
SELECT user_id FROM wide WHERE profile_guard._row_gate(user_id + 40, 'wide'::regclass);
CREATE TEMP VIEW probe AS SELECT profile_guard._row_gate(s, 'wide'::regclass) FROM generate_series(40, 41) s;
SELECT * FROM probe;
CREATE FUNCTION pg_temp.probe(int) RETURNS boolean LANGUAGE sql AS
	$$ SELECT profile_guard._row_gate($1, 'wide'::regclass) $$;
SELECT pg_temp.probe(42);
RESET ROLE;
-- the refused calls moved no counter
SELECT count(*) FROM profile_guard.usage WHERE role = 'regress_gr_app';
SET ROLE regress_gr_app;
SET profile_guard.purpose = 'recommendation';
-- the planner's own gates keep working, in views and functions alike
SELECT user_id, sports FROM wide ORDER BY 1;
CREATE FUNCTION pg_temp.sports_of(int) RETURNS text LANGUAGE sql STABLE AS
	$$ SELECT sports FROM wide WHERE user_id = $1 $$;
SELECT pg_temp.sports_of(2), pg_temp.sports_of(3);
RESET ROLE;
SELECT purpose, tag, statements > 0 AS counted, cells_served
  FROM profile_guard.usage WHERE role = 'regress_gr_app' ORDER BY 1, 2;

DROP TABLE wide, tags CASCADE;
DROP OWNED BY regress_gr_app;
DROP EXTENSION profile_guard;
DROP ROLE regress_gr_app;
