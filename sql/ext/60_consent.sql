/*
 * 60_consent.sql — subjects and the consent ledger: registration, grants
 * and withdrawals (§7.1 b–d, §9 b, §9 h), tag blocks and the opt-out of
 * personalised purposes (§9 a 5–6, §9 d), erasure requests (§10).  The ledger is append-only.
 */

-- A registered subject, or an error (22004 for NULL, 42704 unknown).
CREATE FUNCTION _get_subject(p_subject text, p_for_update boolean DEFAULT false)
RETURNS subject
LANGUAGE plpgsql
SET search_path = pg_catalog, profile_guard, pg_temp
AS $$
DECLARE
	s	subject;
BEGIN
	IF p_subject IS NULL THEN
		RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed',
			MESSAGE = 'subject must not be null',
			HINT = 'Pass the subject identifier as text, e.g. ''42''.';
	END IF;
	IF p_for_update THEN
		SELECT * INTO s FROM subject x WHERE x.subject = p_subject FOR UPDATE;
	ELSE
		SELECT * INTO s FROM subject x WHERE x.subject = p_subject;
	END IF;
	IF NOT FOUND THEN
		RAISE EXCEPTION USING ERRCODE = 'undefined_object',
			MESSAGE = 'subject is not registered',
			DETAIL = format('Subject "%s" is not registered.', left(p_subject, 200)),
			HINT = format('Call profile_guard.register_subject(%L) first.', left(p_subject, 200));
	END IF;
	RETURN s;
END
$$;
REVOKE ALL ON FUNCTION _get_subject(text, boolean) FROM PUBLIC;

-- A defined tag by exact name, or an error.
CREATE FUNCTION _require_tag(p_tag text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, profile_guard, pg_temp
AS $$
BEGIN
	IF p_tag IS NULL THEN
		RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed',
			MESSAGE = 'tag must not be null',
			HINT = 'Pass a tag name such as ''interest.sports''.';
	END IF;
	IF NOT EXISTS (SELECT 1 FROM tag t WHERE t.tag = p_tag) THEN
		RAISE EXCEPTION USING ERRCODE = 'undefined_object',
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
 * one: forgetting a birth date would lift the protection of minors.  A new
 * subject gets its data key here when a master key is configured.
 */
CREATE FUNCTION register_subject(subject text, birth_date date DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, profile_guard, pg_temp
AS $$
DECLARE
	old			record;
BEGIN
	IF register_subject.subject IS NULL THEN
		RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed',
			MESSAGE = 'subject must not be null',
			HINT = 'Pass the subject identifier as text, e.g. profile_guard.register_subject(''42'').';
	END IF;
	IF length(register_subject.subject) NOT BETWEEN 1 AND 200 THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = 'invalid subject identifier',
			DETAIL = 'A subject identifier is 1 to 200 characters long.',
			HINT = 'Pass the value of the guarded tables'' subject column as text.';
	END IF;
	-- the subjects of anonymised rows, which the sweep never erases
	IF register_subject.subject ~ '^-[0-9]+$' OR starts_with(register_subject.subject, 'anonymous:') THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = 'subject identifier is reserved',
			DETAIL = format('Subject "%s": negative integers and identifiers starting with "anonymous:" name the rows that erasure anonymised, which are never swept, so no erasure could reach this subject''s rows.',
							left(register_subject.subject, 120)),
			HINT = 'Identify the person with a non-negative integer or another text.';
	END IF;
	-- in the future: later than today anywhere on Earth (UTC+14), so that a
	-- birth registered on its first day is accepted in every time zone
	IF register_subject.birth_date > CAST(pg_catalog.timezone('Etc/GMT-14', pg_catalog.transaction_timestamp())
					  AS pg_catalog.date) THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = 'birth date is in the future',
			DETAIL = format('The birth date given for subject "%s" is later than today.', register_subject.subject),
			HINT = 'Pass the subject''s actual birth date, or NULL when unknown.';
	END IF;

	SELECT * INTO old FROM subject x WHERE x.subject = register_subject.subject FOR UPDATE;
	IF NOT FOUND THEN
		INSERT INTO subject (subject, birth_date) VALUES (register_subject.subject, register_subject.birth_date);
		INSERT INTO subject_event (subject, event, recorded_by)
		VALUES (register_subject.subject, 'registered', session_user);
		-- its data key now, so that its first sensitive value finds one
		PERFORM _create_data_keys(ARRAY[register_subject.subject], true);
	ELSIF register_subject.birth_date IS NOT NULL
		  AND old.birth_date IS DISTINCT FROM register_subject.birth_date THEN
		UPDATE subject x SET birth_date = register_subject.birth_date WHERE x.subject = register_subject.subject;
		INSERT INTO subject_event (subject, event, recorded_by)
		VALUES (register_subject.subject, 'birth_date', session_user);
	ELSE
		RETURN;		-- nothing changes
	END IF;
	PERFORM _subject_changed(register_subject.subject);
END
$$;
REVOKE ALL ON FUNCTION register_subject(text, date) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION register_subject(text, date) TO profile_guard_consent, profile_guard_admin;

/*
 * grant_consent(subject, purpose, tags, separate, guardian, expires_at)
 * RETURNS consent_id: the subject consents to the purpose's CURRENT version
 * using the listed tags (names or "prefix.*").
 */
CREATE FUNCTION grant_consent(subject text, purpose text, tags text[],
							  separate boolean DEFAULT false, guardian boolean DEFAULT false,
							  expires_at timestamptz DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, profile_guard, pg_temp
AS $$
DECLARE
	s			profile_guard.subject := _get_subject(grant_consent.subject);
	pu			profile_guard.purpose := _get_purpose(grant_consent.purpose);
	tag_list	text[];			-- tags, checked, distinct and sorted
	id			bigint;
BEGIN
	PERFORM _refuse_retired(pu);
	IF grant_consent.tags IS NULL THEN
		RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed',
			MESSAGE = 'tags must not be null',
			DETAIL = format('The consent of subject "%s" to purpose "%s" lists no tags.', s.subject, pu.purpose),
			HINT = format('List the tags consented to, e.g. profile_guard.grant_consent(%L, %L, ARRAY[''interest.*'']).',
						  s.subject, pu.purpose);
	END IF;
	IF grant_consent.separate IS NULL OR grant_consent.guardian IS NULL THEN
		RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed',
			MESSAGE = 'separate and guardian must not be null',
			DETAIL = format('The consent of subject "%s" to purpose "%s" must say true or false.', s.subject, pu.purpose),
			HINT = 'Omit them for false.';
	END IF;
	IF grant_consent.expires_at IS NOT NULL AND grant_consent.expires_at <= now() THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = 'consent expiry must be in the future',
			DETAIL = format('The consent of subject "%s" to purpose "%s" would already have expired.', s.subject, pu.purpose),
			HINT = 'Pass a later expires_at, or NULL for a consent without end.';
	END IF;
	tag_list := _check_tag_list(grant_consent.tags,
								format('the consent of subject "%s" to purpose "%s"', s.subject, pu.purpose));

	-- the purpose row is locked so that its version cannot change under us
	PERFORM 1 FROM profile_guard.purpose x WHERE x.purpose = pu.purpose FOR SHARE;
	INSERT INTO consent (subject, purpose, purpose_version, action, tags, separate,
						 guardian, expires_at, recorded_by)
	SELECT s.subject, x.purpose, x.version, 'grant', tag_list, grant_consent.separate,
		   grant_consent.guardian, grant_consent.expires_at, session_user
	FROM profile_guard.purpose x WHERE x.purpose = pu.purpose
	RETURNING consent_id INTO id;
	PERFORM _subject_changed(s.subject);
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
CREATE FUNCTION withdraw_consent(subject text, purpose text, tags text[] DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, profile_guard, pg_temp
AS $$
DECLARE
	s			profile_guard.subject := _get_subject(withdraw_consent.subject);
	pu			profile_guard.purpose := _get_purpose(withdraw_consent.purpose);
	tag_list	text[];			-- tags, checked, distinct and sorted
	id			bigint;
BEGIN
	tag_list := _check_tag_list(withdraw_consent.tags,
								format('the withdrawal of subject "%s" from purpose "%s"', s.subject, pu.purpose));
	PERFORM 1 FROM profile_guard.purpose x WHERE x.purpose = pu.purpose FOR SHARE;
	INSERT INTO consent (subject, purpose, purpose_version, action, tags, recorded_by)
	SELECT s.subject, x.purpose, x.version, 'withdraw', tag_list, session_user
	FROM profile_guard.purpose x WHERE x.purpose = pu.purpose
	RETURNING consent_id INTO id;
	PERFORM _subject_changed(s.subject);
	RETURN id;
END
$$;
REVOKE ALL ON FUNCTION withdraw_consent(text, text, text[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION withdraw_consent(text, text, text[]) TO profile_guard_consent, profile_guard_admin;

/*
 * block_tag(subject, tag), unblock_tag(subject, tag): the subject stops (or
 * resumes) the use of one tag for every purpose.  Repeating is a no-op.
 */
CREATE FUNCTION block_tag(subject text, tag text)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, profile_guard, pg_temp
AS $$
DECLARE
	s		profile_guard.subject := _get_subject(block_tag.subject, true);
BEGIN
	PERFORM _require_tag(block_tag.tag);
	INSERT INTO tag_block (subject, tag) VALUES (s.subject, block_tag.tag) ON CONFLICT DO NOTHING;
	IF FOUND THEN
		INSERT INTO subject_event (subject, event, tag, recorded_by)
		VALUES (s.subject, 'block', block_tag.tag, session_user);
		PERFORM _subject_changed(s.subject);
	END IF;
END
$$;
REVOKE ALL ON FUNCTION block_tag(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION block_tag(text, text) TO profile_guard_consent, profile_guard_admin;

CREATE FUNCTION unblock_tag(subject text, tag text)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, profile_guard, pg_temp
AS $$
DECLARE
	s		profile_guard.subject := _get_subject(unblock_tag.subject, true);
BEGIN
	PERFORM _require_tag(unblock_tag.tag);
	DELETE FROM tag_block b WHERE b.subject = s.subject AND b.tag = unblock_tag.tag;
	IF FOUND THEN
		INSERT INTO subject_event (subject, event, tag, recorded_by)
		VALUES (s.subject, 'unblock', unblock_tag.tag, session_user);
		PERFORM _subject_changed(s.subject);
	END IF;
END
$$;
REVOKE ALL ON FUNCTION unblock_tag(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION unblock_tag(text, text) TO profile_guard_consent, profile_guard_admin;

/*
 * opt_out(subject, erase), opt_in(subject): every personalised purpose
 * (information push, personalised display, targeted ads; every marketing
 * purpose is one) off / on for the subject at once (§9 a 5–6, §9 d).
 * Repeating is a no-op.  With erase, the tags the subject holds for
 * personalised purposes are also erased now, except those that a purpose
 * in force that is not personalised still keeps for the subject (its use
 * effective, or suspended as the sweep counts it: _erasure_suspended()).
 * They are erased as erase_tag() erases (_erase_subject_tag(), logged with
 * reason 'opt_out'), but not blocked: after opt_in() they may be collected
 * again.
 */
CREATE FUNCTION _set_opted_out(subject text, opted_out boolean)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, profile_guard, pg_temp
AS $$
DECLARE
	s	profile_guard.subject := _get_subject(subject, true);
BEGIN
	IF s.opted_out IS DISTINCT FROM opted_out THEN
		UPDATE profile_guard.subject x SET opted_out = _set_opted_out.opted_out WHERE x.subject = s.subject;
		INSERT INTO subject_event (subject, event, recorded_by)
		VALUES (s.subject, CASE WHEN opted_out THEN 'opt_out' ELSE 'opt_in' END, session_user);
		PERFORM _subject_changed(s.subject);
	END IF;
END
$$;
REVOKE ALL ON FUNCTION _set_opted_out(text, boolean) FROM PUBLIC;

CREATE FUNCTION opt_out(subject text, erase boolean DEFAULT false)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, profile_guard, pg_temp
AS $$
DECLARE
	s	profile_guard.subject := _get_subject(opt_out.subject, true);
	t	text;
BEGIN
	IF opt_out.erase IS NULL THEN
		RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed',
			MESSAGE = 'erase must not be null',
			DETAIL = format('The opt-out of subject "%s" needs erase set to true or false.', s.subject),
			HINT = format('Call profile_guard.opt_out(%L), or profile_guard.opt_out(%L, erase => true) to erase the tags held for personalised purposes too.',
						  s.subject, s.subject);
	END IF;
	IF opt_out.erase THEN
		PERFORM _refuse_held(s.subject, 'opt_out(erase => true)');
	END IF;
	PERFORM _set_opted_out(s.subject, true);
	IF NOT opt_out.erase THEN
		RETURN;
	END IF;
	FOR t IN
		SELECT x.tag
		FROM purpose pu
		CROSS JOIN LATERAL tag_state(pu.purpose, s.subject, false) x
		WHERE pu.personalised
		EXCEPT
		SELECT x.tag
		FROM purpose pu
		CROSS JOIN LATERAL tag_state(pu.purpose, s.subject, false) x
		WHERE NOT pu.personalised AND pu.retired_at IS NULL
		  AND (x.effective OR _erasure_suspended(x.reason))
		ORDER BY 1
	LOOP
		PERFORM _erase_subject_tag(s.subject, t, 'opt_out');
	END LOOP;
END
$$;
REVOKE ALL ON FUNCTION opt_out(text, boolean) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION opt_out(text, boolean) TO profile_guard_consent, profile_guard_admin;

CREATE FUNCTION opt_in(subject text)
RETURNS void
LANGUAGE sql SECURITY DEFINER
SET search_path = pg_catalog, profile_guard, pg_temp
AS $$ SELECT profile_guard._set_opted_out(subject, false) $$;
REVOKE ALL ON FUNCTION opt_in(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION opt_in(text) TO profile_guard_consent, profile_guard_admin;

/*
 * request_erasure(subject) RETURNS request_id: the subject asks for erasure
 * (§10).  Use stops at once (tag_state: "erasure requested"); the physical
 * erasure is done by the sweep.  While a request is pending, asking again
 * returns the pending request.
 */
CREATE FUNCTION request_erasure(subject text)
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, profile_guard, pg_temp
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
	PERFORM _subject_changed(s.subject);
	RETURN id;
END
$$;
REVOKE ALL ON FUNCTION request_erasure(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION request_erasure(text) TO profile_guard_consent, profile_guard_admin;

/*
 * The consent ledger is append-only: updates, deletes and truncation are
 * refused, except while this backend's sweep turns consents of a subject
 * who asked for erasure into tombstones, and deletes them once the subject
 * is forgotten (a flag only src/erasure.c sets; _erasure_in_progress() is
 * defined in 80_erasure.sql).
 */
CREATE FUNCTION _consent_append_only()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, profile_guard, pg_temp
AS $$
BEGIN
	IF TG_OP IN ('UPDATE', 'DELETE') AND profile_guard._erasure_in_progress() THEN
		RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
	END IF;
	RAISE EXCEPTION USING ERRCODE = 'object_not_in_prerequisite_state',
		MESSAGE = 'the consent ledger is append-only',
		DETAIL = format('%s on profile_guard.consent is not allowed; a withdrawal is a new row.', TG_OP),
		HINT = 'Call profile_guard.withdraw_consent(subject, purpose, tags) or profile_guard.request_erasure(subject).';
END
$$;
REVOKE ALL ON FUNCTION _consent_append_only() FROM PUBLIC;

CREATE TRIGGER consent_append_only
	BEFORE UPDATE OR DELETE ON consent
	FOR EACH ROW EXECUTE FUNCTION _consent_append_only();
CREATE TRIGGER consent_no_truncate
	BEFORE TRUNCATE ON consent
	FOR EACH STATEMENT EXECUTE FUNCTION _consent_append_only();
