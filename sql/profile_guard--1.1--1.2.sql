/*
 * profile_guard--1.1--1.2.sql: the update from 1.1 to 1.2, written by hand.
 * It holds what differs between 1.1 (sql/profile_guard--1.1.sql, as
 * shipped) and 1.2 (sql/ext), and nothing else.
 *
 * Keep it in step with sql/ext.  Every later change of 1.2 made in sql/ext
 * is made here too, as the statement that turns a 1.1 database into what a
 * fresh 1.2 install creates: a new function with its privileges; CREATE OR
 * REPLACE FUNCTION with the text of sql/ext for a changed body (DROP
 * FUNCTION first when its parameter names, defaults or result change);
 * ALTER FUNCTION for a setting alone; GRANT or REVOKE for a privilege; a
 * new table, index or trigger as sql/ext creates it.  A function that
 * changes back to its 1.1 text leaves this file.  t/250_upgrade.pl
 * fails when an updated database differs from a fresh install.
 */

\echo Use "ALTER EXTENSION profile_guard UPDATE TO '1.2'" to load this file. \quit

-- ---------------------------------------------------------------------
-- Functions removed, or whose parameters were renamed (CREATE OR REPLACE
-- cannot rename a parameter; those are created again below)
-- ---------------------------------------------------------------------

-- in-place encryption and decryption of a column: one function,
-- _convert_column(), which writes as the table's owner (50_guarded.sql)
DROP FUNCTION _encrypt_column(regclass, name, name, text);
DROP FUNCTION _decrypt_column(regclass, name, name, text);
-- the sweep's steps (80_erasure.sql)
DROP FUNCTION _erasure_prepare(timestamptz, boolean);
DROP FUNCTION _erasure_finish(timestamptz);
-- define_purpose() gains personalised (40_purpose.sql)
DROP FUNCTION define_purpose(text, text, text[], interval, boolean, boolean, text);
-- opt_out() gains erase (60_consent.sql)
DROP FUNCTION opt_out(text);

-- ---------------------------------------------------------------------
-- A subject whose erasure request was carried out is forgotten (rule 12):
-- its requests keep only the keyed hash of the erasure log
-- (10_catalog.sql), the log records the forgetting, and the consent
-- ledger lets the sweep delete the subject's tombstones (60_consent.sql).
-- Requests completed before are forgotten by the next sweep.  A consent
-- that stopped counting keeps its tags for
-- profile_guard.stopped_consent_grace only (80_erasure.sql): the ledger's
-- reason stopped_consent.
-- ---------------------------------------------------------------------

ALTER TABLE erasure_request ALTER COLUMN subject DROP NOT NULL;
ALTER TABLE erasure_request ADD COLUMN subject_hash text CONSTRAINT erasure_request_subject_hash_check
		CHECK (subject_hash ~ '^[0-9a-f]{64}$');
ALTER TABLE erasure_request ADD COLUMN forgotten_by xid8;
ALTER TABLE erasure_request ADD CONSTRAINT erasure_request_subject_check
	CHECK (subject IS NOT NULL OR subject_hash IS NOT NULL);
CREATE INDEX erasure_request_subject_idx ON erasure_request (subject);
CREATE INDEX erasure_request_subject_hash_idx ON erasure_request (subject_hash)
	WHERE subject_hash IS NOT NULL;

ALTER TABLE erasure_log DROP CONSTRAINT erasure_log_action_check;
ALTER TABLE erasure_log ADD CONSTRAINT erasure_log_action_check
	CHECK (action IN ('delete', 'null_cell', 'anonymise', 'tombstone', 'destroy_key', 'forget'));

-- ---------------------------------------------------------------------
-- Consent answers follow a policy generation and a log of changed
-- subjects (10_catalog.sql)
-- ---------------------------------------------------------------------

CREATE TABLE policy_generation (
	singleton	boolean PRIMARY KEY DEFAULT true CHECK (singleton),
	generation	bigint NOT NULL
);
INSERT INTO policy_generation VALUES (true, 1);

CREATE TABLE subject_change (
	subject		text PRIMARY KEY,
	changed_by	xid8 NOT NULL
);
CREATE INDEX subject_change_changed_by_idx ON subject_change (changed_by);
REVOKE ALL ON policy_generation, subject_change FROM PUBLIC;

-- ---------------------------------------------------------------------
-- Personalised purposes (10_catalog.sql): what opt_out() switches off;
-- every marketing purpose is one, so 1.1's opt-outs keep their meaning
-- ---------------------------------------------------------------------

ALTER TABLE purpose ADD COLUMN personalised boolean NOT NULL DEFAULT false;
UPDATE purpose SET personalised = true WHERE marketing;
ALTER TABLE purpose ADD CONSTRAINT purpose_marketing_personalised CHECK (personalised OR NOT marketing);
ALTER TABLE purpose_history ADD COLUMN personalised boolean NOT NULL DEFAULT false;
UPDATE purpose_history SET personalised = true WHERE marketing;

-- ---------------------------------------------------------------------
-- Lawful bases other than consent and legal holds (10_catalog.sql,
-- 65_legal_hold.sql): every purpose of 1.1 is based on consent
-- ---------------------------------------------------------------------

ALTER TABLE purpose ADD COLUMN legal_basis text NOT NULL DEFAULT 'consent';
ALTER TABLE purpose ADD CONSTRAINT purpose_legal_basis_check CHECK (legal_basis IN ('consent', 'contract',
		'legal_obligation', 'vital_interest', 'public_interest', 'news_reporting',
		'public_information'));
ALTER TABLE purpose ADD CONSTRAINT purpose_basis_not_personalised CHECK (legal_basis = 'consent' OR NOT personalised);
ALTER TABLE purpose ADD CONSTRAINT purpose_basis_tags CHECK (legal_basis = 'consent' OR tags IS NOT NULL);
ALTER TABLE purpose_history ADD COLUMN legal_basis text NOT NULL DEFAULT 'consent';

CREATE TABLE legal_hold (
	hold_id		bigserial PRIMARY KEY,
	subject		text NOT NULL CHECK (length(subject) BETWEEN 1 AND 200),
	basis		text NOT NULL CHECK (length(basis) BETWEEN 1 AND 1000),
	placed_at	timestamptz NOT NULL DEFAULT now(),
	until		timestamptz,
	placed_by	name NOT NULL,
	released_at	timestamptz,
	released_by	name,
	deferral_logged_at timestamptz,
	CHECK (until IS NULL OR until > placed_at),
	CHECK ((released_at IS NULL) = (released_by IS NULL))
);
CREATE INDEX legal_hold_subject_idx ON legal_hold (subject);
REVOKE ALL ON legal_hold, legal_hold_hold_id_seq FROM PUBLIC;
GRANT SELECT ON legal_hold TO profile_guard_admin, profile_guard_consent;
SELECT pg_catalog.pg_extension_config_dump('legal_hold', '');
SELECT pg_catalog.pg_extension_config_dump('legal_hold_hold_id_seq', '');

-- ---------------------------------------------------------------------
-- Every SECURITY DEFINER function, and every helper that sets a
-- search_path, searches pg_temp last; these functions changed in nothing
-- else
-- ---------------------------------------------------------------------

ALTER FUNCTION prohibited_topic(text) SET search_path = pg_catalog, profile_guard, pg_temp;
ALTER FUNCTION check_prohibited(text, text) SET search_path = pg_catalog, profile_guard, pg_temp;
ALTER FUNCTION _check_tag_name(text) SET search_path = pg_catalog, profile_guard, pg_temp;
ALTER FUNCTION _check_tag_list(text[], text) SET search_path = pg_catalog, profile_guard, pg_temp;
ALTER FUNCTION _tag_closure(text[]) SET search_path = pg_catalog, profile_guard, pg_temp;
ALTER FUNCTION _get_purpose(text, boolean) SET search_path = pg_catalog, profile_guard, pg_temp;
ALTER FUNCTION _refuse_retired(purpose) SET search_path = pg_catalog, profile_guard, pg_temp;
ALTER FUNCTION retire_purpose(text) SET search_path = pg_catalog, profile_guard, pg_temp;
ALTER FUNCTION _get_column(regclass, name, text) SET search_path = pg_catalog, profile_guard, pg_temp;
ALTER FUNCTION _check_table_owner(regclass) SET search_path = pg_catalog, profile_guard, pg_temp;
ALTER FUNCTION _get_subject(text, boolean) SET search_path = pg_catalog, profile_guard, pg_temp;
ALTER FUNCTION _require_tag(text) SET search_path = pg_catalog, profile_guard, pg_temp;
ALTER FUNCTION opt_in(text) SET search_path = pg_catalog, profile_guard, pg_temp;
ALTER FUNCTION _consent_append_only() SET search_path = pg_catalog, profile_guard, pg_temp;
ALTER FUNCTION _erasure_log_append_only() SET search_path = pg_catalog, profile_guard, pg_temp;
ALTER FUNCTION sweep(integer, boolean) SET search_path = pg_catalog, profile_guard, pg_temp;
ALTER FUNCTION set_anonymise_columns(regclass, name[]) SET search_path = pg_catalog, profile_guard, pg_temp;
ALTER FUNCTION end_service() SET search_path = pg_catalog, profile_guard, pg_temp;
ALTER FUNCTION _pi_name_match(text) SET search_path = pg_catalog, profile_guard, pg_temp;
ALTER FUNCTION _suggestions(name, boolean) SET search_path = pg_catalog, profile_guard, pg_temp;

-- ---------------------------------------------------------------------
-- The consent rules (20_policy.sql): ages are computed in the zone
-- profile_guard.age_time_zone names (age_today), tag_state() among them;
-- the rules in C for a whole purpose at once (_bulk_answers), the log of
-- subjects whose answers changed (_subject_changed) and the answers
-- published in shared memory (shared_answers)
-- ---------------------------------------------------------------------

-- The time zone ages are computed in (profile_guard.age_time_zone), and
-- today's date there.
CREATE FUNCTION age_time_zone()
RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
	SELECT coalesce(NULLIF(pg_catalog.current_setting('profile_guard.age_time_zone', true), ''), 'UTC')
$$;

CREATE FUNCTION age_today()
RETURNS date
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
	SELECT CAST(pg_catalog.timezone(profile_guard.age_time_zone(), pg_catalog.transaction_timestamp())
				AS pg_catalog.date)
$$;

CREATE FUNCTION _basis_subjects(p_purpose text, p_subject text)
RETURNS SETOF text
LANGUAGE plpgsql STABLE ROWS 1
SET search_path = pg_catalog, profile_guard, pg_temp
AS $$
BEGIN
	IF NOT EXISTS (SELECT 1 FROM purpose pu
				   WHERE pu.purpose = p_purpose AND pu.legal_basis <> 'consent') THEN
		RETURN;
	ELSIF p_subject IS NOT NULL THEN
		RETURN QUERY SELECT s.subject FROM subject s WHERE s.subject = p_subject;
	ELSE
		RETURN QUERY SELECT s.subject FROM subject s;
	END IF;
END
$$;
REVOKE ALL ON FUNCTION _basis_subjects(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION _basis_subjects(text, text)
	TO profile_guard_admin, profile_guard_consent;

-- C: the same rules for every subject at once, in one pass over the catalog
-- (src/subject_rules.c), as the consent cache loads a purpose in bulk; one
-- row per subject with a consent event for the purpose, NULL purpose = what
-- may be collected.  For the suites, which check it against tag_state, and
-- the benchmarks.
CREATE FUNCTION _bulk_answers(purpose text)
RETURNS TABLE (subject text, tag_ids integer[], valid_until timestamptz)
LANGUAGE C STABLE
AS 'MODULE_PATHNAME', 'profile_guard_bulk_answers';
REVOKE ALL ON FUNCTION _bulk_answers(text) FROM PUBLIC;

-- C: tell every backend (and every standby) that one subject's answers
-- changed: caches refresh that subject once the calling transaction commits.
CREATE FUNCTION _subject_changed(subject text)
RETURNS void
LANGUAGE C STRICT
AS 'MODULE_PATHNAME', 'profile_guard_subject_changed';
REVOKE ALL ON FUNCTION _subject_changed(text) FROM PUBLIC;

-- C: the sets of consent answers published in shared memory, for the DBA:
-- one row per database and purpose, with the policy generation they were
-- built for, their size, the backends reading them, and whether they are
-- published, still loading, or retired (no room for a change: built again
-- by the next statement that needs them).
CREATE FUNCTION shared_answers(OUT database oid, OUT purpose text,
							   OUT generation bigint, OUT bytes bigint,
							   OUT readers integer, OUT state text)
RETURNS SETOF record
LANGUAGE C
AS 'MODULE_PATHNAME', 'profile_guard_shared_answers';
REVOKE ALL ON FUNCTION shared_answers() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION shared_answers() TO profile_guard_admin;

-- ---------------------------------------------------------------------
-- The read gate (25_gate.sql): a wide-shape read that names no tag is
-- gated only under a declared purpose
-- ---------------------------------------------------------------------

-- wide shape, a read that names no tag: gated only under a declared purpose
CREATE FUNCTION _purpose_row_gate(subject "any", relid oid)
RETURNS boolean
LANGUAGE C STABLE PARALLEL RESTRICTED
AS 'MODULE_PATHNAME', 'profile_guard_purpose_row_gate';

-- ---------------------------------------------------------------------
-- Taxonomy (30_taxonomy.sql): a tag held by a long-shape table is in use
-- and keeps its sensitivity (_tag_held_by_long_table, _refresh_tags); the
-- API functions refer to their parameters as define_tag.tag and so on
-- ---------------------------------------------------------------------

/*
 * add_prohibited_term(term, topic): the DBA extends the lexicon.  The term
 * is stored in normal form; re-adding an existing term changes its topic
 * (a shipped term keeps its own).
 */
CREATE OR REPLACE FUNCTION add_prohibited_term(term text, topic text)
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
CREATE OR REPLACE FUNCTION _refresh_tags(roots text[])
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

/*
 * define_category(category, sensitivity, description): a DBA's category.
 * Redefining a user category may raise its sensitivity (its tags follow)
 * but not lower it while it holds tags; built-in categories are fixed.
 */
CREATE OR REPLACE FUNCTION define_category(category text, sensitivity text, description text DEFAULT NULL)
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

/*
 * define_tag(tag, category, sensitivity, derived_from, description, layer)
 * defines a tag or redefines an existing one (then every tag derived from
 * it is recomputed).
 */
CREATE OR REPLACE FUNCTION define_tag(tag text, category text, sensitivity text DEFAULT NULL,
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

/*
 * drop_tag(tag): only an unused tag can go.
 */
CREATE OR REPLACE FUNCTION drop_tag(tag text)
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

-- ---------------------------------------------------------------------
-- Purposes (40_purpose.sql): the API functions refer to their parameters
-- as define_purpose.purpose and so on
-- ---------------------------------------------------------------------

/*
 * record_assessment(purpose, assessor, conclusion): a personal-information
 * impact assessment of the purpose's current version (§9 c).
 */
CREATE OR REPLACE FUNCTION record_assessment(purpose text, assessor text, conclusion text)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, profile_guard, pg_temp
AS $$
DECLARE
	pu	profile_guard.purpose := _get_purpose(record_assessment.purpose, true);
BEGIN
	PERFORM _refuse_retired(pu);
	IF record_assessment.assessor IS NULL OR record_assessment.conclusion IS NULL
	   OR btrim(record_assessment.assessor) = '' OR btrim(record_assessment.conclusion) = '' THEN
		RAISE EXCEPTION USING ERRCODE = CASE WHEN record_assessment.assessor IS NULL
												  OR record_assessment.conclusion IS NULL
											 THEN '22004' ELSE '22023' END,
			MESSAGE = 'assessor and conclusion must not be empty',
			DETAIL = format('The assessment of purpose "%s" needs an assessor and a conclusion.', pu.purpose),
			HINT = format('Call profile_guard.record_assessment(%L, ''who assessed'', ''what was concluded'').', pu.purpose);
	END IF;
	INSERT INTO assessment (purpose, purpose_version, assessor, conclusion)
	VALUES (pu.purpose, pu.version, record_assessment.assessor, record_assessment.conclusion);
	PERFORM _policy_changed();
END
$$;

/*
 * allow_purpose(role, purpose), disallow_purpose(role, purpose): which roles
 * may declare a purpose.  The role is stored by name so dumps restore.
 * Allowing twice is a no-op.
 */
CREATE OR REPLACE FUNCTION allow_purpose(role regrole, purpose text)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, profile_guard, pg_temp
AS $$
DECLARE
	pu		profile_guard.purpose := _get_purpose(allow_purpose.purpose, true);
	grantee	name;			-- the role's name
BEGIN
	IF allow_purpose.role IS NULL THEN
		RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed',
			MESSAGE = 'role must not be null',
			HINT = format('Call profile_guard.allow_purpose(''role_name'', %L).', pu.purpose);
	END IF;
	PERFORM _refuse_retired(pu);
	SELECT r.rolname INTO grantee FROM pg_roles r WHERE r.oid = allow_purpose.role;
	IF grantee IS NULL THEN
		RAISE EXCEPTION USING ERRCODE = 'undefined_object',
			MESSAGE = format('role with OID %s does not exist', allow_purpose.role::oid),
			DETAIL = format('Purpose "%s" can be allowed only to an existing role.', pu.purpose),
			HINT = format('Call profile_guard.allow_purpose(''role_name'', %L) with an existing role.', pu.purpose);
	END IF;
	INSERT INTO purpose_role (role_name, purpose) VALUES (grantee, pu.purpose)
	ON CONFLICT DO NOTHING;
	PERFORM _policy_changed();
END
$$;

CREATE OR REPLACE FUNCTION disallow_purpose(role regrole, purpose text)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, profile_guard, pg_temp
AS $$
DECLARE
	pu		profile_guard.purpose := _get_purpose(disallow_purpose.purpose);
	grantee	name;			-- the role's name
BEGIN
	IF disallow_purpose.role IS NULL THEN
		RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed',
			MESSAGE = 'role must not be null',
			HINT = format('Call profile_guard.disallow_purpose(''role_name'', %L).', pu.purpose);
	END IF;
	SELECT r.rolname INTO grantee FROM pg_roles r WHERE r.oid = disallow_purpose.role;
	DELETE FROM purpose_role pr WHERE pr.role_name = grantee AND pr.purpose = pu.purpose;
	IF NOT FOUND THEN
		RAISE EXCEPTION USING ERRCODE = 'undefined_object',
			MESSAGE = 'role is not allowed the purpose',
			DETAIL = format('Role "%s" was not allowed purpose "%s".', grantee, pu.purpose),
			HINT = 'See profile_guard.purpose_role for the roles allowed each purpose.';
	END IF;
	PERFORM _policy_changed();
END
$$;

-- ---------------------------------------------------------------------
-- Guarded tables (50_guarded.sql): guarded trees (partitions and
-- inheritance children at any depth are guarded as their guarded
-- ancestor); no code of a table's owner runs with the extension's rights
-- (_check_guarded, _execute_as_owner, and _convert_column, which replaces
-- _encrypt_column and _decrypt_column); no value in any error data
-- (row-level security) and nothing on a tag column that shows or betrays
-- its values; _guard_ddl, the function of the event trigger created last
-- ---------------------------------------------------------------------

/*
 * Guarded trees.  A partition or an inheritance child (at any depth) of a
 * guarded table is guarded as its nearest guarded ancestor is (the first
 * parent in inheritance order that is guarded, itself or through its own
 * ancestors, as src/catalog.c derives it), with its own columns matched by
 * name; it has no guarded_table row of its own.
 *
 * _guarded_root(rel): the guarded table rel is guarded as (rel itself when
 * it is one), or NULL.
 */
CREATE FUNCTION _guarded_root(rel regclass)
RETURNS regclass
LANGUAGE sql STABLE
SET search_path = pg_catalog, profile_guard, pg_temp
AS $$
	WITH RECURSIVE up(relid, path) AS (
		SELECT rel::oid, ARRAY[]::integer[]
		UNION ALL
		SELECT i.inhparent, u.path || i.inhseqno
		FROM up u JOIN pg_catalog.pg_inherits i ON i.inhrelid = u.relid
		WHERE NOT EXISTS (SELECT 1 FROM profile_guard.guarded_table g WHERE g.relid = u.relid)
		  AND pg_catalog.cardinality(u.path) < 1000)
	SELECT u.relid::regclass FROM up u
	WHERE EXISTS (SELECT 1 FROM profile_guard.guarded_table g WHERE g.relid = u.relid)
	ORDER BY u.path LIMIT 1
$$;
REVOKE ALL ON FUNCTION _guarded_root(regclass) FROM PUBLIC;

-- _guarded_roots(rel): every guarded table that rel is under, through any
-- of its parents (more than one: refused, see _check_guarded_relation)
CREATE FUNCTION _guarded_roots(rel regclass)
RETURNS SETOF regclass
LANGUAGE sql STABLE
SET search_path = pg_catalog, profile_guard, pg_temp
AS $$
	WITH RECURSIVE up(relid) AS (
		SELECT rel::oid
		UNION
		SELECT i.inhparent
		FROM up u JOIN pg_catalog.pg_inherits i ON i.inhrelid = u.relid
		WHERE NOT EXISTS (SELECT 1 FROM profile_guard.guarded_table g WHERE g.relid = u.relid))
	SELECT u.relid::regclass FROM up u
	WHERE EXISTS (SELECT 1 FROM profile_guard.guarded_table g WHERE g.relid = u.relid)
	ORDER BY 1
$$;
REVOKE ALL ON FUNCTION _guarded_roots(regclass) FROM PUBLIC;

-- _relations(tbl): tbl and every partition and inheritance child below it,
-- at any depth, short of a table guarded in its own right (and what is
-- below that one)
CREATE FUNCTION _relations(tbl regclass)
RETURNS SETOF regclass
LANGUAGE sql STABLE
SET search_path = pg_catalog, profile_guard, pg_temp
AS $$
	WITH RECURSIVE down(relid) AS (
		SELECT tbl::oid
		UNION
		SELECT i.inhrelid
		FROM down d JOIN pg_catalog.pg_inherits i ON i.inhparent = d.relid
		WHERE NOT EXISTS (SELECT 1 FROM profile_guard.guarded_table g WHERE g.relid = i.inhrelid))
	SELECT d.relid::regclass FROM down d
$$;
REVOKE ALL ON FUNCTION _relations(regclass) FROM PUBLIC;

-- The guarded_table row of a table, or a 55000 error.
CREATE OR REPLACE FUNCTION _get_guarded(tbl regclass, p_for_update boolean DEFAULT false)
RETURNS guarded_table
LANGUAGE plpgsql
SET search_path = pg_catalog, profile_guard, pg_temp
AS $$
DECLARE
	g		guarded_table;
	root	regclass;
BEGIN
	IF tbl IS NULL THEN
		RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed',
			MESSAGE = 'table must not be null',
			HINT = 'Pass a table name, e.g. ''public.profile''.';
	END IF;
	IF p_for_update THEN
		SELECT * INTO g FROM guarded_table x WHERE x.relid = tbl FOR UPDATE;
	ELSE
		SELECT * INTO g FROM guarded_table x WHERE x.relid = tbl;
	END IF;
	IF NOT FOUND THEN
		root := _guarded_root(tbl);
		IF root IS NOT NULL THEN
			RAISE EXCEPTION USING ERRCODE = 'object_not_in_prerequisite_state',
				MESSAGE = 'table is guarded through its parent',
				DETAIL = format('Table %s is a partition or inheritance child of guarded table %s, and is guarded as that table is.',
								tbl, root),
				HINT = format('Call the function on %s: its classification covers the whole tree.', root);
		END IF;
		RAISE EXCEPTION USING ERRCODE = 'object_not_in_prerequisite_state',
			MESSAGE = 'table is not protected',
			DETAIL = format('Table %s is not a guarded table.', tbl),
			HINT = format('Call profile_guard.protect(%L, subject_column) first.', tbl::text);
	END IF;
	RETURN g;
END
$$;

/*
 * What runs with whose rights (src/owner_context.c).  The extension's
 * functions run as its owner, a superuser; code of a guarded table's owner
 * (triggers, rules, casts of its types, constraints, defaults, index
 * expressions) must never run with those rights.
 *
 * _check_guarded(tbl, subject_column, collected_at_column, tag_column,
 * for_write): lock the table and raise unless reading it here runs no
 * owner code: an ordinary or partitioned table (partitions too), a subject
 * column of a built-in type (or a domain over one), a date or timestamp
 * collected-at column, a text tag column (NULL names are not checked).
 */
CREATE FUNCTION _check_guarded(tbl regclass, subject_column name, collected_at_column name,
							   tag_column name, for_write boolean)
RETURNS void
AS 'MODULE_PATHNAME', 'profile_guard_check_guarded_sql'
LANGUAGE C CALLED ON NULL INPUT VOLATILE;
REVOKE ALL ON FUNCTION _check_guarded(regclass, name, name, name, boolean) FROM PUBLIC;

-- _execute_as_owner(tbl, query, VARIADIC params): run a statement that
-- writes rows of tbl as tbl's owner, in a security-restricted operation
-- with search_path = pg_catalog, pg_temp and row_security off; returns the
-- rows it processed.  The values it writes are computed by the caller.
CREATE FUNCTION _execute_as_owner(tbl regclass, query text, VARIADIC params "any")
RETURNS bigint
AS 'MODULE_PATHNAME', 'profile_guard_execute_as_owner_sql'
LANGUAGE C CALLED ON NULL INPUT VOLATILE;
REVOKE ALL ON FUNCTION _execute_as_owner(regclass, text, "any") FROM PUBLIC;

-- _as_text(value): a value in its type's output form, never through a cast
-- (a cast can be a function of the type's owner)
CREATE FUNCTION _as_text(value "any")
RETURNS text
AS 'MODULE_PATHNAME', 'profile_guard_as_text'
LANGUAGE C STRICT STABLE;
REVOKE ALL ON FUNCTION _as_text("any") FROM PUBLIC;

-- _base_type(type): the type itself, or for a domain its base type
CREATE FUNCTION _base_type(typid oid)
RETURNS oid
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, profile_guard, pg_temp
AS $$
DECLARE
	t	oid := typid;
	b	oid;
BEGIN
	LOOP
		SELECT y.typbasetype INTO b FROM pg_type y WHERE y.oid = t AND y.typtype = 'd';
		EXIT WHEN NOT FOUND;
		t := b;
	END LOOP;
	RETURN t;
END
$$;
REVOKE ALL ON FUNCTION _base_type(oid) FROM PUBLIC;

-- _json_sql(expr, type): SQL turning expr, of that type, into jsonb with no
-- owner-defined cast: to_jsonb for built-in types, else the output form
CREATE FUNCTION _json_sql(expr text, typid oid)
RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, profile_guard, pg_temp
AS $$
	SELECT CASE WHEN profile_guard._base_type(typid) < 16384
				THEN pg_catalog.format('pg_catalog.to_jsonb(%s)', expr)
				ELSE pg_catalog.format('pg_catalog.to_jsonb(profile_guard._as_text(%s))', expr) END
$$;
REVOKE ALL ON FUNCTION _json_sql(text, oid) FROM PUBLIC;

/*
 * _set_statistics(tbl, col, target): pg_stats must never show tag values,
 * so tag columns get statistics target 0 (ALTER TABLE reaches every
 * partition and inheritance child) and the statistics already gathered on
 * the table and the tables below it are removed; -1 restores the default.
 */
CREATE OR REPLACE FUNCTION _set_statistics(tbl regclass, col name, target integer)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, profile_guard, pg_temp
AS $$
BEGIN
	EXECUTE format('ALTER TABLE %s ALTER COLUMN %I SET STATISTICS %s', tbl, col, target);
	IF target = 0 THEN
		DELETE FROM pg_statistic s
		USING pg_attribute a
		WHERE s.starelid = a.attrelid AND s.staattnum = a.attnum
		  AND a.attname = col
		  AND a.attrelid IN (SELECT pt.relid FROM _relations(tbl) pt(relid));
	END IF;
END
$$;

/*
 * _install_collect_trigger(rel): the write path's trigger (src/collect.c:
 * consent to collect, the prohibited lexicon, encryption) on rel, unless
 * it has it.  ENABLE ALWAYS: it fires in replica mode too.  A partition
 * gets it from its partitioned table; an inheritance child gets its own.
 */
CREATE FUNCTION _install_collect_trigger(rel regclass)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, profile_guard, pg_temp
AS $$
BEGIN
	IF NOT EXISTS (SELECT 1 FROM pg_trigger t
				   WHERE t.tgrelid = rel AND t.tgname = 'profile_guard_collect') THEN
		EXECUTE format('CREATE TRIGGER profile_guard_collect BEFORE INSERT OR UPDATE ON %s'
					   ' FOR EACH ROW EXECUTE FUNCTION profile_guard._collect()', rel);
	END IF;
	IF EXISTS (SELECT 1 FROM pg_trigger t
			   WHERE t.tgrelid = rel AND t.tgname = 'profile_guard_collect'
				 AND t.tgenabled <> 'A' AND t.tgparentid = 0) THEN
		EXECUTE format('ALTER TABLE %s ENABLE ALWAYS TRIGGER profile_guard_collect', rel);
	END IF;
END
$$;
REVOKE ALL ON FUNCTION _install_collect_trigger(regclass) FROM PUBLIC;

-- the progress of long work, per backend (76_progress.sql), which
-- _convert_column reports

CREATE FUNCTION _progress(
	OUT pid integer, OUT dbid oid, OUT userid oid, OUT command text,
	OUT relid oid, OUT phase text, OUT done bigint, OUT total bigint,
	OUT unit text, OUT started_at timestamptz, OUT changed_at timestamptz)
RETURNS SETOF record
LANGUAGE C VOLATILE STRICT PARALLEL RESTRICTED
AS 'MODULE_PATHNAME', 'profile_guard_progress';

-- One row per backend running one of the commands: done of total units
-- (blocks for encrypt and decrypt, keys for rotate_master_key, rows erased
-- for sweep, subjects for consent_build; total is NULL where it is not known
-- in advance).  Counts only: no subject, tag or value.
CREATE VIEW progress AS
SELECT p.pid, d.datname, pg_catalog.pg_get_userbyid(p.userid) AS role,
	   p.command, p.relid::pg_catalog.regclass AS relation, p.phase,
	   p.done, p.total, p.unit,
	   CASE WHEN p.total > 0
			THEN pg_catalog.round(100.0 * p.done / p.total, 1) END AS percent,
	   p.started_at, p.changed_at
FROM _progress() p
LEFT JOIN pg_catalog.pg_database d ON d.oid = p.dbid;

-- For the extension's own PL/pgSQL (classify's conversion of stored values):
-- report a command, the relation and units done, its end.
CREATE FUNCTION _progress_start(command text, relid oid, phase text, total bigint)
RETURNS boolean
LANGUAGE C VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'profile_guard_progress_start';
CREATE FUNCTION _progress_update(relid oid, done bigint)
RETURNS void
LANGUAGE C VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'profile_guard_progress_update';
CREATE FUNCTION _progress_end()
RETURNS void
LANGUAGE C VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'profile_guard_progress_end';

REVOKE ALL ON FUNCTION _progress() FROM PUBLIC;
REVOKE ALL ON FUNCTION _progress_start(text, oid, text, bigint) FROM PUBLIC;
REVOKE ALL ON FUNCTION _progress_update(oid, bigint) FROM PUBLIC;
REVOKE ALL ON FUNCTION _progress_end() FROM PUBLIC;
REVOKE ALL ON progress FROM PUBLIC;
GRANT SELECT ON progress TO profile_guard_admin, pg_monitor;
GRANT EXECUTE ON FUNCTION _progress() TO profile_guard_admin, pg_monitor;

/*
 * _convert_column(tbl, subject_col, col, tag, tag_col, action): turn the
 * stored values of a column into our ciphertext (action 'encrypt': classify
 * of a sensitive tag), back (action 'decrypt': declassify, unprotect), or
 * our ciphertext of an older format into the current one (action
 * 'reencrypt': reencrypt(); text values of version 1, "pgt1:").  tag is the
 * tag (wide shape), or tag_col the long shape's column naming it.  The extension decides and
 * the owner's rights act: the values are read, locked and converted here,
 * by a read that runs no code of the table's owner (_check_guarded), and
 * written back by TID as the table's owner (_execute_as_owner), whose
 * triggers, rules and constraints run with the owner's rights only.  Table
 * by table of its partitions and inheritance children (_relations), in
 * ranges of blocks.  Long shape: only the values of sensitive tags are
 * encrypted.  Returns the values converted.
 */
CREATE FUNCTION _convert_column(tbl regclass, subject_col name, col name, tag text,
								tag_col name, action text)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, profile_guard, pg_temp
AS $$
DECLARE
	step	constant bigint := 64;		-- blocks per batch
	coltype	regtype;
	part	regclass;
	nblocks	bigint;
	b		bigint;
	tag_sql	text := CASE WHEN tag_col IS NULL THEN '$3' ELSE format('t.%I::text', tag_col) END;
	read_sql text;
	write_sql text;
	tids	tid[];
	vals_t	text[];
	vals_b	bytea[];
	n		bigint;
	total	bigint := 0;
	blocks_total bigint;
	blocks_done bigint := 0;
	reporting boolean;
	verb	text := CASE action WHEN 'reencrypt' THEN 're-encrypt' ELSE action END;
BEGIN
	IF action IS NULL OR action NOT IN ('encrypt', 'decrypt', 'reencrypt') THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = format('unknown conversion "%s"', action),
			HINT = 'Use encrypt, decrypt or reencrypt.';
	END IF;
	-- only text and bytea columns can hold our ciphertext; only text held
	-- an older format
	SELECT a.atttypid INTO coltype FROM pg_attribute a
	WHERE a.attrelid = tbl AND a.attname = col AND NOT a.attisdropped;
	IF coltype IS NULL OR coltype NOT IN ('text'::regtype, 'bytea'::regtype)
	   OR (action = 'reencrypt' AND coltype <> 'text'::regtype) THEN
		RETURN 0;
	END IF;
	PERFORM _check_guarded(tbl, subject_col, NULL, tag_col, true);
	-- the view profile_guard.progress shows the blocks read so far
	SELECT sum(pg_relation_size(pt.relid) / current_setting('block_size')::bigint)
	INTO blocks_total
	FROM _relations(tbl) pt(relid) JOIN pg_class c ON c.oid = pt.relid
	WHERE c.relkind = 'r';
	reporting := _progress_start(action, tbl,
								 format('%s column %s', CASE action WHEN 'encrypt' THEN 'encrypting'
															 WHEN 'decrypt' THEN 'decrypting'
															 ELSE 're-encrypting' END, col),
								 coalesce(blocks_total, 0));
	FOR part IN
		SELECT pt.relid FROM _relations(tbl) pt(relid) JOIN pg_class c ON c.oid = pt.relid
		WHERE c.relkind = 'r'
		ORDER BY 1
	LOOP
		-- reencrypt: _encrypt() writes the current format of what
		-- _decrypt() reads; only values of version 1 are read
		read_sql := format(
			'SELECT pg_catalog.array_agg(x.tid), pg_catalog.array_agg(x.v)'
			' FROM (SELECT t.ctid AS tid, %1$s AS v'
			'       FROM ONLY %5$s t'
			'       WHERE t.ctid >= $1 AND t.ctid < $2 AND t.%4$I IS NOT NULL%8$s'
			'         AND profile_guard._ciphertext_kind(t.%2$I::text, %3$s, t.%4$I) = %6$L%7$s'
			'       FOR UPDATE OF t) x',
			CASE action
				WHEN 'encrypt' THEN format('profile_guard._encrypt(t.%I::text, %s, t.%I)', subject_col, tag_sql, col)
				WHEN 'decrypt' THEN format('profile_guard._decrypt(t.%I::text, %s, t.%I)', subject_col, tag_sql, col)
				ELSE format('profile_guard._encrypt(t.%1$I::text, %2$s, profile_guard._decrypt(t.%1$I::text, %2$s, t.%3$I))',
							subject_col, tag_sql, col) END,
			subject_col, tag_sql, col, part,
			CASE WHEN action = 'encrypt' THEN 'plaintext' ELSE 'ours' END,
			CASE WHEN action = 'encrypt' AND tag_col IS NOT NULL
				 THEN format(' AND EXISTS (SELECT 1 FROM profile_guard.tag s WHERE s.tag = %s'
							 ' AND s.sensitivity = ''sensitive'')', tag_sql)
				 ELSE '' END,
			CASE WHEN action = 'reencrypt'
				 THEN format(' AND pg_catalog.starts_with(t.%I, ''pgt1:'')', col)
				 ELSE '' END);
		write_sql := format('UPDATE ONLY %s t SET %I = v.v FROM ROWS FROM (pg_catalog.unnest($1), pg_catalog.unnest($2)) v(tid, v)'
							' WHERE t.ctid OPERATOR(pg_catalog.=) v.tid', part, col);
		nblocks := pg_relation_size(part) / current_setting('block_size')::bigint;
		b := 0;
		WHILE b < nblocks LOOP
			IF coltype = 'text'::regtype THEN
				EXECUTE read_sql INTO tids, vals_t
				USING format('(%s,0)', b)::tid, format('(%s,0)', b + step)::tid, tag;
				n := CASE WHEN tids IS NULL THEN 0 ELSE _execute_as_owner(part, write_sql, tids, vals_t) END;
			ELSE
				EXECUTE read_sql INTO tids, vals_b
				USING format('(%s,0)', b)::tid, format('(%s,0)', b + step)::tid, tag;
				n := CASE WHEN tids IS NULL THEN 0 ELSE _execute_as_owner(part, write_sql, tids, vals_b) END;
			END IF;
			IF n <> coalesce(cardinality(tids), 0) THEN
				RAISE EXCEPTION USING ERRCODE = 'object_not_in_prerequisite_state',
					MESSAGE = format('could not %s every value of column "%s" of table %s',
									 verb, col, tbl),
					DETAIL = format('%s of %s rows of %s were updated; a trigger or rule of the table skipped or redirected the others.',
									n, cardinality(tids), part),
					HINT = format('Check the triggers and rules of %s (\d %s), then retry.', part, part);
			END IF;
			total := total + n;
			b := b + step;
			IF reporting THEN
				blocks_done := blocks_done + least(step, nblocks - b + step);
				PERFORM _progress_update(part, blocks_done);
			END IF;
		END LOOP;
	END LOOP;
	IF reporting THEN
		PERFORM _progress_end();
	END IF;
	RETURN total;
END
$$;
REVOKE ALL ON FUNCTION _convert_column(regclass, name, name, text, name, text) FROM PUBLIC;

/*
 * reencrypt(tbl): rewrite the sensitive values of a guarded table (of every
 * guarded table when tbl is NULL) that are stored in an older ciphertext
 * format in the current one, under the same data keys; returns how many.
 * Text values written before 1.2 ("pgt1:") become version 2.  A value that
 * does not authenticate (an erased subject's, another cell's) is left as
 * it is.  As classify(), it rewrites the table: only its owner may.
 */
CREATE FUNCTION reencrypt(tbl regclass DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, profile_guard, pg_temp
AS $$
DECLARE
	g		guarded_table;
	c		record;
	total	bigint := 0;
BEGIN
	IF reencrypt.tbl IS NOT NULL THEN
		PERFORM _get_guarded(reencrypt.tbl, true);
	END IF;
	FOR g IN SELECT * FROM guarded_table x
			 WHERE reencrypt.tbl IS NULL OR x.relid = reencrypt.tbl
			 ORDER BY x.relid
			 FOR UPDATE
	LOOP
		PERFORM _check_table_owner(g.relid);
		FOR c IN SELECT cc.column_name, cc.tag FROM classified_column cc JOIN tag t ON t.tag = cc.tag
				 WHERE cc.relid = g.relid AND t.sensitivity = 'sensitive'
				 ORDER BY cc.column_name
		LOOP
			total := total + _convert_column(g.relid, g.subject_column, c.column_name, c.tag, NULL, 'reencrypt');
		END LOOP;
		IF g.tag_column IS NOT NULL THEN
			total := total + _convert_column(g.relid, g.subject_column, g.value_column, NULL, g.tag_column, 'reencrypt');
		END IF;
	END LOOP;
	RETURN total;
END
$$;
REVOKE ALL ON FUNCTION reencrypt(regclass) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION reencrypt(regclass) TO profile_guard_admin;

/*
 * Values in error data.  PostgreSQL leaves the values of a row or a key out
 * of the details of check, not-null, unique, exclusion, foreign-key and
 * WITH CHECK OPTION violations when row-level security applies to the user
 * (ExecBuildSlotValueDescription, BuildIndexValueDescription,
 * ri_ReportViolation), so they are left out when the error is raised, also
 * for an error that PL/pgSQL catches.  A guarded table (and each of its
 * partitions) therefore always has row-level security enabled.  When protect
 * enables it, it adds one policy of the extension's, profile_guard_values,
 * USING (true) WITH CHECK (true) for every role: it lets every row through,
 * and the gates decide what is seen.  It is permissive while the table has
 * no permissive policy of its owner's, and restrictive (still true, so
 * neutral) while it has one, so the owner's permissive policies keep their
 * meaning.  A table whose owner enabled row-level security before protect
 * gets no policy of ours.  unprotect drops ours, and disables row-level
 * security again when no policy is left.
 *
 * _sync_row_security(rel, may_create, may_refuse): bring rel (a guarded
 * table or a partition of one) to that state.  Only protect, an update
 * from 1.1 and a partition being created enable row-level security and
 * add our policy (may_create); a restore recreates both from the dump.
 * may_refuse: raise if our policy is there but row-level security was
 * disabled (ALTER TABLE).  Runs no owner code.
 */
CREATE FUNCTION _sync_row_security(rel regclass, may_create boolean, may_refuse boolean)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, profile_guard, pg_temp
AS $$
DECLARE
	enabled		boolean;
	ours		boolean;		-- NULL: no policy of ours; else polpermissive
	others		boolean;
BEGIN
	SELECT c.relrowsecurity INTO enabled FROM pg_class c WHERE c.oid = rel;
	SELECT p.polpermissive INTO ours FROM pg_policy p
	WHERE p.polrelid = rel AND p.polname = 'profile_guard_values';
	IF NOT enabled THEN
		IF ours IS NOT NULL AND may_refuse THEN
			RAISE EXCEPTION USING ERRCODE = 'object_not_in_prerequisite_state',
				MESSAGE = 'row-level security of a guarded table cannot be disabled',
				DETAIL = format('Table %s is guarded; with row-level security enabled, PostgreSQL leaves its values out of error messages.', rel),
				HINT = format('Call profile_guard.unprotect(%L) first.', rel::text);
		ELSIF ours IS NOT NULL OR NOT may_create THEN
			RETURN;
		END IF;
		EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', rel);
	ELSIF ours IS NULL THEN
		RETURN;					-- the owner's row-level security
	END IF;
	others := EXISTS (SELECT 1 FROM pg_policy p
					  WHERE p.polrelid = rel AND p.polname <> 'profile_guard_values' AND p.polpermissive);
	IF ours IS NOT NULL AND ours = NOT others THEN
		RETURN;
	END IF;
	IF ours IS NOT NULL THEN
		EXECUTE format('DROP POLICY profile_guard_values ON %s', rel);
	END IF;
	EXECUTE format('CREATE POLICY profile_guard_values ON %s AS %s FOR ALL TO PUBLIC'
				   ' USING (true) WITH CHECK (true)',
				   rel, CASE WHEN others THEN 'RESTRICTIVE' ELSE 'PERMISSIVE' END);
END
$$;
REVOKE ALL ON FUNCTION _sync_row_security(regclass, boolean, boolean) FROM PUBLIC;

-- _drop_row_security(rel): unprotect's part of the above
CREATE FUNCTION _drop_row_security(rel regclass)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, profile_guard, pg_temp
AS $$
BEGIN
	IF EXISTS (SELECT 1 FROM pg_policy p WHERE p.polrelid = rel AND p.polname = 'profile_guard_values') THEN
		EXECUTE format('DROP POLICY profile_guard_values ON %s', rel);
		IF NOT EXISTS (SELECT 1 FROM pg_policy p WHERE p.polrelid = rel) THEN
			EXECUTE format('ALTER TABLE %s DISABLE ROW LEVEL SECURITY', rel);
		END IF;
	END IF;
END
$$;
REVOKE ALL ON FUNCTION _drop_row_security(regclass) FROM PUBLIC;

-- _tag_statistics(rel, col, what, drop_them): drop the extended statistics
-- objects of rel that cover column col or an expression of it, or raise
-- 55000 for the first (col described as what)
CREATE FUNCTION _tag_statistics(rel regclass, col name, what text, drop_them boolean)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, profile_guard, pg_temp
AS $$
DECLARE
	colno	smallint;
	obj		record;
BEGIN
	SELECT a.attnum INTO colno FROM pg_attribute a
	WHERE a.attrelid = rel AND a.attname = col AND NOT a.attisdropped;
	FOR obj IN
		SELECT DISTINCT s.oid, format('%I.%I', n.nspname, s.stxname) AS name
		FROM pg_statistic_ext s JOIN pg_namespace n ON n.oid = s.stxnamespace
		WHERE s.stxrelid = rel
		  AND (colno = ANY (s.stxkeys)
			   OR EXISTS (SELECT 1 FROM pg_depend d
						  WHERE d.classid = 'pg_statistic_ext'::regclass AND d.objid = s.oid
							AND d.refclassid = 'pg_class'::regclass AND d.refobjid = rel
							AND d.refobjsubid = colno))
	LOOP
		IF drop_them THEN
			EXECUTE format('DROP STATISTICS %s', obj.name);
		ELSE
			RAISE EXCEPTION USING ERRCODE = 'object_not_in_prerequisite_state',
				MESSAGE = 'extended statistics cannot cover a tag column',
				DETAIL = format('Statistics object %s of table %s covers %s; statistics keep values.',
								obj.name, rel, what),
				HINT = format('Drop it: DROP STATISTICS %s.', obj.name);
		END IF;
	END LOOP;

END
$$;
REVOKE ALL ON FUNCTION _tag_statistics(regclass, name, text, boolean) FROM PUBLIC;

/*
 * What a tag column must not have, because it would show or betray its
 * values past the gates:
 *   - a generated column computed from it, unless classified with the same
 *     tag (its values would be served ungated);
 *   - extended statistics on it or on an expression of it (they keep
 *     values): classify drops them, later ones are refused;
 *   - a unique, primary key, exclusion or foreign-key constraint or a
 *     unique index involving it, in either direction (a write that fails
 *     or cascades tells whether another subject holds a value);
 *   - a CHECK constraint involving it (a write of another column, or the
 *     constraint's validation, that fails tells what the cell holds);
 *   - an index whose expressions or predicate read it (the statistics of an
 *     expression, and the row count of a partial index, show values).
 * _refuse_tag_leaks(rel, col, tag, drop_statistics): raise 55000 for the
 * first of these on rel (a guarded table or a partition of one) and column
 * col holding tag (NULL: a long-shape value column).
 */
CREATE FUNCTION _refuse_tag_leaks(rel regclass, col name, p_tag text, drop_statistics boolean)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, profile_guard, pg_temp
AS $$
DECLARE
	root	regclass;
	colno	smallint;
	gen		record;
	obj		record;
	what	text := CASE WHEN p_tag IS NULL THEN format('value column "%s"', col)
						 ELSE format('column "%s" (tag "%s")', col, p_tag) END;
BEGIN
	SELECT a.attnum INTO colno FROM pg_attribute a
	WHERE a.attrelid = rel AND a.attname = col AND NOT a.attisdropped;
	IF colno IS NULL THEN
		RETURN;
	END IF;
	root := _guarded_root(rel);

	-- a domain, or a type made of one (an array, a composite type, a
	-- range): the domain's constraints are checked on every value written,
	-- by code its owner chose, and the owner may add one at any time, which
	-- PostgreSQL checks on every stored value (ALTER DOMAIN scans the
	-- tables, no gate between)
	FOR obj IN
		WITH RECURSIVE part(t) AS (
			SELECT a.atttypid FROM pg_attribute a WHERE a.attrelid = rel AND a.attnum = colno
			UNION
			SELECT x.t
			FROM part p
			JOIN pg_type ty ON ty.oid = p.t
			CROSS JOIN LATERAL (
				SELECT ty.typbasetype WHERE ty.typtype = 'd'
				UNION ALL SELECT ty.typelem WHERE ty.typcategory = 'A' AND ty.typelem <> 0
				UNION ALL SELECT ca.atttypid FROM pg_attribute ca
						  WHERE ty.typtype = 'c' AND ca.attrelid = ty.typrelid
							AND ca.attnum > 0 AND NOT ca.attisdropped
				UNION ALL SELECT r.rngsubtype FROM pg_range r
						  WHERE (ty.typtype = 'r' AND r.rngtypid = ty.oid)
							 OR (ty.typtype = 'm' AND r.rngmultitypid = ty.oid)) x(t)
		)
		SELECT d.oid::regtype AS domain,
			   (SELECT a.atttypid::regtype FROM pg_attribute a
				WHERE a.attrelid = rel AND a.attnum = colno) AS coltype,
			   format_type(d.typbasetype, d.typtypmod) AS base
		FROM part JOIN pg_type d ON d.oid = part.t AND d.typtype = 'd'
		ORDER BY 1
		LIMIT 1
	LOOP
		RAISE EXCEPTION USING ERRCODE = 'object_not_in_prerequisite_state',
			MESSAGE = 'a tag column is of a domain type',
			DETAIL = format('%s of table %s is of %s: a constraint of domain %s, which its owner may add at any time, is checked on every stored and written value, past the gates.',
							initcap(left(what, 1)) || substr(what, 2), rel,
							CASE WHEN obj.coltype = obj.domain THEN format('domain %s', obj.domain)
								 ELSE format('type %s, made of domain %s', obj.coltype, obj.domain) END,
							obj.domain),
			HINT = CASE WHEN obj.coltype = obj.domain
					   THEN format('Give it the domain''s base type: ALTER TABLE %s ALTER COLUMN %I TYPE %s.',
								   rel, col, obj.base)
					   ELSE format('Give it a type made of no domain (domain %s is of type %s).',
								   obj.domain, obj.base) END;
	END LOOP;

	-- a partition key reading it, or the whole row: the partition a row
	-- lives in (tableoid, each partition's row count) tells what its cell
	-- holds
	FOR obj IN
		SELECT pt.partrelid::regclass AS name
		FROM pg_partitioned_table pt
		WHERE pt.partrelid = rel
		  AND (colno = ANY (pt.partattrs::int2[])
			   OR pt.partexprs::text ~ format('\{VAR :varno 1 :varattno (%s|0) ', colno))
	LOOP
		RAISE EXCEPTION USING ERRCODE = 'object_not_in_prerequisite_state',
			MESSAGE = 'a partition key involves a tag column',
			DETAIL = format('Table %s is partitioned by %s: the partition a row lives in, and each partition''s row count, tell what the cell holds.',
							rel, what),
			HINT = 'Partition the table by a column that is not a tag column.';
	END LOOP;

	-- generated columns computed from it
	FOR gen IN
		SELECT a.attname, cc.tag
		FROM pg_depend d
		JOIN pg_attrdef ad ON d.classid = 'pg_attrdef'::regclass AND ad.oid = d.objid
		JOIN pg_attribute a ON a.attrelid = ad.adrelid AND a.attnum = ad.adnum
		LEFT JOIN classified_column cc ON cc.relid = root AND cc.column_name = a.attname
		WHERE d.refclassid = 'pg_class'::regclass AND d.refobjid = rel AND d.refobjsubid = colno
		  AND a.attgenerated <> '' AND a.attnum <> colno
		ORDER BY a.attnum
	LOOP
		IF p_tag IS NULL OR gen.tag IS DISTINCT FROM p_tag THEN
			RAISE EXCEPTION USING ERRCODE = 'object_not_in_prerequisite_state',
				MESSAGE = 'a generated column is computed from a tag column',
				DETAIL = format('Generated column "%s" of table %s is computed from %s.',
								gen.attname, rel, what),
				HINT = CASE WHEN p_tag IS NULL
						   THEN format('Drop it: ALTER TABLE %s DROP COLUMN %I.', rel, gen.attname)
						   ELSE format('Classify it with the same tag first, profile_guard.classify(%L, %L, %L), or drop it: ALTER TABLE %s DROP COLUMN %I.',
									   root::text, gen.attname, p_tag, rel, gen.attname) END;
		END IF;
	END LOOP;

	-- extended statistics on it or on an expression of it
	PERFORM _tag_statistics(rel, col, what, drop_statistics);

	-- constraints and unique indexes involving it, either direction
	FOR obj IN
		SELECT k.conname::text AS name, k.contype::text AS kind, k.conrelid::regclass AS onrel
		FROM pg_constraint k
		WHERE (k.conrelid = rel AND k.contype IN ('p', 'u', 'x', 'f') AND colno = ANY (k.conkey))
		   OR (k.confrelid = rel AND k.contype = 'f' AND colno = ANY (k.confkey))
		UNION ALL
		SELECT i.indexrelid::regclass::text, 'i', rel
		FROM pg_index i
		WHERE i.indrelid = rel AND (i.indisunique OR i.indisexclusion)
		  AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid AND k.conrelid = rel)
		  AND (colno = ANY (i.indkey::int2[])
			   OR EXISTS (SELECT 1 FROM pg_depend d
						  WHERE d.classid = 'pg_class'::regclass AND d.objid = i.indexrelid
							AND d.refclassid = 'pg_class'::regclass AND d.refobjid = rel
							AND d.refobjsubid = colno))
		ORDER BY 1
	LOOP
		RAISE EXCEPTION USING ERRCODE = 'object_not_in_prerequisite_state',
			MESSAGE = 'a constraint involves a tag column',
			DETAIL = format('%s %s of table %s involves %s of table %s; a write it refuses or cascades tells whether a subject holds a value.',
							CASE obj.kind WHEN 'p' THEN 'Primary key' WHEN 'u' THEN 'Unique constraint'
										  WHEN 'x' THEN 'Exclusion constraint' WHEN 'f' THEN 'Foreign key'
										  ELSE 'Unique index' END,
							obj.name, obj.onrel, what, rel),
			HINT = CASE WHEN obj.kind = 'i' THEN format('Drop it: DROP INDEX %s.', obj.name)
					   ELSE format('Drop it: ALTER TABLE %s DROP CONSTRAINT %I.', obj.onrel, obj.name) END;
	END LOOP;

	-- CHECK constraints involving it
	FOR obj IN
		SELECT k.conname::text AS name
		FROM pg_constraint k
		WHERE k.conrelid = rel AND k.contype = 'c' AND colno = ANY (k.conkey)
		ORDER BY 1
	LOOP
		RAISE EXCEPTION USING ERRCODE = 'object_not_in_prerequisite_state',
			MESSAGE = 'a check constraint involves a tag column',
			DETAIL = format('Check constraint %s of table %s involves %s; a write or a validation it refuses tells what the cell holds.',
							obj.name, rel, what),
			HINT = format('Drop it: ALTER TABLE %s DROP CONSTRAINT %I.', rel, obj.name);
	END LOOP;

	-- indexes whose expressions or predicate read it, or the whole row
	-- (index expressions and predicates reference the table as range table
	-- entry 1; attribute 0 is the whole row)
	FOR obj IN
		SELECT i.indexrelid::regclass::text AS name,
			   CASE WHEN i.indpred::text ~ format('\{VAR :varno 1 :varattno (%s|0) ', colno)
					THEN 'predicate' ELSE 'expressions' END AS part
		FROM pg_index i
		WHERE i.indrelid = rel
		  AND (i.indexprs::text ~ format('\{VAR :varno 1 :varattno (%s|0) ', colno)
			   OR i.indpred::text ~ format('\{VAR :varno 1 :varattno (%s|0) ', colno))
		ORDER BY 1
	LOOP
		RAISE EXCEPTION USING ERRCODE = 'object_not_in_prerequisite_state',
			MESSAGE = 'an index expression or predicate reads a tag column',
			DETAIL = format('Index %s of table %s reads %s in its %s; an expression''s statistics and a partial index''s row count show its values.',
							obj.name, rel, what, obj.part),
			HINT = format('Drop it: DROP INDEX %s.', obj.name);
	END LOOP;
END
$$;
REVOKE ALL ON FUNCTION _refuse_tag_leaks(regclass, name, text, boolean) FROM PUBLIC;

-- _check_guarded_relation(rel, may_create, may_refuse): every tag column
-- of rel (a guarded table, or a partition or inheritance child of one)
-- passes _refuse_tag_leaks, and its row-level security is in place
-- (_sync_row_security; only a table below the guarded one is given a
-- policy here).  A table below one is under one guarded table only, and
-- an inheritance child has the collection trigger; a new one (may_create)
-- gets statistics target 0 on its tag columns.  Nothing for any other
-- relation.
CREATE FUNCTION _check_guarded_relation(rel regclass, may_create boolean, may_refuse boolean)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, profile_guard, pg_temp
AS $$
DECLARE
	g		guarded_table;
	c		record;
	roots	regclass[];
BEGIN
	SELECT * INTO g FROM guarded_table x WHERE x.relid = _guarded_root(rel);
	IF NOT FOUND THEN
		RETURN;
	END IF;
	IF rel <> g.relid THEN
		roots := ARRAY(SELECT r FROM _guarded_roots(rel) r);
		IF cardinality(roots) > 1 THEN
			RAISE EXCEPTION USING ERRCODE = 'object_not_in_prerequisite_state',
				MESSAGE = 'a table cannot be below two guarded tables',
				DETAIL = format('Table %s would be under guarded tables %s; it can be guarded as one table only.',
								rel, array_to_string(roots, ', ')),
				HINT = 'Let it inherit from one guarded table only.';
		END IF;
	END IF;
	IF g.value_column IS NOT NULL THEN
		PERFORM _refuse_tag_leaks(rel, g.value_column, NULL, false);
	END IF;
	FOR c IN SELECT cc.column_name, cc.tag FROM classified_column cc
			 WHERE cc.relid = g.relid ORDER BY cc.column_name
	LOOP
		PERFORM _refuse_tag_leaks(rel, c.column_name, c.tag, false);
	END LOOP;
	PERFORM _sync_row_security(rel, may_create AND rel <> g.relid, may_refuse);
	IF rel <> g.relid AND NOT (SELECT x.relispartition FROM pg_class x WHERE x.oid = rel) THEN
		PERFORM _install_collect_trigger(rel);
	END IF;
	IF may_create AND rel <> g.relid THEN
		FOR c IN SELECT cc.column_name AS col FROM classified_column cc WHERE cc.relid = g.relid
				 UNION ALL SELECT g.value_column WHERE g.value_column IS NOT NULL
				 ORDER BY 1
		LOOP
			IF EXISTS (SELECT 1 FROM pg_attribute a
					   WHERE a.attrelid = rel AND a.attname = c.col AND NOT a.attisdropped
						 AND a.attstattarget <> 0) THEN
				PERFORM _set_statistics(rel, c.col, 0);
			END IF;
		END LOOP;
	END IF;
END
$$;
REVOKE ALL ON FUNCTION _check_guarded_relation(regclass, boolean, boolean) FROM PUBLIC;

/*
 * A table joining or leaving the tree of a guarded table (src/tree.c calls
 * these around ALTER TABLE ... ATTACH / DETACH PARTITION and ... INHERIT /
 * NO INHERIT, as the extension's owner; they answer no other call, which
 * _tree_change() tells):
 *
 * _before_attach(child, parent, partition): before child becomes a
 * partition (partition) or an inheritance child of parent.  A table
 * guarded in its own right (or with such a table below it) goes under no
 * unguarded table: reading it through that table would not be gated.
 * Under a guarded table it becomes guarded through it when it is guarded
 * exactly as that table is (its values, encrypted for their subject and
 * tag, stay as they are): its own catalog rows go, and so does its own
 * trigger when PostgreSQL gives it its parent's.  Guarded otherwise, it
 * is refused.
 */
CREATE FUNCTION _tree_change(child regclass)
RETURNS boolean
AS 'MODULE_PATHNAME', 'profile_guard_tree_change'
LANGUAGE C STABLE;
REVOKE ALL ON FUNCTION _tree_change(regclass) FROM PUBLIC;

-- _check_tree_change(fn, child): raise unless ALTER TABLE is changing
-- child's tree now
CREATE FUNCTION _check_tree_change(fn text, child regclass)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, profile_guard, pg_temp
AS $$
BEGIN
	IF NOT coalesce(_tree_change(child), false) THEN
		RAISE EXCEPTION USING ERRCODE = 'object_not_in_prerequisite_state',
			MESSAGE = format('profile_guard.%s() cannot be called directly', fn),
			DETAIL = 'It acts on a table that ALTER TABLE attaches or detaches, while the statement runs.',
			HINT = 'Attach or detach the table with ALTER TABLE.';
	END IF;
END
$$;
REVOKE ALL ON FUNCTION _check_tree_change(text, regclass) FROM PUBLIC;

/*
 * _guard_attached(child): after child became a partition or inheritance
 * child of a table under a guarded one.  Each table of its tree is
 * checked and guarded as a new partition is (_check_guarded_relation: no
 * constraint or statistics betraying a tag, row-level security, the
 * collection trigger, statistics target 0), and the plaintext values of
 * sensitive tags that it brought are encrypted, as classify does.
 */
CREATE FUNCTION _guard_attached(child regclass)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, profile_guard, pg_temp
AS $$
DECLARE
	g		guarded_table;
	c		record;
BEGIN
	PERFORM _check_tree_change('_guard_attached', child);
	SELECT * INTO g FROM guarded_table x WHERE x.relid = _guarded_root(child);
	IF NOT FOUND OR g.relid = child THEN
		RETURN;
	END IF;
	PERFORM _check_guarded_relation(pt.relid, true, false) FROM _relations(child) pt(relid);
	PERFORM _policy_changed(child);
	FOR c IN SELECT cc.column_name, cc.tag FROM classified_column cc JOIN tag t ON t.tag = cc.tag
			 WHERE cc.relid = g.relid AND t.sensitivity = 'sensitive'
			 ORDER BY cc.column_name
	LOOP
		PERFORM _convert_column(child, g.subject_column, c.column_name, c.tag, NULL, 'encrypt');
	END LOOP;
	IF g.tag_column IS NOT NULL THEN
		PERFORM _convert_column(child, g.subject_column, g.value_column, NULL, g.tag_column, 'encrypt');
	END IF;
END
$$;
REVOKE ALL ON FUNCTION _guard_attached(regclass) FROM PUBLIC;

-- Does this database guard any relation?  Answered from the backend's map
-- of guarded relations (src/catalog.c), which holds no lock on the catalog:
-- DDL on other tables is not slowed down or seen to lock anything.
CREATE FUNCTION _guards_any()
RETURNS boolean
AS 'MODULE_PATHNAME', 'profile_guard_guards_any'
LANGUAGE C STABLE;
REVOKE ALL ON FUNCTION _guards_any() FROM PUBLIC;

CREATE FUNCTION _guard_ddl()
RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, profile_guard, pg_temp
AS $$
DECLARE
	rel		regclass;
BEGIN
	IF NOT _guards_any() THEN
		RETURN;
	END IF;
	IF tg_tag = 'DROP POLICY' THEN
		-- dropped objects are not listed: the policies of every guarded table
		FOR rel IN
			SELECT pt.relid FROM guarded_table x, _relations(x.relid) pt(relid)
			ORDER BY 1
		LOOP
			PERFORM _sync_row_security(rel, false, false);
		END LOOP;
		RETURN;
	END IF;
	FOR rel IN
		WITH touched AS (
			SELECT CASE
					 WHEN e.classid = 'pg_class'::regclass
					   THEN coalesce((SELECT i.indrelid FROM pg_index i WHERE i.indexrelid = e.objid), e.objid)
					 WHEN e.classid = 'pg_policy'::regclass
					   THEN (SELECT p.polrelid FROM pg_policy p WHERE p.oid = e.objid)
					 WHEN e.classid = 'pg_statistic_ext'::regclass
					   THEN (SELECT s.stxrelid FROM pg_statistic_ext s WHERE s.oid = e.objid)
				   END AS relid
			FROM pg_event_trigger_ddl_commands() e)
		SELECT t.relid FROM touched t WHERE t.relid IS NOT NULL
		UNION
		SELECT k.confrelid FROM touched t JOIN pg_constraint k ON k.conrelid = t.relid AND k.contype = 'f'
		ORDER BY 1
	LOOP
		PERFORM _check_guarded_relation(rel, tg_tag = 'CREATE TABLE', tg_tag = 'ALTER TABLE');
	END LOOP;
END
$$;
REVOKE ALL ON FUNCTION _guard_ddl() FROM PUBLIC;

-- ---------------------------------------------------------------------
-- Subjects and consent (60_consent.sql): every change that concerns one
-- subject is logged for the caches (_subject_changed); a birth date is in
-- the future only when it is later than today anywhere (UTC+14); the API
-- functions refer to their parameters as grant_consent.subject and so on
-- ---------------------------------------------------------------------

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
CREATE OR REPLACE FUNCTION register_subject(subject text, birth_date date DEFAULT NULL)
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

/*
 * grant_consent(subject, purpose, tags, separate, guardian, expires_at)
 * RETURNS consent_id: the subject consents to the purpose's CURRENT version
 * using the listed tags (names or "prefix.*").
 */
CREATE OR REPLACE FUNCTION grant_consent(subject text, purpose text, tags text[],
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

/*
 * withdraw_consent(subject, purpose, tags) RETURNS consent_id: a withdrawal
 * of the listed tags (NULL: all) is appended to the ledger.  Withdrawing is
 * always possible, from a retired purpose too.
 */
CREATE OR REPLACE FUNCTION withdraw_consent(subject text, purpose text, tags text[] DEFAULT NULL)
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

/*
 * block_tag(subject, tag), unblock_tag(subject, tag): the subject stops (or
 * resumes) the use of one tag for every purpose.  Repeating is a no-op.
 */
CREATE OR REPLACE FUNCTION block_tag(subject text, tag text)
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

CREATE OR REPLACE FUNCTION unblock_tag(subject text, tag text)
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
CREATE OR REPLACE FUNCTION _set_opted_out(subject text, opted_out boolean)
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

/*
 * request_erasure(subject) RETURNS request_id: the subject asks for erasure
 * (§10).  Use stops at once (tag_state: "erasure requested"); the physical
 * erasure is done by the sweep.  While a request is pending, asking again
 * returns the pending request.
 */
CREATE OR REPLACE FUNCTION request_erasure(subject text)
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

-- ---------------------------------------------------------------------
-- Erasure (80_erasure.sql): the sweep's first and last steps, created
-- again with their parameters renamed (dropped above); one subject's tag
-- erased now (_erase_subject_tag, for opt_out() and erase_tag()), with
-- its reasons in the ledger
-- ---------------------------------------------------------------------

ALTER TABLE erasure_log DROP CONSTRAINT erasure_log_reason_check;
ALTER TABLE erasure_log ADD CONSTRAINT erasure_log_reason_check
	CHECK (reason IN ('retired', 'retention', 'withdrawn', 'expired',
					  'request', 'service_end', 'opt_out', 'erase_tag',
					  'stopped_consent', 'legal_hold'));
ALTER TABLE erasure_log DROP CONSTRAINT erasure_log_action_check;
ALTER TABLE erasure_log ADD CONSTRAINT erasure_log_action_check
	CHECK (action IN ('delete', 'null_cell', 'anonymise', 'tombstone', 'destroy_key', 'forget', 'defer'));

-- C: erase the stored values of one tag of one subject now, in every
-- table that can hold it, and log them with the reason (src/erasure.c);
-- for erase_tag() and opt_out(), which check their arguments.  Returns the
-- rows erased.
CREATE FUNCTION _erase_subject_tag(subject text, tag text, reason text)
RETURNS bigint
AS 'MODULE_PATHNAME', 'profile_guard_erase_subject_tag'
LANGUAGE C STRICT VOLATILE;
REVOKE ALL ON FUNCTION _erase_subject_tag(text, text, text) FROM PUBLIC;

-- a subject's tag erased: a subject event of its own (10_catalog.sql)
ALTER TABLE subject_event DROP CONSTRAINT subject_event_event_check;
ALTER TABLE subject_event ADD CONSTRAINT subject_event_event_check
	CHECK (event IN ('registered', 'birth_date', 'opt_out',
					 'opt_in', 'block', 'unblock', 'erasure_requested', 'tag_erased'));

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

-- ---------------------------------------------------------------------
-- Discovery (85_suggest_classification.sql): content is sampled only from
-- a relation whose reading runs no code of its owner's
-- ---------------------------------------------------------------------

/*
 * _pi_content(tbl, col, sample): what a bounded sample of a column holds,
 * read as the extension owner: the first `sample` rows in physical order,
 * never the whole table.  Returns one row per detector that matches at
 * least half of the non-null sampled values, as counts only.
 */
CREATE OR REPLACE FUNCTION _pi_content(tbl regclass, col name, sample integer DEFAULT 200)
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

/*
 * suggest_classification(schema): unclassified columns that look like
 * personal information, by name, comment and a bounded sample of their
 * content, with a shipped category to classify them under.  NULL: every
 * application schema.  Evidence describes what was found and never quotes a
 * stored value.
 */
CREATE OR REPLACE FUNCTION suggest_classification(schema name DEFAULT NULL)
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

-- ---------------------------------------------------------------------
-- The subject report (86_subject_report.sql): a relation whose reading
-- could run its owner's code is reported, not read; values are shown
-- without casts of the owner's
-- ---------------------------------------------------------------------

/*
 * _subject_rows(g, subject): the tags one guarded table holds for a
 * subject, as jsonb objects, values decrypted.  The subject is compared in
 * the subject column's own type when that is a built-in type (so an index
 * can be used), and as text in every case (so '042' never finds 42).
 */
CREATE OR REPLACE FUNCTION _subject_rows(g guarded_table, p_subject text)
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

-- ---------------------------------------------------------------------
-- The self-assessment (87_assess.sql): one helper (_assess_verdict) for
-- the clauses of assess() (at the end of this script); stored values are
-- checked only in a relation whose reading runs no code of its owner's
-- ---------------------------------------------------------------------

/*
 * _stored_plaintext(): per guarded table and sensitive tag column (wide) or
 * value column (long), how many stored values are plaintext and how many
 * are ciphertext that does not authenticate for its row (copied from
 * another subject or tag).  Rows of subjects whose data key was destroyed
 * (erased, waiting for the sweep) are not counted.  Reads every such
 * value: it is an audit, not a sample.
 */
CREATE OR REPLACE FUNCTION _stored_plaintext()
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

-- ---------------------------------------------------------------------
-- Tables guarded under 1.1 get what 1.2's protect and classify set up
-- (50_guarded.sql): row-level security, so that no error quotes a value;
-- no extended statistics on tag columns; the collection trigger on
-- inheritance children, and their sensitive plaintext encrypted.
-- Generated columns and constraints that 1.2 refuses are left to the
-- owner: profile_guard.assess() lists them.
-- ---------------------------------------------------------------------

DO $update$
DECLARE
	g	record;
BEGIN
	FOR g IN
		SELECT pt.relid, x.relid AS root, x.value_column
		FROM profile_guard.guarded_table x, profile_guard._relations(x.relid) pt(relid)
		ORDER BY 1
	LOOP
		PERFORM profile_guard._sync_row_security(g.relid, true, false);
		-- inheritance children are written through the collection trigger
		IF g.relid <> g.root
		   AND NOT (SELECT c.relispartition FROM pg_catalog.pg_class c WHERE c.oid = g.relid) THEN
			PERFORM profile_guard._install_collect_trigger(g.relid);
		END IF;
		PERFORM profile_guard._tag_statistics(g.relid, c.col, NULL, true)
		FROM (SELECT cc.column_name AS col FROM profile_guard.classified_column cc WHERE cc.relid = g.root
			  UNION ALL SELECT g.value_column WHERE g.value_column IS NOT NULL) c;
	END LOOP;
	-- the plaintext that 1.1 let into inheritance children's sensitive
	-- columns is encrypted (each child converts the tables below it)
	FOR g IN
		SELECT i.inhrelid::regclass AS relid, x.subject_column, cc.column_name, cc.tag
		FROM profile_guard.guarded_table x
		JOIN pg_catalog.pg_inherits i ON i.inhparent = x.relid
		JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid AND NOT c.relispartition
		JOIN profile_guard.classified_column cc ON cc.relid = x.relid
		JOIN profile_guard.tag t ON t.tag = cc.tag AND t.sensitivity = 'sensitive'
		WHERE NOT EXISTS (SELECT 1 FROM profile_guard.guarded_table y WHERE y.relid = i.inhrelid)
		ORDER BY 1, 3
	LOOP
		PERFORM profile_guard._convert_column(g.relid, g.subject_column, g.column_name, g.tag, NULL, 'encrypt');
	END LOOP;
END
$update$;

-- ---------------------------------------------------------------------
-- Transaction and consumption records, the home address and precise
-- location are sensitive (30_taxonomy.sql): the shipped categories
-- consumption and contact become sensitive, and with them every tag of
-- theirs and every tag derived from one.  Their stored plaintext is
-- encrypted, in wide and long tables and the tables below them
-- (_convert_column, as classify() encrypts).  A wide column classified to
-- such a tag that cannot hold ciphertext (neither text nor bytea), or a
-- long table whose value column cannot and that holds such a tag, stops
-- the update and names it: nothing changes until its owner alters the
-- column's type or declassifies it.  Consents given to these tags without
-- separate => true stop covering them (rule 3): they are used again once
-- the subjects give separate consent.
-- ---------------------------------------------------------------------

UPDATE category SET sensitivity = 'sensitive', description = x.description
FROM (VALUES ('contact', 'Contact channels and home address'),
			 ('consumption', 'Transaction and consumption records, purchase habits')) x(category, description)
WHERE category.category = x.category AND category.builtin;

DO $update$
DECLARE
	changed	text[];
	g		record;
	holds	boolean;
BEGIN
	SELECT coalesce(array_agg(n.tag ORDER BY n.tag), '{}') INTO changed
	FROM profile_guard._tag_closure(ARRAY(SELECT t.tag FROM profile_guard.tag t
										  WHERE t.category IN ('contact', 'consumption'))) n
	JOIN profile_guard.tag t ON t.tag = n.tag
	WHERE t.sensitivity <> n.sensitivity;
	IF cardinality(changed) = 0 THEN
		RETURN;
	END IF;
	-- what cannot hold ciphertext stops the update
	FOR g IN
		SELECT cc.relid, cc.column_name, cc.tag, a.atttypid::regtype AS coltype
		FROM profile_guard.classified_column cc
		JOIN pg_catalog.pg_attribute a ON a.attrelid = cc.relid AND a.attname = cc.column_name
		WHERE cc.tag = ANY (changed) AND a.atttypid NOT IN ('text'::regtype, 'bytea'::regtype)
		ORDER BY cc.relid::text, cc.column_name
	LOOP
		RAISE EXCEPTION USING ERRCODE = 'object_not_in_prerequisite_state',
			MESSAGE = 'a tag that becomes sensitive is classified on a column that cannot hold ciphertext',
			DETAIL = format('Tag "%s" (category contact or consumption, sensitive from 1.2 on) is classified on column "%s" of table %s, of type %s.',
							g.tag, g.column_name, g.relid, g.coltype),
			HINT = format('ALTER TABLE %s ALTER COLUMN %I TYPE text, or call profile_guard.declassify(%L, %L), then update again.',
						  g.relid, g.column_name, g.relid::text, g.column_name);
	END LOOP;
	FOR g IN
		SELECT x.relid, x.subject_column, x.tag_column, x.value_column
		FROM profile_guard.guarded_table x
		JOIN pg_catalog.pg_attribute a ON a.attrelid = x.relid AND a.attname = x.value_column
		WHERE x.tag_column IS NOT NULL AND a.atttypid NOT IN ('text'::regtype, 'bytea'::regtype)
		ORDER BY x.relid::text
	LOOP
		PERFORM profile_guard._check_guarded(g.relid, g.subject_column, NULL, g.tag_column, true);
		EXECUTE format('SELECT EXISTS (SELECT 1 FROM %s t WHERE t.%I::text OPERATOR(pg_catalog.=) ANY ($1))',
					   g.relid, g.tag_column)
		INTO holds USING changed;
		IF holds THEN
			RAISE EXCEPTION USING ERRCODE = 'object_not_in_prerequisite_state',
				MESSAGE = 'a tag that becomes sensitive is held in a value column that cannot hold ciphertext',
				DETAIL = format('Table %s holds rows of tags of category contact or consumption (sensitive from 1.2 on) in its value column "%s".',
								g.relid, g.value_column),
				HINT = format('ALTER TABLE %s ALTER COLUMN %I TYPE text, or delete those rows, then update again.',
							  g.relid, g.value_column);
		END IF;
	END LOOP;
	UPDATE profile_guard.tag t SET sensitivity = n.sensitivity
	FROM profile_guard._tag_closure(changed) n
	WHERE n.tag = t.tag AND t.sensitivity <> n.sensitivity;
	-- the plaintext is encrypted (each guarded table with the tables below it)
	FOR g IN
		SELECT x.relid, x.subject_column, cc.column_name, cc.tag
		FROM profile_guard.classified_column cc
		JOIN profile_guard.guarded_table x ON x.relid = cc.relid
		WHERE cc.tag = ANY (changed)
		ORDER BY x.relid::text, cc.column_name
	LOOP
		PERFORM profile_guard._convert_column(g.relid, g.subject_column, g.column_name, g.tag, NULL, 'encrypt');
	END LOOP;
	FOR g IN
		SELECT x.relid, x.subject_column, x.tag_column, x.value_column
		FROM profile_guard.guarded_table x
		WHERE x.tag_column IS NOT NULL
		ORDER BY x.relid::text
	LOOP
		PERFORM profile_guard._convert_column(g.relid, g.subject_column, g.value_column, NULL, g.tag_column, 'encrypt');
	END LOOP;
	PERFORM profile_guard._policy_changed();
END
$update$;

-- ---------------------------------------------------------------------
-- DDL on guarded tables and their trees is checked (50_guarded.sql)
-- ---------------------------------------------------------------------

CREATE EVENT TRIGGER profile_guard_ddl ON ddl_command_end
	WHEN TAG IN ('ALTER TABLE', 'CREATE TABLE', 'CREATE TABLE AS', 'CREATE INDEX', 'ALTER INDEX',
				 'CREATE STATISTICS', 'ALTER STATISTICS',
				 'CREATE POLICY', 'ALTER POLICY', 'DROP POLICY', 'CREATE VIEW', 'ALTER VIEW')
	EXECUTE FUNCTION profile_guard._guard_ddl();

-- ---------------------------------------------------------------------
-- Errors name their condition instead of its five-character code
-- (the functions above carry the same change)
-- ---------------------------------------------------------------------

CREATE OR REPLACE FUNCTION _check_tag_name(tag text)
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

CREATE OR REPLACE FUNCTION _check_tag_list(tags text[], what text)
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

CREATE OR REPLACE FUNCTION _get_purpose(p_purpose text, p_for_update boolean DEFAULT false)
RETURNS purpose
LANGUAGE plpgsql
SET search_path = pg_catalog, profile_guard, pg_temp
AS $$
DECLARE
	pu	purpose;
BEGIN
	IF p_purpose IS NULL THEN
		RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed',
			MESSAGE = 'purpose must not be null',
			HINT = 'Pass the name of a purpose defined with profile_guard.define_purpose().';
	END IF;
	IF p_for_update THEN
		SELECT * INTO pu FROM purpose x WHERE x.purpose = p_purpose FOR UPDATE;
	ELSE
		SELECT * INTO pu FROM purpose x WHERE x.purpose = p_purpose;
	END IF;
	IF NOT FOUND THEN
		RAISE EXCEPTION USING ERRCODE = 'undefined_object',
			MESSAGE = 'purpose does not exist',
			DETAIL = format('Purpose "%s" is not defined.', left(p_purpose, 120)),
			HINT = format('Define it with profile_guard.define_purpose(%L, description).', left(p_purpose, 120));
	END IF;
	RETURN pu;
END
$$;

CREATE OR REPLACE FUNCTION _refuse_retired(pu purpose)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, profile_guard, pg_temp
AS $$
BEGIN
	IF pu.retired_at IS NOT NULL THEN
		RAISE EXCEPTION USING ERRCODE = 'object_not_in_prerequisite_state',
			MESSAGE = 'purpose is retired',
			DETAIL = format('Purpose "%s" was retired.', pu.purpose),
			HINT = 'Define a purpose with a new name with profile_guard.define_purpose().';
	END IF;
END
$$;

CREATE OR REPLACE FUNCTION _get_column(tbl regclass, col name, what text)
RETURNS pg_attribute
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, profile_guard, pg_temp
AS $$
DECLARE
	a	pg_attribute;
BEGIN
	SELECT * INTO a FROM pg_attribute
	WHERE attrelid = tbl AND attname = col AND attnum > 0 AND NOT attisdropped;
	IF NOT FOUND THEN
		RAISE EXCEPTION USING ERRCODE = 'undefined_object',
			MESSAGE = 'column does not exist',
			DETAIL = format('Table %s has no column "%s" (given as the %s).', tbl, col, what),
			HINT = format('See the columns of %s with \d %s.', tbl, tbl);
	END IF;
	RETURN a;
END
$$;

CREATE OR REPLACE FUNCTION _check_table_owner(tbl regclass)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, profile_guard, pg_temp
AS $$
DECLARE
	caller	oid := _invoking_role();
	owner	oid;
BEGIN
	SELECT c.relowner INTO owner FROM pg_class c WHERE c.oid = tbl;
	IF owner IS NOT NULL AND NOT pg_has_role(caller, owner, 'USAGE') THEN
		RAISE EXCEPTION USING ERRCODE = 'insufficient_privilege',
			MESSAGE = format('must be owner of table %s', tbl),
			DETAIL = 'Protecting, classifying, declassifying, unprotecting and re-encrypting a table rewrite it or change its trigger, which only its owner may do.',
			HINT = format('Run the call as the owner of %s, or as a member of its owning role.', tbl);
	END IF;
END
$$;

CREATE OR REPLACE FUNCTION _get_subject(p_subject text, p_for_update boolean DEFAULT false)
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

CREATE OR REPLACE FUNCTION _require_tag(p_tag text)
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

CREATE OR REPLACE FUNCTION _erasure_log_append_only()
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

CREATE OR REPLACE FUNCTION end_service()
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

-- ---------------------------------------------------------------------
-- The prohibited lexicon's topics are a catalog table (10_catalog.sql,
-- 30_taxonomy.sql): the shipped topics (those of §9 g 2 added, with their
-- terms), a foreign key from prohibited_term in place of the check that
-- fixed the topics, and the functions that add and remove topics and terms
-- ---------------------------------------------------------------------

-- The topics of the prohibited lexicon (rule 13): the guideline's, shipped
-- (builtin), and those the DBA adds with add_prohibited_topic().
CREATE TABLE prohibited_topic (
	topic		text PRIMARY KEY CHECK (topic ~ '^[a-z][a-z0-9_]{0,62}$'),
	description	text NOT NULL,
	builtin		boolean NOT NULL DEFAULT false
);
REVOKE ALL ON prohibited_topic FROM PUBLIC;
GRANT SELECT ON prohibited_topic TO profile_guard_admin, profile_guard_consent;
SELECT pg_catalog.pg_extension_config_dump('prohibited_topic', 'WHERE NOT builtin');

ALTER TABLE prohibited_term DROP CONSTRAINT prohibited_term_topic_check;

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
	('fake news', 'false_information', true), ('hoax', 'false_information', true)
-- a term the DBA added under the same name becomes the shipped one
ON CONFLICT (term) DO UPDATE SET topic = excluded.topic, builtin = true;

ALTER TABLE prohibited_term ADD FOREIGN KEY (topic) REFERENCES prohibited_topic;

/*
 * check_prohibited(what, text_to_check): raise 22023 when the text contains
 * a prohibited term.  "what" names the text ("tag name", "tag description",
 * "tag value"); the DETAIL names the topic, never the text.
 */
CREATE OR REPLACE FUNCTION check_prohibited(what text, text_to_check text)
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

-- the consent ledger lets the sweep delete a forgotten subject's
-- tombstones (60_consent.sql)
CREATE OR REPLACE FUNCTION _consent_append_only()
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

-- ---------------------------------------------------------------------
-- consent_status shows each purpose's lawful basis (70_views.sql)
-- ---------------------------------------------------------------------

CREATE OR REPLACE VIEW consent_status AS
SELECT ts.subject, pu.purpose, ts.tag, ts.effective, ts.reason, pu.legal_basis
FROM purpose pu
CROSS JOIN LATERAL tag_state(pu.purpose) AS ts;

-- ---------------------------------------------------------------------
-- Legal holds (65_legal_hold.sql), and the reasons under which the sweep
-- counts a tag as kept (80_erasure.sql)
-- ---------------------------------------------------------------------

CREATE OR REPLACE FUNCTION _erasure_suspended(reason text)
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
	SELECT reason IN ('outdated version', 'blocked', 'opted out', 'minor under a marketing purpose',
					  'impact assessment missing', 'source tag not visible',
					  'not separate for a sensitive tag', 'guardian consent missing',
					  'tag outside the purpose', 'not consented', 'legal hold',
					  'sensitive tag not named by the purpose')
$$;

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

-- ---------------------------------------------------------------------
-- Secure transport, unknown ages, the privacy notice, assess() clause by
-- clause.  profile_guard.secure_transport is enforced in C by the gates;
-- profile_guard.unknown_age is read by the rules in C and by tag_state().
-- ---------------------------------------------------------------------

-- How the minors' rules treat a subject without a birth date
-- (profile_guard.unknown_age): 'adult', 'minor' or 'child' (under 14).
CREATE FUNCTION unknown_age()
RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
	SELECT coalesce(NULLIF(pg_catalog.current_setting('profile_guard.unknown_age', true), ''), 'adult')
$$;

-- the privacy notice, generated from the catalog (sql/ext/88_privacy_notice.sql)
CREATE FUNCTION privacy_notice(purpose text DEFAULT NULL)
RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, profile_guard, pg_temp
SET IntervalStyle = 'postgres'
AS $$
DECLARE
	notices		jsonb;
BEGIN
	IF privacy_notice.purpose IS NOT NULL
	   AND NOT EXISTS (SELECT 1 FROM profile_guard.purpose p WHERE p.purpose = privacy_notice.purpose) THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = 'purpose is not defined',
			DETAIL = format('No purpose named "%s" is defined, so there is nothing to disclose for it.',
							left(privacy_notice.purpose, 200)),
			HINT = 'Call profile_guard.privacy_notice() without an argument for every active purpose, or define the purpose with profile_guard.define_purpose().';
	END IF;

	SELECT coalesce(jsonb_agg(n ORDER BY n->>'purpose'), '[]'::jsonb) INTO notices
	FROM (
		SELECT jsonb_build_object(
			'purpose', p.purpose,
			'description', p.description,
			'version', p.version,
			'status', CASE WHEN p.retired_at IS NULL THEN 'active' ELSE 'retired' END,
			'note', CASE WHEN p.retired_at IS NOT NULL
						 THEN 'This purpose is retired: its tags are no longer used for it, and are erased on schedule.' END,
			'legal_basis', p.legal_basis,
			'consent_needed', p.legal_basis = 'consent',
			'personalised', p.personalised,
			'marketing', p.marketing,
			'automated_decision', p.automated_decision,
			'minors', CASE WHEN p.marketing
						   THEN format('Not used for anyone younger than %s.', minor_age())
						   ELSE format('Tags of a child under 14 are used only with a guardian''s separate consent; anyone younger than %s counts as a minor.', minor_age()) END,
			'tags_listed', p.tags IS NOT NULL AND NOT '*' = ANY (p.tags),
			'tags', (SELECT coalesce(jsonb_agg(jsonb_build_object(
										'tag', t.tag,
										'category', t.category,
										'sensitive', t.sensitivity = 'sensitive',
										'description', t.description)
									 ORDER BY t.tag), '[]'::jsonb)
					 FROM tag t WHERE tag_matches(p.tags, t.tag)),
			'separate_consent_needed',
				p.legal_basis = 'consent'
				AND EXISTS (SELECT 1 FROM tag t
							WHERE t.sensitivity = 'sensitive' AND tag_matches(p.tags, t.tag)),
			'separate_consent_tags',
				(SELECT coalesce(jsonb_agg(t.tag ORDER BY t.tag), '[]'::jsonb) FROM tag t
				 WHERE t.sensitivity = 'sensitive' AND tag_matches(p.tags, t.tag)),
			'retention', CASE WHEN p.retention IS NOT NULL THEN p.retention::text END,
			'recipient', p.recipient,
			'recipient_country', (SELECT r.country FROM recipient r WHERE r.recipient = p.recipient),
			'cross_border', p.recipient IS NOT NULL AND _cross_border(p.recipient),
			'how_to', jsonb_build_object(
				'withdraw', CASE WHEN p.legal_basis = 'consent'
								 THEN format('profile_guard.withdraw_consent(subject, %L)', p.purpose) END,
				'opt_out', CASE WHEN p.personalised THEN 'profile_guard.opt_out(subject)' END,
				'block_tag', 'profile_guard.block_tag(subject, tag)',
				'erase_tag', 'profile_guard.erase_tag(subject, tag)',
				'request_erasure', 'profile_guard.request_erasure(subject)',
				'access', 'profile_guard.subject_report(subject)')) AS n
		FROM profile_guard.purpose p
		WHERE (privacy_notice.purpose IS NULL AND p.retired_at IS NULL)
		   OR p.purpose = privacy_notice.purpose
	) AS x(n);

	RETURN jsonb_build_object('purposes', notices);
END
$$;
REVOKE ALL ON FUNCTION privacy_notice(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION privacy_notice(text) TO profile_guard_admin, profile_guard_consent;

-- ---------------------------------------------------------------------
-- Recipients and cross-border transfer (PIPL art. 38-39, §8)
-- A purpose's recipient names a recipient defined with define_recipient()
-- (10_catalog.sql, 40_purpose.sql).  The free-text recipients of 1.1
-- become recipients in the home country (profile_guard.home_country, 'CN'
-- unless set): the update says which, and the DBA corrects the country of
-- those abroad with define_recipient().  A recipient outside the home
-- country makes its purposes cross-border: every tag needs separate consent
-- and the purpose an assessment of its current version (tag_state(), and
-- the rules in C).
-- ---------------------------------------------------------------------

CREATE TABLE recipient (
	recipient	text PRIMARY KEY,
	country		text NOT NULL CHECK (country ~ '^[A-Z]{2}$'),
	description	text,
	defined_at	timestamptz NOT NULL DEFAULT now()
);
DO $recipients$
DECLARE
	home	text := coalesce(NULLIF(pg_catalog.current_setting('profile_guard.home_country', true), ''), 'CN');
	names	text;
BEGIN
	INSERT INTO profile_guard.recipient (recipient, country, description)
	SELECT DISTINCT p.recipient, home, 'defined by the update to 1.2 from a purpose''s recipient'
	FROM profile_guard.purpose p WHERE p.recipient IS NOT NULL;
	SELECT string_agg(format('%L', r.recipient), ', ' ORDER BY r.recipient) INTO names
	FROM profile_guard.recipient r;
	IF names IS NOT NULL THEN
		RAISE NOTICE 'purposes'' recipients defined as recipients in country %: %', home, names
			USING HINT = 'Set the country of a recipient abroad with profile_guard.define_recipient(recipient, country).';
	END IF;
END
$recipients$;
ALTER TABLE purpose ADD CONSTRAINT purpose_recipient_fkey FOREIGN KEY (recipient) REFERENCES recipient;
GRANT SELECT ON recipient TO profile_guard_admin, profile_guard_consent;
SELECT pg_catalog.pg_extension_config_dump('recipient', '');

CREATE FUNCTION home_country()
RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
	SELECT coalesce(NULLIF(pg_catalog.current_setting('profile_guard.home_country', true), ''), 'CN')
$$;

CREATE FUNCTION _cross_border(p_recipient text)
RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
	SELECT coalesce((SELECT r.country OPERATOR(pg_catalog.<>) profile_guard.home_country()
					 FROM profile_guard.recipient r
					 WHERE r.recipient OPERATOR(pg_catalog.=) p_recipient), false)
$$;

CREATE FUNCTION define_recipient(recipient text, country text DEFAULT 'CN', description text DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, profile_guard, pg_temp
AS $$
DECLARE
	old		profile_guard.recipient;
BEGIN
	IF define_recipient.recipient IS NULL OR define_recipient.country IS NULL THEN
		RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed',
			MESSAGE = 'recipient and country must not be null',
			HINT = 'Call profile_guard.define_recipient(''name'', ''CN'').';
	END IF;
	IF length(define_recipient.recipient) NOT BETWEEN 1 AND 200 OR btrim(define_recipient.recipient) = '' THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = 'invalid recipient name',
			DETAIL = 'A recipient name is 1 to 200 characters long and not blank.',
			HINT = 'Use names like ''acme'' or ''Acme Analytics Ltd''.';
	END IF;
	IF define_recipient.country !~ '^[A-Z]{2}$' THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = 'invalid country code',
			DETAIL = format('Recipient "%s" needs an ISO 3166-1 alpha-2 country code: two upper-case letters.',
							left(define_recipient.recipient, 120)),
			HINT = 'Pass a code such as ''CN'' or ''DE''.';
	END IF;
	SELECT * INTO old FROM profile_guard.recipient r WHERE r.recipient = define_recipient.recipient FOR UPDATE;
	IF NOT FOUND THEN
		INSERT INTO profile_guard.recipient (recipient, country, description)
		VALUES (define_recipient.recipient, define_recipient.country, define_recipient.description);
	ELSIF (old.country, old.description) IS NOT DISTINCT FROM
		  (define_recipient.country, define_recipient.description) THEN
		RETURN;				-- identical: nothing changes
	ELSE
		UPDATE profile_guard.recipient r
		SET country = define_recipient.country, description = define_recipient.description,
			defined_at = now()
		WHERE r.recipient = define_recipient.recipient;
		IF old.country <> define_recipient.country THEN
			-- its purposes change: a new version each (rule 5)
			UPDATE purpose p SET version = p.version + 1, defined_at = now()
			WHERE p.recipient = define_recipient.recipient AND p.retired_at IS NULL;
			INSERT INTO purpose_history (purpose, version, description, tags, retention,
										 marketing, automated_decision, recipient, defined_at,
										 personalised, legal_basis)
			SELECT p.purpose, p.version, p.description, p.tags, p.retention,
				   p.marketing, p.automated_decision, p.recipient, p.defined_at,
				   p.personalised, p.legal_basis
			FROM purpose p
			WHERE p.recipient = define_recipient.recipient AND p.retired_at IS NULL;
		END IF;
	END IF;
	PERFORM _policy_changed();
END
$$;
REVOKE ALL ON FUNCTION define_recipient(text, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION define_recipient(text, text, text) TO profile_guard_admin;

CREATE OR REPLACE FUNCTION define_purpose(purpose text, description text, tags text[] DEFAULT NULL,
							   retention interval DEFAULT NULL, marketing boolean DEFAULT false,
							   automated_decision boolean DEFAULT false, recipient text DEFAULT NULL,
							   personalised boolean DEFAULT false, legal_basis text DEFAULT 'consent')
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, profile_guard, pg_temp
AS $$
DECLARE
	tag_list	text[];			-- tags, checked, distinct and sorted
	old			record;
	new_version	integer;
	is_personalised boolean;
BEGIN
	IF define_purpose.purpose IS NULL OR define_purpose.description IS NULL THEN
		RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed',
			MESSAGE = 'purpose and description must not be null',
			HINT = 'Call profile_guard.define_purpose(''name'', ''what the profiles are used for'').';
	END IF;
	IF define_purpose.marketing IS NULL OR define_purpose.automated_decision IS NULL
	   OR define_purpose.personalised IS NULL THEN
		RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed',
			MESSAGE = 'marketing, automated_decision and personalised must not be null',
			DETAIL = format('Purpose "%s" needs every flag set to true or false.', left(define_purpose.purpose, 120)),
			HINT = 'Omit them for false.';
	END IF;
	IF length(define_purpose.purpose) > 100 OR define_purpose.purpose !~ '^[a-z][a-z0-9_.:-]*$' THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = 'invalid purpose name',
			DETAIL = format('Purpose name "%s" must start with a lower-case letter, consist of lower-case letters, digits, "_", ".", ":" and "-", and be at most 100 characters long.',
							left(define_purpose.purpose, 120)),
			HINT = 'Use names like ''recommendation'' or ''share:acme''.';
	END IF;
	IF define_purpose.legal_basis IS NULL THEN
		RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed',
			MESSAGE = 'legal basis must not be null',
			DETAIL = format('Purpose "%s" needs a lawful basis.', left(define_purpose.purpose, 120)),
			HINT = 'Omit legal_basis for consent, or pass one of consent, contract, legal_obligation, vital_interest, public_interest, news_reporting, public_information.';
	END IF;
	IF define_purpose.legal_basis NOT IN ('consent', 'contract', 'legal_obligation', 'vital_interest',
										  'public_interest', 'news_reporting', 'public_information') THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = 'unknown legal basis',
			DETAIL = format('Purpose "%s" names a lawful basis that PIPL article 13 does not list.', define_purpose.purpose),
			HINT = 'Pass one of consent, contract, legal_obligation, vital_interest, public_interest, news_reporting, public_information.';
	END IF;
	IF define_purpose.legal_basis <> 'consent'
	   AND (define_purpose.personalised OR define_purpose.marketing) THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = 'a purpose not based on consent cannot be personalised or marketing',
			DETAIL = format('Purpose "%s" has legal basis %s; personalised display, information push and marketing rest on consent alone (rule 9a).',
							define_purpose.purpose, define_purpose.legal_basis),
			HINT = 'Define it with legal_basis => ''consent'', or with personalised and marketing false.';
	END IF;
	IF define_purpose.legal_basis <> 'consent' AND define_purpose.tags IS NULL THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = 'a purpose not based on consent must list its tags',
			DETAIL = format('Purpose "%s" has legal basis %s and no tag list: without consent, only the tags the basis needs may be read (minimum necessary).',
							define_purpose.purpose, define_purpose.legal_basis),
			HINT = 'Pass tags => ARRAY[...] naming the tags it needs, each sensitive tag by its full name.';
	END IF;
	IF btrim(define_purpose.description) = '' THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = 'purpose description must not be empty',
			DETAIL = format('Purpose "%s" has an empty description.', define_purpose.purpose),
			HINT = 'Describe what the profiles are used for and how.';
	END IF;
	-- positive in each of its parts (months, days, time), whatever the
	-- calendar: '1 mon -29 days' is positive in February and not in March;
	-- and short enough that now() - retention is a timestamp
	IF define_purpose.retention IS NOT NULL AND
	   (define_purpose.retention <= interval '0' OR
		extract(year FROM define_purpose.retention) * 12 + extract(month FROM define_purpose.retention) < 0 OR
		extract(day FROM define_purpose.retention) < 0 OR
		define_purpose.retention - make_interval(
			months => (extract(year FROM define_purpose.retention) * 12 + extract(month FROM define_purpose.retention))::int,
			days => extract(day FROM define_purpose.retention)::int) < interval '0') THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = 'retention must be positive',
			DETAIL = format('Purpose "%s" has a retention of %s, which is not positive in each of its months, days and time.',
							define_purpose.purpose, define_purpose.retention),
			HINT = 'Pass an interval such as interval ''180 days'', or NULL for no limit.';
	END IF;
	IF define_purpose.retention > interval '1000 years' THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = 'retention is too long',
			DETAIL = format('Purpose "%s" has a retention of %s; at most 1000 years.',
							define_purpose.purpose, define_purpose.retention),
			HINT = 'Pass NULL for no limit.';
	END IF;
	IF define_purpose.recipient IS NOT NULL
	   AND NOT EXISTS (SELECT 1 FROM profile_guard.recipient r
					   WHERE r.recipient = define_purpose.recipient) THEN
		RAISE EXCEPTION USING ERRCODE = 'foreign_key_violation',
			MESSAGE = 'recipient is not defined',
			DETAIL = format('Purpose "%s" names recipient "%s", which was never defined.',
							define_purpose.purpose, left(define_purpose.recipient, 120)),
			HINT = format('Call profile_guard.define_recipient(%L, country) first.',
						  left(define_purpose.recipient, 120));
	END IF;
	tag_list := _check_tag_list(define_purpose.tags, format('purpose "%s"', define_purpose.purpose));
	-- every marketing purpose is personalised (rule 9)
	is_personalised := define_purpose.personalised OR define_purpose.marketing;

	SELECT * INTO old FROM purpose x WHERE x.purpose = define_purpose.purpose FOR UPDATE;
	IF NOT FOUND THEN
		new_version := 1;
		INSERT INTO purpose (purpose, version, description, tags, retention,
							 marketing, automated_decision, recipient, personalised, legal_basis)
		VALUES (define_purpose.purpose, new_version, define_purpose.description, tag_list,
				define_purpose.retention, define_purpose.marketing, define_purpose.automated_decision,
				define_purpose.recipient, is_personalised, define_purpose.legal_basis);
	ELSE
		IF old.retired_at IS NOT NULL THEN
			RAISE EXCEPTION USING ERRCODE = 'object_not_in_prerequisite_state',
				MESSAGE = 'purpose is retired',
				DETAIL = format('Purpose "%s" was retired and cannot be redefined.', define_purpose.purpose),
				HINT = 'Define a purpose with a new name with profile_guard.define_purpose().';
		END IF;
		IF (old.description, old.tags, old.retention, old.marketing,
			old.automated_decision, old.recipient, old.personalised, old.legal_basis)
		   IS NOT DISTINCT FROM
		   (define_purpose.description, tag_list, define_purpose.retention, define_purpose.marketing,
			define_purpose.automated_decision, define_purpose.recipient, is_personalised,
			define_purpose.legal_basis) THEN
			RETURN old.version;		-- identical: nothing changes
		END IF;
		new_version := old.version + 1;
		UPDATE purpose x
		SET version = new_version, description = define_purpose.description, tags = tag_list,
			retention = define_purpose.retention, marketing = define_purpose.marketing,
			automated_decision = define_purpose.automated_decision, recipient = define_purpose.recipient,
			personalised = is_personalised, legal_basis = define_purpose.legal_basis,
			defined_at = now()
		WHERE x.purpose = define_purpose.purpose;
	END IF;

	INSERT INTO purpose_history (purpose, version, description, tags, retention,
								 marketing, automated_decision, recipient, defined_at, personalised,
								 legal_basis)
	SELECT x.purpose, x.version, x.description, x.tags, x.retention,
		   x.marketing, x.automated_decision, x.recipient, x.defined_at, x.personalised,
		   x.legal_basis
	FROM purpose x WHERE x.purpose = define_purpose.purpose;

	PERFORM _policy_changed();
	RETURN new_version;
END
$$;
REVOKE ALL ON FUNCTION define_purpose(text, text, text[], interval, boolean, boolean, text, boolean, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION define_purpose(text, text, text[], interval, boolean, boolean, text, boolean, text) TO profile_guard_admin;

-- ---------------------------------------------------------------------
-- Anonymisation that deserves the name (rule 12, docs/erasure.md): every
-- column of a table anonymised at erasure is classified, identifying
-- (anonymise_columns) or declared not identifying (keep_columns, new);
-- protect() refuses on_erase => 'anonymise' otherwise (it gains
-- anonymise_columns and keep_columns).  Tables protected so in 1.1 keep
-- working: their undeclared columns are set to NULL by the sweep as
-- identifying, and assess() reports them (§10 (anonymisation)) until they
-- are declared with set_anonymise_columns() or set_keep_columns().
-- ---------------------------------------------------------------------

ALTER TABLE guarded_table ADD COLUMN keep_columns name[] NOT NULL DEFAULT '{}';
DROP FUNCTION protect(regclass, name, name, name, name, text);

CREATE FUNCTION _anonymisation_undeclared(tbl regclass, rel regclass DEFAULT NULL)
RETURNS name[]
LANGUAGE sql STABLE
SET search_path = pg_catalog, profile_guard, pg_temp
AS $$
	SELECT coalesce(array_agg(a.attname ORDER BY a.attnum), '{}')
	FROM guarded_table g
	JOIN pg_attribute a ON a.attrelid = coalesce(rel, tbl) AND a.attnum > 0 AND NOT a.attisdropped
	WHERE g.relid = tbl
	  AND a.attname IS DISTINCT FROM g.subject_column
	  AND a.attname IS DISTINCT FROM g.collected_at_column
	  AND a.attname IS DISTINCT FROM g.tag_column
	  AND a.attname IS DISTINCT FROM g.value_column
	  AND a.attname <> ALL (g.anonymise_columns)
	  AND a.attname <> ALL (g.keep_columns)
	  AND NOT EXISTS (SELECT 1 FROM classified_column cc
					  WHERE cc.relid = g.relid AND cc.column_name = a.attname)
$$;
REVOKE ALL ON FUNCTION _anonymisation_undeclared(regclass, regclass) FROM PUBLIC;

CREATE FUNCTION _check_anonymise_lists(tbl regclass, g guarded_table, anonymise_columns name[],
									   keep_columns name[])
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, profile_guard, pg_temp
AS $$
DECLARE
	c	name;
BEGIN
	IF anonymise_columns IS NULL OR keep_columns IS NULL
	   OR array_position(anonymise_columns, NULL) IS NOT NULL
	   OR array_position(keep_columns, NULL) IS NOT NULL THEN
		RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed',
			MESSAGE = 'column lists must not be null or hold nulls',
			DETAIL = format('Table %s needs its identifying and kept columns named.', tbl),
			HINT = 'Pass ''{}'' for none.';
	END IF;
	FOREACH c IN ARRAY anonymise_columns || keep_columns LOOP
		PERFORM _get_column(tbl, c, 'column declared for anonymisation');
		IF c = g.subject_column OR c = g.collected_at_column OR c = g.tag_column OR c = g.value_column THEN
			RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
				MESSAGE = 'column cannot be declared for anonymisation',
				DETAIL = format('Column "%s" of table %s is its subject, collected-at, tag or value column; anonymisation replaces, generalises or judges it by its tag.', c, tbl),
				HINT = 'Declare only the other columns.';
		END IF;
	END LOOP;
	FOREACH c IN ARRAY anonymise_columns LOOP
		IF c = ANY (keep_columns) THEN
			RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
				MESSAGE = 'column declared both identifying and not identifying',
				DETAIL = format('Column "%s" of table %s is in anonymise_columns and in keep_columns.', c, tbl),
				HINT = 'Name each column in one list only.';
		END IF;
		IF EXISTS (SELECT 1 FROM pg_attribute a
				   WHERE a.attrelid = tbl AND a.attname = c AND a.attnotnull) THEN
			RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
				MESSAGE = 'column to anonymise is NOT NULL',
				DETAIL = format('Column "%s" of table %s cannot be set to NULL.', c, tbl),
				HINT = format('ALTER TABLE %s ALTER COLUMN %I DROP NOT NULL, then retry.', tbl, c);
		END IF;
	END LOOP;
END
$$;
REVOKE ALL ON FUNCTION _check_anonymise_lists(regclass, guarded_table, name[], name[]) FROM PUBLIC;

CREATE FUNCTION _warn_anonymisation(rel regclass)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, profile_guard, pg_temp
AS $$
DECLARE
	root	regclass := coalesce((SELECT g.relid FROM guarded_table g WHERE g.relid = rel),
								 _guarded_root(rel));
	cols	name[];
BEGIN
	IF root IS NULL OR NOT EXISTS (SELECT 1 FROM guarded_table g
								   WHERE g.relid = root AND g.on_erase = 'anonymise') THEN
		RETURN;
	END IF;
	cols := _anonymisation_undeclared(root, rel);
	IF cardinality(cols) > 0 THEN
		RAISE WARNING USING
			MESSAGE = format('columns of table %s are not declared for anonymisation', rel),
			DETAIL = format('Columns %s are declared neither identifying nor not identifying; the sweep sets them to NULL when it anonymises a row, and assess() reports them.',
							(SELECT string_agg(format('"%s"', c), ', ') FROM unnest(cols) c)),
			HINT = format('Declare them: SELECT profile_guard.set_anonymise_columns(%L, ...) or profile_guard.set_keep_columns(%L, ...).',
						  root::text, root::text);
	END IF;
END
$$;
REVOKE ALL ON FUNCTION _warn_anonymisation(regclass) FROM PUBLIC;

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

-- ---------------------------------------------------------------------
-- De-identified views and data sources (§4 a, §6; 88_deidentified.sql):
-- deidentified_view(), the pseudonyms of src/pseudonym.c, and the sources
-- guarded tables were built from, which assess() checks (§6 (data sources)).
-- ---------------------------------------------------------------------

-- The sources guarded tables were built from (§6 b–c): open-source data,
-- data bought, data from a cooperation, or the service's own collection,
-- each with its licence or contract and when it was last reviewed.
CREATE TABLE data_source (
	source		text PRIMARY KEY,
	kind		text NOT NULL CHECK (kind IN ('open_source', 'purchase', 'cooperation', 'own_collection')),
	licence_or_contract text,
	reviewed_at	date,
	defined_at	timestamptz NOT NULL DEFAULT now()
);

-- which sources each guarded table was built from (set_data_sources())
CREATE TABLE table_data_source (
	relid		regclass NOT NULL REFERENCES guarded_table ON DELETE CASCADE,
	source		text NOT NULL REFERENCES data_source,
	PRIMARY KEY (relid, source)
);

-- the de-identified views made by deidentified_view()
CREATE TABLE deidentified_view (
	view_relid	regclass PRIMARY KEY,
	relid		regclass NOT NULL,
	recipient	text NOT NULL REFERENCES recipient,
	created_at	timestamptz NOT NULL DEFAULT now()
);

GRANT SELECT ON data_source, table_data_source, deidentified_view
	TO profile_guard_admin, profile_guard_consent;
SELECT pg_catalog.pg_extension_config_dump('data_source', '');
SELECT pg_catalog.pg_extension_config_dump('table_data_source', '');
SELECT pg_catalog.pg_extension_config_dump('deidentified_view', '');

CREATE FUNCTION define_data_source(source text, kind text, licence_or_contract text DEFAULT NULL,
								   reviewed_at date DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, profile_guard, pg_temp
AS $$
BEGIN
	IF define_data_source.source IS NULL OR define_data_source.kind IS NULL THEN
		RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed',
			MESSAGE = 'source and kind must not be null',
			HINT = 'Call profile_guard.define_data_source(''name'', ''own_collection'').';
	END IF;
	IF length(define_data_source.source) NOT BETWEEN 1 AND 200 OR btrim(define_data_source.source) = '' THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = 'invalid data source name',
			DETAIL = 'A data source name is 1 to 200 characters long and not blank.',
			HINT = 'Use names like ''app_events'' or ''vendor_x_2024''.';
	END IF;
	IF define_data_source.kind NOT IN ('open_source', 'purchase', 'cooperation', 'own_collection') THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = 'unknown kind of data source',
			DETAIL = format('Data source "%s" needs a kind of §6 b-c.', left(define_data_source.source, 120)),
			HINT = 'Pass one of open_source, purchase, cooperation, own_collection.';
	END IF;
	IF define_data_source.reviewed_at > current_date THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = 'review date is in the future',
			DETAIL = format('Data source "%s" cannot have been reviewed after today.', left(define_data_source.source, 120)),
			HINT = 'Pass the date of the review, or NULL.';
	END IF;
	INSERT INTO data_source (source, kind, licence_or_contract, reviewed_at)
	VALUES (define_data_source.source, define_data_source.kind, define_data_source.licence_or_contract,
			define_data_source.reviewed_at)
	ON CONFLICT ON CONSTRAINT data_source_pkey DO UPDATE
	SET kind = excluded.kind, licence_or_contract = excluded.licence_or_contract,
		reviewed_at = excluded.reviewed_at, defined_at = now();
END
$$;
REVOKE ALL ON FUNCTION define_data_source(text, text, text, date) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION define_data_source(text, text, text, date) TO profile_guard_admin;

CREATE FUNCTION _identifying_tag(tag text)
RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, profile_guard, pg_temp
AS $$
	SELECT EXISTS (SELECT 1 FROM profile_guard.tag tg
				   WHERE tg.tag = _identifying_tag.tag
					 AND tg.category IN ('contact', 'device', 'basic', 'precise_location', 'whereabouts'))
$$;

-- _serves_recipient(recipient): a de-identified view made for recipient is
-- read only under a purpose that provides its data to that recipient (its
-- cells are then counted for it, in recipient_use, and a foreign one needs
-- what a transfer abroad needs); true when no purpose is declared (the gate
-- then refuses tag reads), else 42501.  The view's condition calls it once
-- a statement (no column in it).
CREATE FUNCTION _serves_recipient(recipient text)
RETURNS boolean
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, profile_guard, pg_temp
AS $$
DECLARE
	declared	text := nullif(pg_catalog.current_setting('profile_guard.purpose', true), '');
	theirs		text;
BEGIN
	IF declared IS NULL THEN
		RETURN true;
	END IF;
	SELECT p.recipient INTO theirs FROM profile_guard.purpose p WHERE p.purpose = declared;
	IF theirs IS DISTINCT FROM _serves_recipient.recipient THEN
		RAISE EXCEPTION USING ERRCODE = 'insufficient_privilege',
			MESSAGE = format('a de-identified view for recipient "%s" is read only under a purpose that provides its data to it',
							 _serves_recipient.recipient),
			DETAIL = CASE WHEN theirs IS NULL
						 THEN format('Purpose "%s" provides its data to no recipient.', left(declared, 120))
						 ELSE format('Purpose "%s" provides its data to recipient "%s".', left(declared, 120), theirs) END,
			HINT = format('Declare a purpose defined with recipient => %L.', _serves_recipient.recipient);
	END IF;
	RETURN true;
END
$$;

CREATE FUNCTION _pseudonym(subject text, recipient text)
RETURNS text
AS 'MODULE_PATHNAME', 'profile_guard_pseudonym'
LANGUAGE C STRICT STABLE;

CREATE FUNCTION deidentified_view(tbl regclass, view_name name, recipient text)
RETURNS regclass
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, profile_guard, pg_temp
AS $$
DECLARE
	g		profile_guard.guarded_table;
	nsp		name;
	owner	name;
	cols	text;
	q		text;
	v		regclass;
BEGIN
	IF tbl IS NULL OR view_name IS NULL OR deidentified_view.recipient IS NULL THEN
		RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed',
			MESSAGE = 'table, view name and recipient must not be null',
			HINT = 'Call profile_guard.deidentified_view(''table'', ''view_name'', ''recipient'').';
	END IF;
	g := _get_guarded(tbl);
	PERFORM _check_table_owner(tbl);
	IF NOT EXISTS (SELECT 1 FROM profile_guard.recipient r WHERE r.recipient = deidentified_view.recipient) THEN
		RAISE EXCEPTION USING ERRCODE = 'foreign_key_violation',
			MESSAGE = 'recipient is not defined',
			DETAIL = format('The view of table %s is for recipient "%s", which was never defined.',
							tbl, left(deidentified_view.recipient, 120)),
			HINT = format('Call profile_guard.define_recipient(%L, country) first.',
						  left(deidentified_view.recipient, 120));
	END IF;
	SELECT n.nspname, pg_get_userbyid(c.relowner) INTO nsp, owner
	FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = tbl;
	IF EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
			   WHERE n.nspname = nsp AND c.relname = view_name) THEN
		RAISE EXCEPTION USING ERRCODE = 'duplicate_table',
			MESSAGE = format('relation "%s" already exists', view_name),
			DETAIL = format('The de-identified view of table %s is created in its schema %s, which has a relation of that name.',
							tbl, quote_ident(nsp)),
			HINT = 'Choose another view name.';
	END IF;
	IF g.tag_column IS NULL THEN
		SELECT string_agg(format('t.%I', cc.column_name), ', ' ORDER BY a.attnum) INTO cols
		FROM classified_column cc
		JOIN tag tg ON tg.tag = cc.tag
		JOIN pg_attribute a ON a.attrelid = tbl AND a.attname = cc.column_name
		WHERE cc.relid = g.relid
		  AND tg.category NOT IN ('contact', 'device', 'basic', 'precise_location', 'whereabouts')
		  AND cc.column_name <> ALL (g.anonymise_columns);
		IF cols IS NULL THEN
			RAISE EXCEPTION USING ERRCODE = 'object_not_in_prerequisite_state',
				MESSAGE = 'table has no tag a de-identified view may show',
				DETAIL = format('Table %s has no classified column of a category that does not identify a person directly.', tbl),
				HINT = format('Classify its tag columns with profile_guard.classify(%L, column, tag) first.', tbl::text);
		END IF;
		q := format('SELECT profile_guard._pseudonym(t.%I::text, %L) AS subject_pseudonym, %s FROM %s t'
					' WHERE profile_guard._serves_recipient(%L)',
					g.subject_column, deidentified_view.recipient, cols, tbl, deidentified_view.recipient);
	ELSE
		q := format('SELECT profile_guard._pseudonym(t.%I::text, %L) AS subject_pseudonym, t.%I AS tag, t.%I AS value'
					' FROM %s t WHERE NOT profile_guard._identifying_tag(t.%I::text)'
					' AND profile_guard._serves_recipient(%L)',
					g.subject_column, deidentified_view.recipient, g.tag_column, g.value_column, tbl,
					g.tag_column, deidentified_view.recipient);
	END IF;
	EXECUTE format('CREATE VIEW %I.%I WITH (security_invoker = true) AS %s', nsp, view_name, q);
	v := format('%I.%I', nsp, view_name)::regclass;
	EXECUTE format('ALTER VIEW %s OWNER TO %I', v, owner);
	INSERT INTO profile_guard.deidentified_view (view_relid, relid, recipient)
	VALUES (v, g.relid, deidentified_view.recipient);
	RETURN v;
END
$$;
REVOKE ALL ON FUNCTION deidentified_view(regclass, name, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION deidentified_view(regclass, name, text) TO profile_guard_admin;

CREATE OR REPLACE FUNCTION _guard_ddl()
RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, profile_guard, pg_temp
AS $$
DECLARE
	rel		regclass;
BEGIN
	IF NOT _guards_any() THEN
		RETURN;
	END IF;
	IF tg_tag IN ('CREATE VIEW', 'ALTER VIEW') THEN
		-- a de-identified view shows what deidentified_view() chose for its
		-- recipient: it is not replaced or altered, only dropped and made
		-- again (deidentified_view() registers it after making it)
		FOR rel IN
			SELECT d.view_relid FROM pg_event_trigger_ddl_commands() e
			JOIN profile_guard.deidentified_view d ON d.view_relid::oid = e.objid
			WHERE e.classid = 'pg_class'::regclass
		LOOP
			RAISE EXCEPTION USING ERRCODE = 'object_not_in_prerequisite_state',
				MESSAGE = format('de-identified view %s cannot be changed', rel),
				DETAIL = 'Its definition is what profile_guard.deidentified_view() chose to show its recipient.',
				HINT = format('Drop it and make it again with profile_guard.deidentified_view(): DROP VIEW %s.', rel);
		END LOOP;
		RETURN;
	END IF;
	IF tg_tag = 'DROP POLICY' THEN
		-- dropped objects are not listed: the policies of every guarded table
		FOR rel IN
			SELECT pt.relid FROM guarded_table x, _relations(x.relid) pt(relid)
			ORDER BY 1
		LOOP
			PERFORM _sync_row_security(rel, false, false);
		END LOOP;
		RETURN;
	END IF;
	FOR rel IN
		WITH touched AS (
			SELECT CASE
					 WHEN e.classid = 'pg_class'::regclass
					   THEN coalesce((SELECT i.indrelid FROM pg_index i WHERE i.indexrelid = e.objid), e.objid)
					 WHEN e.classid = 'pg_policy'::regclass
					   THEN (SELECT p.polrelid FROM pg_policy p WHERE p.oid = e.objid)
					 WHEN e.classid = 'pg_statistic_ext'::regclass
					   THEN (SELECT s.stxrelid FROM pg_statistic_ext s WHERE s.oid = e.objid)
				   END AS relid
			FROM pg_event_trigger_ddl_commands() e)
		SELECT t.relid FROM touched t WHERE t.relid IS NOT NULL
		UNION
		SELECT k.confrelid FROM touched t JOIN pg_constraint k ON k.conrelid = t.relid AND k.contype = 'f'
		ORDER BY 1
	LOOP
		PERFORM _check_guarded_relation(rel, tg_tag = 'CREATE TABLE', tg_tag = 'ALTER TABLE');
		-- a column added to a table anonymised at erasure is identifying
		-- until declared otherwise: say so (the sweep sets it to NULL)
		IF tg_tag IN ('ALTER TABLE', 'CREATE TABLE') THEN
			PERFORM _warn_anonymisation(rel);
		END IF;
	END LOOP;
END
$$;
REVOKE ALL ON FUNCTION _guard_ddl() FROM PUBLIC;

CREATE OR REPLACE FUNCTION set_anonymise_columns(tbl regclass, columns name[])
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

-- tag_state() (20_policy.sql) as the legal bases, the unknown ages and the
-- recipients above leave it
/*
 * tag_state(purpose, subject, with_unconsented)
 *
 * One row per subject and tag for the subjects that have any consent event
 * for the purpose (only p_subject when given).  Tags covered by a consent
 * event are always listed; with p_with_unconsented, the purpose's other tags
 * are listed too (reason "not consented").  effective is true when the tag
 * may be served; otherwise reason says why, the first failing rule winning.
 * valid_until is the next moment the answer can change by itself (a consent
 * expiring, a birthday crossing an age threshold).
 *
 * No SET clause, and every name qualified: that keeps the function
 * inlinable into the queries that read it (consent_status, erasure), and
 * independent of the caller's search_path.
 */
CREATE OR REPLACE FUNCTION tag_state(p_purpose text, p_subject text DEFAULT NULL,
						  p_with_unconsented boolean DEFAULT true)
RETURNS TABLE (subject text, tag text, tag_id integer, effective boolean,
			   reason text, valid_until timestamptz)
LANGUAGE sql STABLE
AS $$
WITH p AS (
	SELECT pu.purpose, pu.version, pu.tags, pu.marketing, pu.personalised, pu.retired_at,
		   pu.legal_basis, pu.legal_basis OPERATOR(pg_catalog.<>) 'consent' AS standing,
		   profile_guard._cross_border(pu.recipient) AS cross_border,
		   (pu.automated_decision OR profile_guard._cross_border(pu.recipient)) AND NOT EXISTS (
				SELECT 1 FROM profile_guard.assessment a
				WHERE a.purpose OPERATOR(pg_catalog.=) pu.purpose
				  AND a.purpose_version OPERATOR(pg_catalog.=) pu.version) AS unassessed,
		   pg_catalog.statement_timestamp() AS now,
		   profile_guard.age_today() AS today,
		   profile_guard.age_time_zone() AS age_zone,
		   profile_guard.minor_age() AS minor_age,
		   profile_guard.unknown_age() AS unknown_age
	FROM profile_guard.purpose pu
	WHERE pu.purpose OPERATOR(pg_catalog.=) p_purpose
),
-- two branches so that a one-subject call uses the index even with a
-- generic plan (only one branch runs: the other's one-time filter is false)
ev AS (
	SELECT c.consent_id, c.subject, coalesce(c.tags, '{*}') AS tags, c.action,
		   c.purpose_version, c.separate, c.guardian, c.expires_at
	FROM profile_guard.consent c CROSS JOIN p
	WHERE p_subject IS NOT NULL AND c.purpose OPERATOR(pg_catalog.=) p_purpose
	  AND c.subject OPERATOR(pg_catalog.=) p_subject AND NOT p.standing
	UNION ALL
	SELECT c.consent_id, c.subject, coalesce(c.tags, '{*}') AS tags, c.action,
		   c.purpose_version, c.separate, c.guardian, c.expires_at
	FROM profile_guard.consent c CROSS JOIN p
	WHERE p_subject IS NULL AND c.purpose OPERATOR(pg_catalog.=) p_purpose AND NOT p.standing
),
-- a purpose based on something else than consent (rule 9a) concerns every
-- registered subject, consent events or none
reg AS (
	SELECT r.subject FROM profile_guard._basis_subjects(p_purpose, p_subject) AS r(subject)
),
-- each subject in question, with what the rules need to know of it
subj AS (
	SELECT e.subject,
		   s.subject IS NULL AS unregistered,
		   s.erasure_requested_at IS NOT NULL AS erasure_requested,
		   coalesce(s.opted_out, false) AS opted_out,
		   s.birth_date,
		   -- without a birth date, as profile_guard.unknown_age says
		   coalesce(s.birth_date OPERATOR(pg_catalog.+) pg_catalog.make_interval(years => p.minor_age)
					OPERATOR(pg_catalog.>) p.today,
					p.unknown_age OPERATOR(pg_catalog.<>) 'adult') AS minor,
		   coalesce(s.birth_date OPERATOR(pg_catalog.+) pg_catalog.make_interval(years => 14)
					OPERATOR(pg_catalog.>) p.today,
					p.unknown_age OPERATOR(pg_catalog.=) 'child') AS under_14,
		   h.held AND s.subject IS NOT NULL AS held, h.held_until
	FROM (SELECT ev.subject FROM ev UNION SELECT reg.subject FROM reg) AS e
	CROSS JOIN p
	LEFT JOIN profile_guard.subject s ON s.subject OPERATOR(pg_catalog.=) e.subject
	-- its active legal holds (rule 9b): held until the last ends
	CROSS JOIN LATERAL (
		SELECT pg_catalog.count(*) OPERATOR(pg_catalog.>) 0 AS held,
			   CASE WHEN pg_catalog.bool_or(lh.until IS NULL) THEN NULL
					ELSE pg_catalog.max(lh.until) END AS held_until
		FROM profile_guard.legal_hold lh
		WHERE lh.subject OPERATOR(pg_catalog.=) e.subject AND lh.released_at IS NULL
		  AND (lh.until IS NULL OR lh.until OPERATOR(pg_catalog.>) p.now)) AS h
),
-- their blocks (two branches, as for ev)
blocks AS (
	SELECT b.subject, b.tag FROM profile_guard.tag_block b
	WHERE p_subject IS NOT NULL AND b.subject OPERATOR(pg_catalog.=) p_subject
	UNION ALL
	SELECT b.subject, b.tag FROM profile_guard.tag_block b
	WHERE p_subject IS NULL
),
-- every tag, and whether the purpose may use it at all (once per tag)
scope AS (
	SELECT t.tag_id, t.tag, t.all_sources, t.sensitivity,
		   profile_guard.tag_matches(p.tags, t.tag) AS in_scope,
		   coalesce(t.tag OPERATOR(pg_catalog.=) ANY (p.tags), false) AS named
	FROM profile_guard.tag t CROSS JOIN p
),
-- consents mostly repeat the same tag lists: match each distinct list once
pattern_tag AS (
	SELECT l.tags, t.tag_id
	FROM (SELECT DISTINCT ev.tags FROM ev) AS l
	JOIN profile_guard.tag t ON profile_guard.tag_matches(l.tags, t.tag)
),
latest AS (
	SELECT DISTINCT ON (ev.subject, pt.tag_id)
		   ev.subject, pt.tag_id, ev.action, ev.purpose_version, ev.separate,
		   ev.guardian, ev.expires_at
	FROM ev JOIN pattern_tag pt ON pt.tags OPERATOR(pg_catalog.=) ev.tags
	ORDER BY ev.subject, pt.tag_id, ev.consent_id DESC
),
pairs AS (
	SELECT l.subject, l.tag_id, l.action, l.purpose_version, l.separate,
		   l.guardian, l.expires_at
	FROM latest l
	UNION ALL
	SELECT s.subject, sc.tag_id, NULL, NULL, NULL, NULL, NULL
	FROM subj AS s
	CROSS JOIN p
	JOIN scope sc ON sc.in_scope
	WHERE p_with_unconsented AND NOT p.standing
	  AND NOT EXISTS (SELECT 1 FROM latest l
					  WHERE l.subject OPERATOR(pg_catalog.=) s.subject
					    AND l.tag_id OPERATOR(pg_catalog.=) sc.tag_id)
	UNION ALL
	-- not based on consent: the lawful basis stands for a grant of every
	-- tag in scope to every registered subject
	SELECT s.subject, sc.tag_id, 'basis', p.version, NULL, NULL, NULL
	FROM subj AS s
	CROSS JOIN p
	JOIN scope sc ON sc.in_scope
	WHERE p.standing AND NOT s.unregistered
),
cell AS (
	SELECT x.subject, t.tag, t.tag_id, t.all_sources, x.action, x.expires_at,
		   t.in_scope, s.unregistered, s.erasure_requested, s.opted_out, p.cross_border,
		   s.minor, s.under_14, s.birth_date, s.held, s.held_until, t.named,
		   b.tag IS NOT NULL AS blocked,
		   -- the tag's own consent holds (scope and derivation aside); under
		   -- another lawful basis, a sensitive tag (every tag of a child
		   -- under 14 or of a cross-border purpose) only when the purpose's
		   -- list names it
		   CASE WHEN x.action OPERATOR(pg_catalog.=) 'basis'
				THEN (t.named OR (t.sensitivity OPERATOR(pg_catalog.=) 'general' AND NOT s.under_14
								  AND NOT p.cross_border))
					 AND b.tag IS NULL
				ELSE x.action OPERATOR(pg_catalog.=) 'grant'
			 AND (x.expires_at IS NULL OR x.expires_at OPERATOR(pg_catalog.>) p.now)
			 AND x.purpose_version OPERATOR(pg_catalog.>=) p.version
			 AND (x.separate OR (t.sensitivity OPERATOR(pg_catalog.=) 'general' AND NOT s.under_14
								 AND NOT p.cross_border))
			 AND (x.guardian OR NOT s.under_14)
			 AND b.tag IS NULL END AS consented,
		   x.purpose_version, x.separate, x.guardian, t.sensitivity
	FROM pairs x
	CROSS JOIN p
	JOIN scope t ON t.tag_id OPERATOR(pg_catalog.=) x.tag_id
	JOIN subj s ON s.subject OPERATOR(pg_catalog.=) x.subject
	LEFT JOIN blocks b ON b.subject OPERATOR(pg_catalog.=) x.subject
					  AND b.tag OPERATOR(pg_catalog.=) t.tag
),
-- rule 4 needs, per subject holding a derived tag, what it consented to
derived_holder AS (
	SELECT DISTINCT c.subject FROM cell c
	WHERE c.all_sources OPERATOR(pg_catalog.<>) '{}'
),
consented_sets AS (
	SELECT c.subject,
		   pg_catalog.array_agg(c.tag) FILTER (WHERE c.consented) AS consented_tags
	FROM cell c
	JOIN derived_holder d ON d.subject OPERATOR(pg_catalog.=) c.subject
	GROUP BY c.subject
),
judged AS (
	SELECT c.*, cs.consented_tags
	FROM cell c
	LEFT JOIN consented_sets cs ON cs.subject OPERATOR(pg_catalog.=) c.subject
)
SELECT j.subject, j.tag, j.tag_id, r.reason IS NULL, r.reason,
	   LEAST(CASE WHEN j.expires_at OPERATOR(pg_catalog.>) p.now THEN j.expires_at END,
			 CASE WHEN j.under_14
				  THEN pg_catalog.timezone(p.age_zone, j.birth_date OPERATOR(pg_catalog.+)
										   pg_catalog.make_interval(years => 14)) END,
			 CASE WHEN j.minor
				  THEN pg_catalog.timezone(p.age_zone, j.birth_date OPERATOR(pg_catalog.+)
										   pg_catalog.make_interval(years => p.minor_age)) END,
			 CASE WHEN j.held THEN j.held_until END)
FROM judged j
CROSS JOIN p
CROSS JOIN LATERAL (SELECT CASE
	WHEN p.retired_at IS NOT NULL THEN 'purpose retired'
	WHEN j.unregistered THEN 'subject not registered'
	WHEN j.erasure_requested THEN 'erasure requested'
	WHEN j.held AND p.legal_basis OPERATOR(pg_catalog.<>) 'legal_obligation' THEN 'legal hold'
	WHEN p.unassessed AND p.cross_border THEN 'transfer assessment missing'
	WHEN p.unassessed THEN 'impact assessment missing'
	WHEN p.personalised AND j.opted_out THEN 'opted out'
	WHEN p.marketing AND j.minor THEN 'minor under a marketing purpose'
	WHEN NOT j.in_scope THEN 'tag outside the purpose'
	WHEN j.action IS NULL THEN 'not consented'
	WHEN j.action OPERATOR(pg_catalog.=) 'withdraw' THEN 'withdrawn'
	WHEN j.expires_at OPERATOR(pg_catalog.<=) p.now THEN 'expired'
	WHEN j.purpose_version OPERATOR(pg_catalog.<) p.version THEN 'outdated version'
	WHEN j.action OPERATOR(pg_catalog.=) 'basis' AND NOT j.named
		 AND (j.sensitivity OPERATOR(pg_catalog.=) 'sensitive' OR j.under_14)
		THEN 'sensitive tag not named by the purpose'
	WHEN j.action OPERATOR(pg_catalog.=) 'basis' AND NOT j.named AND j.cross_border
		THEN 'tag of a cross-border purpose not named by it'
	WHEN (j.sensitivity OPERATOR(pg_catalog.=) 'sensitive' OR j.under_14) AND NOT j.separate
		THEN 'not separate for a sensitive tag'
	WHEN j.cross_border AND NOT j.separate
		THEN 'not separate for a cross-border purpose'
	WHEN j.under_14 AND NOT j.guardian THEN 'guardian consent missing'
	WHEN j.blocked THEN 'blocked'
	WHEN NOT (j.all_sources OPERATOR(pg_catalog.<@) coalesce(j.consented_tags, '{}'))
		THEN 'source tag not visible'
	END AS reason) AS r
$$;

-- Retention in guarded tables without a collected_at column: the
-- collection stamps (docs/erasure.md, "Collection stamps").
CREATE TABLE collection_stamp (
	relid		regclass NOT NULL,
	subject		text NOT NULL,
	tag			text NOT NULL,
	collected_at timestamptz NOT NULL,
	PRIMARY KEY (relid, subject, tag)
) WITH (fillfactor = 80);
REVOKE ALL ON collection_stamp FROM PUBLIC;
GRANT SELECT ON collection_stamp TO profile_guard_admin;
SELECT pg_catalog.pg_extension_config_dump('collection_stamp', '');
-- Stamps are chosen per table, off by default for their cost on writes:
-- the tables protected before this update take none (their rows keep no
-- age-based retention until set_collection_stamps(tbl, true)).  Last, as
-- in a fresh install.
ALTER TABLE guarded_table ADD COLUMN stamp_collection boolean NOT NULL DEFAULT false;
ALTER TABLE guarded_table ADD CONSTRAINT guarded_table_stamp_collection_check
	CHECK (NOT stamp_collection OR collected_at_column IS NULL);

-- erase_tag() ledgers a request that found nothing (rows 0)
ALTER TABLE erasure_log DROP CONSTRAINT erasure_log_rows_check;
ALTER TABLE erasure_log ADD CONSTRAINT erasure_log_rows_check CHECK (rows >= 0);

-- The prohibited lexicon checks sensitive values too; a topic may be
-- exempted for a category (docs/rules.md, rule 13).
CREATE TABLE prohibited_topic_exemption (
	topic		text NOT NULL REFERENCES prohibited_topic ON DELETE CASCADE,
	category	text NOT NULL REFERENCES category ON DELETE CASCADE,
	exempted_at	timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (topic, category)
);
REVOKE ALL ON prohibited_topic_exemption FROM PUBLIC;
GRANT SELECT ON prohibited_topic_exemption TO profile_guard_admin, profile_guard_consent;
SELECT pg_catalog.pg_extension_config_dump('prohibited_topic_exemption', '');

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

CREATE OR REPLACE FUNCTION _stamp_existing(tbl regclass, col name)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, profile_guard, pg_temp
AS $$
DECLARE
	g	guarded_table;
BEGIN
	SELECT * INTO g FROM guarded_table x WHERE x.relid = tbl;
	IF NOT FOUND OR g.collected_at_column IS NOT NULL OR NOT g.stamp_collection THEN
		RETURN;
	END IF;
	IF g.tag_column IS NOT NULL THEN
		EXECUTE format('INSERT INTO profile_guard.collection_stamp (relid, subject, tag, collected_at)'
					   ' SELECT DISTINCT $1, t.%I::text, t.%I::text, now() FROM %s t'
					   ' WHERE t.%I IS NOT NULL AND t.%I IS NOT NULL'
					   ' ON CONFLICT (relid, subject, tag) DO NOTHING',
					   g.subject_column, g.tag_column, g.relid, g.subject_column, g.tag_column)
		USING g.relid;
	ELSIF col IS NOT NULL THEN
		EXECUTE format('INSERT INTO profile_guard.collection_stamp (relid, subject, tag, collected_at)'
					   ' SELECT DISTINCT $1, t.%I::text, cc.tag, now() FROM %s t'
					   ' JOIN profile_guard.classified_column cc ON cc.relid = $1 AND cc.column_name = $2'
					   ' WHERE t.%I IS NOT NULL AND t.%I IS NOT NULL'
					   ' ON CONFLICT (relid, subject, tag) DO NOTHING',
					   g.subject_column, g.relid, g.subject_column, col)
		USING g.relid, col;
	ELSE
		PERFORM _stamp_existing(g.relid, cc.column_name)
		FROM classified_column cc WHERE cc.relid = g.relid
		ORDER BY cc.column_name;
	END IF;
END
$$;
REVOKE ALL ON FUNCTION _stamp_existing(regclass, name) FROM PUBLIC;

CREATE OR REPLACE FUNCTION classify(tbl regclass, column_name name, tag text)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, profile_guard, pg_temp
AS $$
DECLARE
	g		guarded_table := _get_guarded(classify.tbl, true);
	a		pg_attribute;
	t		record;
	other	text;
BEGIN
	PERFORM _check_table_owner(g.relid);
	IF classify.column_name IS NULL OR classify.tag IS NULL THEN
		RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed',
			MESSAGE = 'column and tag must not be null',
			HINT = format('Call profile_guard.classify(%L, ''column'', ''tag'').', g.relid::text);
	END IF;
	IF g.tag_column IS NOT NULL THEN
		RAISE EXCEPTION USING ERRCODE = 'object_not_in_prerequisite_state',
			MESSAGE = 'only wide-shape tables have classified columns',
			DETAIL = format('Table %s is long shape: column "%s" names the tag of each row.', g.relid, g.tag_column),
			HINT = 'Store rows naming defined tags; nothing needs classifying.';
	END IF;
	a := _get_column(g.relid, classify.column_name, 'column to classify');
	IF classify.column_name IN (g.subject_column, g.collected_at_column) THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = 'subject and collected_at columns cannot be classified',
			DETAIL = format('Column "%s" of table %s is its %s column.', classify.column_name, g.relid,
							CASE WHEN classify.column_name = g.subject_column THEN 'subject' ELSE 'collected_at' END),
			HINT = 'Classify the columns that hold tag values.';
	END IF;
	SELECT x.tag, x.sensitivity INTO t FROM profile_guard.tag x WHERE x.tag = classify.tag;
	IF NOT FOUND THEN
		RAISE EXCEPTION USING ERRCODE = 'undefined_object',
			MESSAGE = 'tag does not exist',
			DETAIL = format('Tag "%s" is not defined.', left(classify.tag, 120)),
			HINT = format('Define it first with profile_guard.define_tag(%L, category).', left(classify.tag, 120));
	END IF;
	SELECT cc.tag INTO other FROM classified_column cc
	WHERE cc.relid = g.relid AND cc.column_name = classify.column_name;
	IF FOUND THEN
		RAISE EXCEPTION USING ERRCODE = 'duplicate_object',
			MESSAGE = 'column is already classified',
			DETAIL = format('Column "%s" of table %s is classified as tag "%s".', classify.column_name, g.relid, other),
			HINT = format('Call profile_guard.declassify(%L, %L) first.', g.relid::text, classify.column_name);
	END IF;
	IF t.sensitivity = 'sensitive' AND a.atttypid NOT IN ('text'::regtype, 'bytea'::regtype) THEN
		RAISE EXCEPTION USING ERRCODE = 'datatype_mismatch',
			MESSAGE = 'a sensitive tag needs a text or bytea column',
			DETAIL = format('Tag "%s" is sensitive and is stored encrypted, but column "%s" of table %s is of type %s.',
							classify.tag, classify.column_name, g.relid, format_type(a.atttypid, a.atttypmod)),
			HINT = format('Change the column''s type: ALTER TABLE %s ALTER COLUMN %I TYPE text.', g.relid, classify.column_name);
	END IF;

	IF a.attgenerated <> '' AND t.sensitivity = 'sensitive' THEN
		RAISE EXCEPTION USING ERRCODE = 'datatype_mismatch',
			MESSAGE = 'a generated column cannot hold a sensitive tag',
			DETAIL = format('Tag "%s" is sensitive and is stored encrypted, but column "%s" of table %s is generated.',
							classify.tag, classify.column_name, g.relid),
			HINT = format('Drop it: ALTER TABLE %s DROP COLUMN %I.', g.relid, classify.column_name);
	END IF;
	-- no generated column, statistics or constraint may show or betray its
	-- values (statistics are dropped)
	PERFORM _refuse_tag_leaks(pt.relid, classify.column_name, classify.tag, true)
	FROM _relations(g.relid) pt(relid);

	INSERT INTO classified_column (relid, column_name, tag) VALUES (g.relid, classify.column_name, classify.tag);
	-- collection stamps: the values it holds are collected now
	PERFORM _stamp_existing(g.relid, classify.column_name);
	PERFORM _set_statistics(g.relid, classify.column_name, 0);
	PERFORM _policy_changed(g.relid);

	-- existing plaintext of a sensitive tag is encrypted in place (the
	-- trigger, now aware of the classification, lets our ciphertext pass)
	IF t.sensitivity = 'sensitive' THEN
		PERFORM _convert_column(g.relid, g.subject_column, classify.column_name, classify.tag, NULL, 'encrypt');
	END IF;
END
$$;
REVOKE ALL ON FUNCTION classify(regclass, name, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION classify(regclass, name, text) TO profile_guard_admin;

CREATE OR REPLACE FUNCTION erase_tag(subject text, tag text)
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

CREATE OR REPLACE FUNCTION _adopt_detached(child regclass, root regclass)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, profile_guard, pg_temp
AS $$
DECLARE
	g		guarded_table;
BEGIN
	PERFORM _check_tree_change('_adopt_detached', child);
	SELECT * INTO g FROM guarded_table x WHERE x.relid = root;
	IF NOT FOUND OR _guarded_root(child) IS NOT NULL THEN
		RETURN;
	END IF;
	INSERT INTO guarded_table (relid, subject_column, collected_at_column, tag_column,
							   value_column, on_erase, anonymise_columns, keep_columns, stamp_collection)
	VALUES (child, g.subject_column, g.collected_at_column, g.tag_column,
			g.value_column, g.on_erase, g.anonymise_columns, g.keep_columns, g.stamp_collection);
	INSERT INTO classified_column (relid, column_name, tag)
	SELECT child, cc.column_name, cc.tag FROM classified_column cc
	WHERE cc.relid = root
	  AND EXISTS (SELECT 1 FROM pg_attribute a
				  WHERE a.attrelid = child AND a.attname = cc.column_name AND NOT a.attisdropped);
	PERFORM _install_collect_trigger(child);
	PERFORM _sync_row_security(pt.relid, true, false) FROM _relations(child) pt(relid);
	PERFORM _policy_changed(child);
END
$$;
REVOKE ALL ON FUNCTION _adopt_detached(regclass, regclass) FROM PUBLIC;

-- assess() (87_assess.sql) and its graded clauses, as every change above
-- leaves them
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

-- ---------------------------------------------------------------------
-- What was provided to recipients, per person (rule 10a), and the data
-- sources of purposes (§6 b–c).
-- ---------------------------------------------------------------------

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

-- which sources each purpose's profiles or models were built from
-- (set_purpose_data_sources())
CREATE TABLE purpose_data_source (
	purpose		text NOT NULL REFERENCES purpose ON DELETE CASCADE,
	source		text NOT NULL REFERENCES data_source,
	PRIMARY KEY (purpose, source)
);
GRANT SELECT ON purpose_data_source TO profile_guard_admin, profile_guard_consent;
SELECT pg_catalog.pg_extension_config_dump('purpose_data_source', '');

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
 * _erasure_finish(sweep_start): called when a sweep has done all its work:
 * the record of what was provided to recipients is merged from its log,
 * the requests it served are complete, their subjects are forgotten (and
 * so are those of requests completed before forgetting existed), and the
 * next sweep looks at events from this one's start on.
 */
CREATE OR REPLACE FUNCTION _erasure_finish(sweep_start timestamptz)
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
 * _check_data_sources(sources, named_by): raises unless sources is an array
 * of defined data sources; named_by ("Table t", "Purpose p") for the error.
 */
CREATE FUNCTION _check_data_sources(sources text[], named_by text)
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, profile_guard, pg_temp
AS $$
DECLARE
	missing	text;
BEGIN
	IF sources IS NULL OR array_position(sources, NULL) IS NOT NULL THEN
		RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed',
			MESSAGE = 'sources must not be null or hold nulls',
			DETAIL = format('%s needs its data sources named.', named_by),
			HINT = 'Pass ''{}'' for none.';
	END IF;
	SELECT string_agg(format('"%s"', left(s, 120)), ', ' ORDER BY s) INTO missing
	FROM unnest(sources) s
	WHERE NOT EXISTS (SELECT 1 FROM data_source d WHERE d.source = s);
	IF missing IS NOT NULL THEN
		RAISE EXCEPTION USING ERRCODE = 'foreign_key_violation',
			MESSAGE = 'data source is not defined',
			DETAIL = format('%s names data sources %s, which were never defined.', named_by, missing),
			HINT = 'Call profile_guard.define_data_source(source, kind, licence_or_contract, reviewed_at) first.';
	END IF;
END
$$;
REVOKE ALL ON FUNCTION _check_data_sources(text[], text) FROM PUBLIC;

/*
 * set_data_sources(tbl, sources): the sources guarded table tbl was built
 * from (replacing those named before; '{}' for none).
 */
CREATE OR REPLACE FUNCTION set_data_sources(tbl regclass, sources text[])
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, profile_guard, pg_temp
AS $$
DECLARE
	g		profile_guard.guarded_table := _get_guarded(tbl, true);
BEGIN
	PERFORM _check_data_sources(sources, format('Table %s', tbl));
	DELETE FROM table_data_source x WHERE x.relid = g.relid;
	INSERT INTO table_data_source (relid, source)
	SELECT DISTINCT g.relid, s FROM unnest(sources) s;
END
$$;
REVOKE ALL ON FUNCTION set_data_sources(regclass, text[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION set_data_sources(regclass, text[]) TO profile_guard_admin;

/*
 * set_purpose_data_sources(purpose, sources): the sources a purpose's
 * profiles or models were built from (replacing those named before; '{}'
 * for none).  A retired purpose keeps its record: its sources can still be
 * named.
 */
CREATE FUNCTION set_purpose_data_sources(purpose text, sources text[])
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, profile_guard, pg_temp
AS $$
DECLARE
	pu		profile_guard.purpose := _get_purpose(set_purpose_data_sources.purpose, true);
BEGIN
	PERFORM _check_data_sources(sources, format('Purpose "%s"', pu.purpose));
	DELETE FROM purpose_data_source x WHERE x.purpose = pu.purpose;
	INSERT INTO purpose_data_source (purpose, source)
	SELECT DISTINCT pu.purpose, s FROM unnest(sources) s;
END
$$;
REVOKE ALL ON FUNCTION set_purpose_data_sources(text, text[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION set_purpose_data_sources(text, text[]) TO profile_guard_admin;

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
CREATE OR REPLACE FUNCTION subject_report(subject text)
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

-- ---------------------------------------------------------------------
-- Collection stamps on by default (docs/erasure.md, "Collection stamps"):
-- the write path appends its pairs to an unindexed log
-- (collection_stamp_log, 10_catalog.sql), which the sweep merges into
-- collection_stamp (_merge_collection_stamps(), 80_erasure.sql);
-- protect() stamps a table without a collected_at column unless it opts
-- out (50_guarded.sql).
-- ---------------------------------------------------------------------

CREATE TABLE collection_stamp_log (
	relid		regclass NOT NULL,
	tag			text NOT NULL,
	collected_at timestamptz NOT NULL,
	subjects	text[] NOT NULL
);
DO $$
BEGIN
	ALTER TABLE collection_stamp_log ALTER COLUMN subjects SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported THEN
	NULL;		-- a server built without lz4: the default (pglz)
END
$$;
REVOKE ALL ON collection_stamp_log FROM PUBLIC;
GRANT SELECT ON collection_stamp_log TO profile_guard_admin;
SELECT pg_catalog.pg_extension_config_dump('collection_stamp_log', '');
ALTER TABLE guarded_table ALTER COLUMN stamp_collection SET DEFAULT true;

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
CREATE OR REPLACE FUNCTION _forget_subject(p_subject text)
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

CREATE OR REPLACE FUNCTION protect(tbl regclass, subject_column name, collected_at_column name DEFAULT NULL,
						tag_column name DEFAULT NULL, value_column name DEFAULT NULL,
						on_erase text DEFAULT 'delete', anonymise_columns name[] DEFAULT '{}',
						keep_columns name[] DEFAULT '{}', stamp_collection boolean DEFAULT true)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, profile_guard, pg_temp
AS $$
DECLARE
	subject_type	oid;
	rel			record;
	a			pg_attribute;
BEGIN
	IF protect.tbl IS NULL OR protect.subject_column IS NULL OR protect.on_erase IS NULL THEN
		RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed',
			MESSAGE = 'table, subject column and on_erase must not be null',
			HINT = 'Call profile_guard.protect(''table'', ''subject_column'').';
	END IF;
	IF protect.stamp_collection IS NULL THEN
		RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed',
			MESSAGE = 'stamp_collection must not be null',
			HINT = 'Pass stamp_collection => true (the default) or false.';
	END IF;
	PERFORM _check_table_owner(protect.tbl);
	SELECT c.relkind, c.relpersistence, n.nspname INTO rel
	FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
	WHERE c.oid = protect.tbl;
	IF rel.relkind NOT IN ('r', 'p') THEN
		RAISE EXCEPTION USING ERRCODE = 'wrong_object_type',
			MESSAGE = 'only ordinary and partitioned tables can be protected',
			DETAIL = format('Relation %s is not a table.', protect.tbl),
			HINT = 'Protect the table the view or foreign table reads from.';
	END IF;
	IF rel.nspname IN ('profile_guard', 'pg_catalog', 'information_schema') THEN
		RAISE EXCEPTION USING ERRCODE = 'wrong_object_type',
			MESSAGE = 'catalog tables cannot be protected',
			DETAIL = format('Table %s is in schema %s.', protect.tbl, rel.nspname),
			HINT = 'Protect a table of an application schema.';
	END IF;
	IF rel.relpersistence = 't' THEN
		RAISE EXCEPTION USING ERRCODE = 'wrong_object_type',
			MESSAGE = 'temporary tables cannot be protected',
			DETAIL = format('Table %s is a temporary table.', protect.tbl),
			HINT = 'Protect a permanent table.';
	END IF;
	IF EXISTS (SELECT 1 FROM guarded_table g WHERE g.relid = protect.tbl) THEN
		RAISE EXCEPTION USING ERRCODE = 'duplicate_object',
			MESSAGE = 'table is already protected',
			DETAIL = format('Table %s is already a guarded table.', protect.tbl),
			HINT = format('Call profile_guard.unprotect(%L) first to protect it differently.', protect.tbl::text);
	END IF;
	IF _guarded_root(protect.tbl) IS NOT NULL THEN
		RAISE EXCEPTION USING ERRCODE = 'object_not_in_prerequisite_state',
			MESSAGE = 'table is guarded through its parent',
			DETAIL = format('Table %s is a partition or inheritance child of guarded table %s, and is guarded as that table is.',
							protect.tbl, _guarded_root(protect.tbl)),
			HINT = format('Classify its columns on %s; a partition detached or a child no longer inheriting becomes a guarded table of its own.',
						  _guarded_root(protect.tbl));
	END IF;
	IF EXISTS (SELECT 1 FROM pg_inherits i WHERE i.inhrelid = protect.tbl) THEN
		RAISE EXCEPTION USING ERRCODE = 'object_not_in_prerequisite_state',
			MESSAGE = 'a table under a table that is not guarded cannot be protected',
			DETAIL = format('Table %s is a partition or inheritance child of %s; read through that table, its tags would not be gated.',
							protect.tbl, (SELECT string_agg(i.inhparent::regclass::text, ', ' ORDER BY i.inhseqno)
									FROM pg_inherits i WHERE i.inhrelid = protect.tbl)),
			HINT = 'Protect the table at the top of the tree: its partitions and inheritance children are guarded as it is.';
	END IF;
	IF protect.on_erase NOT IN ('delete', 'anonymise') THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = 'invalid on_erase',
			DETAIL = format('on_erase of table %s must be delete or anonymise.', protect.tbl),
			HINT = 'Pass on_erase => ''delete'' or on_erase => ''anonymise''.';
	END IF;

	a := _get_column(protect.tbl, protect.subject_column, 'subject column');
	-- subjects are compared as text: no cast of the owner's may run
	PERFORM _check_guarded(protect.tbl, protect.subject_column, NULL, NULL, false);
	-- ... and every path must name a subject by the same text, whatever the
	-- session's settings: not character(n) (its cast to text drops the
	-- padding its output keeps), nor dates, times or floats (their text
	-- follows DateStyle, TimeZone, extra_float_digits)
	subject_type := a.atttypid;
	WHILE (SELECT t.typtype FROM pg_type t WHERE t.oid = subject_type) = 'd' LOOP
		SELECT t.typbasetype INTO subject_type FROM pg_type t WHERE t.oid = subject_type;
	END LOOP;
	IF subject_type NOT IN ('int2'::regtype, 'int4'::regtype, 'int8'::regtype,
			'numeric'::regtype, 'text'::regtype, 'varchar'::regtype, 'uuid'::regtype) THEN
		RAISE EXCEPTION USING ERRCODE = 'datatype_mismatch',
			MESSAGE = 'subject column must be an integer, numeric, text, varchar or uuid column',
			DETAIL = format('Column "%s" of table %s is of type %s, whose text form is not the same on every path (padding, or session settings).',
							protect.subject_column, protect.tbl, format_type(a.atttypid, a.atttypmod)),
			HINT = format('Change its type first, e.g. ALTER TABLE %s ALTER COLUMN %I TYPE text.',
						  protect.tbl, protect.subject_column);
	END IF;
	IF protect.collected_at_column IS NOT NULL THEN
		a := _get_column(protect.tbl, protect.collected_at_column, 'collected_at column');
		IF a.atttypid NOT IN ('date'::regtype, 'timestamp'::regtype, 'timestamptz'::regtype) THEN
			RAISE EXCEPTION USING ERRCODE = 'datatype_mismatch',
				MESSAGE = 'collected_at column must be a date or timestamp',
				DETAIL = format('Column "%s" of table %s is of type %s.', protect.collected_at_column, protect.tbl,
								format_type(a.atttypid, a.atttypmod)),
				HINT = 'Pass a date, timestamp or timestamptz column as collected_at_column.';
		END IF;
	END IF;
	IF (protect.tag_column IS NULL) <> (protect.value_column IS NULL) THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = 'long shape needs both tag_column and value_column',
			DETAIL = format('Only one of tag_column and value_column was given for table %s.', protect.tbl),
			HINT = 'Pass both for a long-shape table (one row per subject and tag), or neither for a wide one.';
	END IF;
	IF protect.tag_column IS NOT NULL THEN
		a := _get_column(protect.tbl, protect.tag_column, 'tag column');
		IF a.atttypid NOT IN ('text'::regtype, 'varchar'::regtype) THEN
			RAISE EXCEPTION USING ERRCODE = 'datatype_mismatch',
				MESSAGE = 'tag column must be of type text or varchar',
				DETAIL = format('Column "%s" of table %s is of type %s.', protect.tag_column, protect.tbl,
								format_type(a.atttypid, a.atttypmod)),
				HINT = 'Pass a text column holding tag names as tag_column.';
		END IF;
		PERFORM _get_column(protect.tbl, protect.value_column, 'value column');
	END IF;
	-- anonymisation only where it holds (rule 12)
	IF protect.on_erase = 'delete'
	   AND (cardinality(protect.anonymise_columns) > 0 OR cardinality(protect.keep_columns) > 0) THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = 'anonymise_columns and keep_columns are for on_erase anonymise',
			DETAIL = format('Table %s deletes its rows at erasure; nothing of them is kept.', protect.tbl),
			HINT = 'Omit them, or pass on_erase => ''anonymise''.';
	END IF;
	IF protect.on_erase = 'anonymise' THEN
		PERFORM _check_anonymise_lists(protect.tbl,
			ROW(protect.tbl, protect.subject_column, protect.collected_at_column, protect.tag_column,
				protect.value_column, protect.on_erase, '{}', now(), '{}',
				protect.stamp_collection AND protect.collected_at_column IS NULL)::guarded_table,
			protect.anonymise_columns, protect.keep_columns);
		IF EXISTS (SELECT 1 FROM pg_attribute x
				   WHERE x.attrelid = protect.tbl AND x.attnum > 0 AND NOT x.attisdropped
					 AND x.attname NOT IN (protect.subject_column, coalesce(protect.collected_at_column, ''),
										   coalesce(protect.tag_column, ''), coalesce(protect.value_column, ''))
					 AND x.attname <> ALL (protect.anonymise_columns || protect.keep_columns)) THEN
			RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
				MESSAGE = 'anonymisation cannot be guaranteed for this table',
				DETAIL = format('Columns %s of table %s are declared neither identifying nor not identifying: anonymised rows could still identify their subject.',
								(SELECT string_agg(format('"%s"', x.attname), ', ' ORDER BY x.attnum)
								 FROM pg_attribute x
								 WHERE x.attrelid = protect.tbl AND x.attnum > 0 AND NOT x.attisdropped
								   AND x.attname NOT IN (protect.subject_column, coalesce(protect.collected_at_column, ''),
														 coalesce(protect.tag_column, ''), coalesce(protect.value_column, ''))
								   AND x.attname <> ALL (protect.anonymise_columns || protect.keep_columns)),
								protect.tbl),
				HINT = 'Pass anonymise_columns => ARRAY[...] (identifying, set to NULL) and keep_columns => ARRAY[...] (not identifying; the tag columns to classify too), or on_erase => ''delete''.';
		END IF;
	END IF;
	IF cardinality(ARRAY(SELECT DISTINCT c
						 FROM unnest(ARRAY[protect.subject_column, protect.collected_at_column,
										   protect.tag_column, protect.value_column]) c
						 WHERE c IS NOT NULL))
	   <> cardinality(array_remove(ARRAY[protect.subject_column, protect.collected_at_column,
										 protect.tag_column, protect.value_column], NULL)) THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = 'protect needs distinct columns',
			DETAIL = format('Table %s names the same column in two roles.', protect.tbl),
			HINT = 'Pass different columns for subject, collected_at, tag and value.';
	END IF;

	-- long shape: nothing may show or betray the values of the value column
	IF protect.value_column IS NOT NULL THEN
		PERFORM _refuse_tag_leaks(pt.relid, protect.value_column, NULL, false)
		FROM _relations(protect.tbl) pt(relid);
	END IF;

	INSERT INTO guarded_table (relid, subject_column, collected_at_column, tag_column,
							   value_column, on_erase, anonymise_columns, keep_columns, stamp_collection)
	VALUES (protect.tbl, protect.subject_column, protect.collected_at_column, protect.tag_column,
			protect.value_column, protect.on_erase, coalesce(protect.anonymise_columns, '{}'),
			coalesce(protect.keep_columns, '{}'),
			-- a collected_at column gives the table its retention: no stamps
			protect.stamp_collection AND protect.collected_at_column IS NULL);

	-- long shape: the value column holds tag values
	IF protect.value_column IS NOT NULL THEN
		PERFORM _set_statistics(protect.tbl, protect.value_column, 0);
	END IF;
	-- long shape with collection stamps: the rows it holds are collected
	-- now, for retention (collection_stamp)
	PERFORM _stamp_existing(protect.tbl, NULL);

	-- the write path (src/collect.c): consent to collect, the prohibited
	-- lexicon, encryption, on the table and on every inheritance child
	-- (partitions are given the trigger by PostgreSQL)
	PERFORM _install_collect_trigger(pt.relid) FROM _relations(protect.tbl) pt(relid)
	WHERE pt.relid = protect.tbl
	   OR NOT (SELECT c.relispartition FROM pg_class c WHERE c.oid = pt.relid);
	-- row-level security, so that no error quotes a value (above)
	PERFORM _sync_row_security(pt.relid, true, false) FROM _relations(protect.tbl) pt(relid);

	PERFORM _policy_changed(protect.tbl);
END
$$;
REVOKE ALL ON FUNCTION protect(regclass, name, name, name, name, text, name[], name[], boolean) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION protect(regclass, name, name, name, name, text, name[], name[], boolean) TO profile_guard_admin;

CREATE OR REPLACE FUNCTION declassify(tbl regclass, column_name name)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, profile_guard, pg_temp
AS $$
DECLARE
	g		guarded_table := _get_guarded(declassify.tbl, true);
	tag_name	text;			-- the tag it was classified as
BEGIN
	PERFORM _check_table_owner(g.relid);
	IF declassify.column_name IS NULL THEN
		RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed',
			MESSAGE = 'column must not be null',
			HINT = format('Call profile_guard.declassify(%L, ''column'').', g.relid::text);
	END IF;
	PERFORM 1 FROM classified_column cc WHERE cc.relid = g.relid AND cc.column_name = declassify.column_name;
	IF NOT FOUND THEN
		RAISE EXCEPTION USING ERRCODE = 'undefined_object',
			MESSAGE = 'column is not classified',
			DETAIL = format('Column "%s" of table %s is not classified.', declassify.column_name, g.relid),
			HINT = 'See profile_guard.classified_column for the classified columns.';
	END IF;

	SELECT cc.tag INTO tag_name FROM classified_column cc
	WHERE cc.relid = g.relid AND cc.column_name = declassify.column_name;
	DELETE FROM classified_column cc WHERE cc.relid = g.relid AND cc.column_name = declassify.column_name;
	-- the tag's stamps go with its last column in the table, merged or not
	DELETE FROM collection_stamp s
	WHERE s.relid = g.relid AND s.tag = tag_name
	  AND NOT EXISTS (SELECT 1 FROM classified_column cc WHERE cc.relid = g.relid AND cc.tag = tag_name);
	DELETE FROM collection_stamp_log l
	WHERE l.relid = g.relid AND l.tag = tag_name
	  AND NOT EXISTS (SELECT 1 FROM classified_column cc WHERE cc.relid = g.relid AND cc.tag = tag_name);
	-- a generated column stays classified while its source is
	PERFORM _check_guarded_relation(pt.relid, false, false) FROM _relations(g.relid) pt(relid);
	PERFORM _set_statistics(g.relid, declassify.column_name, -1);
	PERFORM _policy_changed(g.relid);
	-- the column is plain data now: decrypt what was encrypted
	PERFORM _convert_column(g.relid, g.subject_column, declassify.column_name, tag_name, NULL, 'decrypt');
END
$$;

CREATE OR REPLACE FUNCTION unprotect(tbl regclass)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, profile_guard, pg_temp
AS $$
DECLARE
	g		profile_guard.guarded_table := _get_guarded(tbl, true);
	col		name;
	rel		regclass;
	all_cols name[];
	sensitive_cols name[];
	sensitive_tags text[];
BEGIN
	PERFORM _check_table_owner(g.relid);
	-- the catalog rows go first, so the trigger lets the decrypted values pass
	SELECT coalesce(array_agg(cc.column_name), '{}'), coalesce(array_agg(cc.tag), '{}')
	INTO sensitive_cols, sensitive_tags
	FROM classified_column cc JOIN tag t ON t.tag = cc.tag
	WHERE cc.relid = g.relid AND t.sensitivity = 'sensitive';
	SELECT coalesce(array_agg(cc.column_name ORDER BY cc.column_name), '{}') INTO all_cols
	FROM classified_column cc WHERE cc.relid = g.relid;
	DELETE FROM classified_column cc WHERE cc.relid = g.relid;
	DELETE FROM collection_stamp s WHERE s.relid = g.relid;
	DELETE FROM collection_stamp_log l WHERE l.relid = g.relid;
	DELETE FROM guarded_table x WHERE x.relid = g.relid;
	PERFORM _policy_changed(g.relid);
	FOREACH col IN ARRAY all_cols LOOP
		PERFORM _set_statistics(g.relid, col, -1);
	END LOOP;
	IF g.value_column IS NOT NULL THEN
		PERFORM _set_statistics(g.relid, g.value_column, -1);
	END IF;
	PERFORM _drop_row_security(pt.relid) FROM _relations(g.relid) pt(relid);
	-- the trigger of the table (and so of its partitions) and of every
	-- inheritance child below it
	FOR rel IN
		SELECT pt.relid FROM _relations(g.relid) pt(relid) JOIN pg_class c ON c.oid = pt.relid
		WHERE pt.relid = g.relid OR NOT c.relispartition
		ORDER BY 1
	LOOP
		EXECUTE format('DROP TRIGGER IF EXISTS profile_guard_collect ON %s', rel);
	END LOOP;
	FOR i IN 1 .. cardinality(sensitive_cols) LOOP
		PERFORM _convert_column(g.relid, g.subject_column, sensitive_cols[i], sensitive_tags[i], NULL, 'decrypt');
	END LOOP;
	IF g.tag_column IS NOT NULL THEN
		PERFORM _convert_column(g.relid, g.subject_column, g.value_column, NULL, g.tag_column, 'decrypt');
	END IF;
END
$$;

CREATE OR REPLACE FUNCTION set_collection_stamps(tbl regclass, enabled boolean)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, profile_guard, pg_temp
AS $$
DECLARE
	g		guarded_table;
BEGIN
	IF set_collection_stamps.tbl IS NULL OR set_collection_stamps.enabled IS NULL THEN
		RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed',
			MESSAGE = 'table and enabled must not be null',
			HINT = 'Call profile_guard.set_collection_stamps(''table'', true) or (''table'', false).';
	END IF;
	g := _get_guarded(set_collection_stamps.tbl, true);
	PERFORM _check_table_owner(g.relid);
	IF g.collected_at_column IS NOT NULL THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = 'a table with a collected_at column takes no collection stamps',
			DETAIL = format('Table %s is protected with collected_at column "%s".', g.relid, g.collected_at_column),
			HINT = 'Nothing to switch: the collected_at column already gives the table its retention.';
	END IF;
	IF g.stamp_collection = set_collection_stamps.enabled THEN
		RETURN;
	END IF;
	UPDATE guarded_table x SET stamp_collection = set_collection_stamps.enabled WHERE x.relid = g.relid;
	IF set_collection_stamps.enabled THEN
		PERFORM _stamp_existing(g.relid, NULL);
	ELSE
		DELETE FROM collection_stamp s WHERE s.relid = g.relid;
		DELETE FROM collection_stamp_log l WHERE l.relid = g.relid;
	END IF;
	PERFORM _policy_changed(g.relid);
END
$$;
REVOKE ALL ON FUNCTION set_collection_stamps(regclass, boolean) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION set_collection_stamps(regclass, boolean) TO profile_guard_admin;

CREATE OR REPLACE FUNCTION _before_attach(child regclass, parent regclass, partition boolean)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, profile_guard, pg_temp
AS $$
DECLARE
	root	regclass := _guarded_root(parent);
	own		guarded_table;
	g		guarded_table;
	below	regclass;
BEGIN
	PERFORM _check_tree_change('_before_attach', child);
	SELECT d.relid::regclass INTO below
	FROM (WITH RECURSIVE down(relid) AS (
			  SELECT child::oid
			  UNION
			  SELECT i.inhrelid FROM down d JOIN pg_inherits i ON i.inhparent = d.relid)
		  SELECT relid FROM down) d
	WHERE EXISTS (SELECT 1 FROM guarded_table x WHERE x.relid = d.relid)
	ORDER BY d.relid = child DESC, 1 LIMIT 1;
	-- nothing below, or child above parent (PostgreSQL refuses the cycle)
	IF below IS NULL OR root = child THEN
		RETURN;
	END IF;
	IF root IS NULL THEN
		RAISE EXCEPTION USING ERRCODE = 'object_not_in_prerequisite_state',
			MESSAGE = 'a guarded table cannot go under a table that is not guarded',
			DETAIL = format('Table %s is guarded; read through %s, which is not, its tags would not be gated.',
							below, parent),
			HINT = format('Protect %s and classify it as %s is first, or unprotect %s.', parent, below, below);
	END IF;
	SELECT * INTO own FROM guarded_table x WHERE x.relid = below;
	SELECT * INTO g FROM guarded_table x WHERE x.relid = root;
	IF below <> child
	   OR (own.subject_column, own.collected_at_column, own.tag_column, own.value_column,
		   own.on_erase, own.anonymise_columns, own.keep_columns)
		  IS DISTINCT FROM (g.subject_column, g.collected_at_column, g.tag_column, g.value_column,
							g.on_erase, g.anonymise_columns, g.keep_columns)
	   OR EXISTS ((SELECT cc.column_name, cc.tag FROM classified_column cc WHERE cc.relid = child
				   EXCEPT SELECT cc.column_name, cc.tag FROM classified_column cc WHERE cc.relid = root)
				  UNION ALL
				  (SELECT cc.column_name, cc.tag FROM classified_column cc WHERE cc.relid = root
				   EXCEPT SELECT cc.column_name, cc.tag FROM classified_column cc WHERE cc.relid = child)) THEN
		RAISE EXCEPTION USING ERRCODE = 'object_not_in_prerequisite_state',
			MESSAGE = 'a guarded table cannot go under a table guarded otherwise',
			DETAIL = format('Table %s is guarded in its own right, otherwise than %s: its subject, tag and value columns, its erasure and its classified columns must be those of %s.',
							below, root, root),
			HINT = format('Classify %s as %s is first, or unprotect %s.', below, root, below);
	END IF;
	-- its collection stamps are the tree's now, if the tree takes stamps
	-- (those still in the log first merged)
	PERFORM _merge_collection_stamps();
	INSERT INTO collection_stamp AS s (relid, subject, tag, collected_at)
	SELECT root, c.subject, c.tag, c.collected_at FROM collection_stamp c
	WHERE c.relid = child AND g.stamp_collection
	ON CONFLICT (relid, subject, tag) DO UPDATE SET collected_at = greatest(s.collected_at, excluded.collected_at);
	DELETE FROM collection_stamp c WHERE c.relid = child;
	DELETE FROM guarded_table x WHERE x.relid = child;
	IF partition THEN
		EXECUTE format('DROP TRIGGER IF EXISTS profile_guard_collect ON %s', child);
	END IF;
	PERFORM _policy_changed(child);
END
$$;
REVOKE ALL ON FUNCTION _before_attach(regclass, regclass, boolean) FROM PUBLIC;

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
CREATE OR REPLACE FUNCTION assess()
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

-- The tables protected without a collected_at column before this update
-- take collection stamps, as a table protected now does: what they hold
-- is stamped as collected now, so that retention applies to it from now
-- on (without stamps their rows would never expire).
UPDATE guarded_table g SET stamp_collection = true
WHERE g.collected_at_column IS NULL AND NOT g.stamp_collection;
SELECT _stamp_existing(g.relid, NULL)
FROM guarded_table g JOIN pg_catalog.pg_class c ON c.oid = g.relid
WHERE g.collected_at_column IS NULL
ORDER BY g.relid::pg_catalog.oid;

/*
 * Data keys made in bulk: register_subject() makes a new subject's key
 * (when a master key is configured), so that its first sensitive value
 * finds one.  create_data_keys() makes the missing keys of subjects
 * registered before 1.2, or while no master key was configured, or
 * inserted into profile_guard.subject directly, and returns how many.
 */
CREATE FUNCTION _create_data_keys(subjects text[], when_configured boolean)
RETURNS bigint
AS 'MODULE_PATHNAME', 'profile_guard_create_data_keys'
LANGUAGE C STRICT VOLATILE;
REVOKE ALL ON FUNCTION _create_data_keys(text[], boolean) FROM PUBLIC;

CREATE FUNCTION create_data_keys()
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, profile_guard, pg_temp
AS $$
BEGIN
	RETURN _create_data_keys(ARRAY(SELECT s.subject FROM subject s
								   WHERE NOT EXISTS (SELECT 1 FROM subject_key k
													 WHERE k.subject = s.subject)
								   ORDER BY s.subject), false);
END
$$;
COMMENT ON FUNCTION create_data_keys() IS
	'makes the data key of every registered subject that has none; returns how many were made';
REVOKE ALL ON FUNCTION create_data_keys() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION create_data_keys() TO profile_guard_admin;

/*
 * Unwrapped data keys shared between the backends of a database
 * (profile_guard.shared_key_cache_size).  Any statement that destroys,
 * re-wraps, deletes or truncates keys retires them when it commits, and
 * flushes every backend's cache: this trigger notes it, whoever runs the
 * statement, and fires in every session_replication_role.
 */
CREATE FUNCTION _data_keys_changed()
RETURNS trigger
AS 'MODULE_PATHNAME', 'profile_guard_data_keys_changed'
LANGUAGE C;
REVOKE ALL ON FUNCTION _data_keys_changed() FROM PUBLIC;
CREATE TRIGGER subject_key_changed
	AFTER UPDATE OR DELETE OR TRUNCATE ON subject_key
	FOR EACH STATEMENT EXECUTE FUNCTION _data_keys_changed();
ALTER TABLE subject_key ENABLE ALWAYS TRIGGER subject_key_changed;

-- C: the sets of data keys in shared memory, for the DBA
CREATE FUNCTION shared_data_keys(OUT database oid, OUT keys bigint,
	OUT bytes bigint, OUT copies bigint, OUT complete boolean,
	OUT published_at timestamptz)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'profile_guard_shared_data_keys'
LANGUAGE C STRICT VOLATILE;
COMMENT ON FUNCTION shared_data_keys() IS
	'the sets of unwrapped data keys shared between backends: per database, the keys, bytes, how many times backends took them (read in place), and whether keys were made since';
REVOKE ALL ON FUNCTION shared_data_keys() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION shared_data_keys() TO profile_guard_admin;

-- The wide shape's gates are parallel safe: a parallel worker decides as
-- its leader does, or the leader keeps the plan to itself
-- (src/parallel_gates.c).  The long shape's gates and the whole-row mask
-- stay parallel restricted.
ALTER FUNCTION _row_gate("any", oid) PARALLEL SAFE;
ALTER FUNCTION _purpose_row_gate("any", oid) PARALLEL SAFE;
ALTER FUNCTION _cell_gate("any", integer, anyelement) PARALLEL SAFE;
ALTER FUNCTION _sensitive_cell_gate("any", integer, text, anyelement) PARALLEL SAFE;

-- Statistics for the catalog tables that were never analysed (an
-- installation whose tables have not filled): PostgreSQL plans such a table
-- as if it held hundreds of rows, which put the views over several of them
-- (consent_status) above jit_above_cost, so that each query was
-- JIT-compiled, about 0.15 s.  Tables autovacuum has analysed keep theirs.
DO $$
DECLARE
	t regclass;
BEGIN
	FOR t IN SELECT c.oid FROM pg_class c
			 WHERE c.relnamespace = 'profile_guard'::regnamespace AND c.relkind = 'r'
			   AND c.reltuples < 0
			 ORDER BY c.relname
	LOOP
		EXECUTE format('ANALYZE %s', t);
	END LOOP;
END
$$;
