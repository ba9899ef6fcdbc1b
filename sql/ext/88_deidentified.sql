/*
 * 88_deidentified.sql — de-identified views of guarded tables for model
 * training or sharing (§4 a, §6), and the sources of the data (§6 b–c).
 * docs/accountability.md describes both.
 */

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

-- which sources each purpose's profiles or models were built from
-- (set_purpose_data_sources())
CREATE TABLE purpose_data_source (
	purpose		text NOT NULL REFERENCES purpose ON DELETE CASCADE,
	source		text NOT NULL REFERENCES data_source,
	PRIMARY KEY (purpose, source)
);

-- the de-identified views made by deidentified_view()
CREATE TABLE deidentified_view (
	view_relid	regclass PRIMARY KEY,
	relid		regclass NOT NULL,
	recipient	text NOT NULL REFERENCES recipient,
	created_at	timestamptz NOT NULL DEFAULT now()
);

GRANT SELECT ON data_source, table_data_source, purpose_data_source, deidentified_view
	TO profile_guard_admin, profile_guard_consent;
SELECT pg_catalog.pg_extension_config_dump('data_source', '');
SELECT pg_catalog.pg_extension_config_dump('table_data_source', '');
SELECT pg_catalog.pg_extension_config_dump('purpose_data_source', '');
SELECT pg_catalog.pg_extension_config_dump('deidentified_view', '');

/*
 * define_data_source(source, kind, licence_or_contract, reviewed_at): a
 * source of data (§6 b–c); defining it again updates it.  reviewed_at: the
 * date its licence or contract was last reviewed (NULL: never).
 */
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
CREATE FUNCTION set_data_sources(tbl regclass, sources text[])
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

-- Is a tag of a category that identifies a person directly?  For the
-- long-shape de-identified views, whose readers may not read the catalog.
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

-- C: the keyed pseudonym of a subject for a recipient (src/pseudonym.c).
-- The readers of de-identified views call it, so everyone may; it serves
-- only the roles that may read the subject column of a table one of the
-- recipient's views reads, who read the identifiers there anyway.
CREATE FUNCTION _pseudonym(subject text, recipient text)
RETURNS text
AS 'MODULE_PATHNAME', 'profile_guard_pseudonym'
LANGUAGE C STRICT STABLE;

/*
 * deidentified_view(tbl, view_name, recipient): a view of guarded table tbl
 * for model training or sharing with a recipient (§4 a, §6), created in
 * tbl's schema and owned by tbl's owner.  Its first column,
 * subject_pseudonym, is the subject's keyed pseudonym for that recipient
 * (_pseudonym()); then the tag columns (wide shape) or the tag and value
 * columns (long shape).  Left out: the subject itself, every column that is
 * not a tag, the columns declared identifying, and the tags of identifying
 * categories (contact, device, basic, precise_location, whereabouts).  The
 * view is security_invoker: it reads the guarded table with the reader's
 * rights, through the read gate, so it serves only what the reader's
 * purpose and the subjects' consents allow, as the table itself does.
 */
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
