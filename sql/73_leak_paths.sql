--
-- 73_leak_paths: what could show or betray tag values past the gates.
-- Errors: no value of a guarded table in any error data, caught or emitted
-- (row-level security of the extension's own).  Generated columns,
-- extended statistics and constraints on tag columns are refused.
--
CREATE EXTENSION profile_guard;
SET search_path = public, profile_guard;
SET client_min_messages = warning;
\set SHOW_CONTEXT never
-- what a PL/pgSQL handler gets
CREATE FUNCTION public.caught(q text) RETURNS text LANGUAGE plpgsql AS $$
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
CREATE FUNCTION pg_temp.policies() RETURNS TABLE (tbl regclass, rls boolean, policy name, permissive boolean)
LANGUAGE sql AS $$
	SELECT c.oid::regclass, c.relrowsecurity, p.polname, p.polpermissive
	FROM pg_class c LEFT JOIN pg_policy p ON p.polrelid = c.oid
	WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p')
	ORDER BY 1, 3
$$;

SELECT define_tag('interest.luxury', 'preference');
SELECT define_tag('interest.sport', 'preference');
SELECT define_tag('health.condition', 'medical_health');
SELECT define_purpose('ads', 'advertising', ARRAY['interest.sport']);
SELECT define_purpose('profiling', 'profiling', ARRAY['interest.*']);
SELECT register_subject(s::text) FROM generate_series(1, 5) s;
SELECT grant_consent(s::text, p, ARRAY['interest.*'])
FROM generate_series(1, 5) s, unnest(ARRAY['ads', 'profiling']) p;
CREATE ROLE regress_leak_app;
SELECT allow_purpose('regress_leak_app', 'ads');
SELECT allow_purpose('regress_leak_app', 'profiling');

CREATE TABLE cities (city text PRIMARY KEY);
INSERT INTO cities VALUES ('c1');
CREATE TABLE profile (
	user_id int PRIMARY KEY,
	collected_at date NOT NULL,
	city text REFERENCES cities,
	luxury text,
	sport text,
	note text CHECK (note <> 'none')
);
SELECT protect('profile', 'user_id', 'collected_at');
SELECT classify('profile', 'luxury', 'interest.luxury');
SELECT classify('profile', 'sport', 'interest.sport');
INSERT INTO profile VALUES (4, '2024-01-01', 'c1', 'golf-club-4', 'tennis'),
	(5, '2024-01-01', NULL, 'yacht-5', 'sailing');
CREATE TABLE facts (user_id int, tag text, value text, noted date NOT NULL);
SELECT protect('facts', 'user_id', tag_column => 'tag', value_column => 'value');
INSERT INTO facts VALUES (4, 'interest.sport', 'tennis-4', '2024-01-01'),
	(5, 'interest.luxury', 'yacht-5', '2024-01-01');
GRANT SELECT, UPDATE ON profile, facts TO regress_leak_app;
-- row-level security of the extension's: protect enabled it
SELECT * FROM pg_temp.policies();

-- 1. errors: as an application role, no value of the table in any detail
SET ROLE regress_leak_app;
-- no purpose: clearing the collection time of a row that holds tags is
-- refused by the collection check (before the NOT NULL constraint, whose
-- failing row would be any subject's); neither quotes the row
SELECT caught('UPDATE profile SET collected_at = NULL WHERE user_id = 5');
UPDATE profile SET collected_at = NULL WHERE user_id = 5;
SET profile_guard.purpose = 'ads';
-- luxury is masked for ads: neither a check violation nor a view's check
-- option quotes it
SELECT luxury, sport FROM profile WHERE user_id = 4;
SELECT caught('UPDATE profile SET note = ''none'' WHERE user_id = 4');
CREATE TEMP VIEW recent AS SELECT * FROM profile WHERE collected_at > '2023-01-01' WITH CHECK OPTION;
SELECT caught('UPDATE recent SET collected_at = ''2000-01-01'' WHERE user_id = 4');
-- unique and foreign-key violations: the key goes (a subject change
-- carrying luxury, masked for ads, is refused first; under a purpose that
-- reads every tag of the row it reaches the unique index)
SELECT caught('UPDATE profile SET user_id = 5 WHERE user_id = 4');
SET profile_guard.purpose = 'profiling';
SELECT caught('UPDATE profile SET user_id = 5 WHERE user_id = 4');
SET profile_guard.purpose = 'ads';
SELECT caught('UPDATE profile SET city = ''c9'' WHERE user_id = 4');
-- long shape
SELECT caught('UPDATE facts SET noted = NULL WHERE user_id = 4');
-- ordinary reads and writes are unaffected
UPDATE profile SET sport = 'golf' WHERE user_id = 4 RETURNING user_id, luxury, sport;
SELECT user_id, tag, value FROM facts ORDER BY user_id;
-- EXPLAIN ANALYZE would count the tag rows a gate removes after the role's
-- own conditions found them (5's interest.luxury row is hidden from ads):
-- refused for a statement that reads a guarded table, whatever it finds;
-- EXPLAIN alone runs nothing
SELECT caught($$EXPLAIN (ANALYZE, COSTS OFF) SELECT 1 FROM facts WHERE user_id = 5 AND tag = 'interest.luxury'$$);
SELECT caught($$EXPLAIN (ANALYZE, COSTS OFF) SELECT 1 FROM facts WHERE user_id = 4 AND tag = 'interest.sport'$$);
SELECT caught($$EXPLAIN ANALYZE SELECT count(*) FROM profile$$);
SELECT caught($$EXPLAIN (COSTS OFF) SELECT 1 FROM facts WHERE user_id = 5 AND tag = 'interest.luxury'$$);
SELECT caught($$EXPLAIN (ANALYZE false, COSTS OFF) SELECT 1 FROM facts$$);
SELECT caught($$EXPLAIN (ANALYZE, COSTS OFF) SELECT 1$$);
-- the same through a prepared statement, CREATE TABLE AS, and a PL/pgSQL
-- loop over the plan's lines
PREPARE luxury_probe(int) AS SELECT 1 FROM facts WHERE user_id = $1 AND tag = 'interest.luxury';
SELECT caught($$EXPLAIN (ANALYZE, COSTS OFF) EXECUTE luxury_probe(5)$$);
SELECT caught($$EXPLAIN (ANALYZE, COSTS OFF) CREATE TEMP TABLE probe AS SELECT 1 FROM facts WHERE user_id = 5 AND tag = 'interest.luxury'$$);
CREATE FUNCTION pg_temp.plan_lines() RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE line text;
BEGIN
	FOR line IN EXPLAIN (ANALYZE, COSTS OFF) SELECT 1 FROM facts WHERE user_id = 5 AND tag = 'interest.luxury' LOOP
		RETURN NEXT line;
	END LOOP;
END $$;
SELECT caught('SELECT pg_temp.plan_lines()');
DROP FUNCTION pg_temp.plan_lines();
DEALLOCATE luxury_probe;
RESET profile_guard.purpose;
RESET ROLE;
-- the owner (here a superuser) reads raw values anyway: its errors keep them
SELECT caught('UPDATE profile SET note = ''none'' WHERE user_id = 4');
SELECT caught($$EXPLAIN (ANALYZE, COSTS OFF) SELECT 1 FROM facts WHERE user_id = 5$$);

-- the owner's policies keep their meaning: ours turns restrictive while the
-- owner has a permissive one, permissive again when it goes
CREATE POLICY own ON profile USING (user_id < 5);
SELECT * FROM pg_temp.policies() WHERE tbl = 'profile'::regclass;
SET ROLE regress_leak_app;
SELECT user_id FROM profile ORDER BY 1;
RESET ROLE;
DROP POLICY own ON profile;
SELECT * FROM pg_temp.policies() WHERE tbl = 'profile'::regclass;
SELECT caught('ALTER TABLE profile DISABLE ROW LEVEL SECURITY');
-- unprotect removes it; a table with row-level security of its own keeps it
CREATE TABLE own_rls (user_id int, v text);
ALTER TABLE own_rls ENABLE ROW LEVEL SECURITY;
CREATE POLICY mine ON own_rls USING (true);
SELECT protect('own_rls', 'user_id');
SELECT unprotect('facts');
SELECT unprotect('own_rls');
SELECT * FROM pg_temp.policies() WHERE tbl IN ('facts'::regclass, 'own_rls'::regclass);
-- a new partition of a guarded table gets it too
CREATE TABLE parts (user_id int, v text) PARTITION BY RANGE (user_id);
CREATE TABLE parts_1 PARTITION OF parts FOR VALUES FROM (0) TO (10);
SELECT protect('parts', 'user_id');
CREATE TABLE parts_2 PARTITION OF parts FOR VALUES FROM (10) TO (20);
SELECT * FROM pg_temp.policies() WHERE tbl::text LIKE 'parts%';

-- 2. generated columns and statistics computed from a tag
CREATE TABLE wide (user_id int PRIMARY KEY, luxury text, health text,
	luxury_up text GENERATED ALWAYS AS (upper(luxury)) STORED);
SELECT protect('wide', 'user_id');
SELECT caught($$SELECT classify('wide', 'luxury', 'interest.luxury')$$);
-- classified with another tag, it still shows this one
SELECT classify('wide', 'luxury_up', 'interest.sport');
SELECT caught($$SELECT classify('wide', 'luxury', 'interest.luxury')$$);
SELECT declassify('wide', 'luxury_up');
SELECT classify('wide', 'luxury_up', 'interest.luxury');
CREATE STATISTICS wide_lux ON (lower(luxury)) FROM wide;
CREATE STATISTICS wide_lux2 ON user_id, luxury FROM wide;
CREATE STATISTICS wide_id ON user_id, (user_id + 1) FROM wide;
SELECT classify('wide', 'luxury', 'interest.luxury');
SELECT stxname FROM pg_statistic_ext WHERE stxrelid = 'wide'::regclass ORDER BY 1;
SELECT caught($$SELECT declassify('wide', 'luxury_up')$$);
-- later additions are refused
SELECT caught('ALTER TABLE wide ADD COLUMN luxury_len int GENERATED ALWAYS AS (length(luxury)) STORED');
SELECT caught('CREATE STATISTICS wide_lux3 ON (luxury || user_id::text) FROM wide');
ALTER TABLE wide ADD COLUMN note text GENERATED ALWAYS AS (user_id::text) STORED;
-- a sensitive tag cannot sit in a generated column (it is stored encrypted)
ALTER TABLE wide ADD COLUMN health_up text GENERATED ALWAYS AS (upper(health)) STORED;
SELECT caught($$SELECT classify('wide', 'health_up', 'health.condition')$$);
-- long shape: the value column
CREATE TABLE long2 (user_id int, tag text, value text,
	value_up text GENERATED ALWAYS AS (upper(value)) STORED);
SELECT caught($$SELECT protect('long2', 'user_id', tag_column => 'tag', value_column => 'value')$$);
ALTER TABLE long2 DROP COLUMN value_up;
CREATE STATISTICS long2_v ON (lower(value)) FROM long2;
SELECT caught($$SELECT protect('long2', 'user_id', tag_column => 'tag', value_column => 'value')$$);
DROP STATISTICS long2_v;
SELECT protect('long2', 'user_id', tag_column => 'tag', value_column => 'value');
SELECT caught('CREATE STATISTICS long2_v ON (lower(value)) FROM long2');
SELECT caught('ALTER TABLE long2 ADD COLUMN v2 text GENERATED ALWAYS AS (value) STORED');

-- 3. constraints on tag columns
CREATE TABLE brands (brand text PRIMARY KEY);
CREATE TABLE shop (user_id int PRIMARY KEY, brand text REFERENCES brands ON UPDATE CASCADE,
	club text UNIQUE, slot int4range, EXCLUDE USING gist (slot WITH &&));
SELECT protect('shop', 'user_id');
SELECT caught($$SELECT classify('shop', 'brand', 'interest.luxury')$$);
SELECT caught($$SELECT classify('shop', 'club', 'interest.sport')$$);
SELECT caught($$SELECT classify('shop', 'slot', 'interest.sport')$$);
ALTER TABLE shop DROP CONSTRAINT shop_brand_fkey, DROP CONSTRAINT shop_club_key, DROP CONSTRAINT shop_slot_excl;
CREATE UNIQUE INDEX shop_club ON shop (lower(club));
SELECT caught($$SELECT classify('shop', 'club', 'interest.sport')$$);
DROP INDEX shop_club;
SELECT classify('shop', 'brand', 'interest.luxury');
SELECT classify('shop', 'club', 'interest.sport');
-- later additions, on the table or referencing it, are refused
SELECT caught('ALTER TABLE shop ADD FOREIGN KEY (brand) REFERENCES brands ON UPDATE CASCADE');
SELECT caught('CREATE UNIQUE INDEX ON shop (club) WHERE club IS NOT NULL');
SELECT caught('ALTER TABLE shop ADD UNIQUE (user_id, club)');
CREATE UNIQUE INDEX shop_user ON shop (user_id, slot);
-- long shape: the value column
SELECT caught('ALTER TABLE long2 ADD UNIQUE (user_id, value)');
ALTER TABLE long2 ADD UNIQUE (user_id, tag);

-- 4. CHECK constraints and index expressions or predicates over a tag
-- column: a write of another column (or a validation) refused by a check
-- tells what the cell holds; an expression index's statistics and a
-- partial index's row count show values.  Refused at classify and later
ALTER TABLE shop ADD COLUMN vip boolean, ADD COLUMN tier text,
	ADD CONSTRAINT shop_tier CHECK (NOT vip OR tier IS NOT NULL);
CREATE INDEX shop_tier_lower ON shop (lower(tier));
CREATE INDEX shop_tier_gold ON shop (user_id) WHERE tier = 'gold';
SELECT caught($$SELECT classify('shop', 'tier', 'interest.sport')$$);
ALTER TABLE shop DROP CONSTRAINT shop_tier;
SELECT caught($$SELECT classify('shop', 'tier', 'interest.sport')$$);
DROP INDEX shop_tier_gold;
SELECT caught($$SELECT classify('shop', 'tier', 'interest.sport')$$);
DROP INDEX shop_tier_lower;
SELECT classify('shop', 'tier', 'interest.sport');
SELECT caught($$ALTER TABLE shop ADD CONSTRAINT shop_tier CHECK (tier <> 'gold') NOT VALID$$);
SELECT caught('CREATE INDEX ON shop (lower(tier))');
SELECT caught('CREATE INDEX ON shop (user_id) WHERE tier IS NOT NULL');
-- a plain index on the column, and expressions over other columns, stay
CREATE INDEX shop_tier_plain ON shop (tier);
CREATE INDEX shop_vip ON shop (user_id) WHERE vip;
ALTER TABLE shop ADD CONSTRAINT shop_vip_known CHECK (vip IS NOT NULL) NOT VALID;
-- long shape: the value column
SELECT caught($$CREATE INDEX ON long2 (user_id) WHERE value = 'gold'$$);
SELECT caught($$ALTER TABLE long2 ADD CHECK (value <> 'gold')$$);

-- 5. a tag column of a domain type: the domain's owner could add a
-- constraint that PostgreSQL checks on every stored value (ALTER DOMAIN
-- scans the tables past the gates) and on every value written; nor an
-- array of one.  A partition key on a tag column: the partition a row
-- lives in (tableoid, each partition's row count) tells its value
CREATE DOMAIN label AS text;
CREATE TABLE dom_wide (user_id int, luxury label, sports label[]);
SELECT protect('dom_wide', 'user_id');
SELECT caught($$SELECT profile_guard.classify('dom_wide', 'luxury', 'interest.luxury')$$);
SELECT caught($$SELECT profile_guard.classify('dom_wide', 'sports', 'interest.sport')$$);
CREATE TABLE dom_long (user_id int, tag text, value label);
SELECT caught($$SELECT profile_guard.protect('dom_long', 'user_id', tag_column => 'tag', value_column => 'value')$$);
SELECT count(*) AS guarded FROM guarded_table WHERE relid = 'dom_long'::regclass;
-- a domain inside a composite type or a range: its constraint sees every
-- value written
CREATE TYPE label_pair AS (first label, second text);
CREATE TYPE label_range AS RANGE (subtype = label);
CREATE TABLE dom_made (user_id int, luxury label_pair, sports label_range);
SELECT protect('dom_made', 'user_id');
SELECT caught($$SELECT profile_guard.classify('dom_made', 'luxury', 'interest.luxury')$$);
SELECT caught($$SELECT profile_guard.classify('dom_made', 'sports', 'interest.sport')$$);
CREATE TABLE by_luxury (user_id int, luxury text) PARTITION BY LIST (luxury);
CREATE TABLE by_luxury_yacht PARTITION OF by_luxury FOR VALUES IN ('yacht');
SELECT protect('by_luxury', 'user_id');
SELECT caught($$SELECT profile_guard.classify('by_luxury', 'luxury', 'interest.luxury')$$);
CREATE TABLE by_user (user_id int, luxury text) PARTITION BY LIST (user_id);
CREATE TABLE by_user_1 PARTITION OF by_user FOR VALUES IN (1);
SELECT protect('by_user', 'user_id');
SELECT classify('by_user', 'luxury', 'interest.luxury');
SELECT caught($$CREATE TABLE by_user_2 PARTITION OF by_user FOR VALUES IN (2) PARTITION BY LIST (luxury)$$);
SELECT caught($$CREATE TABLE by_user_3 PARTITION OF by_user FOR VALUES IN (3) PARTITION BY LIST (lower(luxury))$$);
-- the whole row as the partition key, or in an index expression
SELECT caught($$CREATE TABLE by_user_4 PARTITION OF by_user FOR VALUES IN (4) PARTITION BY LIST ((by_user_4))$$);
SELECT caught($$CREATE INDEX ON by_user_1 ((hash_record(by_user_1)))$$);
SELECT count(*) AS partitions FROM pg_inherits WHERE inhparent = 'by_user'::regclass;
-- a tag column of a domain classified before 1.2 (written into the catalog
-- here): its domain can no longer be constrained, whoever owns it
INSERT INTO classified_column (relid, column_name, tag) VALUES ('dom_wide', 'luxury', 'interest.luxury');
ALTER DOMAIN label OWNER TO regress_leak_app;
SET ROLE regress_leak_app;
SELECT caught($$ALTER DOMAIN label ADD CONSTRAINT label_probe CHECK (VALUE <> 'yacht')$$);
SELECT caught($$ALTER DOMAIN label SET NOT NULL$$);
ALTER DOMAIN label SET DEFAULT 'none';
RESET ROLE;
DELETE FROM classified_column WHERE relid = 'dom_wide'::regclass;
DROP TABLE dom_wide, dom_long, dom_made, by_luxury, by_user;
DROP TYPE label_pair, label_range;
DROP DOMAIN label;

RESET client_min_messages;
DROP VIEW recent;
DROP TABLE profile, facts, cities, own_rls, parts, wide, long2, shop, brands;
DROP FUNCTION public.caught(text);
DROP EXTENSION profile_guard;
DROP ROLE regress_leak_app;
