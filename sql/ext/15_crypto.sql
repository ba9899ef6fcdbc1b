
/*
 * 15_crypto.sql — encryption of sensitive tag values (src/crypto_envelope.c,
 * src/data_key.c): the per-subject data keys, wrapped by the master key,
 * and the functions over them.  The master key itself is never in the
 * database.
 */

-- One data key per subject, wrapped by the master key; wrapped_key is NULL
-- once the key was destroyed (crypto-shredding: the subject's data were
-- erased).  Written only by the C functions, which run their queries as the
-- table's owner.
CREATE TABLE subject_key (
	subject		text PRIMARY KEY,
	wrapped_key	bytea,			-- NULL once destroyed
	master_fingerprint text,	-- of the master key that wrapped it
	created_at	timestamptz NOT NULL DEFAULT now(),
	destroyed_at timestamptz,
	CHECK ((wrapped_key IS NULL) = (destroyed_at IS NOT NULL))
);
REVOKE ALL ON subject_key FROM PUBLIC;

-- The wrapped keys must travel with a dump: without them the dumped
-- ciphertext could never be read again.
SELECT pg_catalog.pg_extension_config_dump('subject_key', '');

CREATE FUNCTION rotate_master_key()
RETURNS bigint
AS 'MODULE_PATHNAME', 'profile_guard_rotate_master_key'
LANGUAGE C STRICT VOLATILE;
COMMENT ON FUNCTION rotate_master_key() IS
	're-wraps every data key under the current master key; returns how many were re-wrapped';
REVOKE ALL ON FUNCTION rotate_master_key() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION rotate_master_key() TO profile_guard_admin;

-- Internal helpers, for tests and for the other parts of the extension.
CREATE FUNCTION _encrypt(subject text, tag text, value text)
RETURNS text
AS 'MODULE_PATHNAME', 'profile_guard_encrypt_text'
LANGUAGE C STRICT VOLATILE;

CREATE FUNCTION _encrypt(subject text, tag text, value bytea)
RETURNS bytea
AS 'MODULE_PATHNAME', 'profile_guard_encrypt_bytea'
LANGUAGE C STRICT VOLATILE;

CREATE FUNCTION _decrypt(subject text, tag text, value text)
RETURNS text
AS 'MODULE_PATHNAME', 'profile_guard_decrypt_text'
LANGUAGE C STRICT STABLE;

CREATE FUNCTION _decrypt(subject text, tag text, value bytea)
RETURNS bytea
AS 'MODULE_PATHNAME', 'profile_guard_decrypt_bytea'
LANGUAGE C STRICT STABLE;

CREATE FUNCTION _ciphertext_kind(subject text, tag text, value text)
RETURNS text
AS 'MODULE_PATHNAME', 'profile_guard_ciphertext_kind_text'
LANGUAGE C STRICT STABLE;

CREATE FUNCTION _ciphertext_kind(subject text, tag text, value bytea)
RETURNS text
AS 'MODULE_PATHNAME', 'profile_guard_ciphertext_kind_bytea'
LANGUAGE C STRICT STABLE;

CREATE FUNCTION _destroy_subject_key(subject text)
RETURNS void
AS 'MODULE_PATHNAME', 'profile_guard_destroy_subject_key'
LANGUAGE C STRICT VOLATILE;

REVOKE ALL ON FUNCTION _encrypt(text, text, text), _encrypt(text, text, bytea),
	_decrypt(text, text, text), _decrypt(text, text, bytea),
	_ciphertext_kind(text, text, text), _ciphertext_kind(text, text, bytea),
	_destroy_subject_key(text)
	FROM PUBLIC;
