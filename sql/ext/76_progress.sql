/*
 * 76_progress.sql — the progress of long work, per backend (src/progress.c),
 * in the manner of pg_stat_progress_*: classify's encryption of stored
 * values (and declassify's decryption), rotate_master_key(), a sweep (by
 * sweep() or the erasure worker), the bulk build of a purpose's consent
 * answers.
 */

CREATE FUNCTION _progress(
	OUT pid integer, OUT dbid oid, OUT userid oid, OUT command text,
	OUT relid oid, OUT phase text, OUT done bigint, OUT total bigint,
	OUT unit text, OUT started_at timestamptz, OUT changed_at timestamptz)
RETURNS SETOF record
LANGUAGE C VOLATILE STRICT PARALLEL RESTRICTED
AS 'MODULE_PATHNAME', 'profile_guard_progress';

-- One row per backend running one of the commands: done of total units
-- (blocks for encrypt and decrypt, keys for rotate_master_key, rows erased
-- for sweep, subjects for consent_build; total is NULL where it is not known
-- in advance).  Counts only: no subject, tag or value.
CREATE VIEW progress AS
SELECT p.pid, d.datname, pg_catalog.pg_get_userbyid(p.userid) AS role,
	   p.command, p.relid::pg_catalog.regclass AS relation, p.phase,
	   p.done, p.total, p.unit,
	   CASE WHEN p.total > 0
			THEN pg_catalog.round(100.0 * p.done / p.total, 1) END AS percent,
	   p.started_at, p.changed_at
FROM _progress() p
LEFT JOIN pg_catalog.pg_database d ON d.oid = p.dbid;

-- For the extension's own PL/pgSQL (classify's conversion of stored values):
-- report a command, the relation and units done, its end.
CREATE FUNCTION _progress_start(command text, relid oid, phase text, total bigint)
RETURNS boolean
LANGUAGE C VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'profile_guard_progress_start';
CREATE FUNCTION _progress_update(relid oid, done bigint)
RETURNS void
LANGUAGE C VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'profile_guard_progress_update';
CREATE FUNCTION _progress_end()
RETURNS void
LANGUAGE C VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'profile_guard_progress_end';

REVOKE ALL ON FUNCTION _progress() FROM PUBLIC;
REVOKE ALL ON FUNCTION _progress_start(text, oid, text, bigint) FROM PUBLIC;
REVOKE ALL ON FUNCTION _progress_update(oid, bigint) FROM PUBLIC;
REVOKE ALL ON FUNCTION _progress_end() FROM PUBLIC;
REVOKE ALL ON progress FROM PUBLIC;
GRANT SELECT ON progress TO profile_guard_admin, pg_monitor;
GRANT EXECUTE ON FUNCTION _progress() TO profile_guard_admin, pg_monitor;
