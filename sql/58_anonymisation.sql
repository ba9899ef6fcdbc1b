--
-- 58_anonymisation: on_erase => 'anonymise' only where it holds (rule 12,
-- PIPL art. 73).  protect() refuses a table with a column declared neither
-- identifying (anonymise_columns) nor not identifying (keep_columns); the
-- sweep removes the identifying columns and the tags of identifying
-- categories and generalises the others; a column added later is reported
-- by assess() and treated as identifying, a NOT NULL one makes the sweep
-- delete instead.
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
CREATE FUNCTION pg_temp.guarded() RETURNS text LANGUAGE sql AS $$
	SELECT md5(coalesce(string_agg(g::text, ';' ORDER BY relid::text), '-')) FROM guarded_table g
$$;

SELECT define_tag('contact.phone', 'contact');
SELECT define_tag('device.model', 'device');
SELECT define_tag('interest.sports', 'preference');
SELECT define_tag('behavior.visits', 'behavior');
SELECT define_tag('behavior.spend', 'behavior');
SELECT define_tag('behavior.last_visit', 'behavior');
SELECT define_tag('health.condition', 'medical_health');
SELECT define_purpose('rec', 'recommendations');
SELECT register_subject(s::text) FROM generate_series(1, 4) s;
SELECT grant_consent(s::text, 'rec', ARRAY['contact.*', 'device.*', 'interest.*', 'behavior.*', 'health.*'], separate => true) > 0 AS granted FROM generate_series(1, 4) s;

CREATE TABLE people (id int PRIMARY KEY, name text, city text, phone text, model text, sports text,
					 visits int, spend numeric, last_visit date, health text, collected timestamptz);

-- 1. refused while a column is declared nothing of, and nothing changes
SELECT pg_temp.guarded() AS before \gset
SELECT pg_temp.err($$SELECT profile_guard.protect('people', 'id', 'collected', on_erase => 'anonymise')$$);
SELECT pg_temp.err($$SELECT profile_guard.protect('people', 'id', 'collected', on_erase => 'anonymise',
	anonymise_columns => ARRAY['name'], keep_columns => ARRAY['phone', 'model', 'sports', 'visits', 'spend', 'last_visit', 'health'])$$);
-- bad declarations
SELECT pg_temp.err($$SELECT profile_guard.protect('people', 'id', on_erase => 'delete', keep_columns => ARRAY['city'])$$);
SELECT pg_temp.err($$SELECT profile_guard.protect('people', 'id', on_erase => 'anonymise', anonymise_columns => ARRAY['nope'])$$);
SELECT pg_temp.err($$SELECT profile_guard.protect('people', 'id', on_erase => 'anonymise', keep_columns => ARRAY['id'])$$);
SELECT pg_temp.err($$SELECT profile_guard.protect('people', 'id', on_erase => 'anonymise', anonymise_columns => ARRAY['name'], keep_columns => ARRAY['name'])$$);
SELECT pg_temp.err($$SELECT profile_guard.protect('people', 'id', on_erase => 'anonymise', anonymise_columns => ARRAY[NULL]::name[])$$);
SELECT pg_temp.err($$SELECT profile_guard.protect('people', 'id', on_erase => 'anonymise', anonymise_columns => NULL)$$);
SELECT pg_temp.guarded() = :'before' AS unchanged;

-- 2. declared: name identifies; the rest is kept (tag columns as their tag allows)
SELECT protect('people', 'id', 'collected', on_erase => 'anonymise', anonymise_columns => ARRAY['name'],
			   keep_columns => ARRAY['city', 'phone', 'model', 'sports', 'visits', 'spend', 'last_visit', 'health']);
SELECT anonymise_columns, keep_columns FROM guarded_table WHERE relid = 'people'::regclass;
SELECT classify('people', 'phone', 'contact.phone');
SELECT classify('people', 'model', 'device.model');
SELECT classify('people', 'sports', 'interest.sports');
SELECT classify('people', 'visits', 'behavior.visits');
SELECT classify('people', 'spend', 'behavior.spend');
SELECT classify('people', 'last_visit', 'behavior.last_visit');
SELECT classify('people', 'health', 'health.condition');
INSERT INTO people VALUES
	(1, 'Ann', 'Hangzhou', '13800000001', 'phone-x', 'tennis', 37, 123.456, '2024-05-17', 'asthma', '2024-05-17 10:00+00'),
	(2, 'Bob', 'Suzhou', '13800000002', 'phone-y', 'golf', 4, 9.99, '2024-06-02', NULL, '2024-06-02 10:00+00'),
	(3, 'Cat', 'Wuxi', '13800000003', 'phone-z', 'judo', 120, 0.04, '2024-07-30', NULL, '2024-07-30 10:00+00');
SELECT clause, status, detail FROM assess() WHERE clause = '§10 (anonymisation)';

-- the sweep anonymises 1: no name, phone (contact) nor model (device);
-- visits to a multiple of ten, spend to one decimal, dates to the month;
-- city and sports kept; the sensitive health value gone
SELECT request_erasure('1') > 0 AS requested;
SELECT relation, tag, reason, action, rows FROM sweep() ORDER BY 1, 2, 3, 4;
SELECT id < 0 AS anonymous, name, city, phone IS NOT NULL AS has_phone, model, sports, visits, spend, last_visit,
	   health, collected = date_trunc('month', collected, 'UTC') AS month_only
FROM people ORDER BY id DESC;

-- 3. a column added later is declared nothing of: a warning, assess()
-- reports it, and the sweep sets it to NULL as identifying
SET client_min_messages = warning;
ALTER TABLE people ADD COLUMN nickname text;
UPDATE people SET nickname = 'bobby' WHERE id = 2;
SELECT clause, status, detail FROM assess() WHERE clause = '§10 (anonymisation)';
SELECT request_erasure('2') > 0 AS requested;
SELECT relation, tag, reason, action, rows FROM sweep() ORDER BY 1, 2, 3, 4;
SELECT id < 0 AS anonymous, name, city, visits, nickname FROM people WHERE id < 0 ORDER BY visits;
-- declared not identifying, it is kept from then on
SELECT set_keep_columns('people', ARRAY['city', 'phone', 'model', 'sports', 'visits', 'spend', 'last_visit', 'health', 'nickname']);
SELECT clause, status, detail FROM assess() WHERE clause = '§10 (anonymisation)';
-- set_anonymise_columns and set_keep_columns move a column between the lists
SELECT set_anonymise_columns('people', ARRAY['name', 'nickname']);
SELECT anonymise_columns, keep_columns FROM guarded_table WHERE relid = 'people'::regclass;
SELECT pg_temp.guarded() AS before \gset
SELECT pg_temp.err($$SELECT profile_guard.set_keep_columns('people', ARRAY['id'])$$);
SELECT pg_temp.err($$SELECT profile_guard.set_keep_columns('people', NULL)$$);
SELECT pg_temp.err($$SELECT profile_guard.set_keep_columns('people', ARRAY['nope'])$$);
SELECT pg_temp.guarded() = :'before' AS unchanged;

-- 4. a NOT NULL column declared nothing of cannot be set to NULL: the
-- sweep deletes the rows instead of calling them anonymised
ALTER TABLE people ADD COLUMN code text NOT NULL DEFAULT 'c';
SELECT request_erasure('3') > 0 AS requested;
SELECT relation, tag, reason, action, rows FROM sweep() ORDER BY 1, 2, 3, 4;
SELECT count(*) FILTER (WHERE id = 3) AS rows_of_3, count(*) AS rows FROM people;
RESET client_min_messages;

-- 5. the long shape: the value of a tag of an identifying category goes
-- with the subject, other values stay
SET client_min_messages = warning;
CREATE TABLE facts (uid text, tag text, value text, collected date);
SELECT protect('facts', 'uid', 'collected', 'tag', 'value', on_erase => 'anonymise');
INSERT INTO facts VALUES ('4', 'contact.phone', '13800000004', '2024-05-17'), ('4', 'interest.sports', 'polo', '2024-05-17'),
	('4', 'device.model', 'phone-w', '2024-05-17');
SELECT request_erasure('4') > 0 AS requested;
SELECT relation, tag, reason, action, rows FROM sweep() ORDER BY 1, 2, 3, 4;
SELECT uid IS NULL AS anonymous, tag, value, collected FROM facts ORDER BY tag;

DROP TABLE people, facts;
DROP EXTENSION profile_guard;
