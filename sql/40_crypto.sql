--
-- 40_crypto: encryption of sensitive tag values (src/crypto_envelope.c,
-- src/data_key.c, src/master_key.c, src/key_rotation.c)
--
-- Ciphertext is random, so only lengths, booleans and kinds are printed.
--
CREATE EXTENSION profile_guard;

CREATE TEMP TABLE plain (label text, val text);
INSERT INTO plain VALUES
	('empty', ''),
	('ascii', 'top secret diagnosis'),
	('utf8', '糖尿病 — diabète ✓');

-- text: stored form is "pgt2" and the base64 (unpadded) of IV | GCM tag |
-- ciphertext, never the plaintext
CREATE TEMP TABLE ct AS
	SELECT label, val, profile_guard._encrypt('s1', 'health.condition', val) AS ct
	FROM plain;
SELECT label,
	   left(ct, 4) AS prefix,
	   octet_length(ct) AS ct_len,
	   position('secret' in ct) = 0 AS hides_secret,
	   ct !~ '[^A-Za-z0-9+/]' AS ascii_only,
	   profile_guard._decrypt('s1', 'health.condition', ct) = val AS round_trip
FROM ct ORDER BY label;

-- each encryption uses a fresh IV
SELECT profile_guard._encrypt('s1', 'health.condition', 'same') <>
	   profile_guard._encrypt('s1', 'health.condition', 'same') AS fresh_iv;

-- bytea: stored form is the binary envelope "PGT" 0x01 IV tag ciphertext
CREATE TEMP TABLE bct AS
	SELECT label, convert_to(val, 'UTF8') AS val,
		   profile_guard._encrypt('s1', 'health.condition', convert_to(val, 'UTF8')) AS ct
	FROM plain
	UNION ALL
	SELECT 'binary', '\x00ff00fe'::bytea,
		   profile_guard._encrypt('s1', 'health.condition', '\x00ff00fe'::bytea);
SELECT label,
	   substr(ct, 1, 4) AS header,
	   length(ct) - length(val) AS overhead,
	   position('secret'::bytea in ct) = 0 AS hides_secret,
	   profile_guard._decrypt('s1', 'health.condition', ct) = val AS round_trip
FROM bct ORDER BY label;

-- a 4 MB value round-trips, as text and as bytea
CREATE TEMP TABLE big AS
	SELECT string_agg(md5(i::text), '') AS val FROM generate_series(1, 131072) i;
SELECT octet_length(val) AS plain_len FROM big;
CREATE TEMP TABLE bigct AS
	SELECT profile_guard._encrypt('s1', 'health.condition', val) AS ct,
		   profile_guard._encrypt('s1', 'health.condition', convert_to(val, 'UTF8')) AS bct
	FROM big;
SELECT octet_length(ct) AS ct_len, length(bct) AS bct_len,
	   md5(profile_guard._decrypt('s1', 'health.condition', ct)) = md5(val) AS text_round_trip,
	   md5(profile_guard._decrypt('s1', 'health.condition', bct)) = md5(convert_to(val, 'UTF8')) AS bytea_round_trip,
	   profile_guard._ciphertext_kind('s1', 'health.condition', ct) AS kind
FROM bigct, big;

-- classification
SELECT profile_guard._encrypt('s2', 'health.condition', 'other person') IS NOT NULL AS s2_has_key;
SELECT label,
	   profile_guard._ciphertext_kind('s1', 'health.condition', val) AS plain,
	   profile_guard._ciphertext_kind('s1', 'health.condition', ct) AS own,
	   profile_guard._ciphertext_kind('s2', 'health.condition', ct) AS other_subject,
	   profile_guard._ciphertext_kind('s3', 'health.condition', ct) AS keyless_subject,
	   profile_guard._ciphertext_kind('s1', 'health.medication', ct) AS other_tag
FROM ct ORDER BY label;
SELECT label,
	   profile_guard._ciphertext_kind('s1', 'health.condition', val) AS plain,
	   profile_guard._ciphertext_kind('s1', 'health.condition', ct) AS own,
	   profile_guard._ciphertext_kind('s2', 'health.condition', ct) AS other_subject
FROM bct ORDER BY label;
SELECT v, profile_guard._ciphertext_kind('s1', 'health.condition', v) AS kind
FROM (VALUES ('pgt1:'), ('pgt1:short'), ('PGT1:' || repeat('A', 60)),
			 ('pgt1:' || repeat('*', 60)), ('pgt1:' || repeat('A', 60)),
			 ('pgt2'), ('pgt2' || repeat('A', 37)), ('PGT2' || repeat('A', 60)),
			 ('pgt2' || repeat('*', 60)), ('pgt2' || repeat('A', 59)),
			 ('pgt2' || repeat('A', 57))) AS t(v);
SELECT profile_guard._ciphertext_kind('s1', 'health.condition', '\x504754'::bytea) AS too_short,
	   profile_guard._ciphertext_kind('s1', 'health.condition', ('\x504754' || repeat('00', 40))::bytea) AS bad_version,
	   profile_guard._ciphertext_kind('s1', 'health.condition', ('\x50475401' || repeat('00', 40))::bytea) AS forged;

-- the swap attack: another subject's or another tag's ciphertext fails cleanly
SELECT profile_guard._decrypt('s2', 'health.condition', ct) FROM ct WHERE label = 'ascii';
SELECT profile_guard._decrypt('s3', 'health.condition', ct) FROM ct WHERE label = 'ascii';
SELECT profile_guard._decrypt('s1', 'health.medication', ct) FROM ct WHERE label = 'ascii';
SELECT profile_guard._decrypt('s2', 'health.condition', ct) FROM bct WHERE label = 'ascii';

-- malformed envelopes: clean errors, never a crash
SELECT profile_guard._decrypt('s1', 'health.condition', 'plain words');
SELECT profile_guard._decrypt('s1', 'health.condition', left(ct, 40)) FROM ct WHERE label = 'ascii';
SELECT profile_guard._decrypt('s1', 'health.condition', left(ct, length(ct) - 4)) FROM ct WHERE label = 'ascii';
SELECT profile_guard._decrypt('s1', 'health.condition', 'pgt1:' || repeat('*', 60));
SELECT profile_guard._decrypt('s1', 'health.condition', 'pgt2' || repeat('*', 60));
-- the bits past the last byte of the base64 are zero: one text per envelope
SELECT profile_guard._decrypt('s1', 'health.condition', 'pgt2' || repeat('A', 58) || 'B');
SELECT profile_guard._decrypt('s1', 'health.condition', ct || 'A') FROM ct WHERE label = 'ascii';
SELECT profile_guard._decrypt('s1', 'health.condition',
	   overlay(ct placing CASE WHEN substr(ct, 49, 1) = 'A' THEN 'B' ELSE 'A' END from 49 for 1))
FROM ct WHERE label = 'ascii';
SELECT profile_guard._decrypt('s1', 'health.condition', set_byte(ct, 40, get_byte(ct, 40) # 1))
FROM bct WHERE label = 'ascii';
SELECT profile_guard._decrypt('s1', 'health.condition', set_byte(ct, 20, get_byte(ct, 20) # 1))
FROM bct WHERE label = 'ascii';
SELECT profile_guard._decrypt('s1', 'health.condition', set_byte(ct, 3, 2))
FROM bct WHERE label = 'ascii';
SELECT profile_guard._decrypt('s1', 'health.condition', substr(ct, 1, 31))
FROM bct WHERE label = 'ascii';

-- version 1 text (the form before 1.2: "pgt1:" and the padded base64 of
-- the envelope a bytea column stores) still reads; the same bytes
-- relabelled version 2 do not authenticate (the version is in the
-- associated data)
CREATE TEMP TABLE v1 AS
	SELECT label, val,
		   'pgt1:' || translate(encode(profile_guard._encrypt('s1', 'health.condition',
														   convert_to(val, 'UTF8')), 'base64'), E'\n', '') AS ct
	FROM plain;
SELECT label, left(ct, 5) AS prefix, octet_length(ct) AS ct_len,
	   profile_guard._decrypt('s1', 'health.condition', ct) = val AS reads,
	   profile_guard._ciphertext_kind('s1', 'health.condition', ct) AS own,
	   profile_guard._ciphertext_kind('s2', 'health.condition', ct) AS other_subject
FROM v1 ORDER BY label;
SELECT profile_guard._decrypt('s1', 'health.condition',
	   'pgt2' || rtrim(translate(encode(substr(decode(substr(ct, 6), 'base64'), 5), 'base64'), E'\n', ''), '='))
FROM v1 WHERE label = 'ascii';

-- bad subjects and tags
SELECT profile_guard._encrypt('', 'health.condition', 'x');
SELECT profile_guard._encrypt(repeat('x', 201), 'health.condition', 'x');
SELECT profile_guard._encrypt('s1', '', 'x');
SELECT profile_guard._decrypt(repeat('é', 200), 'health.condition', 'x');

-- NULL arguments give NULL
SELECT profile_guard._encrypt(NULL, 'health.condition', 'x') IS NULL AS a,
	   profile_guard._encrypt('s1', NULL, 'x') IS NULL AS b,
	   profile_guard._encrypt('s1', 'health.condition', NULL::text) IS NULL AS c,
	   profile_guard._encrypt('s1', 'health.condition', NULL::bytea) IS NULL AS d,
	   profile_guard._decrypt('s1', 'health.condition', NULL::text) IS NULL AS e,
	   profile_guard._decrypt(NULL, 'health.condition', 'x'::bytea) IS NULL AS f,
	   profile_guard._ciphertext_kind('s1', NULL, 'x') IS NULL AS g,
	   profile_guard._destroy_subject_key(NULL) IS NULL AS h;

-- one data key per subject, wrapped under the configured master key
SELECT subject,
	   length(wrapped_key) AS wrapped_len,
	   master_fingerprint = left(encode(sha256(decode(btrim(
			pg_read_file(current_setting('profile_guard.master_key_file')), E' \n'),
			'hex')), 'hex'), 16) AS fingerprint_ok,
	   destroyed_at IS NULL AS live
FROM profile_guard.subject_key ORDER BY subject;

-- a key made by a transaction that rolls back is not kept, even in cache
BEGIN;
SELECT profile_guard._encrypt('s_rollback', 'interest.sports', 'x') IS NOT NULL AS encrypted;
ROLLBACK;
SELECT count(*) AS keys FROM profile_guard.subject_key WHERE subject = 's_rollback';
BEGIN;
SAVEPOINT a;
SELECT profile_guard._encrypt('s_savepoint', 'interest.sports', 'x') IS NOT NULL AS encrypted;
ROLLBACK TO SAVEPOINT a;
CREATE TABLE regress_crypto_kept AS
	SELECT 's_savepoint' AS subject,
		   profile_guard._encrypt('s_savepoint', 'interest.sports', 'kept') AS ct;
COMMIT;
SELECT count(*) AS keys FROM profile_guard.subject_key WHERE subject = 's_savepoint';
-- ... also when another session's invalidation flushed the cache and the
-- transaction's own key was read back from the table before the rollback
SELECT current_database() AS dbname \gset
\setenv PGDATABASE :dbname
BEGIN;
SELECT profile_guard._encrypt('s_flush', 'interest.sports', 'x') IS NOT NULL AS encrypted;
\! psql -X -q -c 'ANALYZE profile_guard.subject_key'
SELECT count(*) AS kept FROM regress_crypto_kept;	-- takes a lock: reads invalidations
SELECT profile_guard._encrypt('s_flush', 'interest.sports', 'y') IS NOT NULL AS encrypted;
ROLLBACK;
INSERT INTO regress_crypto_kept
	SELECT 's_flush', profile_guard._encrypt('s_flush', 'interest.sports', 'kept too');
-- a new session has only the table to go by
\c
SELECT subject, profile_guard._decrypt(subject, 'interest.sports', ct) AS value
FROM regress_crypto_kept ORDER BY subject;
DROP TABLE regress_crypto_kept;

-- the C functions reach subject_key as its owner, not as the caller
CREATE ROLE regress_crypto_user;
GRANT EXECUTE ON FUNCTION profile_guard._encrypt(text, text, text),
	profile_guard._decrypt(text, text, text) TO regress_crypto_user;
SET ROLE regress_crypto_user;
SELECT * FROM profile_guard.subject_key;
SELECT profile_guard._decrypt('s_user', 'interest.sports',
	   profile_guard._encrypt('s_user', 'interest.sports', 'by a plain role')) AS value;
SELECT profile_guard._encrypt('s_user', 'interest.sports', 'x'::bytea);
SELECT profile_guard._destroy_subject_key('s_user');
SELECT profile_guard.rotate_master_key();
RESET ROLE;
-- rotation: everything is under the current key already
GRANT profile_guard_admin TO regress_crypto_user;
SET ROLE regress_crypto_user;
SELECT profile_guard.rotate_master_key() AS rewrapped;
RESET ROLE;
SELECT profile_guard.rotate_master_key() AS rewrapped;

-- crypto-shredding
CREATE TABLE regress_crypto_erased AS
	SELECT profile_guard._encrypt('s2', 'health.condition', 'to be erased') AS ct;
SELECT profile_guard._destroy_subject_key('s2');
SELECT subject, wrapped_key IS NULL AS key_gone, destroyed_at IS NOT NULL AS destroyed
FROM profile_guard.subject_key WHERE subject = 's2';
SELECT profile_guard._decrypt('s2', 'health.condition', ct) FROM regress_crypto_erased;
SELECT profile_guard._ciphertext_kind('s2', 'health.condition', ct) AS kind FROM regress_crypto_erased;
SELECT profile_guard._encrypt('s2', 'health.condition', 'new value');
-- destroying again is harmless; other subjects are untouched
SELECT profile_guard._destroy_subject_key('s2');
SELECT profile_guard._decrypt('s1', 'health.condition',
	   profile_guard._encrypt('s1', 'health.condition', 'still here')) AS s1_value;
-- a subject that never had a key gets a tombstone
SELECT profile_guard._destroy_subject_key('s_never');
SELECT subject, wrapped_key IS NULL AS key_gone, destroyed_at IS NOT NULL AS destroyed
FROM profile_guard.subject_key WHERE subject = 's_never';
SELECT profile_guard._encrypt('s_never', 'health.condition', 'x');
-- other sessions see the destruction too
\c
SELECT profile_guard._decrypt('s2', 'health.condition', ct) FROM regress_crypto_erased;
SELECT profile_guard.rotate_master_key() AS rewrapped;
SELECT count(*) AS keys, count(wrapped_key) AS live_keys FROM profile_guard.subject_key;

DROP TABLE regress_crypto_erased;
DROP OWNED BY regress_crypto_user;
DROP ROLE regress_crypto_user;
DROP EXTENSION profile_guard CASCADE;
