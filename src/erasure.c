/*-------------------------------------------------------------------------
 *
 * erasure.c
 *	  The sweep: makes due erasures physical (§7.4, §10).  What is due is
 *	  computed in SQL when a sweep starts (_erasure_prepare() in
 *	  sql/ext/80_erasure.sql, which also destroys the data keys and
 *	  tombstones the consents of subjects who asked for erasure); this file
 *	  then walks every guarded table in physical order, in batches: each
 *	  batch bounds the next TID range after where the previous one
 *	  stopped, reads the due rows of that range (with statements planned
 *	  once per sweep), deletes, anonymises or nulls cells as the table's
 *	  owner, and logs what it did in profile_guard.erasure_log in the same
 *	  transaction.  A crash therefore
 *	  loses nothing and counts nothing twice: a batch is committed with its
 *	  log rows or not at all, and the next sweep finds what is still there.
 *	  The tables and the text of their statements come from
 *	  erasure_statements.c; the log names a subject by its keyed hash
 *	  (subject_hash.c).
 *
 *	  Also owns the "erasure in progress" flag, a backend-static that only
 *	  this file sets, around its own statements: the collection trigger and
 *	  the consent ledger's append-only trigger let the sweep through when it
 *	  is set, and no SQL can set it.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "access/relation.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "storage/lock.h"
#include "storage/proc.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/resowner.h"
#include "utils/tuplestore.h"

#include "extension.h"
#include "settings.h"
#include "catalog.h"
#include "erasure.h"
#include "erasure_statements.h"
#include "owner_context.h"
#include "progress.h"
#include "subject_hash.h"
#include "spi_checked.h"

/* rows per batch when sweep() is called from SQL (one transaction) */
#define SQL_SWEEP_CHUNK		10000

/*
 * The sweep lock: one sweep at a time per database.  An advisory lock tag
 * that no SQL function makes (its fourth field is neither of the two that
 * pg_advisory_lock() and its kin use), so that no role can take it to hold
 * erasure back, and no code that a sweep runs (an owner's trigger) can
 * release it.
 */
#define SWEEP_LOCK_CLASS	0x7073

/*
 * Before a sweep that completes erasure requests: wait for the transactions
 * writing any table of a guarded tree as it starts.  One of them may have
 * collected a requested subject's values before the request committed and
 * commit after the sweep read the table; the request would be marked
 * complete and the subject forgotten with those rows left.  Once those
 * transactions end, their rows are there to be read, and later ones cannot
 * collect the subject (its erasure request makes it collectable by no
 * purpose).  Transactions that start meanwhile are not waited for.
 */
static void
wait_for_writers_if_requests(void)
{
	int			rc;
	List	   *locktags = NIL;

	rc = SPI_execute("SELECT pt.relid FROM profile_guard.guarded_table x,"
					 "       profile_guard._relations(x.relid) pt(relid)"
					 " WHERE EXISTS (SELECT 1 FROM profile_guard.erasure_request r"
					 "                WHERE r.completed_at IS NULL)",
					 false, 0);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "could not read the guarded tables: %s", SPI_result_code_string(rc));
	for (uint64 r = 0; r < SPI_processed; r++)
	{
		bool		isnull;
		Datum		d = SPI_getbinval(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 1, &isnull);
		LOCKTAG    *tag = palloc(sizeof(LOCKTAG));

		if (isnull)
			continue;
		SET_LOCKTAG_RELATION(*tag, MyDatabaseId, DatumGetObjectId(d));
		locktags = lappend(locktags, tag);
	}
	if (locktags != NIL)
		WaitForLockersMultiple(locktags, ShareLock, false);
}

/*
 * A collected-at column of type date or timestamp (without time zone) is
 * compared with the retention cutoffs in one zone, the one ages are
 * computed in (profile_guard.age_time_zone), whoever sweeps: sweep() in any
 * session's TimeZone and the worker erase the same rows.  Set for the
 * caller's GUC nesting level.
 */
static void
sweep_time_zone(void)
{
	(void) set_config_option("TimeZone", pfg_age_time_zone, PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
}

static void
sweep_locktag(LOCKTAG *tag)
{
	/* "pgsweep" in ASCII */
	SET_LOCKTAG_ADVISORY(*tag, MyDatabaseId, 0x70677377, 0x65657000, SWEEP_LOCK_CLASS);
}

/* only this file sets it, and only around its own statements */
static bool erasure_in_progress = false;

/*
 * The one write of the sweep running now: its relation and the trigger
 * depth it was issued at.  Only rows that this statement itself writes are
 * spared the collection checks; statements that the table owner's triggers
 * run meanwhile (one level deeper or more) are checked as any other write.
 */
static Oid	erasure_write_relid = InvalidOid;
static int	erasure_write_depth = -1;

PFG_SQL_FUNCTION(profile_guard_erasure_in_progress);
PFG_SQL_FUNCTION(profile_guard_sweep);
PFG_SQL_FUNCTION(profile_guard_erase_subject_tag);

bool
pfg_erasure_in_progress(void)
{
	return erasure_in_progress;
}

static int
trigger_depth(void)
{
	LOCAL_FCINFO(fcinfo, 0);

	InitFunctionCallInfoData(*fcinfo, NULL, 0, InvalidOid, NULL, NULL);
	return DatumGetInt32(pg_trigger_depth(fcinfo));
}

/*
 * Is the row trigger now running on 'relid' fired by the sweep's own write
 * (anonymising or nulling cells), which collects nothing?
 */
bool
pfg_erasure_writing(Oid relid)
{
	return erasure_in_progress && OidIsValid(erasure_write_relid) &&
		relid == erasure_write_relid &&
		trigger_depth() == erasure_write_depth + 1;
}

/* add rows to the sweep's results (few distinct keys: a list will do) */
static void
add_result(Sweep *sweep, const char *relation, const char *tag,
		   const char *reason, const char *action, int64 rows)
{
	ListCell   *lc;
	SweepResult *r;
	MemoryContext old;

	foreach(lc, sweep->results)
	{
		r = lfirst(lc);
		if (strcmp(r->relation, relation) == 0 &&
			((r->tag == NULL && tag == NULL) ||
			 (r->tag != NULL && tag != NULL && strcmp(r->tag, tag) == 0)) &&
			strcmp(r->reason, reason) == 0 && strcmp(r->action, action) == 0)
		{
			r->rows += rows;
			return;
		}
	}
	old = MemoryContextSwitchTo(sweep->cxt);
	r = palloc(sizeof(SweepResult));
	r->relation = pstrdup(relation);
	r->tag = tag ? pstrdup(tag) : NULL;
	r->reason = pstrdup(reason);
	r->action = pstrdup(action);
	r->rows = rows;
	sweep->results = lappend(sweep->results, r);
	MemoryContextSwitchTo(old);
}

/* ---------- the sweep */

/*
 * Merge the log of collection stamps into collection_stamp
 * (_merge_collection_stamps()), in SPI, when the database has it.
 */
static void
merge_collection_stamps(void)
{
	int			rc;

	if (!OidIsValid(pfg_catalog_relid("collection_stamp_log")))
		return;
	rc = SPI_execute("SELECT profile_guard._merge_collection_stamps()", false, 0);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "could not merge the collection stamps: %s", SPI_result_code_string(rc));
}

/*
 * The batches' statements are planned once per sweep and their plans kept
 * (SPI_keepplan) until the sweep's context is reset or deleted, when the
 * sweep is over or its transaction aborted.  Planning them again for every
 * batch cost about a quarter of a sweep of plain retention: the planner
 * looks up the actual lowest subject in the subject's index for the test
 * that a row belongs to someone, through every index entry of the rows
 * the batches before had deleted.
 */
static void
free_plans(SPIPlanPtr *plans, int n)
{
	if (plans == NULL)
		return;
	for (int i = 0; i < n; i++)
	{
		if (plans[i] != NULL)
			SPI_freeplan(plans[i]);
		plans[i] = NULL;
	}
}

static void
free_kept_plans(void *arg)
{
	Sweep	   *sweep = (Sweep *) arg;

	for (int i = 0; i < sweep->ntables; i++)
	{
		SweepTable *st = &sweep->tables[i];

		free_plans(&st->read_plan, 1);
		free_plans(&st->delete_plan, 1);
		free_plans(st->fast_plans, list_length(st->fast_sql));
		free_plans(st->unlocked_plans, list_length(st->unlocked_sql));
		free_plans(st->unlocked_delete_plans, list_length(st->unlocked_delete_sql));
	}
}

/*
 * One per-tag read of plain retention (range start, range end, the sweep's
 * time): the due rows' TIDs, in SPI's result; returns how many.
 */
static int64
read_due_tids(SweepTable *st, SPIPlanPtr *kept, const char *sql, Oid *argtypes, Datum *args)
{
	int			rc = SPI_execute_plan(pfg_keep_generic_plan(kept, sql, 3, argtypes),
									  args, NULL, false, 0);

	if (rc != SPI_OK_SELECT)
		elog(ERROR, "could not read the due rows of table \"%s\": %s", st->relation,
			 SPI_result_code_string(rc));
	return (int64) SPI_processed;
}

/*
 * Start a sweep in the current transaction: take the sweep lock (for the
 * transaction, or for the session when the caller will run batches in
 * transactions of their own), carry out the subject-level part of erasure
 * requests, compute what is due, and prepare a batch statement per table.
 */
Sweep *
pfg_sweep_begin(MemoryContext cxt, bool full, bool session_lock)
{
	Sweep	   *sweep;
	int			rc;

	sweep = MemoryContextAllocZero(cxt, sizeof(Sweep));
	sweep->cxt = cxt;
	sweep->session_lock = session_lock;
	sweep->now = GetCurrentTransactionStartTimestamp();
	sweep->free_plans.func = free_kept_plans;
	sweep->free_plans.arg = sweep;
	MemoryContextRegisterResetCallback(cxt, &sweep->free_plans);
	/* the view profile_guard.progress; a session sweep spans transactions */
	sweep->reporting = pfg_progress_start(PFG_PROGRESS_SWEEP, InvalidOid, "preparing", -1,
										  session_lock);

	pfg_spi_connect();
	PG_TRY();
	{
		Oid			argtypes[2] = {TIMESTAMPTZOID, BOOLOID};
		Datum		args[2];
		LOCKTAG		tag;

		erasure_in_progress = true;

		sweep_locktag(&tag);
		(void) LockAcquire(&tag, ExclusiveLock, session_lock, false);

		wait_for_writers_if_requests();
		sweep_time_zone();		/* the cutoffs: now() - retention */

		/* the collection stamps the writes logged, for the retention below */
		merge_collection_stamps();

		args[0] = TimestampTzGetDatum(sweep->now);
		args[1] = BoolGetDatum(full);
		rc = SPI_execute_with_args("SELECT relation, tag, reason, action, rows"
								   "  FROM profile_guard._erasure_prepare($1, $2)",
								   2, argtypes, args, NULL, false, 0);
		if (rc != SPI_OK_SELECT)
			elog(ERROR, "could not prepare the sweep: %s", SPI_result_code_string(rc));
		for (uint64 r = 0; r < SPI_processed; r++)
		{
			HeapTuple	tup = SPI_tuptable->vals[r];
			TupleDesc	desc = SPI_tuptable->tupdesc;
			bool		isnull;

			add_result(sweep, SPI_getvalue(tup, desc, 1), SPI_getvalue(tup, desc, 2),
					   SPI_getvalue(tup, desc, 3), SPI_getvalue(tup, desc, 4),
					   DatumGetInt64(SPI_getbinval(tup, desc, 5, &isnull)));
		}

		rc = SPI_execute("SELECT s.service_ended_at IS NOT NULL,"
						 "       EXISTS (SELECT 1 FROM profile_guard._erasure_due),"
						 "       EXISTS (SELECT 1 FROM profile_guard._erasure_keep)"
						 "  FROM profile_guard.erasure_state s",
						 false, 0);
		if (rc != SPI_OK_SELECT || SPI_processed != 1)
			elog(ERROR, "could not read the erasure state: %s", SPI_result_code_string(rc));
		else
		{
			HeapTuple	tup = SPI_tuptable->vals[0];
			TupleDesc	desc = SPI_tuptable->tupdesc;
			bool		isnull;

			sweep->service_ended = DatumGetBool(SPI_getbinval(tup, desc, 1, &isnull));
			sweep->have_due = DatumGetBool(SPI_getbinval(tup, desc, 2, &isnull));
			sweep->have_keep = DatumGetBool(SPI_getbinval(tup, desc, 3, &isnull));
		}

		/* ISO, in UTC: the literal reads the same under any DateStyle */
		rc = SPI_execute("SELECT c.tag, pg_catalog.quote_literal(pg_catalog.to_char("
						 "c.cutoff AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') || '+00')"
						 "  FROM profile_guard._erasure_cutoff c ORDER BY c.tag",
						 false, 0);
		if (rc != SPI_OK_SELECT)
			elog(ERROR, "could not read the retention cutoffs: %s", SPI_result_code_string(rc));
		for (uint64 r = 0; r < SPI_processed; r++)
		{
			HeapTuple	tup = SPI_tuptable->vals[r];
			TupleDesc	desc = SPI_tuptable->tupdesc;
			MemoryContext old = MemoryContextSwitchTo(cxt);

			sweep->cutoff_tags = lappend(sweep->cutoff_tags, SPI_getvalue(tup, desc, 1));
			sweep->cutoff_values = lappend(sweep->cutoff_values, SPI_getvalue(tup, desc, 2));
			MemoryContextSwitchTo(old);
		}

		pfg_sweep_prepare_tables(sweep);
		erasure_in_progress = false;
	}
	PG_FINALLY();
	{
		erasure_in_progress = false;
	}
	PG_END_TRY();
	pfg_spi_finish();
	if (sweep->reporting)
		pfg_progress_phase("erasing", InvalidOid, -2);
	return sweep;
}

/* log what one batch did (in SPI, same transaction) */
static void
log_batch_row(Sweep *sweep, SweepTable *st, const char *tag, const char *reason,
			  const char *action, const char *subject, int64 rows)
{
	Oid			argtypes[6] = {TEXTOID, TEXTOID, TEXTOID, TEXTOID, INT8OID, TEXTOID};
	Datum		args[6];
	char		nulls[6] = {' ', ' ', ' ', ' ', ' ', ' '};
	char		hash[PFG_SUBJECT_HASH_HEX + 1];
	int			rc;

	args[0] = CStringGetTextDatum(st->relation);
	if (tag != NULL)
		args[1] = CStringGetTextDatum(tag);
	else
	{
		args[1] = (Datum) 0;
		nulls[1] = 'n';
	}
	args[2] = CStringGetTextDatum(reason);
	args[3] = CStringGetTextDatum(action);
	args[4] = Int64GetDatum(rows);
	if (subject != NULL)
	{
		pfg_subject_hash(subject, hash);
		args[5] = CStringGetTextDatum(hash);
	}
	else
	{
		args[5] = (Datum) 0;
		nulls[5] = 'n';
	}
	rc = SPI_execute_with_args("INSERT INTO profile_guard.erasure_log"
							   " (relation, tag, reason, action, rows, subject_hash)"
							   " VALUES ($1, $2, $3, $4, $5, $6)",
							   6, argtypes, args, nulls, false, 0);
	if (rc != SPI_OK_INSERT)
		elog(ERROR, "could not write the erasure log: %s", SPI_result_code_string(rc));
	add_result(sweep, st->relation, tag, reason, action, rows);
}

/* a one-dimensional array of n (> 0) datums of type elemtype */
static Datum
make_array(Datum *elems, bool *nulls, int n, Oid elemtype)
{
	int16		typlen;
	bool		typbyval;
	char		typalign;
	int			dims[1];
	int			lbs[1] = {1};

	dims[0] = n;
	get_typlenbyvalalign(elemtype, &typlen, &typbyval, &typalign);
	return PointerGetDatum(construct_md_array(elems, nulls, 1, dims, lbs, elemtype,
											  typlen, typbyval, typalign));
}

/*
 * The TIDs in the first column of the last SPI result, as a tid[] datum
 * for a statement that erases them by TID.
 */
static Datum
result_tids(int64 n)
{
	Datum	   *tids = palloc(sizeof(Datum) * n);

	for (int64 r = 0; r < n; r++)
	{
		bool		isnull;
		ItemPointer tid = palloc(sizeof(ItemPointerData));

		ItemPointerCopy((ItemPointer) DatumGetPointer(SPI_getbinval(SPI_tuptable->vals[r],
																	SPI_tuptable->tupdesc,
																	1, &isnull)), tid);
		tids[r] = PointerGetDatum(tid);
	}
	return make_array(tids, NULL, n, TIDOID);
}

/*
 * A DO INSTEAD rule on DELETE or UPDATE puts other statements in place of
 * the sweep's writes: statements that could affect as many rows elsewhere,
 * which the count below would not tell from an erasure.  The sweep refuses
 * such a table before it writes anything.
 */
static void
refuse_instead_rules(SweepTable *st)
{
	Relation	rel = relation_open(st->relid, AccessShareLock);
	const char *event = NULL;

	for (int i = 0; rel->rd_rules != NULL && i < rel->rd_rules->numLocks; i++)
	{
		RewriteRule *rule = rel->rd_rules->rules[i];

		if (rule->isInstead && (rule->event == CMD_DELETE || rule->event == CMD_UPDATE))
		{
			event = rule->event == CMD_DELETE ? "DELETE" : "UPDATE";
			break;
		}
	}
	relation_close(rel, AccessShareLock);
	if (event != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the sweep could not erase every due row of table \"%s\"", st->relation),
				 errdetail("Table %s has a DO INSTEAD rule on %s, which would put other statements in place of the sweep's.",
						   st->qualname, event),
				 errhint("Drop the rule, or make it DO ALSO; erasure must reach the rows. See \\d %s.",
						 st->qualname)));
}

/*
 * Run one write of the sweep as the table's owner (its plan kept in *kept,
 * or planned now when kept is NULL); returns the rows it affected.
 */
static uint64
write_as_owner_count(SweepTable *st, const char *sql, int nargs, Oid *argtypes, Datum *args,
					 SPIPlanPtr *kept)
{
	uint64		done;

	refuse_instead_rules(st);
	erasure_write_relid = st->relid;
	erasure_write_depth = trigger_depth();
	PG_TRY();
	{
		done = pfg_execute_as_owner(st->relid, sql, nargs, argtypes, args, NULL, kept);
	}
	PG_FINALLY();
	{
		erasure_write_relid = InvalidOid;
		erasure_write_depth = -1;
	}
	PG_END_TRY();
	return done;
}

/*
 * Run one write of the sweep as the table's owner and make sure it erased
 * every row it was given: a trigger or rule of the owner's that skips a
 * row must not leave it unerased while the log says it is gone.
 */
static void
write_as_owner(SweepTable *st, const char *sql, int nargs, Oid *argtypes, Datum *args,
			   int64 expected, SPIPlanPtr *kept)
{
	uint64		done;

	if (expected == 0)
		return;
	done = write_as_owner_count(st, sql, nargs, argtypes, args, kept);
	if ((int64) done != expected)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the sweep could not erase every due row of table \"%s\"", st->relation),
				 errdetail("A statement of the sweep affected %lld of the %lld due rows it was given.",
						   (long long) done, (long long) expected),
				 errhint("A trigger or rule of table %s skips or redirects the rows; erasure must reach them. See \\d %s.",
						 st->qualname, st->qualname)));
}

/* the new subjects of n anonymised rows, computed in the extension's context */
static Datum
new_subjects(SweepTable *st, int n)
{
	Oid			argtypes[1] = {INT4OID};
	Datum		args[1] = {Int32GetDatum(n)};
	bool		isnull;
	int			rc;

	rc = SPI_execute_with_args(st->anon_subject == 'i' ?
							   "SELECT pg_catalog.array_agg(-pg_catalog.nextval('profile_guard.anonymous_subject_seq'))"
							   "  FROM pg_catalog.generate_series(1, $1)" :
							   "SELECT pg_catalog.array_agg('anonymous:' || pg_catalog.gen_random_uuid()::text)"
							   "  FROM pg_catalog.generate_series(1, $1)",
							   1, argtypes, args, NULL, false, 1);
	if (rc != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "could not make anonymous subjects: %s", SPI_result_code_string(rc));
	return SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
}

/* rows losing the same cells (wide shape) */
typedef struct CutGroup
{
	bool	   *nulled;			/* per tag column */
	int			n;
	Datum	   *tids;
} CutGroup;

/*
 * The general batch over (resume, upper]: the due rows are read and
 * locked in the extension's context, erased by TID as the table's owner,
 * and logged.  Returns the rows affected.
 */
static int64
run_general(Sweep *sweep, SweepTable *st, ItemPointer upper)
{
	Oid			argtypes[3] = {TIDOID, TIDOID, TIMESTAMPTZOID};
	Datum		args[3];
	int			rc;
	SPITupleTable *tuptable;
	TupleDesc	desc;
	uint64		n;
	int			nr = st->wide ? st->ncols : 1;
	Datum	   *whole;			/* rows deleted or anonymised */
	Datum	   *whole_sensitive;	/* long shape, anonymised: value too */
	int			nwhole = 0;
	int			nsensitive = 0;
	List	   *groups = NIL;
	ListCell   *lc;
	Datum	   *ltag;
	Datum	   *lreason;
	Datum	   *laction;
	Datum	   *lsubject;
	bool	   *lsubject_null;
	int			nlog = 0;
	int64		affected = 0;
	const char *whole_action = st->anonymise ? "anonymise" : "delete";

	args[0] = PointerGetDatum(&st->resume);
	args[1] = PointerGetDatum(upper);
	args[2] = TimestampTzGetDatum(sweep->now);
	rc = SPI_execute_plan(pfg_keep_generic_plan(&st->read_plan, st->read_sql, 3, argtypes),
						  args, NULL, false, 0);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "could not read the due rows of table \"%s\": %s", st->relation,
			 SPI_result_code_string(rc));
	tuptable = SPI_tuptable;
	desc = tuptable->tupdesc;
	n = SPI_processed;
	if (n == 0)
		return 0;

	whole = palloc(sizeof(Datum) * n);
	whole_sensitive = palloc(sizeof(Datum) * n);
	ltag = palloc(sizeof(Datum) * n * nr);
	lreason = palloc(sizeof(Datum) * n * nr);
	laction = palloc(sizeof(Datum) * n * nr);
	lsubject = palloc(sizeof(Datum) * n * nr);
	lsubject_null = palloc(sizeof(bool) * n * nr);

	for (uint64 r = 0; r < n; r++)
	{
		HeapTuple	tup = tuptable->vals[r];
		bool		isnull;
		ItemPointer tid = palloc(sizeof(ItemPointerData));
		char	   *subject = SPI_getvalue(tup, desc, 2);
		char	   *tag = SPI_getvalue(tup, desc, 3);
		bool		sensitive;
		bool		is_whole = true;
		bool		any = false;
		bool	   *nulled = palloc0(sizeof(bool) * (nr + 1));
		char	  **reasons = palloc0(sizeof(char *) * (nr + 1));

		ItemPointerCopy((ItemPointer) DatumGetPointer(SPI_getbinval(tup, desc, 1, &isnull)), tid);
		sensitive = DatumGetBool(SPI_getbinval(tup, desc, 4, &isnull)) && !isnull;
		for (int i = 0; i < nr; i++)
		{
			bool		has = DatumGetBool(SPI_getbinval(tup, desc, 6 + 2 * i, &isnull));

			reasons[i] = SPI_getvalue(tup, desc, 5 + 2 * i);
			if (reasons[i] != NULL)
				nulled[i] = any = true;
			else if (has)
				is_whole = false;
		}
		if (!any)
			continue;			/* nothing due after all: leave it */

		for (int i = 0; i < nr; i++)
		{
			if (reasons[i] == NULL)
				continue;
			ltag[nlog] = CStringGetTextDatum(st->wide ? st->tags[i] : tag);
			lreason[nlog] = CStringGetTextDatum(reasons[i]);
			laction[nlog] = CStringGetTextDatum(is_whole ? whole_action : "null_cell");
			/* the subject only for the subject-specific reasons */
			lsubject_null[nlog] = subject == NULL ||
				(strcmp(reasons[i], "request") != 0 && strcmp(reasons[i], "withdrawn") != 0 &&
				 strcmp(reasons[i], "expired") != 0 && strcmp(reasons[i], "stopped_consent") != 0);
			lsubject[nlog] = lsubject_null[nlog] ? (Datum) 0 : CStringGetTextDatum(subject);
			nlog++;
		}

		if (is_whole && !st->wide && st->anonymise && sensitive)
			whole_sensitive[nsensitive++] = PointerGetDatum(tid);
		else if (is_whole)
			whole[nwhole++] = PointerGetDatum(tid);
		else
		{
			CutGroup   *g = NULL;

			foreach(lc, groups)
			{
				CutGroup   *c = lfirst(lc);

				if (memcmp(c->nulled, nulled, sizeof(bool) * nr) == 0)
				{
					g = c;
					break;
				}
			}
			if (g == NULL)
			{
				g = palloc0(sizeof(CutGroup));
				g->nulled = nulled;
				g->tids = palloc(sizeof(Datum) * n);
				groups = lappend(groups, g);
			}
			g->tids[g->n++] = PointerGetDatum(tid);
		}
	}

	/* the writes, as the table's owner */
	if (!st->anonymise)
	{
		Oid			wtypes[1] = {TIDARRAYOID};
		Datum		wargs[1];

		if (nwhole > 0)
		{
			wargs[0] = make_array(whole, NULL, nwhole, TIDOID);
			write_as_owner(st, st->delete_sql, 1, wtypes, wargs, nwhole, &st->delete_plan);
		}
	}
	else
	{
		Oid			wtypes[2] = {TIDARRAYOID,
		st->anon_subject == 'i' ? INT8ARRAYOID : TEXTARRAYOID};
		Datum		wargs[2];
		int			nargs = st->anon_subject == 'n' ? 1 : 2;

		if (nwhole > 0)
		{
			wargs[0] = make_array(whole, NULL, nwhole, TIDOID);
			if (nargs == 2)
				wargs[1] = new_subjects(st, nwhole);
			write_as_owner(st, st->anon_sql, nargs, wtypes, wargs, nwhole, NULL);
		}
		if (nsensitive > 0)
		{
			wargs[0] = make_array(whole_sensitive, NULL, nsensitive, TIDOID);
			if (nargs == 2)
				wargs[1] = new_subjects(st, nsensitive);
			write_as_owner(st, st->anon_sensitive_sql, nargs, wtypes, wargs, nsensitive, NULL);
		}
	}
	foreach(lc, groups)
	{
		CutGroup   *g = lfirst(lc);
		StringInfoData b;
		Oid			wtypes[1] = {TIDARRAYOID};
		Datum		wargs[1];
		bool		first = true;

		initStringInfo(&b);
		appendStringInfo(&b, "UPDATE ONLY %s t SET ", st->qualname);
		for (int i = 0; i < nr; i++)
			if (g->nulled[i])
			{
				appendStringInfo(&b, "%s%s = NULL", first ? "" : ", ", st->cols[i]);
				first = false;
			}
		appendStringInfoString(&b, " WHERE t.ctid OPERATOR(pg_catalog.=) ANY ($1)");
		wargs[0] = make_array(g->tids, NULL, g->n, TIDOID);
		write_as_owner(st, b.data, 1, wtypes, wargs, g->n, NULL);
		affected += g->n;
	}
	affected += nwhole + nsensitive;

	/* the log, per tag, reason, action (and subject) */
	if (nlog > 0)
	{
		Oid			ltypes[4] = {TEXTARRAYOID, TEXTARRAYOID, TEXTARRAYOID, TEXTARRAYOID};
		Datum		largs[4];

		largs[0] = make_array(ltag, NULL, nlog, TEXTOID);
		largs[1] = make_array(lreason, NULL, nlog, TEXTOID);
		largs[2] = make_array(laction, NULL, nlog, TEXTOID);
		largs[3] = make_array(lsubject, lsubject_null, nlog, TEXTOID);
		rc = SPI_execute_with_args("SELECT x.tag, x.reason, x.action, x.subject, pg_catalog.count(*)"
								   "  FROM ROWS FROM (pg_catalog.unnest($1), pg_catalog.unnest($2), pg_catalog.unnest($3), pg_catalog.unnest($4)) x(tag, reason, action, subject)"
								   " GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4",
								   4, ltypes, largs, NULL, true, 0);
		if (rc != SPI_OK_SELECT)
			elog(ERROR, "could not summarise a sweep batch: %s", SPI_result_code_string(rc));
		tuptable = SPI_tuptable;
		desc = tuptable->tupdesc;
		n = SPI_processed;
		for (uint64 i = 0; i < n; i++)
		{
			HeapTuple	tup = tuptable->vals[i];
			bool		isnull;

			log_batch_row(sweep, st, SPI_getvalue(tup, desc, 1), SPI_getvalue(tup, desc, 2),
						  SPI_getvalue(tup, desc, 3), SPI_getvalue(tup, desc, 4),
						  DatumGetInt64(SPI_getbinval(tup, desc, 5, &isnull)));
		}
	}
	return affected;
}

/*
 * The writes of fast_unlocked(): per tag, the due rows of the range read
 * without the row lock and deleted by TID as the table's owner by a DELETE
 * that tests their columns again; counts[i] gets tag i's rows.  Returns
 * false as soon as a DELETE affects another number of rows than the read
 * found.
 */
static bool
unlocked_writes(Sweep *sweep, SweepTable *st, ItemPointer upper, int64 *counts)
{
	Oid			argtypes[3] = {TIDOID, TIDOID, TIMESTAMPTZOID};
	Datum		args[3];
	ListCell   *ls;
	ListCell   *ld;

	args[0] = PointerGetDatum(&st->resume);
	args[1] = PointerGetDatum(upper);
	args[2] = TimestampTzGetDatum(sweep->now);
	forboth(ls, st->unlocked_sql, ld, st->unlocked_delete_sql)
	{
		int			i = foreach_current_index(ls);
		int64		due;
		Oid			wtypes[1] = {TIDARRAYOID};
		Datum		wargs[1];

		due = read_due_tids(st, &st->unlocked_plans[i], (char *) lfirst(ls), argtypes, args);
		if (due == 0)
			continue;
		wargs[0] = result_tids(due);
		if ((int64) write_as_owner_count(st, (char *) lfirst(ld), 1, wtypes, wargs,
										 &st->unlocked_delete_plans[i]) != due)
			return false;
		counts[i] = due;
	}
	return true;
}

/*
 * Whether the transaction may open one more subtransaction for a batch
 * without the backend's cache of subtransaction IDs overflowing: past it
 * (a sweep() of many batches in one transaction), every other session's
 * visibility checks would consult pg_subtrans until the sweep commits.
 * Batches beyond it take the row lock instead.
 */
static bool
subtransaction_room(void)
{
	return !MyProc->subxidStatus.overflowed &&
		MyProc->subxidStatus.count < PGPROC_MAX_CACHED_SUBXIDS / 2;
}

/*
 * Plain retention in a batch without the row lock, when the rows' own
 * columns alone decide (erasure_statements.c, build_fast_sql).  This saves
 * locking every row before it is deleted.  The writes run in a
 * subtransaction: if a DELETE affects another number of rows than the read
 * found (a row changed or deleted meanwhile, or the owner's trigger or rule
 * skipped one), all of them are undone and false returned, and the caller
 * reads the batch again with the lock, as it would without this path, so
 * that what is erased, what is logged and what is refused are the same.
 * Returns true once the batch is erased and logged, adding the rows to
 * *affected.
 */
static bool
fast_unlocked(Sweep *sweep, SweepTable *st, ItemPointer upper, int64 *affected)
{
	MemoryContext cxt = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	int			ntags = list_length(st->unlocked_sql);
	int64	   *counts = palloc0(sizeof(int64) * ntags);
	bool		complete = false;
	ListCell   *lt;

	if (st->unlocked_plans == NULL)
	{
		st->unlocked_plans = MemoryContextAllocZero(sweep->cxt, sizeof(SPIPlanPtr) * ntags);
		st->unlocked_delete_plans = MemoryContextAllocZero(sweep->cxt, sizeof(SPIPlanPtr) * ntags);
	}

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		complete = unlocked_writes(sweep, st, upper, counts);
	}
	PG_CATCH();
	{
		/* undone here, so that a caller that catches the error finds its own */
		ErrorData  *edata;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
		ReThrowError(edata);
	}
	PG_END_TRY();
	if (complete)
		ReleaseCurrentSubTransaction();
	else
		RollbackAndReleaseCurrentSubTransaction();
	MemoryContextSwitchTo(cxt);
	CurrentResourceOwner = owner;
	if (!complete)
		return false;

	foreach(lt, st->fast_tags)
	{
		int64		due = counts[foreach_current_index(lt)];

		if (due == 0)
			continue;
		log_batch_row(sweep, st, (char *) lfirst(lt), "retention", "delete", NULL, due);
		*affected += due;
	}
	return true;
}

/*
 * One batch of one table, in the current transaction: the due rows of the
 * next range of the table are erased and logged together.  The range is
 * about limit rows' worth of blocks; with exact, it is found by a first
 * statement so that it holds at most limit due rows.  Returns the rows
 * affected.
 */
int64
pfg_sweep_batch(Sweep *sweep, int table, int64 limit, bool exact)
{
	SweepTable *st = &sweep->tables[table];
	int64		affected = 0;
	int			nestlevel;
	ItemPointerData upper;

	if (st->done)
		return 0;
	if (limit < 1)
		limit = 1;
	if (sweep->reporting)
		pfg_progress_phase(NULL, st->relid, -2);

	pfg_spi_connect();
	nestlevel = NewGUCNestLevel();
	PG_TRY();
	{
		Oid			argtypes[3] = {TIDOID, TIDOID, TIMESTAMPTZOID};
		Datum		args[3];
		int			rc;
		bool		run = true;

		erasure_in_progress = true;

		/* the table may have changed since the sweep began */
		if (!pfg_sweep_table_usable(st->relid, st->relation, st->subject_name,
									st->collected_name, st->tag_name))
		{
			st->done = true;
			st->skipped = true;
			run = false;
		}

		/*
		 * TID range scans, never a scan from the start of the table (and no
		 * JIT: sweep() and the worker, the callers, switched it off)
		 */
		(void) set_config_option("enable_seqscan", "off", PGC_USERSET, PGC_S_SESSION,
								 GUC_ACTION_SAVE, true, 0, false);
		sweep_time_zone();

		if (run && exact)
		{
			Oid			pickargtypes[3] = {TIDOID, INT8OID, TIMESTAMPTZOID};
			Datum		pickargs[3];
			bool		isnull;
			Datum		d;

			pickargs[0] = PointerGetDatum(&st->resume);
			pickargs[1] = Int64GetDatum(limit);
			pickargs[2] = TimestampTzGetDatum(sweep->now);
			rc = SPI_execute_with_args(st->pick_sql, 3, pickargtypes, pickargs, NULL, false, 0);
			if (rc != SPI_OK_SELECT || SPI_processed != 1)
				elog(ERROR, "could not find the next batch of table \"%s\": %s", st->relation,
					 SPI_result_code_string(rc));
			d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
			if (isnull)
			{
				st->done = true;
				run = false;
			}
			else
			{
				ItemPointerCopy((ItemPointer) DatumGetPointer(d), &upper);
				d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull);
				if (DatumGetInt64(d) < limit)
					st->done = true;
			}
		}
		else if (run)
		{
			BlockNumber start = ItemPointerGetBlockNumber(&st->resume);
			double		blocks = ceil((double) limit / Max(st->tuples_per_block, 1.0));
			BlockNumber end;

			if (start >= st->nblocks)
			{
				st->done = true;
				run = false;
			}
			else
			{
				/* rows from start (after resume) up to, not into, block end */
				end = (blocks >= (double) (st->nblocks - start)) ?
					st->nblocks : start + (BlockNumber) blocks;
				ItemPointerSet(&upper, end, 0);
				if (end >= st->nblocks)
					st->done = true;
			}
		}

		if (run && (st->fast_sql == NIL || st->general_too))
			affected += run_general(sweep, st, &upper);
		if (run && st->fast_sql != NIL &&
			(st->unlocked_sql == NIL || !subtransaction_room() ||
			 !fast_unlocked(sweep, st, &upper, &affected)))
		{
			ListCell   *ls;
			ListCell   *lt;

			args[0] = PointerGetDatum(&st->resume);
			args[1] = PointerGetDatum(&upper);
			args[2] = TimestampTzGetDatum(sweep->now);
			if (st->fast_plans == NULL)
				st->fast_plans = MemoryContextAllocZero(sweep->cxt,
														sizeof(SPIPlanPtr) * list_length(st->fast_sql));
			forboth(ls, st->fast_sql, lt, st->fast_tags)
			{
				int64		due;
				Oid			wtypes[1] = {TIDARRAYOID};
				Datum		wargs[1];

				due = read_due_tids(st, &st->fast_plans[foreach_current_index(ls)],
									(char *) lfirst(ls), argtypes, args);
				if (due == 0)
					continue;
				wargs[0] = result_tids(due);
				write_as_owner(st, st->delete_sql, 1, wtypes, wargs, due, &st->delete_plan);
				log_batch_row(sweep, st, (char *) lfirst(lt), "retention", "delete",
							  NULL, due);
				affected += due;
			}
		}
		if (run)
			ItemPointerCopy(&upper, &st->resume);
		erasure_in_progress = false;
	}
	PG_FINALLY();
	{
		erasure_in_progress = false;
	}
	PG_END_TRY();
	AtEOXact_GUC(true, nestlevel);
	pfg_spi_finish();

	sweep->batches++;
	sweep->rows += affected;
	if (sweep->reporting)
		pfg_progress_done(sweep->rows);
	return affected;
}

/*
 * Has the sweep done every table, none of them skipped?  A table skipped
 * (pfg_sweep_table_usable() warned) keeps its due rows, so the sweep is not
 * complete: no request it served is marked complete, and the next sweep
 * looks at the same events again.
 */
bool
pfg_sweep_all_done(Sweep *sweep)
{
	for (int i = 0; i < sweep->ntables; i++)
		if (!sweep->tables[i].done || sweep->tables[i].skipped)
			return false;
	return true;
}

/*
 * End a sweep, in a transaction: when complete, the requests it served are
 * marked complete, their subjects are forgotten (the consent ledger lets
 * their tombstones go while the flag is set), and the next sweep starts
 * looking at events from this one's start.  Releases a session sweep lock.
 */
void
pfg_sweep_finish(Sweep *sweep, bool complete)
{
	int			rc;

	if (sweep->reporting)
		pfg_progress_phase("finishing", InvalidOid, -2);
	pfg_spi_connect();
	if (complete)
	{
		Oid			argtypes[1] = {TIMESTAMPTZOID};
		Datum		args[1] = {TimestampTzGetDatum(sweep->now)};

		PG_TRY();
		{
			erasure_in_progress = true;
			rc = SPI_execute_with_args("SELECT profile_guard._erasure_finish($1)",
									   1, argtypes, args, NULL, false, 0);
			if (rc != SPI_OK_SELECT)
				elog(ERROR, "could not finish the sweep: %s", SPI_result_code_string(rc));
		}
		PG_FINALLY();
		{
			erasure_in_progress = false;
		}
		PG_END_TRY();
	}
	if (sweep->session_lock)
	{
		LOCKTAG		tag;

		sweep_locktag(&tag);
		(void) LockRelease(&tag, ExclusiveLock, true);
	}
	pfg_spi_finish();
	if (sweep->reporting)
		pfg_progress_end();
}

/* ---------- one subject's tag, now */

/*
 * Erase the stored values of one tag of one subject now, in the calling
 * transaction (erase_tag(), opt_out() with erase): in every table that can
 * hold the tag (erasure_statements.c) the subject's rows that hold it are
 * read and locked in the extension's context, then erased by TID as the
 * table's owner (wide shape: the tag's cells set to NULL; long shape: the
 * rows deleted), and each table's count is logged in the erasure log with
 * the reason and the subject's keyed hash, as the sweep logs; the
 * subject's collection stamps of the tag are deleted.  Returns the rows
 * affected.
 */
static int64
erase_subject_tag(const char *subject, const char *tag, const char *reason)
{
	MemoryContext cxt;
	Sweep	   *sweep;
	int64		total = 0;

	cxt = AllocSetContextCreate(CurrentMemoryContext, "profile_guard erase tag",
								ALLOCSET_DEFAULT_SIZES);
	sweep = MemoryContextAllocZero(cxt, sizeof(Sweep));
	sweep->cxt = cxt;
	sweep->now = GetCurrentTransactionStartTimestamp();

	pfg_spi_connect();
	PG_TRY();
	{
		erasure_in_progress = true;
		pfg_erase_tag_prepare_tables(sweep, tag);
		for (int i = 0; i < sweep->ntables; i++)
		{
			SweepTable *st = &sweep->tables[i];
			Oid			argtypes[2] = {TEXTOID, TEXTOID};
			Datum		args[2];
			Oid			wtypes[1] = {TIDARRAYOID};
			Datum		wargs[1];
			int64		n;
			int			rc;

			args[0] = CStringGetTextDatum(subject);
			args[1] = CStringGetTextDatum(tag);
			rc = SPI_execute_with_args(st->read_sql, 2, argtypes, args, NULL, false, 0);
			if (rc != SPI_OK_SELECT)
				elog(ERROR, "could not read the rows to erase of table \"%s\": %s",
					 st->relation, SPI_result_code_string(rc));
			n = (int64) SPI_processed;
			if (n == 0)
				continue;
			wargs[0] = result_tids(n);
			write_as_owner(st, st->wide ? st->cut_sql : st->delete_sql, 1, wtypes, wargs, n, NULL);
			log_batch_row(sweep, st, tag, reason, st->wide ? "null_cell" : "delete", subject, n);
			total += n;
		}
		/* nothing is left to be retained: its collection stamps go too */
		if (OidIsValid(pfg_catalog_relid("collection_stamp")))
		{
			Oid			argtypes[2] = {TEXTOID, TEXTOID};
			Datum		args[2];
			int			rc;

			merge_collection_stamps();
			args[0] = CStringGetTextDatum(subject);
			args[1] = CStringGetTextDatum(tag);
			rc = SPI_execute_with_args("DELETE FROM profile_guard.collection_stamp s"
									   " WHERE s.subject OPERATOR(pg_catalog.=) $1"
									   " AND s.tag OPERATOR(pg_catalog.=) $2",
									   2, argtypes, args, NULL, false, 0);
			if (rc != SPI_OK_DELETE)
				elog(ERROR, "could not delete the collection stamps: %s",
					 SPI_result_code_string(rc));
		}
		erasure_in_progress = false;
	}
	PG_FINALLY();
	{
		erasure_in_progress = false;
	}
	PG_END_TRY();
	pfg_spi_finish();
	MemoryContextDelete(cxt);
	return total;
}

/* ---------- SQL functions */

Datum
profile_guard_erasure_in_progress(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(erasure_in_progress);
}

/*
 * sweep(max_rows, full): the whole sweep in the calling transaction, in
 * batches of SQL_SWEEP_CHUNK rows, at most max_rows rows (NULL: all).
 */
Datum
profile_guard_sweep(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	int64		budget = PG_ARGISNULL(0) ? -1 : PG_GETARG_INT32(0);
	bool		full = PG_ARGISNULL(1) ? false : PG_GETARG_BOOL(1);
	MemoryContext cxt;
	Sweep	   *sweep;
	ListCell   *lc;
	int			nestlevel;

	pfg_require_preload();
	if (budget < 0 && !PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("max_rows must not be negative"),
				 errdetail("sweep() was called with max_rows = %lld.", (long long) budget),
				 errhint("Pass a positive number of rows, or NULL for all due rows.")));
	if (RecoveryInProgress())
		ereport(ERROR,
				(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
				 errmsg("cannot sweep during recovery"),
				 errdetail("Erasure writes; this server is a standby."),
				 errhint("Run profile_guard.sweep() on the primary.")));

	InitMaterializedSRF(fcinfo, 0);

	/*
	 * Without JIT: the sweep's statements (and the table owners' code it
	 * fires) each run once over a planner's guess of many rows, which put
	 * them past jit_above_cost and spent seconds compiling what ran in
	 * milliseconds.  Restored when the sweep ends, or by the abort.
	 */
	nestlevel = NewGUCNestLevel();
	pfg_plan_without_jit();

	cxt = AllocSetContextCreate(CurrentMemoryContext, "profile_guard sweep",
								ALLOCSET_DEFAULT_SIZES);
	sweep = pfg_sweep_begin(cxt, full, false);
	for (int i = 0; i < sweep->ntables; i++)
	{
		while (!sweep->tables[i].done && budget != 0)
		{
			int64		limit = SQL_SWEEP_CHUNK;

			if (budget > 0 && budget < limit)
				limit = budget;
			if (budget > 0)
				budget = Max(budget - pfg_sweep_batch(sweep, i, limit, true), 0);
			else
				(void) pfg_sweep_batch(sweep, i, limit, false);
		}
	}
	pfg_sweep_finish(sweep, pfg_sweep_all_done(sweep));

	foreach(lc, sweep->results)
	{
		SweepResult *r = lfirst(lc);
		Datum		values[5];
		bool		nulls[5] = {false, false, false, false, false};

		values[0] = CStringGetTextDatum(r->relation);
		if (r->tag)
			values[1] = CStringGetTextDatum(r->tag);
		else
			nulls[1] = true;
		values[2] = CStringGetTextDatum(r->reason);
		values[3] = CStringGetTextDatum(r->action);
		values[4] = Int64GetDatum(r->rows);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	MemoryContextDelete(cxt);
	AtEOXact_GUC(true, nestlevel);
	return (Datum) 0;
}

/*
 * _erase_subject_tag(subject, tag, reason): erase_subject_tag() for the
 * SQL functions that check their arguments and call it (erase_tag(),
 * opt_out()); returns the rows affected.
 */
Datum
profile_guard_erase_subject_tag(PG_FUNCTION_ARGS)
{
	char	   *subject = text_to_cstring(PG_GETARG_TEXT_PP(0));
	char	   *tag = text_to_cstring(PG_GETARG_TEXT_PP(1));
	char	   *reason = text_to_cstring(PG_GETARG_TEXT_PP(2));

	pfg_require_preload();
	if (RecoveryInProgress())
		ereport(ERROR,
				(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
				 errmsg("cannot erase during recovery"),
				 errdetail("Erasure writes; this server is a standby."),
				 errhint("Call the function on the primary.")));
	PG_RETURN_INT64(erase_subject_tag(subject, tag, reason));
}
