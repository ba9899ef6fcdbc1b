/*-------------------------------------------------------------------------
 *
 * sweep.h
 *	  A sweep's state: the tables it walks and what it found (types only),
 *	  shared by the sweep's lifecycle (erasure.c) and the statements it
 *	  runs on each table (erasure_statements.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef PROFILE_GUARD_SWEEP_H
#define PROFILE_GUARD_SWEEP_H

#include "executor/spi.h"
#include "nodes/pg_list.h"
#include "storage/block.h"
#include "storage/itemptr.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

/*
 * One guarded table of a sweep: the reads that find its due rows (run in
 * the extension's context), the writes that erase them (run as the table's
 * owner, see owner_context.c), and where it got to.
 */
typedef struct SweepTable
{
	Oid			relid;
	char	   *relation;		/* schema.table, for the log */
	char	   *read_sql;		/* due rows of a range; NULL: nothing can be due */
	char	   *pick_sql;		/* where a batch of N due rows ends */
	List	   *fast_sql;		/* instead of read_sql: per-tag reads */
	List	   *fast_tags;		/* ... and their tags */
	bool		general_too;	/* with fast_sql: read_sql for the due subjects */
	List	   *unlocked_sql;	/* fast_sql without the row lock, when only
								 * the rows' own columns decide; or NIL */
	List	   *unlocked_delete_sql;	/* ... and the owner's DELETEs of what
										 * they found, testing them again */
	/* checked before every batch (unquoted names) */
	char	   *subject_name;
	char	   *collected_name;
	char	   *tag_name;
	/* the writes */
	char	   *qualname;		/* quoted */
	bool		wide;
	bool		anonymise;
	char	   *delete_sql;		/* $1: TIDs */
	char	   *cut_sql;		/* one tag erased now, wide: its cells set
								 * to NULL; $1: TIDs */
	char	   *anon_sql;		/* $1: TIDs, $2: new subjects (unless NULL) */
	char	   *anon_sensitive_sql; /* long shape: also the value */
	char		anon_subject;	/* 'n' NULL, 'i' negative integers, 't' text */
	/*
	 * the batches' statements, planned once per sweep (generic plans, kept
	 * until the sweep's context goes): read_sql, fast_sql (in its order),
	 * delete_sql (as the owner), unlocked_sql and unlocked_delete_sql (as
	 * the owner); NULL until first run
	 */
	SPIPlanPtr	read_plan;
	SPIPlanPtr *fast_plans;
	SPIPlanPtr	delete_plan;
	SPIPlanPtr *unlocked_plans;
	SPIPlanPtr *unlocked_delete_plans;
	int			ncols;			/* wide: classified columns */
	char	  **cols;			/* quoted */
	char	  **tags;
	BlockNumber nblocks;		/* size when the sweep began */
	double		tuples_per_block;
	ItemPointerData resume;		/* rows up to here are done */
	bool		done;
	bool		skipped;		/* done without its due rows: unusable (warned) */
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
 * A sweep: computed by pfg_sweep_begin() in one transaction, then worked off
 * by pfg_sweep_batch() in as many transactions as the caller likes (each
 * batch erases and logs together), closed by pfg_sweep_finish() once every
 * table is done.  Everything lives in cxt, which outlives the transactions.
 */
typedef struct Sweep
{
	MemoryContext cxt;
	TimestampTz now;			/* the moment retention is measured at */
	bool		session_lock;	/* holds the sweep lock across transactions */
	bool		reporting;		/* shown in profile_guard.progress (progress.c) */
	bool		service_ended;
	bool		have_due;
	bool		have_keep;
	List	   *cutoff_tags;	/* retention cutoffs: tag names */
	List	   *cutoff_values;	/* ... and timestamps, as SQL literals */
	int			ntables;
	SweepTable *tables;
	List	   *results;		/* of SweepResult */
	MemoryContextCallback free_plans;	/* frees the tables' kept plans */
	int64		rows;			/* rows of guarded tables erased so far */
	int64		batches;
} Sweep;

#endif							/* PROFILE_GUARD_SWEEP_H */
