/*-------------------------------------------------------------------------
 *
 * shared_area.c
 *	  Owns attaching a backend to a DSA area whose handle profile_guard
 *	  keeps in its shared memory: the published consent answers
 *	  (shared_answers.c) and the shared data keys (shared_data_keys.c)
 *	  each have one, created by the first backend that needs it.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "storage/dsm.h"
#include "utils/memutils.h"

#include "shared_area.h"

/*
 * This backend's mapping of a DSA area whose handle is kept in shared
 * memory under lock (exclusive here), created by the first backend that
 * needs it and pinned for the server's life; the mapping lasts until the
 * backend exits.  tranche names the area's own locks.
 */
dsa_area *
pfg_shared_area_attach(LWLock *lock, int tranche, const char *tranche_name,
					  dsa_handle *handle)
{
	MemoryContext old;
	dsa_area   *area;

	LWLockRegisterTranche(tranche, tranche_name);
	old = MemoryContextSwitchTo(TopMemoryContext);
	LWLockAcquire(lock, LW_EXCLUSIVE);
	PG_TRY();
	{
		if (*handle == DSM_HANDLE_INVALID)
		{
			area = dsa_create(tranche);
			dsa_pin(area);
			*handle = dsa_get_handle(area);
		}
		else
			area = dsa_attach(*handle);
		dsa_pin_mapping(area);
	}
	PG_FINALLY();
	{
		LWLockRelease(lock);
		MemoryContextSwitchTo(old);
	}
	PG_END_TRY();
	return area;
}
