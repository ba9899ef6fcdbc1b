/*-------------------------------------------------------------------------
 *
 * shmem.c
 *	  The one request for profile_guard's shared memory and its one
 *	  set-up: each part says how much it needs and sets up its own, in
 *	  this order:
 *	    1. the shared answers' control (shared_answers.c), with the named
 *	       LWLock tranche "profile_guard shared answers";
 *	    2. the usage counters (usage.c), with the named LWLock tranche
 *	       "profile_guard";
 *	    3. the counts of guarded relations per database (redact.c);
 *	    4. the progress slots of long work, one per backend (progress.c);
 *	    5. the shared buffer of audit lines (audit_ring.c);
 *	    6. the shared data keys' control (shared_data_keys.c), with the
 *	       named LWLock tranche "profile_guard shared data keys";
 *	    7. the slots of parallel runs, one per backend (parallel_gates.c),
 *	       with the named LWLock tranche "profile_guard parallel gates".
 *	  The set-up runs under AddinShmemInitLock, in the postmaster (or in
 *	  every backend where shared memory is attached anew); a part that
 *	  finds its structures already there only attaches to them.  shmem.h
 *	  describes the locks.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"

#include "shmem.h"
#include "audit_ring.h"
#include "parallel_gates.h"
#include "progress.h"
#include "redact.h"
#include "shared_answers.h"
#include "shared_data_keys.h"
#include "usage.h"

/* the named LWLock tranches, as pg_stat_activity shows their waits */
#define SHARED_ANSWERS_TRANCHE	"profile_guard shared answers"
#define USAGE_TRANCHE			"profile_guard"
#define SHARED_DATA_KEYS_TRANCHE "profile_guard shared data keys"
#define PARALLEL_GATES_TRANCHE	"profile_guard parallel gates"

/* shmem_request_hook (hooks.c) */
void
pfg_shmem_request(void)
{
	Size		size = 0;

	size = add_size(size, pfg_shared_answers_shmem_size());
	size = add_size(size, pfg_usage_shmem_size());
	size = add_size(size, pfg_redact_shmem_size());
	size = add_size(size, pfg_progress_shmem_size());
	size = add_size(size, pfg_audit_ring_shmem_size());
	size = add_size(size, pfg_shared_data_keys_shmem_size());
	size = add_size(size, pfg_parallel_gates_shmem_size());
	RequestAddinShmemSpace(size);
	RequestNamedLWLockTranche(SHARED_ANSWERS_TRANCHE, 1);
	RequestNamedLWLockTranche(USAGE_TRANCHE, 1);
	RequestNamedLWLockTranche(SHARED_DATA_KEYS_TRANCHE, 1);
	RequestNamedLWLockTranche(PARALLEL_GATES_TRANCHE, 1);
}

/* shmem_startup_hook (hooks.c) */
void
pfg_shmem_startup(void)
{
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	pfg_shared_answers_shmem_startup(&(GetNamedLWLockTranche(SHARED_ANSWERS_TRANCHE))->lock);
	pfg_usage_shmem_startup(&(GetNamedLWLockTranche(USAGE_TRANCHE))->lock);
	pfg_redact_shmem_startup();
	pfg_progress_shmem_startup();
	pfg_audit_ring_shmem_startup();
	pfg_shared_data_keys_shmem_startup(&(GetNamedLWLockTranche(SHARED_DATA_KEYS_TRANCHE))->lock);
	pfg_parallel_gates_shmem_startup(&(GetNamedLWLockTranche(PARALLEL_GATES_TRANCHE))->lock);
	LWLockRelease(AddinShmemInitLock);
}
