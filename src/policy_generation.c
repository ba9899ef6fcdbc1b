/*-------------------------------------------------------------------------
 *
 * policy_generation.c
 *	  What every cache of consent answers follows, in each backend and in
 *	  shared memory:
 *
 *	  - the policy generation, a counter in profile_guard.policy_generation
 *	    that every policy-wide change advances (_policy_changed: tags,
 *	    purposes and their roles, classification).  Answers are built for
 *	    one generation and rebuilt when it moves;
 *	  - the log of changed subjects, profile_guard.subject_change: one row
 *	    per subject, stamped with the transaction that last changed its
 *	    answers (_subject_changed: consent, block, opt-out, erasure request,
 *	    registration).  A cache that has applied the log up to a horizon
 *	    reads only the rows of transactions that were still running, or had
 *	    not started, when it last looked.  A subject forgotten after its
 *	    erasure (_forget_subject) leaves its entry until the next sweep,
 *	    which replaces it by the marker '' (never a subject): a cache that
 *	    reads the marker reads all its answers again;
 *	  - the signals that either moved: relcache invalidations of the consent
 *	    table (policy) and of the generation's table (subjects: a table that
 *	    no plan kept for looking subjects up reads, so that none is planned
 *	    again), sent when the changing transaction commits, and replayed
 *	    from its commit record on hot standbys.  invalidation.c routes them
 *	    here; they only mark;
 *	  - what the running transaction changed itself, which no one else may
 *	    see before it commits.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/transam.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/xid8.h"

#include "extension.h"
#include "settings.h"
#include "catalog.h"
#include "data_key.h"
#include "invalidation.h"
#include "policy_generation.h"
#include "shared_answers.h"
#include "spi_checked.h"

PFG_SQL_FUNCTION(profile_guard_policy_changed);
PFG_SQL_FUNCTION(profile_guard_subject_changed);

/*
 * a subject's text as a hash key: identifiers are at most 200 characters,
 * each of up to MAX_MULTIBYTE_CHAR_LEN bytes
 */
#define SUBJECT_KEY_SIZE (PFG_MAX_SUBJECT_CHARS * MAX_MULTIBYTE_CHAR_LEN + 1)

static bool PolicySignal = true;	/* re-read the generation */
static bool SubjectSignal = true;	/* read the log of changed subjects */

/* advances with every signal: a cache compares it with the last it saw */
uint64		pfg_policy_signals = 1;
static uint64 KnownGeneration = 0;
static Oid	PolicyRelid = InvalidOid;	/* the consent table */
static Oid	SubjectsRelid = InvalidOid; /* the generation's table */

/* this transaction's own changes */
static bool PolicyChangedHere = false;
static MemoryContext ChangedHereContext = NULL;
static HTAB *SubjectsChangedHere = NULL;
bool		pfg_policy_subjects_changed_here = false;	/* SubjectsChangedHere != NULL */

/*
 * Relcache handler (invalidation.c).  Relation ids are compared with the
 * last ones looked up; until then, only a reset signals.
 */
void
pfg_policy_generation_relcache_invalidated(Oid relid)
{
	if (relid == InvalidOid)
	{
		PolicySignal = true;
		SubjectSignal = true;
		PolicyRelid = SubjectsRelid = InvalidOid;
		pfg_policy_signals++;
	}
	else if (relid == PolicyRelid)
	{
		PolicySignal = true;
		pfg_policy_signals++;
	}
	else if (relid == SubjectsRelid)
	{
		SubjectSignal = true;
		pfg_policy_signals++;
	}
}

/* the two tables, as they are now (the extension may have been re-created) */
static void
look_up_relids(void)
{
	PolicyRelid = pfg_catalog_relid("consent");
	SubjectsRelid = pfg_catalog_relid("policy_generation");
}

/*
 * At the end of a transaction that changed subjects, whatever this backend
 * read of them meanwhile (its own, uncommitted view) must be read again:
 * signal a look at the log, which holds them once committed.  Their rows
 * carry this transaction's id, which every horizon taken meanwhile lists as
 * running (pfg_policy_horizon_of).
 */
static void
policy_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_COMMIT:
		case XACT_EVENT_PARALLEL_ABORT:
		case XACT_EVENT_PREPARE:
			if (PolicyChangedHere)
				PolicySignal = true;
			if (SubjectsChangedHere != NULL)
				SubjectSignal = true;
			if (PolicyChangedHere || SubjectsChangedHere != NULL)
				pfg_policy_signals++;
			PolicyChangedHere = false;
			SubjectsChangedHere = NULL;
			pfg_policy_subjects_changed_here = false;
			if (ChangedHereContext != NULL)
				MemoryContextReset(ChangedHereContext);
			break;
		default:
			break;
	}
}

void
pfg_policy_generation_init(void)
{
	RegisterXactCallback(policy_xact_callback, NULL);
}

/*
 * Consent is policy: every read of it, in every isolation level, sees what
 * is committed now (and this transaction's own changes), like a foreign-key
 * check does, so that a withdrawal counts from the next statement of every
 * session.  During a parallel operation no snapshot can be taken: the
 * statement's own serves (that of the leader, in a worker).
 */
Snapshot
pfg_policy_snapshot(void)
{
	if (IsInParallelMode())
		return ActiveSnapshotSet() ? GetActiveSnapshot() : GetTransactionSnapshot();
	return GetLatestSnapshot();
}

bool
pfg_policy_generation_signalled(void)
{
	return PolicySignal;
}

bool
pfg_policy_subjects_signalled(void)
{
	return SubjectSignal;
}

void
pfg_policy_subjects_signal_consumed(void)
{
	SubjectSignal = false;
}

/* the signal could not be acted on (an error): act on it next time */
void
pfg_policy_subjects_signal_again(void)
{
	SubjectSignal = true;
	pfg_policy_signals++;
}

/*
 * The policy generation now (0 while the extension's catalog is absent),
 * read again only after a signal.  The signal is cleared before the read,
 * so that one arriving during it is kept.
 */
uint64
pfg_policy_generation_current(void)
{
	PfgCatalogAccess ca;
	int			rc;

	if (!PolicySignal && KnownGeneration != 0)
		return KnownGeneration;
	PolicySignal = false;
	look_up_relids();
	if (!OidIsValid(PolicyRelid))
	{
		KnownGeneration = 0;
		return 0;
	}
	if (!OidIsValid(SubjectsRelid))
	{
		/*
		 * A catalog not yet updated to this version: every signal is a new
		 * generation, private to this backend (answers are not shared).
		 */
		static uint64 unshared = UINT64CONST(1) << 63;

		KnownGeneration = ++unshared;
		return KnownGeneration;
	}
	PG_TRY();
	{
		pfg_spi_connect();
		pfg_begin_catalog_access(&ca, false);
		PushActiveSnapshot(pfg_policy_snapshot());
		rc = SPI_execute("SELECT generation FROM profile_guard.policy_generation", true, 1);
		if (rc != SPI_OK_SELECT)
			elog(ERROR, "could not read the policy generation: %s", SPI_result_code_string(rc));
		if (SPI_processed == 1)
		{
			bool		isnull;
			Datum		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);

			KnownGeneration = isnull ? 0 : (uint64) DatumGetInt64(d);
		}
		else
			KnownGeneration = 0;
		PopActiveSnapshot();
		pfg_end_catalog_access(&ca);
		pfg_spi_finish();
	}
	PG_CATCH();
	{
		PolicySignal = true;	/* read it again next time */
		pfg_policy_signals++;
		PG_RE_THROW();
	}
	PG_END_TRY();
	return KnownGeneration;
}

/* a running or recent xid as a full one, relative to the next one */
static FullTransactionId
widen_xid(TransactionId xid, FullTransactionId next)
{
	uint32		epoch = EpochFromFullTransactionId(next);

	if (xid > XidFromFullTransactionId(next))
		epoch--;
	return FullTransactionIdFromEpochAndXid(epoch, xid);
}

/*
 * The horizon of what a snapshot sees of the log: the transactions it saw
 * as running, those it had not seen start, and this transaction (whose own
 * changes it sees, uncommitted).  On a standby the running ones are in
 * subxip; when they overflowed there, everything from xmin on is read again.
 */
void
pfg_policy_horizon_of(Snapshot snapshot, ChangeHorizon *horizon, MemoryContext cxt)
{
	FullTransactionId next = ReadNextFullTransactionId();
	TransactionId *xids = snapshot->takenDuringRecovery ? snapshot->subxip : snapshot->xip;
	int			nxids = snapshot->takenDuringRecovery ? snapshot->subxcnt : snapshot->xcnt;
	TransactionId own = GetTopTransactionIdIfAny();

	if (snapshot->takenDuringRecovery && snapshot->suboverflowed)
	{
		horizon->xmax = widen_xid(snapshot->xmin, next);
		horizon->nxip = 0;
		horizon->xip = NULL;
		return;
	}
	horizon->xmax = widen_xid(snapshot->xmax, next);
	horizon->xip = MemoryContextAlloc(cxt, sizeof(FullTransactionId) * (nxids + 1));
	horizon->nxip = 0;
	for (int i = 0; i < nxids; i++)
		horizon->xip[horizon->nxip++] = widen_xid(xids[i], next);
	if (TransactionIdIsValid(own))
		horizon->xip[horizon->nxip++] = widen_xid(own, next);
}

/* is xid among the snapshot's running transactions? */
static bool
snapshot_lists_running(Snapshot snapshot, TransactionId xid)
{
	for (uint32 i = 0; i < snapshot->xcnt; i++)
		if (snapshot->xip[i] == xid)
			return true;
	return false;
}

/*
 * Has the horizon seen finish every transaction that the snapshot sees
 * finished?  Then the log holds nothing new for the snapshot, and need not
 * be read: every transaction from the horizon's xmax up to the snapshot's
 * must still be running in the snapshot, and so must every transaction the
 * horizon saw running.  (Not answered for a standby's snapshots.)
 */
bool
pfg_policy_horizon_covers(const ChangeHorizon *horizon, Snapshot snapshot)
{
	FullTransactionId next = ReadNextFullTransactionId();
	uint64		snap_xmax;
	uint64		horizon_xmax = U64FromFullTransactionId(horizon->xmax);

	if (snapshot->takenDuringRecovery)
		return false;
	snap_xmax = U64FromFullTransactionId(widen_xid(snapshot->xmax, next));
	if (snap_xmax > horizon_xmax)
	{
		if (snap_xmax - horizon_xmax > snapshot->xcnt)
			return false;
		for (uint64 x = horizon_xmax; x < snap_xmax; x++)
			if (!snapshot_lists_running(snapshot, (TransactionId) x))
				return false;
	}
	for (int i = 0; i < horizon->nxip; i++)
	{
		uint64		x = U64FromFullTransactionId(horizon->xip[i]);

		if (x < snap_xmax &&
			!snapshot_lists_running(snapshot, (TransactionId) x))
			return false;
	}
	return true;
}

/*
 * The subjects changed by transactions the horizon did not see finish, as
 * a list of palloc'd C strings, read under the active snapshot (inside SPI,
 * with catalog access).
 */
List *
pfg_policy_changed_subjects(const ChangeHorizon *since)
{
	static SPIPlanPtr plan = NULL;
	Datum		args[2];
	Datum	   *xids;
	List	   *subjects = NIL;
	int			rc;

	if (plan == NULL)
	{
		Oid			argtypes[2] = {XID8OID, XID8ARRAYOID};

		/* two index scans: the newer transactions, and those then running */
		plan = pfg_keep_catalog_plan(
			"SELECT c.subject FROM profile_guard.subject_change c"
			" WHERE c.changed_by OPERATOR(pg_catalog.>=) $1"
			" UNION ALL "
			"SELECT c.subject FROM profile_guard.subject_change c"
			" WHERE c.changed_by OPERATOR(pg_catalog.=) ANY ($2)"
			"   AND c.changed_by OPERATOR(pg_catalog.<) $1",
			2, argtypes);
	}
	xids = palloc(sizeof(Datum) * Max(since->nxip, 1));
	for (int i = 0; i < since->nxip; i++)
		xids[i] = FullTransactionIdGetDatum(since->xip[i]);
	args[0] = FullTransactionIdGetDatum(since->xmax);
	args[1] = PointerGetDatum(construct_array(xids, since->nxip, XID8OID,
											  sizeof(FullTransactionId), FLOAT8PASSBYVAL,
											  TYPALIGN_DOUBLE));
	rc = SPI_execute_plan(plan, args, NULL, true, 0);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "could not read the changed subjects: %s", SPI_result_code_string(rc));
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		bool		isnull;
		Datum		d = SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull);

		if (!isnull)
			subjects = lappend(subjects, TextDatumGetCString(d));
	}
	SPI_freetuptable(SPI_tuptable);
	return subjects;
}

/* has this transaction changed policy (its own answers differ)? */
bool
pfg_policy_changed_here(void)
{
	return PolicyChangedHere;
}

/*
 * The subjects this transaction changed are keyed by their text, held in
 * ChangedHereContext: an entry takes what its subject takes, not the
 * longest identifier's room (a transaction may register a million).
 */
static uint32
changed_subject_hash(const void *key, Size keysize)
{
	const char *subject = *(const char *const *) key;

	return hash_bytes((const unsigned char *) subject, (int) strlen(subject));
}

static int
changed_subject_match(const void *key1, const void *key2, Size keysize)
{
	return strcmp(*(const char *const *) key1, *(const char *const *) key2);
}

static void *
changed_subject_copy(void *dest, const void *src, Size keysize)
{
	*(const char **) dest = MemoryContextStrdup(ChangedHereContext, *(const char *const *) src);
	return dest;
}

/* has this transaction changed the subject's answers? */
bool
pfg_policy_subject_changed_here(const char *data, uint32 len)
{
	char		buf[SUBJECT_KEY_SIZE];
	const char *key = buf;

	if (SubjectsChangedHere == NULL)
		return false;
	if (len >= SUBJECT_KEY_SIZE)
		return true;			/* not a subject identifier: ask the catalog */
	memcpy(buf, data, len);
	buf[len] = '\0';
	return hash_search(SubjectsChangedHere, &key, HASH_FIND, NULL) != NULL;
}

/* subject: an identifier shorter than SUBJECT_KEY_SIZE (the caller checks) */
static void
note_subject_changed_here(const char *subject)
{
	Assert(strlen(subject) < SUBJECT_KEY_SIZE);
	if (SubjectsChangedHere == NULL)
	{
		HASHCTL		ctl;

		if (ChangedHereContext == NULL)
			ChangedHereContext = AllocSetContextCreate(TopMemoryContext,
													   "profile_guard changes of this transaction",
													   ALLOCSET_SMALL_SIZES);
		ctl.keysize = sizeof(const char *);
		ctl.entrysize = sizeof(const char *);
		ctl.hash = changed_subject_hash;
		ctl.match = changed_subject_match;
		ctl.keycopy = changed_subject_copy;
		ctl.hcxt = ChangedHereContext;
		SubjectsChangedHere = hash_create("profile_guard subjects changed here", 64, &ctl,
										  HASH_ELEM | HASH_FUNCTION | HASH_COMPARE |
										  HASH_KEYCOPY | HASH_CONTEXT);
		pfg_policy_subjects_changed_here = true;
	}
	(void) hash_search(SubjectsChangedHere, &subject, HASH_ENTER, NULL);
}

/*
 * _policy_changed(relation regclass DEFAULT NULL)
 *
 * Advance the policy generation and queue a relcache invalidation of the
 * consent table (the policy signal) and, when given, of the guarded
 * relation, so that at commit every backend — and every hot standby,
 * through the commit record — drops what it derived from policy.
 */
Datum
profile_guard_policy_changed(PG_FUNCTION_ARGS)
{
	PfgCatalogAccess ca;
	int			rc;

	pfg_require_preload();
	look_up_relids();
	pfg_spi_connect();
	pfg_begin_catalog_access(&ca, false);
	if (OidIsValid(SubjectsRelid))
	{
		rc = SPI_execute("UPDATE profile_guard.policy_generation"
						 "   SET generation = generation OPERATOR(pg_catalog.+) 1", false, 0);
		if (rc != SPI_OK_UPDATE)
			elog(ERROR, "could not advance the policy generation: %s", SPI_result_code_string(rc));
	}
	pfg_end_catalog_access(&ca);
	pfg_spi_finish();

	PolicyChangedHere = true;
	pfg_shared_answers_note_change();
	if (OidIsValid(PolicyRelid))
		CacheInvalidateRelcacheByRelid(PolicyRelid);
	if (!PG_ARGISNULL(0))
	{
		Oid			relid = PG_GETARG_OID(0);

		if (!SearchSysCacheExists1(RELOID, ObjectIdGetDatum(relid)))
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_TABLE),
					 errmsg("relation with OID %u does not exist", relid),
					 errhint("Pass a table, or nothing to signal a change of policy.")));
		CacheInvalidateRelcacheByRelid(relid);
	}
	PG_RETURN_VOID();
}

/*
 * _subject_changed(subject text)
 *
 * Record in the log that this transaction changed the subject's answers,
 * and queue the subjects signal: at commit, every cache refreshes that
 * subject alone.  Until then only this transaction sees its change.
 */
Datum
profile_guard_subject_changed(PG_FUNCTION_ARGS)
{
	char	   *subject = text_to_cstring(PG_GETARG_TEXT_PP(0));
	PfgCatalogAccess ca;
	Oid			argtypes[1] = {TEXTOID};
	Datum		args[1];
	int			rc;

	pfg_require_preload();
	if (strlen(subject) >= SUBJECT_KEY_SIZE)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid subject identifier"),
				 errdetail("A subject identifier is 1 to 200 characters long.")));
	look_up_relids();
	args[0] = PG_GETARG_DATUM(0);
	pfg_spi_connect();
	pfg_begin_catalog_access(&ca, false);
	rc = SPI_execute_with_args(
		"INSERT INTO profile_guard.subject_change AS c (subject, changed_by)"
		" VALUES ($1, pg_catalog.pg_current_xact_id())"
		" ON CONFLICT (subject) DO UPDATE SET changed_by = excluded.changed_by"
		" WHERE c.changed_by OPERATOR(pg_catalog.<>) excluded.changed_by",
		1, argtypes, args, NULL, false, 0);
	if (rc != SPI_OK_INSERT)
		elog(ERROR, "could not record the changed subject: %s", SPI_result_code_string(rc));
	pfg_end_catalog_access(&ca);
	pfg_spi_finish();

	note_subject_changed_here(subject);
	if (OidIsValid(SubjectsRelid))
		CacheInvalidateRelcacheByRelid(SubjectsRelid);
	PG_RETURN_VOID();
}
