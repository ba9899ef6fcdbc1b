/*-------------------------------------------------------------------------
 *
 * collection_stamp.c
 *	  Owns the write side of the collection stamps of guarded tables
 *	  protected without a collected-at column (stamp_collection, on by
 *	  default): when the write path (collect.c) collects a (subject, tag)
 *	  the pair is remembered for the transaction, and before it commits
 *	  (or earlier, once PFG_STAMP_BATCH pairs are pending outside any
 *	  subtransaction) the pairs are appended to
 *	  profile_guard.collection_stamp_log, one row per guarded table and tag
 *	  holding the subjects as an array.  The log has no
 *	  index and takes no ON CONFLICT: a pair costs about an array element,
 *	  written where the array's data will be (each group keeps its subjects
 *	  laid out as a text[] holds them, so that the array written is its
 *	  header and one copy of that area).
 *	  The sweep merges the log into profile_guard.collection_stamp, which
 *	  its retention reads (_merge_collection_stamps(), docs/erasure.md).
 *	  A subtransaction that aborts takes its pairs with it.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"

#include "catalog.h"
#include "collection_stamp.h"
#include "spi_checked.h"

/* pending pairs written before commit, or as soon as there are this many */
#define PFG_STAMP_BATCH 8192

/* the header of a one-dimensional array without NULLs */
#define ARRAY_HEADER	ARR_OVERHEAD_NONULLS(1)

/*
 * The pending pairs of one guarded table and tag, in the order they were
 * collected: subject i was collected by subtransaction subids[i].  The
 * subtransaction ids only grow within a transaction, so the pairs of an
 * aborting subtransaction (and of those below it) are a suffix.  The
 * subjects are kept as the data area of a one-dimensional text[] without
 * NULLs holds its elements (each a varlena with a 4-byte header, padded to
 * the next int boundary with zeroes), behind room for the array's header,
 * so that the array written is the group's own memory; ends[i] is where
 * subject i's element and its padding end.  A group keeps its memory once
 * written, for the pairs that follow in the transaction.
 */
typedef struct StampGroup
{
	Oid			root;
	char	   *tag;			/* in StampContext */
	int			n;
	int			size;			/* room in ends and subids */
	uint32	   *ends;
	SubTransactionId *subids;
	char	   *array;			/* header room, then data; in StampContext */
	char	   *data;			/* the array's data area: array + ARRAY_HEADER */
	Size		data_used;
	Size		data_size;
} StampGroup;

static MemoryContext StampContext = NULL;	/* child of TopTransactionContext */
static StampGroup *groups = NULL;
static int	ngroups = 0;
static int	maxgroups = 0;
static int	npending = 0;
static int	last_group = -1;	/* the group found last: rows repeat it */
static bool callbacks_registered = false;

/* the saved INSERT into the log, and the log it was planned for */
static SPIPlanPtr log_plan = NULL;
static Oid	log_plan_relid = InvalidOid;

static void
forget_pending(void)
{
	groups = NULL;
	ngroups = maxgroups = npending = 0;
	last_group = -1;
	StampContext = NULL;		/* freed with TopTransactionContext */
}

/* the statement that appends one row to the log, planned once per backend */
static SPIPlanPtr
log_insert_plan(Oid logrelid)
{
	Oid			argtypes[3] = {OIDOID, TEXTOID, TEXTARRAYOID};
	SPIPlanPtr	plan;

	if (log_plan != NULL && log_plan_relid == logrelid)
		return log_plan;
	if (log_plan != NULL)
	{
		SPI_freeplan(log_plan);
		log_plan = NULL;
	}
	plan = SPI_prepare("INSERT INTO profile_guard.collection_stamp_log"
					   " (relid, tag, collected_at, subjects)"
					   " VALUES ($1::pg_catalog.regclass, $2, pg_catalog.now(), $3)",
					   3, argtypes);
	if (plan == NULL)
		elog(ERROR, "could not plan the collection stamps' log insertion: %s",
			 SPI_result_code_string(SPI_result));
	if (SPI_keepplan(plan) != 0)
		elog(ERROR, "could not keep the collection stamps' log insertion");
	log_plan = plan;
	log_plan_relid = logrelid;
	return plan;
}

/*
 * The group's subjects as a text[]: the header of a one-dimensional array
 * without NULLs, written in the room before the data area the group laid
 * out (what construct_array() would have built from the same texts).
 */
static ArrayType *
subjects_array(const StampGroup *grp)
{
	ArrayType  *array = (ArrayType *) grp->array;

	memset(array, 0, ARRAY_HEADER);
	SET_VARSIZE(array, ARRAY_HEADER + grp->data_used);
	array->ndim = 1;
	array->dataoffset = 0;
	array->elemtype = TEXTOID;
	ARR_DIMS(array)[0] = grp->n;
	ARR_LBOUND(array)[0] = 1;
	Assert(ARR_DATA_PTR(array) == grp->data);
	return array;
}

/* append every pending pair to the log, in SPI, with the rights of our schema's owner */
static void
flush_pending(void)
{
	Oid			logrelid;
	PfgCatalogAccess ca;
	MemoryContext cxt;
	MemoryContext old;
	bool		pushed;
	StampGroup *pending = groups;
	int			npending_groups = ngroups;

	int			saved_maxgroups = maxgroups;

	if (npending == 0)
		return;
	/* the pairs are written once: an error aborts the transaction anyway */
	groups = NULL;
	ngroups = maxgroups = npending = 0;
	last_group = -1;

	/* a database still at a version without stamps: nothing to write to */
	logrelid = pfg_catalog_relid("collection_stamp_log");
	if (!OidIsValid(logrelid))
	{
		MemoryContextReset(StampContext);
		return;
	}

	cxt = AllocSetContextCreate(CurrentMemoryContext, "profile_guard stamps flush",
								ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(cxt);

	/* before commit no statement is running: the write needs a snapshot */
	pushed = !ActiveSnapshotSet();
	if (pushed)
		PushActiveSnapshot(GetTransactionSnapshot());
	pfg_spi_connect();
	pfg_begin_catalog_access(&ca, false);
	/*
	 * No check per pair: the sweep merges only the pairs of tables guarded
	 * with stamps, and drops the others.
	 */
	for (int g = 0; g < npending_groups; g++)
	{
		StampGroup *grp = &pending[g];
		Datum		args[3];
		int			rc;

		if (grp->n == 0)
			continue;
		args[0] = ObjectIdGetDatum(grp->root);
		args[1] = CStringGetTextDatum(grp->tag);
		args[2] = PointerGetDatum(subjects_array(grp));
		rc = SPI_execute_plan(log_insert_plan(logrelid), args, NULL, false, 0);
		if (rc != SPI_OK_INSERT)
			elog(ERROR, "could not write the collection stamps: %s", SPI_result_code_string(rc));
	}
	pfg_end_catalog_access(&ca);
	pfg_spi_finish();
	if (pushed)
		PopActiveSnapshot();
	MemoryContextSwitchTo(old);
	MemoryContextDelete(cxt);

	/*
	 * Written: the groups stay, empty, with their memory, for the pairs
	 * that follow (a batch grows its arrays once per transaction)
	 */
	for (int g = 0; g < npending_groups; g++)
	{
		pending[g].n = 0;
		pending[g].data_used = 0;
	}
	groups = pending;
	ngroups = npending_groups;
	maxgroups = saved_maxgroups;
}

static void
stamp_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_PRE_COMMIT:
		case XACT_EVENT_PRE_PREPARE:
			flush_pending();
			break;
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PREPARE:
		case XACT_EVENT_PARALLEL_COMMIT:
		case XACT_EVENT_PARALLEL_ABORT:
			forget_pending();
			break;
		default:
			break;
	}
}

/*
 * A subtransaction that aborts drops the pairs it added: those added since
 * it began, by it or by subtransactions below it (numbered after it), the
 * end of each group.
 */
static void
stamp_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
					   SubTransactionId parentSubid, void *arg)
{
	if (event != SUBXACT_EVENT_ABORT_SUB)
		return;
	for (int g = 0; g < ngroups; g++)
	{
		StampGroup *grp = &groups[g];

		while (grp->n > 0 && grp->subids[grp->n - 1] >= mySubid)
		{
			grp->n--;
			npending--;
		}
		grp->data_used = grp->n > 0 ? grp->ends[grp->n - 1] : 0;
	}
}

/* the group of a guarded table and tag, made if need be */
static StampGroup *
find_group(Oid root, const char *tag)
{
	StampGroup *grp;

	if (last_group >= 0 && groups[last_group].root == root &&
		strcmp(groups[last_group].tag, tag) == 0)
		return &groups[last_group];
	for (int g = 0; g < ngroups; g++)
	{
		if (groups[g].root == root && strcmp(groups[g].tag, tag) == 0)
		{
			last_group = g;
			return &groups[g];
		}
	}

	if (StampContext == NULL)
		StampContext = AllocSetContextCreate(TopTransactionContext,
											 "profile_guard collection stamps",
											 ALLOCSET_DEFAULT_SIZES);
	if (ngroups == maxgroups)
	{
		maxgroups = Max(8, maxgroups * 2);
		groups = groups == NULL ?
			MemoryContextAlloc(StampContext, sizeof(StampGroup) * maxgroups) :
			repalloc(groups, sizeof(StampGroup) * maxgroups);
	}
	grp = &groups[ngroups];
	grp->root = root;
	grp->tag = MemoryContextStrdup(StampContext, tag);
	grp->n = 0;
	grp->size = 64;
	grp->ends = MemoryContextAlloc(StampContext, sizeof(uint32) * grp->size);
	grp->subids = MemoryContextAlloc(StampContext, sizeof(SubTransactionId) * grp->size);
	grp->data_size = 1024;
	grp->data_used = 0;
	grp->array = MemoryContextAlloc(StampContext, ARRAY_HEADER + grp->data_size);
	grp->data = grp->array + ARRAY_HEADER;
	last_group = ngroups++;
	return grp;
}

void
pfg_stamp_collected(Oid root, const char *subject, const char *tag)
{
	StampGroup *grp;
	size_t		len = strlen(subject);
	Size		element = VARHDRSZ + len;
	Size		padded = INTALIGN(element);
	char	   *dst;

	if (!callbacks_registered)
	{
		RegisterXactCallback(stamp_xact_callback, NULL);
		RegisterSubXactCallback(stamp_subxact_callback, NULL);
		callbacks_registered = true;
	}
	grp = find_group(root, tag);

	/*
	 * The same subject as the pair before (rows of one subject written one
	 * after the other): the pair is pending already, and stays so as long
	 * as this one would (the subtransaction that added it is this one, or
	 * one that this one's fate includes).  Other repeats are merged by the
	 * sweep.
	 */
	if (grp->n > 0)
	{
		const char *prev = grp->data + (grp->n > 1 ? grp->ends[grp->n - 2] : 0);

		if (VARSIZE(prev) == element && memcmp(VARDATA(prev), subject, len) == 0)
			return;
	}
	if (grp->n == grp->size)
	{
		grp->size *= 2;
		grp->ends = repalloc(grp->ends, sizeof(uint32) * grp->size);
		grp->subids = repalloc(grp->subids, sizeof(SubTransactionId) * grp->size);
	}
	if (grp->data_used + padded > grp->data_size)
	{
		Size		limit = MaxAllocSize - ARRAY_HEADER;
		Size		want = Min(Max(grp->data_size * 2, grp->data_used + padded), limit);

		if (grp->data_used + padded > limit)
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("too many collection stamps pending in one subtransaction"),
					 errdetail("The subjects collected for tag \"%s\" would exceed the largest array.",
							   tag),
					 errhint("Write fewer rows in one subtransaction, or release it (RELEASE SAVEPOINT) more often.")));
		grp->array = repalloc(grp->array, ARRAY_HEADER + want);
		grp->data = grp->array + ARRAY_HEADER;
		grp->data_size = want;
	}
	dst = grp->data + grp->data_used;
	SET_VARSIZE(dst, element);
	memcpy(VARDATA(dst), subject, len);
	memset(dst + element, 0, padded - element);
	grp->data_used += padded;
	grp->ends[grp->n] = (uint32) grp->data_used;
	grp->subids[grp->n] = GetCurrentSubTransactionId();
	grp->n++;

	/*
	 * Written early only outside any subtransaction: a write made inside one
	 * would take the outer transaction's pairs with it if it rolled back
	 */
	if (++npending >= PFG_STAMP_BATCH && GetCurrentTransactionNestLevel() == 1)
		flush_pending();
}
