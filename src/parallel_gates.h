/*-------------------------------------------------------------------------
 *
 * parallel_gates.h
 *	  The gates inside a parallel plan (parallel_gates.c): whether a
 *	  statement's workers may run them, what the leader hands its workers
 *	  and the counts the workers hand back.
 *
 *-------------------------------------------------------------------------
 */
#ifndef PROFILE_GUARD_PARALLEL_GATES_H
#define PROFILE_GUARD_PARALLEL_GATES_H

#include "executor/execdesc.h"
#include "storage/lwlock.h"

/* _PG_init: the setting profile_guard.parallel_gates */
extern void pfg_parallel_gates_define_settings(void);

/* shared memory (shmem.c) */
extern Size pfg_parallel_gates_shmem_size(void);
extern void pfg_parallel_gates_shmem_startup(LWLock *lock);

/*
 * The leader, around ExecutorRun (hooks.c): a run that may start workers
 * either hands them what they need and collects their counts at the end,
 * or runs without workers.
 */
typedef struct PfgParallelRun
{
	bool		opened;			/* this run owns the backend's slot */
	PlannedStmt *original;		/* the plan swapped for a serial copy, or NULL */
} PfgParallelRun;

extern void pfg_parallel_gates_run_begin(PfgParallelRun *run, QueryDesc *queryDesc);
extern void pfg_parallel_gates_run_end(PfgParallelRun *run, QueryDesc *queryDesc);
extern void pfg_parallel_gates_run_abort(PfgParallelRun *run, QueryDesc *queryDesc);

/* a parallel worker, at each ExecutorStart and ExecutorEnd (hooks.c) */
extern void pfg_parallel_gates_worker_start(QueryDesc *queryDesc);
extern void pfg_parallel_gates_worker_end(QueryDesc *queryDesc);
extern void pfg_parallel_gates_worker_failed(QueryDesc *queryDesc);

#endif							/* PROFILE_GUARD_PARALLEL_GATES_H */
