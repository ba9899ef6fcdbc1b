
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
SET search_path = pg_catalog, profile_guard, pg_temp
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
SET search_path = pg_catalog, profile_guard, pg_temp
AS $$
DECLARE
	n		bigint;
	n_id	bigint;
	n_card	bigint;
	n_mob	bigint;
	n_mail	bigint;
	n_geo	bigint;
BEGIN
	-- read as the extension owner: only a table (no view's rule, no foreign
	-- table), only a column of a built-in type (no cast of the owner's)
	PERFORM _check_guarded(tbl, NULL, NULL, NULL, false);
	IF NOT EXISTS (SELECT 1 FROM pg_attribute a
				   WHERE a.attrelid = tbl AND a.attname = col AND NOT a.attisdropped
					 AND a.atttypid IN ('text'::regtype, 'varchar'::regtype, 'bpchar'::regtype,
										'int8'::regtype, 'numeric'::regtype, 'point'::regtype)) THEN
		RETURN;
	END IF;
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
SET search_path = pg_catalog, profile_guard, pg_temp
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
SET search_path = pg_catalog, profile_guard, pg_temp
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
SET search_path = pg_catalog, profile_guard, pg_temp
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
