/*
 * 30_taxonomy.sql — the taxonomy: shipped categories and prohibited lexicon,
 * and the functions that define categories and tags (docs/rules.md).
 *
 * A tag's effective sensitivity is the highest of its declared sensitivity,
 * its category's and every (transitive) source's; all_sources is the
 * transitive closure of derived_from.  Both are maintained here, for the
 * tag being defined and for every tag derived from it.
 */

-- Shipped categories (PIPL art. 28, GB/T 35273 appendix B).  Transaction
-- and consumption records, the home address and precise location are
-- sensitive: so are the categories consumption and contact.
INSERT INTO category (category, sensitivity, builtin, description) VALUES
	('biometric', 'sensitive', true, 'Biometric features: face, fingerprint, voiceprint, gait'),
	('religious_belief', 'sensitive', true, 'Religious belief and practice'),
	('specific_identity', 'sensitive', true, 'Specific identities: ethnicity, political affiliation, membership'),
	('medical_health', 'sensitive', true, 'Medical and health information'),
	('financial_account', 'sensitive', true, 'Financial accounts, credit, income, assets'),
	('whereabouts', 'sensitive', true, 'Whereabouts and movement tracks'),
	('minor', 'sensitive', true, 'Information of a child under 14'),
	('sexual_orientation', 'sensitive', true, 'Sexual orientation and sex life'),
	('criminal_record', 'sensitive', true, 'Criminal records and offences'),
	('communication_content', 'sensitive', true, 'Content of communications'),
	('browsing_history', 'sensitive', true, 'Web browsing history'),
	('precise_location', 'sensitive', true, 'Precise geographic location'),
	('basic', 'general', true, 'Basic profile: age band, gender, language, region'),
	('contact', 'sensitive', true, 'Contact channels and home address'),
	('device', 'general', true, 'Device and software characteristics'),
	('behavior', 'general', true, 'Behaviour within the service'),
	('preference', 'general', true, 'Interests and preferences'),
	('consumption', 'sensitive', true, 'Transaction and consumption records, purchase habits'),
	('occupation', 'general', true, 'Occupation and employment'),
	('education', 'general', true, 'Education'),
	('social', 'general', true, 'Social relations and activity'),
	('derived', 'general', true, 'Features computed from other tags');

/*
 * Shipped prohibited lexicon (§7.3 b, §9 g).  ASCII terms match whole words
 * of the normalised text (lower case; ".", "_", "-" and white space read as
 * one space), so "casino" flags "casino.vip" but "race" would never be
 * listed since it flags "race_results"; non-ASCII (CJK) terms match as
 * substrings.  Discrimination topics list discriminatory terms, not the
 * neutral words (a tag about religion or disease is sensitive, not
 * prohibited).
 */
INSERT INTO prohibited_topic (topic, description, builtin) VALUES
	('obscene', 'Obscene and pornographic content (§7.3 b)', true),
	('gambling', 'Gambling (§7.3 b)', true),
	('superstition', 'Superstition and fortune telling (§7.3 b)', true),
	('terror', 'Terrorism (§7.3 b)', true),
	('violence', 'Violence (§7.3 b)', true),
	('ethnicity', 'Discrimination by ethnicity or region (§7.3 b)', true),
	('race', 'Discrimination by race (§7.3 b)', true),
	('religion', 'Discrimination by religion (§7.3 b)', true),
	('disability', 'Discrimination by disability (§7.3 b)', true),
	('disease', 'Discrimination by disease (§7.3 b)', true),
	('extremism', 'Extremism (§9 g 2)', true),
	('national_security', 'Endangering national security (§9 g 2)', true),
	('false_information', 'False information and rumours (§9 g 2)', true);

INSERT INTO prohibited_term (term, topic, builtin) VALUES
	-- obscene
	('色情', 'obscene', true), ('淫秽', 'obscene', true), ('裸聊', 'obscene', true),
	('黄色网站', 'obscene', true), ('招嫖', 'obscene', true),
	('porn', 'obscene', true), ('pornography', 'obscene', true),
	('pornographic', 'obscene', true), ('obscene', 'obscene', true),
	('nsfw', 'obscene', true), ('adult video', 'obscene', true),
	-- gambling
	('赌博', 'gambling', true), ('博彩', 'gambling', true), ('赌场', 'gambling', true),
	('赌球', 'gambling', true), ('六合彩', 'gambling', true),
	('gambling', 'gambling', true), ('gamble', 'gambling', true),
	('gambler', 'gambling', true), ('casino', 'gambling', true),
	('sports betting', 'gambling', true), ('bookmaker', 'gambling', true),
	-- superstition
	('算命', 'superstition', true), ('占卜', 'superstition', true),
	('看相', 'superstition', true), ('封建迷信', 'superstition', true),
	('风水先生', 'superstition', true),
	('fortune telling', 'superstition', true), ('fortune teller', 'superstition', true),
	('palmistry', 'superstition', true), ('palm reading', 'superstition', true),
	('witchcraft', 'superstition', true), ('superstition', 'superstition', true),
	-- terror ("恐怖" alone would flag horror films: 恐怖片)
	('恐怖袭击', 'terror', true), ('恐怖主义', 'terror', true),
	('恐怖分子', 'terror', true), ('极端主义', 'terror', true),
	('terrorist', 'terror', true), ('terrorism', 'terror', true),
	('terror attack', 'terror', true), ('extremist', 'terror', true),
	('jihadist', 'terror', true), ('bomb making', 'terror', true),
	-- violence
	('暴力', 'violence', true), ('血腥', 'violence', true), ('杀人', 'violence', true),
	('自残', 'violence', true), ('虐待', 'violence', true),
	('violence', 'violence', true), ('violent', 'violence', true),
	('murder', 'violence', true), ('torture', 'violence', true),
	('self harm', 'violence', true), ('gory', 'violence', true),
	-- ethnicity
	('民族歧视', 'ethnicity', true), ('地域歧视', 'ethnicity', true),
	('地域黑', 'ethnicity', true),
	('ethnic slur', 'ethnicity', true), ('ethnic discrimination', 'ethnicity', true),
	('ethnic cleansing', 'ethnicity', true), ('xenophobic', 'ethnicity', true),
	('xenophobia', 'ethnicity', true),
	-- race
	('种族歧视', 'race', true), ('种族主义', 'race', true), ('种族优越', 'race', true),
	('racist', 'race', true), ('racism', 'race', true), ('racial slur', 'race', true),
	('racial discrimination', 'race', true), ('white supremacy', 'race', true),
	-- religion
	('宗教歧视', 'religion', true), ('邪教', 'religion', true), ('异教徒', 'religion', true),
	('religious discrimination', 'religion', true), ('religious hatred', 'religion', true),
	('infidel', 'religion', true), ('islamophobia', 'religion', true),
	('antisemitic', 'religion', true), ('anti semitic', 'religion', true),
	-- disability
	('残疾歧视', 'disability', true), ('残废', 'disability', true),
	('瘸子', 'disability', true), ('弱智', 'disability', true),
	('retard', 'disability', true), ('retarded', 'disability', true),
	('cripple', 'disability', true), ('crippled', 'disability', true),
	('disability discrimination', 'disability', true),
	-- disease
	('疾病歧视', 'disease', true), ('乙肝歧视', 'disease', true),
	('艾滋病歧视', 'disease', true), ('病秧子', 'disease', true),
	('disease discrimination', 'disease', true), ('hiv discrimination', 'disease', true),
	('plague carrier', 'disease', true), ('leper', 'disease', true),
	-- extremism ("extremist" and 极端主义 are terror's)
	('极端思想', 'extremism', true), ('宣扬极端', 'extremism', true),
	('煽动极端', 'extremism', true),
	('extremism', 'extremism', true), ('radicalisation', 'extremism', true),
	('radicalization', 'extremism', true),
	-- national security
	('危害国家安全', 'national_security', true), ('颠覆国家政权', 'national_security', true),
	('分裂国家', 'national_security', true), ('泄露国家秘密', 'national_security', true),
	('espionage', 'national_security', true), ('state subversion', 'national_security', true),
	('separatism', 'national_security', true),
	-- false information
	('虚假信息', 'false_information', true), ('造谣', 'false_information', true),
	('传播谣言', 'false_information', true),
	('disinformation', 'false_information', true), ('misinformation', 'false_information', true),
	('fake news', 'false_information', true), ('hoax', 'false_information', true);

-- The normal form texts and terms are compared in: lower case, the
-- separators of identifiers and white space read as one space.
CREATE FUNCTION _lexicon_normalise(txt text)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
	SELECT pg_catalog.btrim(pg_catalog.regexp_replace(pg_catalog.lower(txt),
												  '[._[:space:]-]+', ' ', 'g'))
$$;
REVOKE ALL ON FUNCTION _lexicon_normalise(text) FROM PUBLIC;

/*
 * prohibited_topic(text): the topic of the first prohibited term the text
 * contains, or NULL.  ASCII terms are matched as whole words with one
 * alternation (one compiled regex, cached by the regex engine), CJK terms
 * as substrings.  Used by check_prohibited() and by the write path for
 * long-shape tag values.
 */
CREATE FUNCTION prohibited_topic(txt text)
RETURNS text
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, profile_guard, pg_temp
AS $$
DECLARE
	norm	text := _lexicon_normalise(txt);
	words	text;
	hit		text;
	found_topic text;
BEGIN
	IF norm IS NULL OR norm = '' THEN
		RETURN NULL;
	END IF;

	-- non-ASCII terms: substring of the normalised text
	SELECT pt.topic INTO found_topic
	FROM prohibited_term pt
	WHERE pt.term !~ '^[[:ascii:]]+$'
	  AND strpos(norm, _lexicon_normalise(pt.term)) > 0
	ORDER BY pt.topic, pt.term
	LIMIT 1;
	IF found_topic IS NOT NULL THEN
		RETURN found_topic;
	END IF;

	-- ASCII terms: whole words, longest first so that the reported term is
	-- the longest one present
	IF norm !~ '[a-z]' THEN
		RETURN NULL;
	END IF;
	SELECT string_agg(regexp_replace(_lexicon_normalise(pt.term),
									 '([.^$*+?(){}|\[\]\\])', '\\\1', 'g'),
					  '|' ORDER BY length(pt.term) DESC, pt.term)
	INTO words
	FROM prohibited_term pt
	WHERE pt.term ~ '^[[:ascii:]]+$';
	IF words IS NULL THEN
		RETURN NULL;
	END IF;

	hit := (regexp_match(norm, '\m(' || words || ')\M'))[1];
	IF hit IS NULL THEN
		RETURN NULL;
	END IF;
	SELECT pt.topic INTO found_topic
	FROM prohibited_term pt
	WHERE _lexicon_normalise(pt.term) = hit
	ORDER BY pt.topic
	LIMIT 1;
	RETURN found_topic;
END
$$;
REVOKE ALL ON FUNCTION prohibited_topic(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION prohibited_topic(text) TO profile_guard_admin;

/*
 * check_prohibited(what, text_to_check): raise 22023 when the text contains
 * a prohibited term.  "what" names the text ("tag name", "tag description",
 * "tag value"); the DETAIL names the topic, never the text.
 */
CREATE FUNCTION check_prohibited(what text, text_to_check text)
RETURNS void
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, profile_guard, pg_temp
AS $$
DECLARE
	t	text := prohibited_topic(text_to_check);
BEGIN
	IF t IS NOT NULL THEN
		RAISE EXCEPTION USING
			ERRCODE = 'invalid_parameter_value',
			MESSAGE = format('%s contains a prohibited term', coalesce(what, 'text')),
			DETAIL = format('The %s matches a term of the prohibited topic "%s".',
							coalesce(what, 'text'), t),
			HINT = 'Describe the feature without the terms of the prohibited topics (see tables profile_guard.prohibited_topic and profile_guard.prohibited_term).';
	END IF;
END
$$;
REVOKE ALL ON FUNCTION check_prohibited(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION check_prohibited(text, text) TO profile_guard_admin;

/*
 * add_prohibited_topic(topic, description): the DBA adds a topic to the
 * lexicon (its terms follow with add_prohibited_term).  Redefining a topic
 * of the DBA's changes its description; a shipped topic cannot be redefined.
 */
CREATE FUNCTION add_prohibited_topic(topic text, description text)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, profile_guard, pg_temp
AS $$
DECLARE
	old			record;
BEGIN
	IF add_prohibited_topic.topic IS NULL OR add_prohibited_topic.description IS NULL THEN
		RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed',
			MESSAGE = 'topic and description must not be null',
			HINT = 'Call profile_guard.add_prohibited_topic(''topic'', ''description'').';
	END IF;
	IF add_prohibited_topic.topic !~ '^[a-z][a-z0-9_]{0,62}$' THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = 'invalid prohibited topic name',
			DETAIL = format('Topic name "%s" is not a lower-case identifier of at most 63 characters.',
							left(add_prohibited_topic.topic, 120)),
			HINT = 'Use a name like ''pyramid_selling''.';
	END IF;
	IF btrim(add_prohibited_topic.description) = '' THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = 'prohibited topic description must not be empty',
			DETAIL = format('Topic "%s" has an empty description.', add_prohibited_topic.topic),
			HINT = 'Say what the topic covers, e.g. profile_guard.add_prohibited_topic(''pyramid_selling'', ''Pyramid selling schemes'').';
	END IF;
	SELECT * INTO old FROM prohibited_topic pt WHERE pt.topic = add_prohibited_topic.topic FOR UPDATE;
	IF NOT FOUND THEN
		INSERT INTO prohibited_topic (topic, description, builtin)
		VALUES (add_prohibited_topic.topic, add_prohibited_topic.description, false);
	ELSIF old.builtin THEN
		RAISE EXCEPTION USING ERRCODE = 'duplicate_object',
			MESSAGE = 'built-in prohibited topic cannot be redefined',
			DETAIL = format('Topic "%s" is shipped with profile_guard.', add_prohibited_topic.topic),
			HINT = 'Add terms to it with profile_guard.add_prohibited_term(), or add a topic with another name.';
	ELSE
		UPDATE prohibited_topic pt SET description = add_prohibited_topic.description
		WHERE pt.topic = add_prohibited_topic.topic;
	END IF;
END
$$;
REVOKE ALL ON FUNCTION add_prohibited_topic(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION add_prohibited_topic(text, text) TO profile_guard_admin;

/*
 * remove_prohibited_topic(topic): removes a topic the DBA added, once it
 * holds no term.  Shipped topics stay.
 */
CREATE FUNCTION remove_prohibited_topic(topic text)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, profile_guard, pg_temp
AS $$
DECLARE
	old			record;
	terms		bigint;
BEGIN
	IF remove_prohibited_topic.topic IS NULL THEN
		RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed',
			MESSAGE = 'topic must not be null',
			HINT = 'Call profile_guard.remove_prohibited_topic(''topic'').';
	END IF;
	SELECT * INTO old FROM prohibited_topic pt WHERE pt.topic = remove_prohibited_topic.topic FOR UPDATE;
	IF NOT FOUND THEN
		RAISE EXCEPTION USING ERRCODE = 'undefined_object',
			MESSAGE = 'prohibited topic does not exist',
			DETAIL = format('Topic "%s" is not in profile_guard.prohibited_topic.',
							left(remove_prohibited_topic.topic, 120)),
			HINT = 'The topics are listed in table profile_guard.prohibited_topic.';
	END IF;
	IF old.builtin THEN
		RAISE EXCEPTION USING ERRCODE = 'insufficient_privilege',
			MESSAGE = 'built-in prohibited topic cannot be removed',
			DETAIL = format('Topic "%s" is shipped with profile_guard.', remove_prohibited_topic.topic),
			HINT = 'Only topics added with profile_guard.add_prohibited_topic() can be removed.';
	END IF;
	SELECT count(*) INTO terms FROM prohibited_term t WHERE t.topic = remove_prohibited_topic.topic;
	IF terms > 0 THEN
		RAISE EXCEPTION USING ERRCODE = 'dependent_objects_still_exist',
			MESSAGE = 'prohibited topic still has terms',
			DETAIL = format('Topic "%s" has %s term(s).', remove_prohibited_topic.topic, terms),
			HINT = format('Remove them first with profile_guard.remove_prohibited_term(term) (they are in profile_guard.prohibited_term where topic = %L).',
						  remove_prohibited_topic.topic);
	END IF;
	DELETE FROM prohibited_topic pt WHERE pt.topic = remove_prohibited_topic.topic;
END
$$;
REVOKE ALL ON FUNCTION remove_prohibited_topic(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION remove_prohibited_topic(text) TO profile_guard_admin;

/*
 * exempt_prohibited_topic(topic, category): the values of tags of the
 * category are no longer checked against the topic's terms (rule 13, e.g.
 * a disease named by a medical_health tag).  Tag names and descriptions
 * still are.  Exempting again changes nothing.
 */
CREATE FUNCTION exempt_prohibited_topic(topic text, category text)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, profile_guard, pg_temp
AS $$
BEGIN
	IF exempt_prohibited_topic.topic IS NULL OR exempt_prohibited_topic.category IS NULL THEN
		RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed',
			MESSAGE = 'topic and category must not be null',
			HINT = 'Call profile_guard.exempt_prohibited_topic(''topic'', ''category'').';
	END IF;
	IF NOT EXISTS (SELECT 1 FROM prohibited_topic pt WHERE pt.topic = exempt_prohibited_topic.topic) THEN
		RAISE EXCEPTION USING ERRCODE = 'undefined_object',
			MESSAGE = 'prohibited topic does not exist',
			DETAIL = format('Topic "%s" is not in profile_guard.prohibited_topic.',
							left(exempt_prohibited_topic.topic, 120)),
			HINT = 'The topics are listed in table profile_guard.prohibited_topic.';
	END IF;
	IF NOT EXISTS (SELECT 1 FROM profile_guard.category c WHERE c.category = exempt_prohibited_topic.category) THEN
		RAISE EXCEPTION USING ERRCODE = 'undefined_object',
			MESSAGE = 'category does not exist',
			DETAIL = format('Category "%s" is not in profile_guard.category.',
							left(exempt_prohibited_topic.category, 120)),
			HINT = 'The categories are listed in table profile_guard.category.';
	END IF;
	INSERT INTO prohibited_topic_exemption (topic, category)
	VALUES (exempt_prohibited_topic.topic, exempt_prohibited_topic.category)
	ON CONFLICT ON CONSTRAINT prohibited_topic_exemption_pkey DO NOTHING;
	PERFORM _policy_changed();
END
$$;
REVOKE ALL ON FUNCTION exempt_prohibited_topic(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION exempt_prohibited_topic(text, text) TO profile_guard_admin;

/*
 * unexempt_prohibited_topic(topic, category): the topic applies to the
 * values of tags of the category again (for values written from now on).
 */
CREATE FUNCTION unexempt_prohibited_topic(topic text, category text)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, profile_guard, pg_temp
AS $$
BEGIN
	IF unexempt_prohibited_topic.topic IS NULL OR unexempt_prohibited_topic.category IS NULL THEN
		RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed',
			MESSAGE = 'topic and category must not be null',
			HINT = 'Call profile_guard.unexempt_prohibited_topic(''topic'', ''category'').';
	END IF;
	DELETE FROM prohibited_topic_exemption e
	WHERE e.topic = unexempt_prohibited_topic.topic AND e.category = unexempt_prohibited_topic.category;
	IF NOT FOUND THEN
		RAISE EXCEPTION USING ERRCODE = 'undefined_object',
			MESSAGE = 'prohibited topic is not exempted for the category',
			DETAIL = format('Topic "%s" applies to category "%s" already.',
							left(unexempt_prohibited_topic.topic, 120), left(unexempt_prohibited_topic.category, 120)),
			HINT = 'The exemptions are listed in table profile_guard.prohibited_topic_exemption.';
	END IF;
	PERFORM _policy_changed();
END
$$;
REVOKE ALL ON FUNCTION unexempt_prohibited_topic(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION unexempt_prohibited_topic(text, text) TO profile_guard_admin;

/*
 * add_prohibited_term(term, topic): the DBA extends the lexicon.  The term
 * is stored in normal form; re-adding an existing term changes its topic
 * (a shipped term keeps its own).
 */
CREATE FUNCTION add_prohibited_term(term text, topic text)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, profile_guard, pg_temp
AS $$
DECLARE
	normalised	text := _lexicon_normalise(add_prohibited_term.term);
BEGIN
	IF normalised IS NULL OR add_prohibited_term.topic IS NULL THEN
		RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed',
			MESSAGE = 'term and topic must not be null',
			HINT = 'Call profile_guard.add_prohibited_term(''term'', ''topic'').';
	END IF;
	IF normalised = '' THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = 'prohibited term must not be empty',
			DETAIL = 'The term is empty once normalised.',
			HINT = 'Pass a word or phrase, e.g. profile_guard.add_prohibited_term(''casino'', ''gambling'').';
	END IF;
	IF NOT EXISTS (SELECT 1 FROM prohibited_topic pt WHERE pt.topic = add_prohibited_term.topic) THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = 'unknown prohibited topic',
			DETAIL = format('Topic "%s" is not in profile_guard.prohibited_topic.',
							left(add_prohibited_term.topic, 120)),
			HINT = 'Use one of the topics in table profile_guard.prohibited_topic, or add it first with profile_guard.add_prohibited_topic(''topic'', ''description'').';
	END IF;
	INSERT INTO prohibited_term (term, topic, builtin)
	VALUES (normalised, add_prohibited_term.topic, false)
	ON CONFLICT ON CONSTRAINT prohibited_term_pkey
	DO UPDATE SET topic = excluded.topic WHERE NOT prohibited_term.builtin;
	PERFORM _policy_changed();
END
$$;
REVOKE ALL ON FUNCTION add_prohibited_term(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION add_prohibited_term(text, text) TO profile_guard_admin;

/*
 * remove_prohibited_term(term): removes a term the DBA added (the term is
 * looked up in normal form).  Shipped terms stay.
 */
CREATE FUNCTION remove_prohibited_term(term text)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, profile_guard, pg_temp
AS $$
DECLARE
	normalised	text := _lexicon_normalise(remove_prohibited_term.term);
	old			record;
BEGIN
	IF normalised IS NULL THEN
		RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed',
			MESSAGE = 'term must not be null',
			HINT = 'Call profile_guard.remove_prohibited_term(''term'').';
	END IF;
	IF normalised = '' THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = 'prohibited term must not be empty',
			DETAIL = 'The term is empty once normalised.',
			HINT = 'Pass a term of table profile_guard.prohibited_term.';
	END IF;
	SELECT * INTO old FROM prohibited_term t WHERE t.term = normalised FOR UPDATE;
	IF NOT FOUND THEN
		RAISE EXCEPTION USING ERRCODE = 'undefined_object',
			MESSAGE = 'prohibited term does not exist',
			DETAIL = format('Term "%s" is not in profile_guard.prohibited_term.', left(normalised, 120)),
			HINT = 'The terms are listed in table profile_guard.prohibited_term.';
	END IF;
	IF old.builtin THEN
		RAISE EXCEPTION USING ERRCODE = 'insufficient_privilege',
			MESSAGE = 'built-in prohibited term cannot be removed',
			DETAIL = format('Term "%s" of topic "%s" is shipped with profile_guard.', normalised, old.topic),
			HINT = 'Only terms added with profile_guard.add_prohibited_term() can be removed.';
	END IF;
	DELETE FROM prohibited_term t WHERE t.term = normalised;
	PERFORM _policy_changed();
END
$$;
REVOKE ALL ON FUNCTION remove_prohibited_term(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION remove_prohibited_term(text) TO profile_guard_admin;

-- Shape of a tag name: dotted lower-case identifier of at most 100 chars.
CREATE FUNCTION _check_tag_name(tag text)
RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, profile_guard, pg_temp
AS $$
BEGIN
	IF tag IS NULL THEN
		RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed',
			MESSAGE = 'tag must not be null',
			HINT = 'Pass a dotted tag name such as ''interest.sports''.';
	END IF;
	IF length(tag) > 100 OR tag !~ '^[a-z][a-z0-9_]*(\.[a-z0-9_]+)+$' THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = 'invalid tag name',
			DETAIL = format('Tag name "%s" is not a dotted lower-case identifier of at most 100 characters.',
							left(tag, 120)),
			HINT = 'Use names like ''interest.sports'' or ''score.churn_risk''.';
	END IF;
END
$$;
REVOKE ALL ON FUNCTION _check_tag_name(text) FROM PUBLIC;

/*
 * _check_tag_list(tags, what): validate a list of tag names and "prefix.*"
 * patterns (consents, purposes): not empty, no NULL, each entry well formed
 * and covering at least one defined tag.  Returns the list sorted and
 * without duplicates, so equal sets compare equal.
 */
CREATE FUNCTION _check_tag_list(tags text[], what text)
RETURNS text[]
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, profile_guard, pg_temp
AS $$
DECLARE
	entry	text;
BEGIN
	IF tags IS NULL THEN
		RETURN NULL;
	END IF;
	IF cardinality(tags) = 0 THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = 'tag list must not be empty',
			DETAIL = format('The tag list of %s is empty.', what),
			HINT = 'List tag names or patterns such as ARRAY[''interest.*''].';
	END IF;
	FOREACH entry IN ARRAY tags LOOP
		IF entry IS NULL THEN
			RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed',
				MESSAGE = 'tag list must not contain null',
				DETAIL = format('The tag list of %s contains a NULL entry.', what),
				HINT = 'Remove the NULL entry from the array.';
		END IF;
		IF length(entry) > 100
		   OR NOT (entry ~ '^[a-z][a-z0-9_]*(\.[a-z0-9_]+)+$'
				   OR entry ~ '^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*\.\*$') THEN
			RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
				MESSAGE = 'invalid tag name or pattern',
				DETAIL = format('Entry "%s" of the tag list of %s is neither a dotted tag name nor a pattern "prefix.*".',
								left(entry, 120), what),
				HINT = 'Use tag names like ''interest.sports'' or patterns like ''interest.*''.';
		END IF;
		IF NOT EXISTS (SELECT 1 FROM tag t WHERE tag_matches(ARRAY[entry], t.tag)) THEN
			RAISE EXCEPTION USING ERRCODE = 'undefined_object',
				MESSAGE = CASE WHEN right(entry, 2) = '.*'
							   THEN 'tag pattern matches no tag' ELSE 'tag does not exist' END,
				DETAIL = format('Entry "%s" of the tag list of %s matches no defined tag.', entry, what),
				HINT = 'Define the tag first with profile_guard.define_tag(tag, category).';
		END IF;
	END LOOP;
	RETURN ARRAY(SELECT DISTINCT e FROM unnest(tags) AS e ORDER BY e);
END
$$;
REVOKE ALL ON FUNCTION _check_tag_list(text[], text) FROM PUBLIC;

/*
 * _tag_closure(roots): all_sources and effective sensitivity, recomputed
 * from the direct derived_from edges, of the given tags and of every tag
 * derived from them (whose stored all_sources name a root).
 */
CREATE FUNCTION _tag_closure(roots text[])
RETURNS TABLE (tag text, all_sources text[], sensitivity text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, profile_guard, pg_temp
AS $$
	WITH RECURSIVE affected AS (
		SELECT t.tag FROM tag t
		WHERE t.tag = ANY (roots) OR t.all_sources && roots
	),
	reach(root, src) AS (
		SELECT a.tag, s
		FROM affected a JOIN tag t ON t.tag = a.tag, unnest(t.derived_from) AS s
		UNION
		SELECT r.root, s
		FROM reach r JOIN tag t ON t.tag = r.src, unnest(t.derived_from) AS s
	)
	SELECT a.tag,
		   coalesce((SELECT array_agg(DISTINCT r.src ORDER BY r.src)
					 FROM reach r WHERE r.root = a.tag), '{}'),
		   CASE WHEN EXISTS (
					SELECT 1 FROM tag t JOIN category c ON c.category = t.category
					WHERE (t.tag = a.tag
						   OR t.tag IN (SELECT r.src FROM reach r WHERE r.root = a.tag))
					  AND (t.declared_sensitivity = 'sensitive' OR c.sensitivity = 'sensitive'))
				THEN 'sensitive' ELSE 'general' END
	FROM affected a
$$;
REVOKE ALL ON FUNCTION _tag_closure(text[]) FROM PUBLIC;

/*
 * _tag_held_by_long_table(tag): the first long-shape guarded table (by
 * name) with a row of this tag, or NULL.  Its rows are read with the
 * extension's rights but no code of the table's owner runs: only plain and
 * partitioned tables whose reads evaluate no owner code are read
 * (_check_guarded), the tag column compared as text with pg_catalog's
 * operator; any other counts as holding the tag.
 */
CREATE FUNCTION _tag_held_by_long_table(tag text)
RETURNS regclass
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, profile_guard, pg_temp
AS $$
DECLARE
	p_tag	text := tag;
	g		record;
	found_row boolean;
BEGIN
	FOR g IN
		SELECT gt.relid, gt.tag_column, c.relkind
		FROM guarded_table gt JOIN pg_class c ON c.oid = gt.relid
		WHERE gt.tag_column IS NOT NULL
		ORDER BY gt.relid::text
	LOOP
		IF g.relkind NOT IN ('r', 'p') THEN
			RETURN g.relid;		-- cannot be read safely: count it as holding the tag
		END IF;
		BEGIN
			PERFORM _check_guarded(g.relid, NULL, NULL, g.tag_column, false);
		EXCEPTION WHEN object_not_in_prerequisite_state OR wrong_object_type
				OR datatype_mismatch OR undefined_column THEN
			RETURN g.relid;		-- cannot be read safely: count it as holding the tag
		END;
		EXECUTE format('SELECT EXISTS (SELECT 1 FROM %s WHERE %I::pg_catalog.text OPERATOR(pg_catalog.=) $1)',
					   g.relid, g.tag_column)
			INTO found_row USING p_tag;
		IF found_row THEN
			RETURN g.relid;
		END IF;
	END LOOP;
	RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION _tag_held_by_long_table(text) FROM PUBLIC;

/*
 * _refresh_tags(roots): store what _tag_closure() computes.  Refuses (55000)
 * when the sensitivity of a tag that is classified on a column would
 * change: its stored form (plaintext or ciphertext) would no longer match.
 */
CREATE FUNCTION _refresh_tags(roots text[])
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, profile_guard, pg_temp
AS $$
DECLARE
	r	record;
BEGIN
	-- WRITE PATH: a classified tag changing sensitivity would need its
	-- stored values encrypted or decrypted; until the write path does that,
	-- refuse.
	FOR r IN
		SELECT t.tag, t.sensitivity AS old_s, n.sensitivity AS new_s,
			   cc.relid, cc.column_name
		FROM _tag_closure(roots) n
		JOIN tag t ON t.tag = n.tag
		JOIN classified_column cc ON cc.tag = t.tag
		WHERE t.sensitivity <> n.sensitivity
		ORDER BY t.tag, cc.relid::text, cc.column_name
		LIMIT 1
	LOOP
		RAISE EXCEPTION USING ERRCODE = 'object_not_in_prerequisite_state',
			MESSAGE = 'tag sensitivity cannot change while the tag is classified',
			DETAIL = format('Tag "%s" would become %s but is classified on column "%s" of table %s.',
							r.tag, r.new_s, r.column_name, r.relid),
			HINT = format('Call profile_guard.declassify(%L, %L) first.', r.relid::text, r.column_name);
	END LOOP;
	-- the same for tags stored as rows of long-shape tables
	FOR r IN
		SELECT t.tag, n.sensitivity AS new_s, _tag_held_by_long_table(t.tag) AS relid
		FROM _tag_closure(roots) n
		JOIN tag t ON t.tag = n.tag
		WHERE t.sensitivity <> n.sensitivity
		ORDER BY t.tag
	LOOP
		IF r.relid IS NOT NULL THEN
			RAISE EXCEPTION USING ERRCODE = 'object_not_in_prerequisite_state',
				MESSAGE = 'tag sensitivity cannot change while a long-shape table holds the tag',
				DETAIL = format('Tag "%s" would become %s but table %s stores values of it.',
								r.tag, r.new_s, r.relid),
				HINT = format('Delete the rows of tag "%s" from table %s, or call profile_guard.unprotect(%L) first.',
							  r.tag, r.relid, r.relid::text);
		END IF;
	END LOOP;

	UPDATE tag t
	SET all_sources = n.all_sources, sensitivity = n.sensitivity
	FROM _tag_closure(roots) n
	WHERE n.tag = t.tag
	  AND (t.all_sources IS DISTINCT FROM n.all_sources
		   OR t.sensitivity IS DISTINCT FROM n.sensitivity);
END
$$;
REVOKE ALL ON FUNCTION _refresh_tags(text[]) FROM PUBLIC;

/*
 * define_category(category, sensitivity, description): a DBA's category.
 * Redefining a user category may raise its sensitivity (its tags follow)
 * but not lower it while it holds tags; built-in categories are fixed.
 */
CREATE FUNCTION define_category(category text, sensitivity text, description text DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, profile_guard, pg_temp
AS $$
DECLARE
	old			record;
BEGIN
	IF define_category.category IS NULL OR define_category.sensitivity IS NULL THEN
		RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed',
			MESSAGE = 'category and sensitivity must not be null',
			HINT = 'Call profile_guard.define_category(''name'', ''general'' or ''sensitive'', ''description'').';
	END IF;
	IF define_category.category !~ '^[a-z][a-z0-9_]{0,62}$' THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = 'invalid category name',
			DETAIL = format('Category name "%s" is not a lower-case identifier of at most 63 characters.',
							left(define_category.category, 120)),
			HINT = 'Use a name like ''household''.';
	END IF;
	IF define_category.sensitivity NOT IN ('general', 'sensitive') THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = 'invalid sensitivity',
			DETAIL = format('Sensitivity of category "%s" must be general or sensitive.', define_category.category),
			HINT = 'Pass ''general'' or ''sensitive''.';
	END IF;
	PERFORM check_prohibited('category description', define_category.description);

	SELECT * INTO old FROM category c WHERE c.category = define_category.category FOR UPDATE;
	IF NOT FOUND THEN
		INSERT INTO category (category, sensitivity, builtin, description)
		VALUES (define_category.category, define_category.sensitivity, false, define_category.description);
	ELSE
		IF old.builtin THEN
			RAISE EXCEPTION USING ERRCODE = 'duplicate_object',
				MESSAGE = 'built-in category cannot be redefined',
				DETAIL = format('Category "%s" is shipped with profile_guard.', define_category.category),
				HINT = 'Define a category with another name.';
		END IF;
		IF old.sensitivity = 'sensitive' AND define_category.sensitivity = 'general'
		   AND EXISTS (SELECT 1 FROM tag t WHERE t.category = define_category.category) THEN
			RAISE EXCEPTION USING ERRCODE = 'object_not_in_prerequisite_state',
				MESSAGE = 'sensitive category holding tags cannot become general',
				DETAIL = format('Category "%s" is sensitive and holds tags.', define_category.category),
				HINT = 'Move its tags to another category with profile_guard.define_tag() first.';
		END IF;
		UPDATE category c SET sensitivity = define_category.sensitivity, description = define_category.description
		WHERE c.category = define_category.category;
		IF old.sensitivity <> define_category.sensitivity THEN
			PERFORM _refresh_tags(ARRAY(SELECT t.tag FROM tag t WHERE t.category = define_category.category));
		END IF;
	END IF;
	PERFORM _policy_changed();
END
$$;
REVOKE ALL ON FUNCTION define_category(text, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION define_category(text, text, text) TO profile_guard_admin;

/*
 * define_tag(tag, category, sensitivity, derived_from, description, layer)
 * defines a tag or redefines an existing one (then every tag derived from
 * it is recomputed).
 */
CREATE FUNCTION define_tag(tag text, category text, sensitivity text DEFAULT NULL,
						   derived_from text[] DEFAULT '{}', description text DEFAULT NULL,
						   layer text DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, profile_guard, pg_temp
AS $$
DECLARE
	sens		text;			-- the sensitivity declared, else the category's
	sources		text[];			-- derived_from, distinct and sorted
	tag_layer	text := define_tag.layer;		-- else fact or model by the sources
	cat_sens	text;
	src			text;
	exists_already boolean;
BEGIN
	PERFORM _check_tag_name(define_tag.tag);
	IF define_tag.category IS NULL THEN
		RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed',
			MESSAGE = 'category must not be null',
			DETAIL = format('Tag "%s" needs a category.', define_tag.tag),
			HINT = format('Call profile_guard.define_tag(%L, ''preference'') with one of the categories in profile_guard.category.', define_tag.tag);
	END IF;
	SELECT c.sensitivity INTO cat_sens FROM category c WHERE c.category = define_tag.category;
	IF NOT FOUND THEN
		RAISE EXCEPTION USING ERRCODE = 'undefined_object',
			MESSAGE = 'category does not exist',
			DETAIL = format('Category "%s" of tag "%s" is not defined.', define_tag.category, define_tag.tag),
			HINT = format('Define it with profile_guard.define_category(%L, ''general'' or ''sensitive'') or pick one from profile_guard.category.', define_tag.category);
	END IF;
	IF define_tag.sensitivity IS NOT NULL AND define_tag.sensitivity NOT IN ('general', 'sensitive') THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = 'invalid sensitivity',
			DETAIL = format('Sensitivity of tag "%s" must be general or sensitive.', define_tag.tag),
			HINT = 'Pass ''general'', ''sensitive'' or NULL for the category''s sensitivity.';
	END IF;
	IF define_tag.sensitivity = 'general' AND cat_sens = 'sensitive' THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = 'a sensitive category cannot hold a general tag',
			DETAIL = format('Tag "%s" is declared general but category "%s" is sensitive.', define_tag.tag, define_tag.category),
			HINT = format('Omit the sensitivity: profile_guard.define_tag(%L, %L).', define_tag.tag, define_tag.category);
	END IF;
	sens := coalesce(define_tag.sensitivity, cat_sens);

	-- sources: distinct, sorted
	IF array_position(define_tag.derived_from, NULL) IS NOT NULL THEN
		RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed',
			MESSAGE = 'derived_from must not contain null',
			DETAIL = format('The source list of tag "%s" contains a NULL entry.', define_tag.tag),
			HINT = 'Remove the NULL entry from derived_from.';
	END IF;
	sources := ARRAY(SELECT DISTINCT s FROM unnest(coalesce(define_tag.derived_from, '{}')) AS s ORDER BY s);

	IF tag_layer IS NULL THEN
		tag_layer := CASE WHEN cardinality(sources) = 0 THEN 'fact' ELSE 'model' END;
	ELSIF tag_layer NOT IN ('fact', 'model', 'prediction') THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = 'invalid layer',
			DETAIL = format('Layer of tag "%s" must be fact, model or prediction.', define_tag.tag),
			HINT = 'Pass ''fact'', ''model'', ''prediction'' or NULL.';
	END IF;
	IF tag_layer = 'fact' AND cardinality(sources) > 0 THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = 'a fact tag cannot be derived from other tags',
			DETAIL = format('Tag "%s" is declared layer fact but names sources.', define_tag.tag),
			HINT = format('Declare it layer ''model'' or ''prediction'', or call profile_guard.define_tag(%L, %L) without derived_from.', define_tag.tag, define_tag.category);
	END IF;
	IF tag_layer <> 'fact' AND cardinality(sources) = 0 THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = format('a %s tag must be derived from at least one tag', tag_layer),
			DETAIL = format('Tag "%s" is declared layer %s but names no source.', define_tag.tag, tag_layer),
			HINT = format('Pass derived_from => ARRAY[''source.tag''] or layer => ''fact''.');
	END IF;
	FOREACH src IN ARRAY sources LOOP
		IF src = define_tag.tag THEN
			RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
				MESSAGE = 'a tag cannot be derived from itself',
				DETAIL = format('Tag "%s" names itself in derived_from.', define_tag.tag),
				HINT = 'Remove the tag from its own derived_from.';
		END IF;
		IF NOT EXISTS (SELECT 1 FROM tag t WHERE t.tag = src) THEN
			RAISE EXCEPTION USING ERRCODE = 'undefined_object',
				MESSAGE = 'source tag does not exist',
				DETAIL = format('Tag "%s" names source "%s", which is not defined.', define_tag.tag, src),
				HINT = format('Define it first with profile_guard.define_tag(%L, category).', src);
		END IF;
		IF EXISTS (SELECT 1 FROM tag t WHERE t.tag = src AND define_tag.tag = ANY (t.all_sources)) THEN
			RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
				MESSAGE = 'derivation cycle',
				DETAIL = format('Tag "%s" cannot be derived from "%s", which is itself derived from "%s".',
								define_tag.tag, src, define_tag.tag),
				HINT = format('Remove "%s" from derived_from.', src);
		END IF;
	END LOOP;

	PERFORM check_prohibited('tag name', define_tag.tag);
	PERFORM check_prohibited('tag description', define_tag.description);

	-- write
	PERFORM 1 FROM tag t WHERE t.tag = define_tag.tag FOR UPDATE;
	exists_already := FOUND;
	IF exists_already THEN
		UPDATE tag t
		SET category = define_tag.category, declared_sensitivity = define_tag.sensitivity,
			layer = tag_layer, derived_from = sources, description = define_tag.description,
			defined_at = now()
		WHERE t.tag = define_tag.tag
		  AND (t.category, t.declared_sensitivity, t.layer, t.derived_from, t.description)
			  IS DISTINCT FROM (define_tag.category, define_tag.sensitivity, tag_layer, sources,
								define_tag.description);
		IF NOT FOUND THEN
			RETURN;		-- identical redefinition: nothing changes
		END IF;
	ELSE
		INSERT INTO tag (tag, category, sensitivity, declared_sensitivity, layer,
						 derived_from, all_sources, description)
		VALUES (define_tag.tag, define_tag.category, sens, define_tag.sensitivity, tag_layer,
				sources, '{}', define_tag.description);
	END IF;
	PERFORM _refresh_tags(ARRAY[define_tag.tag]);
	PERFORM _policy_changed();
END
$$;
REVOKE ALL ON FUNCTION define_tag(text, text, text, text[], text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION define_tag(text, text, text, text[], text, text) TO profile_guard_admin;

/*
 * drop_tag(tag): only an unused tag can go.
 */
CREATE FUNCTION drop_tag(tag text)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, profile_guard, pg_temp
AS $$
DECLARE
	r		record;
	n		bigint;
BEGIN
	IF drop_tag.tag IS NULL THEN
		RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed',
			MESSAGE = 'tag must not be null',
			HINT = 'Pass the name of the tag to drop.';
	END IF;
	PERFORM 1 FROM tag t WHERE t.tag = drop_tag.tag FOR UPDATE;
	IF NOT FOUND THEN
		RAISE EXCEPTION USING ERRCODE = 'undefined_object',
			MESSAGE = 'tag does not exist',
			DETAIL = format('Tag "%s" is not defined.', left(drop_tag.tag, 120)),
			HINT = 'See profile_guard.tag for the defined tags.';
	END IF;

	SELECT cc.relid, cc.column_name INTO r
	FROM classified_column cc WHERE cc.tag = drop_tag.tag
	ORDER BY cc.relid::text, cc.column_name LIMIT 1;
	IF FOUND THEN
		RAISE EXCEPTION USING ERRCODE = 'object_not_in_prerequisite_state',
			MESSAGE = 'tag is in use',
			DETAIL = format('Tag "%s" is classified on column "%s" of table %s.', drop_tag.tag, r.column_name, r.relid),
			HINT = format('Call profile_guard.declassify(%L, %L) first.', r.relid::text, r.column_name);
	END IF;

	r := NULL;
	SELECT _tag_held_by_long_table(drop_tag.tag) AS relid INTO r;
	IF r.relid IS NOT NULL THEN
		RAISE EXCEPTION USING ERRCODE = 'object_not_in_prerequisite_state',
			MESSAGE = 'tag is in use',
			DETAIL = format('Table %s stores values of tag "%s".', r.relid, drop_tag.tag),
			HINT = format('Delete the rows of tag "%s" from table %s first.', drop_tag.tag, r.relid);
	END IF;

	SELECT t.tag INTO r FROM tag t WHERE drop_tag.tag = ANY (t.derived_from) ORDER BY t.tag LIMIT 1;
	IF FOUND THEN
		RAISE EXCEPTION USING ERRCODE = 'object_not_in_prerequisite_state',
			MESSAGE = 'tag is in use',
			DETAIL = format('Tag "%s" is a source of tag "%s".', drop_tag.tag, r.tag),
			HINT = format('Redefine tag "%s" without it with profile_guard.define_tag(), or drop tag "%s" first.', r.tag, r.tag);
	END IF;

	SELECT pu.purpose INTO r FROM purpose pu
	WHERE drop_tag.tag = ANY (pu.tags) AND pu.retired_at IS NULL
	ORDER BY pu.purpose LIMIT 1;
	IF FOUND THEN
		RAISE EXCEPTION USING ERRCODE = 'object_not_in_prerequisite_state',
			MESSAGE = 'tag is in use',
			DETAIL = format('Tag "%s" is listed by purpose "%s".', drop_tag.tag, r.purpose),
			HINT = format('Redefine purpose "%s" without it with profile_guard.define_purpose().', r.purpose);
	END IF;

	SELECT count(*) INTO n FROM consent c WHERE drop_tag.tag = ANY (c.tags);
	IF n > 0 THEN
		RAISE EXCEPTION USING ERRCODE = 'object_not_in_prerequisite_state',
			MESSAGE = 'tag is in use',
			DETAIL = format('Tag "%s" is named by %s consent record(s); the consent ledger is append-only.', drop_tag.tag, n),
			HINT = 'Keep the tag defined; remove it from purposes with profile_guard.define_purpose() so it is no longer used.';
	END IF;

	SELECT count(*) INTO n FROM tag_block b WHERE b.tag = drop_tag.tag;
	IF n > 0 THEN
		RAISE EXCEPTION USING ERRCODE = 'object_not_in_prerequisite_state',
			MESSAGE = 'tag is in use',
			DETAIL = format('Tag "%s" is blocked by %s subject(s).', drop_tag.tag, n),
			HINT = 'Keep the tag defined, or have the subjects call profile_guard.unblock_tag(subject, tag) first.';
	END IF;

	DELETE FROM tag t WHERE t.tag = drop_tag.tag;
	PERFORM _policy_changed();
END
$$;
REVOKE ALL ON FUNCTION drop_tag(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION drop_tag(text) TO profile_guard_admin;
