/*
 * 87_assess.sql — the self-assessment: the database checked clause by
 * clause against the guideline (§5 to §11).  docs/accountability.md lists
 * what each clause checks.
 *
 * assess() reads application tables as the extension owner (a superuser:
 * the read path lets it see raw stored values), so it is SECURITY DEFINER
 * with search_path pinned and executable by profile_guard_admin only.  It
 * writes nothing.
 */

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
SET search_path = pg_catalog, profile_guard, pg_temp
AS $$
DECLARE
	c		record;
	q		text;
	msg		text;
BEGIN
	FOR c IN
		SELECT g.relid, g.subject_column, cc.column_name, quote_literal(cc.tag) AS tag_expr,
			   NULL::text[] AS tags, a.atttypid, NULL::name AS tag_column
		FROM guarded_table g
		JOIN classified_column cc ON cc.relid = g.relid
		JOIN tag t ON t.tag = cc.tag AND t.sensitivity = 'sensitive'
		JOIN pg_attribute a ON a.attrelid = g.relid AND a.attname = cc.column_name
		WHERE g.tag_column IS NULL
		UNION ALL
		SELECT g.relid, g.subject_column, g.value_column, quote_ident(g.tag_column) || '::text',
			   ARRAY(SELECT t.tag FROM tag t WHERE t.sensitivity = 'sensitive'), a.atttypid, g.tag_column
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
		BEGIN
			-- read as the extension owner: nothing of the table's owner may run
			PERFORM _check_guarded(c.relid, c.subject_column, NULL, c.tag_column, false);
			IF c.atttypid NOT IN ('text'::regtype, 'bytea'::regtype) THEN
				-- cannot hold ciphertext at all
				EXECUTE 'SELECT count(*)' || q INTO plaintext USING c.tags;
			ELSE
				EXECUTE format('SELECT count(*) FILTER (WHERE k = ''plaintext''), count(*) FILTER (WHERE k = ''foreign'')'
							   ' FROM (SELECT profile_guard._ciphertext_kind(r.%I::text, %s, r.%I) AS k %s) AS s',
							   c.subject_column,
							   CASE WHEN c.tags IS NULL THEN c.tag_expr ELSE 'r.' || c.tag_expr END,
							   c.column_name, q)
					INTO plaintext, foreign_ct USING c.tags;
			END IF;
		EXCEPTION WHEN OTHERS THEN
			GET STACKED DIAGNOSTICS msg = MESSAGE_TEXT;
			problem := msg;
		END;
		IF plaintext > 0 OR foreign_ct > 0 OR problem IS NOT NULL THEN
			RETURN NEXT;
		END IF;
	END LOOP;
END
$$;
REVOKE ALL ON FUNCTION _stored_plaintext() FROM PUBLIC;

/*
 * _assess_verdict(manual, not_applicable, faults, met): the status and
 * detail of one clause of assess() from what its checks found.  Each
 * argument is the detail of one status, NULL when that status does not
 * hold, and the first that holds, in this order, decides:
 *   manual          a person must check the clause; the detail says what
 *   not_applicable  nothing of the kind exists
 *   faults          not_met: one element per fault found (NULL elements
 *                   are none), listed in the detail separated by "; "
 *   met             otherwise
 */
CREATE FUNCTION _assess_verdict(manual text, not_applicable text, faults text[], met text,
								OUT status text, OUT detail text)
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
	SELECT CASE WHEN manual IS NOT NULL THEN 'manual'
				WHEN not_applicable IS NOT NULL THEN 'not_applicable'
				WHEN pg_catalog.array_to_string(faults, '; ') <> '' THEN 'not_met'
				ELSE 'met' END,
		   coalesce(manual, not_applicable, nullif(pg_catalog.array_to_string(faults, '; '), ''), met)
$$;
REVOKE ALL ON FUNCTION _assess_verdict(text, text, text[], text) FROM PUBLIC;

/*
 * _assess_graded(): the clauses of assess() that can be met in part, with
 * their status computed here rather than by _assess_verdict():
 *   §8 (secure transport)  profile_guard.secure_transport, ssl, and the
 *                          pg_hba.conf lines that let clients in over plain
 *                          TCP (host, hostnossl: not hostssl or hostgssenc)
 *   §10                    crypto-shredding covers sensitive tags only
 */
CREATE FUNCTION _assess_graded()
RETURNS TABLE (clause text, requirement text, status text, detail text)
LANGUAGE plpgsql
SET search_path = pg_catalog, profile_guard, pg_temp
AS $$
DECLARE
	setting		text := coalesce(current_setting('profile_guard.secure_transport', true), 'sensitive');
	ssl_on		boolean := current_setting('ssl') = 'on';
	plain_lines	text;
	shredding	text;
	unshredded	text;
BEGIN
	-- lines of pg_hba.conf that let a client in over TCP without SSL
	SELECT _name_list(array_agg(format('line %s (%s %s %s %s)', h.line_number, h.type,
									   array_to_string(h.database, ','), array_to_string(h.user_name, ','),
									   coalesce(h.address, 'all'))
								ORDER BY h.line_number))
	INTO plain_lines
	FROM pg_hba_file_rules h
	WHERE h.type IN ('host', 'hostnossl') AND h.error IS NULL AND h.auth_method <> 'reject';

	clause := '§8 (secure transport)';
	requirement := 'Profiles are transferred securely: tags leave the database only over encrypted connections.';
	IF plain_lines IS NULL THEN
		status := 'met';
		detail := format('no pg_hba.conf line lets a client in over plain TCP; profile_guard.secure_transport = %s, ssl = %s',
						 setting, CASE WHEN ssl_on THEN 'on' ELSE 'off' END);
	ELSIF setting = 'off' THEN
		status := 'not_met';
		detail := format('profile_guard.secure_transport = off: every tag, sensitive ones included, is served over plain TCP through %s',
						 plain_lines);
	ELSIF setting = 'sensitive' THEN
		status := 'partly';
		detail := format('sensitive tags are served only over SSL or the local socket; general tags cross plain TCP through %s (set profile_guard.secure_transport = all, or use hostssl lines)%s',
						 plain_lines,
						 CASE WHEN NOT ssl_on THEN '; ssl = off: remote clients cannot read sensitive tags at all' ELSE '' END);
	ELSE
		status := 'met';
		detail := format('profile_guard.secure_transport = all: no tag is served over plain TCP (lines that allow it: %s)%s',
						 plain_lines,
						 CASE WHEN NOT ssl_on THEN '; ssl = off: remote clients cannot read tags at all' ELSE '' END);
	END IF;
	RETURN NEXT;

	clause := '§10';
	requirement := 'When profiles are erased, their data cannot be recovered.';
	unshredded := 'erasures completed while the subject''s data key still exists (backups stay readable): '
		|| _name_list(ARRAY(SELECT format('request %s', r.request_id) FROM erasure_request r
							WHERE r.completed_at IS NOT NULL
							  AND NOT EXISTS (SELECT 1 FROM subject_key k
											  WHERE k.subject = r.subject AND k.destroyed_at IS NOT NULL)
							  AND EXISTS (SELECT 1 FROM subject_key k WHERE k.subject = r.subject)
							ORDER BY 1));
	SELECT format('completed requests whose subject the catalog keeps only as a keyed hash: %s of %s (the others are forgotten by the next sweep)',
				  count(*) FILTER (WHERE r.subject IS NULL), count(*))
	INTO shredding
	FROM erasure_request r WHERE r.completed_at IS NOT NULL;
	IF unshredded IS NOT NULL THEN
		status := 'not_met';
		detail := unshredded;
	ELSE
		status := 'partly';
		detail := 'crypto-shredding covers sensitive tags only: destroying an erased subject''s data key makes its sensitive tags unreadable everywhere, backups and replicas included; general tags are stored in plaintext and survive erasure in base backups, archived WAL and the WAL and history of replicas until those are rotated out; '
				  || shredding;
	END IF;
	RETURN NEXT;
END
$$;
REVOKE ALL ON FUNCTION _assess_graded() FROM PUBLIC;

/*
 * assess(): the database checked against the guideline, one row per
 * clause, in clause order.  status is met, partly (what the database
 * enforces falls short of the clause; detail says where), not_met,
 * not_applicable or manual (a person must check it; detail says what);
 * detail names the objects at fault.  docs/accountability.md lists what
 * each clause checks.
 *
 * Each clause is one row below: its number, its requirement, and the
 * detail of each status, as _assess_verdict() takes them; the clauses
 * graded partly when they are (§8 secure transport, §10) come from
 * _assess_graded().  What several clauses look at is computed first.
 */
CREATE FUNCTION assess()
RETURNS TABLE (clause text, requirement text, status text, detail text)
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, profile_guard, pg_temp
SET datestyle = 'ISO, YMD'
SET lock_timeout = '5s'
AS $$
DECLARE
	preloaded	boolean := 'profile_guard' = ANY (
						string_to_array(replace(current_setting('shared_preload_libraries'), ' ', ''), ','));
	n_guarded	bigint := (SELECT count(*) FROM guarded_table);
	n_active	bigint := (SELECT count(*) FROM purpose WHERE retired_at IS NULL);
	no_tables	text := CASE WHEN n_guarded = 0 THEN 'no guarded tables' END;
	no_purposes	text := CASE WHEN n_active = 0 THEN 'no active purposes' END;
	key_file	text := coalesce(current_setting('profile_guard.master_key_file', true), '');
	key_cmd		text := coalesce(current_setting('profile_guard.master_key_command', true), '');
	n_automated	bigint := (SELECT count(*) FROM purpose p WHERE p.retired_at IS NULL AND p.automated_decision);
	n_personalised bigint := (SELECT count(*) FROM purpose p WHERE p.retired_at IS NULL AND p.personalised);
	n_no_birth	bigint := (SELECT count(*) FROM subject s WHERE s.birth_date IS NULL);
	n_anonymised bigint := (SELECT count(*) FROM guarded_table g WHERE g.on_erase = 'anonymise'
							  AND EXISTS (SELECT 1 FROM pg_class c WHERE c.oid = g.relid));
	n_abroad	bigint := (SELECT count(*) FROM purpose p WHERE p.retired_at IS NULL AND _cross_border(p.recipient));
	n_holds		bigint := (SELECT count(*) FROM legal_hold h WHERE h.released_at IS NULL
						   AND (h.until IS NULL OR h.until > statement_timestamp()));
	-- the roles besides superusers that can call subject_report()
	report_desk	text := _name_list(ARRAY(
						SELECT quote_ident(r.rolname) FROM pg_roles r
						WHERE NOT r.rolsuper
						  AND r.rolname NOT IN ('profile_guard_admin', 'profile_guard_consent')
						  AND (pg_has_role(r.oid, 'profile_guard_admin', 'USAGE')
							   OR pg_has_role(r.oid, 'profile_guard_consent', 'USAGE'))
						ORDER BY 1));
BEGIN
	RETURN QUERY
	SELECT r.clause, r.requirement, r.status, r.detail
	FROM (
	SELECT checks.clause, checks.requirement, v.status, v.detail
	FROM (VALUES
	('§5 a', 'Profiles are used only for explicit, declared purposes.',
	 NULL, no_tables,
	 ARRAY[CASE WHEN n_active = 0
				THEN 'no active purpose is defined: define one with profile_guard.define_purpose()' END],
	 format('reading a tag requires a declared purpose; active purposes: %s', n_active)),

	('§5 b', 'Profiles are built and used only with the subject''s consent.',
	 NULL, no_tables,
	 ARRAY[CASE WHEN NOT preloaded
				THEN 'profile_guard is not in shared_preload_libraries: consent is not enforced' END],
	 format('reads and writes of tags are gated by consent; subjects registered: %s, consent records: %s',
			(SELECT count(*) FROM subject), (SELECT count(*) FROM consent))),

	('§5 b (lawful basis)', 'A purpose not based on consent rests on a lawful basis of PIPL art. 13, reviewed by a person.',
	 'review the lawful basis, and the tags it needs, of the purposes not based on consent (they read the tags of their list for every registered subject without consent): '
	 || _name_list(ARRAY(SELECT format('%s (%s)', p.purpose, p.legal_basis) FROM purpose p
						 WHERE p.retired_at IS NULL AND p.legal_basis <> 'consent' ORDER BY 1)),
	 'every active purpose is based on consent',
	 NULL, NULL),

	('§5 c', 'Each purpose uses only the tags it needs (a tag list per purpose).',
	 NULL, no_purposes,
	 ARRAY['purposes without a tag list (every tag allowed): '
		   || _name_list(ARRAY(SELECT p.purpose FROM purpose p
							   WHERE p.retired_at IS NULL AND (p.tags IS NULL OR '*' = ANY (p.tags))
							   ORDER BY p.purpose))],
	 format('every active purpose lists its tags (active purposes: %s)', n_active)),

	('§5 d', 'Profile rules (purposes, tags used, recipients) are disclosed to subjects.',
	 'compare the published privacy notice with profile_guard.privacy_notice(), which states from the catalog what each active purpose uses (description, tags, retention, recipient, separate consent); subject_report() answers individual requests',
	 NULL, NULL, NULL),

	('§5 e', 'Profiles are protected by technical security measures.',
	 NULL, NULL,
	 ARRAY[CASE WHEN key_file = '' AND key_cmd = ''
				THEN 'no master key configured (profile_guard.master_key_file or profile_guard.master_key_command)'
				WHEN key_file <> '' AND key_cmd <> ''
				THEN 'both profile_guard.master_key_file and profile_guard.master_key_command are set' END,
		   'direct write access to the catalog, bypassing the API: '
		   || _name_list(ARRAY(SELECT DISTINCT format('%s to %s', c.relname,
													  CASE WHEN x.grantee = 0 THEN 'PUBLIC' ELSE x.grantee::regrole::text END)
							   FROM pg_class c
							   CROSS JOIN LATERAL aclexplode(c.relacl) AS x
							   WHERE c.relnamespace = 'profile_guard'::regnamespace AND c.relkind = 'r'
								 AND x.privilege_type IN ('INSERT', 'UPDATE', 'DELETE', 'TRUNCATE')
								 AND x.grantee <> c.relowner
							   ORDER BY 1))],
	 'master key configured; the catalog is written only through the API'),

	('§5 f', 'Personal information in profiles is identified and classified by category and sensitivity.',
	 NULL, NULL,
	 ARRAY[CASE WHEN n_guarded = 0
				THEN 'no guarded tables: no profile tags are under policy (see profile_guard.suggest_classification())' END,
		   'unclassified columns of guarded tables that look personal: '
		   || _name_list(ARRAY(SELECT format('%s.%I (%s)', s."table", s.column_name, s.suggested_category)
							   FROM _suggestions(NULL, true) AS s
							   ORDER BY s."table"::text, s.column_name)),
		   'guarded_table rows of tables that were dropped (oids): '
		   || _name_list(ARRAY(SELECT g.relid::oid::text FROM guarded_table g
							   WHERE NOT EXISTS (SELECT 1 FROM pg_class c WHERE c.oid = g.relid)
							   ORDER BY g.relid::oid))],
	 format('no unclassified column of a guarded table looks personal (guarded tables: %s, classified columns: %s)',
			n_guarded, (SELECT count(*) FROM classified_column))),

	('§5 f (sensitive)', 'Sensitive personal information is recognised as sensitive.',
	 NULL,
	 CASE WHEN NOT EXISTS (SELECT 1 FROM classified_column) THEN 'no classified columns' END,
	 ARRAY['columns named like sensitive information but classified as a general tag: '
		   || _name_list(ARRAY(SELECT format('%s.%I as %s (looks %s)', cc.relid, cc.column_name, cc.tag, m.category)
							   FROM classified_column cc
							   JOIN tag t ON t.tag = cc.tag
							   CROSS JOIN LATERAL _pi_name_match(cc.column_name) AS m
							   WHERE t.sensitivity = 'general' AND m.sensitivity = 'sensitive'
							   ORDER BY 1))],
	 format('no column classified as a general tag is named like sensitive information (sensitive tags: %s)',
			(SELECT count(*) FROM tag t WHERE t.sensitivity = 'sensitive'))),

	('§6', 'Data used to build profiles and train their models (training data) comes from lawful sources, recorded and reviewed.',
	 'the database cannot tell where the data behind model and prediction tags, or the data a model was trained on, came from: review the training data sets, their sources and the lawful basis of each',
	 NULL, NULL, NULL),

	('§6 (data sources)', 'Data used for training or sharing comes from sources whose terms were reviewed.',
	 NULL,
	 CASE WHEN NOT EXISTS (SELECT 1 FROM deidentified_view d JOIN pg_class c ON c.oid = d.view_relid)
			   AND NOT EXISTS (SELECT 1 FROM table_data_source)
			   AND NOT EXISTS (SELECT 1 FROM purpose_data_source)
			   AND NOT EXISTS (SELECT 1 FROM purpose p WHERE p.automated_decision AND p.retired_at IS NULL)
		  THEN 'no de-identified view, no automated-decision purpose and no data source declared' END,
	 ARRAY['guarded tables read by de-identified views that name no data source (set_data_sources()): '
		   || _name_list(ARRAY(SELECT DISTINCT d.relid::text FROM deidentified_view d
							   JOIN pg_class c ON c.oid = d.view_relid
							   WHERE NOT EXISTS (SELECT 1 FROM table_data_source s WHERE s.relid = d.relid)
							   ORDER BY 1)),
		   'automated-decision purposes whose model names no data source (set_purpose_data_sources()): '
		   || _name_list(ARRAY(SELECT p.purpose FROM purpose p
							   WHERE p.automated_decision AND p.retired_at IS NULL
								 AND NOT EXISTS (SELECT 1 FROM purpose_data_source s WHERE s.purpose = p.purpose)
							   ORDER BY 1)),
		   'guarded tables built from a data source whose licence or contract was never reviewed: '
		   || _name_list(ARRAY(SELECT DISTINCT format('%s (%s)', s.relid, s.source) FROM table_data_source s
							   JOIN data_source ds ON ds.source = s.source
							   WHERE ds.reviewed_at IS NULL ORDER BY 1)),
		   'purposes built from a data source whose licence or contract was never reviewed: '
		   || _name_list(ARRAY(SELECT DISTINCT format('%s (%s)', s.purpose, s.source) FROM purpose_data_source s
							   JOIN data_source ds ON ds.source = s.source
							   WHERE ds.reviewed_at IS NULL ORDER BY 1))],
	 format('every guarded table read by a de-identified view and every automated-decision purpose names its data sources, all reviewed (sources: %s, de-identified views: %s, automated-decision purposes: %s)',
			(SELECT count(*) FROM data_source),
			(SELECT count(*) FROM deidentified_view d JOIN pg_class c ON c.oid = d.view_relid),
			(SELECT count(*) FROM purpose p WHERE p.automated_decision AND p.retired_at IS NULL))),

	('§7.1', 'Tags are collected only with consent covering them.',
	 NULL, no_tables,
	 ARRAY['collection trigger missing or not ENABLE ALWAYS on: '
		   || _name_list(ARRAY(SELECT g.relid::text FROM guarded_table g
							   WHERE EXISTS (SELECT 1 FROM pg_class c WHERE c.oid = g.relid)
								 AND NOT EXISTS (SELECT 1 FROM pg_trigger tg
												 WHERE tg.tgrelid = g.relid AND tg.tgname = 'profile_guard_collect'
												   AND tg.tgenabled = 'A')
							   ORDER BY 1)),
		   'guarded tables owned by an application role, which can disable the trigger: '
		   || _name_list(ARRAY(SELECT format('%s (owner %s)', g.relid, o.rolname) FROM guarded_table g
							   JOIN pg_class c ON c.oid = g.relid
							   JOIN pg_roles o ON o.oid = c.relowner
							   WHERE NOT o.rolsuper
								 AND EXISTS (SELECT 1 FROM purpose_role pr WHERE pr.role_name = o.rolname)
							   ORDER BY 1)),
		   CASE WHEN NOT preloaded THEN 'profile_guard is not in shared_preload_libraries' END],
	 format('the collection trigger is enabled on every guarded table (%s)',
			(SELECT count(*) FROM guarded_table g JOIN pg_class c ON c.oid = g.relid))),

	('§7.2', 'Sensitive tags are stored encrypted; tag values do not appear in statistics.',
	 NULL, no_tables,
	 ARRAY[CASE WHEN preloaded
				THEN 'sensitive columns not holding our ciphertext: '
					 || _name_list(ARRAY(SELECT format('%s.%I (%s)', p.relid, p.column_name,
													   coalesce('not checked: ' || p.problem,
																concat_ws(', ',
																	CASE WHEN p.plaintext > 0 THEN 'plaintext: ' || p.plaintext END,
																	CASE WHEN p.foreign_ct > 0 THEN 'ciphertext not of its row: ' || p.foreign_ct END)))
										 FROM _stored_plaintext() AS p ORDER BY p.relid::text, p.column_name))
				ELSE 'stored values not checked: profile_guard is not in shared_preload_libraries' END,
		   'tag columns with statistics (pg_stats would show values): '
		   || _name_list(ARRAY(SELECT format('%s.%I', x.relid, x.col)
							   FROM (SELECT cc.relid, cc.column_name AS col FROM classified_column cc
									 UNION
									 SELECT g.relid, g.value_column FROM guarded_table g WHERE g.value_column IS NOT NULL) AS x
							   JOIN pg_attribute a ON a.attrelid = x.relid AND a.attname = x.col
							   WHERE a.attstattarget <> 0
								  OR EXISTS (SELECT 1 FROM pg_statistic st
											 WHERE st.starelid = a.attrelid AND st.staattnum = a.attnum)
							   ORDER BY 1))],
	 'every stored sensitive value is ciphertext of its subject and tag; tag columns keep no statistics'),

	('§7.3', 'Tags are used only under a declared purpose, within its tag list and the subject''s consent.',
	 NULL, no_tables,
	 ARRAY[CASE WHEN NOT preloaded
				THEN 'profile_guard is not in shared_preload_libraries: reads are not gated' END],
	 'the read gate is active: rows and cells are filtered by purpose, tag list and consent'),

	('§7.4', 'Each purpose has a retention period after which its tags are erased.',
	 NULL, no_purposes,
	 ARRAY['purposes without retention: '
		   || _name_list(ARRAY(SELECT p.purpose FROM purpose p
							   WHERE p.retired_at IS NULL AND p.retention IS NULL ORDER BY 1)),
		   -- the sweep applies retention to the rows' collected_at column
		   -- or, in a table without one, to its collection stamps if it
		   -- has them: otherwise its tags never expire
		   'guarded tables without a collected_at column or collection stamps, whose tags never expire: '
		   || _name_list(ARRAY(SELECT g.relid::text FROM guarded_table g
							   WHERE g.collected_at_column IS NULL AND NOT g.stamp_collection ORDER BY 1))
		   || ' (they opted out of the stamps that every other table takes: protect them with a collected_at_column, or switch their stamps on with profile_guard.set_collection_stamps(tbl, true))',
		   CASE WHEN _stopped_consent_grace() IS NULL
				THEN 'profile_guard.stopped_consent_grace = -1: tags held only by consents that stopped counting (not renewed after a purpose change, opted out) are kept without limit' END],
	 format('every active purpose has a retention period, applied on every guarded table by its collected_at column or its collection stamps (active purposes: %s, guarded tables: %s, with collection stamps: %s); tags held only by consents that stopped counting are erased after profile_guard.stopped_consent_grace = %s',
			n_active, (SELECT count(*) FROM guarded_table),
			(SELECT count(*) FROM guarded_table g WHERE g.collected_at_column IS NULL AND g.stamp_collection),
			current_setting('profile_guard.stopped_consent_grace', true))),

	('§7.4 (legal hold)', 'Data a law requires kept is kept unused, and erased when the hold ends.',
	 CASE WHEN n_holds > 0
		  THEN format('review the active legal holds in profile_guard.legal_hold (%s, subjects: %s): their data is read only by legal_obligation purposes and the sweep defers its erasure until each hold ends',
					  n_holds, (SELECT count(DISTINCT h.subject) FROM legal_hold h
								WHERE h.released_at IS NULL
								  AND (h.until IS NULL OR h.until > statement_timestamp()))) END,
	 'no active legal hold',
	 NULL, NULL),

	('§9 a (recipients)', 'Profiles provided to other parties go only to identified recipients under agreed terms.',
	 'check the agreements with the recipients of: '
	 || _name_list(ARRAY(SELECT format('%s (to %s)', p.purpose, p.recipient) FROM purpose p
						 WHERE p.retired_at IS NULL AND p.recipient IS NOT NULL ORDER BY 1)),
	 'no active purpose names a recipient',
	 NULL, NULL),

	('§8 (cross-border)', 'Profiles provided abroad have separate consent and an assessment (PIPL art. 38-39).',
	 NULL,
	 CASE WHEN n_abroad = 0 THEN format('no active purpose names a recipient outside %s', home_country()) END,
	 ARRAY['cross-border purposes without an assessment of their current version (unusable until one is recorded): '
		   || _name_list(ARRAY(SELECT format('%s (to %s, %s; version %s)', p.purpose, p.recipient, r.country, p.version)
							   FROM purpose p JOIN recipient r ON r.recipient = p.recipient
							   WHERE p.retired_at IS NULL AND r.country <> home_country()
								 AND NOT EXISTS (SELECT 1 FROM assessment a
												 WHERE a.purpose = p.purpose AND a.purpose_version = p.version)
							   ORDER BY 1))],
	 'every cross-border purpose is assessed for its current version and uses only separately consented tags: '
	 || _name_list(ARRAY(SELECT format('%s (to %s, %s)', p.purpose, p.recipient, r.country)
						 FROM purpose p JOIN recipient r ON r.recipient = p.recipient
						 WHERE p.retired_at IS NULL AND r.country <> home_country() ORDER BY 1))),

	('§9 a', 'A changed purpose is used only after the subject consents again.',
	 NULL, no_purposes,
	 ARRAY['consents pending renewal after a purpose change (not used until renewed): '
		   || _name_list(ARRAY(SELECT format('%s (consents on an older version: %s)', r.purpose, count(*))
							   FROM consents_needing_renewal r
							   WHERE r.granted_version < r.current_version
							   GROUP BY r.purpose ORDER BY r.purpose))],
	 'no consent for an older purpose version awaits renewal'),

	('§9 b', 'Consents are recorded and the record cannot be altered.',
	 NULL, NULL,
	 ARRAY['triggers keeping the consent ledger append-only are missing or disabled: '
		   || _name_list(ARRAY(SELECT t.name FROM unnest(ARRAY['consent_append_only', 'consent_no_truncate']) AS t(name)
							   WHERE NOT EXISTS (SELECT 1 FROM pg_trigger tg
												 WHERE tg.tgrelid = 'profile_guard.consent'::regclass
												   AND tg.tgname = t.name AND tg.tgenabled <> 'D')
							   ORDER BY 1))],
	 format('the consent ledger is append-only (records: %s)', (SELECT count(*) FROM consent))),

	('§9 c', 'Automated decision-making is preceded by a personal-information impact assessment.',
	 NULL,
	 CASE WHEN n_automated = 0 THEN 'no active automated_decision purpose' END,
	 ARRAY['automated_decision purposes without an assessment of their current version: '
		   || _name_list(ARRAY(SELECT format('%s (version %s)', p.purpose, p.version) FROM purpose p
							   WHERE p.retired_at IS NULL AND p.automated_decision
								 AND NOT EXISTS (SELECT 1 FROM assessment a
												 WHERE a.purpose = p.purpose AND a.purpose_version = p.version)
							   ORDER BY 1))],
	 format('every automated_decision purpose is assessed for its current version (%s)', n_automated)),

	('§9 d', 'Subjects can switch off personalised purposes, effective at once.',
	 NULL,
	 CASE WHEN n_personalised = 0 THEN 'no active personalised purpose' END,
	 ARRAY[CASE WHEN NOT preloaded
				THEN 'profile_guard is not in shared_preload_libraries: opt-outs are not enforced' END],
	 format('opt_out() applies to every personalised purpose at the next statement (personalised purposes: %s, subjects opted out: %s)',
			n_personalised, (SELECT count(*) FROM subject s WHERE s.opted_out))),

	('§9 e', 'Logs do not record tag values.',
	 NULL, NULL,
	 ARRAY['settings that write statement text, and so tag values, to the server log: '
		   || nullif(concat_ws('; ',
				CASE WHEN current_setting('log_statement') IN ('all', 'mod')
					 THEN format('log_statement = %s', current_setting('log_statement')) END,
				CASE WHEN current_setting('log_min_duration_statement')::integer >= 0
					 THEN format('log_min_duration_statement = %s', current_setting('log_min_duration_statement')) END,
				CASE WHEN current_setting('log_min_duration_sample')::integer >= 0
						  AND current_setting('log_statement_sample_rate')::float8 > 0
					 THEN format('log_min_duration_sample = %s', current_setting('log_min_duration_sample')) END,
				'per-role or per-database settings: '
				|| _name_list(ARRAY(SELECT format('%s for %s', x.cfg,
												  concat_ws(' in ', CASE WHEN s.setrole <> 0 THEN 'role ' || s.setrole::regrole END,
															CASE WHEN s.setdatabase <> 0 THEN 'database ' ||
																 (SELECT quote_ident(d.datname) FROM pg_database d WHERE d.oid = s.setdatabase) END))
									FROM pg_db_role_setting s
									CROSS JOIN LATERAL unnest(s.setconfig) AS x(cfg)
									WHERE x.cfg ~* '^log_statement=(all|mod)$'
									   OR x.cfg ~* '^log_min_duration_(statement|sample)=[0-9]'
									ORDER BY 1))), '')],
	 'no statement logging that would print values'),

	('§9 f', 'Access to profiles is limited to the roles that need it for a purpose.',
	 NULL, NULL,
	 ARRAY['roles besides the bootstrap superuser that read raw values: '
		   || _name_list(ARRAY(SELECT format('%s (%s)', quote_ident(r.rolname),
											 concat_ws(', ', CASE WHEN r.rolsuper THEN 'superuser' END,
													   CASE WHEN r.rolbypassrls THEN 'bypassrls' END))
							   FROM pg_roles r
							   WHERE (r.rolsuper OR r.rolbypassrls) AND r.oid <> 10
							   ORDER BY 1)),
		   'purposes allowed to no role: '
		   || _name_list(ARRAY(SELECT p.purpose FROM purpose p
							   WHERE p.retired_at IS NULL
								 AND NOT EXISTS (SELECT 1 FROM purpose_role pr JOIN pg_roles r ON r.rolname = pr.role_name
												 WHERE pr.purpose = p.purpose)
							   ORDER BY 1)),
		   'purposes allowed to roles that do not exist: '
		   || _name_list(ARRAY(SELECT DISTINCT format('%I', pr.role_name) FROM purpose_role pr
							   WHERE NOT EXISTS (SELECT 1 FROM pg_roles r WHERE r.rolname = pr.role_name)
							   ORDER BY 1))],
	 format('no superuser or BYPASSRLS role besides the bootstrap superuser; every active purpose is allowed to a role (grants: %s, roles: %s)',
			(SELECT count(*) FROM purpose_role),
			(SELECT count(DISTINCT pr.role_name) FROM purpose_role pr))),

	('§9 g', 'No tag or purpose describes a subject in prohibited terms.',
	 NULL, NULL,
	 ARRAY['matches of the prohibited lexicon: '
		   || _name_list(ARRAY(SELECT format('tag %s (%s)', t.tag, prohibited_topic(concat_ws(' ', t.tag, t.description)))
							   FROM tag t WHERE prohibited_topic(concat_ws(' ', t.tag, t.description)) IS NOT NULL
							   UNION ALL
							   SELECT format('purpose %s (%s)', p.purpose, prohibited_topic(concat_ws(' ', p.purpose, p.description)))
							   FROM purpose p
							   WHERE p.retired_at IS NULL AND prohibited_topic(concat_ws(' ', p.purpose, p.description)) IS NOT NULL
							   ORDER BY 1))],
	 format('no tag or active purpose matches the prohibited lexicon (tags: %s, active purposes: %s)',
			(SELECT count(*) FROM tag), n_active)),

	('§9 h', 'Consent can be withdrawn at any time and withdrawal takes effect at once.',
	 NULL, no_tables,
	 ARRAY[CASE WHEN NOT preloaded
				THEN 'profile_guard is not in shared_preload_libraries: withdrawals are not enforced' END],
	 format('withdraw_consent() takes effect at the next statement (withdrawals recorded: %s)',
			(SELECT count(*) FROM consent c WHERE c.action = 'withdraw'))),

	('§9 i', 'Minors are recognised: no marketing to minors, guardian consent under 14.',
	 NULL,
	 CASE WHEN NOT EXISTS (SELECT 1 FROM subject) THEN 'no registered subjects' END,
	 ARRAY[CASE WHEN minor_age() < 18 THEN format('profile_guard.minor_age = %s (below 18)', minor_age()) END,
		   CASE WHEN unknown_age() = 'adult' AND n_no_birth > 0
				THEN format('registered subjects without a birth date, treated as adults (profile_guard.unknown_age = adult): %s', n_no_birth) END],
	 format('profile_guard.minor_age = %s; registered subjects without a birth date: %s, treated as %s (profile_guard.unknown_age = %s)',
			minor_age(), n_no_birth,
			CASE unknown_age() WHEN 'child' THEN 'children under 14' WHEN 'minor' THEN 'minors' ELSE 'adults' END,
			unknown_age())),

	('§10 (anonymisation)', 'Rows anonymised at erasure can no longer identify their subject.',
	 NULL,
	 CASE WHEN n_anonymised = 0 THEN 'no guarded table anonymises its rows at erasure' END,
	 ARRAY['columns of tables anonymised at erasure declared neither identifying nor not identifying (the sweep sets them to NULL; declare them with set_anonymise_columns() or set_keep_columns()): '
		   || _name_list(ARRAY(SELECT format('%s.%I', pt.relid, u.col)
							   FROM guarded_table g
							   CROSS JOIN LATERAL _relations(g.relid) AS pt(relid)
							   CROSS JOIN LATERAL unnest(_anonymisation_undeclared(g.relid, pt.relid)) AS u(col)
							   WHERE g.on_erase = 'anonymise'
								 AND EXISTS (SELECT 1 FROM pg_class c WHERE c.oid = g.relid)
							   ORDER BY 1))],
	 format('every column of the tables anonymised at erasure is classified or declared; tags of identifying categories are removed, the others generalised (tables: %s)',
			n_anonymised)),

	('§11 a', 'Subjects manage their tags: see them, switch off single tags and personalised purposes, delete tags.',
	 NULL, no_tables,
	 ARRAY[CASE WHEN NOT preloaded
				THEN 'profile_guard is not in shared_preload_libraries: blocks are not enforced' END],
	 format('block_tag(), erase_tag() and opt_out() take effect at the next statement (blocks in force: %s)',
			(SELECT count(*) FROM tag_block))),

	('§11 a (access)', 'Subjects can obtain what is held about them.',
	 NULL, NULL,
	 ARRAY[CASE WHEN report_desk IS NULL
				THEN 'no role besides superusers can call subject_report(): grant profile_guard_consent to the staff answering requests' END],
	 'subject_report() can be called by: ' || report_desk),

	('§11 a (erasure)', 'Subjects can have their tags and their profile erased.',
	 NULL, NULL,
	 ARRAY[CASE WHEN NOT preloaded
				THEN 'profile_guard is not in shared_preload_libraries: erasure requests do not stop use' END],
	 format('erase_tag() and request_erasure() stop use at the next statement; the sweep makes the erasure physical (requests pending: %s)',
			(SELECT count(*) FROM erasure_request r WHERE r.completed_at IS NULL))),

	('§11 b', 'A person''s identity is verified before they see, change or delete their profile.',
	 'the database cannot verify who a request comes from: check that the application or desk verifies the person before calling subject_report(), block_tag(), erase_tag(), withdraw_consent(), opt_out() or request_erasure() for a subject',
	 NULL, NULL, NULL),

	('§11 c', 'Identity verification for profile management can be switched on and is on.',
	 'outside the database: check the setting of the application that verifies identities',
	 NULL, NULL, NULL),

	('§11 d', 'Subjects have a channel for complaints about profiling, answered in time.',
	 'the database has no complaint channel: check the complaint process and its response times; subject_event records the requests made through the API',
	 NULL, NULL, NULL)
	) AS checks (clause, requirement, manual, not_applicable, faults, met)
	CROSS JOIN LATERAL _assess_verdict(checks.manual, checks.not_applicable, checks.faults, checks.met) AS v
	UNION ALL
	SELECT g.clause, g.requirement, g.status, g.detail FROM _assess_graded() AS g
	) AS r
	-- in clause order: by section number, then by the rest of the clause
	ORDER BY substring(r.clause FROM '[0-9]+')::integer, r.clause;
END
$$;
REVOKE ALL ON FUNCTION assess() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION assess() TO profile_guard_admin;
