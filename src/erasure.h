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
	/* checked before every batch (unquoted names) */
	char	   *subject_name;
	char	   *collected_name;
	char	   *tag_name;
	/* the writes */
	char	   *qualname;		/* quoted */
	bool		wide;
	bool		anonymise;
	char	   *delete_sql;		/* $1: TIDs */
	char	   *anon_sql;		/* $1: TIDs, $2: new subjects (unless NULL) */
	char	   *anon_sensitive_sql; /* long shape: also the value */
	char		anon_subject;	/* 'n' NULL, 'i' negative integers, 't' text */
	int			ncols;			/* wide: classified columns */
	char	  **cols;			/* quoted */
	char	  **tags;
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
extern bool pfg_erasure_in_progress(void);
extern bool pfg_erasure_writing(Oid relid);
extern Sweep *pfg_sweep_begin(MemoryContext cxt, bool full, bool session_lock);
extern int64 pfg_sweep_batch(Sweep *sweep, int table, int64 limit, bool exact);
extern bool pfg_sweep_all_done(Sweep *sweep);
extern void pfg_sweep_finish(Sweep *sweep, bool complete);

/* erasure_worker.c */
extern void pfg_erasure_define_settings(void);
extern void pfg_erasure_worker_register(void);

#endif							/* PROFILE_GUARD_ERASURE_H */
