/*-------------------------------------------------------------------------
 *
 * recipient_use.c
 *	  Owns the record of what was provided to recipients, per person
 *	  (rule 10a of docs/rules.md): under a purpose that names a recipient,
 *	  each cell a gate serves notes its subject; the notes are counted per
 *	  (purpose, subject), and before the transaction commits each purpose's
 *	  counts are appended to profile_guard.recipient_use_log as one row (the
 *	  subjects and their counts as two arrays, no index to update).  The
 *	  sweep merges the log into profile_guard.recipient_use, one row per
 *	  subject's keyed hash, purpose and month (_merge_recipient_use());
 *	  subject_report() reads both.
 *
 *	  Cells served in a transaction that then aborts were served all the
 *	  same: their notes outlive the transaction and are written with the
 *	  session's next commit, or in a transaction of their own when the
 *	  session ends.  Notes are forgotten only once the commit that wrote
 *	  them is done.  The gates are parallel restricted, so every
 *	  cell is served, and noted, in the backend that runs the statement.  In
 *	  a read-only transaction (and on a standby), where nothing could be
 *	  written, serving such a cell is refused.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/parallel.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "nodes/pg_list.h"
#include "storage/ipc.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"

#include "catalog.h"
#include "consent_cache.h"
#include "recipient_use.h"
#include "spi_checked.h"

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

/*
 * The running transaction: did it note a cell, did it start writing the
 * notes (before commit), and did the write end.  The notes are forgotten
 * only once the transaction that wrote them commits.
 */
static bool NotedInXact = false;
static bool WriteStarted = false;
static bool WriteDone = false;

/*
 * The entry noted last: the cells of one row are served one after another,
 * so an integer subject is looked up once a row
 */
static UseEntry *LastEntry = NULL;
static Datum LastSubject;
static Oid	LastType = InvalidOid;

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
	LastEntry = NULL;
	PendingUse = NULL;
	Purposes = NULL;
	MemoryContextReset(UseContext);
}

/*
 * Append the pending notes to profile_guard.recipient_use_log, one row per
 * purpose, in SPI, with the rights of our schema's owner.  They stay
 * pending until the transaction commits (use_xact_callback).  Only in a
 * read-write transaction: in any other the notes wait for the next.
 */
static void
flush_pending(void)
{
	Oid			argtypes[4] = {TEXTOID, TEXTOID, TEXTARRAYOID, INT8ARRAYOID};
	PfgCatalogAccess ca;
	MemoryContext cxt;
	MemoryContext old;
	bool		pushed;
	long		n;
	Datum	   *subjects;
	Datum	   *cells;
	List	   *rows = NIL;
	ListCell   *lc;

	if (PendingUse == NULL || (n = hash_get_num_entries(PendingUse)) == 0)
		return;
	if (XactReadOnly || IsInParallelMode())
		return;
	/* the extension was dropped, or is at a version without the record */
	if (!OidIsValid(pfg_catalog_relid("recipient_use_log")))
	{
		forget_pending();
		return;
	}

	cxt = AllocSetContextCreate(CurrentMemoryContext, "profile_guard recipient use flush",
								ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(cxt);
	subjects = palloc(sizeof(Datum) * n);
	cells = palloc(sizeof(Datum) * n);
	for (UsePurpose *p = Purposes; p != NULL; p = p->next)
	{
		HASH_SEQ_STATUS seq;
		UseEntry   *e;
		int			i = 0;
		Datum	   *args;

		hash_seq_init(&seq, PendingUse);
		while ((e = hash_seq_search(&seq)) != NULL)
		{
			if (e->key.purpose != p->purpose)
				continue;
			subjects[i] = CStringGetTextDatum(e->key.subject);
			cells[i] = Int64GetDatum(e->cells);
			i++;
		}
		if (i == 0)
			continue;
		args = palloc(sizeof(Datum) * 4);
		args[0] = CStringGetTextDatum(p->purpose);
		args[1] = CStringGetTextDatum(p->recipient);
		args[2] = PointerGetDatum(construct_array(subjects, i, TEXTOID, -1, false, TYPALIGN_INT));
		args[3] = PointerGetDatum(construct_array(cells, i, INT8OID, sizeof(int64),
												  FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
		rows = lappend(rows, args);
	}

	WriteStarted = true;
	pushed = !ActiveSnapshotSet();
	if (pushed)
		PushActiveSnapshot(GetTransactionSnapshot());
	pfg_spi_connect();
	pfg_begin_catalog_access(&ca, false);
	foreach(lc, rows)
	{
		Datum	   *args = (Datum *) lfirst(lc);
		int			rc;

		rc = SPI_execute_with_args("INSERT INTO profile_guard.recipient_use_log"
								   " (purpose, recipient, month, subjects, cells)"
								   " VALUES ($1, $2, pg_catalog.date_trunc('month',"
								   "         pg_catalog.now() AT TIME ZONE 'UTC')::pg_catalog.date, $3, $4)",
								   4, argtypes, args, NULL, false, 0);
		if (rc != SPI_OK_INSERT)
			elog(ERROR, "could not write the record of provided cells: %s",
				 SPI_result_code_string(rc));
	}
	pfg_end_catalog_access(&ca);
	pfg_spi_finish();
	if (pushed)
		PopActiveSnapshot();
	MemoryContextSwitchTo(old);
	MemoryContextDelete(cxt);
	WriteDone = true;
}

/*
 * Before commit the notes are written; they are forgotten once that commit
 * is done.  A transaction that noted cells and was then made read-only
 * cannot commit: its notes could not be written.  Nor can a transaction
 * with notes to write be prepared: they would be forgotten here while the
 * prepared transaction that holds them may still be rolled back.  An abort keeps the notes
 * for the next commit (or the session's end, use_exit_callback), unless
 * writing them is what failed: then they are dropped, with a warning, so
 * that the session's next commits do not fail the same way.
 */
static void
use_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_PRE_PREPARE:
			if (PendingUse != NULL && hash_get_num_entries(PendingUse) > 0)
				ereport(ERROR,
						(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						 errmsg("cannot prepare a transaction that served cells to a recipient"),
						 errdetail("The cells provided to a recipient are recorded for the persons they concern by the commit of the transaction that served them; a prepared transaction may still be rolled back by another session."),
						 errhint("Commit the transaction directly, or read under a purpose that names a recipient in a transaction of its own.")));
			/* FALLTHROUGH */
		case XACT_EVENT_PRE_COMMIT:
			if (NotedInXact && XactReadOnly && !RecoveryInProgress())
				ereport(ERROR,
						(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
						 errmsg("cannot commit a read-only transaction that served cells to a recipient"),
						 errdetail("The cells provided to a recipient are recorded for the persons they concern when the transaction commits, which a read-only transaction cannot do."),
						 errhint("Do not make a transaction read-only after reading under a purpose that names a recipient.")));
			flush_pending();
			break;
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PREPARE:
			if (WriteDone)
				forget_pending();
			NotedInXact = WriteStarted = WriteDone = false;
			break;
		case XACT_EVENT_ABORT:
			if (WriteStarted && !WriteDone && PendingUse != NULL)
			{
				ereport(WARNING,
						(errmsg("the record of %ld subjects' cells provided to recipients could not be written",
								hash_get_num_entries(PendingUse)),
						 errdetail("The audit trail still has the statements that served them.")));
				forget_pending();
			}
			NotedInXact = WriteStarted = WriteDone = false;
			break;
		default:
			break;
	}
}

/*
 * The session ends with notes still pending (written by no commit since
 * they were made, e.g. after a rollback): write them in a transaction of
 * their own, as PostgreSQL removes a session's temporary tables.
 */
static void
use_exit_callback(int code, Datum arg)
{
	if (PendingUse == NULL || hash_get_num_entries(PendingUse) == 0 ||
		RecoveryInProgress())
		return;
	AbortOutOfAnyTransaction();
	StartTransactionCommand();
	XactReadOnly = false;		/* the notes were made in read-write transactions */
	CommitTransactionCommand(); /* use_xact_callback writes them */
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
		before_shmem_exit(use_exit_callback, (Datum) 0);
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

	NotedInXact = true;
	p = intern_purpose(purpose, recipient);
	if (LastEntry != NULL && LastEntry->key.purpose == p->purpose &&
		LastType == typid && LastSubject == subject &&
		(typid == INT4OID || typid == INT8OID))
	{
		LastEntry->cells++;
		return;
	}
	key.purpose = p->purpose;
	key.subject = pfg_subject_text(subject, typid);
	e = hash_search(PendingUse, &key, HASH_ENTER, &found);
	if (!found)
	{
		/* the key's string is the caller's: keep a copy of it */
		e->key.subject = MemoryContextStrdup(UseContext, key.subject);
		e->recipient = p->recipient;
		e->cells = 0;
	}
	e->cells++;
	LastEntry = e;
	LastSubject = subject;
	LastType = typid;
}
