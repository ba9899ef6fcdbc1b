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
 * assess(): the database checked against the guideline, one row per
 * clause, in clause order.  status is met, not_met, not_applicable or
 * manual (a person must check it; detail says what); detail names the
 * objects at fault.  docs/accountability.md lists what each clause checks.
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
