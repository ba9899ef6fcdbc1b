--
-- 10_taxonomy: shipped categories and lexicon, define_category, define_tag,
-- drop_tag, check_prohibited
--
CREATE EXTENSION profile_guard;
SET search_path = profile_guard, public;
\set SHOW_CONTEXT never
-- err(sql): run a statement, show its SQLSTATE, message, detail and hint
CREATE FUNCTION pg_temp.err(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE st text; m text; d text; h text;
BEGIN
	EXECUTE q;
	RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
	GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, m = MESSAGE_TEXT,
		d = PG_EXCEPTION_DETAIL, h = PG_EXCEPTION_HINT;
	RETURN st || ': ' || m || E'\n  DETAIL: ' || coalesce(nullif(d, ''), '-')
		|| E'\n  HINT: ' || coalesce(nullif(h, ''), '-');
END $$;
-- a fingerprint of the taxonomy, to show that errors change nothing
CREATE FUNCTION pg_temp.taxonomy() RETURNS text LANGUAGE sql AS $$
	SELECT md5(coalesce(string_agg(format('%s|%s|%s|%s|%s|%s|%s|%s', tag, category, sensitivity,
		declared_sensitivity, layer, derived_from, all_sources, description), ';' ORDER BY tag), ''))
		|| ' ' || (SELECT count(*) FROM category)
	FROM tag
$$;

-- shipped categories
SELECT sensitivity, count(*), string_agg(category, ', ' ORDER BY category)
FROM category WHERE builtin GROUP BY sensitivity ORDER BY sensitivity;
-- shipped lexicon: every topic in Chinese and English
SELECT topic, count(*) FILTER (WHERE term ~ '^[[:ascii:]]+$') AS english,
	   count(*) FILTER (WHERE term !~ '^[[:ascii:]]+$') AS chinese
FROM prohibited_term WHERE builtin GROUP BY topic ORDER BY topic;

-- lexicon matching: whole words for English, substrings for Chinese
SELECT x AS text, prohibited_topic(x) AS topic
FROM unnest(ARRAY['casino.vip', 'interest.casino_games', 'Fortune-Telling fans',
	'fortune_teller', 'horror.racist', 'porn', 'PORN site',
	'恐怖袭击', '喜欢赌博', '色情内容',
	-- ordinary words that contain a term, or neutral words of a topic
	'race_results', 'pornstar', 'gambled', 'casinos', 'violently', 'racing',
	'religion.affiliation', 'health.disease_history', 'disability.wheelchair',
	'恐怖片爱好者', 'interest.sports', '', NULL]) AS x;
SELECT check_prohibited('tag description', 'likes sports');
SELECT pg_temp.err($$SELECT profile_guard.check_prohibited('tag value', 'visits casino nightly')$$);
-- the DBA extends the lexicon
SELECT add_prohibited_term('Loot-Box', 'gambling');
SELECT term, topic, builtin FROM prohibited_term WHERE NOT builtin;
SELECT prohibited_topic('interest.loot_box');
SELECT pg_temp.err($$SELECT profile_guard.add_prohibited_term('x', 'politics')$$);
SELECT pg_temp.err($$SELECT profile_guard.add_prohibited_term(' - ', 'gambling')$$);
SELECT pg_temp.err($$SELECT profile_guard.add_prohibited_term(NULL, 'gambling')$$);

-- topics are a catalog: the guideline's are shipped, each with terms in
-- Chinese and English (those of §9 g 2 too), and cannot be removed
SELECT topic, description FROM prohibited_topic WHERE builtin ORDER BY topic;
SELECT count(*) AS topics_without_both_languages FROM prohibited_topic pt
WHERE NOT EXISTS (SELECT 1 FROM prohibited_term t WHERE t.topic = pt.topic AND t.builtin AND t.term ~ '^[[:ascii:]]+$')
   OR NOT EXISTS (SELECT 1 FROM prohibited_term t WHERE t.topic = pt.topic AND t.builtin AND t.term !~ '^[[:ascii:]]+$');
SELECT x AS text, prohibited_topic(x) AS topic
FROM unnest(ARRAY['spreads fake news', '散布虚假信息', 'espionage.suspect', '危害国家安全',
	'extremism_risk', '宣扬极端言论', 'newsreader', 'state_of_mind']) AS x;
-- the DBA adds a topic, its terms, and removes them again
CREATE TEMP TABLE lexicon_before AS
	SELECT md5(string_agg(format('%s|%s|%s', topic, description, builtin), ';' ORDER BY topic)) AS topics,
		   (SELECT md5(string_agg(format('%s|%s|%s', term, topic, builtin), ';' ORDER BY term)) FROM prohibited_term) AS terms
	FROM prohibited_topic;
SELECT add_prohibited_topic('pyramid_selling', 'Pyramid selling schemes');
SELECT add_prohibited_term('Pyramid Scheme', 'pyramid_selling');
SELECT add_prohibited_term('传销', 'pyramid_selling');
SELECT prohibited_topic('interest.pyramid_scheme') AS english, prohibited_topic('参与传销') AS chinese;
SELECT pg_temp.err($$SELECT profile_guard.check_prohibited('tag description', 'joins pyramid schemes')$$);
SELECT pg_temp.err($$SELECT profile_guard.check_prohibited('tag description', 'joins a pyramid scheme')$$);
SELECT add_prohibited_topic('pyramid_selling', 'Pyramid and multi-level selling schemes');
SELECT topic, description, builtin FROM prohibited_topic WHERE NOT builtin;
-- refusals change nothing
CREATE TEMP TABLE lexicon_mid AS
	SELECT md5(string_agg(format('%s|%s|%s', topic, description, builtin), ';' ORDER BY topic)) AS topics,
		   (SELECT md5(string_agg(format('%s|%s|%s', term, topic, builtin), ';' ORDER BY term)) FROM prohibited_term) AS terms
	FROM prohibited_topic;
SELECT pg_temp.err($$SELECT profile_guard.add_prohibited_topic(NULL, 'x')$$);
SELECT pg_temp.err($$SELECT profile_guard.add_prohibited_topic('x', NULL)$$);
SELECT pg_temp.err($$SELECT profile_guard.add_prohibited_topic('', 'x')$$);
SELECT pg_temp.err($$SELECT profile_guard.add_prohibited_topic('Bad-Topic', 'x')$$);
SELECT pg_temp.err($$SELECT profile_guard.add_prohibited_topic('x', '  ')$$);
SELECT pg_temp.err($$SELECT profile_guard.add_prohibited_topic('gambling', 'games of chance')$$);
SELECT pg_temp.err($$SELECT profile_guard.remove_prohibited_topic(NULL)$$);
SELECT pg_temp.err($$SELECT profile_guard.remove_prohibited_topic('')$$);
SELECT pg_temp.err($$SELECT profile_guard.remove_prohibited_topic('politics')$$);
SELECT pg_temp.err($$SELECT profile_guard.remove_prohibited_topic('terror')$$);
SELECT pg_temp.err($$SELECT profile_guard.remove_prohibited_topic('pyramid_selling')$$);
SELECT pg_temp.err($$SELECT profile_guard.remove_prohibited_term(NULL)$$);
SELECT pg_temp.err($$SELECT profile_guard.remove_prohibited_term(' _ ')$$);
SELECT pg_temp.err($$SELECT profile_guard.remove_prohibited_term('no such term')$$);
SELECT pg_temp.err($$SELECT profile_guard.remove_prohibited_term('Casino')$$);
SELECT pg_temp.err($$SELECT profile_guard.remove_prohibited_term('hoax')$$);
SELECT pg_temp.err($$SELECT profile_guard.add_prohibited_term('x', NULL)$$);
SELECT pg_temp.err($$SELECT profile_guard.add_prohibited_term('x', '')$$);
-- (the foreign key: PostgreSQL's message, so only its SQLSTATE)
SELECT left(pg_temp.err($$INSERT INTO profile_guard.prohibited_term VALUES ('x', 'politics')$$), 5) AS sqlstate;
SELECT (SELECT topics FROM lexicon_mid) = md5(string_agg(format('%s|%s|%s', topic, description, builtin), ';' ORDER BY topic)) AS topics_unchanged,
	   (SELECT terms FROM lexicon_mid) = (SELECT md5(string_agg(format('%s|%s|%s', term, topic, builtin), ';' ORDER BY term)) FROM prohibited_term) AS terms_unchanged
FROM prohibited_topic;
-- a shipped term keeps its topic when re-added under another
SELECT add_prohibited_term('casino', 'pyramid_selling');
SELECT topic FROM prohibited_term WHERE term = 'casino';
SELECT remove_prohibited_term('Pyramid-Scheme');
SELECT remove_prohibited_term('传销');
SELECT remove_prohibited_topic('pyramid_selling');
SELECT prohibited_topic('interest.pyramid_scheme') AS english, prohibited_topic('参与传销') AS chinese;
SELECT (SELECT topics FROM lexicon_before) = md5(string_agg(format('%s|%s|%s', topic, description, builtin), ';' ORDER BY topic)) AS topics_as_before,
	   (SELECT terms FROM lexicon_before) = (SELECT md5(string_agg(format('%s|%s|%s', term, topic, builtin), ';' ORDER BY term)) FROM prohibited_term) AS terms_as_before
FROM prohibited_topic;

-- define_category
SELECT define_category('household', 'general', 'Household composition');
SELECT define_category('genetic', 'sensitive', 'Genetic data');
SELECT category, sensitivity, builtin, description FROM category WHERE NOT builtin ORDER BY 1;
SELECT pg_temp.err($$SELECT profile_guard.define_category('medical_health', 'general')$$);
SELECT pg_temp.err($$SELECT profile_guard.define_category('Bad-Name', 'general')$$);
SELECT pg_temp.err($$SELECT profile_guard.define_category('x', 'secret')$$);
SELECT pg_temp.err($$SELECT profile_guard.define_category('x', NULL)$$);
SELECT pg_temp.err($$SELECT profile_guard.define_category('x', 'general', 'gambling tips')$$);

-- define_tag: facts take the category's sensitivity
SELECT define_tag('interest.sports', 'preference', description => 'Follows sports');
SELECT define_tag('interest.music', 'preference');
SELECT define_tag('health.condition', 'medical_health');
SELECT define_tag('household.size', 'household');
-- a general category may hold a tag declared sensitive
SELECT define_tag('consumption.luxury', 'consumption', sensitivity => 'sensitive');
-- model tags: layer defaults to model, sensitivity propagates from sources
SELECT define_tag('score.churn', 'derived', derived_from => ARRAY['interest.sports', 'interest.music']);
SELECT define_tag('score.risk', 'derived', derived_from => ARRAY['score.churn', 'health.condition', 'score.churn'],
				  layer => 'prediction');
SELECT define_tag('score.upsell', 'derived', derived_from => ARRAY['score.churn']);
SELECT tag, category, sensitivity, declared_sensitivity AS declared, layer, derived_from, all_sources
FROM tag ORDER BY tag;

-- redefinition updates the tag and every tag derived from it, transitively
SELECT tag_id AS music_id FROM tag WHERE tag = 'interest.music' \gset
SELECT define_tag('interest.music', 'preference', sensitivity => 'sensitive');
SELECT tag, sensitivity, all_sources FROM tag ORDER BY tag;
SELECT tag_id = :music_id AS same_tag_id FROM tag WHERE tag = 'interest.music';
-- new sources extend all_sources of the dependents
SELECT define_tag('score.churn', 'derived', derived_from => ARRAY['interest.sports', 'household.size']);
SELECT tag, sensitivity, derived_from, all_sources FROM tag WHERE tag LIKE 'score.%' ORDER BY tag;
-- back to general: the dependents follow
SELECT define_tag('interest.music', 'preference');
SELECT tag, sensitivity FROM tag WHERE tag IN ('interest.music', 'score.churn', 'score.upsell') ORDER BY tag;
-- a user category raised to sensitive makes its tags (and dependents) sensitive
SELECT define_category('household', 'sensitive', 'Household composition');
SELECT tag, sensitivity FROM tag WHERE tag IN ('household.size', 'score.churn', 'score.upsell') ORDER BY tag;
-- ... and cannot go back while it holds tags
SELECT pg_temp.err($$SELECT profile_guard.define_category('household', 'general')$$);
-- an identical redefinition changes nothing
SELECT pg_temp.taxonomy() AS before \gset
SELECT define_tag('interest.sports', 'preference', description => 'Follows sports');
SELECT pg_temp.taxonomy() = :'before' AS unchanged;

-- define_tag errors, none of which changes anything
SELECT pg_temp.err($$SELECT profile_guard.define_tag(NULL, 'preference')$$);
SELECT pg_temp.err($$SELECT profile_guard.define_tag('interest.golf', NULL)$$);
SELECT pg_temp.err($$SELECT profile_guard.define_tag('Interest.Golf', 'preference')$$);
SELECT pg_temp.err($$SELECT profile_guard.define_tag('golf', 'preference')$$);
SELECT pg_temp.err($$SELECT profile_guard.define_tag('interest.golf.', 'preference')$$);
SELECT pg_temp.err(format('SELECT profile_guard.define_tag(%L, %L)', 'interest.' || repeat('x', 92), 'preference'));
SELECT length('interest.' || repeat('x', 91)) AS len_ok,
	   pg_temp.err(format('SELECT profile_guard.define_tag(%L, %L)', 'interest.' || repeat('x', 91), 'preference'));
SELECT pg_temp.err($$SELECT profile_guard.drop_tag('interest.' || repeat('x', 91))$$);
SELECT pg_temp.taxonomy() AS before \gset
SELECT pg_temp.err($$SELECT profile_guard.define_tag('interest.golf', 'hobbies')$$);
SELECT pg_temp.err($$SELECT profile_guard.define_tag('interest.golf', 'preference', sensitivity => 'secret')$$);
SELECT pg_temp.err($$SELECT profile_guard.define_tag('health.bmi', 'medical_health', sensitivity => 'general')$$);
SELECT pg_temp.err($$SELECT profile_guard.define_tag('health.condition', 'medical_health', sensitivity => 'general')$$);
SELECT pg_temp.err($$SELECT profile_guard.define_tag('interest.golf', 'preference', layer => 'guess')$$);
SELECT pg_temp.err($$SELECT profile_guard.define_tag('interest.golf', 'preference', layer => 'fact', derived_from => ARRAY['interest.sports'])$$);
SELECT pg_temp.err($$SELECT profile_guard.define_tag('score.golf', 'derived', layer => 'model')$$);
SELECT pg_temp.err($$SELECT profile_guard.define_tag('score.golf', 'derived', layer => 'prediction', derived_from => '{}')$$);
SELECT pg_temp.err($$SELECT profile_guard.define_tag('score.golf', 'derived', derived_from => ARRAY['interest.golf'])$$);
SELECT pg_temp.err($$SELECT profile_guard.define_tag('score.golf', 'derived', derived_from => ARRAY[NULL::text])$$);
SELECT pg_temp.err($$SELECT profile_guard.define_tag('score.churn', 'derived', derived_from => ARRAY['score.churn'])$$);
SELECT pg_temp.err($$SELECT profile_guard.define_tag('interest.sports', 'preference', derived_from => ARRAY['score.upsell'])$$);
SELECT pg_temp.err($$SELECT profile_guard.define_tag('score.churn', 'derived', derived_from => ARRAY['score.risk'])$$);
SELECT pg_temp.err($$SELECT profile_guard.define_tag('interest.casino', 'preference')$$);
SELECT pg_temp.err($$SELECT profile_guard.define_tag('interest.games', 'preference', description => '看相算命')$$);
SELECT pg_temp.taxonomy() = :'before' AS unchanged;

-- drop_tag
SELECT define_tag('interest.golf', 'preference');
SELECT drop_tag('interest.golf');
SELECT count(*) FROM tag WHERE tag = 'interest.golf';
SELECT pg_temp.err($$SELECT profile_guard.drop_tag('interest.golf')$$);
SELECT pg_temp.err($$SELECT profile_guard.drop_tag(NULL)$$);
SELECT pg_temp.err($$SELECT profile_guard.drop_tag('score.churn')$$);
-- a tag named by a purpose, a consent or a block is in use
SELECT define_tag('interest.chess', 'preference');
SELECT define_tag('interest.poker', 'preference');
SELECT define_tag('interest.tennis', 'preference');
SELECT define_purpose('ads', 'Advertising', tags => ARRAY['interest.chess']);
SELECT define_purpose('news', 'News feed', tags => ARRAY['interest.*']);
SELECT register_subject('1');
SELECT grant_consent('1', 'news', ARRAY['interest.poker']) > 0 AS granted;
SELECT block_tag('1', 'interest.tennis');
SELECT pg_temp.taxonomy() AS before \gset
SELECT pg_temp.err($$SELECT profile_guard.drop_tag('interest.chess')$$);
SELECT pg_temp.err($$SELECT profile_guard.drop_tag('interest.poker')$$);
SELECT pg_temp.err($$SELECT profile_guard.drop_tag('interest.tennis')$$);
SELECT pg_temp.taxonomy() = :'before' AS unchanged;
-- once unused it can go (patterns like interest.* do not pin a tag)
SELECT unblock_tag('1', 'interest.tennis');
SELECT drop_tag('interest.tennis');
SELECT define_purpose('ads', 'Advertising', tags => ARRAY['interest.music']);
SELECT drop_tag('interest.chess');
SELECT tag FROM tag WHERE tag LIKE 'interest.%' ORDER BY tag;
-- a dependent dropped frees its sources
SELECT drop_tag('score.upsell');
SELECT drop_tag('score.risk');
SELECT tag, all_sources FROM tag WHERE tag LIKE 'score.%' ORDER BY tag;

-- privileges: only profile_guard_admin defines the taxonomy
CREATE ROLE regress_tax_admin IN ROLE profile_guard_admin;
CREATE ROLE regress_tax_other;
SET ROLE regress_tax_admin;
SELECT profile_guard.define_tag('interest.cooking', 'preference');
SELECT tag, sensitivity FROM profile_guard.tag WHERE tag = 'interest.cooking';
SELECT profile_guard.add_prohibited_topic('pyramid_selling', 'Pyramid selling');
SELECT profile_guard.remove_prohibited_topic('pyramid_selling');
SET ROLE regress_tax_other;
SELECT pg_temp.err($$SELECT profile_guard.define_tag('interest.baking', 'preference')$$);
SELECT pg_temp.err($$SELECT profile_guard.drop_tag('interest.cooking')$$);
SELECT pg_temp.err($$SELECT count(*) FROM profile_guard.tag$$);
SELECT pg_temp.err($$INSERT INTO profile_guard.category VALUES ('x', 'general')$$);
SELECT pg_temp.err($$SELECT profile_guard.add_prohibited_topic('pyramid_selling', 'Pyramid selling')$$);
SELECT pg_temp.err($$SELECT profile_guard.remove_prohibited_topic('gambling')$$);
SELECT pg_temp.err($$SELECT profile_guard.remove_prohibited_term('casino')$$);
SELECT pg_temp.err($$DELETE FROM profile_guard.prohibited_topic$$);
RESET ROLE;
SELECT count(*) AS user_topics FROM prohibited_topic WHERE NOT builtin;
-- every API function is SECURITY DEFINER with a fixed search_path, and not
-- executable by PUBLIC
SELECT p.proname, p.prosecdef, p.proconfig,
	   has_function_privilege('public', p.oid, 'EXECUTE') AS public_exec
FROM pg_proc p
WHERE p.pronamespace = 'profile_guard'::regnamespace
  AND p.proname IN ('define_category', 'define_tag', 'drop_tag', 'check_prohibited',
					'prohibited_topic', 'add_prohibited_term', 'remove_prohibited_term',
					'add_prohibited_topic', 'remove_prohibited_topic')
ORDER BY 1;

DROP EXTENSION profile_guard CASCADE;
DROP ROLE regress_tax_admin, regress_tax_other;
