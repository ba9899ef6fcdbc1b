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
		RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed',
			MESSAGE = 'purpose must not be null',
			HINT = 'Pass the name of a purpose defined with profile_guard.define_purpose().';
	END IF;
	IF p_for_update THEN
		SELECT * INTO pu FROM purpose x WHERE x.purpose = p_purpose FOR UPDATE;
	ELSE
		SELECT * INTO pu FROM purpose x WHERE x.purpose = p_purpose;
	END IF;
	IF NOT FOUND THEN
		RAISE EXCEPTION USING ERRCODE = 'undefined_object',
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
		RAISE EXCEPTION USING ERRCODE = 'object_not_in_prerequisite_state',
			MESSAGE = 'purpose is retired',
			DETAIL = format('Purpose "%s" was retired.', pu.purpose),
			HINT = 'Define a purpose with a new name with profile_guard.define_purpose().';
	END IF;
END
$$;
REVOKE ALL ON FUNCTION _refuse_retired(purpose) FROM PUBLIC;

/*
 * define_recipient(recipient, country, description): a party purposes
 * provide profiles to (§8), in a country (ISO 3166-1 alpha-2).  Defining it
 * again updates it.  A recipient outside profile_guard.home_country makes
 * its purposes cross-border (PIPL art. 38-39): every tag needs separate
 * consent and the purpose an assessment of its current version.  A change
 * of country gives every active purpose naming the recipient a new version
 * (rule 5): its consents and its assessment must be given again.
 */
CREATE FUNCTION define_recipient(recipient text, country text DEFAULT 'CN', description text DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, profile_guard, pg_temp
AS $$
DECLARE
	old		profile_guard.recipient;
BEGIN
	IF define_recipient.recipient IS NULL OR define_recipient.country IS NULL THEN
		RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed',
			MESSAGE = 'recipient and country must not be null',
			HINT = 'Call profile_guard.define_recipient(''name'', ''CN'').';
	END IF;
	IF length(define_recipient.recipient) NOT BETWEEN 1 AND 200 OR btrim(define_recipient.recipient) = '' THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = 'invalid recipient name',
			DETAIL = 'A recipient name is 1 to 200 characters long and not blank.',
			HINT = 'Use names like ''acme'' or ''Acme Analytics Ltd''.';
	END IF;
	IF define_recipient.country !~ '^[A-Z]{2}$' THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = 'invalid country code',
			DETAIL = format('Recipient "%s" needs an ISO 3166-1 alpha-2 country code: two upper-case letters.',
							left(define_recipient.recipient, 120)),
			HINT = 'Pass a code such as ''CN'' or ''DE''.';
	END IF;
	SELECT * INTO old FROM profile_guard.recipient r WHERE r.recipient = define_recipient.recipient FOR UPDATE;
	IF NOT FOUND THEN
		INSERT INTO profile_guard.recipient (recipient, country, description)
		VALUES (define_recipient.recipient, define_recipient.country, define_recipient.description);
	ELSIF (old.country, old.description) IS NOT DISTINCT FROM
		  (define_recipient.country, define_recipient.description) THEN
		RETURN;				-- identical: nothing changes
	ELSE
		UPDATE profile_guard.recipient r
		SET country = define_recipient.country, description = define_recipient.description,
			defined_at = now()
		WHERE r.recipient = define_recipient.recipient;
		IF old.country <> define_recipient.country THEN
			-- its purposes change: a new version each (rule 5)
			UPDATE purpose p SET version = p.version + 1, defined_at = now()
			WHERE p.recipient = define_recipient.recipient AND p.retired_at IS NULL;
			INSERT INTO purpose_history (purpose, version, description, tags, retention,
										 marketing, automated_decision, recipient, defined_at,
										 personalised, legal_basis)
			SELECT p.purpose, p.version, p.description, p.tags, p.retention,
				   p.marketing, p.automated_decision, p.recipient, p.defined_at,
				   p.personalised, p.legal_basis
			FROM purpose p
			WHERE p.recipient = define_recipient.recipient AND p.retired_at IS NULL;
		END IF;
	END IF;
	PERFORM _policy_changed();
END
$$;
REVOKE ALL ON FUNCTION define_recipient(text, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION define_recipient(text, text, text) TO profile_guard_admin;

/*
 * define_purpose(...) RETURNS the purpose's version.  A new purpose is
 * version 1; any change of description, tags, retention, flags or recipient
 * bumps the version (consents to older versions stop counting, §7.1 b); an
 * identical redefinition changes nothing.  Every version is kept in
 * purpose_history.  personalised: information push, personalised display
 * or targeted ads, which opt_out() switches off (§9 a 5–6); a marketing
 * purpose is always personalised.  legal_basis (rule 9a, PIPL art. 13
 * (1)–(7)): consent, or another basis under which the purpose reads the
 * tags of its list for every registered subject without a consent record;
 * such a purpose is never personalised nor marketing, and must list its
 * tags (minimum necessary), naming each sensitive tag it needs.
 * recipient: a recipient defined with define_recipient(), or NULL.
 */
CREATE FUNCTION define_purpose(purpose text, description text, tags text[] DEFAULT NULL,
							   retention interval DEFAULT NULL, marketing boolean DEFAULT false,
							   automated_decision boolean DEFAULT false, recipient text DEFAULT NULL,
							   personalised boolean DEFAULT false, legal_basis text DEFAULT 'consent')
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, profile_guard, pg_temp
AS $$
DECLARE
	tag_list	text[];			-- tags, checked, distinct and sorted
	old			record;
	new_version	integer;
	is_personalised boolean;
BEGIN
	IF define_purpose.purpose IS NULL OR define_purpose.description IS NULL THEN
		RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed',
			MESSAGE = 'purpose and description must not be null',
			HINT = 'Call profile_guard.define_purpose(''name'', ''what the profiles are used for'').';
	END IF;
	IF define_purpose.marketing IS NULL OR define_purpose.automated_decision IS NULL
	   OR define_purpose.personalised IS NULL THEN
		RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed',
			MESSAGE = 'marketing, automated_decision and personalised must not be null',
			DETAIL = format('Purpose "%s" needs every flag set to true or false.', left(define_purpose.purpose, 120)),
			HINT = 'Omit them for false.';
	END IF;
	IF length(define_purpose.purpose) > 100 OR define_purpose.purpose !~ '^[a-z][a-z0-9_.:-]*$' THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = 'invalid purpose name',
			DETAIL = format('Purpose name "%s" must start with a lower-case letter, consist of lower-case letters, digits, "_", ".", ":" and "-", and be at most 100 characters long.',
							left(define_purpose.purpose, 120)),
			HINT = 'Use names like ''recommendation'' or ''share:acme''.';
	END IF;
	IF define_purpose.legal_basis IS NULL THEN
		RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed',
			MESSAGE = 'legal basis must not be null',
			DETAIL = format('Purpose "%s" needs a lawful basis.', left(define_purpose.purpose, 120)),
			HINT = 'Omit legal_basis for consent, or pass one of consent, contract, legal_obligation, vital_interest, public_interest, news_reporting, public_information.';
	END IF;
	IF define_purpose.legal_basis NOT IN ('consent', 'contract', 'legal_obligation', 'vital_interest',
										  'public_interest', 'news_reporting', 'public_information') THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = 'unknown legal basis',
			DETAIL = format('Purpose "%s" names a lawful basis that PIPL article 13 does not list.', define_purpose.purpose),
			HINT = 'Pass one of consent, contract, legal_obligation, vital_interest, public_interest, news_reporting, public_information.';
	END IF;
	IF define_purpose.legal_basis <> 'consent'
	   AND (define_purpose.personalised OR define_purpose.marketing) THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = 'a purpose not based on consent cannot be personalised or marketing',
			DETAIL = format('Purpose "%s" has legal basis %s; personalised display, information push and marketing rest on consent alone (rule 9a).',
							define_purpose.purpose, define_purpose.legal_basis),
			HINT = 'Define it with legal_basis => ''consent'', or with personalised and marketing false.';
	END IF;
	IF define_purpose.legal_basis <> 'consent' AND define_purpose.tags IS NULL THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = 'a purpose not based on consent must list its tags',
			DETAIL = format('Purpose "%s" has legal basis %s and no tag list: without consent, only the tags the basis needs may be read (minimum necessary).',
							define_purpose.purpose, define_purpose.legal_basis),
			HINT = 'Pass tags => ARRAY[...] naming the tags it needs, each sensitive tag by its full name.';
	END IF;
	IF btrim(define_purpose.description) = '' THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = 'purpose description must not be empty',
			DETAIL = format('Purpose "%s" has an empty description.', define_purpose.purpose),
			HINT = 'Describe what the profiles are used for and how.';
	END IF;
	-- positive in each of its parts (months, days, time), whatever the
	-- calendar: '1 mon -29 days' is positive in February and not in March;
	-- and short enough that now() - retention is a timestamp
	IF define_purpose.retention IS NOT NULL AND
	   (define_purpose.retention <= interval '0' OR
		extract(year FROM define_purpose.retention) * 12 + extract(month FROM define_purpose.retention) < 0 OR
		extract(day FROM define_purpose.retention) < 0 OR
		define_purpose.retention - make_interval(
			months => (extract(year FROM define_purpose.retention) * 12 + extract(month FROM define_purpose.retention))::int,
			days => extract(day FROM define_purpose.retention)::int) < interval '0') THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = 'retention must be positive',
			DETAIL = format('Purpose "%s" has a retention of %s, which is not positive in each of its months, days and time.',
							define_purpose.purpose, define_purpose.retention),
			HINT = 'Pass an interval such as interval ''180 days'', or NULL for no limit.';
	END IF;
	IF define_purpose.retention > interval '1000 years' THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = 'retention is too long',
			DETAIL = format('Purpose "%s" has a retention of %s; at most 1000 years.',
							define_purpose.purpose, define_purpose.retention),
			HINT = 'Pass NULL for no limit.';
	END IF;
	IF define_purpose.recipient IS NOT NULL
	   AND NOT EXISTS (SELECT 1 FROM profile_guard.recipient r
					   WHERE r.recipient = define_purpose.recipient) THEN
		RAISE EXCEPTION USING ERRCODE = 'foreign_key_violation',
			MESSAGE = 'recipient is not defined',
			DETAIL = format('Purpose "%s" names recipient "%s", which was never defined.',
							define_purpose.purpose, left(define_purpose.recipient, 120)),
			HINT = format('Call profile_guard.define_recipient(%L, country) first.',
						  left(define_purpose.recipient, 120));
	END IF;
	tag_list := _check_tag_list(define_purpose.tags, format('purpose "%s"', define_purpose.purpose));
	-- every marketing purpose is personalised (rule 9)
	is_personalised := define_purpose.personalised OR define_purpose.marketing;

	SELECT * INTO old FROM purpose x WHERE x.purpose = define_purpose.purpose FOR UPDATE;
	IF NOT FOUND THEN
		new_version := 1;
		INSERT INTO purpose (purpose, version, description, tags, retention,
							 marketing, automated_decision, recipient, personalised, legal_basis)
		VALUES (define_purpose.purpose, new_version, define_purpose.description, tag_list,
				define_purpose.retention, define_purpose.marketing, define_purpose.automated_decision,
				define_purpose.recipient, is_personalised, define_purpose.legal_basis);
	ELSE
		IF old.retired_at IS NOT NULL THEN
			RAISE EXCEPTION USING ERRCODE = 'object_not_in_prerequisite_state',
				MESSAGE = 'purpose is retired',
				DETAIL = format('Purpose "%s" was retired and cannot be redefined.', define_purpose.purpose),
				HINT = 'Define a purpose with a new name with profile_guard.define_purpose().';
		END IF;
		IF (old.description, old.tags, old.retention, old.marketing,
			old.automated_decision, old.recipient, old.personalised, old.legal_basis)
		   IS NOT DISTINCT FROM
		   (define_purpose.description, tag_list, define_purpose.retention, define_purpose.marketing,
			define_purpose.automated_decision, define_purpose.recipient, is_personalised,
			define_purpose.legal_basis) THEN
			RETURN old.version;		-- identical: nothing changes
		END IF;
		new_version := old.version + 1;
		UPDATE purpose x
		SET version = new_version, description = define_purpose.description, tags = tag_list,
			retention = define_purpose.retention, marketing = define_purpose.marketing,
			automated_decision = define_purpose.automated_decision, recipient = define_purpose.recipient,
			personalised = is_personalised, legal_basis = define_purpose.legal_basis,
			defined_at = now()
		WHERE x.purpose = define_purpose.purpose;
	END IF;

	INSERT INTO purpose_history (purpose, version, description, tags, retention,
								 marketing, automated_decision, recipient, defined_at, personalised,
								 legal_basis)
	SELECT x.purpose, x.version, x.description, x.tags, x.retention,
		   x.marketing, x.automated_decision, x.recipient, x.defined_at, x.personalised,
		   x.legal_basis
	FROM purpose x WHERE x.purpose = define_purpose.purpose;

	PERFORM _policy_changed();
	RETURN new_version;
END
$$;
REVOKE ALL ON FUNCTION define_purpose(text, text, text[], interval, boolean, boolean, text, boolean, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION define_purpose(text, text, text[], interval, boolean, boolean, text, boolean, text) TO profile_guard_admin;

/*
 * record_assessment(purpose, assessor, conclusion): a personal-information
 * impact assessment of the purpose's current version (§9 c).
 */
CREATE FUNCTION record_assessment(purpose text, assessor text, conclusion text)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, profile_guard, pg_temp
AS $$
DECLARE
	pu	profile_guard.purpose := _get_purpose(record_assessment.purpose, true);
BEGIN
	PERFORM _refuse_retired(pu);
	IF record_assessment.assessor IS NULL OR record_assessment.conclusion IS NULL
	   OR btrim(record_assessment.assessor) = '' OR btrim(record_assessment.conclusion) = '' THEN
		RAISE EXCEPTION USING ERRCODE = CASE WHEN record_assessment.assessor IS NULL
												  OR record_assessment.conclusion IS NULL
											 THEN '22004' ELSE '22023' END,
			MESSAGE = 'assessor and conclusion must not be empty',
			DETAIL = format('The assessment of purpose "%s" needs an assessor and a conclusion.', pu.purpose),
			HINT = format('Call profile_guard.record_assessment(%L, ''who assessed'', ''what was concluded'').', pu.purpose);
	END IF;
	INSERT INTO assessment (purpose, purpose_version, assessor, conclusion)
	VALUES (pu.purpose, pu.version, record_assessment.assessor, record_assessment.conclusion);
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
DECLARE
	pu		profile_guard.purpose := _get_purpose(allow_purpose.purpose, true);
	grantee	name;			-- the role's name
BEGIN
	IF allow_purpose.role IS NULL THEN
		RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed',
			MESSAGE = 'role must not be null',
			HINT = format('Call profile_guard.allow_purpose(''role_name'', %L).', pu.purpose);
	END IF;
	PERFORM _refuse_retired(pu);
	SELECT r.rolname INTO grantee FROM pg_roles r WHERE r.oid = allow_purpose.role;
	IF grantee IS NULL THEN
		RAISE EXCEPTION USING ERRCODE = 'undefined_object',
			MESSAGE = format('role with OID %s does not exist', allow_purpose.role::oid),
			DETAIL = format('Purpose "%s" can be allowed only to an existing role.', pu.purpose),
			HINT = format('Call profile_guard.allow_purpose(''role_name'', %L) with an existing role.', pu.purpose);
	END IF;
	INSERT INTO purpose_role (role_name, purpose) VALUES (grantee, pu.purpose)
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
DECLARE
	pu		profile_guard.purpose := _get_purpose(disallow_purpose.purpose);
	grantee	name;			-- the role's name
BEGIN
	IF disallow_purpose.role IS NULL THEN
		RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed',
			MESSAGE = 'role must not be null',
			HINT = format('Call profile_guard.disallow_purpose(''role_name'', %L).', pu.purpose);
	END IF;
	SELECT r.rolname INTO grantee FROM pg_roles r WHERE r.oid = disallow_purpose.role;
	DELETE FROM purpose_role pr WHERE pr.role_name = grantee AND pr.purpose = pu.purpose;
	IF NOT FOUND THEN
		RAISE EXCEPTION USING ERRCODE = 'undefined_object',
			MESSAGE = 'role is not allowed the purpose',
			DETAIL = format('Role "%s" was not allowed purpose "%s".', grantee, pu.purpose),
			HINT = 'See profile_guard.purpose_role for the roles allowed each purpose.';
	END IF;
	PERFORM _policy_changed();
END
$$;
REVOKE ALL ON FUNCTION disallow_purpose(regrole, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION disallow_purpose(regrole, text) TO profile_guard_admin;
