-- profile_guard--1.0--1.1.sql: assembled by the Makefile from this file,
-- the changed parts of sql/ext (functions re-created with OR REPLACE) and the
-- new parts (appended as they are).  test/scenario/upgrade.sh checks that an
-- updated database has exactly the objects of a fresh 1.1 install.

\echo Use "ALTER EXTENSION profile_guard UPDATE TO '1.1'" to load this file. \quit

-- 1.1 adds: the erasure engine (sweep, erasure_log, worker), accountability
-- (subject_report, assess, suggest_classification), the usage view and audit
-- trail, the long-shape value gate, the one-subject rule evaluator, table
-- ownership checks in protect/classify/declassify/unprotect; tag_state
-- loses its SET clause (so that it can be inlined).
/*
 * 20_policy.sql — the rules of DESIGN.md §1 as one set-based function,
 * tag_state(), that says for every subject and tag whether the tag is usable
 * under a purpose and, if not, why.  The consent cache of the read path
 * loads its answer from here, and the consent_status view shows it, so the
 * rules live in exactly one place.
 */

-- Does a tag list (names and "prefix.*" patterns) cover a tag?  NULL or
-- '{*}' covers every tag.
CREATE OR REPLACE FUNCTION tag_matches(patterns text[], tag text)
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
CREATE OR REPLACE FUNCTION minor_age()
RETURNS integer
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
	SELECT coalesce(NULLIF(pg_catalog.current_setting('profile_guard.minor_age', true), '')::integer, 18)
$$;

/*
 * tag_state(purpose, subject, with_unconsented)
 *
 * One row per subject and tag for the subjects that have any consent event
 * for the purpose (only p_subject when given).  Tags covered by a consent
 * event are always listed; with p_with_unconsented, the purpose's other tags
 * are listed too (reason "not consented").  effective is true when the tag
 * may be served; otherwise reason says why, the first failing rule winning.
 * valid_until is the next moment the answer can change by itself (a consent
 * expiring, a birthday crossing an age threshold).
 *
 * No SET clause, and every name qualified: that keeps the function
 * inlinable, so the consent cache holds one prepared plan of it per backend
 * (it runs it under a fixed search_path).
 */
CREATE OR REPLACE FUNCTION tag_state(p_purpose text, p_subject text DEFAULT NULL,
						  p_with_unconsented boolean DEFAULT true)
RETURNS TABLE (subject text, tag text, tag_id integer, effective boolean,
			   reason text, valid_until timestamptz)
LANGUAGE sql STABLE
AS $$
WITH p AS (
	SELECT pu.purpose, pu.version, pu.tags, pu.marketing, pu.retired_at,
		   pu.automated_decision AND NOT EXISTS (
				SELECT 1 FROM profile_guard.assessment a
				WHERE a.purpose OPERATOR(pg_catalog.=) pu.purpose
				  AND a.purpose_version OPERATOR(pg_catalog.=) pu.version) AS unassessed,
		   pg_catalog.statement_timestamp() AS now,
		   current_date AS today,
		   profile_guard.minor_age() AS minor_age
	FROM profile_guard.purpose pu
	WHERE pu.purpose OPERATOR(pg_catalog.=) p_purpose
),
-- two branches so that a one-subject call uses the index even with a
-- generic plan (only one branch runs: the other's one-time filter is false)
ev AS (
	SELECT c.consent_id, c.subject, coalesce(c.tags, '{*}') AS tags, c.action,
		   c.purpose_version, c.separate, c.guardian, c.expires_at
	FROM profile_guard.consent c
	WHERE p_subject IS NOT NULL AND c.purpose OPERATOR(pg_catalog.=) p_purpose
	  AND c.subject OPERATOR(pg_catalog.=) p_subject
	UNION ALL
	SELECT c.consent_id, c.subject, coalesce(c.tags, '{*}') AS tags, c.action,
		   c.purpose_version, c.separate, c.guardian, c.expires_at
	FROM profile_guard.consent c
	WHERE p_subject IS NULL AND c.purpose OPERATOR(pg_catalog.=) p_purpose
),
-- each subject in question, with what the rules need to know of it
subj AS (
	SELECT e.subject,
		   s.subject IS NULL AS unregistered,
		   s.erasure_requested_at IS NOT NULL AS erasure_requested,
		   coalesce(s.opted_out, false) AS opted_out,
		   s.birth_date,
		   coalesce(s.birth_date OPERATOR(pg_catalog.+) pg_catalog.make_interval(years => p.minor_age)
					OPERATOR(pg_catalog.>) p.today, false) AS minor,
		   coalesce(s.birth_date OPERATOR(pg_catalog.+) pg_catalog.make_interval(years => 14)
					OPERATOR(pg_catalog.>) p.today, false) AS under_14
	FROM (SELECT DISTINCT ev.subject FROM ev) AS e
	CROSS JOIN p
	LEFT JOIN profile_guard.subject s ON s.subject OPERATOR(pg_catalog.=) e.subject
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
		   profile_guard.tag_matches(p.tags, t.tag) AS in_scope
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
	JOIN scope sc ON sc.in_scope
	WHERE p_with_unconsented
	  AND NOT EXISTS (SELECT 1 FROM latest l
					  WHERE l.subject OPERATOR(pg_catalog.=) s.subject
					    AND l.tag_id OPERATOR(pg_catalog.=) sc.tag_id)
),
cell AS (
	SELECT x.subject, t.tag, t.tag_id, t.all_sources, x.action, x.expires_at,
		   t.in_scope, s.unregistered, s.erasure_requested, s.opted_out,
		   s.minor, s.under_14, s.birth_date,
		   b.tag IS NOT NULL AS blocked,
		   -- the tag's own consent holds (scope and derivation aside)
		   x.action OPERATOR(pg_catalog.=) 'grant'
			 AND (x.expires_at IS NULL OR x.expires_at OPERATOR(pg_catalog.>) p.now)
			 AND x.purpose_version OPERATOR(pg_catalog.>=) p.version
			 AND (x.separate OR (t.sensitivity OPERATOR(pg_catalog.=) 'general' AND NOT s.under_14))
			 AND (x.guardian OR NOT s.under_14)
			 AND b.tag IS NULL AS consented,
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
				  THEN CAST(j.birth_date OPERATOR(pg_catalog.+) pg_catalog.make_interval(years => 14)
							AS pg_catalog.timestamptz) END,
			 CASE WHEN j.minor
				  THEN CAST(j.birth_date OPERATOR(pg_catalog.+) pg_catalog.make_interval(years => p.minor_age)
							AS pg_catalog.timestamptz) END)
FROM judged j
CROSS JOIN p
CROSS JOIN LATERAL (SELECT CASE
	WHEN p.retired_at IS NOT NULL THEN 'purpose retired'
	WHEN j.unregistered THEN 'subject not registered'
	WHEN j.erasure_requested THEN 'erasure requested'
	WHEN p.unassessed THEN 'impact assessment missing'
	WHEN p.marketing AND j.opted_out THEN 'opted out'
	WHEN p.marketing AND j.minor THEN 'minor under a marketing purpose'
	WHEN NOT j.in_scope THEN 'tag outside the purpose'
	WHEN j.action IS NULL THEN 'not consented'
	WHEN j.action OPERATOR(pg_catalog.=) 'withdraw' THEN 'withdrawn'
	WHEN j.expires_at OPERATOR(pg_catalog.<=) p.now THEN 'expired'
	WHEN j.purpose_version OPERATOR(pg_catalog.<) p.version THEN 'outdated version'
	WHEN (j.sensitivity OPERATOR(pg_catalog.=) 'sensitive' OR j.under_14) AND NOT j.separate
		THEN 'not separate for a sensitive tag'
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
CREATE OR REPLACE FUNCTION _subject_answer(purpose text, subject text,
								OUT tag_ids integer[], OUT valid_until timestamptz)
RETURNS record
LANGUAGE C STABLE
AS 'MODULE_PATHNAME', 'profile_guard_subject_answer';
REVOKE ALL ON FUNCTION _subject_answer(text, text) FROM PUBLIC;

-- C: tell every backend (and, through WAL, every standby) that policy or
-- consent changed; takes effect when the calling transaction commits.
CREATE OR REPLACE FUNCTION _policy_changed(relation regclass DEFAULT NULL)
RETURNS void
LANGUAGE C
AS 'MODULE_PATHNAME', 'profile_guard_policy_changed';
REVOKE ALL ON FUNCTION _policy_changed(regclass) FROM PUBLIC;
/*
 * 25_gate.sql — the gate functions the planner hook writes into queries
 * that read guarded tables (src/gate_exec.c).  Every role executes them
 * (they run inside its queries); they reveal nothing the caller does not
 * pass in, except whether a row or tag is visible under the caller's own
 * declared purpose.  Not leakproof on purpose: user quals wait for the row
 * gate.  Parallel restricted: the consent cache is backend-local.
 */
CREATE OR REPLACE FUNCTION _row_gate(subject "any", relid oid)
RETURNS boolean
LANGUAGE C STABLE PARALLEL RESTRICTED
AS 'MODULE_PATHNAME', 'profile_guard_row_gate';

CREATE OR REPLACE FUNCTION _tag_row_gate(subject "any", tag text, relid oid)
RETURNS boolean
LANGUAGE C STABLE PARALLEL RESTRICTED
AS 'MODULE_PATHNAME', 'profile_guard_tag_row_gate';

CREATE OR REPLACE FUNCTION _cell_gate(subject "any", tag_id integer, value anyelement)
RETURNS anyelement
LANGUAGE C STABLE PARALLEL RESTRICTED
AS 'MODULE_PATHNAME', 'profile_guard_cell_gate';

CREATE OR REPLACE FUNCTION _row_mask(r anyelement, relid oid)
RETURNS anyelement
LANGUAGE C STABLE STRICT PARALLEL RESTRICTED
AS 'MODULE_PATHNAME', 'profile_guard_row_mask';

CREATE OR REPLACE FUNCTION _sensitive_cell_gate(subject "any", tag_id integer, tag text, value anyelement)
RETURNS anyelement
LANGUAGE C STABLE PARALLEL RESTRICTED
AS 'MODULE_PATHNAME', 'profile_guard_sensitive_cell_gate';

CREATE OR REPLACE FUNCTION _long_value_gate(subject "any", tag text, value anyelement)
RETURNS anyelement
LANGUAGE C STABLE PARALLEL RESTRICTED
AS 'MODULE_PATHNAME', 'profile_guard_long_value_gate';

-- the write path's trigger (src/collect.c), installed by protect()
CREATE OR REPLACE FUNCTION _collect()
RETURNS trigger
LANGUAGE C
AS 'MODULE_PATHNAME', 'profile_guard_collect';
/*
 * 40_purpose.sql — purposes: versioned definitions (§5 a, §9 a), impact
 * assessments (§9 c), retirement, and which roles may declare them (§9 f).
 */

-- A purpose by name, checked for shape; raises unless it exists.  With
-- p_for_update the row is locked.  Retired purposes are returned too.
CREATE OR REPLACE FUNCTION _get_purpose(p_purpose text, p_for_update boolean DEFAULT false)
RETURNS purpose
LANGUAGE plpgsql
SET search_path = pg_catalog, profile_guard
AS $$
DECLARE
	pu	purpose;
BEGIN
	IF p_purpose IS NULL THEN
		RAISE EXCEPTION USING ERRCODE = '22004',
			MESSAGE = 'purpose must not be null',
			HINT = 'Pass the name of a purpose defined with profile_guard.define_purpose().';
	END IF;
	IF p_for_update THEN
		SELECT * INTO pu FROM purpose x WHERE x.purpose = p_purpose FOR UPDATE;
	ELSE
		SELECT * INTO pu FROM purpose x WHERE x.purpose = p_purpose;
	END IF;
	IF NOT FOUND THEN
		RAISE EXCEPTION USING ERRCODE = '42704',
			MESSAGE = 'purpose does not exist',
			DETAIL = format('Purpose "%s" is not defined.', left(p_purpose, 120)),
			HINT = format('Define it with profile_guard.define_purpose(%L, description).', left(p_purpose, 120));
	END IF;
	RETURN pu;
END
$$;
REVOKE ALL ON FUNCTION _get_purpose(text, boolean) FROM PUBLIC;

CREATE OR REPLACE FUNCTION _refuse_retired(pu purpose)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, profile_guard
AS $$
BEGIN
	IF pu.retired_at IS NOT NULL THEN
		RAISE EXCEPTION USING ERRCODE = '55000',
			MESSAGE = 'purpose is retired',
			DETAIL = format('Purpose "%s" was retired.', pu.purpose),
			HINT = 'Define a purpose with a new name with profile_guard.define_purpose().';
	END IF;
END
$$;
REVOKE ALL ON FUNCTION _refuse_retired(purpose) FROM PUBLIC;

/*
 * define_purpose(...) RETURNS the purpose's version.  A new purpose is
 * version 1; any change of description, tags, retention, flags or recipient
 * bumps the version (consents to older versions stop counting, §7.1 b); an
 * identical redefinition changes nothing.  Every version is kept in
 * purpose_history.
 */
CREATE OR REPLACE FUNCTION define_purpose(purpose text, description text, tags text[] DEFAULT NULL,
							   retention interval DEFAULT NULL, marketing boolean DEFAULT false,
							   automated_decision boolean DEFAULT false, recipient text DEFAULT NULL)
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, profile_guard
AS $$
#variable_conflict use_column
DECLARE
	p_purpose	text := purpose;
	p_desc		text := description;
	p_tags		text[] := tags;
	p_retention	interval := retention;
	p_marketing	boolean := marketing;
	p_auto		boolean := automated_decision;
	p_recipient	text := recipient;
	old			record;
	new_version	integer;
BEGIN
	IF p_purpose IS NULL OR p_desc IS NULL THEN
		RAISE EXCEPTION USING ERRCODE = '22004',
			MESSAGE = 'purpose and description must not be null',
			HINT = 'Call profile_guard.define_purpose(''name'', ''what the profiles are used for'').';
	END IF;
	IF p_marketing IS NULL OR p_auto IS NULL THEN
		RAISE EXCEPTION USING ERRCODE = '22004',
			MESSAGE = 'marketing and automated_decision must not be null',
			DETAIL = format('Purpose "%s" needs both flags set to true or false.', left(p_purpose, 120)),
			HINT = 'Omit them for false.';
	END IF;
	IF length(p_purpose) > 100 OR p_purpose !~ '^[a-z][a-z0-9_.:-]*$' THEN
		RAISE EXCEPTION USING ERRCODE = '22023',
			MESSAGE = 'invalid purpose name',
			DETAIL = format('Purpose name "%s" must start with a lower-case letter, consist of lower-case letters, digits, "_", ".", ":" and "-", and be at most 100 characters long.',
							left(p_purpose, 120)),
			HINT = 'Use names like ''recommendation'' or ''share:acme''.';
	END IF;
	IF btrim(p_desc) = '' THEN
		RAISE EXCEPTION USING ERRCODE = '22023',
			MESSAGE = 'purpose description must not be empty',
			DETAIL = format('Purpose "%s" has an empty description.', p_purpose),
			HINT = 'Describe what the profiles are used for and how.';
	END IF;
	IF p_retention IS NOT NULL AND p_retention <= interval '0' THEN
		RAISE EXCEPTION USING ERRCODE = '22023',
			MESSAGE = 'retention must be positive',
			DETAIL = format('Purpose "%s" has a retention that is not positive.', p_purpose),
			HINT = 'Pass an interval such as interval ''180 days'', or NULL for no limit.';
	END IF;
	p_tags := _check_tag_list(p_tags, format('purpose "%s"', p_purpose));

	SELECT * INTO old FROM purpose x WHERE x.purpose = p_purpose FOR UPDATE;
	IF NOT FOUND THEN
		new_version := 1;
		INSERT INTO purpose (purpose, version, description, tags, retention,
							 marketing, automated_decision, recipient)
		VALUES (p_purpose, new_version, p_desc, p_tags, p_retention,
				p_marketing, p_auto, p_recipient);
	ELSE
		IF old.retired_at IS NOT NULL THEN
			RAISE EXCEPTION USING ERRCODE = '55000',
				MESSAGE = 'purpose is retired',
				DETAIL = format('Purpose "%s" was retired and cannot be redefined.', p_purpose),
				HINT = 'Define a purpose with a new name with profile_guard.define_purpose().';
		END IF;
		IF (old.description, old.tags, old.retention, old.marketing,
			old.automated_decision, old.recipient)
		   IS NOT DISTINCT FROM
		   (p_desc, p_tags, p_retention, p_marketing, p_auto, p_recipient) THEN
			RETURN old.version;		-- identical: nothing changes
		END IF;
		new_version := old.version + 1;
		UPDATE purpose x
		SET version = new_version, description = p_desc, tags = p_tags,
			retention = p_retention, marketing = p_marketing,
			automated_decision = p_auto, recipient = p_recipient,
			defined_at = now()
		WHERE x.purpose = p_purpose;
	END IF;

	INSERT INTO purpose_history (purpose, version, description, tags, retention,
								 marketing, automated_decision, recipient, defined_at)
	SELECT x.purpose, x.version, x.description, x.tags, x.retention,
		   x.marketing, x.automated_decision, x.recipient, x.defined_at
	FROM purpose x WHERE x.purpose = p_purpose;

	PERFORM _policy_changed();
	RETURN new_version;
END
$$;
REVOKE ALL ON FUNCTION define_purpose(text, text, text[], interval, boolean, boolean, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION define_purpose(text, text, text[], interval, boolean, boolean, text) TO profile_guard_admin;

/*
 * record_assessment(purpose, assessor, conclusion): a personal-information
 * impact assessment of the purpose's current version (§9 c).
 */
CREATE OR REPLACE FUNCTION record_assessment(purpose text, assessor text, conclusion text)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, profile_guard
AS $$
#variable_conflict use_column
DECLARE
	pu	profile_guard.purpose := _get_purpose(purpose, true);
	p_assessor text := assessor;
	p_conclusion text := conclusion;
BEGIN
	PERFORM _refuse_retired(pu);
	IF p_assessor IS NULL OR p_conclusion IS NULL
	   OR btrim(p_assessor) = '' OR btrim(p_conclusion) = '' THEN
		RAISE EXCEPTION USING ERRCODE = CASE WHEN p_assessor IS NULL OR p_conclusion IS NULL
											 THEN '22004' ELSE '22023' END,
			MESSAGE = 'assessor and conclusion must not be empty',
			DETAIL = format('The assessment of purpose "%s" needs an assessor and a conclusion.', pu.purpose),
			HINT = format('Call profile_guard.record_assessment(%L, ''who assessed'', ''what was concluded'').', pu.purpose);
	END IF;
	INSERT INTO assessment (purpose, purpose_version, assessor, conclusion)
	VALUES (pu.purpose, pu.version, p_assessor, p_conclusion);
	PERFORM _policy_changed();
END
$$;
REVOKE ALL ON FUNCTION record_assessment(text, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION record_assessment(text, text, text) TO profile_guard_admin;

/*
 * retire_purpose(purpose): the purpose ends; its use stops at once and its
 * tags become due for erasure (§7.4).
 */
CREATE OR REPLACE FUNCTION retire_purpose(purpose text)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, profile_guard
AS $$
DECLARE
	pu	profile_guard.purpose := _get_purpose(purpose, true);
BEGIN
	PERFORM _refuse_retired(pu);
	UPDATE profile_guard.purpose x SET retired_at = now() WHERE x.purpose = pu.purpose;
	PERFORM _policy_changed();
END
$$;
REVOKE ALL ON FUNCTION retire_purpose(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION retire_purpose(text) TO profile_guard_admin;

/*
 * allow_purpose(role, purpose), disallow_purpose(role, purpose): which roles
 * may declare a purpose.  The role is stored by name so dumps restore.
 * Allowing twice is a no-op.
 */
CREATE OR REPLACE FUNCTION allow_purpose(role regrole, purpose text)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, profile_guard
AS $$
#variable_conflict use_column
DECLARE
	pu		profile_guard.purpose := _get_purpose(purpose, true);
	p_role	name;
BEGIN
	IF role IS NULL THEN
		RAISE EXCEPTION USING ERRCODE = '22004',
			MESSAGE = 'role must not be null',
			HINT = format('Call profile_guard.allow_purpose(''role_name'', %L).', pu.purpose);
	END IF;
	PERFORM _refuse_retired(pu);
	SELECT r.rolname INTO p_role FROM pg_roles r WHERE r.oid = role;
	IF p_role IS NULL THEN
		RAISE EXCEPTION USING ERRCODE = '42704',
			MESSAGE = format('role with OID %s does not exist', role::oid),
			DETAIL = format('Purpose "%s" can be allowed only to an existing role.', pu.purpose),
			HINT = format('Call profile_guard.allow_purpose(''role_name'', %L) with an existing role.', pu.purpose);
	END IF;
	INSERT INTO purpose_role (role_name, purpose) VALUES (p_role, pu.purpose)
	ON CONFLICT DO NOTHING;
	PERFORM _policy_changed();
END
$$;
REVOKE ALL ON FUNCTION allow_purpose(regrole, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION allow_purpose(regrole, text) TO profile_guard_admin;

CREATE OR REPLACE FUNCTION disallow_purpose(role regrole, purpose text)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, profile_guard
AS $$
#variable_conflict use_column
DECLARE
	pu		profile_guard.purpose := _get_purpose(purpose);
	p_role	name;
BEGIN
	IF role IS NULL THEN
		RAISE EXCEPTION USING ERRCODE = '22004',
			MESSAGE = 'role must not be null',
			HINT = format('Call profile_guard.disallow_purpose(''role_name'', %L).', pu.purpose);
	END IF;
	SELECT r.rolname INTO p_role FROM pg_roles r WHERE r.oid = role;
	DELETE FROM purpose_role pr WHERE pr.role_name = p_role AND pr.purpose = pu.purpose;
	IF NOT FOUND THEN
		RAISE EXCEPTION USING ERRCODE = '42704',
			MESSAGE = 'role is not allowed the purpose',
			DETAIL = format('Role "%s" was not allowed purpose "%s".', p_role, pu.purpose),
			HINT = 'See profile_guard.purpose_role for the roles allowed each purpose.';
	END IF;
	PERFORM _policy_changed();
END
$$;
REVOKE ALL ON FUNCTION disallow_purpose(regrole, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION disallow_purpose(regrole, text) TO profile_guard_admin;
/*
 * 50_guarded.sql — guarded tables: protect/unprotect a table, classify and
 * declassify its tag columns (DESIGN.md §2 "Guarded tables").  The read
 * path finds what is guarded in guarded_table and classified_column; the
 * write path (triggers, in-place encryption) hooks in where marked
 * "WRITE PATH:".
 */

-- A column of a relation, by name: its attribute row, or a 42704 error.
CREATE OR REPLACE FUNCTION _get_column(tbl regclass, col name, what text)
RETURNS pg_attribute
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, profile_guard
AS $$
DECLARE
	a	pg_attribute;
BEGIN
	SELECT * INTO a FROM pg_attribute
	WHERE attrelid = tbl AND attname = col AND attnum > 0 AND NOT attisdropped;
	IF NOT FOUND THEN
		RAISE EXCEPTION USING ERRCODE = '42704',
			MESSAGE = 'column does not exist',
			DETAIL = format('Table %s has no column "%s" (given as the %s).', tbl, col, what),
			HINT = format('See the columns of %s with \d %s.', tbl, tbl);
	END IF;
	RETURN a;
END
$$;
REVOKE ALL ON FUNCTION _get_column(regclass, name, text) FROM PUBLIC;

-- The guarded_table row of a table, or a 55000 error.
CREATE OR REPLACE FUNCTION _get_guarded(tbl regclass, p_for_update boolean DEFAULT false)
RETURNS guarded_table
LANGUAGE plpgsql
SET search_path = pg_catalog, profile_guard
AS $$
DECLARE
	g	guarded_table;
BEGIN
	IF tbl IS NULL THEN
		RAISE EXCEPTION USING ERRCODE = '22004',
			MESSAGE = 'table must not be null',
			HINT = 'Pass a table name, e.g. ''public.profile''.';
	END IF;
	IF p_for_update THEN
		SELECT * INTO g FROM guarded_table x WHERE x.relid = tbl FOR UPDATE;
	ELSE
		SELECT * INTO g FROM guarded_table x WHERE x.relid = tbl;
	END IF;
	IF NOT FOUND THEN
		RAISE EXCEPTION USING ERRCODE = '55000',
			MESSAGE = 'table is not protected',
			DETAIL = format('Table %s is not a guarded table.', tbl),
			HINT = format('Call profile_guard.protect(%L, subject_column) first.', tbl::text);
	END IF;
	RETURN g;
END
$$;
REVOKE ALL ON FUNCTION _get_guarded(regclass, boolean) FROM PUBLIC;

/*
 * Protecting, classifying, declassifying and unprotecting rewrite the table
 * and install or drop its trigger: only its owner may do that (as for
 * ALTER TABLE), whatever policy role the caller holds.  These functions run
 * as the extension owner, so the caller is the role in effect outside them.
 */
CREATE OR REPLACE FUNCTION _invoking_role()
RETURNS oid
LANGUAGE C STABLE
AS 'MODULE_PATHNAME', 'profile_guard_invoking_role';
REVOKE ALL ON FUNCTION _invoking_role() FROM PUBLIC;

CREATE OR REPLACE FUNCTION _check_table_owner(tbl regclass)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, profile_guard
AS $$
DECLARE
	caller	oid := _invoking_role();
	owner	oid;
BEGIN
	SELECT c.relowner INTO owner FROM pg_class c WHERE c.oid = tbl;
	IF owner IS NOT NULL AND NOT pg_has_role(caller, owner, 'USAGE') THEN
		RAISE EXCEPTION USING ERRCODE = '42501',
			MESSAGE = format('must be owner of table %s', tbl),
			DETAIL = 'Protecting, classifying, declassifying and unprotecting a table rewrite it and change its trigger, which only its owner may do.',
			HINT = format('Run the call as the owner of %s, or as a member of its owning role.', tbl);
	END IF;
END
$$;
REVOKE ALL ON FUNCTION _check_table_owner(regclass) FROM PUBLIC;

/*
 * _set_statistics(tbl, col, target): pg_stats must never show tag values,
 * so tag columns get statistics target 0 and the statistics already
 * gathered (on the table and, for a partitioned table, its partitions) are
 * removed; -1 restores the default.
 */
CREATE OR REPLACE FUNCTION _set_statistics(tbl regclass, col name, target integer)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, profile_guard
AS $$
BEGIN
	EXECUTE format('ALTER TABLE %s ALTER COLUMN %I SET STATISTICS %s', tbl, col, target);
	IF target = 0 THEN
		DELETE FROM pg_statistic s
		USING pg_attribute a
		WHERE s.starelid = a.attrelid AND s.staattnum = a.attnum
		  AND a.attname = col
		  AND (a.attrelid = tbl
			   OR a.attrelid IN (SELECT pt.relid FROM pg_partition_tree(tbl) pt));
	END IF;
END
$$;
REVOKE ALL ON FUNCTION _set_statistics(regclass, name, integer) FROM PUBLIC;

/*
 * protect(tbl, subject_column, collected_at_column, tag_column,
 *         value_column, on_erase): put a table under policy.  Wide shape
 * (tag_column NULL): tag columns are classified one by one; long shape:
 * one row per subject and tag, the tag named in tag_column.
 */
CREATE OR REPLACE FUNCTION protect(tbl regclass, subject_column name, collected_at_column name DEFAULT NULL,
						tag_column name DEFAULT NULL, value_column name DEFAULT NULL,
						on_erase text DEFAULT 'delete')
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, profile_guard
AS $$
#variable_conflict use_column
DECLARE
	p_tbl		regclass := tbl;
	p_subject	name := subject_column;
	p_collected	name := collected_at_column;
	p_tagcol	name := tag_column;
	p_valcol	name := value_column;
	p_on_erase	text := on_erase;
	rel			record;
	a			pg_attribute;
BEGIN
	IF p_tbl IS NULL OR p_subject IS NULL OR p_on_erase IS NULL THEN
		RAISE EXCEPTION USING ERRCODE = '22004',
			MESSAGE = 'table, subject column and on_erase must not be null',
			HINT = 'Call profile_guard.protect(''table'', ''subject_column'').';
	END IF;
	PERFORM _check_table_owner(p_tbl);
	SELECT c.relkind, c.relpersistence, n.nspname INTO rel
	FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
	WHERE c.oid = p_tbl;
	IF rel.relkind NOT IN ('r', 'p') THEN
		RAISE EXCEPTION USING ERRCODE = '42809',
			MESSAGE = 'only ordinary and partitioned tables can be protected',
			DETAIL = format('Relation %s is not a table.', p_tbl),
			HINT = 'Protect the table the view or foreign table reads from.';
	END IF;
	IF rel.nspname IN ('profile_guard', 'pg_catalog', 'information_schema') THEN
		RAISE EXCEPTION USING ERRCODE = '42809',
			MESSAGE = 'catalog tables cannot be protected',
			DETAIL = format('Table %s is in schema %s.', p_tbl, rel.nspname),
			HINT = 'Protect a table of an application schema.';
	END IF;
	IF rel.relpersistence = 't' THEN
		RAISE EXCEPTION USING ERRCODE = '42809',
			MESSAGE = 'temporary tables cannot be protected',
			DETAIL = format('Table %s is a temporary table.', p_tbl),
			HINT = 'Protect a permanent table.';
	END IF;
	IF EXISTS (SELECT 1 FROM guarded_table g WHERE g.relid = p_tbl) THEN
		RAISE EXCEPTION USING ERRCODE = '42710',
			MESSAGE = 'table is already protected',
			DETAIL = format('Table %s is already a guarded table.', p_tbl),
			HINT = format('Call profile_guard.unprotect(%L) first to protect it differently.', p_tbl::text);
	END IF;
	IF p_on_erase NOT IN ('delete', 'anonymise') THEN
		RAISE EXCEPTION USING ERRCODE = '22023',
			MESSAGE = 'invalid on_erase',
			DETAIL = format('on_erase of table %s must be delete or anonymise.', p_tbl),
			HINT = 'Pass on_erase => ''delete'' or on_erase => ''anonymise''.';
	END IF;

	PERFORM _get_column(p_tbl, p_subject, 'subject column');
	IF p_collected IS NOT NULL THEN
		a := _get_column(p_tbl, p_collected, 'collected_at column');
		IF a.atttypid NOT IN ('date'::regtype, 'timestamp'::regtype, 'timestamptz'::regtype) THEN
			RAISE EXCEPTION USING ERRCODE = '42804',
				MESSAGE = 'collected_at column must be a date or timestamp',
				DETAIL = format('Column "%s" of table %s is of type %s.', p_collected, p_tbl,
								format_type(a.atttypid, a.atttypmod)),
				HINT = 'Pass a date, timestamp or timestamptz column as collected_at_column.';
		END IF;
	END IF;
	IF (p_tagcol IS NULL) <> (p_valcol IS NULL) THEN
		RAISE EXCEPTION USING ERRCODE = '22023',
			MESSAGE = 'long shape needs both tag_column and value_column',
			DETAIL = format('Only one of tag_column and value_column was given for table %s.', p_tbl),
			HINT = 'Pass both for a long-shape table (one row per subject and tag), or neither for a wide one.';
	END IF;
	IF p_tagcol IS NOT NULL THEN
		a := _get_column(p_tbl, p_tagcol, 'tag column');
		IF a.atttypid NOT IN ('text'::regtype, 'varchar'::regtype) THEN
			RAISE EXCEPTION USING ERRCODE = '42804',
				MESSAGE = 'tag column must be of type text or varchar',
				DETAIL = format('Column "%s" of table %s is of type %s.', p_tagcol, p_tbl,
								format_type(a.atttypid, a.atttypmod)),
				HINT = 'Pass a text column holding tag names as tag_column.';
		END IF;
		PERFORM _get_column(p_tbl, p_valcol, 'value column');
	END IF;
	IF cardinality(ARRAY(SELECT DISTINCT c FROM unnest(ARRAY[p_subject, p_collected, p_tagcol, p_valcol]) c
						 WHERE c IS NOT NULL))
	   <> cardinality(array_remove(ARRAY[p_subject, p_collected, p_tagcol, p_valcol], NULL)) THEN
		RAISE EXCEPTION USING ERRCODE = '22023',
			MESSAGE = 'protect needs distinct columns',
			DETAIL = format('Table %s names the same column in two roles.', p_tbl),
			HINT = 'Pass different columns for subject, collected_at, tag and value.';
	END IF;

	INSERT INTO guarded_table (relid, subject_column, collected_at_column, tag_column,
							   value_column, on_erase)
	VALUES (p_tbl, p_subject, p_collected, p_tagcol, p_valcol, p_on_erase);

	-- long shape: the value column holds tag values
	IF p_valcol IS NOT NULL THEN
		PERFORM _set_statistics(p_tbl, p_valcol, 0);
	END IF;

	-- the write path (src/collect.c): consent to collect, the prohibited
	-- lexicon, encryption.  ENABLE ALWAYS: it fires in replica mode too.
	EXECUTE format('CREATE TRIGGER profile_guard_collect BEFORE INSERT OR UPDATE ON %s'
				   ' FOR EACH ROW EXECUTE FUNCTION profile_guard._collect()', p_tbl);
	EXECUTE format('ALTER TABLE %s ENABLE ALWAYS TRIGGER profile_guard_collect', p_tbl);

	PERFORM _policy_changed(p_tbl);
END
$$;
REVOKE ALL ON FUNCTION protect(regclass, name, name, name, name, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION protect(regclass, name, name, name, name, text) TO profile_guard_admin;

/*
 * _encrypt_column / _decrypt_column: turn the stored values of a column into
 * our ciphertext (classify of a sensitive tag) or back (declassify,
 * unprotect).  tag_expr is a quoted tag name (wide shape) or the long
 * shape's tag column.  Runs as the extension owner: no gate applies.
 */
CREATE OR REPLACE FUNCTION _encrypt_column(tbl regclass, subject_col name, col name, tag_expr text)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, profile_guard
AS $$
DECLARE
	n	bigint;
BEGIN
	EXECUTE format('UPDATE %s SET %I = profile_guard._encrypt(%I::text, %s, %I)'
				   ' WHERE %I IS NOT NULL AND profile_guard._ciphertext_kind(%I::text, %s, %I) = ''plaintext''',
				   tbl, col, subject_col, tag_expr, col, col, subject_col, tag_expr, col);
	GET DIAGNOSTICS n = ROW_COUNT;
	RETURN n;
END
$$;
REVOKE ALL ON FUNCTION _encrypt_column(regclass, name, name, text) FROM PUBLIC;

CREATE OR REPLACE FUNCTION _decrypt_column(tbl regclass, subject_col name, col name, tag_expr text)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, profile_guard
AS $$
DECLARE
	n	bigint;
BEGIN
	-- only text and bytea columns can hold our ciphertext
	PERFORM 1 FROM pg_attribute a
	WHERE a.attrelid = tbl AND a.attname = col AND a.atttypid IN ('text'::regtype, 'bytea'::regtype);
	IF NOT FOUND THEN
		RETURN 0;
	END IF;
	EXECUTE format('UPDATE %s SET %I = profile_guard._decrypt(%I::text, %s, %I)'
				   ' WHERE %I IS NOT NULL AND profile_guard._ciphertext_kind(%I::text, %s, %I) = ''ours''',
				   tbl, col, subject_col, tag_expr, col, col, subject_col, tag_expr, col);
	GET DIAGNOSTICS n = ROW_COUNT;
	RETURN n;
END
$$;
REVOKE ALL ON FUNCTION _decrypt_column(regclass, name, name, text) FROM PUBLIC;

/*
 * classify(tbl, column_name, tag): bind a column of a wide-shape guarded
 * table to a tag.
 */
CREATE OR REPLACE FUNCTION classify(tbl regclass, column_name name, tag text)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, profile_guard
AS $$
#variable_conflict use_column
DECLARE
	g		guarded_table := _get_guarded(tbl, true);
	p_col	name := column_name;
	p_tag	text := tag;
	a		pg_attribute;
	t		record;
	other	text;
BEGIN
	PERFORM _check_table_owner(g.relid);
	IF p_col IS NULL OR p_tag IS NULL THEN
		RAISE EXCEPTION USING ERRCODE = '22004',
			MESSAGE = 'column and tag must not be null',
			HINT = format('Call profile_guard.classify(%L, ''column'', ''tag'').', g.relid::text);
	END IF;
	IF g.tag_column IS NOT NULL THEN
		RAISE EXCEPTION USING ERRCODE = '55000',
			MESSAGE = 'only wide-shape tables have classified columns',
			DETAIL = format('Table %s is long shape: column "%s" names the tag of each row.', g.relid, g.tag_column),
			HINT = 'Store rows naming defined tags; nothing needs classifying.';
	END IF;
	a := _get_column(g.relid, p_col, 'column to classify');
	IF p_col IN (g.subject_column, g.collected_at_column) THEN
		RAISE EXCEPTION USING ERRCODE = '22023',
			MESSAGE = 'subject and collected_at columns cannot be classified',
			DETAIL = format('Column "%s" of table %s is its %s column.', p_col, g.relid,
							CASE WHEN p_col = g.subject_column THEN 'subject' ELSE 'collected_at' END),
			HINT = 'Classify the columns that hold tag values.';
	END IF;
	SELECT x.tag, x.sensitivity INTO t FROM profile_guard.tag x WHERE x.tag = p_tag;
	IF NOT FOUND THEN
		RAISE EXCEPTION USING ERRCODE = '42704',
			MESSAGE = 'tag does not exist',
			DETAIL = format('Tag "%s" is not defined.', left(p_tag, 120)),
			HINT = format('Define it first with profile_guard.define_tag(%L, category).', left(p_tag, 120));
	END IF;
	SELECT cc.tag INTO other FROM classified_column cc
	WHERE cc.relid = g.relid AND cc.column_name = p_col;
	IF FOUND THEN
		RAISE EXCEPTION USING ERRCODE = '42710',
			MESSAGE = 'column is already classified',
			DETAIL = format('Column "%s" of table %s is classified as tag "%s".', p_col, g.relid, other),
			HINT = format('Call profile_guard.declassify(%L, %L) first.', g.relid::text, p_col);
	END IF;
	IF t.sensitivity = 'sensitive' AND a.atttypid NOT IN ('text'::regtype, 'bytea'::regtype) THEN
		RAISE EXCEPTION USING ERRCODE = '42804',
			MESSAGE = 'a sensitive tag needs a text or bytea column',
			DETAIL = format('Tag "%s" is sensitive and is stored encrypted, but column "%s" of table %s is of type %s.',
							p_tag, p_col, g.relid, format_type(a.atttypid, a.atttypmod)),
			HINT = format('Change the column''s type: ALTER TABLE %s ALTER COLUMN %I TYPE text.', g.relid, p_col);
	END IF;

	INSERT INTO classified_column (relid, column_name, tag) VALUES (g.relid, p_col, p_tag);
	PERFORM _set_statistics(g.relid, p_col, 0);
	PERFORM _policy_changed(g.relid);

	-- existing plaintext of a sensitive tag is encrypted in place (the
	-- trigger, now aware of the classification, lets our ciphertext pass)
	IF t.sensitivity = 'sensitive' THEN
		PERFORM _encrypt_column(g.relid, g.subject_column, p_col, quote_literal(p_tag));
	END IF;
END
$$;
REVOKE ALL ON FUNCTION classify(regclass, name, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION classify(regclass, name, text) TO profile_guard_admin;

/*
 * declassify(tbl, column_name): the column is no longer a tag column.
 */
CREATE OR REPLACE FUNCTION declassify(tbl regclass, column_name name)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, profile_guard
AS $$
#variable_conflict use_column
DECLARE
	g		guarded_table := _get_guarded(tbl, true);
	p_col	name := column_name;
	p_tag	text;
BEGIN
	PERFORM _check_table_owner(g.relid);
	IF p_col IS NULL THEN
		RAISE EXCEPTION USING ERRCODE = '22004',
			MESSAGE = 'column must not be null',
			HINT = format('Call profile_guard.declassify(%L, ''column'').', g.relid::text);
	END IF;
	PERFORM 1 FROM classified_column cc WHERE cc.relid = g.relid AND cc.column_name = p_col;
	IF NOT FOUND THEN
		RAISE EXCEPTION USING ERRCODE = '42704',
			MESSAGE = 'column is not classified',
			DETAIL = format('Column "%s" of table %s is not classified.', p_col, g.relid),
			HINT = 'See profile_guard.classified_column for the classified columns.';
	END IF;

	SELECT cc.tag INTO p_tag FROM classified_column cc
	WHERE cc.relid = g.relid AND cc.column_name = p_col;
	DELETE FROM classified_column cc WHERE cc.relid = g.relid AND cc.column_name = p_col;
	PERFORM _set_statistics(g.relid, p_col, -1);
	PERFORM _policy_changed(g.relid);
	-- the column is plain data now: decrypt what was encrypted
	PERFORM _decrypt_column(g.relid, g.subject_column, p_col, quote_literal(p_tag));
END
$$;
REVOKE ALL ON FUNCTION declassify(regclass, name) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION declassify(regclass, name) TO profile_guard_admin;

/*
 * unprotect(tbl): the table leaves policy, with all its classifications.
 */
CREATE OR REPLACE FUNCTION unprotect(tbl regclass)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, profile_guard
AS $$
DECLARE
	g		profile_guard.guarded_table := _get_guarded(tbl, true);
	col		name;
	sensitive_cols name[];
	sensitive_tags text[];
BEGIN
	PERFORM _check_table_owner(g.relid);
	-- the catalog rows go first, so the trigger lets the decrypted values pass
	SELECT coalesce(array_agg(cc.column_name), '{}'), coalesce(array_agg(cc.tag), '{}')
	INTO sensitive_cols, sensitive_tags
	FROM classified_column cc JOIN tag t ON t.tag = cc.tag
	WHERE cc.relid = g.relid AND t.sensitivity = 'sensitive';
	FOR col IN
		SELECT cc.column_name FROM classified_column cc
		WHERE cc.relid = g.relid ORDER BY cc.column_name
	LOOP
		PERFORM _set_statistics(g.relid, col, -1);
	END LOOP;
	IF g.value_column IS NOT NULL THEN
		PERFORM _set_statistics(g.relid, g.value_column, -1);
	END IF;
	DELETE FROM classified_column cc WHERE cc.relid = g.relid;
	DELETE FROM guarded_table x WHERE x.relid = g.relid;
	PERFORM _policy_changed(g.relid);
	EXECUTE format('DROP TRIGGER IF EXISTS profile_guard_collect ON %s', g.relid);
	FOR i IN 1 .. cardinality(sensitive_cols) LOOP
		PERFORM _decrypt_column(g.relid, g.subject_column, sensitive_cols[i], quote_literal(sensitive_tags[i]));
	END LOOP;
	IF g.tag_column IS NOT NULL THEN
		PERFORM _decrypt_column(g.relid, g.subject_column, g.value_column, quote_ident(g.tag_column));
	END IF;
END
$$;
REVOKE ALL ON FUNCTION unprotect(regclass) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION unprotect(regclass) TO profile_guard_admin;
/*
 * 60_consent.sql — subjects and the consent ledger: registration, grants
 * and withdrawals (§7.1 b–d, §9 b, §9 h), tag blocks and marketing opt-out
 * (§9 a 5–6, §9 d), erasure requests (§10).  The ledger is append-only.
 */

-- A registered subject, or an error (22004 for NULL, 42704 unknown).
CREATE OR REPLACE FUNCTION _get_subject(p_subject text, p_for_update boolean DEFAULT false)
RETURNS subject
LANGUAGE plpgsql
SET search_path = pg_catalog, profile_guard
AS $$
DECLARE
	s	subject;
BEGIN
	IF p_subject IS NULL THEN
		RAISE EXCEPTION USING ERRCODE = '22004',
			MESSAGE = 'subject must not be null',
			HINT = 'Pass the subject identifier as text, e.g. ''42''.';
	END IF;
	IF p_for_update THEN
		SELECT * INTO s FROM subject x WHERE x.subject = p_subject FOR UPDATE;
	ELSE
		SELECT * INTO s FROM subject x WHERE x.subject = p_subject;
	END IF;
	IF NOT FOUND THEN
		RAISE EXCEPTION USING ERRCODE = '42704',
			MESSAGE = 'subject is not registered',
			DETAIL = format('Subject "%s" is not registered.', left(p_subject, 200)),
			HINT = format('Call profile_guard.register_subject(%L) first.', left(p_subject, 200));
	END IF;
	RETURN s;
END
$$;
REVOKE ALL ON FUNCTION _get_subject(text, boolean) FROM PUBLIC;

-- A defined tag by exact name, or an error.
CREATE OR REPLACE FUNCTION _require_tag(p_tag text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, profile_guard
AS $$
BEGIN
	IF p_tag IS NULL THEN
		RAISE EXCEPTION USING ERRCODE = '22004',
			MESSAGE = 'tag must not be null',
			HINT = 'Pass a tag name such as ''interest.sports''.';
	END IF;
	IF NOT EXISTS (SELECT 1 FROM tag t WHERE t.tag = p_tag) THEN
		RAISE EXCEPTION USING ERRCODE = '42704',
			MESSAGE = 'tag does not exist',
			DETAIL = format('Tag "%s" is not defined.', left(p_tag, 120)),
			HINT = 'See profile_guard.tag for the defined tags.';
	END IF;
END
$$;
REVOKE ALL ON FUNCTION _require_tag(text) FROM PUBLIC;

/*
 * Who recorded a row: these functions run as the extension owner, so
 * current_user would always name the owner; the session user names the
 * application or clerk that called.
 *
 * register_subject(subject, birth_date): register a subject, or record a
 * (new) birth date.  A NULL birth date on re-registration keeps the known
 * one: forgetting a birth date would lift the protection of minors.
 */
CREATE OR REPLACE FUNCTION register_subject(subject text, birth_date date DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, profile_guard
AS $$
#variable_conflict use_column
DECLARE
	p_subject	text := subject;
	p_birth		date := birth_date;
	old			record;
BEGIN
	IF p_subject IS NULL THEN
		RAISE EXCEPTION USING ERRCODE = '22004',
			MESSAGE = 'subject must not be null',
			HINT = 'Pass the subject identifier as text, e.g. profile_guard.register_subject(''42'').';
	END IF;
	IF length(p_subject) NOT BETWEEN 1 AND 200 THEN
		RAISE EXCEPTION USING ERRCODE = '22023',
			MESSAGE = 'invalid subject identifier',
			DETAIL = 'A subject identifier is 1 to 200 characters long.',
			HINT = 'Pass the value of the guarded tables'' subject column as text.';
	END IF;
	IF p_birth > current_date THEN
		RAISE EXCEPTION USING ERRCODE = '22023',
			MESSAGE = 'birth date is in the future',
			DETAIL = format('The birth date given for subject "%s" is later than today.', p_subject),
			HINT = 'Pass the subject''s actual birth date, or NULL when unknown.';
	END IF;

	SELECT * INTO old FROM subject x WHERE x.subject = p_subject FOR UPDATE;
	IF NOT FOUND THEN
		INSERT INTO subject (subject, birth_date) VALUES (p_subject, p_birth);
		INSERT INTO subject_event (subject, event, recorded_by) VALUES (p_subject, 'registered', session_user);
	ELSIF p_birth IS NOT NULL AND old.birth_date IS DISTINCT FROM p_birth THEN
		UPDATE subject x SET birth_date = p_birth WHERE x.subject = p_subject;
		INSERT INTO subject_event (subject, event, recorded_by) VALUES (p_subject, 'birth_date', session_user);
	ELSE
		RETURN;		-- nothing changes
	END IF;
	PERFORM _policy_changed();
END
$$;
REVOKE ALL ON FUNCTION register_subject(text, date) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION register_subject(text, date) TO profile_guard_consent, profile_guard_admin;

/*
 * grant_consent(subject, purpose, tags, separate, guardian, expires_at)
 * RETURNS consent_id: the subject consents to the purpose's CURRENT version
 * using the listed tags (names or "prefix.*").
 */
CREATE OR REPLACE FUNCTION grant_consent(subject text, purpose text, tags text[],
							  separate boolean DEFAULT false, guardian boolean DEFAULT false,
							  expires_at timestamptz DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, profile_guard
AS $$
#variable_conflict use_column
DECLARE
	s			profile_guard.subject := _get_subject(subject);
	pu			profile_guard.purpose := _get_purpose(purpose);
	p_tags		text[] := tags;
	p_separate	boolean := separate;
	p_guardian	boolean := guardian;
	p_expires	timestamptz := expires_at;
	id			bigint;
BEGIN
	PERFORM _refuse_retired(pu);
	IF p_tags IS NULL THEN
		RAISE EXCEPTION USING ERRCODE = '22004',
			MESSAGE = 'tags must not be null',
			DETAIL = format('The consent of subject "%s" to purpose "%s" lists no tags.', s.subject, pu.purpose),
			HINT = format('List the tags consented to, e.g. profile_guard.grant_consent(%L, %L, ARRAY[''interest.*'']).',
						  s.subject, pu.purpose);
	END IF;
	IF p_separate IS NULL OR p_guardian IS NULL THEN
		RAISE EXCEPTION USING ERRCODE = '22004',
			MESSAGE = 'separate and guardian must not be null',
			DETAIL = format('The consent of subject "%s" to purpose "%s" must say true or false.', s.subject, pu.purpose),
			HINT = 'Omit them for false.';
	END IF;
	IF p_expires IS NOT NULL AND p_expires <= now() THEN
		RAISE EXCEPTION USING ERRCODE = '22023',
			MESSAGE = 'consent expiry must be in the future',
			DETAIL = format('The consent of subject "%s" to purpose "%s" would already have expired.', s.subject, pu.purpose),
			HINT = 'Pass a later expires_at, or NULL for a consent without end.';
	END IF;
	p_tags := _check_tag_list(p_tags, format('the consent of subject "%s" to purpose "%s"', s.subject, pu.purpose));

	-- the purpose row is locked so that its version cannot change under us
	PERFORM 1 FROM profile_guard.purpose x WHERE x.purpose = pu.purpose FOR SHARE;
	INSERT INTO consent (subject, purpose, purpose_version, action, tags, separate,
						 guardian, expires_at, recorded_by)
	SELECT s.subject, x.purpose, x.version, 'grant', p_tags, p_separate, p_guardian, p_expires,
		   session_user
	FROM profile_guard.purpose x WHERE x.purpose = pu.purpose
	RETURNING consent_id INTO id;
	PERFORM _policy_changed();
	RETURN id;
END
$$;
REVOKE ALL ON FUNCTION grant_consent(text, text, text[], boolean, boolean, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION grant_consent(text, text, text[], boolean, boolean, timestamptz)
	TO profile_guard_consent, profile_guard_admin;

/*
 * withdraw_consent(subject, purpose, tags) RETURNS consent_id: a withdrawal
 * of the listed tags (NULL: all) is appended to the ledger.  Withdrawing is
 * always possible, from a retired purpose too.
 */
CREATE OR REPLACE FUNCTION withdraw_consent(subject text, purpose text, tags text[] DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, profile_guard
AS $$
#variable_conflict use_column
DECLARE
	s		profile_guard.subject := _get_subject(subject);
	pu		profile_guard.purpose := _get_purpose(purpose);
	p_tags	text[] := tags;
	id		bigint;
BEGIN
	p_tags := _check_tag_list(p_tags, format('the withdrawal of subject "%s" from purpose "%s"', s.subject, pu.purpose));
	PERFORM 1 FROM profile_guard.purpose x WHERE x.purpose = pu.purpose FOR SHARE;
	INSERT INTO consent (subject, purpose, purpose_version, action, tags, recorded_by)
	SELECT s.subject, x.purpose, x.version, 'withdraw', p_tags, session_user
	FROM profile_guard.purpose x WHERE x.purpose = pu.purpose
	RETURNING consent_id INTO id;
	PERFORM _policy_changed();
	RETURN id;
END
$$;
REVOKE ALL ON FUNCTION withdraw_consent(text, text, text[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION withdraw_consent(text, text, text[]) TO profile_guard_consent, profile_guard_admin;

/*
 * block_tag(subject, tag), unblock_tag(subject, tag): the subject stops (or
 * resumes) the use of one tag for every purpose.  Repeating is a no-op.
 */
CREATE OR REPLACE FUNCTION block_tag(subject text, tag text)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, profile_guard
AS $$
#variable_conflict use_column
DECLARE
	s		profile_guard.subject := _get_subject(subject, true);
	p_tag	text := tag;
BEGIN
	PERFORM _require_tag(p_tag);
	INSERT INTO tag_block (subject, tag) VALUES (s.subject, p_tag) ON CONFLICT DO NOTHING;
	IF FOUND THEN
		INSERT INTO subject_event (subject, event, tag, recorded_by) VALUES (s.subject, 'block', p_tag, session_user);
		PERFORM _policy_changed();
	END IF;
END
$$;
REVOKE ALL ON FUNCTION block_tag(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION block_tag(text, text) TO profile_guard_consent, profile_guard_admin;

CREATE OR REPLACE FUNCTION unblock_tag(subject text, tag text)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, profile_guard
AS $$
#variable_conflict use_column
DECLARE
	s		profile_guard.subject := _get_subject(subject, true);
	p_tag	text := tag;
BEGIN
	PERFORM _require_tag(p_tag);
	DELETE FROM tag_block b WHERE b.subject = s.subject AND b.tag = p_tag;
	IF FOUND THEN
		INSERT INTO subject_event (subject, event, tag, recorded_by) VALUES (s.subject, 'unblock', p_tag, session_user);
		PERFORM _policy_changed();
	END IF;
END
$$;
REVOKE ALL ON FUNCTION unblock_tag(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION unblock_tag(text, text) TO profile_guard_consent, profile_guard_admin;

/*
 * opt_out(subject), opt_in(subject): personalised marketing off / on for
 * every marketing purpose at once.  Repeating is a no-op.
 */
CREATE OR REPLACE FUNCTION _set_opted_out(subject text, opted_out boolean)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, profile_guard
AS $$
DECLARE
	s	profile_guard.subject := _get_subject(subject, true);
BEGIN
	IF s.opted_out IS DISTINCT FROM opted_out THEN
		UPDATE profile_guard.subject x SET opted_out = _set_opted_out.opted_out WHERE x.subject = s.subject;
		INSERT INTO subject_event (subject, event, recorded_by)
		VALUES (s.subject, CASE WHEN opted_out THEN 'opt_out' ELSE 'opt_in' END, session_user);
		PERFORM _policy_changed();
	END IF;
END
$$;
REVOKE ALL ON FUNCTION _set_opted_out(text, boolean) FROM PUBLIC;

CREATE OR REPLACE FUNCTION opt_out(subject text)
RETURNS void
LANGUAGE sql SECURITY DEFINER
SET search_path = pg_catalog, profile_guard
AS $$ SELECT profile_guard._set_opted_out(subject, true) $$;
REVOKE ALL ON FUNCTION opt_out(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION opt_out(text) TO profile_guard_consent, profile_guard_admin;

CREATE OR REPLACE FUNCTION opt_in(subject text)
RETURNS void
LANGUAGE sql SECURITY DEFINER
SET search_path = pg_catalog, profile_guard
AS $$ SELECT profile_guard._set_opted_out(subject, false) $$;
REVOKE ALL ON FUNCTION opt_in(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION opt_in(text) TO profile_guard_consent, profile_guard_admin;

/*
 * request_erasure(subject) RETURNS request_id: the subject asks for erasure
 * (§10).  Use stops at once (tag_state: "erasure requested"); the physical
 * erasure is done by the sweep.  While a request is pending, asking again
 * returns the pending request.
 */
CREATE OR REPLACE FUNCTION request_erasure(subject text)
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, profile_guard
AS $$
DECLARE
	s	profile_guard.subject := _get_subject(subject, true);
	id	bigint;
BEGIN
	SELECT r.request_id INTO id FROM erasure_request r
	WHERE r.subject = s.subject AND r.completed_at IS NULL
	ORDER BY r.request_id LIMIT 1;
	IF FOUND THEN
		RETURN id;
	END IF;
	INSERT INTO erasure_request (subject) VALUES (s.subject) RETURNING request_id INTO id;
	UPDATE profile_guard.subject x SET erasure_requested_at = now()
	WHERE x.subject = s.subject AND x.erasure_requested_at IS NULL;
	INSERT INTO subject_event (subject, event, recorded_by) VALUES (s.subject, 'erasure_requested', session_user);
	PERFORM _policy_changed();
	RETURN id;
END
$$;
REVOKE ALL ON FUNCTION request_erasure(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION request_erasure(text) TO profile_guard_consent, profile_guard_admin;

/*
 * The consent ledger is append-only: updates, deletes and truncation are
 * refused, except while this backend's sweep turns consents of a subject
 * who asked for erasure into tombstones (a flag only src/erasure.c sets;
 * _erasure_in_progress() is defined in 80_erasure.sql).
 */
CREATE OR REPLACE FUNCTION _consent_append_only()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, profile_guard
AS $$
BEGIN
	IF TG_OP = 'UPDATE' AND profile_guard._erasure_in_progress() THEN
		RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
	END IF;
	RAISE EXCEPTION USING ERRCODE = '55000',
		MESSAGE = 'the consent ledger is append-only',
		DETAIL = format('%s on profile_guard.consent is not allowed; a withdrawal is a new row.', TG_OP),
		HINT = 'Call profile_guard.withdraw_consent(subject, purpose, tags) or profile_guard.request_erasure(subject).';
END
$$;
REVOKE ALL ON FUNCTION _consent_append_only() FROM PUBLIC;

CREATE OR REPLACE TRIGGER consent_append_only
	BEFORE UPDATE OR DELETE ON consent
	FOR EACH ROW EXECUTE FUNCTION _consent_append_only();
CREATE OR REPLACE TRIGGER consent_no_truncate
	BEFORE TRUNCATE ON consent
	FOR EACH STATEMENT EXECUTE FUNCTION _consent_append_only();
/*
 * 75_usage.sql — accountability: the usage counters (src/audit.c), kept in
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
/*
 * 80_erasure.sql — the erasure engine (§7.4 a–d, §10; src/erasure.c,
 * src/erasure_worker.c): the append-only ledger erasure_log, the work
 * tables a sweep fills when it starts, sweep(), end_service() and
 * set_anonymise_columns().
 *
 * What is due, per subject and tag (docs/erasure.md):
 *   request     the subject asked for erasure: everything, in every table;
 *               consents become tombstones, the data key is destroyed;
 *   withdrawn,  no purpose in force keeps the tag (tag_state() says it is
 *   expired,    effective, or suspended: outdated version, blocked, opted
 *   retired,    out, ...) and some purpose's latest consent event for it was
 *   service_end withdrawn / has expired / the purpose was retired;
 *   retention   a row older than every retention of the purposes in force
 *               that may keep the tag for the subject.
 */

-- the ledger: one row per batch, relation, tag, reason, action (and subject
-- for the subject-specific reasons, as a keyed hash only)
CREATE TABLE erasure_log (
	log_id		bigserial PRIMARY KEY,
	erased_at	timestamptz NOT NULL DEFAULT clock_timestamp(),
	relation	text NOT NULL,
	tag			text,
	reason		text NOT NULL CHECK (reason IN ('retired', 'retention', 'withdrawn', 'expired',
											   'request', 'service_end')),
	action		text NOT NULL CHECK (action IN ('delete', 'null_cell', 'anonymise',
											   'tombstone', 'destroy_key')),
	rows		bigint NOT NULL CHECK (rows > 0),
	subject_hash text CHECK (subject_hash ~ '^[0-9a-f]{64}$')
);
CREATE INDEX erasure_log_subject_idx ON erasure_log (subject_hash) WHERE subject_hash IS NOT NULL;

-- consents of a subject who asked for erasure become tombstones: the row
-- stays (the ledger is append-only), what it said is gone
ALTER TABLE consent ADD COLUMN erased_at timestamptz;

-- what the sweep looks for in the ledger, without reading all of it
CREATE INDEX consent_withdrawal_idx ON consent (recorded_at) WHERE action = 'withdraw';
CREATE INDEX consent_expiry_idx ON consent (expires_at) WHERE expires_at IS NOT NULL;

-- at most one row (made by the first sweep or end_service(), so that a
-- restored dump brings its own): where the last complete sweep started,
-- and whether the service ended
CREATE TABLE erasure_state (
	singleton	boolean PRIMARY KEY DEFAULT true CHECK (singleton),
	swept_from	timestamptz,		-- start of the last complete sweep
	service_ended_at timestamptz
);

-- the non-nullable integer subjects of anonymised rows: negative, never reused
CREATE SEQUENCE anonymous_subject_seq;

-- Work tables of the sweep in progress, filled when it starts.  Unlogged:
-- after a crash they are empty and the next sweep computes them again.
CREATE UNLOGGED TABLE _erasure_due (
	subject		text NOT NULL,
	tag			text NOT NULL,		-- '*': every tag
	reason		text NOT NULL,
	PRIMARY KEY (subject, tag)
);
CREATE UNLOGGED TABLE _erasure_keep (
	subject		text NOT NULL,
	tag			text NOT NULL,
	keep_for	interval,			-- NULL: no retention limit
	PRIMARY KEY (subject, tag)
);
CREATE UNLOGGED TABLE _erasure_cutoff (
	tag			text PRIMARY KEY,
	cutoff		timestamptz NOT NULL	-- rows collected at or before are due
);

REVOKE ALL ON erasure_log, erasure_state, anonymous_subject_seq, erasure_log_log_id_seq,
	_erasure_due, _erasure_keep, _erasure_cutoff FROM PUBLIC;
GRANT SELECT ON erasure_log, erasure_state TO profile_guard_admin;

SELECT pg_catalog.pg_extension_config_dump('erasure_log', '');
SELECT pg_catalog.pg_extension_config_dump('erasure_log_log_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('erasure_state', '');
SELECT pg_catalog.pg_extension_config_dump('anonymous_subject_seq', '');

-- C: true only while this backend's sweep is erasing (a backend-static flag
-- set by src/erasure.c; no setting, so no SQL can turn it on)
CREATE FUNCTION _erasure_in_progress()
RETURNS boolean
AS 'MODULE_PATHNAME', 'profile_guard_erasure_in_progress'
LANGUAGE C STRICT VOLATILE;

-- C: HMAC-SHA256 of a subject under a key derived from the master key (hex)
CREATE FUNCTION _subject_hash(subject text)
RETURNS text
AS 'MODULE_PATHNAME', 'profile_guard_subject_hash'
LANGUAGE C STRICT STABLE;
REVOKE ALL ON FUNCTION _subject_hash(text) FROM PUBLIC;

-- the ledger is append-only, for the sweep too
CREATE FUNCTION _erasure_log_append_only()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, profile_guard
AS $$
BEGIN
	RAISE EXCEPTION USING ERRCODE = '55000',
		MESSAGE = 'the erasure log is append-only',
		DETAIL = format('%s on profile_guard.erasure_log is not allowed.', TG_OP),
		HINT = 'The sweep appends to the log; nothing else writes it.';
END
$$;
REVOKE ALL ON FUNCTION _erasure_log_append_only() FROM PUBLIC;
CREATE TRIGGER erasure_log_append_only
	BEFORE UPDATE OR DELETE ON erasure_log
	FOR EACH ROW EXECUTE FUNCTION _erasure_log_append_only();
CREATE TRIGGER erasure_log_no_truncate
	BEFORE TRUNCATE ON erasure_log
	FOR EACH STATEMENT EXECUTE FUNCTION _erasure_log_append_only();

/*
 * The reasons of tag_state() under which a purpose still keeps a tag that
 * it does not serve now: use is suspended, not ended, and may resume
 * (renewal, unblock, opt-in, assessment, a birthday, a source tag).
 */
CREATE FUNCTION _erasure_suspended(reason text)
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
	SELECT reason IN ('outdated version', 'blocked', 'opted out', 'minor under a marketing purpose',
					  'impact assessment missing', 'source tag not visible',
					  'not separate for a sensitive tag', 'guardian consent missing',
					  'tag outside the purpose', 'not consented')
$$;

/*
 * _erasure_prepare(now, full): called by the sweep when it starts, in its own
 * transaction.  Carries out the subject-level part of pending erasure
 * requests (data key destroyed, consents tombstoned, both logged) and fills
 * the work tables.  Returns what it did, as the sweep does.  Idempotent: a
 * sweep interrupted by a crash calls it again and finds nothing more to do
 * for the requests.
 */
CREATE FUNCTION _erasure_prepare(p_now timestamptz, p_full boolean)
RETURNS TABLE (relation text, tag text, reason text, action text, rows bigint)
LANGUAGE plpgsql
SET search_path = pg_catalog, profile_guard
AS $$
#variable_conflict use_column
DECLARE
	st			erasure_state;
	since		timestamptz;
	r			record;
	n			bigint;
	h			text;
	changed		boolean := false;
BEGIN
	INSERT INTO erasure_state DEFAULT VALUES ON CONFLICT DO NOTHING;
	SELECT * INTO st FROM erasure_state;
	-- events from one day before the last complete sweep's start are looked
	-- at again: a transaction that committed late is not missed
	since := CASE WHEN p_full OR st.swept_from IS NULL THEN '-infinity'
				  ELSE st.swept_from - interval '1 day' END;

	-- small tables: DELETE is cheaper than TRUNCATE's new files
	DELETE FROM _erasure_due;
	DELETE FROM _erasure_keep;
	DELETE FROM _erasure_cutoff;

	-- erasure requests: everything of the subject
	FOR r IN SELECT s.subject FROM subject s
			 WHERE s.erasure_requested_at IS NOT NULL
			   AND EXISTS (SELECT 1 FROM erasure_request q
						   WHERE q.subject = s.subject AND q.completed_at IS NULL)
			 ORDER BY s.subject
	LOOP
		h := _subject_hash(r.subject);
		IF NOT EXISTS (SELECT 1 FROM subject_key k
					   WHERE k.subject = r.subject AND k.destroyed_at IS NOT NULL) THEN
			PERFORM _destroy_subject_key(r.subject);
			INSERT INTO erasure_log (relation, tag, reason, action, rows, subject_hash)
			VALUES ('profile_guard.subject_key', NULL, 'request', 'destroy_key', 1, h);
			relation := 'profile_guard.subject_key'; tag := NULL; reason := 'request';
			action := 'destroy_key'; rows := 1;
			RETURN NEXT;
		END IF;
		UPDATE consent c
		   SET tags = '{}', separate = false, guardian = false, expires_at = NULL,
			   erased_at = p_now
		 WHERE c.subject = r.subject AND c.erased_at IS NULL;
		GET DIAGNOSTICS n = ROW_COUNT;
		IF n > 0 THEN
			changed := true;
			INSERT INTO erasure_log (relation, tag, reason, action, rows, subject_hash)
			VALUES ('profile_guard.consent', NULL, 'request', 'tombstone', n, h);
			relation := 'profile_guard.consent'; tag := NULL; reason := 'request';
			action := 'tombstone'; rows := n;
			RETURN NEXT;
		END IF;
		INSERT INTO _erasure_due VALUES (r.subject, '*', 'request');
	END LOOP;
	IF changed THEN
		PERFORM _policy_changed();
	END IF;

	-- withdrawn, expired, retired: the candidates are subjects with such an
	-- event since the last sweep; their state for every purpose they have
	-- consent events for decides
	WITH cand AS (
		SELECT DISTINCT e.subject
		FROM (SELECT c.subject FROM consent c
			  WHERE c.action = 'withdraw' AND c.recorded_at >= since
			  UNION ALL
			  SELECT c.subject FROM consent c
			  WHERE c.expires_at <= p_now AND c.expires_at >= since
			  UNION ALL
			  SELECT c.subject FROM consent c
			  JOIN purpose pu ON pu.purpose = c.purpose
			  WHERE pu.retired_at >= since) AS e
		JOIN subject s ON s.subject = e.subject
		WHERE s.erasure_requested_at IS NULL
	),
	sp AS (
		SELECT c.purpose, c.subject
		FROM consent c JOIN cand USING (subject)
		GROUP BY c.purpose, c.subject
	),
	-- many candidates for one purpose (a retirement): one set-based call
	big AS (
		SELECT sp.purpose FROM sp GROUP BY sp.purpose HAVING count(*) > 200
	),
	state AS (
		SELECT x.subject, x.tag, x.effective, x.reason, pu.retired_at IS NOT NULL AS retired
		FROM sp
		JOIN purpose pu ON pu.purpose = sp.purpose
		CROSS JOIN LATERAL tag_state(sp.purpose, sp.subject, false) x
		WHERE sp.purpose NOT IN (SELECT big.purpose FROM big)
		UNION ALL
		SELECT x.subject, x.tag, x.effective, x.reason, pu.retired_at IS NOT NULL
		FROM big
		JOIN purpose pu ON pu.purpose = big.purpose
		CROSS JOIN LATERAL tag_state(big.purpose, NULL, false) x
		WHERE x.subject IN (SELECT cand.subject FROM cand)
	)
	INSERT INTO _erasure_due (subject, tag, reason)
	SELECT s.subject, s.tag,
		   CASE WHEN bool_or(s.reason = 'withdrawn') THEN 'withdrawn'
				WHEN bool_or(s.reason = 'expired') THEN 'expired'
				WHEN st.service_ended_at IS NOT NULL THEN 'service_end'
				ELSE 'retired' END
	FROM state s
	GROUP BY s.subject, s.tag
	HAVING NOT bool_or(NOT s.retired AND (s.effective OR _erasure_suspended(s.reason)))
	   AND bool_or(s.reason IN ('withdrawn', 'expired', 'purpose retired'));

	-- retention: per tag, the shortest retention of the purposes in force
	-- that list it; a row collected before now minus that is due unless a
	-- purpose with a longer (or no) retention keeps the tag for its subject
	INSERT INTO _erasure_cutoff (tag, cutoff)
	SELECT t.tag, p_now - min(pu.retention)
	FROM tag t
	JOIN purpose pu ON pu.retired_at IS NULL AND pu.retention IS NOT NULL
				   AND tag_matches(pu.tags, t.tag)
	GROUP BY t.tag;

	WITH longer AS (
		SELECT pu.purpose, t.tag, pu.retention
		FROM purpose pu
		JOIN tag t ON tag_matches(pu.tags, t.tag)
		JOIN _erasure_cutoff c ON c.tag = t.tag
		WHERE pu.retired_at IS NULL
		  AND (pu.retention IS NULL OR p_now - pu.retention < c.cutoff)
	)
	INSERT INTO _erasure_keep (subject, tag, keep_for)
	SELECT x.subject, x.tag,
		   CASE WHEN bool_or(l.retention IS NULL) THEN NULL ELSE max(l.retention) END
	FROM (SELECT DISTINCT longer.purpose FROM longer) lp
	CROSS JOIN LATERAL tag_state(lp.purpose, NULL, false) x
	JOIN longer l ON l.purpose = lp.purpose AND l.tag = x.tag
	WHERE x.effective OR _erasure_suspended(x.reason)
	GROUP BY x.subject, x.tag;
END
$$;
REVOKE ALL ON FUNCTION _erasure_prepare(timestamptz, boolean) FROM PUBLIC;

/*
 * _erasure_finish(started): called when a sweep has done all its work:
 * the requests it served are complete, and the next sweep looks at events
 * from this one's start on.
 */
CREATE FUNCTION _erasure_finish(p_started timestamptz)
RETURNS void
LANGUAGE sql
SET search_path = pg_catalog, profile_guard
AS $$
	UPDATE erasure_request q SET completed_at = now()
	WHERE q.completed_at IS NULL
	  AND q.subject IN (SELECT d.subject FROM _erasure_due d
						WHERE d.tag = '*' AND d.reason = 'request');
	UPDATE erasure_state SET swept_from = p_started;
$$;
REVOKE ALL ON FUNCTION _erasure_finish(timestamptz) FROM PUBLIC;

/*
 * sweep(max_rows, full): perform due erasures now, in the calling
 * transaction, at most max_rows rows of guarded tables (NULL: all).  Returns
 * one row per relation, tag, reason and action with the rows affected.
 * full: look at every consent event, not only those since the last sweep.
 */
CREATE FUNCTION sweep(max_rows integer DEFAULT NULL, full boolean DEFAULT false)
RETURNS TABLE (relation text, tag text, reason text, action text, rows bigint)
AS 'MODULE_PATHNAME', 'profile_guard_sweep'
LANGUAGE C CALLED ON NULL INPUT VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, profile_guard;
REVOKE ALL ON FUNCTION sweep(integer, boolean) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION sweep(integer, boolean) TO profile_guard_admin;

/*
 * set_anonymise_columns(tbl, columns): the identifying columns (besides the
 * subject column) that anonymisation sets to NULL.
 */
CREATE FUNCTION set_anonymise_columns(tbl regclass, columns name[])
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, profile_guard
AS $$
DECLARE
	g	profile_guard.guarded_table := _get_guarded(tbl, true);
	c	name;
BEGIN
	PERFORM _check_table_owner(g.relid);
	IF columns IS NULL THEN
		RAISE EXCEPTION USING ERRCODE = '22004',
			MESSAGE = 'columns must not be null',
			HINT = 'Pass ''{}'' for none.';
	END IF;
	FOREACH c IN ARRAY columns LOOP
		PERFORM _get_column(tbl, c, 'column to anonymise');
		IF c = g.subject_column OR c = g.collected_at_column OR c = g.tag_column THEN
			RAISE EXCEPTION USING ERRCODE = '22023',
				MESSAGE = 'column cannot be nulled by anonymisation',
				DETAIL = format('Column "%s" of table %s is its subject, collected-at or tag column; anonymisation replaces or generalises it.', c, tbl),
				HINT = 'List only the other identifying columns.';
		END IF;
		IF EXISTS (SELECT 1 FROM pg_attribute a
				   WHERE a.attrelid = tbl AND a.attname = c AND a.attnotnull) THEN
			RAISE EXCEPTION USING ERRCODE = '22023',
				MESSAGE = 'column to anonymise is NOT NULL',
				DETAIL = format('Column "%s" of table %s cannot be set to NULL.', c, tbl),
				HINT = format('ALTER TABLE %s ALTER COLUMN %I DROP NOT NULL, then retry.', tbl, c);
		END IF;
	END LOOP;
	UPDATE guarded_table x SET anonymise_columns = columns WHERE x.relid = tbl;
END
$$;
REVOKE ALL ON FUNCTION set_anonymise_columns(regclass, name[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION set_anonymise_columns(regclass, name[]) TO profile_guard_admin;

/*
 * end_service(): the personal-profile service ends (§7.4): every purpose in
 * force is retired and every row of every guarded table becomes due
 * (reason service_end).  Irreversible.
 */
CREATE FUNCTION end_service()
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, profile_guard
AS $$
BEGIN
	INSERT INTO erasure_state AS x (service_ended_at) VALUES (now())
	ON CONFLICT (singleton) DO UPDATE SET service_ended_at = now()
	WHERE x.service_ended_at IS NULL;
	IF NOT FOUND THEN
		RAISE EXCEPTION USING ERRCODE = '55000',
			MESSAGE = 'the service has already ended',
			DETAIL = 'profile_guard.end_service() was called before.',
			HINT = 'Run profile_guard.sweep() to finish the erasure.';
	END IF;
	UPDATE purpose x SET retired_at = now() WHERE x.retired_at IS NULL;
	PERFORM _policy_changed();
END
$$;
REVOKE ALL ON FUNCTION end_service() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION end_service() TO profile_guard_admin;

/*
 * 85_accountability.sql — accountability (DESIGN.md §2 "Accountability",
 * guideline §5 d, §11): what is held about one person (subject_report),
 * the database checked clause by clause against the guideline (assess), and
 * columns that look like personal information but are not under policy
 * (suggest_classification).  docs/accountability.md describes each.
 *
 * All three read application tables as the extension owner (a superuser:
 * the read path lets it see raw stored values), so they are SECURITY
 * DEFINER with search_path pinned and executable only by the roles named
 * below.  None of them writes anything.
 */

-- ---------------------------------------------------------------------
-- Small helpers
-- ---------------------------------------------------------------------

-- A list for a report line: the first max_items names, then "and N more".
CREATE FUNCTION _name_list(names text[], max_items integer DEFAULT 10)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
	SELECT CASE WHEN cardinality(names) IS NULL OR cardinality(names) = 0 THEN NULL
		   ELSE pg_catalog.array_to_string(names[1:max_items], ', ')
				|| CASE WHEN cardinality(names) > max_items
						THEN pg_catalog.format(' and %s more', cardinality(names) - max_items)
						ELSE '' END
		   END
$$;
REVOKE ALL ON FUNCTION _name_list(text[], integer) FROM PUBLIC;

-- Mainland resident identity number (GB 11643): 17 digits with a plausible
-- birth date, then the ISO 7064 MOD 11-2 check character.
CREATE FUNCTION _valid_cn_id(v text)
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
	SELECT CASE
		WHEN v ~ '^[0-9]{6}(18|19|20)[0-9]{2}(0[1-9]|1[0-2])(0[1-9]|[12][0-9]|3[01])[0-9]{3}[0-9Xx]$' THEN
			(SELECT ('{1,0,X,9,8,7,6,5,4,3,2}'::text[])
					[(pg_catalog.sum(pg_catalog.substr(v, i::integer, 1)::integer * w) % 11)::integer + 1]
			 FROM pg_catalog.unnest('{7,9,10,5,8,4,2,1,6,3,7,9,10,5,8,4,2}'::integer[])
				  WITH ORDINALITY AS x(w, i))
			= pg_catalog.upper(pg_catalog.right(v, 1))
		ELSE false END
$$;
REVOKE ALL ON FUNCTION _valid_cn_id(text) FROM PUBLIC;

-- A payment card number: 16 to 19 digits (spaces and dashes between groups
-- allowed) whose last digit is a valid Luhn check digit.
CREATE FUNCTION _valid_bank_card(v text)
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
	SELECT CASE
		WHEN v ~ '^[0-9]{4}([ -]?[0-9]{2,6}){2,4}$'
			 AND pg_catalog.length(pg_catalog.translate(v, ' -', '')) BETWEEN 16 AND 19 THEN
			(SELECT pg_catalog.sum(CASE WHEN i % 2 = 0
										THEN (d * 2) / 10 + (d * 2) % 10
										ELSE d END) % 10 = 0
			 FROM (SELECT pg_catalog.substr(r, i, 1)::integer AS d, i
				   FROM (SELECT pg_catalog.reverse(pg_catalog.translate(v, ' -', '')) AS r) AS x,
						pg_catalog.generate_series(1, pg_catalog.length(r)) AS i) AS digits)
		ELSE false END
$$;
REVOKE ALL ON FUNCTION _valid_bank_card(text) FROM PUBLIC;

-- A coordinate pair "lng,lat" / "lat,lng" (or a point), at least four
-- decimals each (about 10 m), within the ranges of longitude and latitude.
CREATE FUNCTION _coordinate_pair(v text)
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
	SELECT CASE
		WHEN v ~ '^\s*\(?\s*-?[0-9]{1,3}\.[0-9]{4,}\s*[, ]\s*-?[0-9]{1,3}\.[0-9]{4,}\s*\)?\s*$' THEN
			(SELECT abs(m[1]::numeric) <= 180 AND abs(m[2]::numeric) <= 180
					AND least(abs(m[1]::numeric), abs(m[2]::numeric)) <= 90
			 FROM pg_catalog.regexp_match(v, '(-?[0-9]+\.[0-9]+)\s*[, ]\s*(-?[0-9]+\.[0-9]+)') AS m)
		ELSE false END
$$;
REVOKE ALL ON FUNCTION _coordinate_pair(text) FROM PUBLIC;

-- An identifier or a comment in the form the name rules read: camelCase
-- split, ASCII punctuation and "_" read as a space, lower case.  Non-ASCII
-- text (Chinese) is kept as it is.
CREATE FUNCTION _pi_normalise(txt text)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
	SELECT pg_catalog.btrim(pg_catalog.lower(pg_catalog.regexp_replace(
		pg_catalog.regexp_replace(pg_catalog.regexp_replace(txt, '([a-z0-9])([A-Z])', '\1 \2', 'g'),
								  '([A-Z])([A-Z][a-z])', '\1 \2', 'g'),
		'[\x01-\x2f\x3a-\x40\x5b-\x60\x7b-\x7f]+', ' ', 'g')))
$$;
REVOKE ALL ON FUNCTION _pi_normalise(text) FROM PUBLIC;

/*
 * _pi_name_rules(): what column names and comments that look like personal
 * information say, as regular expressions over _pi_normalise()d text
 * (English, pinyin, Chinese), each with the shipped category it suggests.
 * Lower rule numbers win among rules of the same sensitivity.
 */
CREATE FUNCTION _pi_name_rules()
RETURNS TABLE (rule integer, category text, pattern text)
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
	VALUES
	-- sensitive
	(10, 'specific_identity', '\mid ?(card|no|num|number)\M|idcard|identity ?(card|no|num|number)|passport|shenfenzheng|\msfz\M|huzhao|身份证|护照|证件号'),
	(11, 'specific_identity', 'ethnic|\mnationality\M|\mminzu\M|political|zhengzhi ?mianmao|民族|政治面貌'),
	(12, 'biometric', 'fingerprint|\mface ?(id|image|photo|feature|features|print)?\M|facial|voiceprint|\miris\M|biometric|zhiwen|renlian|shengwen|指纹|人脸|面部|声纹|虹膜|生物识别'),
	(13, 'religious_belief', 'religio|\mfaith\M|zongjiao|xinyang|宗教|信仰'),
	(14, 'medical_health', 'health|medical|diagnos|disease|illness|allerg|blood ?type|medication|symptom|jiankang|bingli|zhenduan|jibing|yiliao|健康|病|诊断|医疗|过敏|血型|用药|体检'),
	(15, 'financial_account', 'salary|income|\mwages?\M|bank ?card|card ?(no|num|number)\M|account ?(no|num|number)\M|\miban\M|credit ?(card|score)|deposit|shouru|gongzi|xinzi|yinhangka|kahao|收入|工资|薪|银行卡|卡号|账号|账户|存款|征信|信用卡'),
	(16, 'precise_location', '\m(lat|lng|lon|latitude|longitude|gps|geo|coord|coords|coordinates)\M|geoloc|location|jingdu|weidu|jingweidu|dingwei|weizhi|经纬度|纬度|经度|定位|位置|坐标'),
	(17, 'whereabouts', 'trajectory|\mtrack(s|ing)?\M|whereabouts|guiji|xingzong|轨迹|行踪'),
	(18, 'sexual_orientation', 'sexual|xingquxiang|性取向'),
	(19, 'criminal_record', 'criminal|conviction|\mcrimes?\M|fanzui|qianke|犯罪|前科'),
	(20, 'communication_content', '\mchat|\msms\M|message ?(body|content|text)|call ?(log|logs|record|records)|liaotian|duanxin|聊天|短信|通话|通信内容'),
	(21, 'browsing_history', '\mbrows(e|ing)|visited ?url|liulan|浏览'),
	-- general
	(30, 'device', '\m(imei|imsi|idfa|oaid|udid|android ?id|device ?id|mac ?addr(ess)?|ip ?addr(ess)?|ip)\M|设备号|设备标识'),
	(31, 'contact', 'phone|\mmobile|\m(tel|cell|msisdn)\M|\me ?mail|\m(wechat|weixin|qq)\M|shouji|dianhua|youxiang|手机|电话|邮箱|电子邮件|微信|联系方式'),
	(32, 'contact', 'address|\maddr\M|\mdizhi\M|\mzhuzhi\M|地址|住址'),
	(33, 'basic', 'birth|\mdob\M|shengri|chusheng|生日|出生'),
	(34, 'basic', '\m(real ?name|full ?name|first ?name|last ?name|surname|given ?name|family ?name|xingming)\M|姓名'),
	(35, 'basic', '\m(gender|sex|xingbie)\M|性别'),
	(36, 'basic', '\m(age|nianling)\M|年龄'),
	(37, 'occupation', 'occupation|employer|\mjob ?title\M|\mzhiye\M|职业|工作单位|职位'),
	(38, 'education', 'education|\mdegree\M|\mxueli\M|学历|毕业院校')
$$;
REVOKE ALL ON FUNCTION _pi_name_rules() FROM PUBLIC;

-- The first rule (most sensitive first) that a text matches, with what
-- matched (a fragment of the name or comment, never a stored value).
CREATE FUNCTION _pi_name_match(txt text)
RETURNS TABLE (category text, sensitivity text, matched text, rule integer)
LANGUAGE sql STABLE
SET search_path = pg_catalog, profile_guard
AS $$
	SELECT r.category, c.sensitivity, (regexp_match(_pi_normalise(txt), '(' || r.pattern || ')'))[1], r.rule
	FROM _pi_name_rules() AS r
	JOIN category c ON c.category = r.category
	WHERE txt IS NOT NULL AND _pi_normalise(txt) ~ r.pattern
	ORDER BY c.sensitivity = 'sensitive' DESC, r.rule
	LIMIT 1
$$;
REVOKE ALL ON FUNCTION _pi_name_match(text) FROM PUBLIC;

/*
 * _pi_content(tbl, col, sample): what a bounded sample of a column holds,
 * read as the extension owner: the first `sample` rows in physical order,
 * never the whole table.  Returns one row per detector that matches at
 * least half of the non-null sampled values, as counts only.
 */
CREATE FUNCTION _pi_content(tbl regclass, col name, sample integer DEFAULT 200)
RETURNS TABLE (category text, hits bigint, sampled bigint, what text)
LANGUAGE plpgsql
SET search_path = pg_catalog, profile_guard
AS $$
DECLARE
	n		bigint;
	n_id	bigint;
	n_card	bigint;
	n_mob	bigint;
	n_mail	bigint;
	n_geo	bigint;
BEGIN
	EXECUTE format(
		'SELECT count(v),'
		' count(*) FILTER (WHERE profile_guard._valid_cn_id(v)),'
		' count(*) FILTER (WHERE profile_guard._valid_bank_card(v) AND NOT profile_guard._valid_cn_id(v)),'
		' count(*) FILTER (WHERE v ~ ''^(\+?86[- ]?)?1[3-9][0-9]{9}$''),'
		' count(*) FILTER (WHERE v ~ ''^[A-Za-z0-9._%%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}$''),'
		' count(*) FILTER (WHERE profile_guard._coordinate_pair(v))'
		' FROM (SELECT pg_catalog.btrim(%I::text) AS v FROM %s LIMIT %s) AS s',
		col, tbl, sample)
	INTO n, n_id, n_card, n_mob, n_mail, n_geo;
	IF n = 0 THEN
		RETURN;
	END IF;
	RETURN QUERY
	SELECT d.category, d.hits, n, d.what
	FROM (VALUES (1, 'specific_identity', n_id, 'valid mainland ID numbers'),
				 (2, 'financial_account', n_card, 'bank card numbers with a valid Luhn digit'),
				 (3, 'contact', n_mob, 'mainland mobile numbers'),
				 (4, 'contact', n_mail, 'e-mail addresses'),
				 (5, 'precise_location', n_geo, 'coordinate pairs')) AS d(ord, category, hits, what)
	WHERE d.hits > 0 AND d.hits * 2 >= n
	ORDER BY d.ord;
END
$$;
REVOKE ALL ON FUNCTION _pi_content(regclass, name, integer) FROM PUBLIC;

/*
 * _suggestions(schema, only_guarded): the work of suggest_classification()
 * and of assess() §5 f.  Candidate columns: user columns of ordinary and
 * partitioned tables (not partitions, not temporary, not belonging to an
 * extension) outside the system schemas and profile_guard, that are not
 * classified and are not the subject, collected_at, tag or value column of
 * a guarded table.  Content is sampled only for columns of built-in types
 * whose text form can hold the values looked for.
 */
CREATE FUNCTION _suggestions(p_schema name, p_only_guarded boolean)
RETURNS TABLE ("table" regclass, column_name name, suggested_category text,
			   suggested_sensitivity text, evidence text)
LANGUAGE plpgsql
SET search_path = pg_catalog, profile_guard
AS $$
DECLARE
	c		record;
	nm		record;
	cm		record;
	ct		record;
	best_cat text;
	best_rank integer;
	ev		text[];
	r		integer;
BEGIN
	FOR c IN
		SELECT a.attrelid::regclass AS relid, a.attname, a.atttypid,
			   col_description(a.attrelid, a.attnum) AS comment
		FROM pg_attribute a
		JOIN pg_class rel ON rel.oid = a.attrelid
		JOIN pg_namespace ns ON ns.oid = rel.relnamespace
		LEFT JOIN guarded_table g ON g.relid = a.attrelid
		WHERE rel.relkind IN ('r', 'p') AND NOT rel.relispartition
		  AND rel.relpersistence <> 't'
		  AND a.attnum > 0 AND NOT a.attisdropped
		  AND ns.nspname NOT IN ('pg_catalog', 'information_schema', 'profile_guard')
		  AND ns.nspname !~ '^pg_(toast|temp_|toast_temp_)'
		  AND (p_schema IS NULL OR ns.nspname = p_schema)
		  AND (NOT p_only_guarded OR g.relid IS NOT NULL)
		  AND NOT EXISTS (SELECT 1 FROM pg_depend d
						  WHERE d.classid = 'pg_class'::regclass AND d.objid = rel.oid
							AND d.deptype = 'e')
		  AND NOT EXISTS (SELECT 1 FROM classified_column cc
						  WHERE cc.relid = a.attrelid AND cc.column_name = a.attname)
		  AND (g.relid IS NULL OR a.attname NOT IN (g.subject_column,
				coalesce(g.collected_at_column, ''), coalesce(g.tag_column, ''),
				coalesce(g.value_column, '')))
		ORDER BY ns.nspname, rel.relname, a.attnum
	LOOP
		best_cat := NULL;
		best_rank := NULL;
		ev := '{}';

		-- content first: the strongest evidence; sampled only where the
		-- caller could read the column itself (this runs as the owner)
		IF c.atttypid IN ('text'::regtype, 'varchar'::regtype, 'bpchar'::regtype,
						  'int8'::regtype, 'numeric'::regtype, 'point'::regtype)
		   AND NOT has_column_privilege(_invoking_role(), c.relid, c.attname, 'SELECT') THEN
			ev := ev || 'content: not sampled (the caller may not read the column)'::text;
		ELSIF c.atttypid IN ('text'::regtype, 'varchar'::regtype, 'bpchar'::regtype,
						  'int8'::regtype, 'numeric'::regtype, 'point'::regtype) THEN
			BEGIN
				FOR ct IN SELECT * FROM _pi_content(c.relid, c.attname) LOOP
					ev := ev || format('content: %s of %s sampled values are %s', ct.hits, ct.sampled, ct.what);
					r := (SELECT CASE WHEN x.sensitivity = 'sensitive' THEN 0 ELSE 100 END + 1
						  FROM category x WHERE x.category = ct.category);
					IF best_rank IS NULL OR r < best_rank THEN
						best_rank := r; best_cat := ct.category;
					END IF;
				END LOOP;
			EXCEPTION WHEN OTHERS THEN
				-- a column that cannot be read (a lock held too long, a
				-- value that does not convert) is not sampled; nothing of
				-- the error is passed on: it might quote a value
				ev := ev || 'content: not sampled (the sample could not be read)'::text;
			END;
		END IF;

		SELECT * INTO nm FROM _pi_name_match(c.attname);
		IF FOUND THEN
			ev := ev || format('name matches "%s"', nm.matched);
			r := CASE WHEN nm.sensitivity = 'sensitive' THEN 0 ELSE 100 END + 2;
			IF best_rank IS NULL OR r < best_rank THEN
				best_rank := r; best_cat := nm.category;
			END IF;
		END IF;

		SELECT * INTO cm FROM _pi_name_match(c.comment);
		IF FOUND THEN
			ev := ev || format('comment matches "%s"', cm.matched);
			r := CASE WHEN cm.sensitivity = 'sensitive' THEN 0 ELSE 100 END + 3;
			IF best_rank IS NULL OR r < best_rank THEN
				best_rank := r; best_cat := cm.category;
			END IF;
		END IF;

		IF best_cat IS NOT NULL THEN
			"table" := c.relid;
			column_name := c.attname;
			suggested_category := best_cat;
			suggested_sensitivity := (SELECT x.sensitivity FROM category x WHERE x.category = best_cat);
			evidence := array_to_string(ev, '; ');
			RETURN NEXT;
		END IF;
	END LOOP;
END
$$;
REVOKE ALL ON FUNCTION _suggestions(name, boolean) FROM PUBLIC;

/*
 * suggest_classification(schema): unclassified columns that look like
 * personal information, by name, comment and a bounded sample of their
 * content, with a shipped category to classify them under.  NULL: every
 * application schema.  Evidence describes what was found and never quotes a
 * stored value.
 */
CREATE FUNCTION suggest_classification(schema name DEFAULT NULL)
RETURNS TABLE ("table" regclass, column_name name, suggested_category text,
			   suggested_sensitivity text, evidence text)
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, profile_guard
SET lock_timeout = '2s'
AS $$
#variable_conflict use_column
DECLARE
	p_schema name := schema;
BEGIN
	IF p_schema IS NOT NULL THEN
		IF p_schema IN ('profile_guard', 'pg_catalog', 'information_schema')
		   OR p_schema ~ '^pg_(toast|temp_|toast_temp_)' THEN
			RAISE EXCEPTION USING ERRCODE = '22023',
				MESSAGE = 'schema is not an application schema',
				DETAIL = format('Schema "%s" holds system or profile_guard objects; its columns are never suggested.', p_schema),
				HINT = 'Pass an application schema, or NULL for all of them.';
		END IF;
		IF NOT EXISTS (SELECT 1 FROM pg_namespace n WHERE n.nspname = p_schema) THEN
			RAISE EXCEPTION USING ERRCODE = '3F000',
				MESSAGE = 'schema does not exist',
				DETAIL = format('There is no schema named "%s".', p_schema),
				HINT = 'Pass the name of an existing schema (see \dn), or NULL for all of them.';
		END IF;
	END IF;
	RETURN QUERY SELECT * FROM _suggestions(p_schema, false);
END
$$;
REVOKE ALL ON FUNCTION suggest_classification(name) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION suggest_classification(name) TO profile_guard_admin;

-- ---------------------------------------------------------------------
-- subject_report
-- ---------------------------------------------------------------------

/*
 * _subject_rows(g, subject): the tags one guarded table holds for a
 * subject, as jsonb objects, values decrypted.  The subject is compared in
 * the subject column's own type when that is a built-in type (so an index
 * can be used), and as text in every case (so '042' never finds 42).
 */
CREATE FUNCTION _subject_rows(g guarded_table, p_subject text)
RETURNS SETOF jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, profile_guard
AS $$
DECLARE
	subj_type	oid;
	subj_typname text;
	match_sql	text;
	collected	text;
	col			record;
	val_type	oid;
	value_sql	text;
	j			jsonb;
	msg			text;
BEGIN
	SELECT a.atttypid, format_type(a.atttypid, a.atttypmod) INTO subj_type, subj_typname
	FROM pg_attribute a
	WHERE a.attrelid = g.relid AND a.attname = g.subject_column AND NOT a.attisdropped;
	IF NOT FOUND THEN
		RETURN;
	END IF;

	match_sql := format('r.%I::text = $1', g.subject_column);
	IF subj_type < 16384 THEN
		BEGIN
			EXECUTE format('SELECT $1::text::%s', subj_typname) USING p_subject;
			match_sql := format('r.%I = $1::text::%s AND ', g.subject_column, subj_typname) || match_sql;
		EXCEPTION WHEN OTHERS THEN
			RETURN;		-- the identifier cannot be a value of this column
		END;
	END IF;
	collected := CASE WHEN g.collected_at_column IS NULL THEN '''null''::jsonb'
				 ELSE format('pg_catalog.to_jsonb(r.%I)', g.collected_at_column) END;

	IF g.tag_column IS NULL THEN
		-- wide shape: one value per classified column and row
		FOR col IN
			SELECT cc.column_name, t.tag, t.category, t.sensitivity, a.atttypid
			FROM classified_column cc
			JOIN tag t ON t.tag = cc.tag
			JOIN pg_attribute a ON a.attrelid = cc.relid AND a.attname = cc.column_name
			WHERE cc.relid = g.relid AND NOT a.attisdropped
			ORDER BY cc.column_name
		LOOP
			IF col.sensitivity = 'sensitive' AND col.atttypid IN ('text'::regtype, 'bytea'::regtype) THEN
				value_sql := format('profile_guard._ciphertext_kind(%1$I::text, %2$L, %3$I)', g.subject_column, col.tag, col.column_name);
				value_sql := format('CASE %1$s WHEN ''ours'' THEN pg_catalog.to_jsonb(profile_guard._decrypt(%2$I::text, %3$L, %4$I))'
									' WHEN ''plaintext'' THEN pg_catalog.to_jsonb(%4$I) END,'
									' CASE %1$s WHEN ''ours'' THEN ''encrypted'' WHEN ''plaintext'' THEN ''plaintext'''
									' ELSE ''not decryptable'' END',
									value_sql, g.subject_column, col.tag, col.column_name);
			ELSE
				value_sql := format('pg_catalog.to_jsonb(%I), %L', col.column_name,
									CASE WHEN col.sensitivity = 'sensitive' THEN 'plaintext' ELSE 'plain' END);
			END IF;
			BEGIN
				FOR j IN EXECUTE format(
					'SELECT pg_catalog.jsonb_build_object(''table'', %1$L, ''column'', %2$L, ''tag'', %3$L,'
					' ''category'', %4$L, ''sensitivity'', %5$L, ''value'', x.v, ''stored'', x.s, ''collected_at'', x.c)'
					' FROM (SELECT %6$s, %7$s FROM %8$s AS r WHERE %9$s AND r.%10$I IS NOT NULL) AS x(v, s, c)'
					' ORDER BY x.c, x.v::text',
					g.relid::text, col.column_name, col.tag, col.category, col.sensitivity,
					value_sql, collected, g.relid, match_sql, col.column_name)
					USING p_subject
				LOOP
					RETURN NEXT j;
				END LOOP;
			EXCEPTION WHEN OTHERS THEN
				GET STACKED DIAGNOSTICS msg = MESSAGE_TEXT;
				RETURN NEXT jsonb_build_object('table', g.relid::text, 'column', col.column_name,
											   'tag', col.tag, 'category', col.category,
											   'sensitivity', col.sensitivity, 'value', NULL,
											   'stored', 'not readable: ' || msg);
			END;
		END LOOP;
	ELSE
		-- long shape: one row per tag
		SELECT a.atttypid INTO val_type FROM pg_attribute a
		WHERE a.attrelid = g.relid AND a.attname = g.value_column AND NOT a.attisdropped;
		IF val_type IN ('text'::regtype, 'bytea'::regtype) THEN
			value_sql := format('CASE WHEN t.sensitivity = ''sensitive'' THEN profile_guard._ciphertext_kind(r.%1$I::text, r.%2$I::text, r.%3$I) END',
								g.subject_column, g.tag_column, g.value_column);
			value_sql := format('CASE WHEN t.sensitivity IS DISTINCT FROM ''sensitive'' THEN pg_catalog.to_jsonb(r.%1$I)'
								' WHEN %2$s = ''ours'' THEN pg_catalog.to_jsonb(profile_guard._decrypt(r.%3$I::text, r.%4$I::text, r.%1$I))'
								' WHEN %2$s = ''plaintext'' THEN pg_catalog.to_jsonb(r.%1$I) END,'
								' CASE WHEN t.sensitivity IS DISTINCT FROM ''sensitive'' THEN ''plain'''
								' WHEN %2$s = ''ours'' THEN ''encrypted'' WHEN %2$s = ''plaintext'' THEN ''plaintext'''
								' ELSE ''not decryptable'' END',
								g.value_column, value_sql, g.subject_column, g.tag_column);
		ELSE
			value_sql := format('pg_catalog.to_jsonb(r.%I), CASE WHEN t.sensitivity = ''sensitive'' THEN ''plaintext'' ELSE ''plain'' END',
								g.value_column);
		END IF;
		BEGIN
			FOR j IN EXECUTE format(
				'SELECT pg_catalog.jsonb_build_object(''table'', %1$L, ''column'', %2$L, ''tag'', x.tag,'
				' ''category'', x.category, ''sensitivity'', x.sensitivity, ''value'', x.v, ''stored'', x.s,'
				' ''collected_at'', x.c)'
				' FROM (SELECT r.%3$I::text, t.category, t.sensitivity, %4$s, %5$s'
				'       FROM %6$s AS r LEFT JOIN profile_guard.tag t ON t.tag = r.%3$I::text'
				'       WHERE %7$s) AS x(tag, category, sensitivity, v, s, c)'
				' ORDER BY x.tag, x.c, x.v::text',
				g.relid::text, g.value_column, g.tag_column, value_sql,
				collected, g.relid, match_sql)
				USING p_subject
			LOOP
				RETURN NEXT j;
			END LOOP;
		EXCEPTION WHEN OTHERS THEN
			GET STACKED DIAGNOSTICS msg = MESSAGE_TEXT;
			RETURN NEXT jsonb_build_object('table', g.relid::text, 'column', g.value_column,
										   'value', NULL, 'stored', 'not readable: ' || msg);
		END;
	END IF;
END
$$;
REVOKE ALL ON FUNCTION _subject_rows(guarded_table, text) FROM PUBLIC;

/*
 * subject_report(subject) RETURNS jsonb: everything held about one person,
 * for the person's own access request (§5 d, §11): tags with their values
 * (decrypted) in every guarded table, consents with the purpose versions
 * and their state per tag (from tag_state(), the one place the rules
 * live), blocks, opt-out, the subject's own events, erasure requests and
 * the erasures done.  Executable by profile_guard_admin and
 * profile_guard_consent only: it hands out values, so it is the access
 * request desk, not a way for applications to read tags.
 */
CREATE FUNCTION subject_report(subject text)
RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, profile_guard
SET datestyle = 'ISO, YMD'
SET intervalstyle = 'postgres'
AS $$
#variable_conflict use_column
DECLARE
	p_subject	text := subject;
	s			profile_guard.subject;
	g			profile_guard.guarded_table;
	tags		jsonb := '[]';
	consents	jsonb;
	erased		jsonb := NULL;
	erased_note	text;
	hash_fn		regprocedure;
	j			jsonb;
BEGIN
	IF p_subject IS NULL THEN
		RAISE EXCEPTION USING ERRCODE = '22004',
			MESSAGE = 'subject must not be null',
			HINT = 'Pass the subject identifier as text, e.g. profile_guard.subject_report(''42'').';
	END IF;
	SELECT * INTO s FROM profile_guard.subject x WHERE x.subject = p_subject;
	IF NOT FOUND THEN
		RAISE EXCEPTION USING ERRCODE = '42704',
			MESSAGE = 'subject is not registered',
			DETAIL = format('Subject "%s" is not registered, so nothing is held about it under profile_guard.', left(p_subject, 200)),
			HINT = 'Check the identifier: it is the value of the guarded tables'' subject column, as text (see profile_guard.subject).';
	END IF;

	-- tags held, table by table
	FOR g IN SELECT * FROM guarded_table x ORDER BY x.relid::text LOOP
		FOR j IN SELECT * FROM _subject_rows(g, s.subject) LOOP
			IF j->>'stored' = 'not decryptable' AND EXISTS (
					SELECT 1 FROM subject_key k
					WHERE k.subject = s.subject AND k.destroyed_at IS NOT NULL) THEN
				j := j || '{"stored": "data key destroyed"}';
			END IF;
			tags := tags || jsonb_build_array(j);
		END LOOP;
	END LOOP;

	-- consents per purpose: the ledger and what it means now
	SELECT coalesce(jsonb_agg(jsonb_build_object(
			'purpose', pu.purpose,
			'description', pu.description,
			'current_version', pu.version,
			'retired', pu.retired_at IS NOT NULL,
			'recipient', pu.recipient,
			'retention', pu.retention::text,
			'marketing', pu.marketing,
			'automated_decision', pu.automated_decision,
			'ledger', (SELECT jsonb_agg(jsonb_build_object(
							'consent_id', c.consent_id,
							'action', c.action,
							'purpose_version', c.purpose_version,
							'tags', to_jsonb(c.tags),
							'separate', c.separate,
							'guardian', c.guardian,
							'expires_at', c.expires_at,
							'recorded_at', c.recorded_at) ORDER BY c.consent_id)
					   FROM consent c
					   WHERE c.subject = s.subject AND c.purpose = pu.purpose),
			'tag_state', (SELECT coalesce(jsonb_agg(jsonb_build_object(
							'tag', ts.tag, 'effective', ts.effective, 'reason', ts.reason)
							ORDER BY ts.tag), '[]')
						  FROM tag_state(pu.purpose, s.subject, false) AS ts))
			ORDER BY pu.purpose), '[]')
	INTO consents
	FROM purpose pu
	WHERE EXISTS (SELECT 1 FROM consent c WHERE c.subject = s.subject AND c.purpose = pu.purpose);

	/*
	 * Erasures done: the erasure engine's ledger, profile_guard.erasure_log,
	 * names subjects only by a keyed hash, computed by
	 * profile_guard._subject_hash(text).  Both are looked up by name at run
	 * time, so this report works before (and without) the erasure engine.
	 */
	IF to_regclass('profile_guard.erasure_log') IS NULL THEN
		erased_note := 'the erasure log (profile_guard.erasure_log) is not installed';
	ELSE
		hash_fn := to_regprocedure('profile_guard._subject_hash(text)');
		IF hash_fn IS NULL OR NOT EXISTS (
				SELECT 1 FROM pg_attribute a
				WHERE a.attrelid = 'profile_guard.erasure_log'::regclass
				  AND a.attname = 'subject_hash' AND NOT a.attisdropped) THEN
			erased_note := 'the erasure log has no subject_hash column or profile_guard._subject_hash(text) is missing';
		ELSE
			EXECUTE format('SELECT coalesce(jsonb_agg(pg_catalog.to_jsonb(l) - ''subject_hash'''
						   ' ORDER BY pg_catalog.to_jsonb(l)::text), ''[]'')'
						   ' FROM profile_guard.erasure_log l WHERE l.subject_hash = %s($1)',
						   hash_fn::oid::regproc)
				INTO erased USING s.subject;
		END IF;
	END IF;

	RETURN jsonb_build_object(
		'subject', s.subject,
		'report_generated_at', now(),
		'registered_at', s.registered_at,
		'birth_date', s.birth_date,
		'opted_out', s.opted_out,
		'erasure_requested_at', s.erasure_requested_at,
		'tags', tags,
		'consents', consents,
		'blocks', (SELECT coalesce(jsonb_agg(jsonb_build_object('tag', b.tag, 'blocked_at', b.blocked_at)
											 ORDER BY b.tag), '[]')
				   FROM tag_block b WHERE b.subject = s.subject),
		'events', (SELECT coalesce(jsonb_agg(jsonb_build_object('event', e.event, 'tag', e.tag,
																'recorded_at', e.recorded_at)
											 ORDER BY e.event_id), '[]')
				   FROM subject_event e WHERE e.subject = s.subject),
		'erasure_requests', (SELECT coalesce(jsonb_agg(jsonb_build_object(
										'request_id', r.request_id,
										'requested_at', r.requested_at,
										'completed_at', r.completed_at,
										'status', CASE WHEN r.completed_at IS NULL THEN 'pending' ELSE 'completed' END)
										ORDER BY r.request_id), '[]')
							 FROM erasure_request r WHERE r.subject = s.subject),
		'data_key_destroyed', EXISTS (SELECT 1 FROM subject_key k
									  WHERE k.subject = s.subject AND k.destroyed_at IS NOT NULL),
		'erasures_done', erased)
		|| CASE WHEN erased_note IS NULL THEN '{}'::jsonb
				ELSE jsonb_build_object('erasures_done_note', erased_note) END;
END
$$;
REVOKE ALL ON FUNCTION subject_report(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION subject_report(text) TO profile_guard_admin, profile_guard_consent;

-- ---------------------------------------------------------------------
-- assess
-- ---------------------------------------------------------------------

/*
 * _stored_plaintext(): per guarded table and sensitive tag column (wide) or
 * value column (long), how many stored values are plaintext and how many
 * are ciphertext that does not authenticate for its row (copied from
 * another subject or tag).  Rows of subjects whose data key was destroyed
 * (erased, waiting for the sweep) are not counted.  Reads every such
 * value: it is an audit, not a sample.
 */
CREATE FUNCTION _stored_plaintext()
RETURNS TABLE (relid regclass, column_name name, plaintext bigint, foreign_ct bigint, problem text)
LANGUAGE plpgsql
SET search_path = pg_catalog, profile_guard
AS $$
DECLARE
	c		record;
	q		text;
	msg		text;
BEGIN
	FOR c IN
		SELECT g.relid, g.subject_column, cc.column_name, quote_literal(cc.tag) AS tag_expr,
			   NULL::text[] AS tags, a.atttypid
		FROM guarded_table g
		JOIN classified_column cc ON cc.relid = g.relid
		JOIN tag t ON t.tag = cc.tag AND t.sensitivity = 'sensitive'
		JOIN pg_attribute a ON a.attrelid = g.relid AND a.attname = cc.column_name
		WHERE g.tag_column IS NULL
		UNION ALL
		SELECT g.relid, g.subject_column, g.value_column, quote_ident(g.tag_column) || '::text',
			   ARRAY(SELECT t.tag FROM tag t WHERE t.sensitivity = 'sensitive'), a.atttypid
		FROM guarded_table g
		JOIN pg_attribute a ON a.attrelid = g.relid AND a.attname = g.value_column
		WHERE g.tag_column IS NOT NULL
		ORDER BY 1, 3
	LOOP
		relid := c.relid;
		column_name := c.column_name;
		plaintext := 0;
		foreign_ct := 0;
		problem := NULL;
		q := format(' FROM %s AS r WHERE r.%I IS NOT NULL'
					' AND NOT EXISTS (SELECT 1 FROM profile_guard.subject_key k'
					'                 WHERE k.subject = r.%I::text AND k.destroyed_at IS NOT NULL)',
					c.relid, c.column_name, c.subject_column)
			 || CASE WHEN c.tags IS NULL THEN ''
					 ELSE format(' AND r.%s = ANY ($1)', c.tag_expr) END;
		IF c.atttypid NOT IN ('text'::regtype, 'bytea'::regtype) THEN
			-- cannot hold ciphertext at all
			EXECUTE 'SELECT count(*)' || q INTO plaintext USING c.tags;
		ELSE
			BEGIN
				EXECUTE format('SELECT count(*) FILTER (WHERE k = ''plaintext''), count(*) FILTER (WHERE k = ''foreign'')'
							   ' FROM (SELECT profile_guard._ciphertext_kind(r.%I::text, %s, r.%I) AS k %s) AS s',
							   c.subject_column,
							   CASE WHEN c.tags IS NULL THEN c.tag_expr ELSE 'r.' || c.tag_expr END,
							   c.column_name, q)
					INTO plaintext, foreign_ct USING c.tags;
			EXCEPTION WHEN OTHERS THEN
				GET STACKED DIAGNOSTICS msg = MESSAGE_TEXT;
				problem := msg;
			END;
		END IF;
		IF plaintext > 0 OR foreign_ct > 0 OR problem IS NOT NULL THEN
			RETURN NEXT;
		END IF;
	END LOOP;
END
$$;
REVOKE ALL ON FUNCTION _stored_plaintext() FROM PUBLIC;

/*
 * assess(): the database checked against the guideline, one row per
 * clause, in clause order.  status is met, not_met, not_applicable or
 * manual (a person must check it; detail says what); detail names the
 * objects at fault.  docs/accountability.md lists what each clause checks.
 */
CREATE FUNCTION assess()
RETURNS TABLE (clause text, requirement text, status text, detail text)
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, profile_guard
SET datestyle = 'ISO, YMD'
SET lock_timeout = '5s'
AS $$
DECLARE
	preloaded	boolean := 'profile_guard' = ANY (
						string_to_array(replace(current_setting('shared_preload_libraries'), ' ', ''), ','));
	n_guarded	bigint := (SELECT count(*) FROM guarded_table);
	n_active	bigint := (SELECT count(*) FROM purpose WHERE retired_at IS NULL);
	faults		text[];
	l			text[];
	n			bigint;
	key_file	text := coalesce(current_setting('profile_guard.master_key_file', true), '');
	key_cmd		text := coalesce(current_setting('profile_guard.master_key_command', true), '');
BEGIN
	/* §5 a: purposes */
	clause := '§5 a';
	requirement := 'Profiles are used only for explicit, declared purposes.';
	IF n_guarded = 0 THEN
		status := 'not_applicable';
		detail := 'no guarded tables';
	ELSIF n_active = 0 THEN
		status := 'not_met';
		detail := 'no active purpose is defined: define one with profile_guard.define_purpose()';
	ELSE
		status := 'met';
		detail := format('reading a tag requires a declared purpose; active purposes: %s', n_active);
	END IF;
	RETURN NEXT;

	/* §5 b: consent as the basis */
	clause := '§5 b';
	requirement := 'Profiles are built and used only with the subject''s consent.';
	IF n_guarded = 0 THEN
		status := 'not_applicable';
		detail := 'no guarded tables';
	ELSIF NOT preloaded THEN
		status := 'not_met';
		detail := 'profile_guard is not in shared_preload_libraries: consent is not enforced';
	ELSE
		status := 'met';
		detail := format('reads and writes of tags are gated by consent; subjects registered: %s, consent records: %s',
						 (SELECT count(*) FROM subject), (SELECT count(*) FROM consent));
	END IF;
	RETURN NEXT;

	/* §5 c: minimum necessary */
	clause := '§5 c';
	requirement := 'Each purpose uses only the tags it needs (a tag list per purpose).';
	l := ARRAY(SELECT p.purpose FROM purpose p
			   WHERE p.retired_at IS NULL AND (p.tags IS NULL OR '*' = ANY (p.tags))
			   ORDER BY p.purpose);
	IF n_active = 0 THEN
		status := 'not_applicable';
		detail := 'no active purposes';
	ELSIF cardinality(l) > 0 THEN
		status := 'not_met';
		detail := 'purposes without a tag list (every tag allowed): ' || _name_list(l);
	ELSE
		status := 'met';
		detail := format('every active purpose lists its tags (active purposes: %s)', n_active);
	END IF;
	RETURN NEXT;

	/* §5 d: transparency */
	clause := '§5 d';
	requirement := 'Profile rules (purposes, tags used, recipients) are disclosed to subjects.';
	status := 'manual';
	detail := 'compare the privacy notice with the active purposes in profile_guard.purpose (description, tags, recipient); subject_report() answers individual requests';
	RETURN NEXT;

	/* §5 e: security */
	clause := '§5 e';
	requirement := 'Profiles are protected by technical security measures.';
	faults := '{}';
	IF key_file = '' AND key_cmd = '' THEN
		faults := faults || 'no master key configured (profile_guard.master_key_file or profile_guard.master_key_command)'::text;
	ELSIF key_file <> '' AND key_cmd <> '' THEN
		faults := faults || 'both profile_guard.master_key_file and profile_guard.master_key_command are set'::text;
	END IF;
	l := ARRAY(SELECT DISTINCT format('%s to %s', c.relname,
									   CASE WHEN x.grantee = 0 THEN 'PUBLIC' ELSE x.grantee::regrole::text END)
			   FROM pg_class c
			   CROSS JOIN LATERAL aclexplode(c.relacl) AS x
			   WHERE c.relnamespace = 'profile_guard'::regnamespace AND c.relkind = 'r'
				 AND x.privilege_type IN ('INSERT', 'UPDATE', 'DELETE', 'TRUNCATE')
				 AND x.grantee <> c.relowner
			   ORDER BY 1);
	IF cardinality(l) > 0 THEN
		faults := faults || ('direct write access to the catalog, bypassing the API: ' || _name_list(l));
	END IF;
	IF cardinality(faults) > 0 THEN
		status := 'not_met';
		detail := array_to_string(faults, '; ');
	ELSE
		status := 'met';
		detail := 'master key configured; the catalog is written only through the API';
	END IF;
	RETURN NEXT;

	/* §5 f: classification */
	clause := '§5 f';
	requirement := 'Personal information in profiles is identified and classified by category and sensitivity.';
	IF n_guarded = 0 THEN
		status := 'not_met';
		detail := 'no guarded tables: no profile tags are under policy (see profile_guard.suggest_classification())';
	ELSE
		faults := '{}';
		l := ARRAY(SELECT format('%s.%I (%s)', s."table", s.column_name, s.suggested_category)
				   FROM _suggestions(NULL, true) AS s
				   ORDER BY s."table"::text, s.column_name);
		IF cardinality(l) > 0 THEN
			faults := faults || ('unclassified columns of guarded tables that look personal: ' || _name_list(l));
		END IF;
		l := ARRAY(SELECT g.relid::oid::text FROM guarded_table g
				   WHERE NOT EXISTS (SELECT 1 FROM pg_class c WHERE c.oid = g.relid)
				   ORDER BY g.relid::oid);
		IF cardinality(l) > 0 THEN
			faults := faults || ('guarded_table rows of tables that were dropped (oids): ' || _name_list(l));
		END IF;
		IF cardinality(faults) > 0 THEN
			status := 'not_met';
			detail := array_to_string(faults, '; ');
		ELSE
			status := 'met';
			detail := format('no unclassified column of a guarded table looks personal (guarded tables: %s, classified columns: %s)',
							 n_guarded, (SELECT count(*) FROM classified_column));
		END IF;
	END IF;
	RETURN NEXT;

	/* §6: sensitive personal information */
	clause := '§6';
	requirement := 'Sensitive personal information is recognised as sensitive.';
	l := ARRAY(SELECT format('%s.%I as %s (looks %s)', cc.relid, cc.column_name, cc.tag, m.category)
			   FROM classified_column cc
			   JOIN tag t ON t.tag = cc.tag
			   CROSS JOIN LATERAL _pi_name_match(cc.column_name) AS m
			   WHERE t.sensitivity = 'general' AND m.sensitivity = 'sensitive'
			   ORDER BY 1);
	IF (SELECT count(*) FROM classified_column) = 0 THEN
		status := 'not_applicable';
		detail := 'no classified columns';
	ELSIF cardinality(l) > 0 THEN
		status := 'not_met';
		detail := 'columns named like sensitive information but classified as a general tag: ' || _name_list(l);
	ELSE
		status := 'met';
		detail := format('no column classified as a general tag is named like sensitive information (sensitive tags: %s)',
						 (SELECT count(*) FROM tag WHERE sensitivity = 'sensitive'));
	END IF;
	RETURN NEXT;

	/* §7.1: collection */
	clause := '§7.1';
	requirement := 'Tags are collected only with consent covering them.';
	faults := '{}';
	l := ARRAY(SELECT g.relid::text FROM guarded_table g
			   WHERE EXISTS (SELECT 1 FROM pg_class c WHERE c.oid = g.relid)
				 AND NOT EXISTS (SELECT 1 FROM pg_trigger tg
								 WHERE tg.tgrelid = g.relid AND tg.tgname = 'profile_guard_collect'
								   AND tg.tgenabled = 'A')
			   ORDER BY 1);
	IF cardinality(l) > 0 THEN
		faults := faults || ('collection trigger missing or not ENABLE ALWAYS on: ' || _name_list(l));
	END IF;
	l := ARRAY(SELECT format('%s (owner %s)', g.relid, o.rolname) FROM guarded_table g
			   JOIN pg_class c ON c.oid = g.relid
			   JOIN pg_roles o ON o.oid = c.relowner
			   WHERE NOT o.rolsuper
				 AND EXISTS (SELECT 1 FROM purpose_role pr WHERE pr.role_name = o.rolname)
			   ORDER BY 1);
	IF cardinality(l) > 0 THEN
		faults := faults || ('guarded tables owned by an application role, which can disable the trigger: ' || _name_list(l));
	END IF;
	IF NOT preloaded THEN
		faults := faults || 'profile_guard is not in shared_preload_libraries'::text;
	END IF;
	IF n_guarded = 0 THEN
		status := 'not_applicable';
		detail := 'no guarded tables';
	ELSIF cardinality(faults) > 0 THEN
		status := 'not_met';
		detail := array_to_string(faults, '; ');
	ELSE
		status := 'met';
		detail := format('the collection trigger is enabled on every guarded table (%s)',
						 (SELECT count(*) FROM guarded_table g JOIN pg_class c ON c.oid = g.relid));
	END IF;
	RETURN NEXT;

	/* §7.2: storage */
	clause := '§7.2';
	requirement := 'Sensitive tags are stored encrypted; tag values do not appear in statistics.';
	faults := '{}';
	IF preloaded THEN
		l := ARRAY(SELECT format('%s.%I (%s)', p.relid, p.column_name,
								 coalesce('not checked: ' || p.problem,
										  concat_ws(', ',
											  CASE WHEN p.plaintext > 0 THEN 'plaintext: ' || p.plaintext END,
											  CASE WHEN p.foreign_ct > 0 THEN 'ciphertext not of its row: ' || p.foreign_ct END)))
				   FROM _stored_plaintext() AS p ORDER BY p.relid::text, p.column_name);
		IF cardinality(l) > 0 THEN
			faults := faults || ('sensitive columns not holding our ciphertext: ' || _name_list(l));
		END IF;
	ELSE
		faults := faults || 'stored values not checked: profile_guard is not in shared_preload_libraries'::text;
	END IF;
	l := ARRAY(SELECT format('%s.%I', x.relid, x.col)
			   FROM (SELECT cc.relid, cc.column_name AS col FROM classified_column cc
					 UNION
					 SELECT g.relid, g.value_column FROM guarded_table g WHERE g.value_column IS NOT NULL) AS x
			   JOIN pg_attribute a ON a.attrelid = x.relid AND a.attname = x.col
			   WHERE a.attstattarget <> 0
				  OR EXISTS (SELECT 1 FROM pg_statistic st
							 WHERE st.starelid = a.attrelid AND st.staattnum = a.attnum)
			   ORDER BY 1);
	IF cardinality(l) > 0 THEN
		faults := faults || ('tag columns with statistics (pg_stats would show values): ' || _name_list(l));
	END IF;
	IF n_guarded = 0 THEN
		status := 'not_applicable';
		detail := 'no guarded tables';
	ELSIF cardinality(faults) > 0 THEN
		status := 'not_met';
		detail := array_to_string(faults, '; ');
	ELSE
		status := 'met';
		detail := 'every stored sensitive value is ciphertext of its subject and tag; tag columns keep no statistics';
	END IF;
	RETURN NEXT;

	/* §7.3: use */
	clause := '§7.3';
	requirement := 'Tags are used only under a declared purpose, within its tag list and the subject''s consent.';
	IF n_guarded = 0 THEN
		status := 'not_applicable';
		detail := 'no guarded tables';
	ELSIF NOT preloaded THEN
		status := 'not_met';
		detail := 'profile_guard is not in shared_preload_libraries: reads are not gated';
	ELSE
		status := 'met';
		detail := 'the read gate is active: rows and cells are filtered by purpose, tag list and consent';
	END IF;
	RETURN NEXT;

	/* §7.4: retention */
	clause := '§7.4';
	requirement := 'Each purpose has a retention period after which its tags are erased.';
	l := ARRAY(SELECT p.purpose FROM purpose p
			   WHERE p.retired_at IS NULL AND p.retention IS NULL ORDER BY 1);
	IF n_active = 0 THEN
		status := 'not_applicable';
		detail := 'no active purposes';
	ELSIF cardinality(l) > 0 THEN
		status := 'not_met';
		detail := 'purposes without retention: ' || _name_list(l);
	ELSE
		status := 'met';
		detail := format('every active purpose has a retention period (active purposes: %s)', n_active);
	END IF;
	RETURN NEXT;

	/* §8: sharing */
	clause := '§8';
	requirement := 'Profiles provided to other parties go only to identified recipients under agreed terms.';
	l := ARRAY(SELECT format('%s (to %s)', p.purpose, p.recipient) FROM purpose p
			   WHERE p.retired_at IS NULL AND p.recipient IS NOT NULL ORDER BY 1);
	IF cardinality(l) = 0 THEN
		status := 'not_applicable';
		detail := 'no active purpose names a recipient';
	ELSE
		status := 'manual';
		detail := 'check the agreements with the recipients of: ' || _name_list(l);
	END IF;
	RETURN NEXT;

	/* §9 a: purpose changes */
	clause := '§9 a';
	requirement := 'A changed purpose is used only after the subject consents again.';
	l := ARRAY(SELECT format('%s (consents on an older version: %s)', r.purpose, count(*))
			   FROM consents_needing_renewal r
			   WHERE r.granted_version < r.current_version
			   GROUP BY r.purpose ORDER BY r.purpose);
	IF n_active = 0 THEN
		status := 'not_applicable';
		detail := 'no active purposes';
	ELSIF cardinality(l) > 0 THEN
		status := 'not_met';
		detail := 'consents pending renewal after a purpose change (not used until renewed): ' || _name_list(l);
	ELSE
		status := 'met';
		detail := 'no consent for an older purpose version awaits renewal';
	END IF;
	RETURN NEXT;

	/* §9 b: consent records */
	clause := '§9 b';
	requirement := 'Consents are recorded and the record cannot be altered.';
	l := ARRAY(SELECT t.name FROM unnest(ARRAY['consent_append_only', 'consent_no_truncate']) AS t(name)
			   WHERE NOT EXISTS (SELECT 1 FROM pg_trigger tg
								 WHERE tg.tgrelid = 'profile_guard.consent'::regclass
								   AND tg.tgname = t.name AND tg.tgenabled <> 'D')
			   ORDER BY 1);
	IF cardinality(l) > 0 THEN
		status := 'not_met';
		detail := 'triggers keeping the consent ledger append-only are missing or disabled: ' || _name_list(l);
	ELSE
		status := 'met';
		detail := format('the consent ledger is append-only (records: %s)', (SELECT count(*) FROM consent));
	END IF;
	RETURN NEXT;

	/* §9 c: automated decisions */
	clause := '§9 c';
	requirement := 'Automated decision-making is preceded by a personal-information impact assessment.';
	l := ARRAY(SELECT format('%s (version %s)', p.purpose, p.version) FROM purpose p
			   WHERE p.retired_at IS NULL AND p.automated_decision
				 AND NOT EXISTS (SELECT 1 FROM assessment a
								 WHERE a.purpose = p.purpose AND a.purpose_version = p.version)
			   ORDER BY 1);
	n := (SELECT count(*) FROM purpose p WHERE p.retired_at IS NULL AND p.automated_decision);
	IF n = 0 THEN
		status := 'not_applicable';
		detail := 'no active automated_decision purpose';
	ELSIF cardinality(l) > 0 THEN
		status := 'not_met';
		detail := 'automated_decision purposes without an assessment of their current version: ' || _name_list(l);
	ELSE
		status := 'met';
		detail := format('every automated_decision purpose is assessed for its current version (%s)', n);
	END IF;
	RETURN NEXT;

	/* §9 d: marketing opt-out */
	clause := '§9 d';
	requirement := 'Subjects can switch off personalised marketing, effective at once.';
	n := (SELECT count(*) FROM purpose p WHERE p.retired_at IS NULL AND p.marketing);
	IF n = 0 THEN
		status := 'not_applicable';
		detail := 'no active marketing purpose';
	ELSIF NOT preloaded THEN
		status := 'not_met';
		detail := 'profile_guard is not in shared_preload_libraries: opt-outs are not enforced';
	ELSE
		status := 'met';
		detail := format('opt_out() applies to every marketing purpose at the next statement (marketing purposes: %s, subjects opted out: %s)',
						 n, (SELECT count(*) FROM subject s WHERE s.opted_out));
	END IF;
	RETURN NEXT;

	/* §9 e: logs */
	clause := '§9 e';
	requirement := 'Logs do not record tag values.';
	faults := '{}';
	IF current_setting('log_statement') IN ('all', 'mod') THEN
		faults := faults || format('log_statement = %s', current_setting('log_statement'));
	END IF;
	IF current_setting('log_min_duration_statement')::integer >= 0 THEN
		faults := faults || format('log_min_duration_statement = %s', current_setting('log_min_duration_statement'));
	END IF;
	IF current_setting('log_min_duration_sample')::integer >= 0
	   AND current_setting('log_statement_sample_rate')::float8 > 0 THEN
		faults := faults || format('log_min_duration_sample = %s', current_setting('log_min_duration_sample'));
	END IF;
	l := ARRAY(SELECT format('%s for %s', x.cfg,
							 concat_ws(' in ', CASE WHEN s.setrole <> 0 THEN 'role ' || s.setrole::regrole END,
									   CASE WHEN s.setdatabase <> 0 THEN 'database ' ||
											(SELECT quote_ident(d.datname) FROM pg_database d WHERE d.oid = s.setdatabase) END))
			   FROM pg_db_role_setting s
			   CROSS JOIN LATERAL unnest(s.setconfig) AS x(cfg)
			   WHERE x.cfg ~* '^log_statement=(all|mod)$'
				  OR x.cfg ~* '^log_min_duration_(statement|sample)=[0-9]'
			   ORDER BY 1);
	IF cardinality(l) > 0 THEN
		faults := faults || ('per-role or per-database settings: ' || _name_list(l));
	END IF;
	IF cardinality(faults) > 0 THEN
		status := 'not_met';
		detail := 'settings that write statement text, and so tag values, to the server log: ' || array_to_string(faults, '; ');
	ELSE
		status := 'met';
		detail := 'no statement logging that would print values';
	END IF;
	RETURN NEXT;

	/* §9 f: least privilege */
	clause := '§9 f';
	requirement := 'Access to profiles is limited to the roles that need it for a purpose.';
	faults := '{}';
	l := ARRAY(SELECT format('%s (%s)', quote_ident(r.rolname),
							 concat_ws(', ', CASE WHEN r.rolsuper THEN 'superuser' END,
									   CASE WHEN r.rolbypassrls THEN 'bypassrls' END))
			   FROM pg_roles r
			   WHERE (r.rolsuper OR r.rolbypassrls) AND r.oid <> 10
			   ORDER BY 1);
	IF cardinality(l) > 0 THEN
		faults := faults || ('roles besides the bootstrap superuser that read raw values: ' || _name_list(l));
	END IF;
	l := ARRAY(SELECT p.purpose FROM purpose p
			   WHERE p.retired_at IS NULL
				 AND NOT EXISTS (SELECT 1 FROM purpose_role pr JOIN pg_roles r ON r.rolname = pr.role_name
								 WHERE pr.purpose = p.purpose)
			   ORDER BY 1);
	IF cardinality(l) > 0 THEN
		faults := faults || ('purposes allowed to no role: ' || _name_list(l));
	END IF;
	l := ARRAY(SELECT DISTINCT format('%I', pr.role_name) FROM purpose_role pr
			   WHERE NOT EXISTS (SELECT 1 FROM pg_roles r WHERE r.rolname = pr.role_name)
			   ORDER BY 1);
	IF cardinality(l) > 0 THEN
		faults := faults || ('purposes allowed to roles that do not exist: ' || _name_list(l));
	END IF;
	IF cardinality(faults) > 0 THEN
		status := 'not_met';
		detail := array_to_string(faults, '; ');
	ELSE
		status := 'met';
		detail := format('no superuser or BYPASSRLS role besides the bootstrap superuser; every active purpose is allowed to a role (grants: %s, roles: %s)',
						 (SELECT count(*) FROM purpose_role),
						 (SELECT count(DISTINCT role_name) FROM purpose_role));
	END IF;
	RETURN NEXT;

	/* §9 g: prohibited descriptions */
	clause := '§9 g';
	requirement := 'No tag or purpose describes a subject in prohibited terms.';
	l := ARRAY(SELECT format('tag %s (%s)', t.tag, prohibited_topic(concat_ws(' ', t.tag, t.description)))
			   FROM tag t WHERE prohibited_topic(concat_ws(' ', t.tag, t.description)) IS NOT NULL
			   UNION ALL
			   SELECT format('purpose %s (%s)', p.purpose, prohibited_topic(concat_ws(' ', p.purpose, p.description)))
			   FROM purpose p
			   WHERE p.retired_at IS NULL AND prohibited_topic(concat_ws(' ', p.purpose, p.description)) IS NOT NULL
			   ORDER BY 1);
	IF cardinality(l) > 0 THEN
		status := 'not_met';
		detail := 'matches of the prohibited lexicon: ' || _name_list(l);
	ELSE
		status := 'met';
		detail := format('no tag or active purpose matches the prohibited lexicon (tags: %s, active purposes: %s)',
						 (SELECT count(*) FROM tag), n_active);
	END IF;
	RETURN NEXT;

	/* §9 h: withdrawal */
	clause := '§9 h';
	requirement := 'Consent can be withdrawn at any time and withdrawal takes effect at once.';
	IF n_guarded = 0 THEN
		status := 'not_applicable';
		detail := 'no guarded tables';
	ELSIF NOT preloaded THEN
		status := 'not_met';
		detail := 'profile_guard is not in shared_preload_libraries: withdrawals are not enforced';
	ELSE
		status := 'met';
		detail := format('withdraw_consent() takes effect at the next statement (withdrawals recorded: %s)',
						 (SELECT count(*) FROM consent c WHERE c.action = 'withdraw'));
	END IF;
	RETURN NEXT;

	/* §9 i: minors */
	clause := '§9 i';
	requirement := 'Minors are recognised: no marketing to minors, guardian consent under 14.';
	faults := '{}';
	IF minor_age() < 18 THEN
		faults := faults || format('profile_guard.minor_age = %s (below 18)', minor_age());
	END IF;
	n := (SELECT count(*) FROM subject s
		  WHERE s.birth_date IS NULL
			AND EXISTS (SELECT 1 FROM consent c WHERE c.subject = s.subject AND c.action = 'grant'));
	IF n > 0 THEN
		faults := faults || format('subjects with consents but no birth date, whose age cannot be checked: %s', n);
	END IF;
	IF (SELECT count(*) FROM subject) = 0 THEN
		status := 'not_applicable';
		detail := 'no registered subjects';
	ELSIF cardinality(faults) > 0 THEN
		status := 'not_met';
		detail := array_to_string(faults, '; ');
	ELSE
		status := 'met';
		detail := format('every consenting subject has a birth date; profile_guard.minor_age = %s', minor_age());
	END IF;
	RETURN NEXT;

	/* §10: end of service and erasure */
	clause := '§10';
	requirement := 'When profiles are erased, their data cannot be recovered.';
	l := ARRAY(SELECT format('request %s', r.request_id) FROM erasure_request r
			   WHERE r.completed_at IS NOT NULL
				 AND NOT EXISTS (SELECT 1 FROM subject_key k
								 WHERE k.subject = r.subject AND k.destroyed_at IS NOT NULL)
				 AND EXISTS (SELECT 1 FROM subject_key k WHERE k.subject = r.subject)
			   ORDER BY 1);
	IF (SELECT count(*) FROM erasure_request WHERE completed_at IS NOT NULL) = 0 THEN
		status := 'not_applicable';
		detail := 'no erasure completed yet';
	ELSIF cardinality(l) > 0 THEN
		status := 'not_met';
		detail := 'erasures completed while the subject''s data key still exists (backups stay readable): ' || _name_list(l);
	ELSE
		status := 'met';
		detail := 'the data keys of every erased subject are destroyed';
	END IF;
	RETURN NEXT;

	/* §11 a: tag management */
	clause := '§11 a';
	requirement := 'Subjects can see and switch off single tags and personalised marketing.';
	IF n_guarded = 0 THEN
		status := 'not_applicable';
		detail := 'no guarded tables';
	ELSIF NOT preloaded THEN
		status := 'not_met';
		detail := 'profile_guard is not in shared_preload_libraries: blocks are not enforced';
	ELSE
		status := 'met';
		detail := format('block_tag() and opt_out() take effect at the next statement (blocks in force: %s)',
						 (SELECT count(*) FROM tag_block));
	END IF;
	RETURN NEXT;

	/* §11 b: access */
	clause := '§11 b';
	requirement := 'Subjects can obtain what is held about them.';
	l := ARRAY(SELECT quote_ident(r.rolname) FROM pg_roles r
			   WHERE NOT r.rolsuper
				 AND r.rolname NOT IN ('profile_guard_admin', 'profile_guard_consent')
				 AND (pg_has_role(r.oid, 'profile_guard_admin', 'USAGE')
					  OR pg_has_role(r.oid, 'profile_guard_consent', 'USAGE'))
			   ORDER BY 1);
	IF cardinality(l) = 0 THEN
		status := 'not_met';
		detail := 'no role besides superusers can call subject_report(): grant profile_guard_consent to the staff answering requests';
	ELSE
		status := 'met';
		detail := 'subject_report() can be called by: ' || _name_list(l);
	END IF;
	RETURN NEXT;

	/* §11 c: erasure on request */
	clause := '§11 c';
	requirement := 'Subjects can have their profile erased; requests are carried out within 15 days.';
	l := ARRAY(SELECT format('request %s (%s days)', r.request_id, date_part('day', now() - r.requested_at))
			   FROM erasure_request r
			   WHERE r.completed_at IS NULL AND r.requested_at < now() - interval '15 days'
			   ORDER BY r.requested_at, r.request_id);
	IF cardinality(l) > 0 THEN
		status := 'not_met';
		detail := 'erasure requests pending for more than 15 days: ' || _name_list(l);
	ELSE
		status := 'met';
		detail := format('no erasure request is pending for more than 15 days; use stops at the request (pending: %s)',
						 (SELECT count(*) FROM erasure_request r WHERE r.completed_at IS NULL));
	END IF;
	RETURN NEXT;

	/* §11 d: complaints */
	clause := '§11 d';
	requirement := 'Subjects have a channel for requests and complaints, answered in time.';
	status := 'manual';
	detail := 'check the request and complaint process and its response times; subject_event records the requests made through the API';
	RETURN NEXT;
END
$$;
REVOKE ALL ON FUNCTION assess() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION assess() TO profile_guard_admin;
