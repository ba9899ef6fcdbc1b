/*
 * 65_legal_hold.sql — legal holds (rule 9b, §7.4: "法律、法规另有规定的除外";
 * PIPL art. 47): a subject's data that a law requires to be kept is kept
 * but not used.  While a hold is active (not released, and until NULL or
 * still ahead) no purpose except a legal_obligation one reads the subject's
 * rows and tags (tag_state: "legal hold"; the consent caches from the next
 * statement, and at until by themselves), and the sweep erases nothing of
 * the subject: what falls due meanwhile is erased by the first sweep after
 * the hold ends (docs/erasure.md).  Holds are placed and released by the
 * roles that administer the catalog (profile_guard_admin).
 */

-- Is the subject under an active legal hold now?
CREATE FUNCTION _held(p_subject text)
RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog, profile_guard, pg_temp
AS $$
	SELECT EXISTS (SELECT 1 FROM legal_hold h
				   WHERE h.subject = p_subject AND h.released_at IS NULL
					 AND (h.until IS NULL OR h.until > statement_timestamp()))
$$;
REVOKE ALL ON FUNCTION _held(text) FROM PUBLIC;

-- Refuse what would erase a held subject's data at once (erase_tag(),
-- opt_out(erase => true)); 'what' names the call for the message.
CREATE FUNCTION _refuse_held(p_subject text, what text)
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, profile_guard, pg_temp
AS $$
BEGIN
	IF _held(p_subject) THEN
		RAISE EXCEPTION USING ERRCODE = 'object_not_in_prerequisite_state',
			MESSAGE = 'subject is under a legal hold',
			DETAIL = format('Subject "%s" is under a legal hold: its data is kept until the hold ends, so %s cannot erase it now.',
							left(p_subject, 200), what),
			HINT = 'Stop its use now with profile_guard.block_tag() or profile_guard.opt_out(); erase once profile_guard.release_legal_hold() has ended the hold.';
	END IF;
END
$$;
REVOKE ALL ON FUNCTION _refuse_held(text, text) FROM PUBLIC;

/*
 * place_legal_hold(subject, basis, until) RETURNS the hold's id: the
 * subject's data is kept and not used (but by legal_obligation purposes)
 * until release_legal_hold() or, when given, until.  basis says which law
 * or proceeding requires it.  Placing a second hold on a held subject is
 * allowed: the subject stays held until the last one ends.
 */
CREATE FUNCTION place_legal_hold(subject text, basis text, until timestamptz DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, profile_guard, pg_temp
AS $$
DECLARE
	s	profile_guard.subject := _get_subject(place_legal_hold.subject, true);
	id	bigint;
BEGIN
	IF place_legal_hold.basis IS NULL THEN
		RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed',
			MESSAGE = 'basis must not be null',
			DETAIL = format('The legal hold of subject "%s" needs a basis.', s.subject),
			HINT = format('Call profile_guard.place_legal_hold(%L, ''the law or proceeding that requires the data kept'').', s.subject);
	END IF;
	IF btrim(place_legal_hold.basis) = '' OR length(place_legal_hold.basis) > 1000 THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = 'basis must be 1 to 1000 characters and not blank',
			DETAIL = format('The legal hold of subject "%s" has an empty or too long basis.', s.subject),
			HINT = 'Name the law, regulation or proceeding that requires the data kept.';
	END IF;
	IF place_legal_hold.until IS NOT NULL AND place_legal_hold.until <= now() THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = 'hold end must be in the future',
			DETAIL = format('The legal hold of subject "%s" would end before it is placed.', s.subject),
			HINT = 'Pass a later until, or NULL for a hold that lasts until profile_guard.release_legal_hold().';
	END IF;
	INSERT INTO legal_hold (subject, basis, until, placed_by)
	VALUES (s.subject, place_legal_hold.basis, place_legal_hold.until, session_user)
	RETURNING hold_id INTO id;
	PERFORM _subject_changed(s.subject);
	RETURN id;
END
$$;
REVOKE ALL ON FUNCTION place_legal_hold(text, text, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION place_legal_hold(text, text, timestamptz) TO profile_guard_admin;

/*
 * release_legal_hold(hold): the hold ends now.  The subject's data is used
 * again as its consents allow (unless another hold is active), and what
 * fell due for erasure during the hold is erased by the next sweep.
 */
CREATE FUNCTION release_legal_hold(hold bigint)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, profile_guard, pg_temp
AS $$
DECLARE
	h	legal_hold;
BEGIN
	IF release_legal_hold.hold IS NULL THEN
		RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed',
			MESSAGE = 'hold must not be null',
			HINT = 'Pass the id place_legal_hold() returned; see profile_guard.legal_hold.';
	END IF;
	SELECT * INTO h FROM legal_hold x WHERE x.hold_id = release_legal_hold.hold FOR UPDATE;
	IF NOT FOUND THEN
		RAISE EXCEPTION USING ERRCODE = 'undefined_object',
			MESSAGE = 'legal hold does not exist',
			DETAIL = format('No legal hold has id %s.', release_legal_hold.hold),
			HINT = 'See profile_guard.legal_hold for the holds placed.';
	END IF;
	IF h.released_at IS NOT NULL THEN
		RAISE EXCEPTION USING ERRCODE = 'object_not_in_prerequisite_state',
			MESSAGE = 'legal hold is already released',
			DETAIL = format('Legal hold %s of subject "%s" was released before.', h.hold_id, h.subject),
			HINT = 'See profile_guard.legal_hold for the holds still active.';
	END IF;
	UPDATE legal_hold x SET released_at = now(), released_by = session_user
	WHERE x.hold_id = h.hold_id;
	PERFORM _subject_changed(h.subject);
END
$$;
REVOKE ALL ON FUNCTION release_legal_hold(bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION release_legal_hold(bigint) TO profile_guard_admin;
