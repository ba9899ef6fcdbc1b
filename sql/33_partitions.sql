-- Partitions and inheritance children of a guarded table are guarded as
-- their parent is: row and cell gates on a direct read (the child's own
-- column numbers), the collection check and encryption on every write.
CREATE EXTENSION profile_guard;
SET client_min_messages = warning;
CREATE ROLE regress_app LOGIN;
DO $setup$ BEGIN
PERFORM profile_guard.define_tag('interest.music', 'preference');
PERFORM profile_guard.define_tag('health.condition', 'medical_health');
PERFORM profile_guard.define_purpose('care', 'care plans', ARRAY['health.*', 'interest.*']);
PERFORM profile_guard.allow_purpose('regress_app', 'care');
PERFORM profile_guard.register_subject(s) FROM unnest(ARRAY['1', '2', '3', '11', '12']) s;
-- 1, 11: separate consent to health; 2, 12: music only; 3: nothing
PERFORM profile_guard.grant_consent(s, 'care', ARRAY['health.condition', 'interest.music'], separate => true)
	FROM unnest(ARRAY['1', '11']) s;
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
SELECT tableoid::regclass AS part, id, health LIKE 'pgt1:%' AS encrypted
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
SELECT uid, value LIKE 'pgt1:%' AS encrypted FROM tags_health ORDER BY uid;
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
-- no longer a child: no longer guarded through the parent
ALTER TABLE kid NO INHERIT members;
SET ROLE regress_app;
SELECT * FROM kid ORDER BY id;
RESET ROLE;

DROP TABLE pat, tags, members, kid;
DROP EXTENSION profile_guard CASCADE;
DROP ROLE regress_app;
