/*
 * 86_subject_report.sql — what is held about one person (guideline §5 d,
 * §11): subject_report() answers the person's own access request.
 * docs/accountability.md describes it.
 *
 * It reads application tables as the extension owner (a superuser: the
 * read path lets it see raw stored values, and it decrypts them), so it is
 * SECURITY DEFINER with search_path pinned and executable only by the roles
 * named below.  It writes nothing.
 */

/*
 * _subject_rows(g, subject): the tags one guarded table holds for a
 * subject, as jsonb objects, values decrypted.  The subject is compared in
 * the subject column's own type when that is a built-in type (so an index
 * can be used), and as text in every case (so '042' never finds 42).
 */
CREATE FUNCTION _subject_rows(g guarded_table, p_subject text)
RETURNS SETOF jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, profile_guard, pg_temp
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
	-- read as the extension owner: nothing of the table's owner may run
	-- (a view's rule, a cast of the owner's type); else not readable
	BEGIN
		PERFORM _check_guarded(g.relid, g.subject_column, g.collected_at_column, g.tag_column, false);
	EXCEPTION WHEN OTHERS THEN
		GET STACKED DIAGNOSTICS msg = MESSAGE_TEXT;
		RETURN NEXT jsonb_build_object('table', g.relid::text, 'value', NULL,
									   'stored', 'not readable: ' || msg);
		RETURN;
	END;
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
				value_sql := format('%s, %L', _json_sql(quote_ident(col.column_name), col.atttypid),
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
			value_sql := format('%s, CASE WHEN t.sensitivity = ''sensitive'' THEN ''plaintext'' ELSE ''plain'' END',
								_json_sql('r.' || quote_ident(g.value_column), val_type));
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
 * What was provided to recipients, per person (rule 10a): under a purpose
 * that names a recipient, the cells the gates served, counted per subject,
 * purpose and month (UTC; the first day of the month).  The subject is kept
 * only as its keyed hash (_subject_hash()): the record holds no identifier
 * and outlives the person's erasure, as evidence of what was provided.
 * Merged by the sweep from recipient_use_log; read by subject_report().
 */
CREATE TABLE recipient_use (
	subject_hash text NOT NULL,
	purpose		text NOT NULL,
	recipient	text NOT NULL,
	month		date NOT NULL,
	cells		bigint NOT NULL CHECK (cells > 0),
	PRIMARY KEY (subject_hash, purpose, recipient, month)
);
GRANT SELECT ON recipient_use TO profile_guard_admin;
SELECT pg_catalog.pg_extension_config_dump('recipient_use', '');

/*
 * What the read path appends before each commit (recipient_use.c): per
 * transaction and purpose, the subjects served and their cells, as two
 * arrays; no index, so a read pays one row, not one per subject.  It names
 * subjects by identifier until the sweep merges it into recipient_use
 * (_merge_recipient_use()); readable by the extension's owner only.
 */
CREATE TABLE recipient_use_log (
	purpose		text NOT NULL,
	recipient	text NOT NULL,
	month		date NOT NULL,
	subjects	text[] NOT NULL,
	cells		bigint[] NOT NULL,
	CHECK (cardinality(subjects) = cardinality(cells))
);
-- the arrays are compressed with lz4 where the server has it: pglz cost the
-- read path more than writing them
DO $$
BEGIN
	ALTER TABLE recipient_use_log ALTER COLUMN subjects SET COMPRESSION lz4,
		ALTER COLUMN cells SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported THEN
	NULL;		-- a server built without lz4: the default (pglz)
END
$$;
SELECT pg_catalog.pg_extension_config_dump('recipient_use_log', '');

/*
 * _merge_recipient_use(): moves the log's rows into recipient_use, under
 * the subjects' keyed hashes, adding up the counts.  Rows committed while
 * it runs are not seen and stay for the next merge.  Returns the subjects
 * merged.
 */
CREATE FUNCTION _merge_recipient_use()
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, profile_guard, pg_temp
AS $$
DECLARE
	n	bigint;
BEGIN
	WITH taken AS (
		DELETE FROM recipient_use_log l RETURNING l.purpose, l.recipient, l.month, l.subjects, l.cells
	), merged AS (
		INSERT INTO recipient_use AS u (subject_hash, purpose, recipient, month, cells)
		SELECT _subject_hash(x.subject), t.purpose, t.recipient, t.month, sum(x.cells)
		FROM taken t CROSS JOIN LATERAL unnest(t.subjects, t.cells) AS x(subject, cells)
		GROUP BY 1, 2, 3, 4
		ON CONFLICT (subject_hash, purpose, recipient, month)
		DO UPDATE SET cells = u.cells + excluded.cells
		RETURNING 1
	)
	SELECT count(*) INTO n FROM merged;
	RETURN n;
END
$$;
REVOKE ALL ON FUNCTION _merge_recipient_use() FROM PUBLIC;

/*
 * _provided_json(hash, subject): the recipients a subject's cells were
 * provided to, with counts and months, never values: the merged record
 * (by hash) and the log not merged yet (by identifier, when given).
 */
CREATE FUNCTION _provided_json(p_hash text, p_subject text)
RETURNS jsonb
LANGUAGE sql STABLE
SET search_path = pg_catalog, profile_guard, pg_temp
AS $$
	SELECT coalesce(jsonb_agg(jsonb_build_object(
				'recipient', u.recipient,
				'country', r.country,
				'cross_border', r.country IS NOT NULL AND r.country <> home_country(),
				'purpose', u.purpose,
				'cells', u.cells,
				'first_month', u.first_month,
				'last_month', u.last_month) ORDER BY u.recipient, u.purpose), '[]')
	FROM (SELECT x.recipient, x.purpose, sum(x.cells) AS cells,
				 to_char(min(x.month), 'YYYY-MM') AS first_month,
				 to_char(max(x.month), 'YYYY-MM') AS last_month
		  FROM (SELECT m.recipient, m.purpose, m.month, m.cells
				FROM recipient_use m WHERE m.subject_hash = p_hash
				UNION ALL
				SELECT l.recipient, l.purpose, l.month, e.cells
				FROM recipient_use_log l
				CROSS JOIN LATERAL unnest(l.subjects, l.cells) AS e(subject, cells)
				WHERE l.subjects @> ARRAY[p_subject] AND e.subject = p_subject) x
		  GROUP BY x.recipient, x.purpose) u
	LEFT JOIN recipient r ON r.recipient = u.recipient
$$;
REVOKE ALL ON FUNCTION _provided_json(text, text) FROM PUBLIC;

/*
 * _erasure_requests_json(subject, hash): the erasure requests of a subject,
 * those it made under its identifier and, when the hash is given, those of
 * an earlier record of the same identifier that was forgotten.
 */
CREATE FUNCTION _erasure_requests_json(p_subject text, p_hash text)
RETURNS jsonb
LANGUAGE sql STABLE
SET search_path = pg_catalog, profile_guard, pg_temp
AS $$
	SELECT coalesce(jsonb_agg(jsonb_build_object(
				'request_id', r.request_id,
				'requested_at', r.requested_at,
				'completed_at', r.completed_at,
				'status', CASE WHEN r.completed_at IS NULL THEN 'pending' ELSE 'completed' END,
				'forgotten', r.subject IS NULL)
				ORDER BY r.request_id), '[]')
	FROM erasure_request r
	WHERE r.subject = p_subject OR r.subject_hash = p_hash
$$;
REVOKE ALL ON FUNCTION _erasure_requests_json(text, text) FROM PUBLIC;

/*
 * subject_report(subject) RETURNS jsonb: everything held about one person,
 * for the person's own access request (§5 d, §11): tags with their values
 * (decrypted) in every guarded table, consents with the purpose versions
 * and their state per tag (from tag_state(), the one place the rules
 * live; with the purposes not based on consent, which concern every
 * registered subject, and each purpose's legal basis), blocks, opt-out, the
 * subject's own events, legal holds, erasure requests and the erasures
 * done.  An identifier whose record was forgotten after its erasure
 * (_forget_subject()) is found by the keyed hash of its requests: the
 * report says it is not registered, holds nothing, and lists those
 * requests and the erasure log's rows.  Executable by profile_guard_admin and
 * profile_guard_consent only: it hands out values, so it is the access
 * request desk, not a way for applications to read tags.  Without JIT: its
 * statements run once each over the planner's guess for tables never
 * analysed (hundreds of rows where there are a few), which compiled them
 * for most of a second a call.
 */
CREATE FUNCTION subject_report(subject text)
RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, profile_guard, pg_temp
SET datestyle = 'ISO, YMD'
SET intervalstyle = 'postgres'
SET jit = off
AS $$
DECLARE
	s			profile_guard.subject;
	g			profile_guard.guarded_table;
	tags		jsonb := '[]';
	consents	jsonb;
	erased		jsonb := NULL;
	erased_note	text;
	hash_fn		regprocedure;
	h			text;
	j			jsonb;
BEGIN
	IF subject_report.subject IS NULL THEN
		RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed',
			MESSAGE = 'subject must not be null',
			HINT = 'Pass the subject identifier as text, e.g. profile_guard.subject_report(''42'').';
	END IF;
	SELECT * INTO s FROM profile_guard.subject x WHERE x.subject = subject_report.subject;
	IF NOT FOUND THEN
		/*
		 * A forgotten subject: nothing is held but the keyed hash of its
		 * completed erasure requests (_forget_subject()).  Looked for only
		 * when some subject was forgotten: the hash needs the master key.
		 */
		IF EXISTS (SELECT 1 FROM erasure_request r WHERE r.subject_hash IS NOT NULL) THEN
			h := _subject_hash(subject_report.subject);
			IF EXISTS (SELECT 1 FROM erasure_request r WHERE r.subject_hash = h) THEN
				FOR g IN SELECT * FROM guarded_table x ORDER BY x.relid::text LOOP
					FOR j IN SELECT * FROM _subject_rows(g, subject_report.subject) LOOP
						tags := tags || jsonb_build_array(j);
					END LOOP;
				END LOOP;
				RETURN jsonb_build_object(
					'subject', subject_report.subject,
					'report_generated_at', now(),
					'registered', false,
					'forgotten', true,
					'tags', tags,
					'consents', '[]'::jsonb,
					'recipients', '[]'::jsonb,
					'provided_to', _provided_json(h, NULL),
					'blocks', '[]'::jsonb,
					'events', '[]'::jsonb,
					'erasure_requests', _erasure_requests_json(NULL, h),
					'erasures_done', (SELECT coalesce(jsonb_agg(to_jsonb(l) - 'subject_hash'
																 ORDER BY to_jsonb(l)::text), '[]')
									  FROM erasure_log l WHERE l.subject_hash = h));
			END IF;
		END IF;
		RAISE EXCEPTION USING ERRCODE = 'undefined_object',
			MESSAGE = 'subject is not registered',
			DETAIL = format('Subject "%s" is not registered, so nothing is held about it under profile_guard.', left(subject_report.subject, 200)),
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
			'personalised', pu.personalised,
			'automated_decision', pu.automated_decision,
			'legal_basis', pu.legal_basis,
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
	WHERE EXISTS (SELECT 1 FROM consent c WHERE c.subject = s.subject AND c.purpose = pu.purpose)
	   OR pu.legal_basis <> 'consent';

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
			EXECUTE format('SELECT %s($1)', hash_fn::oid::regproc) INTO h USING s.subject;
			SELECT coalesce(jsonb_agg(to_jsonb(l) - 'subject_hash' ORDER BY to_jsonb(l)::text), '[]')
			INTO erased
			FROM erasure_log l WHERE l.subject_hash = h;
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
		-- the recipients of the purposes the subject consented to (or that
		-- concern it without consent), with the tags usable for each
		'recipients', (SELECT coalesce(jsonb_agg(jsonb_build_object(
								'recipient', x.recipient,
								'country', x.country,
								'cross_border', x.country <> home_country(),
								'purposes', x.purposes,
								'usable_tags', x.usable_tags) ORDER BY x.recipient), '[]')
					   FROM (SELECT r.recipient, r.country,
									jsonb_agg(DISTINCT pu.purpose) AS purposes,
									(SELECT count(DISTINCT ts.tag)
									 FROM purpose pu2
									 CROSS JOIN LATERAL tag_state(pu2.purpose, s.subject, false) AS ts
									 WHERE pu2.recipient = r.recipient AND pu2.retired_at IS NULL
									   AND ts.effective) AS usable_tags
							 FROM recipient r
							 JOIN purpose pu ON pu.recipient = r.recipient
							 WHERE EXISTS (SELECT 1 FROM consent c
										   WHERE c.subject = s.subject AND c.purpose = pu.purpose)
								OR pu.legal_basis <> 'consent'
							 GROUP BY r.recipient, r.country) AS x),
		-- the recipients its cells were actually provided to (rule 10a)
		'provided_to', _provided_json(CASE WHEN EXISTS (SELECT 1 FROM recipient_use)
												THEN _subject_hash(s.subject) END, s.subject),
		'blocks', (SELECT coalesce(jsonb_agg(jsonb_build_object('tag', b.tag, 'blocked_at', b.blocked_at)
											 ORDER BY b.tag), '[]')
				   FROM tag_block b WHERE b.subject = s.subject),
		'events', (SELECT coalesce(jsonb_agg(jsonb_build_object('event', e.event, 'tag', e.tag,
																'recorded_at', e.recorded_at)
											 ORDER BY e.event_id), '[]')
				   FROM subject_event e WHERE e.subject = s.subject),
		'erasure_requests', _erasure_requests_json(s.subject, h),
		'legal_holds', (SELECT coalesce(jsonb_agg(jsonb_build_object(
									'hold_id', lh.hold_id,
									'basis', lh.basis,
									'placed_at', lh.placed_at,
									'until', lh.until,
									'released_at', lh.released_at,
									'active', lh.released_at IS NULL
											  AND (lh.until IS NULL OR lh.until > statement_timestamp()))
									ORDER BY lh.hold_id), '[]')
						FROM legal_hold lh WHERE lh.subject = s.subject),
		'data_key_destroyed', EXISTS (SELECT 1 FROM subject_key k
									  WHERE k.subject = s.subject AND k.destroyed_at IS NOT NULL),
		'erasures_done', erased)
		|| CASE WHEN erased_note IS NULL THEN '{}'::jsonb
				ELSE jsonb_build_object('erasures_done_note', erased_note) END;
END
$$;
REVOKE ALL ON FUNCTION subject_report(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION subject_report(text) TO profile_guard_admin, profile_guard_consent;
