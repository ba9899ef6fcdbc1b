--
-- 41_crypto_bulk: data keys loaded in bulk when a statement meets many
-- subjects whose keys are not cached (src/data_key.c), the two
-- implementations of AES-256-GCM reading each other's ciphertext
-- (src/crypto_primitives.c), and the sensitive cell gate on top of both.
--
CREATE EXTENSION profile_guard;
SET client_min_messages = warning;
SELECT current_database() AS dbname \gset
\setenv PGDATABASE :dbname

-- 300 new subjects in one statement, encrypted by OpenSSL: after 64 single
-- look-ups the statement reads every key at once, then makes the rest
-- without looking each up
SET profile_guard.aes_gcm_implementation = 'openssl';
CREATE TABLE regress_bulk_ct AS
	SELECT i::text AS subject, 'value ' || i AS val,
		   profile_guard._encrypt(i::text, 'health.condition', 'value ' || i) AS ct,
		   profile_guard._encrypt(i::text, 'health.condition', convert_to('value ' || i, 'UTF8')) AS bct
	FROM generate_series(1, 300) i;
RESET profile_guard.aes_gcm_implementation;
SELECT count(*) AS keys, count(DISTINCT wrapped_key) AS distinct_keys FROM profile_guard.subject_key;

-- what OpenSSL wrote, the default (libsodium with AES-NI) reads, and back
SELECT count(*) FILTER (WHERE profile_guard._decrypt(subject, 'health.condition', ct) = val) AS text_ok,
	   count(*) FILTER (WHERE profile_guard._decrypt(subject, 'health.condition', bct) = convert_to(val, 'UTF8')) AS bytea_ok,
	   count(*) FILTER (WHERE profile_guard._ciphertext_kind(subject, 'health.condition', ct) = 'ours') AS ours
FROM regress_bulk_ct;
CREATE TABLE regress_bulk_ct2 AS
	SELECT subject, val, profile_guard._encrypt(subject, 'health.condition', val) AS ct
	FROM regress_bulk_ct;
SET profile_guard.aes_gcm_implementation = 'openssl';
SELECT count(*) FILTER (WHERE profile_guard._decrypt(subject, 'health.condition', ct) = val) AS text_ok,
	   count(*) FILTER (WHERE profile_guard._ciphertext_kind(subject, 'health.medication', ct) = 'foreign') AS other_tag
FROM regress_bulk_ct2;
RESET profile_guard.aes_gcm_implementation;
-- a ciphertext of another subject still fails, whichever path read its key
SELECT profile_guard._decrypt('2', 'health.condition', ct) FROM regress_bulk_ct WHERE subject = '1';

-- a new session meets 300 keys it has not cached in one statement
\c
SELECT count(*) FILTER (WHERE profile_guard._decrypt(subject, 'health.condition', ct) = val) AS read_back
FROM regress_bulk_ct;
-- erasure after the bulk load: unreadable at once in this session
SELECT profile_guard._destroy_subject_key('17');
SELECT profile_guard._decrypt(subject, 'health.condition', ct) FROM regress_bulk_ct WHERE subject = '17';
SELECT count(*) FILTER (WHERE profile_guard._decrypt(subject, 'health.condition', ct) = val) AS others
FROM regress_bulk_ct WHERE subject <> '17';
-- ... and in a session that had loaded every key before another erased one
\! psql -X -q -c "SELECT profile_guard._destroy_subject_key('18')"
SELECT profile_guard._decrypt(subject, 'health.condition', ct) FROM regress_bulk_ct WHERE subject = '18';
-- a new session's bulk load leaves the destroyed keys out
\c
SELECT count(*) FILTER (WHERE profile_guard._decrypt(subject, 'health.condition', ct) = val) AS live
FROM regress_bulk_ct WHERE subject NOT IN ('17', '18');
SELECT profile_guard._decrypt(subject, 'health.condition', ct) FROM regress_bulk_ct WHERE subject = '17';
SELECT profile_guard._encrypt('18', 'health.condition', 'again');
-- a key another session makes after the bulk load is read when met
\! psql -X -q -c "CREATE TABLE regress_bulk_late AS SELECT 'late' AS subject, profile_guard._encrypt('late', 'health.condition', 'late value') AS ct"
SELECT profile_guard._decrypt(subject, 'health.condition', ct) AS late FROM regress_bulk_late;
-- a bulk load in a transaction that rolls back keeps none of its own keys
BEGIN;
CREATE TABLE regress_bulk_gone AS
	SELECT i, profile_guard._encrypt('gone' || i, 'health.condition', 'x') AS ct
	FROM generate_series(1, 100) i;
SELECT count(*) FILTER (WHERE profile_guard._decrypt('gone' || i, 'health.condition', ct) = 'x') AS in_xact
FROM regress_bulk_gone;
ROLLBACK;
SELECT count(*) AS gone_keys FROM profile_guard.subject_key WHERE subject LIKE 'gone%';
SELECT profile_guard._decrypt('gone1', 'health.condition', ct) FROM regress_bulk_ct WHERE subject = '1';

-- more keys than profile_guard.key_cache_size: no bulk load, single reads
\c
SET profile_guard.key_cache_size = 1024;
CREATE TABLE regress_bulk_many AS
	SELECT i::text AS subject, profile_guard._encrypt(i::text, 'health.condition', 'many ' || i) AS ct
	FROM generate_series(1001, 2200) i;
\c
SET profile_guard.key_cache_size = 1024;
SELECT count(*) FILTER (WHERE profile_guard._decrypt(subject, 'health.condition', ct) = 'many ' || subject) AS read_back
FROM regress_bulk_many;

-- through the sensitive cell gate: values written by the trigger, read in
-- a new session under a purpose
CREATE ROLE regress_bulk_app LOGIN;
DO $setup$ BEGIN
PERFORM profile_guard.define_tag('health.condition', 'medical_health');
PERFORM profile_guard.define_purpose('care', 'care plans', ARRAY['health.*']);
PERFORM profile_guard.allow_purpose('regress_bulk_app', 'care');
PERFORM profile_guard.register_subject(i::text) FROM generate_series(5001, 5200) i;
PERFORM profile_guard.grant_consent(i::text, 'care', ARRAY['health.condition'], separate => true)
	FROM generate_series(5001, 5200) i WHERE i % 4 <> 0;
END $setup$;
CREATE TABLE regress_bulk_patients (id int PRIMARY KEY, health text);
GRANT SELECT ON regress_bulk_patients TO regress_bulk_app;
SELECT profile_guard.protect('regress_bulk_patients', 'id');
SELECT profile_guard.classify('regress_bulk_patients', 'health', 'health.condition');
INSERT INTO regress_bulk_patients
	SELECT i, 'condition ' || i FROM generate_series(5001, 5200) i WHERE i % 4 <> 0;
SELECT count(*) AS rows, count(*) FILTER (WHERE health LIKE 'pgt2%') AS encrypted
FROM regress_bulk_patients;
\c
SET ROLE regress_bulk_app;
SET profile_guard.purpose = 'care';
SELECT count(*) FILTER (WHERE health = 'condition ' || id) AS decrypted FROM regress_bulk_patients;
RESET ROLE;
SELECT profile_guard._destroy_subject_key('5001');
SET ROLE regress_bulk_app;
SELECT health FROM regress_bulk_patients WHERE id = 5001;
SELECT count(*) FILTER (WHERE health = 'condition ' || id) AS decrypted
FROM regress_bulk_patients WHERE id <> 5001;
RESET ROLE;

-- registration makes the data key, and the first sensitive value uses it
SELECT profile_guard.register_subject('regress_reg_1');
SELECT count(*) AS keys, count(wrapped_key) AS live_keys
FROM profile_guard.subject_key WHERE subject = 'regress_reg_1';
SELECT wrapped_key AS reg_key FROM profile_guard.subject_key WHERE subject = 'regress_reg_1' \gset
SELECT profile_guard._decrypt('regress_reg_1', 'health.condition',
	profile_guard._encrypt('regress_reg_1', 'health.condition', 'asthma')) AS round_trip;
SELECT profile_guard.register_subject('regress_reg_1', '1990-01-01');
SELECT count(*) AS keys, bool_and(wrapped_key = :'reg_key') AS same_key
FROM profile_guard.subject_key WHERE subject = 'regress_reg_1';
-- a registration rolled back takes its key with it
BEGIN;
SELECT profile_guard.register_subject('regress_reg_2');
ROLLBACK;
SELECT count(*) AS keys FROM profile_guard.subject_key WHERE subject = 'regress_reg_2';
-- ... and from this session's cache: the next value makes another key,
-- which a new session reads it with (also after a savepoint rolled back)
CREATE TABLE regress_reg_ct AS
	SELECT 'regress_reg_2' AS subject,
		   profile_guard._encrypt('regress_reg_2', 'health.condition', 'after rollback') AS ct;
BEGIN;
SAVEPOINT before_registration;
SELECT profile_guard.register_subject('regress_reg_3');
ROLLBACK TO SAVEPOINT before_registration;
INSERT INTO regress_reg_ct
	SELECT 'regress_reg_3', profile_guard._encrypt('regress_reg_3', 'health.condition', 'after savepoint');
COMMIT;
-- a subject whose key another session made keeps that key: the key this
-- session made for it and did not store is not used; nor is the second key
-- made for a subject named twice
\! psql -X -q -c "SELECT profile_guard._create_data_keys(ARRAY['regress_reg_4'], false)"
SELECT profile_guard._create_data_keys(ARRAY['regress_reg_4', 'regress_reg_5', 'regress_reg_5'], false) AS made;
INSERT INTO regress_reg_ct
	SELECT s, profile_guard._encrypt(s, 'health.condition', 'kept key of ' || s)
	FROM unnest(ARRAY['regress_reg_4', 'regress_reg_5']) s;
\c
SELECT subject, profile_guard._decrypt(subject, 'health.condition', ct) AS read_back
FROM regress_reg_ct ORDER BY subject;
SELECT count(*) AS keys FROM profile_guard.subject_key WHERE subject LIKE 'regress\_reg\__';
-- the keys a session stores are in its cache: their first values do not
-- read subject_key
BEGIN;
SELECT profile_guard._create_data_keys(ARRAY['regress_reg_6', 'regress_reg_7'], false) AS made;
SELECT idx_scan + seq_scan AS key_reads FROM pg_stat_xact_all_tables
WHERE relid = 'profile_guard.subject_key'::regclass \gset
SELECT profile_guard._decrypt(s, 'health.condition',
		profile_guard._encrypt(s, 'health.condition', 'made here')) AS round_trip
FROM unnest(ARRAY['regress_reg_6', 'regress_reg_7']) s;
SELECT idx_scan + seq_scan - :key_reads AS more_key_reads FROM pg_stat_xact_all_tables
WHERE relid = 'profile_guard.subject_key'::regclass;
COMMIT;
-- subjects that are integers move to the cache's array when the keys
-- commit (in a new session, whose table they leave empty: it is freed and
-- made again for the next key); keys rolled back are not kept there
\c
SELECT profile_guard._create_data_keys(ARRAY['3001', '3002'], false) AS made;
BEGIN;
SELECT profile_guard._create_data_keys(ARRAY['3003'], false) AS made;
ROLLBACK;
SELECT idx_scan + seq_scan AS key_reads FROM pg_stat_xact_all_tables
WHERE relid = 'profile_guard.subject_key'::regclass \gset
INSERT INTO regress_reg_ct
	SELECT s, profile_guard._encrypt(s, 'health.condition', 'integer ' || s)
	FROM unnest(ARRAY['3001', '3002']) s;
SELECT idx_scan + seq_scan - :key_reads AS more_key_reads FROM pg_stat_xact_all_tables
WHERE relid = 'profile_guard.subject_key'::regclass;
INSERT INTO regress_reg_ct
	SELECT '3003', profile_guard._encrypt('3003', 'health.condition', 'integer 3003');
\c
SELECT subject, profile_guard._decrypt(subject, 'health.condition', ct) AS read_back
FROM regress_reg_ct WHERE subject LIKE '300_' ORDER BY subject;
DROP TABLE regress_reg_ct;
DELETE FROM profile_guard.subject_key WHERE subject LIKE '300_';

-- create_data_keys(): the keys of subjects registered without one, in bulk;
-- a destroyed key stays destroyed
INSERT INTO profile_guard.subject (subject) SELECT 'regress_bulk_' || i FROM generate_series(1, 25) i;
SELECT profile_guard._destroy_subject_key('regress_bulk_1');
SELECT count(*) AS keys_before FROM profile_guard.subject_key WHERE subject LIKE 'regress\_bulk\_%';
SELECT profile_guard.create_data_keys() AS made;
SELECT profile_guard.create_data_keys() AS made_again;
SELECT count(*) AS keys, count(wrapped_key) AS live_keys, count(DISTINCT wrapped_key) AS distinct_keys
FROM profile_guard.subject_key WHERE subject LIKE 'regress\_bulk\_%';
SELECT profile_guard._decrypt('regress_bulk_7', 'health.condition',
	profile_guard._encrypt('regress_bulk_7', 'health.condition', 'gout')) AS round_trip;
-- bad input changes nothing: all or none of a call's keys are made
SELECT profile_guard._create_data_keys(ARRAY['regress_new_1', NULL], false);
SELECT profile_guard._create_data_keys(ARRAY['regress_new_1', repeat('x', 201)], false);
SELECT profile_guard._create_data_keys(ARRAY['regress_new_1', ''], false);
SELECT count(*) AS keys FROM profile_guard.subject_key WHERE subject = 'regress_new_1';
-- only the administrator makes keys
SET ROLE regress_bulk_app;
SELECT profile_guard.create_data_keys();
SELECT profile_guard._create_data_keys(ARRAY['regress_new_1'], false);
RESET ROLE;
DELETE FROM profile_guard.subject_key WHERE subject LIKE 'regress\_bulk\_%' OR subject LIKE 'regress\_reg\_%';
DELETE FROM profile_guard.subject_event WHERE subject LIKE 'regress\_reg\_%';
DELETE FROM profile_guard.subject WHERE subject LIKE 'regress\_bulk\_%' OR subject LIKE 'regress\_reg\_%';

-- reencrypt(): text values in the format before 1.2 ("pgt1:", written
-- here with the trigger disabled, as 1.1 wrote them) are rewritten in the
-- current one under the same keys, in both shapes; a value that does not
-- authenticate (here the erased subject's) is left as it is; a second call
-- finds nothing
CREATE TABLE regress_bulk_tags (uid int, tag text, value text);
SELECT profile_guard.protect('regress_bulk_tags', 'uid', tag_column => 'tag', value_column => 'value');
INSERT INTO regress_bulk_tags VALUES (5002, 'health.condition', 'tag row');
CREATE FUNCTION pg_temp.version_1(subject text, val text) RETURNS text LANGUAGE sql
	AS $$ SELECT 'pgt1:' || translate(encode(profile_guard._encrypt(subject, 'health.condition',
											convert_to(val, 'UTF8')), 'base64'), E'\n', '') $$;
ALTER TABLE regress_bulk_patients DISABLE TRIGGER profile_guard_collect;
ALTER TABLE regress_bulk_tags DISABLE TRIGGER profile_guard_collect;
UPDATE regress_bulk_patients SET health = pg_temp.version_1(id::text, 'condition ' || id)
 WHERE id <> 5001 AND id % 2 = 0;
UPDATE regress_bulk_patients
   SET health = 'pgt1:' || encode('\x50475401'::bytea || decode(repeat('00', 40), 'hex'), 'base64')
 WHERE id = 5001;
UPDATE regress_bulk_tags SET value = pg_temp.version_1(uid::text, 'tag row');
ALTER TABLE regress_bulk_patients ENABLE ALWAYS TRIGGER profile_guard_collect;
ALTER TABLE regress_bulk_tags ENABLE ALWAYS TRIGGER profile_guard_collect;
SELECT count(*) FILTER (WHERE health LIKE 'pgt1:%') AS version_1,
	   count(*) FILTER (WHERE health LIKE 'pgt2%') AS version_2
FROM regress_bulk_patients;
SELECT profile_guard.reencrypt('regress_bulk_patients') AS rewritten;
SELECT count(*) FILTER (WHERE health LIKE 'pgt1:%') AS version_1,
	   count(*) FILTER (WHERE health LIKE 'pgt2%') AS version_2
FROM regress_bulk_patients;
SELECT profile_guard.reencrypt() AS rewritten_all;
SELECT value LIKE 'pgt2%' AS tag_row_version_2 FROM regress_bulk_tags;
SELECT profile_guard.reencrypt() AS rewritten_again;
SET ROLE regress_bulk_app;
SET profile_guard.purpose = 'care';
SELECT count(*) FILTER (WHERE health = 'condition ' || id) AS decrypted
FROM regress_bulk_patients WHERE id <> 5001;
RESET ROLE;
-- it rewrites the table: an administrator who does not own it may not, nor
-- may anybody else; a table that is not guarded is reported
CREATE ROLE regress_bulk_admin IN ROLE profile_guard_admin;
SET ROLE regress_bulk_admin;
SELECT profile_guard.reencrypt('regress_bulk_patients');
SELECT profile_guard.reencrypt();
RESET ROLE;
SET ROLE regress_bulk_app;
SELECT profile_guard.reencrypt('regress_bulk_patients');
RESET ROLE;
SELECT profile_guard.reencrypt('regress_bulk_ct');
DROP ROLE regress_bulk_admin;

DROP TABLE regress_bulk_ct, regress_bulk_ct2, regress_bulk_late, regress_bulk_many, regress_bulk_patients, regress_bulk_tags;
DROP OWNED BY regress_bulk_app;
DROP ROLE regress_bulk_app;
DROP EXTENSION profile_guard CASCADE;
