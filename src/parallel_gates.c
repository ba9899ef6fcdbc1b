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
 *	      changes are visible to its own reads only), a transaction
 *	      snapshot (REPEATABLE READ, SERIALIZABLE: the gates read consent
 *	      and keys as of now, a worker as of the transaction's snapshot),
 *	      a purpose whose served cells are recorded for a recipient (the
 *	      record is the leader's), a connection that may not carry the
 *	      cells.  Nor may workers run before what they read is published
 *	      in shared memory (the purpose's answers, the data keys when the
 *	      plan decrypts): none can publish during a parallel operation, so
 *	      each would load it all for itself.  If any of this holds, the run
 *	      starts no workers (the leader runs the whole plan, as it runs a
 *	      cursor's, and publishes what it loads);
 *	    - otherwise it opens its slot in shared memory, one per backend:
 *	      its connection's security, for its workers' transport checks,
 *	      and the purpose fixed for its statement;
 *	    - a worker attaches to its leader's slot as its plan starts, and
 *	      counts what its gates examine, serve and mask; it adds the
 *	      counts to the slot as its plan ends, fails, or as the worker
 *	      exits (stopped by its leader's abort);
 *	    - the leader adds them to the statement's own once its workers are
 *	      done: after a run, or, for a run that failed, as the executor's
 *	      memory goes (the abort has stopped the workers by then), before
 *	      the audit keeps the failed statement's record; so the audit line
 *	      and the usage counters are those of a serial run;
 *	    - a worker refuses to run any gate without a slot to report to
 *	      (purpose.c), and any statement of its own (a PARALLEL SAFE
 *	      function's) that reads a guarded table, since only a leader
 *	      audits a statement.
 *	  A gated plan starts at most one worker fewer than the CPUs the server
 *	  may run on: its work is the cipher's, bound by the CPU, and a worker
 *	  beyond them takes its time from the leader, the fastest of them
 *	  (its pages, answers and keys are mapped; a worker maps them again).
 *	  The long shape's gates and the whole-row mask stay parallel
 *	  restricted: they never run in a worker.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <sched.h>
#include <unistd.h>

#include "access/parallel.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "nodes/execnodes.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "nodes/parsenodes.h"
#include "parser/parse_func.h"
#include "storage/backendid.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"

#include "audit.h"
#include "bypass.h"
#include "catalog.h"
#include "consent_cache.h"
#include "data_key.h"
#include "extension.h"
#include "parallel_gates.h"
#include "plan_walk.h"
#include "policy_generation.h"
#include "purpose.h"
#include "settings.h"
#include "shared_answers.h"
#include "shared_data_keys.h"
#include "transport.h"

/* profile_guard.parallel_gates */
static bool parallel_gates = true;

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
	char		purpose[NAMEDATALEN * 2];	/* the statement's; "": none */
	int			nrels;
	int			ntags;
	PfgAuditRel rels[SLOT_MAX_RELS];
	SlotTagCounts tags[SLOT_MAX_TAGS];
} ParallelGatesSlot;

/* every slot, indexed by the leader's BackendId - 1, under SlotsLock */
static ParallelGatesSlot *Slots = NULL;
static int	NumSlots = 0;
static LWLock *SlotsLock = NULL;

/* the leader: its runs' numbers; runs under way; a failed run not collected */
static uint64 RunsStarted = 0;
static int	RunsUnderWay = 0;
static bool FailedRunPending = false;

/* a failed run's counts, collected once its workers are gone */
typedef struct FailedRun
{
	MemoryContextCallback cb;
	PfgAuditCounters *into;
} FailedRun;

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

/* _PG_init */
void
pfg_parallel_gates_define_settings(void)
{
	DefineCustomBoolVariable("profile_guard.parallel_gates",
							 "Whether the gates of a read may run in parallel workers.",
							 "on: whenever the planner plans workers, at most one fewer than the CPUs the server may run on; off: never. The same cells are served and counted either way.",
							 &parallel_gates,
							 true,
							 PGC_USERSET,
							 0,
							 NULL, NULL, NULL);
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
 * Is what the workers' gates read published in shared memory: the
 * purpose's answers, and the data keys if the plan decrypts?  If not, each
 * worker would read it all for itself (it cannot publish during a
 * parallel operation), slower than the leader alone, which publishes it
 * for the next statements.
 */
static bool
shared_state_ready(PlannedStmt *stmt, const char *purpose)
{
	Oid			argtypes[4] = {ANYOID, INT4OID, TEXTOID, ANYELEMENTOID};
	Oid			decrypt;

	if (purpose[0] == '\0')
		return true;			/* refused by the leader before any worker */
	if (!pfg_consent_answers_shared(purpose))
		return false;
	decrypt = LookupFuncName(list_make2(makeString(PFG_SCHEMA_NAME),
										makeString("_sensitive_cell_gate")),
							 4, argtypes, true);
	return !OidIsValid(decrypt) || !pfg_plan_calls_function(stmt, decrypt) ||
		pfg_data_keys_shared();
}

/* the first guarded relation the plan reads (it has gates), or InvalidOid */
static Oid
guarded_relation_read(PlannedStmt *stmt)
{
	ListCell   *lc;

	foreach(lc, stmt->rtable)
	{
		RangeTblEntry *rte = (RangeTblEntry *) lfirst(lc);

		if (rte->rtekind == RTE_RELATION && pfg_guarded_relation(rte->relid) != NULL)
			return rte->relid;
	}
	return InvalidOid;
}

/* does 'stmt' read a guarded table through the gates (no bypass)? */
static bool
plan_is_gated(PlannedStmt *stmt)
{
	return pfg_any_guarded() && !pfg_current_user_bypasses() &&
		OidIsValid(guarded_relation_read(stmt));
}

/*
 * The workers a gated plan may start: the CPUs this process may run on
 * (its affinity; the CPUs online where that is unknown), less the leader's
 */
static int
gated_workers_allowed(void)
{
	static int	cpus = 0;

	if (cpus == 0)
	{
#ifdef CPU_COUNT
		cpu_set_t	set;

		if (sched_getaffinity(0, sizeof(set), &set) == 0)
			cpus = CPU_COUNT(&set);
#endif
		if (cpus <= 0)
			cpus = (int) sysconf(_SC_NPROCESSORS_ONLN);
		if (cpus <= 0)
			cpus = 1;
	}
	return cpus - 1;
}

/*
 * Does anything private to this backend decide what the plan's gates
 * answer, or is what they read not published yet?  Then its workers must
 * not run them.  A plan without gates ('gated' false) may always run in
 * workers (a statement a worker runs itself on a guarded table is
 * refused).
 */
static bool
gates_need_leader(PlannedStmt *stmt, bool gated, const char *purpose)
{
	static bool deciding = false;
	bool		need;

	if (!pfg_any_guarded())
		return false;

	/*
	 * The gates read consent and keys as of now (the latest snapshot), a
	 * worker as of its transaction's snapshot: the same in READ COMMITTED
	 * but for what commits while the statement runs, not in REPEATABLE
	 * READ or SERIALIZABLE.  Such a transaction, or one that changed
	 * policy, consent or keys, keeps every plan to the leader (its
	 * statements that read no guarded table too: the catalog queries of
	 * the functions that make those changes, say).
	 */
	if (IsolationUsesXactSnapshot())
		return true;
	if (pfg_policy_changed_in_xact() || pfg_policy_changed_here() ||
		pfg_policy_any_subject_changed_here())
		return true;
	if (pfg_shared_data_keys_changed_in_xact())
		return true;
	if (!gated)
		return false;
	if (!parallel_gates || gated_workers_allowed() == 0)
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
		need = pfg_purpose_records_recipient() ||
			!shared_state_ready(stmt, purpose);
	}
	PG_FINALLY();
	{
		deciding = false;
	}
	PG_END_TRY();
	return need;
}

/*
 * A Gather or Gather Merge that would start more workers than allowed is
 * given a copy of its plan node that starts fewer (the plan is the cached
 * plan's, which other runs share; the copy goes with the statement).  The
 * workers are launched by the node's first call, after this.
 */
static bool
cap_gather_workers(PlanState *ps, void *context)
{
	int			allowed = *(int *) context;

	if (ps == NULL)
		return false;
	if (IsA(ps, GatherState) && ((Gather *) ps->plan)->num_workers > allowed)
	{
		Gather	   *capped = palloc(sizeof(Gather));

		memcpy(capped, ps->plan, sizeof(Gather));
		capped->num_workers = allowed;
		ps->plan = (Plan *) capped;
	}
	else if (IsA(ps, GatherMergeState) &&
			 ((GatherMerge *) ps->plan)->num_workers > allowed)
	{
		GatherMerge *capped = palloc(sizeof(GatherMerge));

		memcpy(capped, ps->plan, sizeof(GatherMerge));
		capped->num_workers = allowed;
		ps->plan = (Plan *) capped;
	}
	return planstate_tree_walker(ps, cap_gather_workers, context);
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
	const char *purpose;
	bool		gated;
	MemoryContext old;

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
	purpose = PfgAuditCur->purpose_fixed ? PfgAuditCur->purpose : pfg_purpose;
	if (purpose == NULL)
		purpose = "";
	/*
	 * What the decision allocates goes with the statement: it may run in
	 * memory that lasts much longer (a SQL function's, once for each row
	 * of the query calling it)
	 */
	old = MemoryContextSwitchTo(queryDesc->estate->es_query_cxt);
	/* only this backend writes its slot's leader_pid */
	if (slot->leader_pid == MyProcPid && RunsUnderWay == 0 && !FailedRunPending)
		slot->leader_pid = 0;	/* left open by a run that never ended */
	gated = plan_is_gated(stmt);
	if (slot->leader_pid == MyProcPid || gates_need_leader(stmt, gated, purpose) ||
		strlen(purpose) >= sizeof(slot->purpose))
	{
		PlannedStmt *serial = palloc(sizeof(PlannedStmt));

		memcpy(serial, stmt, sizeof(PlannedStmt));
		serial->parallelModeNeeded = false;
		run->original = stmt;
		queryDesc->plannedstmt = serial;
		MemoryContextSwitchTo(old);
		return;
	}
	if (gated)
	{
		int			allowed = gated_workers_allowed();

		(void) cap_gather_workers(queryDesc->planstate, &allowed);
	}
	MemoryContextSwitchTo(old);
	if (pfg_transport_state == 0)
		(void) pfg_transport_decide();
	LWLockAcquire(SlotsLock, LW_EXCLUSIVE);
	slot->leader_pid = MyProcPid;
	slot->run = ++RunsStarted;
	slot->transport = pfg_transport_state;
	strlcpy(slot->purpose, purpose, sizeof(slot->purpose));
	slot->nrels = 0;
	slot->ntags = 0;
	LWLockRelease(SlotsLock);
	run->opened = true;
	RunsUnderWay++;
}

/* the slot's counts, added to 'into'; the slot closed */
static void
collect_and_close(PfgAuditCounters *into)
{
	ParallelGatesSlot *slot = slot_of(MyBackendId);
	PfgAuditRel *rels;
	SlotTagCounts *tags;
	int			nrels;
	int			ntags;

	if (slot == NULL)
		return;
	rels = palloc(sizeof(PfgAuditRel) * SLOT_MAX_RELS);
	tags = palloc(sizeof(SlotTagCounts) * SLOT_MAX_TAGS);
	LWLockAcquire(SlotsLock, LW_EXCLUSIVE);
	nrels = slot->nrels;
	ntags = slot->ntags;
	memcpy(rels, slot->rels, sizeof(PfgAuditRel) * nrels);
	memcpy(tags, slot->tags, sizeof(SlotTagCounts) * ntags);
	slot->leader_pid = 0;
	slot->nrels = 0;
	slot->ntags = 0;
	LWLockRelease(SlotsLock);

	for (int i = 0; i < nrels; i++)
	{
		PfgAuditRel *r = pfg_audit_rel_slot_in(into, rels[i].relid);

		r->seen += rels[i].seen;
		r->hidden += rels[i].hidden;
	}
	for (int i = 0; i < ntags; i++)
	{
		PfgAuditTag *t = pfg_audit_tag_slot_in(into, tags[i].tag_id, NULL, 0);

		t->served += tags[i].served;
		t->masked += tags[i].masked;
		t->hidden += tags[i].hidden;
	}
	pfree(rels);
	pfree(tags);
}

/*
 * The run has ended: its workers have finished (ExecutePlan() shuts its
 * nodes down, waiting for them, before it returns).  Their counts go to
 * the statement being counted; the plan is given back its own.
 */
void
pfg_parallel_gates_run_end(PfgParallelRun *run, QueryDesc *queryDesc)
{
	if (run->original != NULL)
	{
		queryDesc->plannedstmt = run->original;
		run->original = NULL;
	}
	if (!run->opened)
		return;
	run->opened = false;
	RunsUnderWay--;
	collect_and_close(PfgAuditCur);
}

/* the failed run's memory goes: its workers are gone, their counts in */
static void
failed_run_gone(void *arg)
{
	FailedRun  *failed = (FailedRun *) arg;

	FailedRunPending = false;
	collect_and_close(failed->into);
}

/*
 * The run failed.  Its workers may still be running: the abort stops them
 * (a worker that stops adds its counts as it exits), and only then frees
 * the executor's memory, before the audit keeps the failed statement's
 * record.  So the counts are collected then, into the statement counted
 * now, by a callback on that memory, which runs before the audit's.
 */
void
pfg_parallel_gates_run_abort(PfgParallelRun *run, QueryDesc *queryDesc)
{
	FailedRun  *failed;

	if (run->original != NULL)
	{
		queryDesc->plannedstmt = run->original;
		run->original = NULL;
	}
	if (!run->opened)
		return;
	run->opened = false;
	RunsUnderWay--;
	failed = MemoryContextAlloc(queryDesc->estate->es_query_cxt, sizeof(FailedRun));
	failed->into = PfgAuditCur;
	failed->cb.func = failed_run_gone;
	failed->cb.arg = failed;
	MemoryContextRegisterResetCallback(queryDesc->estate->es_query_cxt, &failed->cb);
	FailedRunPending = true;
}

/* ---------------------------------------------------------------------
 * A worker
 * ---------------------------------------------------------------------
 */

static bool report_counts(QueryDesc *queryDesc);

/* the worker exits (stopped by its leader's abort, say): counts not reported go */
static void
worker_exits(int code, Datum arg)
{
	(void) report_counts(WorkerPlan);
}

/* attach to the leader's open run, and count into our own counters */
static void
attach_to_leader(void)
{
	ParallelGatesSlot *slot = slot_of(ParallelLeaderBackendId);
	PGPROC	   *leader = MyProc->lockGroupLeader;
	MemoryContext cxt;
	char		purpose[NAMEDATALEN * 2];

	if (slot == NULL || leader == NULL)
		return;
	LWLockAcquire(SlotsLock, LW_SHARED);
	if (slot->leader_pid != 0 && slot->leader_pid == leader->pid)
	{
		WorkerAttached = true;
		WorkerRun = slot->run;
		WorkerTransport = slot->transport;
		memcpy(purpose, slot->purpose, sizeof(purpose));
	}
	LWLockRelease(SlotsLock);
	if (!WorkerAttached)
		return;
	pfg_transport_state = WorkerTransport;
	pfg_purpose_allow_in_worker();
	cxt = AllocSetContextCreate(TopMemoryContext, "profile_guard parallel worker counts",
								ALLOCSET_SMALL_SIZES);
	WorkerCounts = pfg_audit_counters_create(cxt);
	/* the purpose fixed for the leader's statement, whatever ours says */
	WorkerCounts->purpose_fixed = true;
	WorkerCounts->purpose = purpose[0] != '\0' ? MemoryContextStrdup(cxt, purpose) : NULL;
	WorkerCounts->purpose_generation = pfg_purpose_generation;
	PfgAuditCur = WorkerCounts;
	/* a worker stopped by its leader's abort exits: it reports then */
	before_shmem_exit(worker_exits, (Datum) 0);
}

/*
 * A statement starts in a worker: the first is the part of the plan the
 * leader sent; any other is run by it (a PARALLEL SAFE function's), and
 * must not read a guarded table: it would be audited by no one.
 */
void
pfg_parallel_gates_worker_start(QueryDesc *queryDesc)
{
	Oid			guarded;

	if (WorkerPlan == NULL)
	{
		WorkerPlan = queryDesc;
		attach_to_leader();
		return;
	}
	if (queryDesc == WorkerPlan || !pfg_any_guarded())
		return;
	guarded = guarded_relation_read(queryDesc->plannedstmt);
	if (OidIsValid(guarded))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("a parallel worker cannot run a statement on guarded table \"%s\"",
						get_rel_name(guarded)),
				 errdetail("A function marked PARALLEL SAFE runs it inside a parallel plan, where it would not be audited as a statement of its own."),
				 errhint("Mark the function PARALLEL RESTRICTED, or run the query with max_parallel_workers_per_gather = 0.")));
}

/* where relation 'relid' is counted in the slot, or -1 */
static int
slot_rel_index(const ParallelGatesSlot *slot, Oid relid)
{
	for (int j = 0; j < slot->nrels; j++)
		if (slot->rels[j].relid == relid)
			return j;
	return -1;
}

/* where tag 'tag_id' is counted in the slot, or -1 */
static int
slot_tag_index(const ParallelGatesSlot *slot, int tag_id)
{
	for (int j = 0; j < slot->ntags; j++)
		if (slot->tags[j].tag_id == tag_id)
			return j;
	return -1;
}

/* add a worker's counts to its leader's slot; false when they do not fit */
static bool
add_to_slot(ParallelGatesSlot *slot, const PfgAuditCounters *c)
{
	int			new_rels = 0;
	int			new_tags = 0;

	/* room first, so that nothing is added unless everything is */
	for (int i = 0; i < c->nrels; i++)
		if (slot_rel_index(slot, c->rels[i].relid) < 0)
			new_rels++;
	for (int i = 0; i < c->ntags; i++)
		if (slot_tag_index(slot, c->tags[i].tag_id) < 0)
			new_tags++;
	if (slot->nrels + new_rels > SLOT_MAX_RELS || slot->ntags + new_tags > SLOT_MAX_TAGS)
		return false;

	for (int i = 0; i < c->nrels; i++)
	{
		int			j = slot_rel_index(slot, c->rels[i].relid);

		if (j < 0)
		{
			j = slot->nrels++;
			slot->rels[j].relid = c->rels[i].relid;
			slot->rels[j].seen = 0;
			slot->rels[j].hidden = 0;
		}
		slot->rels[j].seen += c->rels[i].seen;
		slot->rels[j].hidden += c->rels[i].hidden;
	}
	for (int i = 0; i < c->ntags; i++)
	{
		int			j = slot_tag_index(slot, c->tags[i].tag_id);

		if (j < 0)
		{
			j = slot->ntags++;
			memset(&slot->tags[j], 0, sizeof(SlotTagCounts));
			slot->tags[j].tag_id = c->tags[i].tag_id;
		}
		slot->tags[j].served += c->tags[i].served;
		slot->tags[j].masked += c->tags[i].masked;
		slot->tags[j].hidden += c->tags[i].hidden;
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
