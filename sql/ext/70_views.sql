/*
 * 70_views.sql — views over consent for the people who administer it:
 * consent_status (what tag_state() says, for every purpose) and
 * consents_needing_renewal (§7.1 b: purpose changed; consents about to end).
 */

-- Per subject, purpose and tag: may the tag be used, and if not, why, and
-- the purpose's lawful basis.  Lists the subjects with any consent event
-- for the purpose (every registered subject for a purpose not based on
-- consent).
CREATE VIEW consent_status AS
SELECT ts.subject, pu.purpose, ts.tag, ts.effective, ts.reason, pu.legal_basis
FROM purpose pu
CROSS JOIN LATERAL tag_state(pu.purpose) AS ts;

-- Per subject and purpose, the latest grant when it is for an older version
-- of the purpose, has expired, or expires within 30 days.  Subjects who
-- withdrew everything since, asked for erasure, and retired purposes are
-- left out: there is nothing to renew.
CREATE VIEW consents_needing_renewal AS
WITH latest_grant AS (
	SELECT DISTINCT ON (c.subject, c.purpose)
		   c.subject, c.purpose, c.consent_id, c.purpose_version, c.expires_at
	FROM consent c
	WHERE c.action = 'grant'
	ORDER BY c.subject, c.purpose, c.consent_id DESC
)
SELECT g.subject, g.purpose,
	   g.purpose_version AS granted_version,
	   pu.version AS current_version,
	   g.expires_at,
	   pg_catalog.concat_ws(', ',
			CASE WHEN g.purpose_version < pu.version THEN 'outdated version' END,
			CASE WHEN g.expires_at <= pg_catalog.now() THEN 'expired'
				 WHEN g.expires_at <= pg_catalog.now() + interval '30 days'
				 THEN 'expires within 30 days' END) AS why
FROM latest_grant g
JOIN purpose pu ON pu.purpose = g.purpose
JOIN subject s ON s.subject = g.subject
WHERE pu.retired_at IS NULL
  AND s.erasure_requested_at IS NULL
  AND NOT EXISTS (SELECT 1 FROM consent w
				  WHERE w.subject = g.subject AND w.purpose = g.purpose
					AND w.action = 'withdraw' AND w.tags IS NULL
					AND w.consent_id > g.consent_id)
  AND (g.purpose_version < pu.version
	   OR g.expires_at <= pg_catalog.now() + interval '30 days');

REVOKE ALL ON consent_status, consents_needing_renewal FROM PUBLIC;
GRANT SELECT ON consent_status, consents_needing_renewal
	TO profile_guard_admin, profile_guard_consent;
-- functions called by a view are checked against the view's user
GRANT EXECUTE ON FUNCTION tag_state(text, text, boolean)
	TO profile_guard_admin, profile_guard_consent;
GRANT EXECUTE ON FUNCTION _basis_subjects(text, text)
	TO profile_guard_admin, profile_guard_consent;
