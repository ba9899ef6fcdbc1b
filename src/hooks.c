/*-------------------------------------------------------------------------
 *
 * hooks.c
 *	  Every hook of profile_guard, installed once, by pfg_install_hooks()
 *	  from _PG_init.  Each saves the hook it replaces as next_* and calls it
 *	  (or the standard function) exactly once on every path.  A hook here
 *	  only dispatches, in the order below, to the files that own the work
 *	  and its state: the read path's rewriting (gate.c), the audited
 *	  statements (audit.c), the redaction of error messages (redact.c) and
 *	  shared memory (shmem.c).
 *
 *	  The audit runs outermost, around the gate: a refusal raised by the
 *	  gate's check (or by anything the statement runs) is caught on its
 *	  way out, logged and counted as a denial, and re-thrown.  Where a hook
 *	  calls the next one inside PG_TRY, its PG_CATCH restores what was
 *	  changed before the call (the counting target, the nesting level, the
 *	  error context) and re-throws; audit.h describes the frame that
 *	  carries that state.
 *
 *	  The order, hook by hook ("next" is the hook we replaced, or the
 *	  standard function):
 *
 *	  shmem_request_hook: next; every part's size and named LWLock
 *	  tranches (shmem.c).
 *
 *	  shmem_startup_hook: next; every part's set-up (shmem.c).
 *
 *	  post_parse_analyze_hook: next; the statement starts (below).
 *
 *	  planner_hook: the gate rewrites the query; next; the gate marks the
 *	  plan (re-planned on SET ROLE, inlined functions as dependencies).
 *
 *	  ExecutorStart_hook: the statement starts (in a parallel worker
 *	  instead: it attaches to its leader's run, parallel_gates.c);
 *	  the audit begins the statement when it touches a guarded relation;
 *	  in PG_TRY when it does: the gate checks the purpose, next; then the
 *	  audit follows the statement until it ends.  On error: the audit's
 *	  abort (the denial noted, re-thrown).
 *
 *	  ExecutorRun_hook, ExecutorFinish_hook: the audit makes the statement
 *	  the gates' counting target and raises the nesting level; for a
 *	  guarded statement, errors are marked for redaction (redact.c's
 *	  error context callback); in PG_TRY: (ExecutorRun) a run that may
 *	  start workers opens its parallel slot or is kept to the leader
 *	  (parallel_gates.c); next; the workers' counts are collected.  Then,
 *	  or on error, the mark is removed and the audit restores the target
 *	  and the level (and sums the rows processed, ExecutorRun); on error
 *	  a worker reports its counts, a leader collects them and closes its
 *	  slot, and the audit notes a denial and re-throws.
 *
 *	  ExecutorEnd_hook: in a parallel worker, the plan's counts go to the
 *	  leader (parallel_gates.c); the audit ends the statement (its line, its
 *	  counts); next; at the outermost level, the statement's shared data
 *	  keys are let go (shared_data_keys.c).
 *
 *	  ProcessUtility_hook: the statement starts; a statement that may drop
 *	  the extension is noted for the shared data keys; the audit begins a COPY
 *	  of a guarded table and raises the nesting level; for such a COPY,
 *	  errors are marked for redaction; in PG_TRY: the gate's part before
 *	  (refuses an ALTER that would break a guarded table, notes a table
 *	  joining or leaving a guarded tree, turns COPY guarded TO into the
 *	  gated COPY (SELECT ...) TO), next with the statement the gate
 *	  returned, the gate's part after (the tree's changes applied; on
 *	  success only).  Then, or on error, the mark is removed and the audit
 *	  lowers the level; after success it reports a bypassing role's COPY
 *	  TO, on error it notes a denial and re-throws.  After success, at the
 *	  outermost level, the statement's shared data keys are let go.
 *
 *	  emit_log_hook: redaction of an error that concerns a guarded
 *	  relation; next.
 *
 *	  "The statement starts": the names of the guarded relations are
 *	  loaded if they changed (redact.c), then the statements that failed
 *	  since the last one are logged and counted (audit.c), in normal
 *	  context.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/parallel.h"
#include "executor/executor.h"
#include "miscadmin.h"
#include "optimizer/planner.h"
#include "parser/analyze.h"
#include "storage/ipc.h"
#include "tcop/utility.h"
#include "utils/elog.h"
#include "utils/inval.h"

#include "hooks.h"
#include "audit.h"
#include "gate.h"
#include "redact.h"
#include "shared_data_keys.h"
#include "parallel_gates.h"
#include "shmem.h"

static shmem_request_hook_type next_shmem_request_hook = NULL;
static shmem_startup_hook_type next_shmem_startup_hook = NULL;
static post_parse_analyze_hook_type next_post_parse_analyze_hook = NULL;
static planner_hook_type next_planner_hook = NULL;
static ExecutorStart_hook_type next_ExecutorStart_hook = NULL;
static ExecutorRun_hook_type next_ExecutorRun_hook = NULL;
static ExecutorFinish_hook_type next_ExecutorFinish_hook = NULL;
static ExecutorEnd_hook_type next_ExecutorEnd_hook = NULL;
static ProcessUtility_hook_type next_ProcessUtility_hook = NULL;
static emit_log_hook_type next_emit_log_hook = NULL;

/*
 * At the start of a statement, in normal context.  Consent, policy and
 * data key changes reach this backend's caches as invalidations, which
 * PostgreSQL takes in when it opens or locks a relation; a statement whose
 * plan is cached (EXECUTE, a PL/pgSQL statement) in a transaction that
 * holds its locks already would not take them in, and would run on answers
 * and keys that a committed change withdrew.
 */
static void
statement_starts(void)
{
	AcceptInvalidationMessages();
	pfg_redact_refresh();
	pfg_audit_flush_lost();
}

/* errors raised from here on concern a guarded statement */
static inline void
push_redaction_mark(ErrorContextCallback *errcb)
{
	errcb->callback = pfg_redact_error_callback;
	errcb->arg = NULL;
	errcb->previous = error_context_stack;
	error_context_stack = errcb;
}

static inline void
pop_redaction_mark(ErrorContextCallback *errcb)
{
	error_context_stack = errcb->previous;
}

/* ---- shared memory ---- */

static void
profile_guard_shmem_request(void)
{
	if (next_shmem_request_hook)
		next_shmem_request_hook();
	pfg_shmem_request();
}

static void
profile_guard_shmem_startup(void)
{
	if (next_shmem_startup_hook)
		next_shmem_startup_hook();
	pfg_shmem_startup();
}

/* ---- parse analysis and planning ---- */

static void
profile_guard_post_parse_analyze(ParseState *pstate, Query *query,
								 JumbleState *jstate)
{
	if (next_post_parse_analyze_hook)
		next_post_parse_analyze_hook(pstate, query, jstate);
	statement_starts();
}

static PlannedStmt *
profile_guard_planner(Query *parse, const char *query_string,
					  int cursorOptions, ParamListInfo boundParams)
{
	PfgGatePlanning planning;
	PlannedStmt *result;

	pfg_gate_planner_before(parse, boundParams, &planning);
	if (next_planner_hook)
		result = next_planner_hook(parse, query_string, cursorOptions, boundParams);
	else
		result = standard_planner(parse, query_string, cursorOptions, boundParams);
	pfg_gate_planner_after(result, &planning);
	return result;
}

/* ---- the executor ---- */

/* the gate's check, then the executor's start */
static void
gate_and_start(QueryDesc *queryDesc, int eflags)
{
	pfg_gate_executor_start(queryDesc, eflags);
	if (next_ExecutorStart_hook)
		next_ExecutorStart_hook(queryDesc, eflags);
	else
		standard_ExecutorStart(queryDesc, eflags);
}

static void
profile_guard_ExecutorStart(QueryDesc *queryDesc, int eflags)
{
	PfgAuditFrame frame;

	/* parallel workers: the leader does this for the statement */
	if (!IsParallelWorker())
		statement_starts();
	else
		pfg_parallel_gates_worker_start(queryDesc);
	pfg_audit_executor_start_enter(&frame, queryDesc, eflags);
	if (!frame.guarded)
	{
		gate_and_start(queryDesc, eflags);
		return;
	}

	PG_TRY();
	{
		gate_and_start(queryDesc, eflags);
	}
	PG_CATCH();
	{
		pfg_audit_executor_start_abort(&frame);
	}
	PG_END_TRY();
	pfg_audit_executor_start_leave(&frame, queryDesc);
}

static void
profile_guard_ExecutorRun(QueryDesc *queryDesc, ScanDirection direction,
						  uint64 count, bool execute_once)
{
	PfgAuditFrame frame;
	ErrorContextCallback errcb;
	PfgParallelRun parallel = {0};

	pfg_audit_executor_run_enter(&frame, queryDesc);
	if (frame.guarded)
		push_redaction_mark(&errcb);
	PG_TRY();
	{
		pfg_parallel_gates_run_begin(&parallel, queryDesc);
		if (next_ExecutorRun_hook)
			next_ExecutorRun_hook(queryDesc, direction, count, execute_once);
		else
			standard_ExecutorRun(queryDesc, direction, count, execute_once);
		pfg_parallel_gates_run_end(&parallel, queryDesc);
	}
	PG_CATCH();
	{
		if (IsParallelWorker())
			pfg_parallel_gates_worker_failed(queryDesc);
		pfg_parallel_gates_run_abort(&parallel, queryDesc);
		if (frame.guarded)
			pop_redaction_mark(&errcb);
		pfg_audit_executor_run_abort(&frame, queryDesc);
	}
	PG_END_TRY();
	if (frame.guarded)
		pop_redaction_mark(&errcb);
	pfg_audit_executor_run_leave(&frame, queryDesc);
}

static void
profile_guard_ExecutorFinish(QueryDesc *queryDesc)
{
	PfgAuditFrame frame;
	ErrorContextCallback errcb;

	pfg_audit_executor_finish_enter(&frame, queryDesc);
	if (frame.guarded)
		push_redaction_mark(&errcb);
	PG_TRY();
	{
		if (next_ExecutorFinish_hook)
			next_ExecutorFinish_hook(queryDesc);
		else
			standard_ExecutorFinish(queryDesc);
	}
	PG_CATCH();
	{
		if (frame.guarded)
			pop_redaction_mark(&errcb);
		pfg_audit_executor_finish_abort(&frame);
	}
	PG_END_TRY();
	if (frame.guarded)
		pop_redaction_mark(&errcb);
	pfg_audit_executor_finish_leave(&frame);
}

static void
profile_guard_ExecutorEnd(QueryDesc *queryDesc)
{
	PfgAuditFrame frame;

	if (IsParallelWorker())
		pfg_parallel_gates_worker_end(queryDesc);
	pfg_audit_executor_end(&frame, queryDesc);
	if (next_ExecutorEnd_hook)
		next_ExecutorEnd_hook(queryDesc);
	else
		standard_ExecutorEnd(queryDesc);
	pfg_audit_executor_ended(&frame);
	if (pfg_audit_nesting() == 0)
		pfg_shared_data_keys_release();
}

/* ---- utility statements ---- */

static void
profile_guard_ProcessUtility(PlannedStmt *pstmt, const char *queryString,
							 bool readOnlyTree, ProcessUtilityContext context,
							 ParamListInfo params, QueryEnvironment *queryEnv,
							 DestReceiver *dest, QueryCompletion *qc)
{
	PfgAuditFrame frame;
	ErrorContextCallback errcb;
	volatile bool analyzing = false;

	statement_starts();
	pfg_shared_data_keys_utility(pstmt->utilityStmt);
	pfg_audit_utility_enter(&frame, pstmt);
	if (frame.guarded)
		push_redaction_mark(&errcb);
	PG_TRY();
	{
		List	   *tree_changes;
		bool		explain_analyze;
		PlannedStmt *run = pfg_gate_utility_before(pstmt, &tree_changes,
												   &explain_analyze);

		analyzing = explain_analyze;
		if (next_ProcessUtility_hook)
			next_ProcessUtility_hook(run, queryString, readOnlyTree, context,
									 params, queryEnv, dest, qc);
		else
			standard_ProcessUtility(run, queryString, readOnlyTree, context,
									params, queryEnv, dest, qc);
		analyzing = false;
		pfg_gate_utility_after(tree_changes, explain_analyze);
	}
	PG_CATCH();
	{
		pfg_gate_utility_abort(analyzing);
		if (frame.guarded)
			pop_redaction_mark(&errcb);
		pfg_audit_utility_abort(&frame);
	}
	PG_END_TRY();
	if (frame.guarded)
		pop_redaction_mark(&errcb);
	pfg_audit_utility_leave(&frame, qc);
	if (pfg_audit_nesting() == 0)
		pfg_shared_data_keys_release();
}

/* ---- messages ---- */

static void
profile_guard_emit_log(ErrorData *edata)
{
	pfg_redact_emit_log(edata);
	if (next_emit_log_hook)
		next_emit_log_hook(edata);
}

/*
 * Install every hook, once, while the library is preloaded.  The order of
 * installation does not matter: each hook is installed exactly once, and
 * the order in which our parts run is fixed by the hooks above.
 */
void
pfg_install_hooks(void)
{
	next_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = profile_guard_shmem_request;
	next_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = profile_guard_shmem_startup;
	next_post_parse_analyze_hook = post_parse_analyze_hook;
	post_parse_analyze_hook = profile_guard_post_parse_analyze;
	next_planner_hook = planner_hook;
	planner_hook = profile_guard_planner;
	next_ExecutorStart_hook = ExecutorStart_hook;
	ExecutorStart_hook = profile_guard_ExecutorStart;
	next_ExecutorRun_hook = ExecutorRun_hook;
	ExecutorRun_hook = profile_guard_ExecutorRun;
	next_ExecutorFinish_hook = ExecutorFinish_hook;
	ExecutorFinish_hook = profile_guard_ExecutorFinish;
	next_ExecutorEnd_hook = ExecutorEnd_hook;
	ExecutorEnd_hook = profile_guard_ExecutorEnd;
	next_ProcessUtility_hook = ProcessUtility_hook;
	ProcessUtility_hook = profile_guard_ProcessUtility;
	next_emit_log_hook = emit_log_hook;
	emit_log_hook = profile_guard_emit_log;
}
