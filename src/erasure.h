/*-------------------------------------------------------------------------
 *
 * erasure.h
 *	  The erasure engine's interface: the sweep (erasure.c) and its
 *	  background worker (erasure_worker.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef PROFILE_GUARD_ERASURE_H
#define PROFILE_GUARD_ERASURE_H

#include "sweep.h"

/* erasure.c */
extern bool pfg_erasure_in_progress(void);
extern bool pfg_erasure_writing(Oid relid);
extern Sweep *pfg_sweep_begin(MemoryContext cxt, bool full, bool session_lock);
extern int64 pfg_sweep_batch(Sweep *sweep, int table, int64 limit, bool exact);
extern bool pfg_sweep_all_done(Sweep *sweep);
extern void pfg_sweep_finish(Sweep *sweep, bool complete);

#endif							/* PROFILE_GUARD_ERASURE_H */
