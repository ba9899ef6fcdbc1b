/*
 * 40_purpose.sql — purposes: versioned definitions (§5 a, §9 a), impact
 * assessments (§9 c), retirement, and which roles may declare them (§9 f).
 */

-- A purpose by name, checked for shape; raises unless it exists.  With
-- p_for_update the row is locked.  Retired purposes are returned too.
CREATE FUNCTION _get_purpose(p_purpose text, p_for_update boolean DEFAULT false)
RETURNS purpose
LANGUAGE plpgsql
SET search_path = pg_catalog, profile_guard, pg_temp
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

CREATE FUNCTION _refuse_retired(pu purpose)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, profile_guard, pg_temp
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
CREATE FUNCTION define_purpose(purpose text, description text, tags text[] DEFAULT NULL,
							   retention interval DEFAULT NULL, marketing boolean DEFAULT false,
							   automated_decision boolean DEFAULT false, recipient text DEFAULT NULL)
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, profile_guard, pg_temp
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
CREATE FUNCTION record_assessment(purpose text, assessor text, conclusion text)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, profile_guard, pg_temp
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
CREATE FUNCTION retire_purpose(purpose text)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, profile_guard, pg_temp
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
CREATE FUNCTION allow_purpose(role regrole, purpose text)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, profile_guard, pg_temp
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

CREATE FUNCTION disallow_purpose(role regrole, purpose text)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, profile_guard, pg_temp
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
