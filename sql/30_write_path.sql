-- Write path: consent to collect, encryption of sensitive tags, no way around.
CREATE EXTENSION profile_guard;
SET client_min_messages = warning;
CREATE ROLE regress_app LOGIN;
DO $setup$ BEGIN
PERFORM profile_guard.define_tag('interest.music', 'preference');
PERFORM profile_guard.define_tag('health.condition', 'medical_health');
PERFORM profile_guard.define_purpose('care', 'care plans', ARRAY['health.*', 'interest.*']);
PERFORM profile_guard.allow_purpose('regress_app', 'care');
PERFORM profile_guard.register_subject(s) FROM unnest(ARRAY['1', '2', '3', '7']) s;
-- 1: separate consent to health; 2: health without separate consent; 3: music only
PERFORM profile_guard.grant_consent('1', 'care', ARRAY['health.condition', 'interest.music'], separate => true);
PERFORM profile_guard.grant_consent('2', 'care', ARRAY['health.condition', 'interest.music']);
PERFORM profile_guard.grant_consent('3', 'care', ARRAY['interest.music']);
PERFORM profile_guard.grant_consent('7', 'care', ARRAY['health.*'], separate => true);
END $setup$;

-- plaintext already in the column is encrypted by classify()
CREATE TABLE patients (id int PRIMARY KEY, music text, health text);
INSERT INTO patients VALUES (1, 'jazz', 'diabetes-type-2'), (3, 'rock', NULL);
GRANT SELECT, INSERT, UPDATE ON patients TO regress_app;
SELECT profile_guard.protect('patients', 'id');
SELECT profile_guard.classify('patients', 'music', 'interest.music');
SELECT profile_guard.classify('patients', 'health', 'health.condition');
SELECT id, health LIKE 'pgt2%' AS encrypted, position('diabetes' IN health) AS plaintext_at FROM patients ORDER BY id;

-- collection needs consent: none for 2's health (not separate), none for 3's health
INSERT INTO patients VALUES (2, 'pop', 'asthma-severe');
INSERT INTO patients VALUES (3, 'rock', 'asthma-severe') ON CONFLICT (id) DO UPDATE SET health = excluded.health;
UPDATE patients SET health = 'asthma-severe' WHERE id = 3;
INSERT INTO patients VALUES (4, 'folk', NULL);
INSERT INTO patients VALUES (2, 'pop', NULL);
INSERT INTO patients VALUES (7, NULL, 'migraine-chronic');
-- ON CONFLICT DO UPDATE goes through the same trigger
INSERT INTO patients VALUES (1, 'blues', 'hypertension-stage-1') ON CONFLICT (id) DO UPDATE SET health = excluded.health, music = excluded.music;
-- replica mode does not switch the trigger off
SET session_replication_role = replica;
INSERT INTO patients VALUES (5, 'punk', 'flu-seasonal');
UPDATE patients SET health = 'flu-seasonal' WHERE id = 3;
RESET session_replication_role;
-- COPY FROM too
COPY patients FROM STDIN;
6	ska	\N
\.
SELECT id, music, health LIKE 'pgt2%' AS encrypted FROM patients ORDER BY id;

-- reads: decrypted for a consented purpose, NULL otherwise
SET ROLE regress_app;
SET profile_guard.purpose = 'care';
SELECT id, music, health FROM patients ORDER BY id;
SELECT p FROM patients p ORDER BY id;
SELECT id FROM patients WHERE health = 'hypertension-stage-1';
-- an unchanged rewrite of the row stores the same ciphertext, not a second layer
RESET ROLE;
CREATE TEMP TABLE before AS SELECT id, health FROM patients;
UPDATE patients SET music = music;
SELECT count(*) AS unchanged FROM patients p JOIN before b USING (id) WHERE p.health IS NOT DISTINCT FROM b.health;

-- the swap attack: another subject's ciphertext is refused on the way in ...
UPDATE patients SET health = (SELECT health FROM patients WHERE id = 1) WHERE id = 2;
-- ... and reported, not returned, if it got there with the trigger disabled
ALTER TABLE patients DISABLE TRIGGER profile_guard_collect;
UPDATE patients SET health = (SELECT health FROM patients WHERE id = 1) WHERE id = 7;
ALTER TABLE patients ENABLE ALWAYS TRIGGER profile_guard_collect;
SET ROLE regress_app;
SELECT id, health FROM patients WHERE id = 7;
SELECT id, music FROM patients WHERE id = 1;
RESET ROLE;
UPDATE patients SET health = 'migraine-chronic' WHERE id = 7;

-- the heap and the dump hold no plaintext of a sensitive value
CHECKPOINT;
SELECT position(convert_to('hypertension-stage-1', 'UTF8') IN pg_read_binary_file(pg_relation_filepath('patients'))) AS heap_plaintext_at;
SELECT position(convert_to('migraine-chronic', 'UTF8') IN pg_read_binary_file(pg_relation_filepath('patients'))) AS heap_plaintext_at;
-- general tags are stored as they are
SELECT position(convert_to('blues', 'UTF8') IN pg_read_binary_file(pg_relation_filepath('patients'))) > 0 AS general_tag_in_clear;
-- plaintext that was there before classify() survives in dead row versions
-- until VACUUM (documented: classify, then VACUUM)
SELECT position(convert_to('diabetes-type-2', 'UTF8') IN pg_read_binary_file(pg_relation_filepath('patients'))) > 0 AS old_version_before_vacuum;
VACUUM patients;
CHECKPOINT;
SELECT position(convert_to('diabetes-type-2', 'UTF8') IN pg_read_binary_file(pg_relation_filepath('patients'))) AS old_version_after_vacuum;

-- declassify decrypts in place
SELECT profile_guard.declassify('patients', 'health');
SELECT id, health FROM patients ORDER BY id;
-- unprotect decrypts too (classify again first: encrypts in place)
SELECT profile_guard.classify('patients', 'health', 'health.condition');
SELECT id, health LIKE 'pgt2%' AS encrypted FROM patients WHERE health IS NOT NULL ORDER BY id;
SELECT profile_guard.unprotect('patients');
SELECT id, health FROM patients ORDER BY id;
SELECT count(*) AS triggers_left FROM pg_trigger WHERE tgrelid = 'patients'::regclass AND NOT tgisinternal;

-- long shape, written by an application role that has no rights on the
-- catalog: the lexicon check runs with the extension's rights, so a plain
-- value is collected and a prohibited one refused, for the app as for an admin
CREATE TABLE tags_long (uid int, tag text, value text);
SELECT profile_guard.protect('tags_long', 'uid', tag_column => 'tag', value_column => 'value');
GRANT SELECT, INSERT, UPDATE ON tags_long TO regress_app;
SET ROLE regress_app;
INSERT INTO tags_long VALUES (3, 'interest.music', 'jazz');
UPDATE tags_long SET value = 'blues' WHERE uid = 3;
INSERT INTO tags_long VALUES (3, 'interest.music', 'gambling');
SELECT has_function_privilege('profile_guard.check_prohibited(text, text)', 'EXECUTE') AS app_may_call_check;
RESET ROLE;
SELECT uid, tag, value FROM tags_long;
DROP TABLE tags_long;

-- wide shape: the values of text columns meet the lexicon as long-shape
-- values do, however the row comes in; the error names the table, the
-- column, the tag and the topic, never the value
SELECT profile_guard.define_tag('interest.motto', 'preference');
SELECT profile_guard.define_tag('interest.level', 'preference');
SELECT profile_guard.grant_consent(s, 'care', ARRAY['interest.*']) FROM unnest(ARRAY['1', '3']) s;
CREATE TABLE fans (id int PRIMARY KEY, music text, motto varchar(40), level int);
SELECT profile_guard.protect('fans', 'id');
SELECT profile_guard.classify('fans', 'music', 'interest.music');
SELECT profile_guard.classify('fans', 'motto', 'interest.motto');
SELECT profile_guard.classify('fans', 'level', 'interest.level');
GRANT SELECT, INSERT, UPDATE ON fans TO regress_app;
CREATE TABLE fans_staging (id int, music text, motto varchar(40), level int);
INSERT INTO fans_staging VALUES (3, 'casino lounge', NULL, 1);
GRANT SELECT ON fans_staging TO regress_app;
SET ROLE regress_app;
INSERT INTO fans VALUES (1, 'jazz', 'keep swinging', 3);
INSERT INTO fans VALUES (3, 'casino lounge', NULL, 1);
INSERT INTO fans VALUES (3, 'rock', '赌博之王', 1);
INSERT INTO fans VALUES (3, 'rock', 'spreads fake news', 1);
INSERT INTO fans SELECT * FROM fans_staging;
INSERT INTO fans VALUES (1, 'blues', 'Terrorist chic', 3) ON CONFLICT (id) DO UPDATE SET motto = excluded.motto;
UPDATE fans SET music = 'Porn-Star hits' WHERE id = 1;
UPDATE fans SET music = 'swing', level = 4 WHERE id = 1;
RESET ROLE;
COPY fans FROM STDIN;
3	voodoo	witchcraft rules	2
\.
-- replica mode does not switch the check off
SET session_replication_role = replica;
INSERT INTO fans VALUES (3, 'gambling hall', NULL, 1);
RESET session_replication_role;
-- a PL/pgSQL handler that catches the refusal stores nothing
CREATE FUNCTION pg_temp.try_insert(m text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE st text; d text;
BEGIN
	INSERT INTO fans VALUES (3, m, NULL, 1);
	RETURN 'stored';
EXCEPTION WHEN OTHERS THEN
	GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, d = PG_EXCEPTION_DETAIL;
	RETURN st || ': ' || d;
END $$;
SELECT pg_temp.try_insert('sports betting tips');
SELECT id, music, motto, level FROM fans ORDER BY id;
-- a value stored before the lexicon grew stays; rewriting the row leaves it
-- alone, assigning it again is checked, changed or not
SELECT pg_temp.try_insert('loot box');
SELECT profile_guard.add_prohibited_term('loot box', 'gambling');
UPDATE fans SET level = 2 WHERE id = 3;
UPDATE fans SET music = music WHERE id = 3;
UPDATE fans SET music = 'Loot-Box' WHERE id = 3;
SELECT id, music, motto, level FROM fans ORDER BY id;
-- the write path's matcher and prohibited_topic() (its specification in
-- SQL) name the same topic for every term of the lexicon: inside a text,
-- alone, upper-cased, glued to a letter or a digit, between separators,
-- with a suffix, and for texts that hold two terms.  Over a thousand
-- inserts and calls, each of whose queries force_parallel_mode would hand
-- to a parallel worker of its own (minutes, and nothing the plain run does
-- not check): serial
SET force_parallel_mode = off;
CREATE FUNCTION pg_temp.write_path_topic(m text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE d text;
BEGIN
	INSERT INTO fans VALUES (1, m, NULL, 1) ON CONFLICT (id) DO UPDATE SET music = excluded.music;
	RAISE EXCEPTION 'collected' USING ERRCODE = 'P0001';	-- undo it
EXCEPTION
	WHEN SQLSTATE '44000' THEN
		GET STACKED DIAGNOSTICS d = PG_EXCEPTION_DETAIL;
		RETURN substring(d FROM 'prohibited topic "([^"]*)"');
	WHEN SQLSTATE 'P0001' THEN
		RETURN NULL;
END $$;
WITH terms AS (SELECT term, row_number() OVER (ORDER BY topic, term) AS i FROM profile_guard.prohibited_term),
texts AS (
	SELECT unnest(ARRAY['the ' || term || ' here', term, upper(term), 'x' || term,
						term || '9', replace(term, ' ', '_') || '.', 'a-' || term || '-b',
						term || 's', '(' || term || ')']) AS v FROM terms
	UNION ALL
	SELECT a.term || ' and ' || b.term FROM terms a JOIN terms b ON b.i = a.i % 7 + 1)
SELECT count(*) > 500 AS many_texts,
	count(*) FILTER (WHERE pg_temp.write_path_topic(v) IS NOT NULL) > 100 AS many_refused,
	count(*) FILTER (WHERE pg_temp.write_path_topic(v) IS DISTINCT FROM profile_guard.prohibited_topic(v)) AS disagreements
FROM texts;
RESET force_parallel_mode;
DROP TABLE fans, fans_staging;

-- sensitive values meet the lexicon too: their plaintext, before it is
-- encrypted, in both shapes; the error names the table, the column, the tag
-- and the topic, never the value
CREATE TABLE charts (id int, health text);
SELECT profile_guard.protect('charts', 'id');
SELECT profile_guard.classify('charts', 'health', 'health.condition');
CREATE TABLE charts_long (uid int, tag text, value text);
SELECT profile_guard.protect('charts_long', 'uid', tag_column => 'tag', value_column => 'value');
INSERT INTO charts VALUES (1, 'asthma, casino regular');
INSERT INTO charts_long VALUES (7, 'health.condition', 'leper colony visits');
INSERT INTO charts VALUES (1, 'asthma');
-- a topic exempted for a category does not apply to the values of its tags
SELECT profile_guard.exempt_prohibited_topic('disease', 'medical_health');
SELECT profile_guard.exempt_prohibited_topic('disease', 'medical_health');
SELECT topic, category FROM profile_guard.prohibited_topic_exemption;
INSERT INTO charts_long VALUES (7, 'health.condition', 'leper colony visits');
INSERT INTO charts VALUES (1, 'casino regular');
-- tag names and descriptions are still checked against every topic
SELECT profile_guard.define_tag('health.leper', 'medical_health');
SELECT profile_guard.unexempt_prohibited_topic('disease', 'medical_health');
INSERT INTO charts_long VALUES (7, 'health.condition', 'plague carrier');
-- bad arguments change nothing
SELECT profile_guard.exempt_prohibited_topic('nosuch', 'medical_health');
SELECT profile_guard.exempt_prohibited_topic('disease', 'nosuch');
SELECT profile_guard.exempt_prohibited_topic(NULL, 'medical_health');
SELECT profile_guard.unexempt_prohibited_topic('disease', 'medical_health');
SELECT count(*) AS exemptions FROM profile_guard.prohibited_topic_exemption;
SELECT id, health LIKE 'pgt2%' AS encrypted FROM charts ORDER BY id;
SELECT uid, tag, value LIKE 'pgt2%' AS encrypted FROM charts_long ORDER BY uid;
DROP TABLE charts, charts_long;

-- the read gate serves a sensitive cell's plaintext, in text and bytea,
-- short or toasted, and reports a stored value that is not a well-formed
-- ciphertext of its own cell, whatever its form
SET profile_guard.purpose = 'care';
CREATE TABLE cells (id int, txt text, bin bytea);
GRANT SELECT ON cells TO regress_app;
SELECT profile_guard.protect('cells', 'id');
SELECT profile_guard.classify('cells', 'txt', 'health.condition');
SELECT profile_guard.classify('cells', 'bin', 'health.condition');
INSERT INTO cells VALUES (1, 'short-value', '\x0102'), (7, repeat('long value ', 2000), '\x03');
SELECT id, txt LIKE 'pgt2%' AS encrypted, length(txt) > 20000 AS long, substr(bin, 1, 3) AS magic FROM cells ORDER BY id;
SET ROLE regress_app;
SELECT id, length(txt), md5(txt), bin FROM cells ORDER BY id;
RESET ROLE;
ALTER TABLE cells DISABLE TRIGGER profile_guard_collect;
CREATE TEMP TABLE kept AS SELECT * FROM cells;
-- the stored text's bytes (version 2: "pgt2", then IV | GCM tag |
-- ciphertext in base64 without padding), and the text of such bytes
CREATE FUNCTION pg_temp.env(t text) RETURNS bytea LANGUAGE sql
	AS $$ SELECT decode(substr(t, 5) || repeat('=', (4 - (length(t) - 4) % 4) % 4), 'base64') $$;
CREATE FUNCTION pg_temp.txt(b bytea) RETURNS text LANGUAGE sql
	AS $$ SELECT 'pgt2' || rtrim(translate(encode(b, 'base64'), E'\n', ''), '=') $$;
CREATE FUNCTION pg_temp.restore() RETURNS void LANGUAGE sql AS $$ UPDATE cells c SET txt = k.txt, bin = k.bin FROM kept k WHERE k.id = c.id $$;
-- base64 in lines, as encode() writes it, is not the stored form: reported
UPDATE cells SET txt = 'pgt2' || encode(pg_temp.env(txt), 'base64');
SELECT id, position(E'\n' IN txt) > 0 AS in_lines FROM cells ORDER BY id;
SET ROLE regress_app;
SELECT id, length(txt), md5(txt) FROM cells ORDER BY id;
RESET ROLE;
SELECT pg_temp.restore();
-- a flipped bit of the ciphertext, of the GCM tag, of the version
UPDATE cells SET txt = pg_temp.txt(set_byte(pg_temp.env(txt), 36, get_byte(pg_temp.env(txt), 36) # 1)) WHERE id = 1;
SET ROLE regress_app;
SELECT txt FROM cells WHERE id = 1;
SELECT bin FROM cells WHERE id = 1;
RESET ROLE;
SELECT pg_temp.restore();
UPDATE cells SET bin = set_byte(bin, 20, get_byte(bin, 20) # 1) WHERE id = 1;
SET ROLE regress_app;
SELECT bin FROM cells WHERE id = 1;
RESET ROLE;
SELECT pg_temp.restore();
UPDATE cells SET txt = pg_temp.txt(set_byte(pg_temp.env(txt), 20, get_byte(pg_temp.env(txt), 20) # 1)) WHERE id = 1;
SET ROLE regress_app;
SELECT txt FROM cells WHERE id = 1;
RESET ROLE;
SELECT pg_temp.restore();
-- another version in the prefix is not our form: served as stored
UPDATE cells SET txt = 'pgt3' || substr(txt, 5) WHERE id = 1;
SET ROLE regress_app;
SELECT left(txt, 4) AS prefix, length(txt) FROM cells WHERE id = 1;
RESET ROLE;
-- version 1 text (written before 1.2) is still served; relabelled version
-- 2 it does not authenticate
UPDATE cells SET txt = 'pgt1:' || translate(encode(profile_guard._encrypt('1', 'health.condition', convert_to('old-form', 'UTF8')), 'base64'), E'\n', '') WHERE id = 1;
SET ROLE regress_app;
SELECT txt FROM cells WHERE id = 1;
RESET ROLE;
UPDATE cells SET txt = pg_temp.txt(substr(decode(substr(txt, 6), 'base64'), 5)) WHERE id = 1;
SET ROLE regress_app;
SELECT txt FROM cells WHERE id = 1;
RESET ROLE;
UPDATE cells SET txt = 'pgt1:' || encode(set_byte(decode(substr(k.txt, 6), 'base64'), 3, 2), 'base64')
  FROM (SELECT 'pgt1:' || translate(encode(profile_guard._encrypt('1', 'health.condition', convert_to('old-form', 'UTF8')), 'base64'), E'\n', '') AS txt) k
 WHERE id = 1;
SET ROLE regress_app;
SELECT txt FROM cells WHERE id = 1;
RESET ROLE;
-- not base64, too short to be an envelope
UPDATE cells SET txt = 'pgt2' || repeat('*', 60) WHERE id = 1;
SET ROLE regress_app;
SELECT txt FROM cells WHERE id = 1;
RESET ROLE;
UPDATE cells SET txt = 'pgt2QUJD' WHERE id = 1;
SET ROLE regress_app;
SELECT txt FROM cells WHERE id = 1;
RESET ROLE;
-- swapped between subjects, short one way and toasted the other
UPDATE cells c SET txt = k.txt FROM kept k WHERE k.id = 8 - c.id;
SET ROLE regress_app;
SELECT txt FROM cells WHERE id = 1;
SELECT length(txt) FROM cells WHERE id = 7;
RESET ROLE;
-- a stored value that is not our ciphertext is served as it is
UPDATE cells SET txt = 'plain words', bin = '\x0a0b' WHERE id = 1;
SET ROLE regress_app;
SELECT id, txt, bin FROM cells WHERE id = 1;
RESET ROLE;
SELECT pg_temp.restore();
SET ROLE regress_app;
SELECT id, length(txt), md5(txt), bin FROM cells ORDER BY id;
RESET ROLE;
DROP TABLE cells;

-- a BEFORE ROW trigger that fires after the collection trigger (name order)
-- would see the ciphertext and could store plaintext, or move the value to
-- another subject: no row is written while one would fire; one that fires
-- before it is checked as the application's write, and an AFTER trigger,
-- a disabled one, or an origin one in replica mode is no matter
CREATE TABLE notes (id int, health text);
GRANT SELECT ON notes TO regress_app;
SELECT profile_guard.protect('notes', 'id');
SELECT profile_guard.classify('notes', 'health', 'health.condition');
CREATE FUNCTION pg_temp.late() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN NEW.health := 'plain ' || left(NEW.health, 4); RETURN NEW; END $$;
CREATE TRIGGER set_plain BEFORE INSERT OR UPDATE ON notes FOR EACH ROW EXECUTE FUNCTION pg_temp.late();
INSERT INTO notes VALUES (1, 'asthma');
INSERT INTO notes VALUES (1, NULL);
COPY notes FROM stdin;
1	asthma
\.
-- every other way in meets the same trigger: INSERT ... SELECT, a CTE, a
-- view, a prepared statement, a function, an error caught in PL/pgSQL
INSERT INTO notes SELECT 1, 'asthma';
WITH n AS (INSERT INTO notes VALUES (1, 'asthma') RETURNING id) SELECT count(*) FROM n;
CREATE VIEW notes_view AS SELECT * FROM notes;
INSERT INTO notes_view VALUES (1, 'asthma');
DROP VIEW notes_view;
PREPARE put_note(int, text) AS INSERT INTO notes VALUES ($1, $2);
EXECUTE put_note(1, 'asthma');
DEALLOCATE put_note;
CREATE FUNCTION pg_temp.put_note(v text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO notes VALUES (1, v);
	RETURN 'stored';
EXCEPTION WHEN OTHERS THEN
	RETURN SQLSTATE || ': ' || SQLERRM;
END $$;
SELECT pg_temp.put_note('asthma');
SELECT count(*) AS stored_so_far FROM notes;
SET session_replication_role = replica;
INSERT INTO notes VALUES (1, 'asthma');
RESET session_replication_role;
-- UPDATE only: inserts pass, updates are refused
DROP TRIGGER set_plain ON notes;
CREATE TRIGGER set_plain BEFORE UPDATE ON notes FOR EACH ROW EXECUTE FUNCTION pg_temp.late();
INSERT INTO notes VALUES (1, 'asthma');
UPDATE notes SET health = 'flu' WHERE id = 1;
-- disabled, or firing on origin only while in replica mode: writes pass
ALTER TABLE notes DISABLE TRIGGER set_plain;
UPDATE notes SET health = 'flu' WHERE id = 1;
ALTER TABLE notes ENABLE TRIGGER set_plain;
SET session_replication_role = replica;
UPDATE notes SET health = 'cold' WHERE id = 1;
RESET session_replication_role;
-- renamed to fire first: its change is what is checked and encrypted
ALTER TRIGGER set_plain ON notes RENAME TO a_set_plain;
UPDATE notes SET health = 'migraine' WHERE id = 1;
-- an AFTER trigger named after it changes nothing stored
CREATE FUNCTION pg_temp.after_row() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RETURN NULL; END $$;
CREATE TRIGGER z_after AFTER INSERT ON notes FOR EACH ROW EXECUTE FUNCTION pg_temp.after_row();
INSERT INTO notes VALUES (7, 'hay fever');
SELECT id, health LIKE 'pgt2%' AS encrypted, position('plain' IN health) AS plaintext_at FROM notes ORDER BY id, health;
SET ROLE regress_app;
SET profile_guard.purpose = 'care';
SELECT id, health FROM notes ORDER BY id, health;
RESET profile_guard.purpose;
RESET ROLE;
DROP TABLE notes;

-- a table that measures retention from a collected-at column: a row that
-- collects tag values says when, no later than a day from now (NULL or a
-- far or infinite future would keep the values beyond every retention);
-- a role that bypasses the guard (a restore) writes what it has
CREATE TABLE visits (id int PRIMARY KEY, at timestamptz, day date, music text, note text);
SELECT profile_guard.protect('visits', 'id', 'at');
SELECT profile_guard.classify('visits', 'music', 'interest.music');
CREATE TABLE visits_long (uid int, at date, tag text, value text);
SELECT profile_guard.protect('visits_long', 'uid', 'at', tag_column => 'tag', value_column => 'value');
GRANT SELECT, INSERT, UPDATE ON visits, visits_long TO regress_app;
SET ROLE regress_app;
INSERT INTO visits VALUES (1, NULL, NULL, 'jazz', NULL);
INSERT INTO visits VALUES (1, 'infinity', NULL, 'jazz', NULL);
INSERT INTO visits VALUES (1, now() + interval '3 days', NULL, 'jazz', NULL);
INSERT INTO visits_long VALUES (1, NULL, 'interest.music', 'jazz');
INSERT INTO visits_long VALUES (1, 'infinity', 'interest.music', 'jazz');
-- a row that collects nothing needs no time; a slightly fast clock is fine
INSERT INTO visits VALUES (2, NULL, NULL, NULL, 'no tags');
INSERT INTO visits VALUES (3, now() + interval '1 hour', NULL, 'jazz', NULL);
INSERT INTO visits_long VALUES (3, current_date, 'interest.music', 'jazz');
-- an UPDATE that collects a value, or sets the time, is checked too; one
-- of another column is not
UPDATE visits SET music = 'soul' WHERE id = 2;
UPDATE visits SET at = NULL WHERE id = 3;
UPDATE visits SET note = 'seen' WHERE id = 3;
SET profile_guard.purpose = 'care';
UPDATE visits_long SET at = NULL WHERE uid = 3;
RESET profile_guard.purpose;
RESET ROLE;
INSERT INTO visits VALUES (1, NULL, NULL, 'jazz', 'restored');
SELECT id, at IS NULL AS no_time, music, note FROM visits ORDER BY id;
DROP TABLE visits, visits_long;

DROP TABLE patients;
DROP EXTENSION profile_guard CASCADE;
DROP ROLE regress_app;
