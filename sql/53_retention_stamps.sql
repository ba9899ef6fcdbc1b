--
-- 53_retention_stamps: retention in guarded tables protected without a
-- collected_at column, with collection stamps (stamp_collection, on by
-- default).  The write path logs each (subject, tag) it collects in
-- profile_guard.collection_stamp_log (one row per table and tag, at
-- commit), the sweep merges the log into profile_guard.collection_stamp,
-- the values a table held before protect()/classify() are stamped then,
-- and the sweep erases a tag whose stamp is older than its retention, for
-- the wide and the long shape.  set_collection_stamps() switches them on
-- (stamping what the table holds) or off (deleting its stamps); a table
-- that opted out is never stamped.  Stamps are moved into the past by
-- UPDATE (as superuser), so that nothing depends on today's date.
--
CREATE EXTENSION profile_guard;
SET client_min_messages = warning;
SET search_path = public, profile_guard;
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
-- the guarded tables' stamp settings and the stamps, to show that a refused
-- call changes nothing
CREATE FUNCTION pg_temp.state() RETURNS text LANGUAGE sql AS $$
	SELECT coalesce((SELECT string_agg(format('%s=%s', g.relid, g.stamp_collection), ' ' ORDER BY g.relid::text)
					 FROM profile_guard.guarded_table g), '') || '; '
		   || (SELECT count(*) FROM profile_guard.collection_stamp) || ' stamps; '
		   || (SELECT count(*) FROM profile_guard.collection_stamp_log) || ' logged'
$$;

DO $setup$ BEGIN
PERFORM define_tag('interest.sports', 'preference');
PERFORM define_tag('interest.music', 'preference');
PERFORM define_purpose('ads', 'advertising', ARRAY['interest.*'], retention => '30 days');
PERFORM define_purpose('rec', 'recommendations', ARRAY['interest.music']);
PERFORM register_subject(s) FROM unnest(ARRAY['1', '2', '3', '4', '5']) s;
-- everyone consents to ads (retention 30 days); 3 also to rec (no
-- retention), which keeps its music
PERFORM grant_consent(s, 'ads', ARRAY['interest.*']) FROM unnest(ARRAY['1', '2', '3', '4', '5']) s;
PERFORM grant_consent('3', 'rec', ARRAY['interest.music']);
END $setup$;

-- the pairs logged by the writes and not merged yet: per table and tag, the
-- subjects in the order written (without dates: 'recent' is today)
CREATE FUNCTION logged() RETURNS TABLE (relid regclass, tag text, collected text, subjects text[])
LANGUAGE sql AS $$
	SELECT l.relid, l.tag, CASE WHEN l.collected_at > now() - interval '1 day' THEN 'recent' END, l.subjects
	FROM profile_guard.collection_stamp_log l ORDER BY l.relid::text, 2, 4
$$;
-- what the stamps say, the log merged first (as the sweep does), without
-- dates: 'recent' (today) or 'old' (moved into the past below)
CREATE FUNCTION stamps() RETURNS TABLE (relid regclass, subject text, tag text, collected text)
LANGUAGE sql AS $$
	SELECT profile_guard._merge_collection_stamps();
	SELECT s.relid, s.subject, s.tag,
		   CASE WHEN s.collected_at > now() - interval '1 day' THEN 'recent'
				WHEN s.collected_at < now() - interval '59 days' THEN 'old' END
	FROM profile_guard.collection_stamp s ORDER BY s.relid::text, 2, 3
$$;

-- wide: rows written before protect() are stamped when their column is
-- classified (nothing before: the table has no tag column yet); stamps
-- are the default
CREATE TABLE w (id int, sports text, music text, note text);
INSERT INTO w VALUES (1, 'tennis', 'jazz', NULL), (2, 'golf', NULL, NULL);
SELECT protect('w', 'id');
SELECT stamp_collection FROM guarded_table WHERE relid = 'w'::regclass;
SELECT * FROM stamps();
SELECT classify('w', 'sports', 'interest.sports');
SELECT classify('w', 'music', 'interest.music');
SELECT * FROM stamps();

-- long: the rows a table holds when protected are stamped then
CREATE TABLE l (uid bigint, tag text, value text);
INSERT INTO l VALUES (1, 'interest.sports', 'tennis'), (1, 'interest.music', NULL);
SELECT protect('l', 'uid', tag_column => 'tag', value_column => 'value', stamp_collection => true);
SELECT * FROM stamps() WHERE relid = 'l'::regclass;

-- a table with a collected_at column is not stamped, whatever
-- stamp_collection says: the column gives it its retention
CREATE TABLE c (id int, collected timestamptz, sports text);
SELECT protect('c', 'id', 'collected', stamp_collection => true);
SELECT stamp_collection FROM guarded_table WHERE relid = 'c'::regclass;
SELECT classify('c', 'sports', 'interest.sports');
INSERT INTO c VALUES (4, now(), 'polo');
SELECT count(*) AS stamps_of_c FROM collection_stamp WHERE relid = 'c'::regclass;
SELECT count(*) AS logged_for_c FROM collection_stamp_log WHERE relid = 'c'::regclass;

-- the write path: one pair per tag column holding a value (wide), the
-- row's (subject, tag) (long), logged when the transaction commits: one
-- log row per table and tag (a pair repeated by the next row is logged
-- once); several rows of one pair make one stamp
BEGIN;
INSERT INTO w VALUES (3, 'chess', 'pop', NULL), (4, NULL, 'folk', NULL), (4, NULL, 'folk', 'twice');
INSERT INTO l VALUES (2, 'interest.music', 'rock'), (3, 'interest.sports', 'golf'),
	(3, 'interest.music', 'pop'), (3, 'interest.music', 'soul');
SELECT count(*) AS logged_before_commit FROM collection_stamp_log;
COMMIT;
SELECT * FROM logged();
-- merged, the log is empty
SELECT * FROM stamps();
SELECT count(*) AS logged_after_merge FROM collection_stamp_log;

-- a rolled back write stamps nothing, nor does a rolled back subtransaction
BEGIN;
INSERT INTO w VALUES (5, 'judo', NULL, NULL);
ROLLBACK;
BEGIN;
SAVEPOINT a;
INSERT INTO l VALUES (5, 'interest.sports', 'judo');
ROLLBACK TO SAVEPOINT a;
INSERT INTO l VALUES (5, 'interest.music', 'blues');
COMMIT;
SELECT * FROM logged();
SELECT * FROM stamps() WHERE subject = '5';

-- every stamp is moved 60 days into the past
UPDATE collection_stamp SET collected_at = now() - interval '60 days';
-- an UPDATE that assigns a tag column collects it again: its stamp moves;
-- one that assigns other columns leaves the stamps alone
UPDATE w SET music = 'blues' WHERE id = 1;
UPDATE w SET note = 'seen' WHERE id = 2;
UPDATE l SET value = 'squash' WHERE uid = 3 AND tag = 'interest.sports';
SELECT * FROM logged();

-- the sweep merges the log first, then applies retention: ads keeps the
-- tags 30 days; old stamps are due (reason retention), recent ones are
-- not, and 3's music is kept by rec
SELECT * FROM sweep() ORDER BY relation, tag, reason, action;
SELECT count(*) AS logged_after_sweep FROM collection_stamp_log;
SELECT * FROM w ORDER BY id, note;
SELECT uid, tag, value FROM l ORDER BY uid, tag, value;
SELECT relation, tag, reason, action, rows, subject_hash IS NULL AS no_subject
FROM erasure_log ORDER BY relation, tag, action;
-- the stamps of what was erased are gone with it; the kept and the recent stay
SELECT * FROM stamps();
-- nothing more is due
SELECT * FROM sweep();

-- erase_tag() deletes the subject's stamps of the tag
SELECT erase_tag('3', 'interest.music');
SELECT * FROM stamps() WHERE subject = '3';

-- a forgotten subject's stamps go with the rest of its record
SELECT request_erasure('1') > 0 AS requested;
SELECT relation, tag, reason, action FROM sweep() ORDER BY 1, 2, 3, 4;
SELECT * FROM stamps() WHERE subject = '1';

-- unprotect() deletes the table's stamps
SELECT count(*) AS stamps_of_l FROM collection_stamp WHERE relid = 'l'::regclass;
SELECT unprotect('l');
SELECT count(*) AS stamps_of_l FROM collection_stamp WHERE relid = 'l'::regclass;

-- a table protected with stamp_collection => false opts out: it is not
-- stamped, neither for what it holds nor for its writes
CREATE TABLE u (id int, sports text);
INSERT INTO u VALUES (2, 'golf');
SELECT protect('u', 'id', stamp_collection => false);
SELECT classify('u', 'sports', 'interest.sports');
INSERT INTO u VALUES (4, 'polo');
CREATE TABLE ul (uid bigint, tag text, value text);
INSERT INTO ul VALUES (2, 'interest.sports', 'golf');
SELECT protect('ul', 'uid', tag_column => 'tag', value_column => 'value', stamp_collection => false);
INSERT INTO ul VALUES (4, 'interest.sports', 'polo');
SELECT relid, stamp_collection FROM guarded_table ORDER BY relid::text;
SELECT count(*) AS logged_u_ul FROM collection_stamp_log WHERE relid IN ('u'::regclass, 'ul'::regclass);
SELECT count(*) AS stamps_of_u_ul FROM collection_stamp WHERE relid IN ('u'::regclass, 'ul'::regclass);

-- switching stamps on stamps what the table holds now (both shapes), and
-- its writes from then on; switching on again changes nothing
SELECT set_collection_stamps('u', true);
SELECT set_collection_stamps('ul', true);
SELECT * FROM stamps() WHERE relid IN ('u'::regclass, 'ul'::regclass);
INSERT INTO u VALUES (5, 'judo');
INSERT INTO ul VALUES (5, 'interest.sports', 'judo');
SELECT set_collection_stamps('u', true);
SELECT * FROM stamps() WHERE relid IN ('u'::regclass, 'ul'::regclass);

-- switching off deletes the table's stamps, merged or still logged; its
-- writes are no longer stamped and its rows have no age-based retention:
-- with the stamps of both tables old, the sweep erases from ul only
UPDATE collection_stamp SET collected_at = now() - interval '60 days'
WHERE relid IN ('u'::regclass, 'ul'::regclass);
INSERT INTO u VALUES (2, 'polo');
SELECT count(*) AS logged_u FROM collection_stamp_log WHERE relid = 'u'::regclass;
SELECT set_collection_stamps('u', false);
SELECT count(*) AS logged_u FROM collection_stamp_log WHERE relid = 'u'::regclass;
INSERT INTO u VALUES (3, 'chess');
SELECT relid, stamp_collection FROM guarded_table ORDER BY relid::text;
SELECT * FROM stamps() WHERE relid IN ('u'::regclass, 'ul'::regclass);
SELECT * FROM sweep() ORDER BY relation, tag, reason, action;
SELECT * FROM u ORDER BY id;
SELECT uid, tag, value FROM ul ORDER BY uid;
SELECT * FROM stamps() WHERE relid IN ('u'::regclass, 'ul'::regclass);

-- set_collection_stamps() refuses NULLs, a table that is not guarded (or
-- is guarded through its parent), a table with a collected_at column;
-- none of it changes anything
SELECT pg_temp.state() AS before \gset
SELECT pg_temp.err($$SELECT profile_guard.set_collection_stamps(NULL, true)$$);
SELECT pg_temp.err($$SELECT profile_guard.set_collection_stamps('u', NULL)$$);
CREATE TABLE plain (id int, sports text);
SELECT pg_temp.err($$SELECT profile_guard.set_collection_stamps('plain', true)$$);
CREATE TABLE ukid () INHERITS (u);
SELECT pg_temp.err($$SELECT profile_guard.set_collection_stamps('ukid', true)$$);
SELECT pg_temp.err($$SELECT profile_guard.set_collection_stamps('c', true)$$);
SELECT pg_temp.err($$SELECT profile_guard.set_collection_stamps('c', false)$$);
SELECT pg_temp.err($$SELECT profile_guard.protect('plain', 'id', stamp_collection => NULL)$$);
-- only the table's owner may switch them (as it may protect the table)
CREATE ROLE regress_rs_notowner IN ROLE profile_guard_admin;
SET ROLE regress_rs_notowner;
SELECT pg_temp.err($$SELECT profile_guard.set_collection_stamps('u', true)$$);
RESET ROLE;
SELECT pg_temp.state() = :'before' AS unchanged;
-- nor may the catalog say otherwise (a check constraint; its SQLSTATE only,
-- the message is the server's)
SELECT left(pg_temp.err($$UPDATE profile_guard.guarded_table SET stamp_collection = true WHERE relid = 'c'::regclass$$), 5) AS refused;

-- only administrators read the stamps; no one writes them but the extension
CREATE ROLE regress_rs_admin IN ROLE profile_guard_admin;
CREATE ROLE regress_rs_other;
SET ROLE regress_rs_admin;
SELECT count(*) >= 0 AS admin_reads FROM profile_guard.collection_stamp;
SELECT count(*) >= 0 AS admin_reads FROM profile_guard.collection_stamp_log;
\set VERBOSITY terse
INSERT INTO profile_guard.collection_stamp VALUES ('w', '9', 'interest.music', now());
INSERT INTO profile_guard.collection_stamp_log VALUES ('w', 'interest.music', now(), '{9}');
SELECT profile_guard._merge_collection_stamps();
SET ROLE regress_rs_other;
SELECT count(*) FROM profile_guard.collection_stamp;
SELECT count(*) FROM profile_guard.collection_stamp_log;
\set VERBOSITY default
RESET ROLE;

-- the subjects of one table and tag are logged as one text[]: subjects of
-- every length, the same subject written twice in a row logged once, and a
-- rolled back subtransaction taking back only the subjects it added (then
-- more added after it); the array is a valid text[] (its elements, their
-- lengths, and what array_out and the comparison with a literal make of it)
TRUNCATE collection_stamp_log;
DO $reg$ BEGIN
PERFORM register_subject(s), grant_consent(s, 'ads', ARRAY['interest.*'])
   FROM unnest(ARRAY['s-a', 'subject-bb', 'subject-number-ccc', 'dddd', 'e']) s;
END $reg$;
CREATE TABLE lens (subject text, music text);
SELECT protect('lens', 'subject'), classify('lens', 'music', 'interest.music');
BEGIN;
INSERT INTO lens VALUES ('s-a', 'a'), ('s-a', 'b'), ('subject-bb', 'c');
SAVEPOINT x;
INSERT INTO lens VALUES ('subject-number-ccc', 'd'), ('e', 'e');
ROLLBACK TO SAVEPOINT x;
INSERT INTO lens VALUES ('dddd', 'f'), ('e', 'g');
COMMIT;
SELECT tag, subjects, array_length(subjects, 1) AS n,
       (SELECT string_agg(length(s)::text, ',') FROM unnest(subjects) s) AS lengths,
       subjects = '{s-a,subject-bb,dddd,e}'::text[] AS equal
  FROM collection_stamp_log WHERE relid = 'lens'::regclass;
-- more pairs than one batch (8,192) in one statement: several log rows,
-- every subject once
TRUNCATE collection_stamp_log;
DO $reg$ BEGIN
PERFORM register_subject('n' || i), grant_consent('n' || i, 'ads', ARRAY['interest.*'])
   FROM generate_series(1, 9000) i;
END $reg$;
INSERT INTO lens SELECT 'n' || i, 'x' FROM generate_series(1, 9000) i;
SELECT (SELECT count(*) FROM collection_stamp_log WHERE relid = 'lens'::regclass) AS log_rows,
       count(*) AS subjects, count(DISTINCT s) AS distinct_subjects
  FROM collection_stamp_log, unnest(subjects) s WHERE relid = 'lens'::regclass;
DROP TABLE lens;

DROP TABLE w, l, c, ukid, u, ul, plain;
DROP FUNCTION stamps(), logged();
DROP ROLE regress_rs_admin, regress_rs_other, regress_rs_notowner;
DROP EXTENSION profile_guard CASCADE;
