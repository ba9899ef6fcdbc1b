/*
 * 88_privacy_notice.sql — what the privacy notice must say about profiles
 * (guideline §5 d, §7.1 a, §9 a), generated from the catalog that the read
 * and write paths enforce, so the notice cannot drift from what is done.
 * docs/accountability.md describes it.
 *
 * It reads only the catalog (purposes, tags, categories), never a person's
 * data; it is SECURITY DEFINER with search_path pinned and executable by the
 * roles that may read consent_status and subject_report().  It writes
 * nothing.
 */

/*
 * privacy_notice(purpose): for one purpose (retired ones say so), or every
 * active purpose when purpose is NULL: its description, version, lawful
 * basis and flags, the tags it may use (its patterns expanded to the
 * defined tags) with their categories and sensitivity, its retention and
 * recipient (with its country, and whether that makes the purpose
 * cross-border), whether separate consent is needed, and how a person
 * withdraws, opts out, blocks or erases a tag and requests erasure.
 */
CREATE FUNCTION privacy_notice(purpose text DEFAULT NULL)
RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, profile_guard, pg_temp
SET IntervalStyle = 'postgres'
AS $$
DECLARE
	notices		jsonb;
BEGIN
	IF privacy_notice.purpose IS NOT NULL
	   AND NOT EXISTS (SELECT 1 FROM profile_guard.purpose p WHERE p.purpose = privacy_notice.purpose) THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = 'purpose is not defined',
			DETAIL = format('No purpose named "%s" is defined, so there is nothing to disclose for it.',
							left(privacy_notice.purpose, 200)),
			HINT = 'Call profile_guard.privacy_notice() without an argument for every active purpose, or define the purpose with profile_guard.define_purpose().';
	END IF;

	SELECT coalesce(jsonb_agg(n ORDER BY n->>'purpose'), '[]'::jsonb) INTO notices
	FROM (
		SELECT jsonb_build_object(
			'purpose', p.purpose,
			'description', p.description,
			'version', p.version,
			'status', CASE WHEN p.retired_at IS NULL THEN 'active' ELSE 'retired' END,
			'note', CASE WHEN p.retired_at IS NOT NULL
						 THEN 'This purpose is retired: its tags are no longer used for it, and are erased on schedule.' END,
			'legal_basis', p.legal_basis,
			'consent_needed', p.legal_basis = 'consent',
			'personalised', p.personalised,
			'marketing', p.marketing,
			'automated_decision', p.automated_decision,
			'minors', CASE WHEN p.marketing
						   THEN format('Not used for anyone younger than %s.', minor_age())
						   ELSE format('Tags of a child under 14 are used only with a guardian''s separate consent; anyone younger than %s counts as a minor.', minor_age()) END,
			'tags_listed', p.tags IS NOT NULL AND NOT '*' = ANY (p.tags),
			'tags', (SELECT coalesce(jsonb_agg(jsonb_build_object(
										'tag', t.tag,
										'category', t.category,
										'sensitive', t.sensitivity = 'sensitive',
										'description', t.description)
									 ORDER BY t.tag), '[]'::jsonb)
					 FROM tag t WHERE tag_matches(p.tags, t.tag)),
			'separate_consent_needed',
				p.legal_basis = 'consent'
				AND EXISTS (SELECT 1 FROM tag t
							WHERE t.sensitivity = 'sensitive' AND tag_matches(p.tags, t.tag)),
			'separate_consent_tags',
				(SELECT coalesce(jsonb_agg(t.tag ORDER BY t.tag), '[]'::jsonb) FROM tag t
				 WHERE t.sensitivity = 'sensitive' AND tag_matches(p.tags, t.tag)),
			'retention', CASE WHEN p.retention IS NOT NULL THEN p.retention::text END,
			'recipient', p.recipient,
			'recipient_country', (SELECT r.country FROM recipient r WHERE r.recipient = p.recipient),
			'cross_border', p.recipient IS NOT NULL AND _cross_border(p.recipient),
			'how_to', jsonb_build_object(
				'withdraw', CASE WHEN p.legal_basis = 'consent'
								 THEN format('profile_guard.withdraw_consent(subject, %L)', p.purpose) END,
				'opt_out', CASE WHEN p.personalised THEN 'profile_guard.opt_out(subject)' END,
				'block_tag', 'profile_guard.block_tag(subject, tag)',
				'erase_tag', 'profile_guard.erase_tag(subject, tag)',
				'request_erasure', 'profile_guard.request_erasure(subject)',
				'access', 'profile_guard.subject_report(subject)')) AS n
		FROM profile_guard.purpose p
		WHERE (privacy_notice.purpose IS NULL AND p.retired_at IS NULL)
		   OR p.purpose = privacy_notice.purpose
	) AS x(n);

	RETURN jsonb_build_object('purposes', notices);
END
$$;
REVOKE ALL ON FUNCTION privacy_notice(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION privacy_notice(text) TO profile_guard_admin, profile_guard_consent;
