-- Partitions and inheritance children of a guarded table are guarded as
-- their parent is: row and cell gates on a direct read (the child's own
-- column numbers), the collection check and encryption on every write.
-- A partition detached or a child disinherited stays guarded in its own
-- right; the sweep and unprotect cover the whole tree; errors that name a
-- partition or a child show no value.
CREATE EXTENSION profile_guard;
SET client_min_messages = warning;
CREATE ROLE regress_app LOGIN;
DO $setup$ BEGIN
PERFORM profile_guard.define_tag('interest.music', 'preference');
PERFORM profile_guard.define_tag('health.condition', 'medical_health');
PERFORM profile_guard.define_purpose('care', 'care plans', ARRAY['health.*', 'interest.*']);
PERFORM profile_guard.allow_purpose('regress_app', 'care');
PERFORM profile_guard.register_subject(s) FROM unnest(ARRAY['1', '2', '3', '11', '12', '14']) s;
-- 1, 11, 14: separate consent to health; 2, 12: music only; 3: nothing
PERFORM profile_guard.grant_consent(s, 'care', ARRAY['health.condition', 'interest.music'], separate => true)
	FROM unnest(ARRAY['1', '11', '14']) s;
PERFORM profile_guard.grant_consent(s, 'care', ARRAY['interest.music'])
	FROM unnest(ARRAY['2', '12']) s;
END $setup$;

-- wide shape: a partition with a dropped column (its attnums differ from
-- the parent's), one made after protect, one attached later
CREATE TABLE pat (id int, music text, health text) PARTITION BY RANGE (id);
CREATE TABLE pat_low (gone int, id int, music text, health text);
ALTER TABLE pat_low DROP COLUMN gone;
ALTER TABLE pat ATTACH PARTITION pat_low FOR VALUES FROM (0) TO (10);
INSERT INTO pat VALUES (1, 'jazz', 'diabetes-type-2'), (2, 'rock', NULL), (3, 'pop', NULL);
SELECT profile_guard.protect('pat', 'id');
SELECT profile_guard.classify('pat', 'music', 'interest.music');
SELECT profile_guard.classify('pat', 'health', 'health.condition');
CREATE TABLE pat_high PARTITION OF pat FOR VALUES FROM (10) TO (20);
CREATE TABLE pat_late (id int, music text, health text);
INSERT INTO pat_late VALUES (25, 'ska', NULL);
ALTER TABLE pat ATTACH PARTITION pat_late FOR VALUES FROM (20) TO (30);
GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA public TO regress_app;

-- a sensitive value written through the parent and straight into a
-- partition is stored encrypted
INSERT INTO pat VALUES (11, 'blues', 'asthma-severe');
INSERT INTO pat_high VALUES (12, 'folk', NULL);
INSERT INTO pat_low VALUES (2, 'punk', NULL);
UPDATE pat_low SET health = 'migraine-chronic' WHERE id = 1;
SELECT tableoid::regclass AS part, id, health LIKE 'pgt2%' AS encrypted
FROM pat WHERE health IS NOT NULL ORDER BY id;
-- collection without consent is refused, through the parent and directly
INSERT INTO pat VALUES (12, 'folk', 'flu-seasonal');
INSERT INTO pat_high VALUES (12, 'folk', 'flu-seasonal');
UPDATE pat_low SET health = 'flu-seasonal' WHERE id = 2;
INSERT INTO pat_late VALUES (21, NULL, 'flu-seasonal');

-- reads of a partition are gated exactly as reads of the parent
SET ROLE regress_app;
SELECT * FROM pat_low ORDER BY id, music;
SELECT * FROM pat_high ORDER BY id;
SELECT id FROM pat_late ORDER BY id;
SELECT music FROM pat_late;
SET profile_guard.purpose = 'care';
SELECT * FROM pat ORDER BY id, music;
SELECT * FROM pat_low ORDER BY id, music;
SELECT * FROM pat_high ORDER BY id;
SELECT * FROM pat_late ORDER BY id;
SELECT p FROM pat_low p ORDER BY id, music;
RESET profile_guard.purpose;
RESET ROLE;

-- long shape: the partition is a long-shape table too
CREATE TABLE tags (uid int, tag text, value text) PARTITION BY LIST (tag);
CREATE TABLE tags_music PARTITION OF tags FOR VALUES IN ('interest.music');
SELECT profile_guard.protect('tags', 'uid', tag_column => 'tag', value_column => 'value');
CREATE TABLE tags_health PARTITION OF tags FOR VALUES IN ('health.condition');
GRANT SELECT, INSERT ON ALL TABLES IN SCHEMA public TO regress_app;
INSERT INTO tags VALUES (1, 'interest.music', 'jazz'), (2, 'interest.music', 'rock');
INSERT INTO tags_music VALUES (3, 'interest.music', 'pop');
INSERT INTO tags VALUES (1, 'health.condition', 'diabetes-type-2');
INSERT INTO tags_health VALUES (11, 'health.condition', 'asthma-severe');
INSERT INTO tags_health VALUES (2, 'health.condition', 'flu-seasonal');
SELECT uid, value LIKE 'pgt2%' AS encrypted FROM tags_health ORDER BY uid;
SET ROLE regress_app;
SELECT * FROM tags_music;
SELECT count(*) FROM tags_health;
SET profile_guard.purpose = 'care';
SELECT * FROM tags_music ORDER BY uid;
SELECT * FROM tags_health ORDER BY uid;
RESET profile_guard.purpose;
RESET ROLE;

-- an inheritance child made by the owner is read through the same gates
CREATE TABLE members (id int, music text, health text);
SELECT profile_guard.protect('members', 'id');
SELECT profile_guard.classify('members', 'music', 'interest.music');
SELECT profile_guard.classify('members', 'health', 'health.condition');
CREATE TABLE kid (x int, id int, music text, health text);
ALTER TABLE kid DROP COLUMN x;
INSERT INTO kid VALUES (2, 'rock', NULL), (3, 'pop', NULL);
ALTER TABLE kid INHERIT members;
GRANT SELECT ON kid TO regress_app;
SET ROLE regress_app;
SELECT * FROM kid ORDER BY id;
SET profile_guard.purpose = 'care';
SELECT * FROM kid ORDER BY id;
RESET profile_guard.purpose;
RESET ROLE;
-- 1. Inheritance children are written through the same checks as their
-- parent, however they came to be: made with INHERITS (at any depth),
-- given a guarded parent by ALTER TABLE ... INHERIT (the plaintext they
-- hold is encrypted then), or there before the parent was protected
CREATE TABLE kid2 () INHERITS (members);
CREATE TABLE kid3 () INHERITS (kid2);
INSERT INTO kid2 VALUES (1, 'jazz', 'asthma-mild');
INSERT INTO kid3 VALUES (11, 'blues', 'asthma-severe');
UPDATE kid2 SET health = 'asthma-moderate' WHERE id = 1;
SELECT tableoid::regclass AS tbl, id, health LIKE 'pgt2%' AS encrypted
FROM members WHERE health IS NOT NULL ORDER BY id;
INSERT INTO kid2 VALUES (12, 'folk', 'flu-seasonal');
INSERT INTO kid3 VALUES (3, 'pop', NULL);
UPDATE members SET health = 'flu-seasonal' WHERE id = 2;
-- whichever way the row comes in
INSERT INTO kid2 SELECT 12, NULL, 'flu-seasonal';
COPY kid3 FROM stdin;
12	\N	flu-seasonal
\.
PREPARE put_kid(int, text) AS INSERT INTO kid3 VALUES ($1, NULL, $2);
EXECUTE put_kid(2, 'flu-seasonal');
WITH w AS (INSERT INTO kid2 VALUES (2, NULL, 'flu-seasonal') RETURNING 1) SELECT count(*) FROM w;
CREATE VIEW kid2_view AS SELECT * FROM kid2;
INSERT INTO kid2_view VALUES (12, NULL, 'flu-seasonal');
CREATE FUNCTION put_kid3(int, text) RETURNS void LANGUAGE sql AS $$INSERT INTO kid3 VALUES ($1, NULL, $2)$$;
SELECT put_kid3(12, 'flu-seasonal');
GRANT SELECT, INSERT, UPDATE ON kid2, kid3 TO regress_app;
SET ROLE regress_app;
INSERT INTO kid3 VALUES (12, NULL, 'flu-seasonal');
RESET ROLE;
-- a table with rows given a guarded parent: its plaintext is encrypted
CREATE TABLE kid4 (id int, music text, health text);
INSERT INTO kid4 VALUES (1, 'jazz', 'gout-acute');
ALTER TABLE kid4 INHERIT members;
SELECT id, health LIKE 'pgt2%' AS encrypted FROM ONLY kid4;
INSERT INTO kid4 VALUES (12, NULL, 'flu-seasonal');
-- a child made before its parent was protected
CREATE TABLE older (id int, music text, health text);
CREATE TABLE older_kid () INHERITS (older);
INSERT INTO older_kid VALUES (1, 'jazz', 'gout-acute');
SELECT profile_guard.protect('older', 'id');
SELECT profile_guard.classify('older', 'health', 'health.condition');
SELECT id, health LIKE 'pgt2%' AS encrypted FROM ONLY older_kid;
INSERT INTO older_kid VALUES (12, NULL, 'flu-seasonal');
-- each child keeps no statistics of its tags and has row-level security
-- (no error quotes its values)
SELECT c.relname, a.attname, a.attstattarget, c.relrowsecurity
FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid
WHERE c.relname IN ('kid2', 'kid3', 'kid4', 'older_kid') AND a.attname IN ('music', 'health')
ORDER BY 1, 2;
-- a child is guarded through its parent: it cannot be protected apart,
-- nothing on its tag columns may betray their values, and it is under
-- one guarded table only
SELECT profile_guard.protect('kid2', 'id');
ALTER TABLE kid2 ADD CONSTRAINT kid2_music_key UNIQUE (music);
CREATE TABLE twice () INHERITS (members, older);
-- long shape
CREATE TABLE ltags (uid int, tag text, value text);
SELECT profile_guard.protect('ltags', 'uid', tag_column => 'tag', value_column => 'value');
CREATE TABLE ltags_kid () INHERITS (ltags);
CREATE TABLE ltags_late (uid int, tag text, value text);
INSERT INTO ltags_late VALUES (1, 'health.condition', 'gout-acute'), (1, 'interest.music', 'jazz');
ALTER TABLE ltags_late INHERIT ltags;
INSERT INTO ltags_kid VALUES (1, 'health.condition', 'diabetes-type-2'), (12, 'interest.music', 'folk');
INSERT INTO ltags_kid VALUES (2, 'health.condition', 'flu-seasonal');
INSERT INTO ltags_late VALUES (3, 'interest.music', 'pop');
SELECT tableoid::regclass AS tbl, uid, tag, value LIKE 'pgt2%' AS encrypted
FROM ltags ORDER BY 1, 2, 3;
GRANT SELECT ON ltags_kid, ltags_late TO regress_app;
SET ROLE regress_app;
SELECT count(*) FROM ltags_late;
SET profile_guard.purpose = 'care';
SELECT * FROM ltags_kid ORDER BY uid, tag;
RESET profile_guard.purpose;
RESET ROLE;

-- 3. A sweep erases in every partition and inheritance child
INSERT INTO pat VALUES (14, 'swing', 'hay-fever');
INSERT INTO kid3 VALUES (14, 'swing', 'hay-fever');
INSERT INTO tags VALUES (14, 'health.condition', 'hay-fever'), (14, 'interest.music', 'swing');
INSERT INTO ltags_kid VALUES (14, 'interest.music', 'swing');
SELECT profile_guard.request_erasure('14') > 0 AS requested;
SELECT * FROM profile_guard.sweep() ORDER BY relation, tag, reason, action;
SELECT tableoid::regclass AS tbl, id FROM pat WHERE id = 14
UNION ALL SELECT tableoid::regclass, id FROM members WHERE id = 14
UNION ALL SELECT tableoid::regclass, uid FROM tags WHERE uid = 14
UNION ALL SELECT tableoid::regclass, uid FROM ltags WHERE uid = 14;

-- 2. A partition detached, or a child no longer inheriting, stays
-- guarded: it becomes a guarded table in its own right, classified as its
-- parent was, and is written and read through the same gates
ALTER TABLE pat DETACH PARTITION pat_high;
ALTER TABLE pat DETACH PARTITION pat_late CONCURRENTLY;
ALTER TABLE kid NO INHERIT members;
ALTER TABLE tags DETACH PARTITION tags_health;
SELECT relid, subject_column, tag_column, value_column, on_erase
FROM profile_guard.guarded_table ORDER BY relid::text;
SELECT relid, column_name, tag FROM profile_guard.classified_column ORDER BY relid::text, column_name;
INSERT INTO pat_high VALUES (12, 'folk', 'flu-seasonal');
INSERT INTO pat_late VALUES (21, NULL, 'flu-seasonal');
INSERT INTO kid VALUES (12, NULL, 'flu-seasonal');
INSERT INTO tags_health VALUES (12, 'health.condition', 'flu-seasonal');
INSERT INTO pat_high VALUES (11, 'folk', 'gout-acute');
INSERT INTO kid VALUES (1, NULL, 'gout-acute');
INSERT INTO tags_health VALUES (1, 'health.condition', 'gout-acute');
SELECT 'pat_high' AS tbl, id, health LIKE 'pgt2%' AS encrypted FROM pat_high WHERE health IS NOT NULL
UNION ALL SELECT 'kid', id, health LIKE 'pgt2%' FROM kid WHERE health IS NOT NULL
UNION ALL SELECT 'tags_health', uid, value LIKE 'pgt2%' FROM tags_health
ORDER BY 1, 2;
CREATE VIEW detached_view AS SELECT * FROM pat_high;
GRANT SELECT ON detached_view TO regress_app;
CREATE FUNCTION detached_rows() RETURNS SETOF kid LANGUAGE sql AS $$SELECT * FROM kid$$;
SET ROLE regress_app;
SELECT * FROM pat_high;
SELECT * FROM pat_late;
SELECT * FROM kid;
SELECT count(*) FROM tags_health;
SET profile_guard.purpose = 'care';
SELECT * FROM pat_high ORDER BY id, music;
SELECT * FROM detached_view ORDER BY id, music;
WITH c AS (SELECT * FROM kid) SELECT * FROM c ORDER BY id, music;
SELECT * FROM detached_rows() ORDER BY id, music;
SELECT k FROM kid k ORDER BY id, music;
PREPARE read_tags AS SELECT * FROM tags_health ORDER BY uid;
EXECUTE read_tags;
COPY tags_health TO stdout;
RESET profile_guard.purpose;
RESET ROLE;
-- attached again: guarded through its parent again, with one trigger
ALTER TABLE pat ATTACH PARTITION pat_high FOR VALUES FROM (10) TO (20);
ALTER TABLE kid INHERIT members;
SELECT relid FROM profile_guard.guarded_table ORDER BY relid::text;
SELECT tgrelid::regclass AS tbl, tgname FROM pg_trigger
WHERE tgrelid IN ('pat_high'::regclass, 'kid'::regclass) ORDER BY 1;
INSERT INTO pat VALUES (12, NULL, 'flu-seasonal');
INSERT INTO kid VALUES (12, NULL, 'flu-seasonal');
-- a guarded table goes under no unguarded parent, nor under a guarded
-- one that classifies it otherwise
CREATE TABLE loose (id int, music text, health text) PARTITION BY RANGE (id);
ALTER TABLE loose ATTACH PARTITION pat_late FOR VALUES FROM (20) TO (30);
CREATE TABLE loose2 (id int, music text, health text);
ALTER TABLE pat_late INHERIT loose2;
CREATE TABLE other (id int, music text, health text);
SELECT profile_guard.protect('other', 'id');
SELECT profile_guard.classify('other', 'music', 'interest.music');
ALTER TABLE pat ATTACH PARTITION other FOR VALUES FROM (30) TO (40);
ALTER TABLE other INHERIT members;
-- the functions that act on such a change answer ALTER TABLE only
SELECT profile_guard._before_attach('pat_late', 'pat', true);
SELECT profile_guard._adopt_detached('loose2', 'pat');

-- 4. Errors that name a partition or a child show no value, as errors
-- that name the parent do
CREATE TABLE vault (id int, music text, note text) PARTITION BY LIST (id);
CREATE TABLE cellar PARTITION OF vault FOR VALUES IN (1, 2);
SELECT profile_guard.protect('vault', 'id');
SELECT profile_guard.classify('vault', 'music', 'interest.music');
INSERT INTO vault VALUES (1, 'secret-tune', 'n'), (2, 'secret-tune', 'n');
INSERT INTO vault VALUES (12, 'secret-tune', 'n');
-- (a check on a tag column is refused on a partition too)
ALTER TABLE cellar ADD CONSTRAINT no_metal CHECK (music <> 'metal-secret');
ALTER TABLE cellar ADD CONSTRAINT no_metal CHECK (note <> 'metal');
INSERT INTO vault VALUES (1, 'secret-tune', 'metal');
ALTER TABLE cellar ALTER COLUMN note SET NOT NULL;
INSERT INTO vault VALUES (1, 'secret-tune', NULL);
INSERT INTO cellar VALUES (2, 'secret-tune', NULL);
CREATE UNIQUE INDEX cellar_music ON cellar (music);
INSERT INTO kid2 VALUES (1, 'secret-kid', NULL), (1, 'secret-kid', NULL);
CREATE UNIQUE INDEX kid2_music ON kid2 (music);
CREATE TABLE tunes (music text PRIMARY KEY);
ALTER TABLE kid2 ADD FOREIGN KEY (music) REFERENCES tunes;
ALTER TABLE cellar ADD FOREIGN KEY (music) REFERENCES tunes;

-- 3. unprotect of the parent takes the whole tree out of policy; a child
-- cannot be unprotected apart
SELECT profile_guard.unprotect('kid2');
SELECT profile_guard.unprotect('members');
SELECT tgrelid::regclass AS tbl FROM pg_trigger WHERE tgname = 'profile_guard_collect'
  AND tgrelid::regclass::text IN ('members', 'kid', 'kid2', 'kid3', 'kid4') ORDER BY 1;
SELECT tableoid::regclass AS tbl, id, health FROM members WHERE health IS NOT NULL ORDER BY 1, 2;
INSERT INTO kid3 VALUES (3, 'pop', 'plain-now');
SET ROLE regress_app;
SELECT * FROM kid3 ORDER BY id, music;
RESET ROLE;

DROP TABLE pat, tags, members, pat_late, tags_health, older, ltags, loose, loose2, other, vault, tunes CASCADE;
DROP FUNCTION put_kid3(int, text);
DROP EXTENSION profile_guard CASCADE;
DROP ROLE regress_app;
