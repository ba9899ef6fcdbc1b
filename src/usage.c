/*-------------------------------------------------------------------------
 *
 * usage.c
 *	  The usage counters (rule 11 of docs/rules.md): per
 *	  database, role, purpose and tag, how many statements used the tag,
 *	  the cells they were served and had masked, the rows hidden from them
 *	  and the refusals, kept in shared memory for the life of the server,
 *	  and the SQL functions that read (_usage) and reset (usage_reset)
 *	  them.  The audit (audit.c) adds each statement's counts as it ends.
 *
 *	  Locking, as in pg_stat_statements: adding or removing an entry takes
 *	  the table's lock (our named tranche "profile_guard") exclusively;
 *	  finding one takes it shared; reading or changing an entry's counters
 *	  also takes the entry's spinlock, under the table's lock held shared
 *	  or exclusive (so that the entry does not go away meanwhile).  No
 *	  other lock of ours is taken while the table's is held.
 *
 *	  When the table holds profile_guard.usage_max entries, the counts of
 *	  further combinations go to one overflow entry (one slot is reserved
 *	  for it).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <limits.h>

#include "access/xact.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/timestamp.h"

#include "extension.h"
#include "settings.h"
#include "catalog.h"
#include "usage.h"

PFG_SQL_FUNCTION(profile_guard_usage);
PFG_SQL_FUNCTION(profile_guard_usage_reset);

#define USAGE_NAME_LEN		(NAMEDATALEN * 2)
#define OVERFLOW_TAG		"*overflow*"

/* settings */
static int	usage_max = 5000;

typedef struct UsageKey
{
	Oid			dbid;
	Oid			roleid;
	char		purpose[USAGE_NAME_LEN];
	char		tag[USAGE_NAME_LEN];
} UsageKey;

typedef struct UsageEntry
{
	UsageKey	key;			/* hash key: must be first */
	slock_t		mutex;			/* protects the counters */
	int64		statements;
	int64		cells_served;
	int64		cells_masked;
	int64		rows_hidden;
	int64		denials;
	TimestampTz last_used;
} UsageEntry;

typedef struct UsageShared
{
	LWLock	   *lock;			/* shared: update counters; exclusive: add/remove */
} UsageShared;

static UsageShared *Usage = NULL;
static HTAB *UsageHash = NULL;

/* ---------------------------------------------------------------------
 * Shared memory (shmem.c)
 * ---------------------------------------------------------------------
 */

Size
pfg_usage_shmem_size(void)
{
	return add_size(MAXALIGN(sizeof(UsageShared)),
					hash_estimate_size(usage_max + 1, sizeof(UsageEntry)));
}

/* called with AddinShmemInitLock held; lock: our named tranche's */
void
pfg_usage_shmem_startup(LWLock *lock)
{
	bool		found;
	HASHCTL		info;

	Usage = ShmemInitStruct("profile_guard usage", sizeof(UsageShared), &found);
	if (!found)
		Usage->lock = lock;
	memset(&info, 0, sizeof(info));
	info.keysize = sizeof(UsageKey);
	info.entrysize = sizeof(UsageEntry);
	UsageHash = ShmemInitHash("profile_guard usage hash",
							  usage_max + 1, usage_max + 1,
							  &info, HASH_ELEM | HASH_BLOBS);
}

/* are the counters in shared memory (set up in this server)? */
bool
pfg_usage_ready(void)
{
	return Usage != NULL;
}

/* ---------------------------------------------------------------------
 * Adding counts
 * ---------------------------------------------------------------------
 */

typedef struct UsageDelta
{
	UsageKey	key;
	int64		statements;
	int64		served;
	int64		masked;
	int64		hidden;
	int64		denials;
	bool		done;
} UsageDelta;

static void
make_key(UsageKey *key, Oid roleid, const char *purpose, const char *tag)
{
	memset(key, 0, sizeof(UsageKey));
	key->dbid = MyDatabaseId;
	key->roleid = roleid;
	strlcpy(key->purpose, purpose, USAGE_NAME_LEN);
	strlcpy(key->tag, tag, USAGE_NAME_LEN);
}

static void
apply_delta(UsageEntry *e, const UsageDelta *d, TimestampTz now)
{
	SpinLockAcquire(&e->mutex);
	e->statements += d->statements;
	e->cells_served += d->served;
	e->cells_masked += d->masked;
	e->rows_hidden += d->hidden;
	e->denials += d->denials;
	e->last_used = now;
	SpinLockRelease(&e->mutex);
}

/*
 * Add a statement's counts: under a shared lock when every entry exists
 * (the steady state), else once more under an exclusive lock to create
 * them.  When the table is full, counts go to one overflow entry.
 */
static void
usage_add(UsageDelta *deltas, int n)
{
	TimestampTz now;
	bool		missing = false;

	if (Usage == NULL || UsageHash == NULL || n == 0)
		return;
	now = GetCurrentStatementStartTimestamp();
	LWLockAcquire(Usage->lock, LW_SHARED);
	for (int i = 0; i < n; i++)
	{
		UsageEntry *e = hash_search(UsageHash, &deltas[i].key, HASH_FIND, NULL);

		if (e)
		{
			apply_delta(e, &deltas[i], now);
			deltas[i].done = true;
		}
		else
			missing = true;
	}
	LWLockRelease(Usage->lock);
	if (!missing)
		return;

	LWLockAcquire(Usage->lock, LW_EXCLUSIVE);
	for (int i = 0; i < n; i++)
	{
		UsageEntry *e;
		bool		found;

		if (deltas[i].done)
			continue;
		e = hash_search(UsageHash, &deltas[i].key, HASH_FIND, NULL);
		if (e == NULL && hash_get_num_entries(UsageHash) >= usage_max)
		{
			UsageKey	overflow;

			memset(&overflow, 0, sizeof(overflow));
			strlcpy(overflow.tag, OVERFLOW_TAG, USAGE_NAME_LEN);
			deltas[i].key = overflow;
		}
		if (e == NULL)
		{
			e = hash_search(UsageHash, &deltas[i].key, HASH_ENTER_NULL, &found);
			if (e == NULL)
				continue;		/* cannot happen: one slot is reserved */
			if (!found)
			{
				memset(((char *) e) + sizeof(UsageKey), 0, sizeof(UsageEntry) - sizeof(UsageKey));
				SpinLockInit(&e->mutex);
			}
		}
		apply_delta(e, &deltas[i], now);
	}
	LWLockRelease(Usage->lock);
}

/* an audited statement that read tags has ended: one count per tag */
void
pfg_usage_add_statement(const PfgAuditRecord *rec)
{
	UsageDelta *deltas;
	int			n = 0;

	if (Usage == NULL || rec->c.ntags == 0)
		return;
	deltas = palloc0(sizeof(UsageDelta) * rec->c.ntags);
	for (int i = 0; i < rec->c.ntags; i++)
	{
		PfgAuditTag *t = &rec->c.tags[i];

		make_key(&deltas[n].key, rec->userid, rec->purpose, pfg_audit_tag_name(t));
		deltas[n].statements = 1;
		if (!rec->bypass)
		{
			deltas[n].served = t->served;
			deltas[n].masked = t->masked;
			deltas[n].hidden = pfg_audit_tag_rows_hidden(rec, t);
		}
		n++;
	}
	usage_add(deltas, n);
	pfree(deltas);
}

/*
 * A statement was refused: a denial for each tag it reads, else for the
 * tag the refusal concerns (tag; NULL: none, counted under no tag).
 */
void
pfg_usage_add_denial(const PfgAuditRecord *rec, const char *tag)
{
	UsageDelta *deltas;
	int			n = 0;

	deltas = palloc0(sizeof(UsageDelta) * (rec->c.ntags + 1));
	for (int i = 0; i < rec->c.ntags; i++)
	{
		make_key(&deltas[n].key, rec->userid, rec->purpose, pfg_audit_tag_name(&rec->c.tags[i]));
		deltas[n++].denials = 1;
	}
	if (n == 0)
	{
		make_key(&deltas[n].key, rec->userid, rec->purpose, tag ? tag : "");
		deltas[n++].denials = 1;
	}
	usage_add(deltas, n);
}

/* ---------------------------------------------------------------------
 * SQL functions
 * ---------------------------------------------------------------------
 */

/*
 * _usage(): the usage counters of this database (and the overflow entry),
 * as (role oid, purpose, tag, statements, cells_served, cells_masked,
 * rows_hidden, denials, last_used).
 */
Datum
profile_guard_usage(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	HASH_SEQ_STATUS seq;
	UsageEntry *e;

	pfg_require_preload();
	if (Usage == NULL || UsageHash == NULL)
		ereport(ERROR,
				(errcode(PFG_ERRCODE_NOT_PRELOADED),
				 errmsg("profile_guard usage counters are not available"),
				 errdetail("The shared memory for the counters was not set up."),
				 errhint("Add profile_guard to shared_preload_libraries in postgresql.conf and restart the server.")));
	InitMaterializedSRF(fcinfo, 0);

	LWLockAcquire(Usage->lock, LW_SHARED);
	hash_seq_init(&seq, UsageHash);
	while ((e = hash_seq_search(&seq)) != NULL)
	{
		Datum		values[9];
		bool		nulls[9];
		bool		overflow = (e->key.dbid == InvalidOid);

		if (!overflow && e->key.dbid != MyDatabaseId)
			continue;
		memset(nulls, 0, sizeof(nulls));
		if (overflow)
			nulls[0] = nulls[1] = true;
		else
		{
			values[0] = ObjectIdGetDatum(e->key.roleid);
			if (e->key.purpose[0] == '\0')
				nulls[1] = true;
			else
				values[1] = CStringGetTextDatum(e->key.purpose);
		}
		if (e->key.tag[0] == '\0')
			nulls[2] = true;
		else
			values[2] = CStringGetTextDatum(e->key.tag);
		SpinLockAcquire(&e->mutex);
		values[3] = Int64GetDatum(e->statements);
		values[4] = Int64GetDatum(e->cells_served);
		values[5] = Int64GetDatum(e->cells_masked);
		values[6] = Int64GetDatum(e->rows_hidden);
		values[7] = Int64GetDatum(e->denials);
		values[8] = TimestampTzGetDatum(e->last_used);
		SpinLockRelease(&e->mutex);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	LWLockRelease(Usage->lock);
	return (Datum) 0;
}

/* usage_reset(): forget the counters of this database and the overflow */
Datum
profile_guard_usage_reset(PG_FUNCTION_ARGS)
{
	HASH_SEQ_STATUS seq;
	UsageEntry *e;

	pfg_require_preload();
	if (Usage == NULL || UsageHash == NULL)
		PG_RETURN_VOID();
	LWLockAcquire(Usage->lock, LW_EXCLUSIVE);
	hash_seq_init(&seq, UsageHash);
	while ((e = hash_seq_search(&seq)) != NULL)
	{
		if (e->key.dbid == MyDatabaseId || e->key.dbid == InvalidOid)
			hash_search(UsageHash, &e->key, HASH_REMOVE, NULL);
	}
	LWLockRelease(Usage->lock);
	PG_RETURN_VOID();
}

/* ---------------------------------------------------------------------
 * Start-up
 * ---------------------------------------------------------------------
 */

void
pfg_usage_define_settings(void)
{
	DefineCustomIntVariable("profile_guard.usage_max",
							"Maximum number of (role, purpose, tag) entries in the usage counters.",
							"Counts of further combinations go to one overflow entry.",
							&usage_max,
							5000, 100, INT_MAX / 2,
							PGC_POSTMASTER,
							0,
							NULL, NULL, NULL);
}
