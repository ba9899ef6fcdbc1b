-- The collecting insert: an INSERT into a guarded table collects its rows in
-- its plan instead of the collection trigger, with the same refusals and the
-- same stored values, and only where the trigger alone would fire.
CREATE EXTENSION profile_guard;
SET client_min_messages = warning;
CREATE ROLE regress_cip_app LOGIN;
DO $setup$ BEGIN
PERFORM profile_guard.define_tag('interest.music', 'preference');
PERFORM profile_guard.define_tag('health.condition', 'medical_health');
PERFORM profile_guard.define_purpose('care', 'care plans', ARRAY['health.*', 'interest.*']);
PERFORM profile_guard.allow_purpose('regress_cip_app', 'care');
PERFORM profile_guard.register_subject(s::text) FROM generate_series(1, 3) s;
-- 1: separate consent to health and music; 2: music only; 3: none
PERFORM profile_guard.grant_consent('1', 'care', ARRAY['health.condition', 'interest.music'], separate => true);
PERFORM profile_guard.grant_consent('2', 'care', ARRAY['interest.music']);
END $setup$;

CREATE TABLE cip (id int PRIMARY KEY, note text, music text, health text);
SELECT profile_guard.protect('cip', 'id');
SELECT profile_guard.classify('cip', 'music', 'interest.music');
SELECT profile_guard.classify('cip', 'health', 'health.condition');
GRANT SELECT, INSERT, UPDATE, DELETE ON cip TO regress_cip_app;
-- what each row stores, without the purpose: ciphertext or the value itself
CREATE FUNCTION cip_stored() RETURNS TABLE (id int, music text, health_encrypted boolean)
LANGUAGE sql AS $$ SELECT id, music, health LIKE 'pgt2%' FROM cip ORDER BY id $$;

-- the plan: the node sits under the INSERT, and not with the setting off
EXPLAIN (COSTS OFF) INSERT INTO cip VALUES (1, 'a', 'jazz', 'asthma');
EXPLAIN (COSTS OFF) INSERT INTO cip SELECT id + 10, note, music, health FROM cip;
SET profile_guard.collect_in_plan = off;
EXPLAIN (COSTS OFF) INSERT INTO cip VALUES (1, 'a', 'jazz', 'asthma');
RESET profile_guard.collect_in_plan;
-- not for what keeps the trigger: ON CONFLICT DO UPDATE, UPDATE, an unguarded table
EXPLAIN (COSTS OFF) INSERT INTO cip VALUES (1, 'a', 'jazz', 'asthma') ON CONFLICT (id) DO UPDATE SET music = excluded.music;
EXPLAIN (COSTS OFF) INSERT INTO cip VALUES (1, 'a', 'jazz', 'asthma') ON CONFLICT DO NOTHING;
EXPLAIN (COSTS OFF) UPDATE cip SET music = 'rock';
CREATE TEMP TABLE cip_plain (id int, note text, music text, health text);
EXPLAIN (COSTS OFF) INSERT INTO cip_plain VALUES (1, 'a', 'jazz', 'asthma');
-- EXPLAIN ANALYZE says who collected the rows.  The setting is read as the
-- statement starts: a plan made while it was on follows it too
BEGIN;
SET LOCAL plan_cache_mode = force_generic_plan;
PREPARE cip_explained(int) AS INSERT INTO cip (id, music) VALUES ($1, 'jazz');
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) EXECUTE cip_explained(1);
SET LOCAL profile_guard.collect_in_plan = off;
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) EXECUTE cip_explained(2);
ROLLBACK;
DEALLOCATE cip_explained;

-- stored as the trigger stores it: sensitive values encrypted
SET ROLE regress_cip_app;
INSERT INTO cip VALUES (1, 'first', 'jazz', 'asthma-severe'), (2, NULL, 'rock', NULL);
-- refused, and nothing written: no consent to 2's health, none at all for 3
INSERT INTO cip VALUES (3, NULL, 'pop', NULL);
INSERT INTO cip VALUES (4, NULL, NULL, NULL), (2, NULL, 'rock', 'flu');
-- the prohibited lexicon, in a general tag and in a sensitive one
INSERT INTO cip VALUES (1, NULL, 'gambling tips', NULL);
INSERT INTO cip VALUES (1, NULL, NULL, 'gambling addiction');
-- the statement's other rows are not written either
INSERT INTO cip SELECT 5, NULL, 'jazz', NULL UNION ALL SELECT 3, NULL, 'pop', NULL;
RESET ROLE;
SELECT * FROM cip_stored();
SET ROLE regress_cip_app;
SET profile_guard.purpose = 'care';
SELECT id, music, health FROM cip ORDER BY id;
RESET profile_guard.purpose;
RESET ROLE;

-- the same rows with the setting off store the same: compare both ways
CREATE TABLE cip_off (LIKE cip);
SELECT profile_guard.protect('cip_off', 'id');
SELECT profile_guard.classify('cip_off', 'music', 'interest.music');
SELECT profile_guard.classify('cip_off', 'health', 'health.condition');
SET profile_guard.collect_in_plan = off;
INSERT INTO cip_off VALUES (1, 'first', 'jazz', 'asthma-severe'), (2, NULL, 'rock', NULL);
INSERT INTO cip_off VALUES (3, NULL, 'pop', NULL);
RESET profile_guard.collect_in_plan;
SELECT a.id, a.music = b.music AS same_music, a.health IS NULL = (b.health IS NULL) AS same_nulls,
       a.health LIKE 'pgt2%' AND b.health LIKE 'pgt2%' AS both_encrypted
  FROM cip a JOIN cip_off b USING (id) ORDER BY id;
DROP TABLE cip_off;

-- every way an INSERT is planned: INSERT ... SELECT, a CTE, RETURNING,
-- a prepared statement's generic plan, SQL and PL/pgSQL functions, an
-- error caught in PL/pgSQL
DELETE FROM cip;
CREATE TEMP TABLE cip_source (id int, music text, health text);
INSERT INTO cip_source VALUES (1, 'jazz', 'asthma-severe'), (2, 'rock', NULL);
GRANT SELECT ON cip_source TO regress_cip_app;
SET ROLE regress_cip_app;
INSERT INTO cip (id, music, health) SELECT id, music, health FROM cip_source;
SET profile_guard.purpose = 'care';
WITH moved AS (DELETE FROM cip WHERE id = 1 RETURNING *)
INSERT INTO cip SELECT id, 'from a CTE', music, health FROM moved RETURNING id, note, health;
RESET profile_guard.purpose;
WITH ins AS (INSERT INTO cip VALUES (3, NULL, 'pop', NULL) RETURNING id) SELECT * FROM ins;
SET plan_cache_mode = force_generic_plan;
PREPARE cip_ins(int, text, text) AS INSERT INTO cip (id, music, health) VALUES ($1, $2, $3);
DELETE FROM cip WHERE id = 2;
EXECUTE cip_ins(2, 'rock', NULL);
EXECUTE cip_ins(3, 'pop', NULL);
DELETE FROM cip WHERE id = 1;
EXECUTE cip_ins(1, 'jazz', 'migraine');
RESET plan_cache_mode;
RESET ROLE;
CREATE FUNCTION cip_sql_insert(i int, m text, h text) RETURNS void
LANGUAGE sql AS $$ INSERT INTO cip (id, music, health) VALUES (i, m, h) $$;
CREATE FUNCTION cip_plpgsql_insert(i int, m text, h text) RETURNS text
LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO cip (id, music, health) VALUES (i, m, h);
	RETURN 'inserted';
EXCEPTION WHEN OTHERS THEN
	RETURN 'refused: ' || SQLSTATE;
END $$;
GRANT EXECUTE ON FUNCTION cip_sql_insert(int, text, text), cip_plpgsql_insert(int, text, text) TO regress_cip_app;
SET ROLE regress_cip_app;
DELETE FROM cip WHERE id = 1;
SELECT cip_sql_insert(1, 'jazz', 'asthma-mild');
SELECT cip_sql_insert(3, 'pop', NULL);
DELETE FROM cip WHERE id = 1;
SELECT cip_plpgsql_insert(1, 'jazz', 'asthma-mild');
SELECT cip_plpgsql_insert(3, 'pop', NULL);
SELECT cip_plpgsql_insert(2, 'rock', 'flu');
RESET ROLE;
SELECT * FROM cip_stored();
DEALLOCATE cip_ins;

-- a BEFORE ROW trigger that fires before the collection trigger: the
-- trigger collects (the node stands aside), and sees the plaintext first
DELETE FROM cip;
CREATE FUNCTION cip_upper() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	NEW.health := upper(NEW.health);
	NEW.note := coalesce(NEW.health LIKE 'pgt2%', false)::text;
	RETURN NEW;
END $$;
CREATE TRIGGER a_upper BEFORE INSERT ON cip FOR EACH ROW EXECUTE FUNCTION cip_upper();
INSERT INTO cip (id, music, health) VALUES (1, 'jazz', 'asthma-severe');
INSERT INTO cip (id, music, health) VALUES (3, 'pop', NULL);
SELECT id, note AS trigger_saw_ciphertext, health LIKE 'pgt2%' AS encrypted FROM cip;
SET ROLE regress_cip_app;
SET profile_guard.purpose = 'care';
SELECT id, health FROM cip;
RESET profile_guard.purpose;
RESET ROLE;
DROP TRIGGER a_upper ON cip;
-- one that would fire after it: refused, node or not; disabled, it fires
-- not and the node collects
CREATE TRIGGER z_after BEFORE INSERT ON cip FOR EACH ROW EXECUTE FUNCTION cip_upper();
INSERT INTO cip (id, music, health) VALUES (2, 'rock', NULL);
-- ... also in a prepared statement planned before the trigger came
DROP TRIGGER z_after ON cip;
PREPARE cip_ins2(int) AS INSERT INTO cip (id, music) VALUES ($1, 'rock');
EXECUTE cip_ins2(2);
DELETE FROM cip WHERE id = 2;
CREATE TRIGGER z_after BEFORE INSERT ON cip FOR EACH ROW EXECUTE FUNCTION cip_upper();
EXECUTE cip_ins2(2);
ALTER TABLE cip DISABLE TRIGGER z_after;
EXECUTE cip_ins2(2);
DEALLOCATE cip_ins2;
-- ... and one that fires in replica mode only, entered by the statement
-- itself: from that row on the trigger collects, and refuses it
ALTER TABLE cip ENABLE REPLICA TRIGGER z_after;
BEGIN;
DELETE FROM cip WHERE id = 2;
INSERT INTO cip (id, music) SELECT 2, 'rock' WHERE set_config('session_replication_role', 'replica', true) IS NOT NULL;
ROLLBACK;
DROP TRIGGER z_after ON cip;
SELECT * FROM cip_stored();

-- replica mode does not switch the collection off
SET session_replication_role = replica;
INSERT INTO cip (id, music, health) VALUES (3, 'pop', NULL);
DELETE FROM cip WHERE id = 1;
INSERT INTO cip (id, music, health) VALUES (1, 'jazz', 'asthma-severe');
RESET session_replication_role;
-- the node follows the trigger's state: the table's owner disabling the
-- collection trigger switches both off (assess() reports it)
ALTER TABLE cip DISABLE TRIGGER profile_guard_collect;
INSERT INTO cip (id, music, health) VALUES (4, 'folk', NULL);
ALTER TABLE cip ENABLE ALWAYS TRIGGER profile_guard_collect;
DELETE FROM cip WHERE id = 4;
SELECT * FROM cip_stored();

-- a dropped column before the guarded ones, and ON CONFLICT DO NOTHING
ALTER TABLE cip DROP COLUMN note;
DELETE FROM cip;
INSERT INTO cip VALUES (1, 'jazz', 'asthma-severe') ON CONFLICT DO NOTHING;
INSERT INTO cip VALUES (1, 'blues', 'flu'), (2, 'rock', NULL) ON CONFLICT DO NOTHING;
INSERT INTO cip VALUES (3, 'pop', NULL) ON CONFLICT DO NOTHING;
SELECT * FROM cip_stored();
SET ROLE regress_cip_app;
SET profile_guard.purpose = 'care';
SELECT id, music, health FROM cip ORDER BY id;
RESET profile_guard.purpose;
RESET ROLE;

-- a collected-at column: the row says when, as with the trigger
CREATE TABLE cip_dated (id int, at timestamptz, health text);
SELECT profile_guard.protect('cip_dated', 'id', collected_at_column => 'at');
SELECT profile_guard.classify('cip_dated', 'health', 'health.condition');
GRANT SELECT, INSERT ON cip_dated TO regress_cip_app;
EXPLAIN (COSTS OFF) INSERT INTO cip_dated VALUES (1, now(), 'asthma');
SET ROLE regress_cip_app;
INSERT INTO cip_dated VALUES (1, NULL, 'asthma');
INSERT INTO cip_dated VALUES (1, 'infinity', 'asthma');
INSERT INTO cip_dated VALUES (1, now(), 'asthma');
RESET ROLE;
SELECT id, at IS NOT NULL AS dated, health LIKE 'pgt2%' AS encrypted FROM cip_dated;
DROP TABLE cip_dated;

-- the long shape: one row per tag
CREATE TABLE cip_long (uid int, tag text, value text);
SELECT profile_guard.protect('cip_long', 'uid', tag_column => 'tag', value_column => 'value');
EXPLAIN (COSTS OFF) INSERT INTO cip_long VALUES (1, 'interest.music', 'jazz');
INSERT INTO cip_long VALUES (1, 'interest.music', 'jazz'), (1, 'health.condition', 'asthma');
INSERT INTO cip_long VALUES (1, 'interest.unknown', 'x');
INSERT INTO cip_long VALUES (2, 'health.condition', 'asthma');
INSERT INTO cip_long VALUES (2, 'interest.music', 'gambling');
INSERT INTO cip_long VALUES (NULL, 'interest.music', 'jazz');
SELECT uid, tag, value LIKE 'pgt2%' AS encrypted, CASE WHEN tag = 'interest.music' THEN value END AS general_value FROM cip_long ORDER BY uid, tag;
DROP TABLE cip_long;

-- a table shadowed in the temporary schema is not the guarded one
CREATE TEMP TABLE cip (id int, music text, health text);
INSERT INTO cip VALUES (3, 'pop', 'flu');
SELECT id, health FROM cip;
DROP TABLE pg_temp.cip;
SELECT * FROM cip_stored();

DROP FUNCTION cip_stored(), cip_upper(), cip_sql_insert(int, text, text), cip_plpgsql_insert(int, text, text);
DROP TABLE cip, cip_source;
DROP EXTENSION profile_guard CASCADE;
DROP ROLE regress_cip_app;
