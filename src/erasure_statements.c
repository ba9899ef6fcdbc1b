/*-------------------------------------------------------------------------
 *
 * erasure_statements.c
 *	  Owns what a sweep (erasure.c) walks and the statements it runs there:
 *	  the guarded tables and the partitions and children below them, read
 *	  from our catalog when a sweep begins, and for each the SQL text of its
 *	  batches -- the read that finds and locks the due rows of a TID range
 *	  (in general, or per tag for plain retention, where the rows' own
 *	  columns alone decide also without the lock, with the owner's DELETE
 *	  that tests them again), the statement that bounds a batch to a number
 *	  of due rows, and the writes that delete or anonymise them as the
 *	  table's owner.  Also the check, before every batch, that a table's
 *	  reads run no code of its owner.
 *
 *	  What is due is written into the statements: the sweep's retention
 *	  cutoffs as literals, its requests and holds as look-ups in the work
 *	  tables _erasure_due and _erasure_keep (sql/ext/80_erasure.sql).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "utils/array.h"
#include "utils/builtins.h"

#include "catalog.h"
#include "sweep.h"
#include "erasure_statements.h"
#include "owner_context.h"

/* one table as read from the catalog, to build its statements from */
typedef struct TableDef
{
	Oid			relid;
	char		relkind;
	char	   *qualname;		/* quoted, for SQL */
	char	   *relation;		/* for the log */
	char	   *subject_col;	/* quoted */
	Oid			subject_type;
	bool		subject_notnull;
	char	   *collected_col;	/* quoted, or NULL */
	Oid			root;			/* the guarded table it is guarded as */
	bool		stamped;		/* collection stamps (stamp_collection) */
	char	   *tag_col;		/* quoted, or NULL (wide) */
	char	   *value_col;
	bool		anonymise;
	int			nanon;
	char	  **anon_cols;		/* quoted */
	int			ncols;			/* wide: classified columns */
	char	  **cols;			/* quoted */
	char	  **tags;			/* tag names */
	bool	   *sensitive;
	char	   *generalise;		/* wide, anonymised: per tag column, what stays
								 * (PFG_KEEP_...) */
	BlockNumber nblocks;
	double		tuples_per_block;
	char	   *subject_name;	/* unquoted, for the checks */
	char	   *collected_name;
	char	   *tag_name;
} TableDef;

/*
 * What anonymisation keeps of a tag column (docs/erasure.md): nothing (a
 * tag of an identifying category), an integer to a multiple of ten, another
 * number to one decimal, a date or time to its month, or the value.
 */
#define PFG_KEEP_NOTHING	'n'
#define PFG_KEEP_TENS		'i'
#define PFG_KEEP_ONE_DECIMAL 'f'
#define PFG_KEEP_MONTH		'd'
#define PFG_KEEP_VALUE		'k'

/*
 * The categories whose tags identify a person directly (rule 12): removed
 * by anonymisation, left out of de-identified views.  An SQL list.
 */
#define PFG_IDENTIFYING_CATEGORIES \
	"('contact', 'device', 'basic', 'precise_location', 'whereabouts')"

/*
 * When the tag of a row was collected, as SQL, or NULL if the table cannot
 * say: its collected-at column, or for a table without one that has
 * collection stamps switched on the stamp of the row's subject and tag
 * (profile_guard.collection_stamp, by primary key; NULL, so never due,
 * when there is none).  A table with neither has no age-based retention.
 * A pair that the stamp log names was collected again since the sweep
 * merged the log (a write committed meanwhile): NULL too, never due this
 * time; the next sweep merges its new stamp.  The log's pairs are read
 * once per statement (an uncorrelated IN, hashed).
 */
static char *
collected_sql(TableDef *t, const char *subj, const char *tag)
{
	if (t->collected_col != NULL)
		return psprintf("t.%s", t->collected_col);
	if (!t->stamped)
		return NULL;
	return psprintf("CASE WHEN (%s, %s) IN (SELECT x.s, l.tag"
					"   FROM profile_guard.collection_stamp_log l"
					"   CROSS JOIN LATERAL pg_catalog.unnest(l.subjects) AS x(s)"
					"   WHERE l.relid OPERATOR(pg_catalog.=) %u::pg_catalog.regclass)"
					" THEN NULL ELSE"
					" (SELECT s.collected_at FROM profile_guard.collection_stamp s"
					" WHERE s.relid OPERATOR(pg_catalog.=) %u::pg_catalog.regclass"
					" AND s.subject OPERATOR(pg_catalog.=) %s AND s.tag OPERATOR(pg_catalog.=) %s) END",
					subj, tag, t->root, t->root, subj, tag);
}

/* the retention cutoff of a tag, as an SQL literal, or NULL */
static const char *
cutoff_of(Sweep *sweep, const char *tag)
{
	ListCell   *lt;
	ListCell   *lv;

	forboth(lt, sweep->cutoff_tags, lv, sweep->cutoff_values)
	{
		if (strcmp((char *) lfirst(lt), tag) == 0)
			return (const char *) lfirst(lv);
	}
	return NULL;
}

/*
 * What _erasure_due says for a subject and tag, or NULL.  The hashed
 * IN (built once per statement) keeps the two look-ups by primary key for
 * the few subjects that are in the table; a request ('*') wins.
 */
static char *
due_lookup_sql(const char *subj, const char *tag)
{
	return psprintf("CASE WHEN %s IN (SELECT d.subject FROM profile_guard._erasure_due d)"
					" THEN coalesce((SELECT d.reason FROM profile_guard._erasure_due d"
					" WHERE d.subject = %s AND d.tag = '*'),"
					" (SELECT d.reason FROM profile_guard._erasure_due d"
					" WHERE d.subject = %s AND d.tag = %s)) END",
					subj, subj, subj, tag);
}

/*
 * The subject (SQL text) is under no legal hold at the sweep's "now" ($3):
 * a held subject is not a candidate for the service end either (its other
 * reasons go through _erasure_due and _erasure_keep, which leave it out).
 */
static void
append_not_held(StringInfo b, const char *subj)
{
	appendStringInfo(b,
					 "NOT EXISTS (SELECT 1 FROM profile_guard.legal_hold h"
					 " WHERE h.subject OPERATOR(pg_catalog.=) %s AND h.released_at IS NULL"
					 " AND (h.until IS NULL OR h.until OPERATOR(pg_catalog.>) $3))",
					 subj);
}

/*
 * The reason the tag of a row is due, or NULL.  subj: the row's subject as
 * text; tag: SQL for the tag's name; tagname: the name when it is fixed
 * (wide shape), NULL when the row names it (long shape); coll: the
 * collected-at column or NULL.  Retention cutoffs are constants of this
 * sweep, so they are written in as literals.
 */
static void
append_reason(StringInfo b, Sweep *sweep, const char *subj, const char *tag,
			  const char *tagname, const char *coll)
{
	bool		due = sweep->have_due;
	bool		ret = coll != NULL && sweep->cutoff_tags != NIL &&
		(tagname == NULL || cutoff_of(sweep, tagname) != NULL);

	if (sweep->service_ended)
	{
		appendStringInfoString(b, "CASE WHEN ");
		append_not_held(b, subj);
		appendStringInfoString(b, " THEN 'service_end'::text END");
		return;
	}
	if (!due && !ret)
	{
		appendStringInfoString(b, "NULL::text");
		return;
	}
	if (due && ret)
		appendStringInfoString(b, "coalesce(");
	if (due)
		appendStringInfoString(b, due_lookup_sql(subj, tag));
	if (due && ret)
		appendStringInfoString(b, ", ");
	if (ret)
	{
		appendStringInfo(b, "CASE WHEN %s <= ", coll);
		if (tagname != NULL)
			appendStringInfo(b, "%s::timestamptz", cutoff_of(sweep, tagname));
		else
		{
			ListCell   *lt;
			ListCell   *lv;

			appendStringInfo(b, "CASE %s", tag);
			forboth(lt, sweep->cutoff_tags, lv, sweep->cutoff_values)
				appendStringInfo(b, " WHEN %s THEN %s::timestamptz",
								 quote_literal_cstr((char *) lfirst(lt)), (char *) lfirst(lv));
			appendStringInfoString(b, " END");
		}
		if (sweep->have_keep)
			appendStringInfo(b,
							 " AND NOT EXISTS (SELECT 1 FROM profile_guard._erasure_keep k"
							 " WHERE k.subject = %s AND k.tag = %s"
							 " AND (k.keep_for IS NULL OR %s > $3 - k.keep_for))",
							 subj, tag, coll);
		appendStringInfoString(b, " THEN 'retention'::text END");
	}
	if (due && ret)
		appendStringInfoChar(b, ')');
}

static bool
is_integer_type(Oid typid)
{
	return typid == INT2OID || typid == INT4OID || typid == INT8OID;
}

static bool
is_text_type(Oid typid)
{
	return typid == TEXTOID || typid == VARCHAROID || typid == BPCHAROID;
}

/*
 * Retention in a long table whose rows are deleted: the plain per-tag
 * DELETEs do it (for the subjects not in _erasure_due, when it has any).
 */
static bool
fast_path(Sweep *sweep, TableDef *t)
{
	return !t->anonymise && t->tag_col != NULL && t->collected_col != NULL &&
		!sweep->service_ended && sweep->cutoff_tags != NIL;
}

/* the reason expression of tag column i (long shape: i = 0, the row's tag) */
static char *
reason_sql(Sweep *sweep, TableDef *t, int i)
{
	StringInfoData b;
	char	   *subj = psprintf("t.%s::text", t->subject_col);

	initStringInfo(&b);
	if (t->tag_col == NULL)
	{
		char	   *tag = quote_literal_cstr(t->tags[i]);

		appendStringInfo(&b, "CASE WHEN t.%s IS NOT NULL THEN ", t->cols[i]);
		append_reason(&b, sweep, subj, tag, t->tags[i], collected_sql(t, subj, tag));
		appendStringInfoString(&b, " END");
	}
	else
	{
		char	   *tag = psprintf("t.%s::text", t->tag_col);

		append_reason(&b, sweep, subj, tag, NULL, collected_sql(t, subj, tag));
	}
	return b.data;
}

/* the row belongs to someone */
static void
append_owned(StringInfo b, TableDef *t)
{
	appendStringInfo(b, "t.%s IS NOT NULL", t->subject_col);
	/* anonymised rows belong to nobody: never again */
	if (is_integer_type(t->subject_type))
		appendStringInfo(b, " AND t.%s >= 0", t->subject_col);
	else if (is_text_type(t->subject_type))
		appendStringInfo(b, " AND NOT starts_with(t.%s::text, 'anonymous:')", t->subject_col);
}

/* rows of the batch's range that belong to someone */
static void
append_range(StringInfo b, TableDef *t)
{
	appendStringInfoString(b, "t.ctid > $1 AND t.ctid <= $2 AND ");
	append_owned(b, t);
}

/*
 * A boolean: tag column i of the row (long shape: the row's tag) is due.
 * Cheaper than testing reason_sql() for NULL: no text is built.
 */
static char *
due_pred_sql(Sweep *sweep, TableDef *t, int i)
{
	StringInfoData b;
	bool		wide = (t->tag_col == NULL);
	char	   *subj = psprintf("t.%s::text", t->subject_col);
	char	   *tag = wide ? quote_literal_cstr(t->tags[i]) : psprintf("t.%s::text", t->tag_col);
	char	   *coll = collected_sql(t, subj, tag);
	bool		ret = coll != NULL && sweep->cutoff_tags != NIL &&
		(!wide || cutoff_of(sweep, t->tags[i]) != NULL);
	bool		any = false;

	initStringInfo(&b);
	if (wide)
		appendStringInfo(&b, "(t.%s IS NOT NULL AND ", t->cols[i]);
	appendStringInfoChar(&b, '(');
	if (sweep->service_ended)
	{
		append_not_held(&b, subj);
		any = true;
	}
	else
	{
		if (ret)
		{
			appendStringInfo(&b, "(%s <= ", coll);
			if (wide)
				appendStringInfo(&b, "%s::timestamptz", cutoff_of(sweep, t->tags[i]));
			else
			{
				ListCell   *lt;
				ListCell   *lv;

				appendStringInfo(&b, "CASE %s", tag);
				forboth(lt, sweep->cutoff_tags, lv, sweep->cutoff_values)
					appendStringInfo(&b, " WHEN %s THEN %s::timestamptz",
									 quote_literal_cstr((char *) lfirst(lt)), (char *) lfirst(lv));
				appendStringInfoString(&b, " END");
			}
			if (sweep->have_keep)
				appendStringInfo(&b,
								 " AND NOT EXISTS (SELECT 1 FROM profile_guard._erasure_keep k"
								 " WHERE k.subject = %s AND k.tag = %s"
								 " AND (k.keep_for IS NULL OR %s > $3 - k.keep_for))",
								 subj, tag, coll);
			appendStringInfoChar(&b, ')');
			any = true;
		}
		/* after the cheap retention test: OR is evaluated in order */
		if (sweep->have_due)
		{
			appendStringInfo(&b, "%s(%s) IS NOT NULL", any ? " OR " : "",
							 due_lookup_sql(subj, tag));
			any = true;
		}
	}
	if (!any)
		appendStringInfoString(&b, "false");
	appendStringInfoChar(&b, ')');
	if (wide)
		appendStringInfoChar(&b, ')');
	return b.data;
}

/*
 * The read of one batch of one table, in the extension's context (it runs
 * no code of the table's owner: the table is a plain table, and its
 * subject, tag and collected-at columns are of built-in types, checked
 * before every batch).  $1, $2: the batch's TID range (after $1, up to
 * $2); $3: the sweep's "now".  Returns the due rows, locked, with what is
 * due in them: ctid, subject, tag (long shape), whether the tag is
 * sensitive (long shape, anonymised), then per tag column the reason it is
 * due (or NULL) and whether it holds a value.
 */
static char *
build_read_sql(Sweep *sweep, TableDef *t)
{
	StringInfoData b;
	bool		wide = (t->tag_col == NULL);
	int			nr = wide ? t->ncols : 1;

	initStringInfo(&b);
	appendStringInfo(&b, "SELECT t.ctid, t.%s::text", t->subject_col);
	if (wide)
		appendStringInfoString(&b, ", NULL::text, NULL::boolean");
	else if (t->anonymise)
		appendStringInfo(&b, ", t.%s::text, EXISTS (SELECT 1 FROM profile_guard.tag s"
						 " WHERE s.tag = t.%s::text AND (s.sensitivity = 'sensitive'"
						 " OR s.category IN " PFG_IDENTIFYING_CATEGORIES "))",
						 t->tag_col, t->tag_col);
	else
		appendStringInfo(&b, ", t.%s::text, NULL::boolean", t->tag_col);
	for (int i = 0; i < nr; i++)
	{
		appendStringInfo(&b, ", %s", reason_sql(sweep, t, i));
		if (wide)
			appendStringInfo(&b, ", t.%s IS NOT NULL", t->cols[i]);
		else
			appendStringInfoString(&b, ", true");
	}
	appendStringInfo(&b, " FROM ONLY %s t WHERE ", t->qualname);
	append_range(&b, t);
	appendStringInfoString(&b, " AND (");
	for (int i = 0; i < nr; i++)
		appendStringInfo(&b, "%s%s", i > 0 ? " OR " : "", due_pred_sql(sweep, t, i));
	appendStringInfoChar(&b, ')');
	/* the others' rows are left to the per-tag reads */
	if (fast_path(sweep, t))
		appendStringInfo(&b,
						 " AND t.%s::text IN (SELECT d.subject FROM profile_guard._erasure_due d)",
						 t->subject_col);
	appendStringInfoString(&b, " FOR UPDATE OF t");
	return b.data;
}

/*
 * The common case, retention alone in a long table whose rows are deleted:
 * one plain read per tag over the batch's range, returning the due rows'
 * TIDs (locked), to be deleted as they are.  Sets *tags to the tags,
 * returns the statements.
 *
 * When nothing but retention can be due in the sweep (no request or other
 * subject-level erasure, no hold), whether a row is due depends on its own
 * columns alone: its subject, tag and collected-at against constants.
 * Then *unlocked gets per tag the same read without the row lock, and
 * *deletes the owner's DELETE of the TIDs it found that tests the same
 * condition again, so that it deletes nothing that is not due.  A row
 * changed since the read has its new version at another TID, which a
 * DELETE by TID does not reach (PostgreSQL checks the newest version's TID
 * against the list too, and then the condition), so such a DELETE affects
 * fewer rows than it was given, and the sweep falls back to the locked
 * read for the batch (erasure.c).  Else both are NIL.
 */
static List *
build_fast_sql(Sweep *sweep, TableDef *t, List **tags, List **unlocked, List **deletes)
{
	List	   *stmts = NIL;
	ListCell   *lt;
	ListCell   *lv;
	bool		own_columns = !sweep->have_due && !sweep->have_keep;

	*tags = NIL;
	*unlocked = NIL;
	*deletes = NIL;
	if (!fast_path(sweep, t))
		return NIL;
	forboth(lt, sweep->cutoff_tags, lv, sweep->cutoff_values)
	{
		StringInfoData b;
		StringInfoData cond;
		char	   *tag = quote_literal_cstr((char *) lfirst(lt));

		/* the row's own columns: it belongs to someone, its tag, its age */
		initStringInfo(&cond);
		append_owned(&cond, t);
		appendStringInfo(&cond, " AND t.%s::text = %s AND t.%s <= %s::timestamptz",
						 t->tag_col, tag, t->collected_col, (char *) lfirst(lv));

		initStringInfo(&b);
		appendStringInfo(&b, "SELECT t.ctid FROM ONLY %s t WHERE t.ctid > $1 AND t.ctid <= $2 AND %s",
						 t->qualname, cond.data);
		if (own_columns)
		{
			*unlocked = lappend(*unlocked, pstrdup(b.data));
			*deletes = lappend(*deletes,
							   psprintf("DELETE FROM ONLY %s t WHERE t.ctid OPERATOR(pg_catalog.=) ANY ($1) AND %s",
										t->qualname, cond.data));
		}
		if (sweep->have_due)
			appendStringInfo(&b,
							 " AND t.%s::text NOT IN (SELECT d.subject FROM profile_guard._erasure_due d)",
							 t->subject_col);
		if (sweep->have_keep)
			appendStringInfo(&b,
							 " AND NOT EXISTS (SELECT 1 FROM profile_guard._erasure_keep k"
							 " WHERE k.subject = t.%s::text AND k.tag = %s"
							 " AND (k.keep_for IS NULL OR t.%s > $3 - k.keep_for))",
							 t->subject_col, tag, t->collected_col);
		appendStringInfoString(&b, " FOR UPDATE OF t");
		stmts = lappend(stmts, b.data);
		*tags = lappend(*tags, lfirst(lt));
	}
	return stmts;
}

/*
 * The statement that finds where a batch of at most $2 due rows after $1
 * ends (for sweep(max_rows)): the last TID and the number of rows; $3 is
 * the sweep's "now".
 */
static char *
build_pick_sql(Sweep *sweep, TableDef *t)
{
	StringInfoData b;
	bool		wide = (t->tag_col == NULL);
	int			nr = wide ? t->ncols : 1;

	initStringInfo(&b);
	appendStringInfo(&b, "SELECT max(x.tid), count(*) FROM (SELECT t.ctid AS tid FROM ONLY %s t"
					 " WHERE t.ctid > $1 AND t.%s IS NOT NULL",
					 t->qualname, t->subject_col);
	if (is_integer_type(t->subject_type))
		appendStringInfo(&b, " AND t.%s >= 0", t->subject_col);
	else if (is_text_type(t->subject_type))
		appendStringInfo(&b, " AND NOT starts_with(t.%s::text, 'anonymous:')", t->subject_col);
	appendStringInfoString(&b, " AND (");
	for (int i = 0; i < nr; i++)
		appendStringInfo(&b, "%s%s", i > 0 ? " OR " : "", due_pred_sql(sweep, t, i));
	appendStringInfoString(&b, ") LIMIT $2) x");
	return b.data;
}

/*
 * The writes of one table, run as its owner: they only delete or set the
 * rows the read found, by TID, with the values computed by the extension.
 */
static void
build_write_sql(SweepTable *st, TableDef *t)
{
	StringInfoData b;

	st->delete_sql = psprintf("DELETE FROM ONLY %s t WHERE t.ctid OPERATOR(pg_catalog.=) ANY ($1)",
							  t->qualname);
	if (!t->anonymise)
		return;
	if (!t->subject_notnull)
		st->anon_subject = 'n';
	else if (is_integer_type(t->subject_type))
		st->anon_subject = 'i';
	else
		st->anon_subject = 't';
	initStringInfo(&b);
	appendStringInfo(&b, "UPDATE ONLY %s t SET %s = %s", t->qualname, t->subject_col,
					 st->anon_subject == 'n' ? "NULL" : "v.s");
	for (int i = 0; i < t->nanon; i++)
		appendStringInfo(&b, ", %s = NULL", t->anon_cols[i]);
	if (t->collected_col)
		appendStringInfo(&b, ", %s = pg_catalog.date_trunc('month', t.%s)",
						 t->collected_col, t->collected_col);
	/*
	 * ciphertext is bound to the subject: cut from it, it is gone; tags of
	 * identifying categories go too, the others are generalised
	 */
	if (t->tag_col == NULL)
	{
		for (int i = 0; i < t->ncols; i++)
		{
			const char *c = t->cols[i];

			if (t->sensitive[i] || t->generalise[i] == PFG_KEEP_NOTHING)
				appendStringInfo(&b, ", %s = NULL", c);
			else if (t->generalise[i] == PFG_KEEP_TENS)
				appendStringInfo(&b, ", %s = t.%s OPERATOR(pg_catalog.-) (t.%s OPERATOR(pg_catalog.%%) 10)",
								 c, c, c);
			else if (t->generalise[i] == PFG_KEEP_ONE_DECIMAL)
				appendStringInfo(&b, ", %s = pg_catalog.round(t.%s::pg_catalog.numeric, 1)", c, c);
			else if (t->generalise[i] == PFG_KEEP_MONTH)
				appendStringInfo(&b, ", %s = pg_catalog.date_trunc('month', t.%s)", c, c);
		}
	}
	st->anon_sql = psprintf("%s%s", b.data,
							st->anon_subject == 'n' ?
							" WHERE t.ctid OPERATOR(pg_catalog.=) ANY ($1)" :
							" FROM ROWS FROM (pg_catalog.unnest($1), pg_catalog.unnest($2)) v(tid, s) WHERE t.ctid OPERATOR(pg_catalog.=) v.tid");
	if (t->tag_col != NULL)
		st->anon_sensitive_sql = psprintf("%s, %s = NULL%s", b.data, t->value_col,
										  st->anon_subject == 'n' ?
										  " WHERE t.ctid OPERATOR(pg_catalog.=) ANY ($1)" :
										  " FROM ROWS FROM (pg_catalog.unnest($1), pg_catalog.unnest($2)) v(tid, s) WHERE t.ctid OPERATOR(pg_catalog.=) v.tid");
}

static void
sweep_skip_context(void *arg)
{
	errcontext("the sweep skips guarded relation \"%s\"", (const char *) arg);
}

/*
 * Lock a table for a batch and check that the sweep's reads run no code of
 * its owner (owner_context.c); if not, warn and say so.
 */
bool
pfg_sweep_table_usable(Oid relid, const char *relation, const char *subject,
					   const char *collected, const char *tag)
{
	ErrorContextCallback cb;
	bool		ok;

	cb.callback = sweep_skip_context;
	cb.arg = (void *) relation;
	cb.previous = error_context_stack;
	error_context_stack = &cb;
	ok = pfg_check_guarded(relid, subject, collected, tag, RowExclusiveLock, WARNING);
	error_context_stack = cb.previous;
	return ok;
}

/*
 * The tables that hold the rows of guarded tables, as the sweep needs them
 * (in SPI): every guarded table, and every partition and inheritance child
 * below it (at any depth, short of one guarded in its own right), each
 * with the classification of the guarded table it is under and its own
 * names and size.  A partitioned table holds no rows: its partitions are
 * swept.
 */
static List *
read_tables(void)
{
	int			rc;
	List	   *defs = NIL;
	const char *stamped;

	/*
	 * collection stamps: a table without a collected-at column that has
	 * them switched on (stamp_collection and the stamps came with 1.2)
	 */
	stamped = OidIsValid(pfg_catalog_relid("collection_stamp")) ?
		"g.collected_at_column IS NULL AND g.stamp_collection" : "false";
	rc = SPI_execute(psprintf(
		"WITH RECURSIVE tree(root, relid) AS ("
		"  SELECT x.relid::oid, x.relid::oid FROM profile_guard.guarded_table x"
		"  UNION"
		"  SELECT t.root, i.inhrelid FROM tree t"
		"  JOIN pg_catalog.pg_inherits i ON i.inhparent = t.relid"
		"  WHERE NOT EXISTS (SELECT 1 FROM profile_guard.guarded_table y"
		"                    WHERE y.relid = i.inhrelid))"
		"SELECT t.relid, c.relkind,"
		"       quote_ident(n.nspname) || '.' || quote_ident(c.relname),"
		"       n.nspname || '.' || c.relname,"
		"       quote_ident(g.subject_column), a.atttypid, a.attnotnull,"
		"       quote_ident(g.collected_at_column), quote_ident(g.tag_column),"
		"       quote_ident(g.value_column), g.on_erase = 'anonymise' AND NOT u.notnull,"
	/*
	 * set to NULL: the columns declared identifying and, as identifying,
	 * those declared nothing of (_anonymisation_undeclared(); a database
	 * still at 1.1 declares none kept); a NOT NULL one of those makes the
	 * sweep delete the rows instead
	 */
		"       ARRAY(SELECT quote_ident(x) FROM unnest(g.anonymise_columns || u.cols) x),"
		"       ARRAY(SELECT quote_ident(cc.column_name) FROM profile_guard.classified_column cc"
		"             WHERE cc.relid = g.relid ORDER BY cc.column_name),"
		"       ARRAY(SELECT cc.tag FROM profile_guard.classified_column cc"
		"             WHERE cc.relid = g.relid ORDER BY cc.column_name),"
		"       ARRAY(SELECT tg.sensitivity = 'sensitive'"
		"             FROM profile_guard.classified_column cc"
		"             JOIN profile_guard.tag tg ON tg.tag = cc.tag"
		"             WHERE cc.relid = g.relid ORDER BY cc.column_name),"
		"       pg_catalog.pg_relation_size(t.relid) / pg_catalog.current_setting('block_size')::int,"
		"       CASE WHEN c.relpages > 0 AND c.reltuples > 0"
		"            THEN c.reltuples / c.relpages ELSE 100 END,"
		"       g.subject_column::text, g.collected_at_column::text, g.tag_column::text,"
		"       ARRAY(SELECT CASE"
		"                    WHEN tg.category IN " PFG_IDENTIFYING_CATEGORIES " THEN 'n'"
		"                    WHEN ca.atttypid IN ('int2'::regtype, 'int4'::regtype, 'int8'::regtype) THEN 'i'"
		"                    WHEN ca.atttypid IN ('numeric'::regtype, 'float4'::regtype, 'float8'::regtype) THEN 'f'"
		"                    WHEN ca.atttypid IN ('date'::regtype, 'timestamp'::regtype, 'timestamptz'::regtype) THEN 'd'"
		"                    ELSE 'k' END"
		"             FROM profile_guard.classified_column cc"
		"             JOIN profile_guard.tag tg ON tg.tag = cc.tag"
		"             LEFT JOIN pg_catalog.pg_attribute ca ON ca.attrelid = t.relid"
		"                                                 AND ca.attname = cc.column_name"
		"             WHERE cc.relid = g.relid ORDER BY cc.column_name)::text[],"
		"       t.root, %s"
		"  FROM tree t"
		"  JOIN profile_guard.guarded_table g ON g.relid = t.root"
		"  CROSS JOIN LATERAL ("
		"       SELECT coalesce(array_agg(a.attname ORDER BY a.attnum), '{}') AS cols,"
		"              coalesce(bool_or(a.attnotnull), false) AS notnull"
		"         FROM pg_catalog.pg_attribute a"
		"        WHERE g.on_erase = 'anonymise' AND a.attrelid = t.relid"
		"          AND a.attnum > 0 AND NOT a.attisdropped"
		"          AND a.attname IS DISTINCT FROM g.subject_column"
		"          AND a.attname IS DISTINCT FROM g.collected_at_column"
		"          AND a.attname IS DISTINCT FROM g.tag_column"
		"          AND a.attname IS DISTINCT FROM g.value_column"
		"          AND a.attname <> ALL (g.anonymise_columns)"
		"          AND a.attname::text <> ALL (ARRAY(SELECT pg_catalog.jsonb_array_elements_text("
		"                 pg_catalog.to_jsonb(g) -> 'keep_columns')))"
		"          AND NOT EXISTS (SELECT 1 FROM profile_guard.classified_column cc"
		"                          WHERE cc.relid = g.relid AND cc.column_name = a.attname)) u"
		"  JOIN pg_catalog.pg_class c ON c.oid = t.relid"
		"  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
		"  JOIN pg_catalog.pg_attribute a ON a.attrelid = t.relid"
		"                                AND a.attname = g.subject_column"
		" WHERE c.relkind <> " CppAsString2(RELKIND_PARTITIONED_TABLE)
		" ORDER BY t.root, t.relid", stamped),
		true, 0);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "could not read the guarded tables: %s", SPI_result_code_string(rc));

	for (uint64 i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		TableDef   *t = palloc0(sizeof(TableDef));
		bool		isnull;
		Datum	   *elems;
		bool	   *nulls;
		int			n;

		t->relid = DatumGetObjectId(SPI_getbinval(tup, desc, 1, &isnull));
		t->relkind = DatumGetChar(SPI_getbinval(tup, desc, 2, &isnull));
		t->qualname = SPI_getvalue(tup, desc, 3);
		t->relation = SPI_getvalue(tup, desc, 4);
		t->subject_col = SPI_getvalue(tup, desc, 5);
		t->subject_type = DatumGetObjectId(SPI_getbinval(tup, desc, 6, &isnull));
		t->subject_notnull = DatumGetBool(SPI_getbinval(tup, desc, 7, &isnull));
		t->collected_col = SPI_getvalue(tup, desc, 8);
		t->tag_col = SPI_getvalue(tup, desc, 9);
		t->value_col = SPI_getvalue(tup, desc, 10);
		t->anonymise = DatumGetBool(SPI_getbinval(tup, desc, 11, &isnull));

		deconstruct_array(DatumGetArrayTypeP(SPI_getbinval(tup, desc, 12, &isnull)),
						  TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &t->nanon);
		t->anon_cols = palloc(sizeof(char *) * (t->nanon + 1));
		for (int j = 0; j < t->nanon; j++)
			t->anon_cols[j] = TextDatumGetCString(elems[j]);

		deconstruct_array(DatumGetArrayTypeP(SPI_getbinval(tup, desc, 13, &isnull)),
						  TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &t->ncols);
		t->cols = palloc(sizeof(char *) * (t->ncols + 1));
		for (int j = 0; j < t->ncols; j++)
			t->cols[j] = TextDatumGetCString(elems[j]);
		deconstruct_array(DatumGetArrayTypeP(SPI_getbinval(tup, desc, 14, &isnull)),
						  TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);
		t->tags = palloc(sizeof(char *) * (n + 1));
		for (int j = 0; j < n; j++)
			t->tags[j] = TextDatumGetCString(elems[j]);
		deconstruct_array(DatumGetArrayTypeP(SPI_getbinval(tup, desc, 15, &isnull)),
						  BOOLOID, 1, true, TYPALIGN_CHAR, &elems, &nulls, &n);
		t->sensitive = palloc(sizeof(bool) * (n + 1));
		for (int j = 0; j < n; j++)
			t->sensitive[j] = DatumGetBool(elems[j]);
		t->nblocks = (BlockNumber) DatumGetInt64(SPI_getbinval(tup, desc, 16, &isnull));
		t->tuples_per_block = DatumGetFloat8(SPI_getbinval(tup, desc, 17, &isnull));
		t->subject_name = SPI_getvalue(tup, desc, 18);
		t->collected_name = SPI_getvalue(tup, desc, 19);
		t->tag_name = SPI_getvalue(tup, desc, 20);
		deconstruct_array(DatumGetArrayTypeP(SPI_getbinval(tup, desc, 21, &isnull)),
						  TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);
		t->generalise = palloc(sizeof(char) * (n + 1));
		for (int j = 0; j < n; j++)
			t->generalise[j] = *TextDatumGetCString(elems[j]);
		t->root = DatumGetObjectId(SPI_getbinval(tup, desc, 22, &isnull));
		t->stamped = DatumGetBool(SPI_getbinval(tup, desc, 23, &isnull));

		defs = lappend(defs, t);
	}
	return defs;
}

/*
 * The tables of a sweep, in SPI, once its flags and retention cutoffs are
 * known: sweep->tables, each with the statements of its batches, or done
 * at once when nothing can be due in it.  Everything kept is allocated in
 * the sweep's context.
 */
void
pfg_sweep_prepare_tables(Sweep *sweep)
{
	MemoryContext cxt = sweep->cxt;
	List	   *defs;
	ListCell   *lc;
	int			i;

	defs = read_tables();
	sweep->ntables = list_length(defs);
	sweep->tables = MemoryContextAllocZero(cxt, sizeof(SweepTable) * (sweep->ntables + 1));
	i = 0;
	foreach(lc, defs)
	{
		TableDef   *t = lfirst(lc);
		SweepTable *st = &sweep->tables[i++];
		bool		wide = (t->tag_col == NULL);
		bool		anything;

		st->relid = t->relid;
		st->relation = MemoryContextStrdup(cxt, t->relation);
		ItemPointerSet(&st->resume, 0, 0);

		/* can anything be due here? */
		anything = sweep->service_ended || sweep->have_due;
		if ((t->collected_col != NULL || t->stamped) && sweep->cutoff_tags != NIL)
		{
			if (!wide)
				anything = true;
			for (int j = 0; j < t->ncols; j++)
				if (cutoff_of(sweep, t->tags[j]) != NULL)
					anything = true;
		}
		if (wide && t->ncols == 0)
			anything = false;
		if (anything && !pfg_sweep_table_usable(t->relid, t->relation, t->subject_name,
												t->collected_name, t->tag_name))
		{
			/* its due rows stay: the sweep is not complete */
			anything = false;
			st->skipped = true;
		}
		if (anything && t->anonymise && t->subject_notnull &&
			!is_integer_type(t->subject_type) && !is_text_type(t->subject_type))
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("cannot anonymise rows of table \"%s\"", t->relation),
					 errdetail("Its subject column is NOT NULL and of type %s; anonymisation needs a value that maps to nobody (NULL, a negative integer or text starting with \"anonymous:\").",
							   format_type_be(t->subject_type)),
					 errhint("ALTER TABLE %s ALTER COLUMN %s DROP NOT NULL, or protect it with on_erase => 'delete'.",
							 t->qualname, t->subject_col)));
		if (anything)
		{
			char	   *sql = build_read_sql(sweep, t);
			List	   *fast;
			List	   *fast_tags;
			List	   *unlocked;
			List	   *deletes;
			ListCell   *lf;
			MemoryContext oldcxt;

			st->read_sql = MemoryContextStrdup(cxt, sql);
			st->pick_sql = MemoryContextStrdup(cxt, build_pick_sql(sweep, t));
			fast = build_fast_sql(sweep, t, &fast_tags, &unlocked, &deletes);
			oldcxt = MemoryContextSwitchTo(cxt);
			foreach(lf, fast)
				st->fast_sql = lappend(st->fast_sql, pstrdup((char *) lfirst(lf)));
			foreach(lf, fast_tags)
				st->fast_tags = lappend(st->fast_tags, pstrdup((char *) lfirst(lf)));
			foreach(lf, unlocked)
				st->unlocked_sql = lappend(st->unlocked_sql, pstrdup((char *) lfirst(lf)));
			foreach(lf, deletes)
				st->unlocked_delete_sql = lappend(st->unlocked_delete_sql,
												  pstrdup((char *) lfirst(lf)));
			st->subject_name = pstrdup(t->subject_name);
			st->collected_name = t->collected_name ? pstrdup(t->collected_name) : NULL;
			st->tag_name = t->tag_name ? pstrdup(t->tag_name) : NULL;
			st->qualname = pstrdup(t->qualname);
			st->wide = wide;
			st->anonymise = t->anonymise;
			st->ncols = t->ncols;
			st->cols = palloc(sizeof(char *) * (t->ncols + 1));
			st->tags = palloc(sizeof(char *) * (t->ncols + 1));
			for (int j = 0; j < t->ncols; j++)
			{
				st->cols[j] = pstrdup(t->cols[j]);
				st->tags[j] = pstrdup(t->tags[j]);
			}
			build_write_sql(st, t);
			MemoryContextSwitchTo(oldcxt);
			st->general_too = (fast != NIL && sweep->have_due);
			st->nblocks = t->nblocks;
			st->tuples_per_block = t->tuples_per_block;
			elog(DEBUG1, "profile_guard sweep of \"%s\": %s", t->relation, sql);
		}
		st->done = (st->read_sql == NULL);
	}
}

/*
 * The tables of erasing one subject's tag now (erase_tag(), opt_out()
 * with erase), in SPI: sweep->tables holds every table that can hold the
 * tag (a wide table with a column classified to it, every long table),
 * each locked and checked as the sweep checks it (an error if its reads
 * could run its owner's code), with a read of the subject's rows that hold
 * the tag ($1: the subject, $2: the tag; their TIDs, locked) and the write
 * that erases them by TID: the tag's cells set to NULL (wide, cut_sql: the
 * rest of the row is not the tag), the rows deleted (long, delete_sql).
 */
void
pfg_erase_tag_prepare_tables(Sweep *sweep, const char *tag)
{
	MemoryContext cxt = sweep->cxt;
	List	   *defs;
	ListCell   *lc;

	defs = read_tables();
	sweep->ntables = 0;
	sweep->tables = MemoryContextAllocZero(cxt, sizeof(SweepTable) * (list_length(defs) + 1));
	foreach(lc, defs)
	{
		TableDef   *t = lfirst(lc);
		bool		wide = (t->tag_col == NULL);
		SweepTable *st;
		StringInfoData read;
		StringInfoData cut;
		bool		any = false;

		initStringInfo(&read);
		initStringInfo(&cut);
		appendStringInfo(&read, "SELECT t.ctid FROM ONLY %s t WHERE t.%s::text = $1 AND ",
						 t->qualname, t->subject_col);
		if (wide)
		{
			appendStringInfo(&cut, "UPDATE ONLY %s t SET ", t->qualname);
			appendStringInfoChar(&read, '(');
			for (int j = 0; j < t->ncols; j++)
			{
				if (strcmp(t->tags[j], tag) != 0)
					continue;
				appendStringInfo(&read, "%st.%s IS NOT NULL", any ? " OR " : "", t->cols[j]);
				appendStringInfo(&cut, "%s%s = NULL", any ? ", " : "", t->cols[j]);
				any = true;
			}
			appendStringInfoChar(&read, ')');
			appendStringInfoString(&cut, " WHERE t.ctid OPERATOR(pg_catalog.=) ANY ($1)");
			if (!any)
				continue;		/* the tag has no column here */
		}
		else
			appendStringInfo(&read, "t.%s::text = $2", t->tag_col);
		appendStringInfoString(&read, " FOR UPDATE OF t");

		/*
		 * Locked against writers until the erasure commits: one in flight
		 * may have collected the tag before the block that erase_tag()
		 * writes first, which no writer sees before it commits; its value
		 * would stay.  The lock waits for those in flight and holds off the
		 * next ones.  Self-exclusive, taken in the tables' order: two
		 * erasures queue.  A writer of several of these tables, or an
		 * erasure whose transaction wrote one first, may still meet it in
		 * a deadlock, which PostgreSQL resolves by cancelling one.
		 */
		(void) pfg_check_guarded(t->relid, t->subject_name, t->collected_name, t->tag_name,
								 ShareRowExclusiveLock, ERROR);

		st = &sweep->tables[sweep->ntables++];
		st->relid = t->relid;
		st->relation = MemoryContextStrdup(cxt, t->relation);
		st->qualname = MemoryContextStrdup(cxt, t->qualname);
		st->wide = wide;
		st->read_sql = MemoryContextStrdup(cxt, read.data);
		st->delete_sql = MemoryContextStrdup(cxt,
											 psprintf("DELETE FROM ONLY %s t WHERE t.ctid OPERATOR(pg_catalog.=) ANY ($1)",
													  t->qualname));
		if (wide)
			st->cut_sql = MemoryContextStrdup(cxt, cut.data);
		elog(DEBUG1, "profile_guard erasure of a tag in \"%s\": %s", t->relation, read.data);
	}
}
