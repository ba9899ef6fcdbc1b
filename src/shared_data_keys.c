/*-------------------------------------------------------------------------
 *
 * shared_data_keys.c
 *	  Owns the unwrapped data keys shared between the backends of a
 *	  database, and the setting profile_guard.shared_key_cache_size.
 *
 *	  A statement that meets many subjects loads every data key in bulk
 *	  (data_key.c): a heap scan of subject_key and one unwrap per key.
 *	  It publishes a copy of what it loaded here, in a DSA area, as a set
 *	  for its database: the dense part of the backend's cache as it is
 *	  (subjects that are decimal integers, data_key_cache.c), and the
 *	  other subjects' keys written out one after another.  The bulk load
 *	  of any other backend of that database then takes the set instead of
 *	  scanning and unwrapping: its cache reads the integer subjects' keys
 *	  where they lie, and copies the others into its own table.  A set
 *	  taken is pinned until the taking statement (the outermost) or its
 *	  transaction ends: retired, it is wiped but not freed before then.
 *	  Before a statement meets enough uncached subjects to take the set, it
 *	  reads their keys from it one by one (subjects that are decimal
 *	  integers), instead of through subject_key, into the backend's cache.
 *
 *	  Keys leave with the commit that changes them.  Every transaction
 *	  that destroys, deletes, re-wraps or truncates keys (a trigger on
 *	  subject_key notes it, and data_key.c notes its own destroys) retires
 *	  its database's sets when it commits, after its commit is visible and
 *	  before its invalidations are sent, and wipes them (it mapped them
 *	  before committing; a set published in between is wiped by the next
 *	  backend that takes the lock): the bits that say which keys a set
 *	  holds first, then the keys, so that a backend reading the set in
 *	  place finds a key whole or not at all.  It also advances the change
 *	  epoch: a bulk load notes the epoch before it takes its snapshot and
 *	  publishes only if the epoch has not moved since, so a set never holds
 *	  a key whose destruction had committed before it was published.  A
 *	  transaction that changed keys itself neither takes nor publishes.
 *	  A prepared transaction that changed keys stops sharing until the
 *	  server restarts (its commit may come from any backend, unseen here);
 *	  a hot standby does not share (it replays commits without us).
 *
 *	  Keys made after a set was read are not in it; the creation count
 *	  (advanced by every transaction that made keys, when it commits)
 *	  tells a copy that lacks some, so that the statement looks for a
 *	  subject's key before making one.  A set is tied to the master key
 *	  that unwrapped it (its fingerprint) and to subject_key's OID.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <limits.h>

#include "access/parallel.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "port/atomics.h"
#include "storage/dsm.h"
#include "storage/shmem.h"
#include "utils/builtins.h"
#include "utils/dsa.h"
#include "utils/guc.h"
#include "utils/timestamp.h"

#include "extension.h"
#include "crypto_primitives.h"
#include "data_key_cache.h"
#include "master_key.h"
#include "settings.h"
#include "shared_data_keys.h"
#include "shared_area.h"

#define SHARED_KEY_SETS		64	/* sets at once: published, or retired and
									 * still read in place */

typedef enum KeySetState
{
	KEYSET_EMPTY = 0,
	KEYSET_READY,				/* published, read-only */
	KEYSET_RETIRED				/* keys changed, or superseded: to wipe and free
								 * once no statement reads it in place */
} KeySetState;

typedef struct SharedKeySet
{
	KeySetState state;
	bool		wiped;
	bool		keys_changed;	/* retired by a change of keys: wiped at once,
								 * even while read in place */
	Oid			dbid;
	Oid			relid;			/* subject_key */
	char		fingerprint[PFG_FINGERPRINT_HEX_LEN + 1];
	uint64		serial;			/* which publication */
	uint64		creations;		/* the creation count before its scan */
	uint32		size;			/* dense slots */
	uint32		count;			/* keys, dense or not */
	uint32		others_count;	/* keys of other subjects */
	Size		others_bytes;	/* as data_key_cache.c writes them */
	uint64		copies;			/* times a backend took it */
	int			pins;			/* statements reading it in place */
	TimestampTz published_at;
	dsa_pointer blob;			/* keys[size][PFG_KEY_LEN], a bit each, others */
	Size		blob_size;
} SharedKeySet;

typedef struct SharedKeysControl
{
	LWLock	   *lock;
	pg_atomic_uint64 epoch;		/* commits that changed keys */
	pg_atomic_uint64 creations; /* commits that made keys */
	bool		disabled;		/* a prepared transaction changed keys */
	uint64		next_serial;
	int			area_tranche;
	dsa_handle	area_handle;
	SharedKeySet sets[SHARED_KEY_SETS];
} SharedKeysControl;

static SharedKeysControl *Control = NULL;
static dsa_area *Area = NULL;
static int	shared_key_cache_size_mb = 256;

/* the current transaction's changes, and the sets it mapped to wipe them */
static bool KeysChangedInXact = false;
static bool KeysCreatedInXact = false;
static bool DatabaseDroppedInXact = false;	/* retire every database's sets */
static int	n_mapped = 0;
static uint64 mapped_serial[SHARED_KEY_SETS];
static void *mapped_address[SHARED_KEY_SETS];

/* the set this backend's statement reads in place, pinned (0: none) */
static uint64 pinned_serial = 0;

PFG_SQL_FUNCTION(profile_guard_shared_data_keys);

void
pfg_shared_data_keys_define_settings(void)
{
	DefineCustomIntVariable("profile_guard.shared_key_cache_size",
							"Shared memory for unwrapped data keys, read by every backend of a database instead of reading and unwrapping them from subject_key.",
							"33 bytes per subject whose identifier is a decimal integer, 36 bytes plus the identifier for others. 0 turns sharing off: each backend then reads and unwraps every key itself.",
							&shared_key_cache_size_mb,
							256, 0, INT_MAX / 2,
							PGC_SIGHUP,
							GUC_UNIT_MB,
							NULL, NULL, NULL);
}

Size
pfg_shared_data_keys_shmem_size(void)
{
	return MAXALIGN(sizeof(SharedKeysControl));
}

/* called with AddinShmemInitLock held; lock: our named tranche's */
void
pfg_shared_data_keys_shmem_startup(LWLock *lock)
{
	bool		found;

	Control = ShmemInitStruct("profile_guard shared data keys",
							  sizeof(SharedKeysControl), &found);
	if (!found)
	{
		memset(Control, 0, sizeof(SharedKeysControl));
		Control->lock = lock;
		pg_atomic_init_u64(&Control->epoch, 1);
		pg_atomic_init_u64(&Control->creations, 1);
		Control->next_serial = 1;
		Control->area_tranche = LWLockNewTrancheId();
		Control->area_handle = DSM_HANDLE_INVALID;
	}
}

static void
ensure_area(void)
{
	if (Area == NULL)
		Area = pfg_shared_area_attach(Control->lock, Control->area_tranche,
									 "profile_guard shared data keys area",
									 &Control->area_handle);
}

/*
 * May this backend share keys now?  Not in a transaction that changed keys.
 * A parallel worker does not know whether its leader did, so it shares
 * only in a transaction that has written nothing (the gates that decrypt
 * are parallel restricted today: this keeps it so if that changes).
 */
static bool
sharing_on(void)
{
	return Control != NULL && shared_key_cache_size_mb > 0 &&
		OidIsValid(MyDatabaseId) && !Control->disabled &&
		!RecoveryInProgress() && !KeysChangedInXact &&
		!(IsParallelWorker() && TransactionIdIsValid(GetTopTransactionIdIfAny()));
}

static inline uint64 *
set_present(SharedKeySet *s, char *base)
{
	return (uint64 *) (base + (Size) s->size * PFG_KEY_LEN);
}

static inline char *
set_others(SharedKeySet *s, char *base)
{
	return base + (Size) s->size * PFG_KEY_LEN + s->size / 8;
}

/* a set whose keys a statement may read: published, or superseded */
static inline bool
holds_keys(SharedKeySet *s)
{
	return s->state == KEYSET_READY || (s->state == KEYSET_RETIRED && !s->wiped);
}

/*
 * Wipe a set at base: its bits first, so that a backend reading it in
 * place (data_key_cache.c) never trusts a key being wiped.
 */
static void
wipe_set(SharedKeySet *s, char *base)
{
	explicit_bzero(set_present(s, base), s->size / 8);
	pg_write_barrier();
	explicit_bzero(base, s->blob_size);
	s->wiped = true;
}

/*
 * lock held exclusively, Area attached: wipe what was retired, and free it
 * unless a statement still reads it in place (a set superseded by a newer
 * one is wiped only then: its readers may still use it)
 */
static void
reap_retired(void)
{
	for (int i = 0; i < SHARED_KEY_SETS; i++)
	{
		SharedKeySet *s = &Control->sets[i];

		if (s->state != KEYSET_RETIRED)
			continue;
		if (s->pins > 0 && !s->keys_changed)
			continue;			/* superseded, still read in place */
		if (!s->wiped)
			wipe_set(s, dsa_get_address(Area, s->blob));
		if (s->pins > 0)
			continue;
		dsa_free(Area, s->blob);
		memset(s, 0, sizeof(SharedKeySet));
	}
}

static bool
any_retired(void)
{
	for (int i = 0; i < SHARED_KEY_SETS; i++)
		if (Control->sets[i].state == KEYSET_RETIRED)
			return true;
	return false;
}

/*
 * At PRE_COMMIT of a transaction that changed keys (errors still abort it
 * there): map this database's sets, so that the commit can wipe them
 * without mapping anything.
 */
static void
map_for_commit(void)
{
	bool		any = false;

	n_mapped = 0;
	if (Control == NULL || !OidIsValid(MyDatabaseId))
		return;
	LWLockAcquire(Control->lock, LW_SHARED);
	for (int i = 0; i < SHARED_KEY_SETS; i++)
		any |= holds_keys(&Control->sets[i]) && Control->sets[i].dbid == MyDatabaseId;
	LWLockRelease(Control->lock);
	if (!any)
		return;
	ensure_area();
	LWLockAcquire(Control->lock, LW_SHARED);
	for (int i = 0; i < SHARED_KEY_SETS; i++)
	{
		SharedKeySet *s = &Control->sets[i];

		if (!holds_keys(s) || s->dbid != MyDatabaseId)
			continue;
		mapped_serial[n_mapped] = s->serial;
		mapped_address[n_mapped] = dsa_get_address(Area, s->blob);
		n_mapped++;
	}
	LWLockRelease(Control->lock);
}

/*
 * The commit of a transaction that changed keys (visible to new snapshots
 * now): advance the epoch, retire this database's sets and wipe those
 * mapped before.  Nothing here can fail.  disable: a prepared
 * transaction, whose commit we will not see: stop sharing.
 */
static void
retire_sets(bool disable)
{
	LWLockAcquire(Control->lock, LW_EXCLUSIVE);
	pg_atomic_fetch_add_u64(&Control->epoch, 1);
	for (int i = 0; i < SHARED_KEY_SETS; i++)
	{
		SharedKeySet *s = &Control->sets[i];

		if (!holds_keys(s) ||
			(s->dbid != MyDatabaseId && !disable && !DatabaseDroppedInXact))
			continue;
		for (int m = 0; m < n_mapped; m++)
		{
			if (mapped_serial[m] == s->serial && !s->wiped)
				wipe_set(s, mapped_address[m]);
		}
		s->state = KEYSET_RETIRED;
		s->keys_changed = true;
	}
	if (disable && !Control->disabled)
	{
		Control->disabled = true;
		ereport(LOG,
				(errmsg("profile_guard: data keys are no longer shared between backends"),
				 errdetail("A prepared transaction changed data keys."),
				 errhint("Sharing resumes after a server restart.")));
	}
	LWLockRelease(Control->lock);
}

/*
 * The backend no longer reads the set it took in place.  Called at the end
 * of the transaction too, where nothing may fail: nothing is mapped or
 * freed here; the next backend that takes or publishes a set frees a
 * retired one that no statement reads any more.
 */
static void
release_pinned_set(void)
{
	pfg_data_key_cache_detach_shared();
	if (pinned_serial == 0)
		return;
	LWLockAcquire(Control->lock, LW_EXCLUSIVE);
	for (int i = 0; i < SHARED_KEY_SETS; i++)
	{
		SharedKeySet *s = &Control->sets[i];

		if (s->state != KEYSET_EMPTY && s->serial == pinned_serial && s->pins > 0)
			s->pins--;
	}
	pinned_serial = 0;
	LWLockRelease(Control->lock);
}

/*
 * A bulk load of the statement's own, or the end of the outermost
 * statement: an idle session holds no set, and a set retired or superseded
 * meanwhile is freed once the statements reading it end.
 */
void
pfg_shared_data_keys_release(void)
{
	if (Control != NULL && pinned_serial != 0)
		release_pinned_set();
}

/*
 * lock held: the bytes of the published sets of the other databases (the
 * setting limits the published sets; a retired one still read in place is
 * freed as soon as its readers end)
 */
static Size
other_databases_bytes(void)
{
	Size		bytes = 0;

	for (int i = 0; i < SHARED_KEY_SETS; i++)
		if (Control->sets[i].state == KEYSET_READY && Control->sets[i].dbid != MyDatabaseId)
			bytes += Control->sets[i].blob_size;
	return bytes;
}

static void
shared_keys_xact_callback(XactEvent event, void *arg)
{
	if (Control == NULL)
		return;
	if (pinned_serial != 0 &&
		(event == XACT_EVENT_COMMIT || event == XACT_EVENT_PARALLEL_COMMIT ||
		 event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT ||
		 event == XACT_EVENT_PREPARE))
		release_pinned_set();
	if (!KeysChangedInXact && !KeysCreatedInXact)
		return;
	switch (event)
	{
		case XACT_EVENT_PRE_COMMIT:
		case XACT_EVENT_PRE_PREPARE:
			if (KeysChangedInXact)
				map_for_commit();
			return;
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
			if (KeysCreatedInXact)
				pg_atomic_fetch_add_u64(&Control->creations, 1);
			if (KeysChangedInXact)
				retire_sets(false);
			break;
		case XACT_EVENT_PREPARE:
			if (KeysChangedInXact)
				retire_sets(true);
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
			break;
		default:
			return;
	}
	/* the transaction has ended */
	KeysChangedInXact = KeysCreatedInXact = DatabaseDroppedInXact = false;
	n_mapped = 0;
}

/* has this transaction made, changed or destroyed data keys? */
bool
pfg_shared_data_keys_changed_in_xact(void)
{
	return KeysChangedInXact || KeysCreatedInXact;
}

void
pfg_shared_data_keys_init(void)
{
	RegisterXactCallback(shared_keys_xact_callback, NULL);
}

void
pfg_shared_data_keys_note_created(void)
{
	KeysCreatedInXact = true;
}

void
pfg_shared_data_keys_note_changed(void)
{
	KeysChangedInXact = true;
}

/*
 * ProcessUtility: a statement that may drop subject_key with the extension
 * (DROP EXTENSION, DROP SCHEMA, DROP OWNED) retires the database's sets
 * when it commits, as a change of keys does; DROP DATABASE retires every
 * database's (this backend is in another).  Nothing of a dropped
 * extension's keys stays in shared memory.
 */
void
pfg_shared_data_keys_utility(Node *stmt)
{
	if (stmt == NULL)
		return;
	if (IsA(stmt, DropStmt))
	{
		ObjectType	type = ((DropStmt *) stmt)->removeType;

		if (type == OBJECT_EXTENSION || type == OBJECT_SCHEMA)
			KeysChangedInXact = true;
	}
	else if (IsA(stmt, DropOwnedStmt))
		KeysChangedInXact = true;
	else if (IsA(stmt, DropdbStmt))
		KeysChangedInXact = DatabaseDroppedInXact = true;
}

/* lock held: the ready set of this database for relid and fingerprint */
static SharedKeySet *
find_set(Oid relid, const char *fingerprint)
{
	for (int i = 0; i < SHARED_KEY_SETS; i++)
	{
		SharedKeySet *s = &Control->sets[i];

		if (s->state == KEYSET_READY && s->dbid == MyDatabaseId &&
			s->relid == relid && strcmp(s->fingerprint, fingerprint) == 0)
			return s;
	}
	return NULL;
}

/* are keys published for subject_key relid under this master key? */
bool
pfg_shared_data_keys_published(Oid relid, const char *fingerprint)
{
	bool		found;

	if (!sharing_on())
		return false;
	LWLockAcquire(Control->lock, LW_SHARED);
	found = find_set(relid, fingerprint) != NULL;
	LWLockRelease(Control->lock);
	return found;
}

/*
 * Take this database's published set for subject_key relid under this
 * master key, if the keys not kept by integer fit in room: the backend's
 * cache reads the integer subjects' keys in place, pinned until the
 * outermost statement or the transaction ends, and copies the others.
 * *complete: no key was made since the set was read.
 */
bool
pfg_shared_data_keys_take(Oid relid, const char *fingerprint, int room,
						  bool *complete)
{
	SharedKeySet *s;
	uint64		serial;
	uint32		others_count;
	Size		others_bytes;
	char	   *others = NULL;
	bool		taken = false;

	*complete = false;
	if (!sharing_on())
		return false;
	LWLockAcquire(Control->lock, LW_SHARED);
	s = find_set(relid, fingerprint);
	if (s != NULL && s->others_count > (uint32) Max(room, 0))
		s = NULL;
	serial = s != NULL ? s->serial : 0;
	others_count = s != NULL ? s->others_count : 0;
	others_bytes = s != NULL ? s->others_bytes : 0;
	LWLockRelease(Control->lock);
	if (s == NULL)
		return false;

	/* one set pinned at a time; nothing under the lock allocates */
	release_pinned_set();
	ensure_area();
	if (others_bytes > 0)
		others = MemoryContextAllocHuge(CurrentMemoryContext, others_bytes);

	LWLockAcquire(Control->lock, LW_EXCLUSIVE);
	s = find_set(relid, fingerprint);
	if (s != NULL && s->serial == serial)
	{
		char	   *base = dsa_get_address(Area, s->blob);

		s->pins++;
		s->copies++;
		pinned_serial = serial;
		if (s->size > 0)
			pfg_data_key_cache_attach_shared((const uint8 *) base,
											 set_present(s, base), s->size);
		if (others != NULL)
			memcpy(others, set_others(s, base), others_bytes);
		*complete = s->creations == pg_atomic_read_u64(&Control->creations);
		taken = true;
	}
	if (any_retired())
		reap_retired();
	LWLockRelease(Control->lock);

	/* the other subjects' keys, into the backend's table */
	if (others != NULL)
	{
		if (taken)
			pfg_data_key_cache_read_others(others, others_bytes, others_count);
		explicit_bzero(others, others_bytes);
		pfree(others);
	}
	return taken;
}

/*
 * The key of one subject whose identifier is a decimal integer, from the
 * database's published set, into key (which the caller wipes): a statement
 * that meets a few subjects whose keys its backend has not cached yet (a
 * look-up by primary key in a new connection) reads them here instead of
 * through subject_key, and copies the whole set only once it meets many.
 * The set is read under the lock in shared mode, which its retirement
 * takes in exclusive mode before it wipes it.
 */
bool
pfg_shared_data_keys_lookup(Oid relid, const char *fingerprint,
							const char *subject, int len, uint8 *key)
{
	SharedKeySet *s;
	uint32		n;
	bool		found = false;

	if (!pfg_data_key_cache_dense_subject(subject, len, &n) || !sharing_on())
		return false;
	if (Area == NULL)
	{
		/* attach the area only once there is a set to read */
		LWLockAcquire(Control->lock, LW_SHARED);
		s = find_set(relid, fingerprint);
		LWLockRelease(Control->lock);
		if (s == NULL)
			return false;
		ensure_area();
	}
	LWLockAcquire(Control->lock, LW_SHARED);
	s = find_set(relid, fingerprint);
	if (s != NULL && n < s->size)
	{
		char	   *base = dsa_get_address(Area, s->blob);

		if (set_present(s, base)[n / 64] & (UINT64CONST(1) << (n % 64)))
		{
			memcpy(key, base + (Size) n * PFG_KEY_LEN, PFG_KEY_LEN);
			found = true;
		}
	}
	LWLockRelease(Control->lock);
	return found;
}

PfgSharedKeysTicket
pfg_shared_data_keys_begin_load(void)
{
	PfgSharedKeysTicket t;

	t.usable = sharing_on() && !IsInParallelMode() && !KeysCreatedInXact;
	t.epoch = t.usable ? pg_atomic_read_u64(&Control->epoch) : 0;
	t.creations = t.usable ? pg_atomic_read_u64(&Control->creations) : 0;
	/* read before the caller's snapshot is taken */
	pg_memory_barrier();
	return t;
}

void
pfg_shared_data_keys_publish(const PfgSharedKeysTicket *t, Oid relid,
							 const char *fingerprint)
{
	const uint8 *keys;
	const uint64 *present;
	uint32		size;
	uint32		count;
	uint32		others_count;
	Size		others_bytes;
	Size		dense_bytes;
	Size		bytes;
	Size		limit = (Size) shared_key_cache_size_mb * 1024 * 1024;
	dsa_pointer blob;
	char	   *base;
	SharedKeySet *s = NULL;

	if (!t->usable || !sharing_on() || KeysCreatedInXact)
		return;
	pfg_data_key_cache_contents(&keys, &present, &size, &count,
								&others_bytes, &others_count);
	if (count + others_count == 0)
		return;
	dense_bytes = (Size) size * PFG_KEY_LEN + (Size) size / 8;
	bytes = dense_bytes + others_bytes;
	if (bytes > limit)
		return;

	ensure_area();
	blob = dsa_allocate_extended(Area, bytes, DSA_ALLOC_HUGE | DSA_ALLOC_NO_OOM);
	if (!DsaPointerIsValid(blob))
		return;
	base = dsa_get_address(Area, blob);
	if (size > 0)
	{
		memcpy(base, keys, (Size) size * PFG_KEY_LEN);
		memcpy(base + (Size) size * PFG_KEY_LEN, present, (Size) size / 8);
	}
	pfg_data_key_cache_write_others(base + dense_bytes);

	LWLockAcquire(Control->lock, LW_EXCLUSIVE);
	reap_retired();
	if (pg_atomic_read_u64(&Control->epoch) == t->epoch && !Control->disabled &&
		other_databases_bytes() + bytes <= limit)
	{
		SharedKeySet *oldest = NULL;

		/*
		 * This database's older set is superseded: statements reading it
		 * in place go on until they end.  Then a free slot, else the
		 * oldest set of another database, superseded too.
		 */
		for (int i = 0; i < SHARED_KEY_SETS; i++)
		{
			SharedKeySet *c = &Control->sets[i];

			if (c->state == KEYSET_READY && c->dbid == MyDatabaseId)
				c->state = KEYSET_RETIRED;
		}
		reap_retired();
		for (int i = 0; i < SHARED_KEY_SETS && s == NULL; i++)
		{
			SharedKeySet *c = &Control->sets[i];

			if (c->state == KEYSET_EMPTY)
				s = c;
			else if (c->state == KEYSET_READY &&
					 (oldest == NULL || c->published_at < oldest->published_at))
				oldest = c;
		}
		if (s == NULL && oldest != NULL)
		{
			oldest->state = KEYSET_RETIRED;
			reap_retired();
			if (oldest->state == KEYSET_EMPTY)
				s = oldest;
		}
	}
	if (s != NULL)
	{
		s->state = KEYSET_READY;
		s->wiped = false;
		s->keys_changed = false;
		s->dbid = MyDatabaseId;
		s->relid = relid;
		strlcpy(s->fingerprint, fingerprint, sizeof(s->fingerprint));
		s->serial = Control->next_serial++;
		s->creations = t->creations;
		s->size = size;
		s->count = count + others_count;
		s->others_count = others_count;
		s->others_bytes = others_bytes;
		s->copies = 0;
		s->pins = 0;
		s->published_at = GetCurrentTimestamp();
		s->blob = blob;
		s->blob_size = bytes;
	}
	else
	{
		explicit_bzero(base, bytes);
		dsa_free(Area, blob);
	}
	LWLockRelease(Control->lock);
}

/*
 * shared_data_keys() → (database oid, keys, bytes, copies, complete,
 * published_at): the sets of data keys in shared memory, for the DBA.
 */
Datum
profile_guard_shared_data_keys(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;

	pfg_require_preload();
	InitMaterializedSRF(fcinfo, 0);
	if (Control == NULL)
		return (Datum) 0;
	LWLockAcquire(Control->lock, LW_SHARED);
	for (int i = 0; i < SHARED_KEY_SETS; i++)
	{
		SharedKeySet *s = &Control->sets[i];
		Datum		values[6];
		bool		nulls[6] = {false, false, false, false, false, false};

		if (s->state != KEYSET_READY)
			continue;
		values[0] = ObjectIdGetDatum(s->dbid);
		values[1] = Int64GetDatum((int64) s->count);
		values[2] = Int64GetDatum((int64) s->blob_size);
		values[3] = Int64GetDatum((int64) s->copies);
		values[4] = BoolGetDatum(s->creations == pg_atomic_read_u64(&Control->creations));
		values[5] = TimestampTzGetDatum(s->published_at);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	LWLockRelease(Control->lock);
	return (Datum) 0;
}
