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

#include "nodes/pg_list.h"
#include "storage/block.h"
#include "storage/itemptr.h"
#include "utils/timestamp.h"

/* one guarded table of a sweep: its batch statement and where it got to */
typedef struct SweepTable
{
	Oid			relid;
	char	   *relation;		/* schema.table, for the log */
	char	   *batch_sql;		/* NULL: nothing can be due in it */
	char	   *pick_sql;		/* where a batch of N due rows ends */
	List	   *fast_sql;		/* instead of batch_sql: per-tag DELETEs */
	List	   *fast_tags;		/* ... and their tags */
	bool		general_too;	/* with fast_sql: batch_sql for the due subjects */
	BlockNumber nblocks;		/* size when the sweep began */
	double		tuples_per_block;
	ItemPointerData resume;		/* rows up to here are done */
	bool		done;
} SweepTable;

/* what a sweep did, per relation, tag, reason and action */
typedef struct SweepResult
{
	char	   *relation;
	char	   *tag;			/* NULL for key destruction, tombstones */
	char	   *reason;
	char	   *action;
	int64		rows;
} SweepResult;

/*
 * A sweep: computed by pg_sweep_begin() in one transaction, then worked off
 * by pg_sweep_batch() in as many transactions as the caller likes (each
 * batch erases and logs together), closed by pg_sweep_finish() once every
 * table is done.  Everything lives in cxt, which outlives the transactions.
 */
typedef struct Sweep
{
	MemoryContext cxt;
	TimestampTz now;			/* the moment retention is measured at */
	bool		session_lock;	/* holds the sweep lock across transactions */
	bool		service_ended;
	bool		have_due;
	bool		have_keep;
	List	   *cutoff_tags;	/* retention cutoffs: tag names */
	List	   *cutoff_values;	/* ... and timestamps, as SQL literals */
	int			ntables;
	SweepTable *tables;
	List	   *results;		/* of SweepResult */
	int64		rows;			/* rows of guarded tables erased so far */
	int64		batches;
} Sweep;

/* erasure.c */
extern bool pg_erasure_in_progress(void);
extern Sweep *pg_sweep_begin(MemoryContext cxt, bool full, bool session_lock);
extern int64 pg_sweep_batch(Sweep *sweep, int table, int64 limit, bool exact);
extern bool pg_sweep_all_done(Sweep *sweep);
extern void pg_sweep_finish(Sweep *sweep, bool complete);

/* erasure_worker.c */
extern void pg_erasure_define_settings(void);
extern void pg_erasure_worker_register(void);

#endif							/* PROFILE_GUARD_ERASURE_H */
