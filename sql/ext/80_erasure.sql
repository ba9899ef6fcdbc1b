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
 * Nothing of a subject under an active legal hold is due (rule 9b): the
 * first sweep that meets a hold logs it once (reason legal_hold, action
 * defer), and what fell due meanwhile is erased by the first sweep after
 * the hold ends.
 */

-- the ledger: one row per batch, relation, tag, reason, action (and subject
-- for the subject-specific reasons, as a keyed hash only)
CREATE TABLE erasure_log (
	log_id		bigserial PRIMARY KEY,
	erased_at	timestamptz NOT NULL DEFAULT clock_timestamp(),
	relation	text NOT NULL,
	tag			text,
	reason		text NOT NULL CHECK (reason IN ('retired', 'retention', 'withdrawn', 'expired',
											   'request', 'service_end', 'opt_out', 'erase_tag',
											   'stopped_consent', 'legal_hold')),
	action		text NOT NULL CHECK (action IN ('delete', 'null_cell', 'anonymise',
											   'tombstone', 'destroy_key', 'forget', 'defer')),
	rows		bigint NOT NULL CHECK (rows >= 0),	-- 0: erase_tag() found nothing
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

-- C: erase the stored values of one tag of one subject now, in every
-- table that can hold it, and log them with the reason (src/erasure.c);
-- for erase_tag() and opt_out(), which check their arguments.  Returns the
-- rows erased.
CREATE FUNCTION _erase_subject_tag(subject text, tag text, reason text)
RETURNS bigint
AS 'MODULE_PATHNAME', 'profile_guard_erase_subject_tag'
LANGUAGE C STRICT VOLATILE;
REVOKE ALL ON FUNCTION _erase_subject_tag(text, text, text) FROM PUBLIC;

-- the ledger is append-only, for the sweep too
CREATE FUNCTION _erasure_log_append_only()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, profile_guard, pg_temp
AS $$
BEGIN
	RAISE EXCEPTION USING ERRCODE = 'object_not_in_prerequisite_state',
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
					  'tag outside the purpose', 'not consented', 'legal hold',
					  'sensitive tag not named by the purpose')
$$;

/*
 * _stopped_consent_grace(): profile_guard.stopped_consent_grace as an
 * interval, NULL when it is -1 (tags held by stopped consents are kept).
 */
CREATE FUNCTION _stopped_consent_grace()
RETURNS interval
LANGUAGE sql STABLE
SET search_path = pg_catalog, profile_guard, pg_temp
AS $$
	SELECT CASE WHEN s.setting::bigint >= 0 THEN justify_hours(make_interval(secs => s.setting::bigint)) END
	FROM pg_settings s WHERE s.name = 'profile_guard.stopped_consent_grace'
$$;
REVOKE ALL ON FUNCTION _stopped_consent_grace() FROM PUBLIC;

/*
 * _consent_stopped_at(purpose, subject, tag, reason): when the subject's
 * consent to the purpose for the tag stopped counting, from the catalog's
 * history, for the two suspensions that end only by the subject's action:
 * 'outdated version' — the purpose's first version after the newest one
 * the subject consented to for the tag was defined; 'opted out' — the
 * subject's last opt-out.  NULL for any other reason.
 */
CREATE FUNCTION _consent_stopped_at(p_purpose text, p_subject text, p_tag text, p_reason text)
RETURNS timestamptz
LANGUAGE sql STABLE
SET search_path = pg_catalog, profile_guard, pg_temp
AS $$
	SELECT CASE p_reason
		WHEN 'outdated version' THEN
			(SELECT min(ph.defined_at) FROM purpose_history ph
			 WHERE ph.purpose = p_purpose
			   AND ph.version > (SELECT max(c.purpose_version) FROM consent c
								 WHERE c.subject = p_subject AND c.purpose = p_purpose
								   AND c.action = 'grant' AND tag_matches(c.tags, p_tag)))
		WHEN 'opted out' THEN
			(SELECT max(e.recorded_at) FROM subject_event e
			 WHERE e.subject = p_subject AND e.event = 'opt_out')
	END
$$;
REVOKE ALL ON FUNCTION _consent_stopped_at(text, text, text, text) FROM PUBLIC;

/*
 * _erasure_prepare(sweep_start, all_events): called by the sweep when it
 * starts, in its own transaction; sweep_start is the sweep's now(), and
 * all_events its full (every consent event is looked at, not only those
 * since the last sweep).  Carries out the subject-level part of pending
 * erasure requests (data key destroyed, consents tombstoned, both logged)
 * and fills the work tables.  Returns what it did, as the sweep does.
 * Idempotent: a sweep interrupted by a crash calls it again and finds
 * nothing more to do for the requests.
 */
CREATE FUNCTION _erasure_prepare(sweep_start timestamptz, all_events boolean)
RETURNS TABLE (relation text, tag text, reason text, action text, rows bigint)
LANGUAGE plpgsql
SET search_path = pg_catalog, profile_guard, pg_temp
AS $$
DECLARE
	st			erasure_state;
	since		timestamptz;
	grace		interval := _stopped_consent_grace();
	r			record;
	n			bigint;
	h			text;
BEGIN
	INSERT INTO erasure_state DEFAULT VALUES ON CONFLICT DO NOTHING;
	SELECT * INTO st FROM erasure_state;
	-- events from one day before the last complete sweep's start are looked
	-- at again: a transaction that committed late is not missed
	since := CASE WHEN all_events OR st.swept_from IS NULL THEN '-infinity'
				  ELSE st.swept_from - interval '1 day' END;

	/*
	 * The entries that subjects forgotten by earlier sweeps left in the log
	 * of changed subjects (_forget_subject()): every cache that read the log
	 * since has dropped what it knew of them.  One that has not read it
	 * since finds the marker '' (never a subject) stamped with the newest
	 * such transaction it did not see, and reads all its answers again.
	 */
	WITH f AS (
		UPDATE erasure_request q SET forgotten_by = NULL
		FROM (SELECT o.request_id, o.forgotten_by FROM erasure_request o
			  WHERE o.forgotten_by IS NOT NULL) o
		WHERE q.request_id = o.request_id
		RETURNING o.forgotten_by
	), d AS (
		DELETE FROM subject_change c
		WHERE c.changed_by IN (SELECT f.forgotten_by FROM f)
		  AND c.subject <> ''
		  AND NOT EXISTS (SELECT 1 FROM subject s WHERE s.subject = c.subject)
		RETURNING c.changed_by
	)
	INSERT INTO subject_change AS c (subject, changed_by)
	SELECT '', d.changed_by FROM d ORDER BY d.changed_by DESC LIMIT 1
	ON CONFLICT (subject) DO UPDATE SET changed_by = excluded.changed_by
	WHERE c.changed_by < excluded.changed_by;

	-- small tables: DELETE is cheaper than TRUNCATE's new files
	DELETE FROM _erasure_due;
	DELETE FROM _erasure_keep;
	DELETE FROM _erasure_cutoff;

	-- legal holds (rule 9b): nothing of a held subject is erased; the
	-- ledger says so once per hold
	FOR r IN SELECT h.hold_id, h.subject FROM legal_hold h
			 WHERE h.released_at IS NULL AND (h.until IS NULL OR h.until > sweep_start)
			   AND h.deferral_logged_at IS NULL
			 ORDER BY h.hold_id
	LOOP
		INSERT INTO erasure_log (relation, tag, reason, action, rows, subject_hash)
		VALUES ('profile_guard.legal_hold', NULL, 'legal_hold', 'defer', 1, _subject_hash(r.subject));
		UPDATE legal_hold h SET deferral_logged_at = sweep_start WHERE h.hold_id = r.hold_id;
		relation := 'profile_guard.legal_hold'; tag := NULL; reason := 'legal_hold';
		action := 'defer'; rows := 1;
		RETURN NEXT;
	END LOOP;

	-- erasure requests: everything of the subject (a held subject's wait
	-- for the end of the hold)
	FOR r IN SELECT s.subject FROM subject s
			 WHERE s.erasure_requested_at IS NOT NULL
			   AND EXISTS (SELECT 1 FROM erasure_request q
						   WHERE q.subject = s.subject AND q.completed_at IS NULL)
			   AND NOT EXISTS (SELECT 1 FROM legal_hold h
							   WHERE h.subject = s.subject AND h.released_at IS NULL
								 AND (h.until IS NULL OR h.until > sweep_start))
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
			   erased_at = sweep_start
		 WHERE c.subject = r.subject AND c.erased_at IS NULL;
		GET DIAGNOSTICS n = ROW_COUNT;
		IF n > 0 THEN
			PERFORM _subject_changed(r.subject);
			INSERT INTO erasure_log (relation, tag, reason, action, rows, subject_hash)
			VALUES ('profile_guard.consent', NULL, 'request', 'tombstone', n, h);
			relation := 'profile_guard.consent'; tag := NULL; reason := 'request';
			action := 'tombstone'; rows := n;
			RETURN NEXT;
		END IF;
		INSERT INTO _erasure_due VALUES (r.subject, '*', 'request');
	END LOOP;

	-- withdrawn, expired, retired: the candidates are subjects with such an
	-- event since the last sweep, or whose legal hold ended since (and
	-- none is active); their state for every purpose they have consent
	-- events for, and every purpose not based on consent, decides
	WITH cand AS (
		SELECT DISTINCT e.subject
		FROM (SELECT c.subject FROM consent c
			  WHERE c.action = 'withdraw' AND c.recorded_at >= since
			  UNION ALL
			  SELECT c.subject FROM consent c
			  WHERE c.expires_at <= sweep_start AND c.expires_at >= since
			  UNION ALL
			  SELECT c.subject FROM consent c
			  JOIN purpose pu ON pu.purpose = c.purpose
			  WHERE pu.retired_at >= since
			  -- the grace of a stopped consent ended since: a version it
			  -- was not renewed for, an opt-out
			  UNION ALL
			  SELECT c.subject FROM consent c
			  JOIN purpose_history ph ON ph.purpose = c.purpose AND ph.version > c.purpose_version
			  WHERE grace IS NOT NULL AND c.action = 'grant'
				AND ph.defined_at + grace <= sweep_start AND ph.defined_at + grace >= since
			  UNION ALL
			  SELECT e.subject FROM subject_event e
			  WHERE grace IS NOT NULL AND e.event = 'opt_out'
				AND e.recorded_at + grace <= sweep_start AND e.recorded_at + grace >= since
			  UNION ALL
			  SELECT h.subject FROM legal_hold h
			  WHERE h.released_at >= since
				 OR (h.until >= since AND h.until <= sweep_start)) AS e
		JOIN subject s ON s.subject = e.subject
		WHERE s.erasure_requested_at IS NULL
		  AND NOT EXISTS (SELECT 1 FROM legal_hold h
						  WHERE h.subject = e.subject AND h.released_at IS NULL
							AND (h.until IS NULL OR h.until > sweep_start))
	),
	sp AS (
		SELECT c.purpose, c.subject
		FROM consent c JOIN cand USING (subject)
		GROUP BY c.purpose, c.subject
		UNION
		SELECT pu.purpose, cand.subject
		FROM purpose pu CROSS JOIN cand
		WHERE pu.legal_basis <> 'consent'
	),
	-- many candidates for one purpose (a retirement): one set-based call
	big AS (
		SELECT sp.purpose FROM sp GROUP BY sp.purpose HAVING count(*) > 200
	),
	state0 AS (
		SELECT sp.purpose, x.subject, x.tag, x.effective, x.reason, pu.retired_at IS NOT NULL AS retired
		FROM sp
		JOIN purpose pu ON pu.purpose = sp.purpose
		CROSS JOIN LATERAL tag_state(sp.purpose, sp.subject, false) x
		WHERE sp.purpose NOT IN (SELECT big.purpose FROM big)
		UNION ALL
		SELECT big.purpose, x.subject, x.tag, x.effective, x.reason, pu.retired_at IS NOT NULL
		FROM big
		JOIN purpose pu ON pu.purpose = big.purpose
		CROSS JOIN LATERAL tag_state(big.purpose, NULL, false) x
		WHERE x.subject IN (SELECT cand.subject FROM cand)
	),
	-- a consent that stopped counting (outdated version, opted out) keeps
	-- its tags for the grace only
	state AS (
		SELECT s0.*,
			   coalesce(grace IS NOT NULL AND s0.reason IN ('outdated version', 'opted out')
						AND _consent_stopped_at(s0.purpose, s0.subject, s0.tag, s0.reason) + grace
							<= sweep_start, false) AS stopped
		FROM state0 s0
	),
	-- per subject and tag: ended (withdrawn, expired, retired) unless a
	-- purpose keeps it; stopped past the grace unless a purpose whose
	-- consent covers the tag keeps it
	judged AS (
		SELECT s.subject, s.tag,
			   bool_or(s.reason IN ('withdrawn', 'expired', 'purpose retired'))
			   AND NOT bool_or(NOT s.retired AND NOT s.stopped
							   AND (s.effective OR _erasure_suspended(s.reason))) AS ended,
			   bool_or(s.stopped)
			   AND NOT bool_or(NOT s.retired AND NOT s.stopped
							   AND (s.effective OR (_erasure_suspended(s.reason)
													AND s.reason NOT IN ('not consented', 'tag outside the purpose'))))
			   AS stopped,
			   bool_or(s.reason = 'withdrawn') AS withdrawn,
			   bool_or(s.reason = 'expired') AS expired
		FROM state s
		GROUP BY s.subject, s.tag
	)
	INSERT INTO _erasure_due (subject, tag, reason)
	SELECT j.subject, j.tag,
		   CASE WHEN NOT j.ended THEN 'stopped_consent'
				WHEN j.withdrawn THEN 'withdrawn'
				WHEN j.expired THEN 'expired'
				WHEN st.service_ended_at IS NOT NULL THEN 'service_end'
				ELSE 'retired' END
	FROM judged j
	WHERE j.ended OR j.stopped;

	-- retention: per tag, the shortest retention of the purposes in force
	-- that list it; a row collected before now minus that is due unless a
	-- purpose with a longer (or no) retention keeps the tag for its subject.
	-- Shortest and longest on the calendar of the sweep: the latest and the
	-- earliest cutoff (comparing the intervals would count a month as 30
	-- days)
	INSERT INTO _erasure_cutoff (tag, cutoff)
	SELECT t.tag, max(sweep_start - pu.retention)
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
		  AND (pu.retention IS NULL OR sweep_start - pu.retention < c.cutoff)
	)
	INSERT INTO _erasure_keep (subject, tag, keep_for)
	SELECT x.subject, x.tag,
		   CASE WHEN bool_or(l.retention IS NULL) THEN NULL
				ELSE (array_agg(l.retention ORDER BY sweep_start - l.retention))[1] END
	FROM (SELECT DISTINCT longer.purpose FROM longer) lp
	CROSS JOIN LATERAL tag_state(lp.purpose, NULL, false) x
	JOIN longer l ON l.purpose = lp.purpose AND l.tag = x.tag
	WHERE x.effective OR _erasure_suspended(x.reason)
	GROUP BY x.subject, x.tag;

	-- a held subject keeps every tag while the hold lasts
	INSERT INTO _erasure_keep (subject, tag, keep_for)
	SELECT DISTINCT h.subject, c.tag, NULL::interval
	FROM legal_hold h CROSS JOIN _erasure_cutoff c
	WHERE h.released_at IS NULL AND (h.until IS NULL OR h.until > sweep_start)
	ON CONFLICT ON CONSTRAINT _erasure_keep_pkey DO UPDATE SET keep_for = NULL;
END
$$;
REVOKE ALL ON FUNCTION _erasure_prepare(timestamptz, boolean) FROM PUBLIC;

/*
 * _merge_collection_stamps() RETURNS the pairs merged: the collection
 * stamps the write path appended to collection_stamp_log
 * (src/collection_stamp.c) are merged into collection_stamp, the latest
 * collected_at of each (table, subject, tag) kept; the pairs of tables no
 * longer guarded with stamps are dropped.  Only the log rows this
 * statement reads are deleted: a transaction that commits meanwhile keeps
 * its rows for the next merge.  Called by the sweep before it computes
 * what is due, by erase_tag() and when a subject is forgotten (so that no
 * raw identifier of it stays in the log), and when a stamped table goes
 * under a guarded tree.
 */
CREATE FUNCTION _merge_collection_stamps()
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, profile_guard, pg_temp
AS $$
DECLARE
	n	bigint;
BEGIN
	WITH taken AS (
		DELETE FROM collection_stamp_log l
		RETURNING l.relid, l.tag, l.collected_at, l.subjects
	), pairs AS (
		SELECT t.relid, u.subject, t.tag, max(t.collected_at) AS collected_at
		FROM taken t CROSS JOIN LATERAL unnest(t.subjects) AS u(subject)
		WHERE EXISTS (SELECT 1 FROM guarded_table g
					  WHERE g.relid = t.relid AND g.collected_at_column IS NULL AND g.stamp_collection)
		GROUP BY t.relid, u.subject, t.tag
	)
	INSERT INTO collection_stamp AS s (relid, subject, tag, collected_at)
	SELECT p.relid, p.subject, p.tag, p.collected_at FROM pairs p
	ON CONFLICT (relid, subject, tag)
	DO UPDATE SET collected_at = greatest(s.collected_at, excluded.collected_at);
	GET DIAGNOSTICS n = ROW_COUNT;
	RETURN n;
END
$$;
REVOKE ALL ON FUNCTION _merge_collection_stamps() FROM PUBLIC;

/*
 * _forget_subject(subject): the catalog forgets a subject whose erasure
 * request was carried out (rule 12, §7.4 d, §10).  Its consents (already
 * tombstones), blocks, events, ended legal holds, the row of its destroyed
 * data key and its registration (birth date, opt-out, the request's mark)
 * are deleted; what was provided of it to recipients is kept under the hash
 * (the log merged first if it still names the subject); its
 * erasure requests keep only the keyed hash of the erasure log; the log
 * records the forgetting under that hash.  Every cache of consent answers
 * refreshes the subject from its next statement (_subject_changed): it is
 * then unknown, and a later registration of the same identifier starts a
 * new record.  Called by _erasure_finish(), in the transaction that marks
 * the request complete, while the sweep's flag lets the consent ledger
 * change.
 */
CREATE FUNCTION _forget_subject(p_subject text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, profile_guard, pg_temp
AS $$
DECLARE
	h	text;
BEGIN
	IF NOT _erasure_in_progress() THEN
		RAISE EXCEPTION USING ERRCODE = 'object_not_in_prerequisite_state',
			MESSAGE = 'a subject is forgotten only by the sweep',
			DETAIL = 'profile_guard._forget_subject() runs when a sweep completes an erasure request.',
			HINT = 'Call profile_guard.request_erasure(subject), then profile_guard.sweep().';
	END IF;
	IF NOT EXISTS (SELECT 1 FROM erasure_request q
				   WHERE q.subject = p_subject AND q.completed_at IS NOT NULL) THEN
		RAISE EXCEPTION USING ERRCODE = 'object_not_in_prerequisite_state',
			MESSAGE = 'subject has no completed erasure request',
			DETAIL = format('Subject "%s" has no erasure request carried out by the sweep.', left(p_subject, 200)),
			HINT = 'Call profile_guard.request_erasure(subject), then profile_guard.sweep().';
	END IF;
	h := _subject_hash(p_subject);
	IF EXISTS (SELECT 1 FROM subject_key k
			   WHERE k.subject = p_subject AND k.destroyed_at IS NULL) THEN
		PERFORM _destroy_subject_key(p_subject);
	END IF;
	DELETE FROM consent c WHERE c.subject = p_subject;
	DELETE FROM tag_block b WHERE b.subject = p_subject;
	DELETE FROM subject_event e WHERE e.subject = p_subject;
	-- a request is carried out only once every hold has ended
	DELETE FROM legal_hold lh WHERE lh.subject = p_subject;
	PERFORM _merge_collection_stamps();
	DELETE FROM collection_stamp cs WHERE cs.subject = p_subject;
	-- what was provided to recipients stays, under the hash only
	IF EXISTS (SELECT 1 FROM recipient_use_log l WHERE l.subjects @> ARRAY[p_subject]) THEN
		PERFORM _merge_recipient_use();
	END IF;
	DELETE FROM subject_key k WHERE k.subject = p_subject;
	UPDATE erasure_request q
	   SET subject = NULL, subject_hash = h, forgotten_by = pg_current_xact_id()
	 WHERE q.subject = p_subject;
	DELETE FROM subject s WHERE s.subject = p_subject;
	DELETE FROM _erasure_due d WHERE d.subject = p_subject;
	DELETE FROM _erasure_keep k WHERE k.subject = p_subject;
	INSERT INTO erasure_log (relation, tag, reason, action, rows, subject_hash)
	VALUES ('profile_guard.subject', NULL, 'request', 'forget', 1, h);
	PERFORM _subject_changed(p_subject);
END
$$;
REVOKE ALL ON FUNCTION _forget_subject(text) FROM PUBLIC;

/*
 * _erasure_finish(sweep_start): called when a sweep has done all its work:
 * the record of what was provided to recipients is merged from its log,
 * the requests it served are complete, their subjects are forgotten (and
 * so are those of requests completed before forgetting existed), and the
 * next sweep looks at events from this one's start on.
 */
CREATE FUNCTION _erasure_finish(sweep_start timestamptz)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, profile_guard, pg_temp
AS $$
DECLARE
	r	record;
BEGIN
	-- what was provided to recipients, under the subjects' hashes (the
	-- hashes need the master key: without one the log waits, still read
	-- by subject_report())
	BEGIN
		PERFORM _merge_recipient_use();
	EXCEPTION WHEN OTHERS THEN
		RAISE WARNING 'the record of cells provided to recipients was not merged: %', SQLERRM
			USING HINT = 'Its log is kept and merged by a later sweep; check profile_guard.master_key_file or master_key_command.';
	END;
	UPDATE erasure_request q SET completed_at = now()
	WHERE q.completed_at IS NULL
	  AND q.subject IN (SELECT d.subject FROM _erasure_due d
						WHERE d.tag = '*' AND d.reason = 'request');
	FOR r IN SELECT DISTINCT q.subject FROM erasure_request q
			 WHERE q.subject IS NOT NULL AND q.completed_at IS NOT NULL
			   AND NOT EXISTS (SELECT 1 FROM erasure_request p
							   WHERE p.subject = q.subject AND p.completed_at IS NULL)
			 ORDER BY q.subject
	LOOP
		PERFORM _forget_subject(r.subject);
	END LOOP;
	-- the collection stamps whose retention the sweep carried out (those of
	-- held or still kept tags stay), and those of tables no longer guarded
	-- with collection stamps (unprotected, dropped, stamps switched off
	-- while a write was stamping)
	DELETE FROM collection_stamp cs
	USING _erasure_cutoff c
	WHERE c.tag = cs.tag AND cs.collected_at <= c.cutoff
	  AND NOT EXISTS (SELECT 1 FROM _erasure_keep k
					  WHERE k.subject = cs.subject AND k.tag = cs.tag
						AND (k.keep_for IS NULL OR cs.collected_at > sweep_start - k.keep_for));
	DELETE FROM collection_stamp cs
	WHERE NOT EXISTS (SELECT 1 FROM guarded_table g JOIN pg_class c ON c.oid = g.relid
					  WHERE g.relid = cs.relid AND g.collected_at_column IS NULL AND g.stamp_collection);
	UPDATE erasure_state SET swept_from = sweep_start;
END
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
SET search_path = pg_catalog, profile_guard, pg_temp;
REVOKE ALL ON FUNCTION sweep(integer, boolean) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION sweep(integer, boolean) TO profile_guard_admin;

/*
 * erase_tag(subject, tag) RETURNS the values erased: the subject deletes
 * one tag (§9 a 6, §11 a).  The tag is blocked first (block_tag(): no
 * purpose serves it, none may collect it, and no derived tag that needs it
 * is visible, until unblock_tag(); every session follows from its next
 * statement), then its stored values are erased now, in every guarded
 * table (_erase_subject_tag(): wide shape, the tag's cells set to NULL;
 * long shape, its rows deleted), each table's count logged in erasure_log
 * with reason 'erase_tag' and the subject's keyed hash (when no table held
 * a value, one row with relation '*' and rows 0 evidences the request);
 * its collection stamps of the tag are deleted; the subject's events record
 * 'tag_erased'.
 */
CREATE FUNCTION erase_tag(subject text, tag text)
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, profile_guard, pg_temp
AS $$
DECLARE
	s	profile_guard.subject := _get_subject(erase_tag.subject, true);
	n	bigint;
BEGIN
	PERFORM _require_tag(erase_tag.tag);
	PERFORM _refuse_held(s.subject, 'erase_tag()');
	PERFORM block_tag(s.subject, erase_tag.tag);
	n := _erase_subject_tag(s.subject, erase_tag.tag, 'erase_tag');
	IF n = 0 THEN
		INSERT INTO erasure_log (relation, tag, reason, action, rows, subject_hash)
		VALUES ('*', erase_tag.tag, 'erase_tag', 'delete', 0, _subject_hash(s.subject));
	END IF;
	INSERT INTO subject_event (subject, event, tag, recorded_by)
	VALUES (s.subject, 'tag_erased', erase_tag.tag, session_user);
	PERFORM _subject_changed(s.subject);
	RETURN n;
END
$$;
REVOKE ALL ON FUNCTION erase_tag(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION erase_tag(text, text) TO profile_guard_consent, profile_guard_admin;

/*
 * set_anonymise_columns(tbl, columns): the identifying columns (besides the
 * subject column) that anonymisation sets to NULL.
 */
CREATE FUNCTION set_anonymise_columns(tbl regclass, columns name[])
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, profile_guard, pg_temp
AS $$
DECLARE
	g	profile_guard.guarded_table := _get_guarded(tbl, true);
	c	name;
BEGIN
	PERFORM _check_table_owner(g.relid);
	IF columns IS NULL THEN
		RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed',
			MESSAGE = 'columns must not be null',
			HINT = 'Pass ''{}'' for none.';
	END IF;
	PERFORM _check_anonymise_lists(tbl, g, columns,
								   ARRAY(SELECT k FROM unnest(g.keep_columns) k WHERE k <> ALL (columns)));
	-- a column declared identifying is no longer declared kept
	UPDATE guarded_table x
	SET anonymise_columns = columns,
		keep_columns = ARRAY(SELECT k FROM unnest(x.keep_columns) k WHERE k <> ALL (columns))
	WHERE x.relid = tbl;
END
$$;
REVOKE ALL ON FUNCTION set_anonymise_columns(regclass, name[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION set_anonymise_columns(regclass, name[]) TO profile_guard_admin;

/*
 * set_keep_columns(tbl, columns): the columns declared not identifying,
 * which anonymisation keeps (a classified column is kept only as its tag's
 * category allows: docs/erasure.md).  A column listed here is no longer
 * identifying.
 */
CREATE FUNCTION set_keep_columns(tbl regclass, columns name[])
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, profile_guard, pg_temp
AS $$
DECLARE
	g	profile_guard.guarded_table := _get_guarded(tbl, true);
BEGIN
	PERFORM _check_table_owner(g.relid);
	IF columns IS NULL THEN
		RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed',
			MESSAGE = 'columns must not be null',
			HINT = 'Pass ''{}'' for none.';
	END IF;
	PERFORM _check_anonymise_lists(tbl, g,
								   ARRAY(SELECT a FROM unnest(g.anonymise_columns) a WHERE a <> ALL (columns)),
								   columns);
	UPDATE guarded_table x
	SET keep_columns = columns,
		anonymise_columns = ARRAY(SELECT a FROM unnest(x.anonymise_columns) a WHERE a <> ALL (columns))
	WHERE x.relid = tbl;
END
$$;
REVOKE ALL ON FUNCTION set_keep_columns(regclass, name[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION set_keep_columns(regclass, name[]) TO profile_guard_admin;

/*
 * end_service(): the personal-profile service ends (§7.4): every purpose in
 * force is retired and every row of every guarded table becomes due
 * (reason service_end).  Irreversible.
 */
CREATE FUNCTION end_service()
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, profile_guard, pg_temp
AS $$
BEGIN
	INSERT INTO erasure_state AS x (service_ended_at) VALUES (now())
	ON CONFLICT (singleton) DO UPDATE SET service_ended_at = now()
	WHERE x.service_ended_at IS NULL;
	IF NOT FOUND THEN
		RAISE EXCEPTION USING ERRCODE = 'object_not_in_prerequisite_state',
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
