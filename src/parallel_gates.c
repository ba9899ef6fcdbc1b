/*-------------------------------------------------------------------------
 *
 * parallel_gates.c
 *	  Owns the gates inside a parallel plan.  The wide shape's gates are
 *	  parallel safe, so the planner may split a gated read over workers;
 *	  this file makes a worker decide as its leader would and makes the
 *	  leader account for what its workers did:
 *	    - the leader, as a run that may start workers begins, checks that
 *	      nothing private to it decides what its workers would answer:
 *	      policy, consent or data keys changed by its transaction (the
 *	      changes are visible to its own reads only), a purpose whose
 *	      served cells are recorded for a recipient (the record is the
 *	      leader's), a connection that may not carry the cells.  If any
 *	      does, the run starts no workers (the leader runs the whole plan,
 *	      as it runs a cursor's);
 *	    - otherwise it opens its slot in shared memory, one per backend:
 *	      its connection's security, for its workers' transport checks;
 *	    - a worker attaches to its leader's slot as its plan starts, and
 *	      counts what its gates examine, serve and mask; as its plan ends
 *	      it adds the counts to the slot; the leader adds them to the
 *	      statement's own once its workers are done, so the audit line and
 *	      the usage counters are those of a serial run;
 *	    - a worker refuses to run any gate without a slot to report to,
 *	      and any statement of its own (a PARALLEL SAFE function's) that
 *	      reads a guarded table, since only a leader audits a statement.
 *	  The long shape's gates and the whole-row mask stay parallel
 *	  restricted: they never run in a worker.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/parallel.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "storage/backendid.h"
#include "storage/lwlock.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"

#include "audit.h"
#include "catalog.h"
#include "parallel_gates.h"
#include "policy_generation.h"
#include "purpose.h"
#include "settings.h"
#include "shared_answers.h"
#include "shared_data_keys.h"
#include "transport.h"

/* what a slot holds of the workers' counts */
#define SLOT_MAX_RELS	32
#define SLOT_MAX_TAGS	256

typedef struct SlotTagCounts
{
	int			tag_id;
	int64		served;
	int64		masked;
	int64		hidden;
} SlotTagCounts;

/* a leader's run with workers, and what its workers counted */
typedef struct ParallelGatesSlot
{
	int			leader_pid;		/* 0: no run open */
	uint64		run;			/* the leader's number for the run */
	int			transport;		/* the leader's connection (transport.h) */
	int			nrels;
	int			ntags;
	PfgAuditRel rels[SLOT_MAX_RELS];
	SlotTagCounts tags[SLOT_MAX_TAGS];
} ParallelGatesSlot;

/* every slot, indexed by the leader's BackendId - 1, under SlotsLock */
static ParallelGatesSlot *Slots = NULL;
static int	NumSlots = 0;
static LWLock *SlotsLock = NULL;

/* the leader: its runs' numbers */
static uint64 RunsStarted = 0;

/* a worker: the plan its leader sent, and the run it attached to */
static QueryDesc *WorkerPlan = NULL;
static bool WorkerAttached = false;
static uint64 WorkerRun = 0;
static int	WorkerTransport = PFG_TRANSPORT_PLAIN;
static PfgAuditCounters *WorkerCounts = NULL;
static bool WorkerReported = false;	/* its counts are in the slot */

/* ---------------------------------------------------------------------
 * Shared memory (shmem.c)
 * ---------------------------------------------------------------------
 */

Size
pfg_parallel_gates_shmem_size(void)
{
	/* MaxBackends is known when shmem_request_hook runs */
	return mul_size(MaxBackends, sizeof(ParallelGatesSlot));
}

/* called with AddinShmemInitLock held */
void
pfg_parallel_gates_shmem_startup(LWLock *lock)
{
	bool		found;

	SlotsLock = lock;
	NumSlots = MaxBackends;
	Slots = ShmemInitStruct("profile_guard parallel gates",
							pfg_parallel_gates_shmem_size(), &found);
	if (!found)
		memset(Slots, 0, pfg_parallel_gates_shmem_size());
}

/* the slot of the leader 'backend', or NULL */
static ParallelGatesSlot *
slot_of(BackendId backend)
{
	if (Slots == NULL || backend < 1 || backend > NumSlots)
		return NULL;
	return &Slots[backend - 1];
}

/* ---------------------------------------------------------------------
 * The leader
 * ---------------------------------------------------------------------
 */

/*
 * Does anything private to this backend decide what the gates answer?
 * Then its workers, which cannot see it, must not run them.
 */
static bool
gates_need_leader(void)
{
	static bool deciding = false;
	bool		need;

	if (!pfg_any_guarded())
		return false;
	if (pfg_policy_changed_in_xact() || pfg_policy_changed_here() ||
		pfg_policy_any_subject_changed_here())
		return true;
	if (pfg_shared_data_keys_changed_in_xact())
		return true;
	if (pfg_secure_transport != PFG_SECURE_TRANSPORT_OFF &&
		(pfg_transport_state != 0 ? pfg_transport_state : pfg_transport_decide()) !=
		PFG_TRANSPORT_SECURE)
		return true;

	/*
	 * Reading a purpose's definition runs a query, which may be planned in
	 * parallel too: that one runs in the leader
	 */
	if (deciding)
		return true;
	deciding = true;
	PG_TRY();
	{
		need = pfg_purpose_records_recipient();
	}
	PG_FINALLY();
	{
		deciding = false;
	}
	PG_END_TRY();
	return need;
}

/*
 * ExecutorRun is about to run a plan that may start workers: open the
 * slot, or run without workers.  Another run of ours that is open (a
 * statement run by the leader's part of a parallel plan) also keeps this
 * one to the leader.
 */
void
pfg_parallel_gates_run_begin(PfgParallelRun *run, QueryDesc *queryDesc)
{
	PlannedStmt *stmt = queryDesc->plannedstmt;
	ParallelGatesSlot *slot;

	run->opened = false;
	run->original = NULL;
	/*
	 * ExecutePlan() starts workers only for a plan's first run (which
	 * runs, depending on the minor release, to the end or as
	 * execute_once says): every first run of such a plan is prepared
	 */
	if (!stmt->parallelModeNeeded || queryDesc->already_executed ||
		IsParallelWorker())
		return;
	slot = slot_of(MyBackendId);
	if (slot == NULL)
		return;
	/* only this backend writes its slot's leader_pid */
	if (slot->leader_pid == MyProcPid || gates_need_leader())
	{
		PlannedStmt *serial = palloc(sizeof(PlannedStmt));

		memcpy(serial, stmt, sizeof(PlannedStmt));
		serial->parallelModeNeeded = false;
		run->original = stmt;
		queryDesc->plannedstmt = serial;
		return;
	}
	if (pfg_transport_state == 0)
		(void) pfg_transport_decide();
	LWLockAcquire(SlotsLock, LW_EXCLUSIVE);
	slot->leader_pid = MyProcPid;
	slot->run = ++RunsStarted;
	slot->transport = pfg_transport_state;
	slot->nrels = 0;
	slot->ntags = 0;
	LWLockRelease(SlotsLock);
	run->opened = true;
}

static void
close_run(PfgParallelRun *run, QueryDesc *queryDesc, bool collect)
{
	ParallelGatesSlot *slot = slot_of(MyBackendId);
	PfgAuditRel *rels = NULL;
	SlotTagCounts *tags = NULL;
	int			nrels = 0;
	int			ntags = 0;

	if (run->original != NULL)
	{
		queryDesc->plannedstmt = run->original;
		run->original = NULL;
	}
	if (!run->opened || slot == NULL)
		return;
	run->opened = false;
	if (collect)
	{
		rels = palloc(sizeof(PfgAuditRel) * SLOT_MAX_RELS);
		tags = palloc(sizeof(SlotTagCounts) * SLOT_MAX_TAGS);
	}
	LWLockAcquire(SlotsLock, LW_EXCLUSIVE);
	if (collect)
	{
		nrels = slot->nrels;
		ntags = slot->ntags;
		memcpy(rels, slot->rels, sizeof(PfgAuditRel) * nrels);
		memcpy(tags, slot->tags, sizeof(SlotTagCounts) * ntags);
	}
	slot->leader_pid = 0;
	slot->nrels = 0;
	slot->ntags = 0;
	LWLockRelease(SlotsLock);

	/* into the statement being counted (the sink when none is) */
	for (int i = 0; i < nrels; i++)
	{
		PfgAuditRel *r = pfg_audit_rel_slot(rels[i].relid);

		r->seen += rels[i].seen;
		r->hidden += rels[i].hidden;
	}
	for (int i = 0; i < ntags; i++)
	{
		PfgAuditTag *t = pfg_audit_tag_slot(tags[i].tag_id, NULL, 0);

		t->served += tags[i].served;
		t->masked += tags[i].masked;
		t->hidden += tags[i].hidden;
	}
	if (collect)
	{
		pfree(rels);
		pfree(tags);
	}
}

/*
 * The run has ended: its workers have finished (ExecutePlan() shuts its
 * nodes down, waiting for them, before it returns).  Their counts go to
 * the statement being counted; the plan is given back its own.
 */
void
pfg_parallel_gates_run_end(PfgParallelRun *run, QueryDesc *queryDesc)
{
	close_run(run, queryDesc, true);
}

/*
 * The run failed: the counts that reached the slot go to the statement
 * (a worker that fails adds its own before its error reaches us; the
 * others are stopped, their counts lost).
 */
void
pfg_parallel_gates_run_abort(PfgParallelRun *run, QueryDesc *queryDesc)
{
	close_run(run, queryDesc, true);
}

/* ---------------------------------------------------------------------
 * A worker
 * ---------------------------------------------------------------------
 */

/* attach to the leader's open run, and count into our own counters */
static void
attach_to_leader(void)
{
	ParallelGatesSlot *slot = slot_of(ParallelLeaderBackendId);
	PGPROC	   *leader = MyProc->lockGroupLeader;
	MemoryContext cxt;

	if (slot == NULL || leader == NULL)
		return;
	LWLockAcquire(SlotsLock, LW_SHARED);
	if (slot->leader_pid != 0 && slot->leader_pid == leader->pid)
	{
		WorkerAttached = true;
		WorkerRun = slot->run;
		WorkerTransport = slot->transport;
	}
	LWLockRelease(SlotsLock);
	if (!WorkerAttached)
		return;
	pfg_transport_state = WorkerTransport;
	pfg_purpose_allow_in_worker();
	cxt = AllocSetContextCreate(TopMemoryContext, "profile_guard parallel worker counts",
								ALLOCSET_SMALL_SIZES);
	WorkerCounts = pfg_audit_counters_create(cxt);
	PfgAuditCur = WorkerCounts;
}

/*
 * A statement starts in a worker: the first is the part of the plan the
 * leader sent; any other is run by it (a PARALLEL SAFE function's), and
 * must not read a guarded table: it would be audited by no one.
 */
void
pfg_parallel_gates_worker_start(QueryDesc *queryDesc)
{
	ListCell   *lc;

	if (WorkerPlan == NULL)
	{
		WorkerPlan = queryDesc;
		attach_to_leader();
		return;
	}
	if (queryDesc == WorkerPlan || !pfg_any_guarded())
		return;
	foreach(lc, queryDesc->plannedstmt->rtable)
	{
		RangeTblEntry *rte = (RangeTblEntry *) lfirst(lc);

		if (rte->rtekind == RTE_RELATION && pfg_guarded_relation(rte->relid) != NULL)
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("a parallel worker cannot run a statement on guarded table \"%s\"",
							get_rel_name(rte->relid)),
					 errdetail("A function marked PARALLEL SAFE runs it inside a parallel plan, where it would not be audited as a statement of its own."),
					 errhint("Mark the function PARALLEL RESTRICTED, or run the query with max_parallel_workers_per_gather = 0.")));
	}
}

/* add a worker's counts to its leader's slot; false when they do not fit */
static bool
add_to_slot(ParallelGatesSlot *slot, const PfgAuditCounters *c)
{
	int			new_rels = 0;
	int			new_tags = 0;
	int			at[SLOT_MAX_TAGS];

	/* room first, so that nothing is added unless everything is */
	for (int i = 0; i < c->nrels; i++)
	{
		int			j;

		for (j = 0; j < slot->nrels && slot->rels[j].relid != c->rels[i].relid; j++)
			;
		if (j == slot->nrels)
			new_rels++;
	}
	for (int i = 0; i < c->ntags; i++)
	{
		int			j;

		for (j = 0; j < slot->ntags && slot->tags[j].tag_id != c->tags[i].tag_id; j++)
			;
		if (j == slot->ntags)
			new_tags++;
	}
	if (slot->nrels + new_rels > SLOT_MAX_RELS || slot->ntags + new_tags > SLOT_MAX_TAGS)
		return false;

	for (int i = 0; i < c->nrels; i++)
	{
		int			j;

		for (j = 0; j < slot->nrels && slot->rels[j].relid != c->rels[i].relid; j++)
			;
		if (j == slot->nrels)
		{
			slot->rels[j].relid = c->rels[i].relid;
			slot->rels[j].seen = 0;
			slot->rels[j].hidden = 0;
			slot->nrels++;
		}
		slot->rels[j].seen += c->rels[i].seen;
		slot->rels[j].hidden += c->rels[i].hidden;
	}
	for (int i = 0; i < c->ntags && i < SLOT_MAX_TAGS; i++)
	{
		int			j;

		for (j = 0; j < slot->ntags && slot->tags[j].tag_id != c->tags[i].tag_id; j++)
			;
		if (j == slot->ntags)
		{
			memset(&slot->tags[j], 0, sizeof(SlotTagCounts));
			slot->tags[j].tag_id = c->tags[i].tag_id;
			slot->ntags++;
		}
		at[i] = j;
	}
	for (int i = 0; i < c->ntags && i < SLOT_MAX_TAGS; i++)
	{
		slot->tags[at[i]].served += c->tags[i].served;
		slot->tags[at[i]].masked += c->tags[i].masked;
		slot->tags[at[i]].hidden += c->tags[i].hidden;
	}
	return true;
}

/* this worker's counts, to its leader's slot, once; false if they do not fit */
static bool
report_counts(QueryDesc *queryDesc)
{
	ParallelGatesSlot *slot = slot_of(ParallelLeaderBackendId);
	PGPROC	   *leader = MyProc->lockGroupLeader;
	bool		fits = true;

	if (queryDesc != WorkerPlan || !WorkerAttached || WorkerReported ||
		slot == NULL || leader == NULL)
		return true;
	if (WorkerCounts->nrels == 0 && WorkerCounts->ntags == 0)
		return true;
	LWLockAcquire(SlotsLock, LW_EXCLUSIVE);
	if (slot->leader_pid == leader->pid && slot->run == WorkerRun)
		fits = add_to_slot(slot, WorkerCounts);
	LWLockRelease(SlotsLock);
	WorkerReported = true;
	return fits;
}

/*
 * The leader's plan failed in this worker: what it counted before goes to
 * the leader, ahead of the error, as a serial run's failed statement
 * counts what it read before its error.
 */
void
pfg_parallel_gates_worker_failed(QueryDesc *queryDesc)
{
	(void) report_counts(queryDesc);
}

/* the leader's plan ends in this worker: its counts go to the leader */
void
pfg_parallel_gates_worker_end(QueryDesc *queryDesc)
{
	if (!report_counts(queryDesc))
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("the parallel workers of this statement read more guarded relations or tags than profile_guard can count for them"),
				 errdetail("Workers can report up to %d relations and %d tags to their leader.",
						   SLOT_MAX_RELS, SLOT_MAX_TAGS),
				 errhint("Run the statement with max_parallel_workers_per_gather = 0.")));
}
