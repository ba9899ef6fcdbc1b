/*
 * 85_suggest_classification.sql — discovery (guideline §5 f): columns that
 * look like personal information but are not under policy, found by their
 * name, their comment and a bounded sample of their content.
 * suggest_classification() lists them; assess() (87_assess.sql) reports
 * those of guarded tables under §5 f and uses the name rules for §6.
 * docs/accountability.md describes it.
 *
 * Content is sampled as the extension owner (a superuser: the read path
 * lets it see raw stored values), so suggest_classification() is SECURITY
 * DEFINER with search_path pinned and executable by profile_guard_admin
 * only.  It writes nothing.
 */

-- ---------------------------------------------------------------------
-- Detectors
-- ---------------------------------------------------------------------

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
BEGIN
	IF suggest_classification.schema IS NOT NULL THEN
		IF suggest_classification.schema IN ('profile_guard', 'pg_catalog', 'information_schema')
		   OR suggest_classification.schema ~ '^pg_(toast|temp_|toast_temp_)' THEN
			RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
				MESSAGE = 'schema is not an application schema',
				DETAIL = format('Schema "%s" holds system or profile_guard objects; its columns are never suggested.', suggest_classification.schema),
				HINT = 'Pass an application schema, or NULL for all of them.';
		END IF;
		IF NOT EXISTS (SELECT 1 FROM pg_namespace n WHERE n.nspname = suggest_classification.schema) THEN
			RAISE EXCEPTION USING ERRCODE = 'invalid_schema_name',
				MESSAGE = 'schema does not exist',
				DETAIL = format('There is no schema named "%s".', suggest_classification.schema),
				HINT = 'Pass the name of an existing schema (see \dn), or NULL for all of them.';
		END IF;
	END IF;
	RETURN QUERY SELECT * FROM _suggestions(suggest_classification.schema, false);
END
$$;
REVOKE ALL ON FUNCTION suggest_classification(name) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION suggest_classification(name) TO profile_guard_admin;
