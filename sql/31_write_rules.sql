-- Writes are uses: an UPDATE collects every tag column it assigns (changed
-- or not), moves tags to a new subject only with consent, and under a
-- declared purpose reaches only what that purpose may read.
CREATE EXTENSION profile_guard;
SET client_min_messages = warning;
CREATE ROLE regress_wr_app LOGIN;
DO $setup$ BEGIN
PERFORM profile_guard.define_tag('wr.luxury', 'preference');
PERFORM profile_guard.define_tag('wr.sports', 'preference');
PERFORM profile_guard.define_tag('wr.diagnosis', 'medical_health');
PERFORM profile_guard.define_purpose('wr_ads', 'ads', ARRAY['wr.*']);
PERFORM profile_guard.define_purpose('wr_care', 'care', ARRAY['wr.*']);
PERFORM profile_guard.allow_purpose('regress_wr_app', 'wr_ads');
PERFORM profile_guard.allow_purpose('regress_wr_app', 'wr_care');
PERFORM profile_guard.register_subject(s) FROM unnest(ARRAY['1', '2', '3', '4', '5', '6']) s;
-- 1, 2, 3: everything for ads (1 also separate, for the diagnosis)
PERFORM profile_guard.grant_consent('1', 'wr_ads', ARRAY['wr.*'], separate => true);
PERFORM profile_guard.grant_consent(s, 'wr_ads', ARRAY['wr.luxury', 'wr.sports']) FROM unnest(ARRAY['2', '3']) s;
-- 4: withdrew; 5: luxury for care only, sports for ads; 6: care only
PERFORM profile_guard.grant_consent('4', 'wr_ads', ARRAY['wr.luxury']);
PERFORM profile_guard.grant_consent('5', 'wr_care', ARRAY['wr.luxury']);
PERFORM profile_guard.grant_consent('5', 'wr_ads', ARRAY['wr.sports']);
PERFORM profile_guard.grant_consent('6', 'wr_care', ARRAY['wr.luxury']);
END $setup$;

-- wide shape
CREATE TABLE wr_profile (id int PRIMARY KEY, user_id int NOT NULL, email text, luxury text, sports text, diagnosis text);
INSERT INTO wr_profile VALUES
  (1, 1, 'a@x', 'yacht', 'golf', 'flu-mild'), (2, 2, 'b@x', 'watch', NULL, NULL),
  (3, 3, 'c@x', NULL, NULL, NULL), (4, 4, 'd@x', 'villa', NULL, NULL),
  (5, 5, 'e@x', 'jet', 'polo', NULL), (6, 6, 'f@x', 'car', NULL, NULL);
SELECT profile_guard.protect('wr_profile', 'user_id');
SELECT profile_guard.classify('wr_profile', 'luxury', 'wr.luxury');
SELECT profile_guard.classify('wr_profile', 'sports', 'wr.sports');
SELECT profile_guard.classify('wr_profile', 'diagnosis', 'wr.diagnosis');
SELECT profile_guard.withdraw_consent('4', 'wr_ads');
GRANT SELECT, INSERT, UPDATE ON wr_profile TO regress_wr_app;
SET ROLE regress_wr_app;

-- 1. no oracle: a withdrawn subject's cell is refused whether the guess is
-- right or wrong; the statement needs no purpose and reads no tag
UPDATE wr_profile SET luxury = 'villa' WHERE user_id = 4;
UPDATE wr_profile SET luxury = 'hut' WHERE user_id = 4;
-- ... the same for ON CONFLICT DO UPDATE
INSERT INTO wr_profile VALUES (4, 4, 'd@x', NULL, NULL, NULL)
  ON CONFLICT (id) DO UPDATE SET luxury = 'villa';
-- a consented subject's cell is collected, changed or not
UPDATE wr_profile SET luxury = 'watch' WHERE user_id = 2;
UPDATE wr_profile SET luxury = 'boat' WHERE user_id = 2;
-- 2. assigning a row its own subject moves nothing and collects nothing:
-- a withdrawn subject's row is written as by any write of a column that is
-- not a tag, whatever its cells hold (4 holds a value)
UPDATE wr_profile SET user_id = user_id WHERE user_id = 4 RETURNING id;
-- columns that are not tags stay writable without a purpose
UPDATE wr_profile SET email = 'd2@x' WHERE user_id = 4;

-- 3. under a declared purpose an UPDATE reaches only the subjects it may
-- read, and never overwrites a cell it reads as NULL
SET profile_guard.purpose = 'wr_ads';
UPDATE wr_profile SET email = email WHERE user_id = 6 RETURNING id;
INSERT INTO wr_profile VALUES (6, 6, 'f@x', 'car', NULL, NULL)
  ON CONFLICT (id) DO UPDATE SET email = 'f2@x' RETURNING id;
UPDATE wr_profile SET luxury = luxury WHERE user_id = 5;
UPDATE wr_profile SET luxury = NULL WHERE user_id = 5;
UPDATE wr_profile SET sports = sports WHERE user_id = 5 RETURNING id, sports;
-- a visible cell may be rewritten and cleared
UPDATE wr_profile SET luxury = luxury WHERE user_id = 2 RETURNING id, luxury;
UPDATE wr_profile SET luxury = NULL WHERE user_id = 3 RETURNING id, luxury;
RESET profile_guard.purpose;

-- 4. changing a row's subject carries the tag columns the UPDATE does not
-- assign to the new subject, and collects them for it.  Whether a row may
-- move never depends on what the writer cannot read.  With no purpose
-- declared (the statement reads no tag) no such row moves: a withdrawn
-- subject's row holding a value (4) and a row of NULL cells (3) are
-- refused alike, and so are a right and a wrong guess of a hidden value
UPDATE wr_profile SET user_id = 1 WHERE user_id = 4;
UPDATE wr_profile SET user_id = 1 WHERE user_id = 3;
UPDATE wr_profile SET user_id = 1, luxury = 'villa', sports = NULL WHERE user_id = 4;
UPDATE wr_profile SET user_id = 1, luxury = 'hut', sports = NULL WHERE user_id = 4;
-- one that assigns every tag column carries nothing: a plain collection
-- for the new subject, the guess right or wrong
BEGIN;
UPDATE wr_profile SET user_id = 1, luxury = 'villa', sports = NULL, diagnosis = NULL WHERE user_id = 4 RETURNING id;
ROLLBACK;
BEGIN;
UPDATE wr_profile SET user_id = 1, luxury = 'hut', sports = NULL, diagnosis = NULL WHERE user_id = 4 RETURNING id;
ROLLBACK;
-- under a purpose: only rows it reads (4 withdrew, 6 is care only), and
-- only while every tag column it carries is visible to the purpose for the
-- old subject, whether the cell holds a value (5's luxury, care only) or
-- NULL (2's diagnosis: no separate consent); RETURNING shows nothing the
-- old subject's consent hid
SET profile_guard.purpose = 'wr_ads';
UPDATE wr_profile SET user_id = 1 WHERE user_id = 4 RETURNING id;
UPDATE wr_profile SET user_id = 1 WHERE user_id = 6 RETURNING id;
UPDATE wr_profile SET user_id = 1 WHERE user_id = 5 RETURNING id, luxury;
UPDATE wr_profile SET user_id = 3 WHERE user_id = 2 RETURNING id, luxury;
-- nor is a hidden cell overwritten, whether it holds a value or NULL
UPDATE wr_profile SET luxury = NULL WHERE user_id = 5;
UPDATE wr_profile SET diagnosis = NULL WHERE user_id = 5;
-- a sensitive value never moves: its ciphertext is bound to its subject
UPDATE wr_profile SET user_id = 2 WHERE user_id = 1;
-- 1's tags are all visible to wr_ads: assigning the sensitive one, the row
-- moves to 2, whose consent covers what it carries; to 9 (not registered)
-- it does not
UPDATE wr_profile SET user_id = 9, diagnosis = NULL WHERE user_id = 1;
UPDATE wr_profile SET user_id = 2, diagnosis = NULL WHERE user_id = 1 RETURNING id, user_id, luxury, sports, diagnosis;
RESET profile_guard.purpose;
-- a new value written with the new subject for every tag column
UPDATE wr_profile SET user_id = 3, luxury = 'kite', sports = NULL, diagnosis = NULL WHERE id = 5;
-- a role that reads raw values moves rows without a purpose, but carries
-- no value that the old subject's consent does not cover
RESET ROLE;
UPDATE wr_profile SET user_id = 1 WHERE user_id = 4;
UPDATE wr_profile SET user_id = 4 WHERE user_id = 3 AND id = 3;
SET ROLE regress_wr_app;
RESET ROLE;
SELECT id, user_id, email, luxury, sports, diagnosis IS NOT NULL AS has_diagnosis FROM wr_profile ORDER BY id;

-- a row without a subject (written before protect()) is hidden from every
-- purpose: an UPDATE under one does not reach it, so it cannot be moved to a
-- subject whose consent would show its values; without a purpose it cannot
-- be moved either
CREATE TABLE wr_orphan (user_id int, luxury text);
INSERT INTO wr_orphan VALUES (NULL, 'hidden'), (2, 'watch');
SELECT profile_guard.protect('wr_orphan', 'user_id');
SELECT profile_guard.classify('wr_orphan', 'luxury', 'wr.luxury');
GRANT SELECT, UPDATE ON wr_orphan TO regress_wr_app;
SET ROLE regress_wr_app;
SET profile_guard.purpose = 'wr_ads';
UPDATE wr_orphan SET user_id = 2 WHERE user_id IS NULL RETURNING user_id, luxury;
UPDATE wr_orphan SET user_id = user_id RETURNING user_id, luxury;
RESET profile_guard.purpose;
UPDATE wr_orphan SET user_id = 2 WHERE user_id IS NULL;
RESET ROLE;
SELECT user_id, luxury FROM wr_orphan ORDER BY user_id;
DROP TABLE wr_orphan;

-- long shape: one row per subject and tag
CREATE TABLE wr_tags (user_id text NOT NULL, tag text NOT NULL, value text, PRIMARY KEY (user_id, tag));
SELECT profile_guard.protect('wr_tags', 'user_id', tag_column => 'tag', value_column => 'value');
INSERT INTO wr_tags VALUES ('1', 'wr.luxury', 'yacht'), ('1', 'wr.diagnosis', 'flu-mild'),
  ('2', 'wr.luxury', 'watch'), ('5', 'wr.luxury', 'jet'), ('5', 'wr.sports', 'polo'), ('6', 'wr.luxury', 'car');
SELECT profile_guard.grant_consent('4', 'wr_ads', ARRAY['wr.luxury']);
INSERT INTO wr_tags VALUES ('4', 'wr.luxury', 'villa');
SELECT profile_guard.withdraw_consent('4', 'wr_ads');
GRANT SELECT, INSERT, UPDATE ON wr_tags TO regress_wr_app;
CREATE TEMP TABLE wr_where AS SELECT ctid AS at, user_id, tag FROM wr_tags;
GRANT SELECT ON wr_where TO regress_wr_app;
SET ROLE regress_wr_app;
-- no oracle by ctid: without a purpose any write reads tag rows and is
-- refused; under one, a row it may not read is not reached; either way a
-- right and a wrong guess are answered alike
UPDATE wr_tags SET value = 'villa' WHERE ctid = (SELECT at FROM wr_where WHERE user_id = '4');
UPDATE wr_tags SET value = 'hut' WHERE ctid = (SELECT at FROM wr_where WHERE user_id = '4');
UPDATE wr_tags SET user_id = '4', tag = 'wr.luxury', value = 'villa' WHERE ctid = (SELECT at FROM wr_where WHERE user_id = '4');
INSERT INTO wr_tags VALUES ('4', 'wr.luxury', 'villa') ON CONFLICT (user_id, tag) DO UPDATE SET value = excluded.value;
SET profile_guard.purpose = 'wr_ads';
UPDATE wr_tags SET value = 'villa' WHERE ctid = (SELECT at FROM wr_where WHERE user_id = '4');
UPDATE wr_tags SET value = 'hut' WHERE ctid = (SELECT at FROM wr_where WHERE user_id = '4');
-- under a purpose, only the tag rows it may read
UPDATE wr_tags SET value = value WHERE ctid = (SELECT at FROM wr_where WHERE user_id = '5' AND tag = 'wr.luxury') RETURNING user_id;
UPDATE wr_tags SET value = value WHERE ctid = (SELECT at FROM wr_where WHERE user_id = '5' AND tag = 'wr.sports') RETURNING user_id, value;
INSERT INTO wr_tags VALUES ('6', 'wr.luxury', 'car') ON CONFLICT (user_id, tag) DO UPDATE SET value = 'van' RETURNING user_id;
-- moving a tag row to another subject: to one who never registered, no;
-- a withdrawn subject's row is not reached; a sensitive value never moves;
-- a consented value to a consenting subject, yes
UPDATE wr_tags SET user_id = '9' WHERE user_id = '2';
UPDATE wr_tags SET user_id = '1' WHERE user_id = '4';
UPDATE wr_tags SET user_id = '2' WHERE user_id = '1' AND tag = 'wr.diagnosis';
UPDATE wr_tags SET user_id = '3' WHERE user_id = '2';
RESET profile_guard.purpose;
-- MERGE with no purpose, its join naming no column of the table
MERGE INTO wr_tags t USING (SELECT 1 AS x) s ON s.x = 1
  WHEN MATCHED THEN UPDATE SET value = 'wiped'
  WHEN NOT MATCHED THEN INSERT VALUES ('2', 'wr.sports', 'a');
RESET ROLE;
SELECT user_id, tag, CASE WHEN tag = 'wr.diagnosis' THEN 'encrypted' ELSE value END AS value FROM wr_tags ORDER BY user_id, tag;

-- 5. a value assigned again is checked against the prohibited lexicon
-- again: a term added since 'villa' (4, withdrawn) and 'car' (6, care only)
-- were stored answers a right guess and a wrong one alike
BEGIN;
SELECT profile_guard.add_prohibited_topic('wr_custom', 'a topic of this suite');
SELECT profile_guard.add_prohibited_term(t, 'wr_custom') FROM unnest(ARRAY['villa', 'car']) t;
SET ROLE regress_wr_app;
SAVEPOINT guess;
UPDATE wr_profile SET luxury = 'villa' WHERE user_id = 4;
ROLLBACK TO guess;
UPDATE wr_profile SET luxury = 'big villa' WHERE user_id = 4;
ROLLBACK TO guess;
UPDATE wr_profile SET luxury = 'car' WHERE user_id = 6;
ROLLBACK TO guess;
UPDATE wr_profile SET luxury = 'red car' WHERE user_id = 6;
ROLLBACK;

-- 6. ciphertext kept from before a withdrawal is a collection like its
-- plaintext: a role that does not bypass the guard cannot bring the value
-- back by writing it; a restore (superuser) writes it as it is
BEGIN;
INSERT INTO wr_profile VALUES (60, 1, 'g@x', NULL, NULL, 'flu-mild');
SELECT diagnosis AS kept_ciphertext FROM wr_profile WHERE id = 60 \gset
SELECT :'kept_ciphertext' LIKE 'pgt2%' AS is_ciphertext;
DELETE FROM wr_profile WHERE id = 60;
SELECT profile_guard.withdraw_consent('1', 'wr_ads') IS NOT NULL AS withdrawn;
SET ROLE regress_wr_app;
SAVEPOINT replay;
INSERT INTO wr_profile VALUES (61, 1, 'h@x', NULL, NULL, 'flu-mild');
ROLLBACK TO replay;
INSERT INTO wr_profile VALUES (61, 1, 'h@x', NULL, NULL, :'kept_ciphertext');
ROLLBACK TO replay;
RESET ROLE;
INSERT INTO wr_profile VALUES (62, 1, 'i@x', NULL, NULL, :'kept_ciphertext') RETURNING id, diagnosis = :'kept_ciphertext' AS stored_as_is;
ROLLBACK;

-- 7. MERGE into a guarded table is refused, also when its join and actions
-- name no column of the table (it would update every row it matches)
SET ROLE regress_wr_app;
MERGE INTO wr_profile t USING (SELECT 1 AS x) s ON s.x = 1
  WHEN MATCHED THEN UPDATE SET email = 'merged'
  WHEN NOT MATCHED THEN INSERT VALUES (70, 2, 'm@x', NULL, NULL, NULL);
-- prepared, and run by PL/pgSQL
PREPARE merge_all AS MERGE INTO wr_profile t USING (SELECT 1 AS x) s ON s.x = 1
  WHEN MATCHED THEN UPDATE SET email = 'merged';
EXECUTE merge_all;
DEALLOCATE merge_all;
DO $$
BEGIN
	MERGE INTO wr_profile t USING (SELECT 1 AS x) s ON s.x = 1
	  WHEN MATCHED THEN UPDATE SET email = 'merged';
END $$;
RESET ROLE;
SELECT count(*) AS merged FROM wr_profile WHERE email = 'merged';

-- 8. rows with no subject (written before protect): an UPDATE that neither
-- assigns nor moves their tags collects nothing, and does not tell a row
-- that holds a hidden value from one that holds none; assigning a tag to
-- such a row is refused, whatever it held
CREATE TABLE wr_orphans (id int PRIMARY KEY, user_id int, luxury text, note text);
INSERT INTO wr_orphans VALUES (1, NULL, 'yacht', NULL), (2, NULL, NULL, NULL);
SELECT profile_guard.protect('wr_orphans', 'user_id');
SELECT profile_guard.classify('wr_orphans', 'luxury', 'wr.luxury');
GRANT SELECT, UPDATE ON wr_orphans TO regress_wr_app;
SET ROLE regress_wr_app;
UPDATE wr_orphans SET note = 'seen' WHERE id = 1;
UPDATE wr_orphans SET note = 'seen' WHERE id = 2;
UPDATE wr_orphans SET luxury = 'boat' WHERE id = 1;
UPDATE wr_orphans SET luxury = 'boat' WHERE id = 2;
RESET ROLE;
SELECT id, luxury, note FROM wr_orphans ORDER BY id;
DROP TABLE wr_orphans;

-- 9. an UPDATE that sets the collection time is checked whatever the row
-- holds: NULL is refused alike for a row with a value (hidden from the
-- writer) and for a row with none
CREATE TABLE wr_dated (id int PRIMARY KEY, user_id int, collected date, luxury text, note text);
SELECT profile_guard.protect('wr_dated', 'user_id', 'collected');
SELECT profile_guard.classify('wr_dated', 'luxury', 'wr.luxury');
INSERT INTO wr_dated VALUES (1, 1, '2024-01-01', 'yacht', NULL), (2, 2, '2024-01-01', NULL, NULL);
GRANT SELECT, UPDATE ON wr_dated TO regress_wr_app;
SET ROLE regress_wr_app;
UPDATE wr_dated SET collected = NULL WHERE id = 1;
UPDATE wr_dated SET collected = NULL WHERE id = 2;
UPDATE wr_dated SET note = 'seen' WHERE id = 2;
RESET ROLE;
SELECT id, collected, note FROM wr_dated ORDER BY id;
DROP TABLE wr_dated;

DROP TABLE wr_profile, wr_tags;
DROP EXTENSION profile_guard CASCADE;
DROP OWNED BY regress_wr_app;
DROP ROLE regress_wr_app;
