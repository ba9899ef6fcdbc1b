/*-------------------------------------------------------------------------
 *
 * recipient_use.c
 *	  Owns the record of what was provided to recipients, per person
 *	  (rule 10a of docs/rules.md): under a purpose that names a recipient,
 *	  each cell a gate serves notes its subject; the notes are counted per
 *	  (purpose, subject) and added to profile_guard.recipient_use, under the
 *	  subject's keyed hash (subject_hash.c) and the month, before the
 *	  transaction commits.  subject_report() reads them back.
 *
 *	  Cells served in a transaction that then aborts were served all the
 *	  same: their notes outlive the transaction and are written with the
 *	  session's next commit.  The gates are parallel restricted, so every
 *	  cell is served, and noted, in the backend that runs the statement.  In
 *	  a read-only transaction (and on a standby), where nothing could be
 *	  written, serving such a cell is refused.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/parallel.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"

#include "catalog.h"
#include "consent_cache.h"
#include "recipient_use.h"
#include "spi_checked.h"
#include "subject_hash.h"

typedef struct UseKey
{
	const char *purpose;		/* interned in UseContext: compared by address */
	const char *subject;
} UseKey;

typedef struct UseEntry
{
	UseKey		key;
	const char *recipient;
	int64		cells;
} UseEntry;

/* the purposes met since the last write, so their names are interned once */
typedef struct UsePurpose
{
	char	   *purpose;
	char	   *recipient;
	struct UsePurpose *next;
} UsePurpose;

static MemoryContext UseContext = NULL;	/* child of TopMemoryContext */
static HTAB *PendingUse = NULL;
static UsePurpose *Purposes = NULL;
static bool callback_registered = false;

static uint32
use_hash(const void *key, Size keysize)
{
	const UseKey *k = (const UseKey *) key;

	return hash_combine(hash_bytes((const unsigned char *) &k->purpose, sizeof(k->purpose)),
						hash_bytes((const unsigned char *) k->subject, strlen(k->subject)));
}

static int
use_match(const void *key1, const void *key2, Size keysize)
{
	const UseKey *a = (const UseKey *) key1;
	const UseKey *b = (const UseKey *) key2;

	if (a->purpose != b->purpose)
		return 1;
	return strcmp(a->subject, b->subject);
}

static void
forget_pending(void)
{
	PendingUse = NULL;
	Purposes = NULL;
	MemoryContextReset(UseContext);
}

/*
 * Add the pending notes to profile_guard.recipient_use, in SPI, with the
 * rights of our schema's owner.  Only in a read-write transaction: in any
 * other the notes wait for the next.
 */
static void
flush_pending(void)
{
	HASH_SEQ_STATUS seq;
	UseEntry   *e;
	long		n;
	Datum	   *hashes;
	Datum	   *purposes;
	Datum	   *recipients;
	Datum	   *cells;
	int			i = 0;
	Oid			argtypes[4] = {TEXTARRAYOID, TEXTARRAYOID, TEXTARRAYOID, INT8ARRAYOID};
	Datum		args[4];
	PfgCatalogAccess ca;
	int			rc;
	MemoryContext cxt;
	MemoryContext old;
	bool		pushed;

	if (PendingUse == NULL || (n = hash_get_num_entries(PendingUse)) == 0)
		return;
	if (XactReadOnly || IsInParallelMode())
		return;
	/* the extension was dropped, or is at a version without the record */
	if (!OidIsValid(pfg_catalog_relid("recipient_use")))
	{
		forget_pending();
		return;
	}

	cxt = AllocSetContextCreate(CurrentMemoryContext, "profile_guard recipient use flush",
								ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(cxt);
	hashes = palloc(sizeof(Datum) * n);
	purposes = palloc(sizeof(Datum) * n);
	recipients = palloc(sizeof(Datum) * n);
	cells = palloc(sizeof(Datum) * n);
	hash_seq_init(&seq, PendingUse);
	while ((e = hash_seq_search(&seq)) != NULL)
	{
		char		h[PFG_SUBJECT_HASH_HEX + 1];

		pfg_subject_hash(e->key.subject, h);
		hashes[i] = CStringGetTextDatum(h);
		purposes[i] = CStringGetTextDatum(e->key.purpose);
		recipients[i] = CStringGetTextDatum(e->recipient);
		cells[i] = Int64GetDatum(e->cells);
		i++;
	}
	args[0] = PointerGetDatum(construct_array(hashes, i, TEXTOID, -1, false, TYPALIGN_INT));
	args[1] = PointerGetDatum(construct_array(purposes, i, TEXTOID, -1, false, TYPALIGN_INT));
	args[2] = PointerGetDatum(construct_array(recipients, i, TEXTOID, -1, false, TYPALIGN_INT));
	args[3] = PointerGetDatum(construct_array(cells, i, INT8OID, sizeof(int64),
											  FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));

	/* written once: should the write fail, the transaction aborts anyway */
	forget_pending();

	pushed = !ActiveSnapshotSet();
	if (pushed)
		PushActiveSnapshot(GetTransactionSnapshot());
	pfg_spi_connect();
	pfg_begin_catalog_access(&ca, false);
	rc = SPI_execute_with_args("INSERT INTO profile_guard.recipient_use AS u"
							   " (subject_hash, purpose, recipient, month, cells)"
							   " SELECT x.h, x.p, x.r,"
							   "        pg_catalog.date_trunc('month', pg_catalog.now() AT TIME ZONE 'UTC')::pg_catalog.date,"
							   "        x.c"
							   "   FROM ROWS FROM (pg_catalog.unnest($1), pg_catalog.unnest($2),"
							   "                   pg_catalog.unnest($3), pg_catalog.unnest($4))"
							   "        x(h, p, r, c)"
							   " ON CONFLICT (subject_hash, purpose, recipient, month)"
							   " DO UPDATE SET cells = u.cells + excluded.cells",
							   4, argtypes, args, NULL, false, 0);
	if (rc != SPI_OK_INSERT)
		elog(ERROR, "could not write the record of provided cells: %s",
			 SPI_result_code_string(rc));
	pfg_end_catalog_access(&ca);
	pfg_spi_finish();
	if (pushed)
		PopActiveSnapshot();
	MemoryContextSwitchTo(old);
	MemoryContextDelete(cxt);
}

/* the notes are written before commit; an abort keeps them for the next */
static void
use_xact_callback(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_PRE_COMMIT || event == XACT_EVENT_PRE_PREPARE)
		flush_pending();
}

/* the interned name of a purpose, and its recipient's */
static UsePurpose *
intern_purpose(const char *purpose, const char *recipient)
{
	UsePurpose *p;

	for (p = Purposes; p != NULL; p = p->next)
	{
		if (strcmp(p->purpose, purpose) == 0 && strcmp(p->recipient, recipient) == 0)
			return p;
	}
	p = MemoryContextAlloc(UseContext, sizeof(UsePurpose));
	p->purpose = MemoryContextStrdup(UseContext, purpose);
	p->recipient = MemoryContextStrdup(UseContext, recipient);
	p->next = Purposes;
	Purposes = p;
	return p;
}

void
pfg_recipient_use_note(const char *purpose, const char *recipient,
					   Datum subject, Oid typid)
{
	UsePurpose *p;
	UseKey		key;
	UseEntry   *e;
	bool		found;

	if (XactReadOnly)
		ereport(ERROR,
				(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
				 errmsg("purpose \"%s\" provides profiles to recipient \"%s\" and cannot be served in a read-only transaction",
						purpose, recipient),
				 errdetail("Each cell provided to a recipient is recorded for the person it concerns, which needs a read-write transaction."),
				 errhint("Read under this purpose in a read-write transaction on the primary server.")));
	/* the gates are parallel restricted: never run by a worker */
	if (IsParallelWorker())
		elog(ERROR, "a cell for recipient \"%s\" was served by a parallel worker", recipient);

	if (UseContext == NULL)
		UseContext = AllocSetContextCreate(TopMemoryContext,
										   "profile_guard recipient use",
										   ALLOCSET_DEFAULT_SIZES);
	if (!callback_registered)
	{
		RegisterXactCallback(use_xact_callback, NULL);
		callback_registered = true;
	}
	if (PendingUse == NULL)
	{
		HASHCTL		ctl;

		memset(&ctl, 0, sizeof(ctl));
		ctl.keysize = sizeof(UseKey);
		ctl.entrysize = sizeof(UseEntry);
		ctl.hash = use_hash;
		ctl.match = use_match;
		ctl.hcxt = UseContext;
		PendingUse = hash_create("profile_guard recipient use", 256, &ctl,
								 HASH_ELEM | HASH_FUNCTION | HASH_COMPARE | HASH_CONTEXT);
	}

	p = intern_purpose(purpose, recipient);
	key.purpose = p->purpose;
	key.subject = pfg_subject_text(subject, typid);
	e = hash_search(PendingUse, &key, HASH_FIND, &found);
	if (!found)
	{
		key.subject = MemoryContextStrdup(UseContext, key.subject);
		e = hash_search(PendingUse, &key, HASH_ENTER, NULL);
		e->recipient = p->recipient;
		e->cells = 0;
	}
	e->cells++;
}
