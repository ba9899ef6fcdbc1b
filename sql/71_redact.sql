-- Values of guarded tables never appear in error messages: the client's
-- copy and the server log's (t/150_audit_log.pl greps the log for
-- the values used here, all spelled SECRET...).
CREATE EXTENSION profile_guard;
SET client_min_messages = warning;

DO $setup$ BEGIN
PERFORM profile_guard.define_tag('interest.sports', 'preference');
PERFORM profile_guard.define_tag('behavior.visits', 'behavior');
PERFORM profile_guard.define_purpose('recommendation', 'recommend content',
	ARRAY['interest.*', 'behavior.visits']);
END $setup$;
CREATE ROLE regress_app LOGIN;
SELECT profile_guard.allow_purpose('regress_app', 'recommendation');

CREATE TABLE cities (city text PRIMARY KEY);
INSERT INTO cities VALUES ('CITY1');
CREATE TABLE profiles (
	id int PRIMARY KEY,
	email text UNIQUE,
	nick text NOT NULL,
	city text REFERENCES cities,
	sports text,
	visits int,
	prefs jsonb,
	booked int4range,
	score int CHECK (score < 1000),
	EXCLUDE USING gist (booked WITH &&)
);
CREATE TABLE orders (order_id int PRIMARY KEY, profile_id int REFERENCES profiles);
GRANT SELECT, INSERT, UPDATE, DELETE ON profiles, cities, orders TO regress_app;
DO $setup$ BEGIN
PERFORM profile_guard.protect('profiles', 'id');
PERFORM profile_guard.classify('profiles', 'sports', 'interest.sports');
PERFORM profile_guard.classify('profiles', 'visits', 'behavior.visits');
PERFORM profile_guard.register_subject(s::text) FROM generate_series(1, 9) s;
PERFORM profile_guard.grant_consent(s::text, 'recommendation', ARRAY['interest.*', 'behavior.visits'])
	FROM generate_series(1, 9) s;
END $setup$;
INSERT INTO profiles VALUES
	(1, 'SECRETMAIL1', 'SECRETNICK1', 'CITY1', 'SECRETSPORT1', 11, NULL, '[100,200)'),
	(2, 'SECRETMAIL2', 'SECRETNICK2', NULL, 'SECRETSPORT2', 22, NULL, NULL);
INSERT INTO orders VALUES (1, 1);

SET ROLE regress_app;
SET profile_guard.purpose = 'recommendation';
SET client_min_messages = notice;

-- unique violations: the key's columns stay, its values go
INSERT INTO profiles (id, email, nick) VALUES (1, 'SECRETMAIL9', 'SECRETNICK9');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO profiles (id, email, nick) VALUES (3, 'SECRETMAIL1', 'SECRETNICK3');
-- exclusion constraints: both keys go
UPDATE profiles SET booked = '[150,160)' WHERE id = 2;
\echo :LAST_ERROR_SQLSTATE
-- check and not-null violations: the failing row goes
UPDATE profiles SET score = 5000 WHERE id = 1;
\echo :LAST_ERROR_SQLSTATE
UPDATE profiles SET nick = NULL WHERE id = 2;
\echo :LAST_ERROR_SQLSTATE
-- foreign keys, both ways
INSERT INTO profiles (id, nick, city) VALUES (4, 'SECRETNICK4', 'SECRETCITY9');
\echo :LAST_ERROR_SQLSTATE
DELETE FROM profiles WHERE id = 1;
-- input errors quoting a value: at parse time, at run time, in COPY
INSERT INTO profiles (id, nick, visits) VALUES (5, 'SECRETNICK5', 'SECRETVISITS5');
\echo :LAST_ERROR_SQLSTATE
UPDATE profiles SET visits = nick::int WHERE id = 1;
UPDATE profiles SET visits = 99999999999 WHERE id = 1;
UPDATE profiles SET prefs = '{"SECRETKEY": SECRETJSON}' WHERE id = 1;
\echo :LAST_ERROR_SQLSTATE
COPY profiles (id, nick, visits) FROM STDIN;
6	SECRETNICK6	SECRETVISITS6
\.
COPY profiles (id, nick, email) FROM STDIN;
7	SECRETNICK7	SECRETMAIL1
\.
-- inside a function: the statement it quotes goes too
RESET ROLE;
CREATE FUNCTION add_profile(i int, n text, v text) RETURNS void LANGUAGE plpgsql
	AS $$ BEGIN INSERT INTO profiles (id, nick, visits) VALUES (i, n, v::int); END $$;
CREATE FUNCTION add_literal() RETURNS void LANGUAGE plpgsql
	AS $$ BEGIN INSERT INTO profiles (id, nick, visits) VALUES (8, 'x', 'SECRETLITERAL8'); END $$;
GRANT EXECUTE ON FUNCTION add_profile(int, text, text), add_literal() TO regress_app;
SET ROLE regress_app;
SELECT add_profile(8, 'SECRETNICK8', 'SECRETVISITS8');
SELECT add_profile(1, 'SECRETNICK1', '12');
SELECT add_literal();
-- errors of statements that touch no guarded table keep their values
INSERT INTO cities VALUES ('CITY1');
SELECT 'plain'::int;
-- our own refusals are unchanged
INSERT INTO profiles (id, nick, sports) VALUES (10, 'SECRETNICK10', 'SECRETSPORT10');
RESET ROLE;
-- nothing was written
SELECT id, nick FROM profiles ORDER BY id;

SET client_min_messages = warning;
DROP FUNCTION add_profile(int, text, text), add_literal();
DROP TABLE orders, profiles, cities;
DROP EXTENSION profile_guard CASCADE;
DROP ROLE regress_app;
