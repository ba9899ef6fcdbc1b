/*
 * 75_usage.sql — accountability: the usage counters (src/usage.c), kept in
 * shared memory per role, purpose and tag, like pg_stat_statements.  They
 * survive across sessions, not across a server restart.
 */

CREATE FUNCTION _usage(
	OUT role_oid oid, OUT purpose text, OUT tag text,
	OUT statements bigint, OUT cells_served bigint, OUT cells_masked bigint,
	OUT rows_hidden bigint, OUT denials bigint, OUT last_used timestamptz)
RETURNS SETOF record
LANGUAGE C VOLATILE STRICT PARALLEL RESTRICTED
AS 'MODULE_PATHNAME', 'profile_guard_usage';

-- Per role, purpose and tag: statements that read the tag, cells served
-- and masked by the cell gates, rows hidden by the row gates, refusals.
-- purpose is NULL for reads by roles that bypass the gates (superuser,
-- BYPASSRLS); the row with tag '*overflow*' and no role collects the counts
-- of combinations beyond profile_guard.usage_max.
CREATE VIEW usage AS
SELECT CASE WHEN u.role_oid IS NOT NULL THEN pg_catalog.pg_get_userbyid(u.role_oid) END AS role,
	   u.purpose, u.tag, u.statements, u.cells_served, u.cells_masked,
	   u.rows_hidden, u.denials, u.last_used
FROM _usage() u;

-- Forget the counters of this database (and the overflow entry).
CREATE FUNCTION usage_reset()
RETURNS void
LANGUAGE C VOLATILE PARALLEL RESTRICTED
AS 'MODULE_PATHNAME', 'profile_guard_usage_reset';

REVOKE ALL ON FUNCTION _usage() FROM PUBLIC;
REVOKE ALL ON FUNCTION usage_reset() FROM PUBLIC;
REVOKE ALL ON usage FROM PUBLIC;
GRANT SELECT ON usage TO profile_guard_admin;
GRANT EXECUTE ON FUNCTION _usage() TO profile_guard_admin;
GRANT EXECUTE ON FUNCTION usage_reset() TO profile_guard_admin;
