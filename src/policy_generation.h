/*-------------------------------------------------------------------------
 *
 * policy_generation.h
 *	  What caches of consent answers follow (policy_generation.c): the
 *	  policy generation, the log of changed subjects, and the horizon up to
 *	  which a cache has applied that log.
 *
 *-------------------------------------------------------------------------
 */
#ifndef PROFILE_GUARD_POLICY_GENERATION_H
#define PROFILE_GUARD_POLICY_GENERATION_H

#include "access/transam.h"
#include "nodes/pg_list.h"
#include "utils/snapshot.h"

/*
 * The changes a cache has seen: every transaction below xmax that was not
 * running (xip) when the snapshot the cache was read under was taken.
 */
typedef struct ChangeHorizon
{
	FullTransactionId xmax;
	int			nxip;
	FullTransactionId *xip;
} ChangeHorizon;

extern void pfg_policy_generation_init(void);

/* advances with every signal (one load tells whether anything may have moved) */
extern uint64 pfg_policy_signals;

/* the snapshot every read of consent runs under (pushed by the caller) */
extern Snapshot pfg_policy_snapshot(void);

extern uint64 pfg_policy_generation_current(void);
extern bool pfg_policy_generation_signalled(void);
extern bool pfg_policy_subjects_signalled(void);
extern void pfg_policy_subjects_signal_consumed(void);
extern void pfg_policy_subjects_signal_again(void);

extern void pfg_policy_horizon_of(Snapshot snapshot, ChangeHorizon *horizon,
							  MemoryContext cxt);
extern bool pfg_policy_horizon_covers(const ChangeHorizon *horizon, Snapshot snapshot);
extern List *pfg_policy_changed_subjects(const ChangeHorizon *since);

extern bool pfg_policy_changed_here(void);
extern bool pfg_policy_subject_changed_here(const char *data, uint32 len);

/* has this transaction changed any subject's answers?  (asked per row) */
extern bool pfg_policy_subjects_changed_here;

static inline bool
pfg_policy_any_subject_changed_here(void)
{
	return pfg_policy_subjects_changed_here;
}

#endif							/* PROFILE_GUARD_POLICY_GENERATION_H */
