/*
 * 50_guarded.sql — guarded tables: protect/unprotect a table, classify and
 * declassify its tag columns (README.md, "SQL surface").  The read
 * path finds what is guarded in guarded_table and classified_column; the
 * write path (triggers, in-place encryption) hooks in where marked
 * "WRITE PATH:".
 */

-- A column of a relation, by name: its attribute row, or a 42704 error.
CREATE FUNCTION _get_column(tbl regclass, col name, what text)
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
REVOKE ALL ON FUNCTION _get_column(regclass, name, text) FROM PUBLIC;

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
CREATE FUNCTION _get_guarded(tbl regclass, p_for_update boolean DEFAULT false)
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
REVOKE ALL ON FUNCTION _get_guarded(regclass, boolean) FROM PUBLIC;

/*
 * Protecting, classifying, declassifying, unprotecting and re-encrypting
 * rewrite the table or install or drop its trigger: only its owner may do
 * that (as for ALTER TABLE), whatever policy role the caller holds.  These
 * functions run as the extension owner, so the caller is the role in
 * effect outside them.
 */
CREATE FUNCTION _invoking_role()
RETURNS oid
LANGUAGE C STABLE
AS 'MODULE_PATHNAME', 'profile_guard_invoking_role';
REVOKE ALL ON FUNCTION _invoking_role() FROM PUBLIC;

CREATE FUNCTION _check_table_owner(tbl regclass)
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
REVOKE ALL ON FUNCTION _check_table_owner(regclass) FROM PUBLIC;

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
CREATE FUNCTION _set_statistics(tbl regclass, col name, target integer)
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
REVOKE ALL ON FUNCTION _set_statistics(regclass, name, integer) FROM PUBLIC;

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

/*
 * _anonymisation_undeclared(tbl, rel): the columns of rel (tbl, or one of
 * its partitions or inheritance children) that guarded table tbl declares
 * nothing of for anonymisation: not its subject, collected-at, tag or value
 * column, not classified, not identifying (anonymise_columns) nor declared
 * not identifying (keep_columns).  In column order.  Anonymised rows could
 * still identify their subject through them: the sweep sets them to NULL
 * as identifying, and assess() reports them (§10 (anonymisation)).
 */
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

/*
 * _check_anonymise_lists(tbl, g, anonymise_columns, keep_columns): the
 * columns declared identifying and not identifying exist, are none of the
 * subject, collected-at, tag and value columns, do not overlap, and the
 * identifying ones can be set to NULL.  g: the table's guarded_table row
 * (or what protect() will insert).
 */
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

/*
 * _stamp_existing(tbl, col): the values a guarded table with collection
 * stamps (stamp_collection, no collected_at column) holds when its stamps
 * are switched on or it is protected (long shape, col NULL: every tag row;
 * wide shape, col NULL: every classified column) or when col is classified
 * (wide shape) are stamped as collected now (collection_stamp,
 * docs/erasure.md), so that retention applies to them from now on; a pair
 * stamped already keeps its stamp.  A table without stamps: nothing.  The
 * read (the table and its partitions and children) runs no code of the
 * owner's: the subject and tag columns are of built-in types (protect()
 * checked them).
 */
CREATE FUNCTION _stamp_existing(tbl regclass, col name)
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

/*
 * protect(tbl, subject_column, collected_at_column, tag_column,
 *         value_column, on_erase, anonymise_columns, keep_columns,
 *         stamp_collection): put a table under policy.  Wide shape
 * (tag_column NULL): tag columns are classified one by one; long shape:
 * one row per subject and tag, the tag named in tag_column.
 * on_erase => 'anonymise' is accepted only when every other column is
 * declared: identifying (anonymise_columns, set to NULL) or not
 * identifying (keep_columns, kept; the wide shape's tag columns, to be
 * classified, are declared here and kept only as their tag allows).
 * stamp_collection: a table without a collected_at column has its
 * collections stamped for retention (collection_stamp; on by default,
 * false opts out; set_collection_stamps() switches it later); a table with
 * one takes no stamps, whatever stamp_collection says.
 */
CREATE FUNCTION protect(tbl regclass, subject_column name, collected_at_column name DEFAULT NULL,
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
 * classify(tbl, column_name, tag): bind a column of a wide-shape guarded
 * table to a tag.
 */
CREATE FUNCTION classify(tbl regclass, column_name name, tag text)
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

/*
 * declassify(tbl, column_name): the column is no longer a tag column.
 */
CREATE FUNCTION declassify(tbl regclass, column_name name)
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
REVOKE ALL ON FUNCTION declassify(regclass, name) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION declassify(regclass, name) TO profile_guard_admin;

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
 * unprotect(tbl): the table leaves policy, with all its classifications,
 * and so do its partitions and inheritance children (they were guarded as
 * it is).  A child cannot be unprotected apart (_get_guarded says so).
 */
CREATE FUNCTION unprotect(tbl regclass)
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
REVOKE ALL ON FUNCTION unprotect(regclass) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION unprotect(regclass) TO profile_guard_admin;

/*
 * set_collection_stamps(tbl, enabled): switch the collection stamps of a
 * guarded table without a collected_at column on or off (docs/erasure.md,
 * "Collection stamps").  On: what the table holds is stamped as collected
 * now, and its writes are stamped from now on (their cost); off: its
 * stamps are deleted, and its rows have no age-based retention.  Switching
 * to the state the table is in changes nothing.  A table with a
 * collected_at column takes no stamps (22023, either way).
 */
CREATE FUNCTION set_collection_stamps(tbl regclass, enabled boolean)
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

CREATE FUNCTION _before_attach(child regclass, parent regclass, partition boolean)
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

/*
 * _adopt_detached(child, root): after child, guarded as root is, stopped
 * being a partition or an inheritance child (DETACH PARTITION, NO
 * INHERIT).  Unless it is still under a guarded table, it becomes a
 * guarded table in its own right, guarded as root is: the same subject,
 * tag and value columns, erasure and classified columns, its own
 * collection trigger (PostgreSQL drops the one a partition had from its
 * parent) and row-level security.  Its values, encrypted for their
 * subject and tag, stay as they are.
 */
CREATE FUNCTION _adopt_detached(child regclass, root regclass)
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

/*
 * _guard_ddl(): event trigger at the end of DDL that could add one of the
 * above to a guarded table, or change its row-level security: checks each
 * relation the command touched, and the tables its foreign keys reference.
 * Refusing raises, which rolls the command back.
 */
-- Does this database guard any relation?  Answered from the backend's map
-- of guarded relations (src/catalog.c), which holds no lock on the catalog:
-- DDL on other tables is not slowed down or seen to lock anything.
CREATE FUNCTION _guards_any()
RETURNS boolean
AS 'MODULE_PATHNAME', 'profile_guard_guards_any'
LANGUAGE C STABLE;
REVOKE ALL ON FUNCTION _guards_any() FROM PUBLIC;

-- A WARNING when rel (a guarded table anonymised at erasure, or under one)
-- has columns declared nothing of for anonymisation.
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

CREATE EVENT TRIGGER profile_guard_ddl ON ddl_command_end
	WHEN TAG IN ('ALTER TABLE', 'CREATE TABLE', 'CREATE TABLE AS', 'CREATE INDEX', 'ALTER INDEX',
				 'CREATE STATISTICS', 'ALTER STATISTICS',
				 'CREATE POLICY', 'ALTER POLICY', 'DROP POLICY', 'CREATE VIEW', 'ALTER VIEW')
	EXECUTE FUNCTION _guard_ddl();
