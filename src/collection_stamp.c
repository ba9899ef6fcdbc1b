/*-------------------------------------------------------------------------
 *
 * collection_stamp.c
 *	  Owns the collection stamps of guarded tables protected without a
 *	  collected-at column that have them switched on (stamp_collection,
 *	  off by default): profile_guard.collection_stamp holds, per guarded
 *	  table, subject and tag, when the tag was last collected, for the
 *	  sweep's retention (docs/erasure.md).  The write path (collect.c)
 *	  reports each (subject, tag) a row writes; the pairs are kept in a hash
 *	  table of the transaction, one entry per distinct pair, and written
 *	  with one INSERT ... ON CONFLICT DO UPDATE before the transaction
 *	  commits (or earlier, once PFG_STAMP_BATCH pairs are pending).  A
 *	  subtransaction that aborts takes its pairs with it.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"

#include "catalog.h"
#include "collection_stamp.h"
#include "spi_checked.h"

/* pending pairs written at once before commit, or as soon as there are this many */
#define PFG_STAMP_BATCH 8192

typedef struct StampKey
{
	Oid			root;
	const char *subject;
	const char *tag;
} StampKey;

typedef struct StampEntry
{
	StampKey	key;			/* hash key: strings in StampContext */
	SubTransactionId subid;		/* the subtransaction that added it */
} StampEntry;

static MemoryContext StampContext = NULL;	/* child of TopTransactionContext */
static HTAB *PendingStamps = NULL;
static bool callbacks_registered = false;

static uint32
stamp_hash(const void *key, Size keysize)
{
	const StampKey *k = (const StampKey *) key;
	uint32		h = hash_bytes_uint32((uint32) k->root);

	h = hash_combine(h, hash_bytes((const unsigned char *) k->subject, strlen(k->subject)));
	return hash_combine(h, hash_bytes((const unsigned char *) k->tag, strlen(k->tag)));
}

static int
stamp_match(const void *key1, const void *key2, Size keysize)
{
	const StampKey *a = (const StampKey *) key1;
	const StampKey *b = (const StampKey *) key2;

	if (a->root != b->root || strcmp(a->subject, b->subject) != 0)
		return 1;
	return strcmp(a->tag, b->tag);
}

static void
forget_pending(void)
{
	PendingStamps = NULL;
	StampContext = NULL;		/* freed with TopTransactionContext */
}

/* write every pending pair, in SPI, with the rights of our schema's owner */
static void
flush_pending(void)
{
	HASH_SEQ_STATUS seq;
	StampEntry *e;
	long		n;
	Datum	   *roots;
	Datum	   *subjects;
	Datum	   *tags;
	int			i = 0;
	Oid			argtypes[3] = {OIDARRAYOID, TEXTARRAYOID, TEXTARRAYOID};
	Datum		args[3];
	PfgCatalogAccess ca;
	int			rc;
	MemoryContext cxt;
	MemoryContext old;
	bool		pushed;

	if (PendingStamps == NULL || (n = hash_get_num_entries(PendingStamps)) == 0)
		return;
	/* a database still at a version without stamps: nothing to write to */
	if (!OidIsValid(pfg_catalog_relid("collection_stamp")))
	{
		PendingStamps = NULL;
		MemoryContextReset(StampContext);
		return;
	}

	cxt = AllocSetContextCreate(CurrentMemoryContext, "profile_guard stamps flush",
								ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(cxt);
	roots = palloc(sizeof(Datum) * n);
	subjects = palloc(sizeof(Datum) * n);
	tags = palloc(sizeof(Datum) * n);
	hash_seq_init(&seq, PendingStamps);
	while ((e = hash_seq_search(&seq)) != NULL)
	{
		roots[i] = ObjectIdGetDatum(e->key.root);
		subjects[i] = CStringGetTextDatum(e->key.subject);
		tags[i] = CStringGetTextDatum(e->key.tag);
		i++;
	}
	args[0] = PointerGetDatum(construct_array(roots, i, OIDOID, sizeof(Oid), true, TYPALIGN_INT));
	args[1] = PointerGetDatum(construct_array(subjects, i, TEXTOID, -1, false, TYPALIGN_INT));
	args[2] = PointerGetDatum(construct_array(tags, i, TEXTOID, -1, false, TYPALIGN_INT));

	/* the pairs are written once: an error aborts the transaction anyway */
	PendingStamps = NULL;
	MemoryContextReset(StampContext);

	/* before commit no statement is running: the write needs a snapshot */
	pushed = !ActiveSnapshotSet();
	if (pushed)
		PushActiveSnapshot(GetTransactionSnapshot());
	pfg_spi_connect();
	pfg_begin_catalog_access(&ca, false);
	/*
	 * No check per stamp: the stamps of a table unprotected meanwhile are
	 * deleted by the next complete sweep.
	 */
	rc = SPI_execute_with_args("INSERT INTO profile_guard.collection_stamp AS s"
							   " (relid, subject, tag, collected_at)"
							   " SELECT x.r::pg_catalog.regclass, x.s, x.t, pg_catalog.now()"
							   "   FROM ROWS FROM (pg_catalog.unnest($1), pg_catalog.unnest($2),"
							   "                   pg_catalog.unnest($3)) x(r, s, t)"
							   " ON CONFLICT (relid, subject, tag)"
							   " DO UPDATE SET collected_at = excluded.collected_at",
							   3, argtypes, args, NULL, false, 0);
	if (rc != SPI_OK_INSERT)
		elog(ERROR, "could not write the collection stamps: %s", SPI_result_code_string(rc));
	pfg_end_catalog_access(&ca);
	pfg_spi_finish();
	if (pushed)
		PopActiveSnapshot();
	MemoryContextSwitchTo(old);
	MemoryContextDelete(cxt);
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
 * it began, by it or by subtransactions below it (numbered after it).
 */
static void
stamp_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
					   SubTransactionId parentSubid, void *arg)
{
	HASH_SEQ_STATUS seq;
	StampEntry *e;

	if (event != SUBXACT_EVENT_ABORT_SUB || PendingStamps == NULL)
		return;
	hash_seq_init(&seq, PendingStamps);
	while ((e = hash_seq_search(&seq)) != NULL)
	{
		if (e->subid >= mySubid)
			(void) hash_search(PendingStamps, &e->key, HASH_REMOVE, NULL);
	}
}

void
pfg_stamp_collected(Oid root, const char *subject, const char *tag)
{
	StampKey	key;
	StampEntry *e;
	bool		found;

	if (!callbacks_registered)
	{
		RegisterXactCallback(stamp_xact_callback, NULL);
		RegisterSubXactCallback(stamp_subxact_callback, NULL);
		callbacks_registered = true;
	}
	if (PendingStamps == NULL)
	{
		HASHCTL		ctl;

		if (StampContext == NULL)
			StampContext = AllocSetContextCreate(TopTransactionContext,
												 "profile_guard collection stamps",
												 ALLOCSET_DEFAULT_SIZES);
		memset(&ctl, 0, sizeof(ctl));
		ctl.keysize = sizeof(StampKey);
		ctl.entrysize = sizeof(StampEntry);
		ctl.hash = stamp_hash;
		ctl.match = stamp_match;
		ctl.hcxt = StampContext;
		PendingStamps = hash_create("profile_guard collection stamps", 256, &ctl,
									HASH_ELEM | HASH_FUNCTION | HASH_COMPARE | HASH_CONTEXT);
	}

	key.root = root;
	key.subject = subject;
	key.tag = tag;
	(void) hash_search(PendingStamps, &key, HASH_FIND, &found);
	if (found)
		return;
	key.subject = MemoryContextStrdup(StampContext, subject);
	key.tag = MemoryContextStrdup(StampContext, tag);
	e = hash_search(PendingStamps, &key, HASH_ENTER, NULL);
	e->subid = GetCurrentSubTransactionId();

	if (hash_get_num_entries(PendingStamps) >= PFG_STAMP_BATCH)
		flush_pending();
}
