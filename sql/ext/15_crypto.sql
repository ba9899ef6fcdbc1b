
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

/*
 * Data keys made in bulk: register_subject() makes a new subject's key
 * (when a master key is configured), so that its first sensitive value
 * finds one.  create_data_keys() makes the missing keys of subjects
 * registered before 1.2, or while no master key was configured, or
 * inserted into profile_guard.subject directly, and returns how many.
 */
CREATE FUNCTION _create_data_keys(subjects text[], when_configured boolean)
RETURNS bigint
AS 'MODULE_PATHNAME', 'profile_guard_create_data_keys'
LANGUAGE C STRICT VOLATILE;
REVOKE ALL ON FUNCTION _create_data_keys(text[], boolean) FROM PUBLIC;

CREATE FUNCTION create_data_keys()
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, profile_guard, pg_temp
AS $$
BEGIN
	RETURN _create_data_keys(ARRAY(SELECT s.subject FROM subject s
								   WHERE NOT EXISTS (SELECT 1 FROM subject_key k
													 WHERE k.subject = s.subject)
								   ORDER BY s.subject), false);
END
$$;
COMMENT ON FUNCTION create_data_keys() IS
	'makes the data key of every registered subject that has none; returns how many were made';
REVOKE ALL ON FUNCTION create_data_keys() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION create_data_keys() TO profile_guard_admin;

/*
 * Unwrapped data keys shared between the backends of a database
 * (profile_guard.shared_key_cache_size).  Any statement that destroys,
 * re-wraps, deletes or truncates keys retires them when it commits, and
 * flushes every backend's cache: this trigger notes it, whoever runs the
 * statement, and fires in every session_replication_role.
 */
CREATE FUNCTION _data_keys_changed()
RETURNS trigger
AS 'MODULE_PATHNAME', 'profile_guard_data_keys_changed'
LANGUAGE C;
REVOKE ALL ON FUNCTION _data_keys_changed() FROM PUBLIC;
CREATE TRIGGER subject_key_changed
	AFTER UPDATE OR DELETE OR TRUNCATE ON subject_key
	FOR EACH STATEMENT EXECUTE FUNCTION _data_keys_changed();
ALTER TABLE subject_key ENABLE ALWAYS TRIGGER subject_key_changed;

-- C: the sets of data keys in shared memory, for the DBA
CREATE FUNCTION shared_data_keys(OUT database oid, OUT keys bigint,
	OUT bytes bigint, OUT copies bigint, OUT complete boolean,
	OUT published_at timestamptz)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'profile_guard_shared_data_keys'
LANGUAGE C STRICT VOLATILE;
COMMENT ON FUNCTION shared_data_keys() IS
	'the sets of unwrapped data keys shared between backends: per database, the keys, bytes, how many times backends took them (read in place), and whether keys were made since';
REVOKE ALL ON FUNCTION shared_data_keys() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION shared_data_keys() TO profile_guard_admin;
