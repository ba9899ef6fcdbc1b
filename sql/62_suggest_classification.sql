--
-- 62_suggest_classification: unclassified columns that look like personal
-- information, from names and comments (English, pinyin, Chinese) and from
-- a bounded sample of content (ID numbers with a valid check digit, mobile
-- numbers, e-mail, bank cards with a valid Luhn digit, coordinates); the
-- evidence never quotes a value.
--
CREATE EXTENSION profile_guard;
SET search_path = public;
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

-- the detectors on their own (check digits computed independently)
SELECT v, profile_guard._valid_cn_id(v) AS valid_id
FROM unnest(ARRAY['11010519491231002X', '11010519491231002x', '310115198511204312',
				  '310115198511204313', '110105194912310021', '11010519491331002X',
				  '1101051949123100', 'abcdefghijklmnopqr', '']) AS v;
SELECT v, profile_guard._valid_bank_card(v) AS luhn_ok
FROM unnest(ARRAY['6222021001123456789', '6217 0000 0000 0000 004', '4111111111111111',
				  '4111111111111112', '6222021001123456788', '13800138000', '']) AS v;
SELECT v, profile_guard._coordinate_pair(v) AS coordinates
FROM unnest(ARRAY['116.397128,39.916527', '(116.397128,39.916527)', '39.9165, 116.3971',
				  '200.1234,100.1234', '1.5,2.5', '3.14159']) AS v;

CREATE SCHEMA app;
CREATE TABLE app.customer (
	id			integer PRIMARY KEY,
	mobile		text,			-- name and content
	shenfenzheng text,			-- pinyin name only (values are not ID numbers)
	"收入"		numeric,		-- Chinese name
	note		text,			-- comment only
	code1		text,			-- content: valid ID numbers
	code2		text,			-- ID-shaped, wrong check digits: nothing
	ref_no		text,			-- content: bank cards, valid Luhn
	pay_ref		text,			-- card-shaped, failing Luhn: nothing
	pos			text,			-- content: coordinate pairs
	contact		text,			-- content: e-mail
	c_no		bigint,			-- content: mobile numbers stored as numbers
	spot		point,			-- content: coordinates as a point
	mixed		text,			-- one ID among many other values: below half, nothing
	remark		text,			-- nothing
	product_name text			-- nothing
);
COMMENT ON COLUMN app.customer.note IS '用户的宗教信仰';
COMMENT ON COLUMN app.customer.remark IS 'free text written by the clerk';
INSERT INTO app.customer VALUES
	(1, '13800138000', 'n/a', 1000, 'a', '11010519491231002X', '110105194912310021',
	 '6222021001123456789', '4111111111111112', '116.397128,39.916527', 'li.lei@example.com',
	 13800138000, '(116.397128,39.916527)', '11010519491231002X', 'called back', 'tea'),
	(2, '13912345678', 'n/a', 2000, 'b', '310115198511204312', '310115198511204313',
	 '4111111111111111', '6222021001123456788', '31.230416,121.473701', 'han.mei@example.cn',
	 13912345678, '(121.473701,31.230416)', 'x', 'ok', 'coffee'),
	(3, NULL, NULL, NULL, NULL, '530102197906153016', '530102197906153017',
	 '6217 0000 0000 0000 004', '6217000000000000005', NULL, NULL,
	 NULL, NULL, 'y', NULL, NULL),
	(4, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'z', NULL, NULL);
-- a camelCase and an English comment
CREATE TABLE app.account (id integer, "homeAddress" text, "IDNumber" text, lastLogin date, x text);
COMMENT ON COLUMN app.account.x IS 'Religion of the account holder';

-- odd identifiers
CREATE SCHEMA "Odd Schema";
CREATE TABLE "Odd Schema"."My Table" ("E-Mail" text, "we""ird" text);
INSERT INTO "Odd Schema"."My Table" VALUES ('a@b.cn', 'weird');

-- a partitioned table is suggested once, not per partition
CREATE TABLE app.visit (id integer, lat numeric, lng numeric) PARTITION BY RANGE (id);
CREATE TABLE app.visit_1 PARTITION OF app.visit FOR VALUES FROM (0) TO (100);

-- bounded sample: the first 200 rows are read, not the whole table
CREATE TABLE app.big (v text);
INSERT INTO app.big SELECT '1' || (3 + i % 7) || lpad(i::text, 9, '0') FROM generate_series(1, 1000) i;

-- a guarded table: classified columns and its subject column are never
-- suggested; its other columns are
SELECT profile_guard.define_tag('interest.sports', 'preference');
CREATE TABLE app.profile (user_mobile text PRIMARY KEY, sports text, phone text);
SELECT profile_guard.protect('app.profile', 'user_mobile');
SELECT profile_guard.classify('app.profile', 'sports', 'interest.sports');

-- never a temporary table, never another schema when one is named
CREATE TEMP TABLE tmp_contacts (email text);
CREATE SCHEMA other;
CREATE TABLE other.t (email text);

SELECT "table", column_name, suggested_category, suggested_sensitivity, evidence
FROM profile_guard.suggest_classification('app')
ORDER BY "table"::text, column_name;

SELECT * FROM profile_guard.suggest_classification('Odd Schema');

-- NULL: every application schema, never profile_guard or the system schemas
-- (rows of tables other suites may have left in public are not shown)
SELECT "table", column_name, suggested_category
FROM profile_guard.suggest_classification()
WHERE "table"::text LIKE 'other.%' OR "table"::text LIKE '"Odd Schema".%'
ORDER BY "table"::text, column_name;
SELECT count(*) AS system_rows
FROM profile_guard.suggest_classification() s
JOIN pg_class c ON c.oid = s."table"
WHERE c.relnamespace::regnamespace::text IN ('profile_guard', 'pg_catalog', 'information_schema')
   OR c.relpersistence = 't';
SELECT count(*) AS app_rows FROM profile_guard.suggest_classification() WHERE "table"::text LIKE 'app.%';

-- evidence never quotes a stored value
CREATE TEMP TABLE sampled_values AS
SELECT v FROM app.customer c,
	 LATERAL (VALUES (c.mobile), (c.code1), (c.code2), (c.ref_no), (c.pay_ref), (c.pos),
					 (c.contact), (c.c_no::text), (c.spot::text), (c.mixed)) AS x(v)
WHERE length(v) >= 5
UNION SELECT v FROM app.big
UNION SELECT "E-Mail" FROM "Odd Schema"."My Table";
SELECT count(*) AS values_checked,
	   count(*) FILTER (WHERE EXISTS (SELECT 1 FROM profile_guard.suggest_classification() s
									  WHERE position(v IN s.evidence) > 0)) AS values_quoted
FROM sampled_values;

-- bad input
SELECT pg_temp.err($$SELECT * FROM profile_guard.suggest_classification('no_such_schema')$$);
SELECT pg_temp.err($$SELECT * FROM profile_guard.suggest_classification('profile_guard')$$);
SELECT pg_temp.err($$SELECT * FROM profile_guard.suggest_classification('pg_catalog')$$);
SELECT pg_temp.err($$SELECT * FROM profile_guard.suggest_classification('x''; DROP SCHEMA app CASCADE; --')$$);
SELECT pg_temp.err($$SELECT * FROM profile_guard.suggest_classification(repeat('s', 300))$$);
CREATE SCHEMA empty;
SELECT count(*) AS empty_schema FROM profile_guard.suggest_classification('empty');

-- who may call it: administrators only (it reads any table as the owner)
CREATE ROLE regress_sc_admin IN ROLE profile_guard_admin;
CREATE ROLE regress_sc_clerk IN ROLE profile_guard_consent;
SET ROLE regress_sc_admin;
SELECT count(*) > 0 AS admin_may FROM profile_guard.suggest_classification('app');
-- ... but content is sampled only where the caller may read the column
SELECT count(*) FILTER (WHERE evidence LIKE '%content: % sampled values%') AS sampled,
	   count(*) FILTER (WHERE evidence LIKE '%content: not sampled (the caller may not read the column)%') AS not_sampled
FROM profile_guard.suggest_classification('app');
RESET ROLE;
GRANT USAGE ON SCHEMA app TO regress_sc_admin;
GRANT SELECT ON ALL TABLES IN SCHEMA app TO regress_sc_admin;
SET ROLE regress_sc_admin;
SELECT count(*) FILTER (WHERE evidence LIKE '%content: % sampled values%') > 0 AS sampled_with_privilege
FROM profile_guard.suggest_classification('app');
SET ROLE regress_sc_clerk;
SELECT pg_temp.err($$SELECT * FROM profile_guard.suggest_classification('app')$$);
RESET ROLE;

SET client_min_messages = warning;
DROP SCHEMA app, "Odd Schema", other, empty CASCADE;
DROP EXTENSION profile_guard CASCADE;
DROP ROLE regress_sc_admin, regress_sc_clerk;
