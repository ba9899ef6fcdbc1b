/*-------------------------------------------------------------------------
 *
 * shared_answers.c
 *	  The consent cache's shared layer.  When a backend has loaded every
 *	  subject's answer under a purpose in bulk, it publishes them here, in
 *	  dynamic shared memory, and other backends of the same database read
 *	  them in place instead of loading their own copy: a new connection is
 *	  warm from its first statement.
 *
 *	  Published answers belong to one policy generation (policy_generation.c)
 *	  and are handed out only to backends that read that generation.  As
 *	  subjects change, the backend that first notices patches them in place,
 *	  one at a time, under a patch lock (a heavyweight lock, so that it may
 *	  read the catalog meanwhile, on a hot standby too); a set of answers
 *	  that cannot take a patch (no room for a new subject or tag set) is
 *	  retired, and the next statement that needs it loads it again.
 *	  Nothing is shared by a transaction that changed policy itself.
 *
 *	  Also owns the policy epoch, a shared counter that every transaction
 *	  which changed policy advances when it commits, for redact.c's shared
 *	  counts.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <limits.h>

#include "access/xact.h"
#include "access/xlog.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "port/atomics.h"
#include "storage/dsm.h"
#include "storage/ipc.h"
#include "storage/lock.h"
#include "storage/lwlock.h"
#include "storage/procarray.h"
#include "storage/shmem.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/dsa.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/resowner.h"

#include "extension.h"
#include "settings.h"
#include "catalog.h"
#include "shared_answers.h"
#include "shared_area.h"

/* the patch lock of a slot: an advisory lock tag no SQL function makes */
#define PATCH_LOCK_CLASS 0x7067

typedef enum SlotState
{
	SLOT_EMPTY = 0,
	SLOT_LOADING,				/* a backend is loading; not readable */
	SLOT_READY					/* published, immutable */
} SlotState;

typedef struct AnswerSlot
{
	SlotState	state;
	Oid			dbid;
	Oid			consent_relid;	/* the catalog it was read from */
	int			minor_age;
	int			unknown_age;
	char		age_time_zone[NAMEDATALEN];
	char		home_country[8];
	char		purpose[NAMEDATALEN * 2];
	uint64		generation;		/* the policy generation loaded */
	bool		retired;		/* could not take a patch: load again */
	int			loader_pid;
	int			readers;		/* backends holding the answers */
	dsa_pointer blob;
	Size		blob_size;
} AnswerSlot;

typedef struct SharedAnswersControl
{
	LWLock	   *lock;			/* everything below but epoch */
	pg_atomic_uint64 epoch;
	bool		disabled;		/* a prepared transaction changed policy: the
								 * epoch no longer follows it */
	int			area_tranche;
	dsa_handle	area_handle;
	Size		published_bytes;
	AnswerSlot	slots[FLEXIBLE_ARRAY_MEMBER];
} SharedAnswersControl;

static SharedAnswersControl *Control = NULL;
static dsa_area *Area = NULL;
static int	shared_cache_size_mb = 256;
static int	shared_answer_sets = 64;
static bool PolicyChangedInXact = false;
static int *HeldReads = NULL;	/* this backend's references, by slot */
static bool *HeldLoads = NULL;
static bool ExitCallbackRegistered = false;

void
pfg_shared_answers_define_settings(void)
{
	DefineCustomIntVariable("profile_guard.shared_cache_size",
							"Shared memory for consent answers published by one backend and read by all.",
							"Each published purpose takes 16 bytes per subject (dense integer subjects) or 64 to 128 bytes plus the subject text. 0 turns sharing off: every backend then loads its own cache.",
							&shared_cache_size_mb,
							256, 0, INT_MAX / 2,
							PGC_SIGHUP,
							GUC_UNIT_MB,
							NULL, NULL, NULL);
	DefineCustomIntVariable("profile_guard.shared_answer_sets",
							"Sets of consent answers (purposes and databases) that can be published in shared memory at once.",
							"Beyond this, a backend keeps the answers of further purposes to itself.",
							&shared_answer_sets,
							64, 1, 10000,
							PGC_POSTMASTER,
							0,
							NULL, NULL, NULL);
}

static Size
control_size(void)
{
	return add_size(offsetof(SharedAnswersControl, slots),
					mul_size(sizeof(AnswerSlot), shared_answer_sets));
}

/* shared memory (shmem.c): the control's size, and its set-up */
Size
pfg_shared_answers_shmem_size(void)
{
	return MAXALIGN(control_size());
}

/* called with AddinShmemInitLock held; lock: our named tranche's */
void
pfg_shared_answers_shmem_startup(LWLock *lock)
{
	bool		found;

	Control = ShmemInitStruct("profile_guard shared answers",
							  control_size(), &found);
	if (!found)
	{
		memset(Control, 0, control_size());
		Control->lock = lock;
		pg_atomic_init_u64(&Control->epoch, 1);
		Control->area_tranche = LWLockNewTrancheId();
		Control->area_handle = DSM_HANDLE_INVALID;
	}
}

/*
 * A transaction that changed policy advances the epoch once it is visible
 * to new snapshots (the commit callback runs after that, and before its
 * invalidations are sent and its COMMIT returns).  A prepared one may be
 * committed by any backend, unseen by us: the epoch stops following policy
 * until the server restarts (answers are unaffected: they follow the
 * policy generation, which commits with the prepared transaction).
 */
static void
shared_answers_xact_callback(XactEvent event, void *arg)
{
	if (!PolicyChangedInXact)
		return;
	switch (event)
	{
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
			pg_atomic_fetch_add_u64(&Control->epoch, 1);
			PolicyChangedInXact = false;
			break;
		case XACT_EVENT_PREPARE:
			pg_atomic_fetch_add_u64(&Control->epoch, 1);
			LWLockAcquire(Control->lock, LW_EXCLUSIVE);
			if (!Control->disabled)
				ereport(LOG,
						(errmsg("profile_guard: counts of guarded relations are no longer shared between backends"),
						 errdetail("A prepared transaction changed policy."),
						 errhint("Sharing resumes after a server restart.")));
			Control->disabled = true;
			LWLockRelease(Control->lock);
			PolicyChangedInXact = false;
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
			PolicyChangedInXact = false;
			break;
		default:
			break;
	}
}

void
pfg_shared_answers_init(void)
{
	RegisterXactCallback(shared_answers_xact_callback, NULL);
}

/* _policy_changed(): this transaction changes what answers say */
void
pfg_shared_answers_note_change(void)
{
	PolicyChangedInXact = true;
}

/*
 * The policy epoch, for other shared state that must not outlive a policy
 * change (redact.c's counts of guarded relations); 0 where it does not move
 * with policy (a hot standby replays commits without our callback; a
 * prepared transaction changed policy).
 */
uint64
pfg_policy_epoch(void)
{
	if (Control == NULL || RecoveryInProgress() || Control->disabled)
		return 0;
	return pg_atomic_read_u64(&Control->epoch);
}

/* has this transaction changed policy or consent (uncommitted)? */
bool
pfg_policy_changed_in_xact(void)
{
	return PolicyChangedInXact;
}

/* May this statement read or publish shared answers? */
bool
pfg_shared_answers_usable(void)
{
	return Control != NULL && shared_cache_size_mb > 0 &&
		!PolicyChangedInXact && OidIsValid(MyDatabaseId);
}

/* a backend leaving gives back what it holds */
static void
shared_answers_exit(int code, Datum arg)
{
	for (int i = 0; i < shared_answer_sets; i++)
	{
		while (HeldReads[i] > 0)
			pfg_shared_answers_release(i);
		if (HeldLoads[i])
			pfg_shared_answers_finish_load(i, false);
	}
}

static void
ensure_area(void)
{
	if (Area != NULL)
		return;
	if (HeldReads == NULL)
	{
		HeldReads = MemoryContextAllocZero(TopMemoryContext, sizeof(int) * shared_answer_sets);
		HeldLoads = MemoryContextAllocZero(TopMemoryContext, sizeof(bool) * shared_answer_sets);
	}
	if (!ExitCallbackRegistered)
	{
		before_shmem_exit(shared_answers_exit, (Datum) 0);
		ExitCallbackRegistered = true;
	}
	Area = pfg_shared_area_attach(Control->lock, Control->area_tranche,
								 "profile_guard shared answers area",
								 &Control->area_handle);
}

/*
 * Answers are for one purpose, age of majority, age time zone, home
 * country and catalog (a re-created
 * extension has a new consent table) of one database, at one generation.
 */
static bool
slot_matches(AnswerSlot *s, const AnswersKey *key)
{
	return s->state != SLOT_EMPTY && s->dbid == MyDatabaseId &&
		s->consent_relid == key->consent_relid &&
		s->generation == key->generation && !s->retired &&
		s->minor_age == key->minor_age &&
		s->unknown_age == key->unknown_age &&
		strcmp(s->age_time_zone, key->age_time_zone) == 0 &&
		strcmp(s->home_country, key->home_country) == 0 &&
		strcmp(s->purpose, key->purpose) == 0;
}

/* lock held exclusively; no reader left */
static void
empty_slot(AnswerSlot *s)
{
	if (s->state == SLOT_READY && DsaPointerIsValid(s->blob))
	{
		dsa_free(Area, s->blob);
		Control->published_bytes -= s->blob_size;
	}
	s->state = SLOT_EMPTY;
	s->retired = false;
	s->blob = InvalidDsaPointer;
	s->blob_size = 0;
	s->readers = 0;
}

/*
 * The published answers of a purpose in this database at the key's
 * generation: a pointer valid until pfg_shared_answers_release(*slot).
 * NULL when there are none; then *loading_elsewhere tells whether another
 * backend is loading them now.
 */
const AnswersBlob *
pfg_shared_answers_attach(const AnswersKey *key, int *slot,
						 bool *loading_elsewhere)
{
	int			found = -1;
	dsa_pointer blob = InvalidDsaPointer;

	*slot = -1;
	*loading_elsewhere = false;
	if (!pfg_shared_answers_usable())
		return NULL;
	ensure_area();

	/*
	 * Backends that find nothing ask again at every statement: look under a
	 * shared lock, and take the exclusive one only to become a reader.
	 */
	for (int mode = 0; mode < 2 && found < 0; mode++)
	{
		bool		candidate = false;

		LWLockAcquire(Control->lock, mode == 0 ? LW_SHARED : LW_EXCLUSIVE);
		for (int i = 0; i < shared_answer_sets; i++)
		{
			AnswerSlot *s = &Control->slots[i];

			if (!slot_matches(s, key))
				continue;
			if (s->state == SLOT_READY)
			{
				candidate = true;
				if (mode == 1)
				{
					s->readers++;
					HeldReads[i]++;
					blob = s->blob;
					found = i;
				}
				break;
			}
			if (s->state == SLOT_LOADING && s->loader_pid != MyProcPid)
				*loading_elsewhere = true;
		}
		LWLockRelease(Control->lock);
		if (!candidate)
			break;
	}
	if (found < 0)
		return NULL;
	*slot = found;
	return (const AnswersBlob *) dsa_get_address(Area, blob);
}

/* has the slot been retired since we attached (load them again)? */
bool
pfg_shared_answers_retired(int slot)
{
	return Control->slots[slot].retired;
}

/* the answers cannot take a patch: no one may attach them any more */
void
pfg_shared_answers_retire(int slot)
{
	LWLockAcquire(Control->lock, LW_EXCLUSIVE);
	Control->slots[slot].retired = true;
	LWLockRelease(Control->lock);
}

/* Answers no one reads are kept until their room is needed. */
void
pfg_shared_answers_release(int slot)
{
	AnswerSlot *s = &Control->slots[slot];

	Assert(HeldReads[slot] > 0);
	LWLockAcquire(Control->lock, LW_EXCLUSIVE);
	HeldReads[slot]--;
	if (--s->readers == 0 && s->retired)
		empty_slot(s);
	LWLockRelease(Control->lock);
}

/*
 * The patch lock of a slot: one backend at a time reads the changed
 * subjects and patches them, each under a snapshot taken after the lock
 * was granted, so that a later patch never writes an older answer.
 * Released by pfg_shared_answers_unlock_patch, or at transaction end.
 */
static void
patch_locktag(LOCKTAG *tag, int slot)
{
	SET_LOCKTAG_ADVISORY(*tag, MyDatabaseId, (uint32) slot,
						 (uint32) (Control->slots[slot].generation & 0xFFFFFFFF),
						 PATCH_LOCK_CLASS);
}

void
pfg_shared_answers_lock_patch(int slot)
{
	LOCKTAG		tag;

	patch_locktag(&tag, slot);
	(void) LockAcquire(&tag, ExclusiveLock, false, false);
}

void
pfg_shared_answers_unlock_patch(int slot)
{
	LOCKTAG		tag;

	patch_locktag(&tag, slot);
	(void) LockRelease(&tag, ExclusiveLock, false);
}

/* room for the horizon of a set of answers: every running transaction */
int
pfg_shared_answers_horizon_capacity(void)
{
	return GetMaxSnapshotXidCount() + 1;
}

/*
 * About to load every subject under a purpose: claim a slot to publish them
 * in.  -1 when the answers cannot be shared (then load for this backend
 * alone), -2 when another backend has published them or is loading them.
 * Slots of other generations, or retired, that no one reads give their
 * room back; when no slot is free, the least recently published that no
 * one reads does.
 */
int
pfg_shared_answers_begin_load(const AnswersKey *key)
{
	int			claimed = -1;

	if (!pfg_shared_answers_usable() || strlen(key->purpose) >= NAMEDATALEN * 2)
		return -1;
	ensure_area();
	LWLockAcquire(Control->lock, LW_EXCLUSIVE);
	/* published or being loaded by another backend: wait for those */
	for (int i = 0; i < shared_answer_sets; i++)
	{
		AnswerSlot *s = &Control->slots[i];

		if (slot_matches(s, key) &&
			(s->state == SLOT_READY || s->loader_pid != MyProcPid))
		{
			LWLockRelease(Control->lock);
			return -2;
		}
	}
	/* stale answers nobody reads any more give their room back */
	for (int i = 0; i < shared_answer_sets; i++)
	{
		AnswerSlot *s = &Control->slots[i];

		if (s->state == SLOT_READY && s->readers == 0 &&
			(s->retired ||
			 (s->dbid == MyDatabaseId && s->consent_relid == key->consent_relid &&
			  s->generation != key->generation)))
			empty_slot(s);
	}
	for (int i = 0; i < shared_answer_sets && claimed < 0; i++)
		if (Control->slots[i].state == SLOT_EMPTY)
			claimed = i;
	for (int i = 0; i < shared_answer_sets && claimed < 0; i++)
	{
		AnswerSlot *s = &Control->slots[i];

		if (s->state == SLOT_READY && s->readers == 0)
		{
			empty_slot(s);
			claimed = i;
		}
	}
	if (claimed >= 0)
	{
		AnswerSlot *s = &Control->slots[claimed];

		s->state = SLOT_LOADING;
		s->dbid = MyDatabaseId;
		s->consent_relid = key->consent_relid;
		s->minor_age = key->minor_age;
		s->unknown_age = key->unknown_age;
		strlcpy(s->age_time_zone, key->age_time_zone, sizeof(s->age_time_zone));
		strlcpy(s->home_country, key->home_country, sizeof(s->home_country));
		strlcpy(s->purpose, key->purpose, sizeof(s->purpose));
		s->generation = key->generation;
		s->retired = false;
		s->loader_pid = MyProcPid;
		s->readers = 0;
		s->blob = InvalidDsaPointer;
		HeldLoads[claimed] = true;
	}
	LWLockRelease(Control->lock);
	return claimed;
}

/*
 * Room for the answers, within profile_guard.shared_cache_size; NULL when
 * there is none (shared memory exhausted included: then they are simply not
 * shared).
 */
AnswersBlob *
pfg_shared_answers_alloc(int slot, Size size)
{
	AnswerSlot *s = &Control->slots[slot];
	MemoryContext old = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	dsa_pointer blob = InvalidDsaPointer;
	Size		limit = (Size) shared_cache_size_mb * 1024 * 1024;

	Assert(HeldLoads[slot] && s->state == SLOT_LOADING);

	/*
	 * A gate inside a parallel plan may load answers, but no subtransaction
	 * can start during a parallel operation: keep them private then.
	 */
	if (IsInParallelMode())
		return NULL;

	LWLockAcquire(Control->lock, LW_SHARED);
	if (Control->published_bytes + size > limit)
		size = 0;
	LWLockRelease(Control->lock);
	if (size == 0)
		return NULL;

	/* creating a segment can fail (no room in /dev/shm): not our reader's problem */
	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(old);
	PG_TRY();
	{
		blob = dsa_allocate_extended(Area, size, DSA_ALLOC_HUGE | DSA_ALLOC_NO_OOM);
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(old);
		CurrentResourceOwner = owner;
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(old);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(old);
		CurrentResourceOwner = owner;
		ereport(LOG,
				(errmsg("profile_guard: could not publish consent answers in shared memory: %s",
						edata->message)));
		FreeErrorData(edata);
		blob = InvalidDsaPointer;
	}
	PG_END_TRY();
	if (!DsaPointerIsValid(blob))
		return NULL;

	LWLockAcquire(Control->lock, LW_EXCLUSIVE);
	s->blob = blob;
	s->blob_size = size;
	Control->published_bytes += size;
	LWLockRelease(Control->lock);
	return (AnswersBlob *) dsa_get_address(Area, blob);
}

/*
 * The load is over: publish its answers (filled in pfg_shared_answers_alloc's
 * room), or give the slot back.
 */
void
pfg_shared_answers_finish_load(int slot, bool publish)
{
	AnswerSlot *s = &Control->slots[slot];

	LWLockAcquire(Control->lock, LW_EXCLUSIVE);
	HeldLoads[slot] = false;
	if (s->state == SLOT_LOADING && s->loader_pid == MyProcPid)
	{
		if (publish && DsaPointerIsValid(s->blob))
		{
			s->state = SLOT_READY;
			s->readers = 0;
		}
		else
		{
			s->state = SLOT_READY;	/* so that empty_slot frees the room */
			empty_slot(s);
		}
	}
	LWLockRelease(Control->lock);
}

/*
 * shared_answers() → (database oid, purpose, generation, bytes, readers,
 * state): the sets of answers in shared memory, for the DBA.
 */
PFG_SQL_FUNCTION(profile_guard_shared_answers);

Datum
profile_guard_shared_answers(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;

	InitMaterializedSRF(fcinfo, 0);
	if (Control == NULL)
		return (Datum) 0;
	LWLockAcquire(Control->lock, LW_SHARED);
	for (int i = 0; i < shared_answer_sets; i++)
	{
		AnswerSlot *s = &Control->slots[i];
		Datum		values[6];
		bool		nulls[6] = {false, false, false, false, false, false};

		if (s->state == SLOT_EMPTY)
			continue;
		values[0] = ObjectIdGetDatum(s->dbid);
		values[1] = CStringGetTextDatum(s->purpose);
		values[2] = Int64GetDatum((int64) s->generation);
		values[3] = Int64GetDatum((int64) s->blob_size);
		values[4] = Int32GetDatum(s->readers);
		values[5] = CStringGetTextDatum(s->state == SLOT_LOADING ? "loading" :
										s->retired ? "retired" : "published");
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	LWLockRelease(Control->lock);
	return (Datum) 0;
}
