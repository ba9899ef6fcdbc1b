/*
 * 20_policy.sql — the consent rules as one set-based function, tag_state(),
 * that says for every subject and tag whether the tag is usable under a
 * purpose and, if not, why.  It is their specification: consent_status, the
 * subject report and erasure read it; the consent cache of the read path
 * applies the same rules in C (src/rules.c, one subject at a time
 * or every subject in one pass), which the suites check against it subject
 * by subject through _subject_answer() and _bulk_answers().
 */

-- Does a tag list (names and "prefix.*" patterns) cover a tag?  NULL or
-- '{*}' covers every tag.
CREATE FUNCTION tag_matches(patterns text[], tag text)
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
	SELECT patterns IS NULL OR EXISTS (
		SELECT 1 FROM pg_catalog.unnest(patterns) AS p
		WHERE p OPERATOR(pg_catalog.=) tag OR p OPERATOR(pg_catalog.=) '*'
		   OR (pg_catalog.right(p, 2) OPERATOR(pg_catalog.=) '.*'
			   AND pg_catalog.starts_with(tag, pg_catalog.left(p, -1))))
$$;

-- Age thresholds of a subject, as of a date.
CREATE FUNCTION minor_age()
RETURNS integer
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
	SELECT coalesce(NULLIF(pg_catalog.current_setting('profile_guard.minor_age', true), '')::integer, 18)
$$;

-- The home country (profile_guard.home_country): a purpose whose recipient
-- is in another country is cross-border.
CREATE FUNCTION home_country()
RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
	SELECT coalesce(NULLIF(pg_catalog.current_setting('profile_guard.home_country', true), ''), 'CN')
$$;

-- Is a purpose cross-border: does it name a recipient outside the home
-- country?
CREATE FUNCTION _cross_border(p_recipient text)
RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
	SELECT coalesce((SELECT r.country OPERATOR(pg_catalog.<>) profile_guard.home_country()
					 FROM profile_guard.recipient r
					 WHERE r.recipient OPERATOR(pg_catalog.=) p_recipient), false)
$$;

-- The time zone ages are computed in (profile_guard.age_time_zone), and
-- today's date there.
CREATE FUNCTION age_time_zone()
RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
	SELECT coalesce(NULLIF(pg_catalog.current_setting('profile_guard.age_time_zone', true), ''), 'UTC')
$$;

-- How the minors' rules treat a subject without a birth date
-- (profile_guard.unknown_age): 'adult', 'minor' or 'child' (under 14).
CREATE FUNCTION unknown_age()
RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
	SELECT coalesce(NULLIF(pg_catalog.current_setting('profile_guard.unknown_age', true), ''), 'adult')
$$;

CREATE FUNCTION age_today()
RETURNS date
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
	SELECT CAST(pg_catalog.timezone(profile_guard.age_time_zone(), pg_catalog.transaction_timestamp())
				AS pg_catalog.date)
$$;

/*
 * The subjects a purpose based on something else than consent (rule 9a)
 * concerns: every registered subject (only p_subject when given); none for
 * a purpose based on consent.  A function of its own, estimated at one row,
 * so that the plans of tag_state() stay sized by the consent events they
 * read rather than by the whole subject table.
 */
CREATE FUNCTION _basis_subjects(p_purpose text, p_subject text)
RETURNS SETOF text
LANGUAGE plpgsql STABLE ROWS 1
SET search_path = pg_catalog, profile_guard, pg_temp
AS $$
BEGIN
	IF NOT EXISTS (SELECT 1 FROM purpose pu
				   WHERE pu.purpose = p_purpose AND pu.legal_basis <> 'consent') THEN
		RETURN;
	ELSIF p_subject IS NOT NULL THEN
		RETURN QUERY SELECT s.subject FROM subject s WHERE s.subject = p_subject;
	ELSE
		RETURN QUERY SELECT s.subject FROM subject s;
	END IF;
END
$$;
REVOKE ALL ON FUNCTION _basis_subjects(text, text) FROM PUBLIC;

/*
 * tag_state(purpose, subject, with_unconsented)
 *
 * One row per subject and tag for the subjects that have any consent event
 * for the purpose (only p_subject when given); for a purpose based on
 * another lawful basis than consent (rule 9a), for every registered
 * subject and every tag in the purpose's scope, consent events aside.  Tags covered by a consent
 * event are always listed; with p_with_unconsented, the purpose's other tags
 * are listed too (reason "not consented").  effective is true when the tag
 * may be served; otherwise reason says why, the first failing rule winning.
 * valid_until is the next moment the answer can change by itself (a consent
 * expiring, a birthday crossing an age threshold).  A subject without a
 * birth date is an adult, a minor or a child under 14 as
 * profile_guard.unknown_age says.
 *
 * No SET clause, and every name qualified: that keeps the function
 * inlinable into the queries that read it (consent_status, erasure), and
 * independent of the caller's search_path.
 */
CREATE FUNCTION tag_state(p_purpose text, p_subject text DEFAULT NULL,
						  p_with_unconsented boolean DEFAULT true)
RETURNS TABLE (subject text, tag text, tag_id integer, effective boolean,
			   reason text, valid_until timestamptz)
LANGUAGE sql STABLE
AS $$
WITH p AS (
	SELECT pu.purpose, pu.version, pu.tags, pu.marketing, pu.personalised, pu.retired_at,
		   pu.legal_basis, pu.legal_basis OPERATOR(pg_catalog.<>) 'consent' AS standing,
		   profile_guard._cross_border(pu.recipient) AS cross_border,
		   (pu.automated_decision OR profile_guard._cross_border(pu.recipient)) AND NOT EXISTS (
				SELECT 1 FROM profile_guard.assessment a
				WHERE a.purpose OPERATOR(pg_catalog.=) pu.purpose
				  AND a.purpose_version OPERATOR(pg_catalog.=) pu.version) AS unassessed,
		   pg_catalog.statement_timestamp() AS now,
		   profile_guard.age_today() AS today,
		   profile_guard.age_time_zone() AS age_zone,
		   profile_guard.minor_age() AS minor_age,
		   profile_guard.unknown_age() AS unknown_age
	FROM profile_guard.purpose pu
	WHERE pu.purpose OPERATOR(pg_catalog.=) p_purpose
),
-- two branches so that a one-subject call uses the index even with a
-- generic plan (only one branch runs: the other's one-time filter is false)
ev AS (
	SELECT c.consent_id, c.subject, coalesce(c.tags, '{*}') AS tags, c.action,
		   c.purpose_version, c.separate, c.guardian, c.expires_at
	FROM profile_guard.consent c CROSS JOIN p
	WHERE p_subject IS NOT NULL AND c.purpose OPERATOR(pg_catalog.=) p_purpose
	  AND c.subject OPERATOR(pg_catalog.=) p_subject AND NOT p.standing
	UNION ALL
	SELECT c.consent_id, c.subject, coalesce(c.tags, '{*}') AS tags, c.action,
		   c.purpose_version, c.separate, c.guardian, c.expires_at
	FROM profile_guard.consent c CROSS JOIN p
	WHERE p_subject IS NULL AND c.purpose OPERATOR(pg_catalog.=) p_purpose AND NOT p.standing
),
-- a purpose based on something else than consent (rule 9a) concerns every
-- registered subject, consent events or none
reg AS (
	SELECT r.subject FROM profile_guard._basis_subjects(p_purpose, p_subject) AS r(subject)
),
-- each subject in question, with what the rules need to know of it
subj AS (
	SELECT e.subject,
		   s.subject IS NULL AS unregistered,
		   s.erasure_requested_at IS NOT NULL AS erasure_requested,
		   coalesce(s.opted_out, false) AS opted_out,
		   s.birth_date,
		   -- without a birth date, as profile_guard.unknown_age says
		   coalesce(s.birth_date OPERATOR(pg_catalog.+) pg_catalog.make_interval(years => p.minor_age)
					OPERATOR(pg_catalog.>) p.today,
					p.unknown_age OPERATOR(pg_catalog.<>) 'adult') AS minor,
		   coalesce(s.birth_date OPERATOR(pg_catalog.+) pg_catalog.make_interval(years => 14)
					OPERATOR(pg_catalog.>) p.today,
					p.unknown_age OPERATOR(pg_catalog.=) 'child') AS under_14,
		   h.held AND s.subject IS NOT NULL AS held, h.held_until
	FROM (SELECT ev.subject FROM ev UNION SELECT reg.subject FROM reg) AS e
	CROSS JOIN p
	LEFT JOIN profile_guard.subject s ON s.subject OPERATOR(pg_catalog.=) e.subject
	-- its active legal holds (rule 9b): held until the last ends
	CROSS JOIN LATERAL (
		SELECT pg_catalog.count(*) OPERATOR(pg_catalog.>) 0 AS held,
			   CASE WHEN pg_catalog.bool_or(lh.until IS NULL) THEN NULL
					ELSE pg_catalog.max(lh.until) END AS held_until
		FROM profile_guard.legal_hold lh
		WHERE lh.subject OPERATOR(pg_catalog.=) e.subject AND lh.released_at IS NULL
		  AND (lh.until IS NULL OR lh.until OPERATOR(pg_catalog.>) p.now)) AS h
),
-- their blocks (two branches, as for ev)
blocks AS (
	SELECT b.subject, b.tag FROM profile_guard.tag_block b
	WHERE p_subject IS NOT NULL AND b.subject OPERATOR(pg_catalog.=) p_subject
	UNION ALL
	SELECT b.subject, b.tag FROM profile_guard.tag_block b
	WHERE p_subject IS NULL
),
-- every tag, and whether the purpose may use it at all (once per tag)
scope AS (
	SELECT t.tag_id, t.tag, t.all_sources, t.sensitivity,
		   profile_guard.tag_matches(p.tags, t.tag) AS in_scope,
		   coalesce(t.tag OPERATOR(pg_catalog.=) ANY (p.tags), false) AS named
	FROM profile_guard.tag t CROSS JOIN p
),
-- consents mostly repeat the same tag lists: match each distinct list once
pattern_tag AS (
	SELECT l.tags, t.tag_id
	FROM (SELECT DISTINCT ev.tags FROM ev) AS l
	JOIN profile_guard.tag t ON profile_guard.tag_matches(l.tags, t.tag)
),
latest AS (
	SELECT DISTINCT ON (ev.subject, pt.tag_id)
		   ev.subject, pt.tag_id, ev.action, ev.purpose_version, ev.separate,
		   ev.guardian, ev.expires_at
	FROM ev JOIN pattern_tag pt ON pt.tags OPERATOR(pg_catalog.=) ev.tags
	ORDER BY ev.subject, pt.tag_id, ev.consent_id DESC
),
pairs AS (
	SELECT l.subject, l.tag_id, l.action, l.purpose_version, l.separate,
		   l.guardian, l.expires_at
	FROM latest l
	UNION ALL
	SELECT s.subject, sc.tag_id, NULL, NULL, NULL, NULL, NULL
	FROM subj AS s
	CROSS JOIN p
	JOIN scope sc ON sc.in_scope
	WHERE p_with_unconsented AND NOT p.standing
	  AND NOT EXISTS (SELECT 1 FROM latest l
					  WHERE l.subject OPERATOR(pg_catalog.=) s.subject
					    AND l.tag_id OPERATOR(pg_catalog.=) sc.tag_id)
	UNION ALL
	-- not based on consent: the lawful basis stands for a grant of every
	-- tag in scope to every registered subject
	SELECT s.subject, sc.tag_id, 'basis', p.version, NULL, NULL, NULL
	FROM subj AS s
	CROSS JOIN p
	JOIN scope sc ON sc.in_scope
	WHERE p.standing AND NOT s.unregistered
),
cell AS (
	SELECT x.subject, t.tag, t.tag_id, t.all_sources, x.action, x.expires_at,
		   t.in_scope, s.unregistered, s.erasure_requested, s.opted_out, p.cross_border,
		   s.minor, s.under_14, s.birth_date, s.held, s.held_until, t.named,
		   b.tag IS NOT NULL AS blocked,
		   -- the tag's own consent holds (scope and derivation aside); under
		   -- another lawful basis, a sensitive tag (every tag of a child
		   -- under 14 or of a cross-border purpose) only when the purpose's
		   -- list names it
		   CASE WHEN x.action OPERATOR(pg_catalog.=) 'basis'
				THEN (t.named OR (t.sensitivity OPERATOR(pg_catalog.=) 'general' AND NOT s.under_14
								  AND NOT p.cross_border))
					 AND b.tag IS NULL
				ELSE x.action OPERATOR(pg_catalog.=) 'grant'
			 AND (x.expires_at IS NULL OR x.expires_at OPERATOR(pg_catalog.>) p.now)
			 AND x.purpose_version OPERATOR(pg_catalog.>=) p.version
			 AND (x.separate OR (t.sensitivity OPERATOR(pg_catalog.=) 'general' AND NOT s.under_14
								 AND NOT p.cross_border))
			 AND (x.guardian OR NOT s.under_14)
			 AND b.tag IS NULL END AS consented,
		   x.purpose_version, x.separate, x.guardian, t.sensitivity
	FROM pairs x
	CROSS JOIN p
	JOIN scope t ON t.tag_id OPERATOR(pg_catalog.=) x.tag_id
	JOIN subj s ON s.subject OPERATOR(pg_catalog.=) x.subject
	LEFT JOIN blocks b ON b.subject OPERATOR(pg_catalog.=) x.subject
					  AND b.tag OPERATOR(pg_catalog.=) t.tag
),
-- rule 4 needs, per subject holding a derived tag, what it consented to
derived_holder AS (
	SELECT DISTINCT c.subject FROM cell c
	WHERE c.all_sources OPERATOR(pg_catalog.<>) '{}'
),
consented_sets AS (
	SELECT c.subject,
		   pg_catalog.array_agg(c.tag) FILTER (WHERE c.consented) AS consented_tags
	FROM cell c
	JOIN derived_holder d ON d.subject OPERATOR(pg_catalog.=) c.subject
	GROUP BY c.subject
),
judged AS (
	SELECT c.*, cs.consented_tags
	FROM cell c
	LEFT JOIN consented_sets cs ON cs.subject OPERATOR(pg_catalog.=) c.subject
)
SELECT j.subject, j.tag, j.tag_id, r.reason IS NULL, r.reason,
	   LEAST(CASE WHEN j.expires_at OPERATOR(pg_catalog.>) p.now THEN j.expires_at END,
			 CASE WHEN j.under_14
				  THEN pg_catalog.timezone(p.age_zone, j.birth_date OPERATOR(pg_catalog.+)
										   pg_catalog.make_interval(years => 14)) END,
			 CASE WHEN j.minor
				  THEN pg_catalog.timezone(p.age_zone, j.birth_date OPERATOR(pg_catalog.+)
										   pg_catalog.make_interval(years => p.minor_age)) END,
			 CASE WHEN j.held THEN j.held_until END)
FROM judged j
CROSS JOIN p
CROSS JOIN LATERAL (SELECT CASE
	WHEN p.retired_at IS NOT NULL THEN 'purpose retired'
	WHEN j.unregistered THEN 'subject not registered'
	WHEN j.erasure_requested THEN 'erasure requested'
	WHEN j.held AND p.legal_basis OPERATOR(pg_catalog.<>) 'legal_obligation' THEN 'legal hold'
	WHEN p.unassessed AND p.cross_border THEN 'transfer assessment missing'
	WHEN p.unassessed THEN 'impact assessment missing'
	WHEN p.personalised AND j.opted_out THEN 'opted out'
	WHEN p.marketing AND j.minor THEN 'minor under a marketing purpose'
	WHEN NOT j.in_scope THEN 'tag outside the purpose'
	WHEN j.action IS NULL THEN 'not consented'
	WHEN j.action OPERATOR(pg_catalog.=) 'withdraw' THEN 'withdrawn'
	WHEN j.expires_at OPERATOR(pg_catalog.<=) p.now THEN 'expired'
	WHEN j.purpose_version OPERATOR(pg_catalog.<) p.version THEN 'outdated version'
	WHEN j.action OPERATOR(pg_catalog.=) 'basis' AND NOT j.named
		 AND (j.sensitivity OPERATOR(pg_catalog.=) 'sensitive' OR j.under_14)
		THEN 'sensitive tag not named by the purpose'
	WHEN j.action OPERATOR(pg_catalog.=) 'basis' AND NOT j.named AND j.cross_border
		THEN 'tag of a cross-border purpose not named by it'
	WHEN (j.sensitivity OPERATOR(pg_catalog.=) 'sensitive' OR j.under_14) AND NOT j.separate
		THEN 'not separate for a sensitive tag'
	WHEN j.cross_border AND NOT j.separate
		THEN 'not separate for a cross-border purpose'
	WHEN j.under_14 AND NOT j.guardian THEN 'guardian consent missing'
	WHEN j.blocked THEN 'blocked'
	WHEN NOT (j.all_sources OPERATOR(pg_catalog.<@) coalesce(j.consented_tags, '{}'))
		THEN 'source tag not visible'
	END AS reason) AS r
$$;

REVOKE ALL ON FUNCTION tag_state(text, text, boolean) FROM PUBLIC;

-- C: the same rules for one subject (src/subject_rules.c), as the consent
-- cache applies them to a subject it meets one at a time; NULL purpose =
-- what may be collected.  For the suites, which check it against tag_state.
CREATE FUNCTION _subject_answer(purpose text, subject text,
								OUT tag_ids integer[], OUT valid_until timestamptz)
RETURNS record
LANGUAGE C STABLE
AS 'MODULE_PATHNAME', 'profile_guard_subject_answer';
REVOKE ALL ON FUNCTION _subject_answer(text, text) FROM PUBLIC;

-- C: the same rules for every subject at once, in one pass over the catalog
-- (src/bulk_rules.c), as the consent cache loads a purpose in bulk; one
-- row per subject with a consent event for the purpose, NULL purpose = what
-- may be collected.  For the suites, which check it against tag_state, and
-- the benchmarks.
CREATE FUNCTION _bulk_answers(purpose text)
RETURNS TABLE (subject text, tag_ids integer[], valid_until timestamptz)
LANGUAGE C STABLE
AS 'MODULE_PATHNAME', 'profile_guard_bulk_answers';
REVOKE ALL ON FUNCTION _bulk_answers(text) FROM PUBLIC;

-- C: tell every backend (and, through WAL, every standby) that policy
-- changed: the generation advances and every cached answer is rebuilt once
-- the calling transaction commits.
CREATE FUNCTION _policy_changed(relation regclass DEFAULT NULL)
RETURNS void
LANGUAGE C
AS 'MODULE_PATHNAME', 'profile_guard_policy_changed';
REVOKE ALL ON FUNCTION _policy_changed(regclass) FROM PUBLIC;

-- C: tell every backend (and every standby) that one subject's answers
-- changed: caches refresh that subject once the calling transaction commits.
CREATE FUNCTION _subject_changed(subject text)
RETURNS void
LANGUAGE C STRICT
AS 'MODULE_PATHNAME', 'profile_guard_subject_changed';
REVOKE ALL ON FUNCTION _subject_changed(text) FROM PUBLIC;

-- C: the sets of consent answers published in shared memory, for the DBA:
-- one row per database and purpose, with the policy generation they were
-- built for, their size, the backends reading them, and whether they are
-- published, still loading, or retired (no room for a change: built again
-- by the next statement that needs them).
CREATE FUNCTION shared_answers(OUT database oid, OUT purpose text,
							   OUT generation bigint, OUT bytes bigint,
							   OUT readers integer, OUT state text)
RETURNS SETOF record
LANGUAGE C
AS 'MODULE_PATHNAME', 'profile_guard_shared_answers';
REVOKE ALL ON FUNCTION shared_answers() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION shared_answers() TO profile_guard_admin;
