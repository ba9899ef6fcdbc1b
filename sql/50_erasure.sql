--
-- 50_erasure: the sweep makes due erasures physical.  One case per trigger
-- (withdrawn, expired, retention, retired, request, service end) and per
-- action (delete, cell set to NULL, anonymise), for the wide and the long
-- shape; the rows, the ledger, tombstoned consents, the destroyed key, and
-- the other subjects' data left alone.
--
CREATE EXTENSION profile_guard;
SET client_min_messages = warning;
SET search_path = public, profile_guard;

DO $setup$ BEGIN
PERFORM define_tag('interest.sports', 'preference');
PERFORM define_tag('interest.music', 'preference');
PERFORM define_tag('health.condition', 'medical_health');
PERFORM define_purpose('rec', 'recommendations', ARRAY['interest.*', 'health.condition']);
PERFORM define_purpose('ads', 'advertising', ARRAY['interest.*'], retention => '30 days');
PERFORM define_purpose('promo', 'music promotion', ARRAY['interest.music']);
PERFORM register_subject(s) FROM unnest(ARRAY['1', '2', '3', '4', '5', '6', '7', '8']) s;
-- 1 keeps everything; 2 will withdraw music; 3 consents to ads only
-- (retention 30 days); 4 consents to promo only (to be retired); 5's
-- consent expires; 6 asks for erasure; 7 withdraws music from rec but keeps
-- it for ads; 8 blocks music (use suspended) and loses promo to retirement
PERFORM grant_consent('1', 'rec', ARRAY['interest.*']);
PERFORM grant_consent('1', 'rec', ARRAY['health.condition'], separate => true);
PERFORM grant_consent('2', 'rec', ARRAY['interest.*']);
PERFORM grant_consent('2', 'rec', ARRAY['health.condition'], separate => true);
PERFORM grant_consent('3', 'ads', ARRAY['interest.*']);
PERFORM grant_consent('4', 'promo', ARRAY['interest.music']);
PERFORM grant_consent('5', 'rec', ARRAY['interest.sports']);
PERFORM grant_consent('6', 'rec', ARRAY['interest.*']);
PERFORM grant_consent('6', 'rec', ARRAY['health.condition'], separate => true);
PERFORM grant_consent('7', 'rec', ARRAY['interest.*']);
PERFORM grant_consent('7', 'ads', ARRAY['interest.*']);
PERFORM grant_consent('8', 'rec', ARRAY['interest.*']);
PERFORM grant_consent('8', 'promo', ARRAY['interest.music']);
END $setup$;

-- wide, on_erase delete
CREATE TABLE w (id int PRIMARY KEY, collected timestamptz, sports text, music text, health text);
SELECT protect('w', 'id', 'collected');
SELECT classify('w', 'sports', 'interest.sports');
SELECT classify('w', 'music', 'interest.music');
SELECT classify('w', 'health', 'health.condition');
INSERT INTO w VALUES
	(1, now() - interval '60 days', 'tennis', 'jazz', 'asthma'),	-- old, but rec has no retention
	(2, now(), 'golf', 'rock', 'flu'),
	(3, now() - interval '60 days', 'chess', 'pop', NULL),
	(4, now(), NULL, 'folk', NULL),
	(5, now(), 'rugby', NULL, NULL),
	(6, now(), 'polo', 'soul', 'gout'),
	(7, now(), 'judo', 'blues', NULL),
	(8, now(), NULL, 'metal', NULL);

-- long, on_erase delete
CREATE TABLE l (uid bigint, tag text, value text, collected timestamptz);
SELECT protect('l', 'uid', 'collected', tag_column => 'tag', value_column => 'value');
INSERT INTO l VALUES
	(1, 'interest.sports', 'tennis', now() - interval '60 days'),
	(1, 'health.condition', 'asthma', now()),
	(2, 'interest.sports', 'golf', now()),
	(2, 'interest.music', 'rock', now()),
	(3, 'interest.sports', 'chess', now() - interval '60 days'),
	(3, 'interest.music', 'pop', now()),			-- recent: kept
	(4, 'interest.music', 'folk', now()),
	(5, 'interest.sports', 'rugby', now()),
	(6, 'interest.music', 'soul', now()),
	(6, 'health.condition', 'gout', now()),
	(7, 'interest.music', 'blues', now()),
	(8, 'interest.music', 'metal', now());

-- wide, on_erase anonymise (email identifies)
CREATE TABLE wa (id int PRIMARY KEY, email text, collected timestamptz, sports text, health text);
SELECT protect('wa', 'id', 'collected', on_erase => 'anonymise', anonymise_columns => ARRAY['email'],
			   keep_columns => ARRAY['sports', 'health']);
SELECT classify('wa', 'sports', 'interest.sports');
SELECT classify('wa', 'health', 'health.condition');
SELECT set_anonymise_columns('wa', ARRAY['email']);
INSERT INTO wa VALUES
	(1, 'one@example.org', '2020-05-17 10:00+00', 'tennis', 'asthma'),	-- old; rec keeps it
	(3, 'three@example.org', '2020-05-17 10:00+00', 'chess', NULL),
	(5, 'five@example.org', now(), 'rugby', NULL),
	(6, 'six@example.org', '2020-05-17 10:00+00', 'polo', 'gout');

-- long, on_erase anonymise (device identifies); text subjects, date column
CREATE TABLE la (uid text NOT NULL, tag text, value text, collected date, device text);
SELECT protect('la', 'uid', 'collected', 'tag', 'value', on_erase => 'anonymise',
			   anonymise_columns => ARRAY['device']);
SELECT set_anonymise_columns('la', ARRAY['device']);
INSERT INTO la VALUES
	('1', 'interest.music', 'jazz', current_date, 'phone-1'),
	('2', 'interest.music', 'rock', '2021-01-20', 'phone-2'),
	('2', 'interest.sports', 'golf', current_date, 'phone-2'),
	('3', 'interest.sports', 'chess', '2020-05-17', 'phone-3'),
	('6', 'interest.music', 'soul', '2020-05-17', 'phone-6'),
	('6', 'health.condition', 'gout', '2020-05-17', 'phone-6');

-- set_anonymise_columns checks its columns
SELECT set_anonymise_columns('la', ARRAY['uid']);
SELECT set_anonymise_columns('la', ARRAY['nope']);

-- the triggers of erasure
SELECT withdraw_consent('2', 'rec', ARRAY['interest.music']) > 0 AS withdrawn;
SELECT withdraw_consent('7', 'rec', ARRAY['interest.music']) > 0 AS withdrawn;
SELECT block_tag('8', 'interest.music');
SELECT retire_purpose('promo');
SELECT request_erasure('6') > 0 AS requested;
-- 5's consent is renewed for one second only, and expires
SELECT grant_consent('5', 'rec', ARRAY['interest.sports'], expires_at => now() + interval '1 second') > 0 AS renewed;
SELECT pg_sleep(1.2);

-- what is due is already invisible: the sweep makes it physical
SELECT * FROM sweep() ORDER BY relation, tag, reason, action;

-- wide, delete: 2 lost only music (cell), 3 (retention) and 4 (retired),
-- 5 (expired) and 6 (request) lost their rows; 1 kept everything, 7 keeps
-- music for ads, 8's blocked music is kept (use suspended, not ended)
SELECT id, sports, music, health IS NOT NULL AS has_health FROM w ORDER BY id;
-- long, delete: only the recent row of 3 and 2's sports are left beside 1,
-- and 7's and 8's music
SELECT uid, tag, CASE WHEN tag = 'health.condition' THEN left(value, 4) || '…' ELSE value END AS value
FROM l ORDER BY uid, tag;
-- wide, anonymise: 6 (request) and 3 (retention) cut from their subject:
-- negative id, email NULL, month only, sensitive value NULL; 5 (expired)
SELECT id > 0 AS identified, email, date_trunc('day', collected, 'UTC') = date_trunc('month', collected, 'UTC') AS month_only,
	   sports, health IS NOT NULL AS has_health
FROM wa ORDER BY sports;
-- long, anonymise: 2's withdrawn music, 3's old row, 6's rows
SELECT uid LIKE 'anonymous:%' AS anonymous, CASE WHEN uid LIKE 'anonymous:%' THEN NULL ELSE uid END AS uid,
	   tag, value, CASE WHEN collected = current_date THEN 'today' ELSE collected::text END AS collected, device
FROM la ORDER BY tag, value NULLS FIRST, collected;
-- anonymous subjects are all different
SELECT count(DISTINCT uid) AS anonymous_subjects FROM la WHERE uid LIKE 'anonymous:%';

-- the ledger: the subject only as a keyed hash, for subject-specific reasons
SELECT relation, tag, reason, action, rows,
	   CASE subject_hash WHEN _subject_hash('2') THEN '2' WHEN _subject_hash('5') THEN '5'
						 WHEN _subject_hash('6') THEN '6' END AS subject_is
FROM erasure_log ORDER BY relation, tag, reason, action, subject_is;
SELECT count(*) AS hashes_of_the_raw_subject FROM erasure_log
WHERE subject_hash IN ('1', '2', '3', '4', '5', '6', encode(sha256('6'), 'hex'));
SELECT length(_subject_hash('6')) AS hash_len, _subject_hash('6') = _subject_hash('6') AS stable,
	   _subject_hash('6') <> _subject_hash('7') AS distinct_subjects;

-- request: the key was destroyed and the consents tombstoned (the ledger
-- above), then 6 was forgotten: no consent, key or registration is left,
-- the request keeps only the keyed hash (sql/51_forget.sql has the rest);
-- the others keep the data keys their registration made
SELECT subject, count(*) AS consents, bool_and(erased_at IS NOT NULL) AS tombstones,
	   bool_and(tags = '{}') AS nothing_left
FROM consent GROUP BY subject ORDER BY subject;
SELECT subject, wrapped_key IS NULL AS key_destroyed FROM subject_key ORDER BY subject;
SELECT subject, subject_hash = _subject_hash('6') AS hash_of_6, completed_at IS NOT NULL AS completed
FROM erasure_request;
SELECT count(*) AS registrations_of_6 FROM subject WHERE subject = '6';

-- a second sweep finds nothing more; the log has not grown
SELECT count(*) AS log_rows FROM erasure_log \gset
SELECT * FROM sweep();
SELECT count(*) = :log_rows AS log_unchanged FROM erasure_log;

-- max_rows bounds the work; the rest follows in the next sweep
INSERT INTO l SELECT 3, 'interest.sports', 'old', now() - interval '90 days' FROM generate_series(1, 5);
SELECT * FROM sweep(2);
SELECT count(*) AS left_over FROM l WHERE value = 'old';
SELECT * FROM sweep();
SELECT count(*) AS left_over FROM l WHERE value = 'old';
SELECT * FROM sweep(-1);
-- a request swept in batches of one row: each batch sees the work the
-- sweep has just prepared, and the request completes once the rows are gone
SELECT register_subject('9') IS NOT NULL AS registered;
SELECT grant_consent('9', 'rec', ARRAY['interest.*']) IS NOT NULL AS consented;
INSERT INTO w VALUES (9, now(), 'darts', 'ska', NULL);
INSERT INTO l VALUES (9, 'interest.music', 'ska', now());
SELECT request_erasure('9') IS NOT NULL AS requested;
SELECT * FROM sweep(max_rows => 1) ORDER BY relation, tag, reason, action;
SELECT (SELECT count(*) FROM w WHERE id = 9) AS in_w, (SELECT count(*) FROM l WHERE uid = 9) AS in_l,
	   EXISTS (SELECT 1 FROM erasure_request WHERE subject_hash = _subject_hash('9') AND completed_at IS NOT NULL) AS completed;
SELECT * FROM sweep(max_rows => 1) ORDER BY relation, tag, reason, action;
SELECT (SELECT count(*) FROM w WHERE id = 9) AS in_w, (SELECT count(*) FROM l WHERE uid = 9) AS in_l,
	   EXISTS (SELECT 1 FROM erasure_request WHERE subject_hash = _subject_hash('9') AND completed_at IS NOT NULL) AS completed;
SELECT * FROM sweep(max_rows => 1) ORDER BY relation, tag, reason, action;
SELECT (SELECT count(*) FROM w WHERE id = 9) AS in_w, (SELECT count(*) FROM l WHERE uid = 9) AS in_l,
	   EXISTS (SELECT 1 FROM erasure_request WHERE subject_hash = _subject_hash('9') AND completed_at IS NOT NULL) AS completed;

-- a date collected-at column is compared with the cutoffs in
-- profile_guard.age_time_zone (UTC here), whatever the sweeping session's
-- TimeZone: a row collected 29 days ago (in UTC) under a 30-day retention
-- stays when the sweep runs 14 hours ahead of UTC
CREATE TABLE dated (id int PRIMARY KEY, collected date, sports text);
SELECT protect('dated', 'id', 'collected');
SELECT classify('dated', 'sports', 'interest.sports');
INSERT INTO dated VALUES (3, (now() AT TIME ZONE 'UTC')::date - 29, 'chess');
SET TimeZone = 'Etc/GMT-14';
SELECT count(*) AS dated_erasures FROM sweep() WHERE relation = 'public.dated';
SHOW TimeZone;
RESET TimeZone;
SELECT count(*) AS kept FROM dated;
DROP TABLE dated;

-- retentions in months and in days: the shortest is the one whose cutoff
-- is latest on the sweep's date, the longest the one whose cutoff is
-- earliest (PostgreSQL compares intervals counting a month as 30 days);
-- on 31 March a month reaches further back than 30 days, on 1 March less far
BEGIN;
SET LOCAL TimeZone = 'UTC';
SELECT define_tag('calendar.tag', 'preference');
SELECT define_purpose('cal_week', 'a week', ARRAY['calendar.tag'], retention => '7 days');
SELECT define_purpose('cal_month', 'a month', ARRAY['calendar.tag'], retention => '1 month');
SELECT define_purpose('cal_days', 'thirty days', ARRAY['calendar.tag'], retention => '30 days');
SELECT register_subject('cal-1');
SELECT grant_consent('cal-1', p, ARRAY['calendar.tag']) > 0 AS granted
FROM unnest(ARRAY['cal_week', 'cal_month', 'cal_days']) p;
UPDATE purpose SET retired_at = now() WHERE purpose = 'cal_week';
SELECT count(*) >= 0 AS prepared FROM _erasure_prepare('2026-03-31 12:00+00', false);
SELECT c.cutoff AS shortest_cutoff_31_march, k.keep_for AS longest_31_march
FROM _erasure_cutoff c LEFT JOIN _erasure_keep k ON k.tag = c.tag AND k.subject = 'cal-1'
WHERE c.tag = 'calendar.tag';
SELECT count(*) >= 0 AS prepared FROM _erasure_prepare('2026-03-01 12:00+00', false);
SELECT c.cutoff AS shortest_cutoff_1_march, k.keep_for AS longest_1_march
FROM _erasure_cutoff c LEFT JOIN _erasure_keep k ON k.tag = c.tag AND k.subject = 'cal-1'
WHERE c.tag = 'calendar.tag';
UPDATE purpose SET retired_at = NULL WHERE purpose = 'cal_week';
SELECT count(*) >= 0 AS prepared FROM _erasure_prepare('2026-03-01 12:00+00', false);
SELECT c.cutoff AS shortest_cutoff_with_a_week, k.keep_for AS longest_with_a_week
FROM _erasure_cutoff c LEFT JOIN _erasure_keep k ON k.tag = c.tag AND k.subject = 'cal-1'
WHERE c.tag = 'calendar.tag';
ROLLBACK;

-- the ledgers stay append-only; the sweep's flag cannot be set from SQL
SELECT _erasure_in_progress();
UPDATE erasure_log SET rows = rows + 1;
DELETE FROM erasure_log;
TRUNCATE erasure_log;
UPDATE consent SET tags = '{}' WHERE subject = '1';
SET profile_guard.internal_erasure = on;

-- end of service: everything still about someone goes, but for a subject
-- under a legal hold, whose rows stay until the hold is released
SELECT place_legal_hold('7', 'litigation about the account') AS hold_7 \gset
SELECT 'w' AS tbl, count(*) FROM w WHERE id = 7 UNION ALL SELECT 'l', count(*) FROM l WHERE uid = 7;
SELECT end_service();
SELECT end_service();
SELECT purpose, retired_at IS NOT NULL AS retired FROM purpose ORDER BY purpose;
SELECT * FROM sweep() ORDER BY relation, tag, reason, action;
SELECT id, sports, music FROM w ORDER BY id;
SELECT uid, tag, value FROM l ORDER BY uid, tag;
SELECT release_legal_hold(:hold_7);
SELECT * FROM sweep() ORDER BY relation, tag, reason, action;
SELECT count(*) AS wide_rows FROM w;
SELECT count(*) AS long_rows FROM l;
SELECT count(*) FILTER (WHERE id > 0) AS identified, count(*) AS anonymous_rows_kept FROM wa;
SELECT count(*) FILTER (WHERE uid NOT LIKE 'anonymous:%') AS identified, count(*) AS anonymous_rows_kept FROM la;

DROP TABLE w, l, wa, la;
DROP EXTENSION profile_guard CASCADE;
