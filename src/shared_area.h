/*-------------------------------------------------------------------------
 *
 * shared_area.h
 *	  Attaching to a DSA area whose handle is kept in shared memory
 *	  (shared_area.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef PROFILE_GUARD_SHARED_AREA_H
#define PROFILE_GUARD_SHARED_AREA_H

#include "storage/lwlock.h"
#include "utils/dsa.h"

extern dsa_area *pfg_shared_area_attach(LWLock *lock, int tranche,
										const char *tranche_name,
										dsa_handle *handle);

#endif							/* PROFILE_GUARD_SHARED_AREA_H */
